"""commands/shared.py: durations as kubectl takes them (Go's time.ParseDuration, or plain seconds)."""

import pytest

from kubectl_preevy.commands.shared import parse_duration
from kubectl_preevy.errors import ExitCode, PreevyError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("5m", 300),
        ("1h", 3600),
        ("1h30m", 5400),
        ("1m30s", 90),
        ("1.5m", 90),
        (".5s", 0.5),
        ("500ms", 0.5),
        ("2h0m1s", 7201),
        (" 3m ", 180),
    ],
)
def test_go_durations_and_plain_seconds_are_accepted(text, seconds):
    assert parse_duration(text, "--timeout") == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["1h30", "1m30", "90x", "h", "m5", "", "0", "0s", "0h0m", "-5m", "1h 30m", "1e3", "5 m", "inf"]
)
def test_a_number_without_its_unit_or_a_zero_duration_is_a_usage_error(text):
    with pytest.raises(PreevyError) as raised:
        parse_duration(text, "--timeout")
    assert raised.value.exit_code == ExitCode.USAGE
    assert raised.value.message == (
        f"invalid --timeout {text!r}: use a duration with a unit on every number, such as 90s, 5m or 1h30m"
    )


def test_down_with_an_id_reads_the_compose_model_only_when_its_files_may_set_options(tmp_path):
    from kubectl_preevy.commands.shared import may_set_options

    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    assert not may_set_options(None, tmp_path, {})
    (tmp_path / "other.yaml").write_text("x-preevy:\n  drivers: {kube-pod: {namespace: previews}}\n")
    assert may_set_options(["other.yaml"], tmp_path, {})
    assert may_set_options(None, tmp_path, {"COMPOSE_FILE": "compose.yaml:other.yaml"})
    (tmp_path / "compose.preevy.yaml").write_text("include:\n  - more.yaml\n")  # Preevy's system file
    assert may_set_options(None, tmp_path, {})
    assert may_set_options(["missing.yaml"], tmp_path, {})  # docker compose says what is wrong
