"""runlog.py: where log files go, what they hold, how many are kept."""

import datetime

from kubectl_preevy import process, runlog


def test_logs_go_to_xdg_state_home_else_home_local_state():
    assert str(runlog.log_dir({"XDG_STATE_HOME": "/s", "HOME": "/h"})) == "/s/kubectl-preevy/logs"
    assert str(runlog.log_dir({"HOME": "/h"})) == "/h/.local/state/kubectl-preevy/logs"


def test_a_log_holds_the_command_every_run_with_its_stderr_and_the_traceback():
    records = [
        process.Record(["kubectl", "--token=REDACTED", "get", "pods"], 1, 0.25, "E1 first\nerror: last\n"),
        process.Record(["kubectl", "port-forward", "pod/p", "0:2375"], None, 3.5),
    ]
    try:
        raise ValueError("bad")
    except ValueError as err:
        text = runlog.log_text(["up", "--token", "t"], "internal error: ValueError: bad", records, err)
    assert "command: kubectl-preevy up --token REDACTED\noutcome: internal error: ValueError: bad\n" in text
    assert "$ kubectl --token=REDACTED get pods  (exit 1, 0.25s)\n  | E1 first\n  | error: last\n" in text
    assert "$ kubectl port-forward pod/p 0:2375  (stopped, 3.50s)\n" in text
    assert "traceback:\nTraceback (most recent call last):" in text and text.endswith("ValueError: bad\n")


def test_only_the_newest_logs_are_kept_and_nothing_else_is_touched(tmp_path):
    environ = {"XDG_STATE_HOME": str(tmp_path)}
    directory = runlog.log_dir(environ)
    directory.mkdir(parents=True)
    (directory / "notes.txt").write_text("mine")
    start = datetime.datetime(2026, 11, 28, 22, 0, tzinfo=datetime.timezone.utc)
    paths = [
        runlog.write_log(f"log {i}\n", environ, now=start + datetime.timedelta(seconds=i))
        for i in range(runlog.MAX_LOGS + 5)
    ]
    kept = sorted(directory.glob("kubectl-preevy-*.log"))
    assert kept == paths[5:] and kept[-1].read_text() == f"log {runlog.MAX_LOGS + 4}\n"
    assert (directory / "notes.txt").read_text() == "mine"
