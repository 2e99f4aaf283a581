"""console.py: on a stderr that is no terminal, the plain lines (rich not loaded) are what rich writes."""

import pytest

from kubectl_preevy import console

MESSAGES = ["a [bold]markup-like[/bold] text", "a\ttab, a \\[bracket] and :whale: as typed", "ünïcode ✓"]


def _all_kinds(message: str) -> None:
    console.info(message)
    console.step(message)
    console.warn(message)
    console.error(message)


@pytest.mark.parametrize("message", MESSAGES)
def test_plain_lines_are_what_rich_writes_to_no_terminal(message, capsys, monkeypatch):
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    assert console._plain()  # captured: no terminal
    _all_kinds(message)
    plain = capsys.readouterr().err
    monkeypatch.setattr(console, "_plain", lambda: False)
    _all_kinds(message)
    assert capsys.readouterr().err == plain
    assert plain.splitlines()[1:] == [
        f"> {message}".expandtabs(8),
        f"warning: {message}".expandtabs(8),
        f"error: {message}".expandtabs(8),
    ]


def test_forced_colour_goes_through_rich(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert not console._plain()
    monkeypatch.setenv("FORCE_COLOR", "")
    assert console._plain()
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    assert not console._plain()
