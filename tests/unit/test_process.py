"""process.py: every program run recorded (secrets redacted) and, with -v/-vv, shown on stderr."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from kubectl_preevy import process
from kubectl_preevy.errors import ExitCode, PreevyError
from tests.unit.fresh import run_fresh

PYTHON = sys.executable


@pytest.fixture(autouse=True)
def fresh_journal():
    process.journal.reset(verbosity=0)
    yield
    process.journal.reset(verbosity=0)


@pytest.mark.parametrize(
    ("argv", "redacted"),
    [
        (["kubectl", "--token", "abc", "get"], ["kubectl", "--token", "REDACTED", "get"]),
        (["kubectl", "--token=abc", "get"], ["kubectl", "--token=REDACTED", "get"]),
        (["kubectl", "--token-file=x", "--tokens", "y"], ["kubectl", "--token-file=x", "--tokens", "y"]),
        (["kubectl", "--token"], ["kubectl", "--token"]),
    ],
)
def test_token_values_are_redacted_in_every_form(argv, redacted):
    assert process.redact(argv) == redacted


def test_a_run_is_recorded_with_its_exit_code_duration_and_full_stderr():
    result = process.run([PYTHON, "-c", "import sys; sys.stderr.write('a\\nb\\n'); sys.exit(2)", "--token=x"])
    assert (result.returncode, result.stderr, result.last_error_line()) == (2, "a\nb\n", "b")
    [record] = process.journal.records
    assert record.argv[-1] == "--token=REDACTED" and record.returncode == 2 and record.stderr == "a\nb\n"
    assert record.seconds >= 0 and process.journal.failed()


def test_v_shows_each_run_and_vv_its_stderr(capsys):
    process.journal.reset(verbosity=1)
    process.run([PYTHON, "-c", "import sys; sys.stderr.write('said this\\n')"])
    err = capsys.readouterr().err
    assert err.startswith(f"$ {PYTHON} -c ") and "(exit 0, " in err and "  | " not in err
    process.journal.reset(verbosity=2)
    process.run([PYTHON, "-c", "import sys; sys.stderr.write('said this\\n')"])
    assert "  | said this\n" in capsys.readouterr().err


def test_a_background_process_is_recorded_when_stopped_and_stopping_it_is_not_a_failure(capsys):
    process.journal.reset(verbosity=1)
    proc = process.popen([PYTHON, "-c", "import time; time.sleep(30)"], stdin=subprocess.DEVNULL)
    assert f"(started, pid {proc.pid})" in capsys.readouterr().err
    process.stop(proc)
    [record] = process.journal.records
    assert record.returncode is None and not process.journal.failed()
    assert "(stopped, " in capsys.readouterr().err
    done = process.popen([PYTHON, "-c", "raise SystemExit(4)"], stdin=subprocess.DEVNULL)
    done.wait()
    process.stop(done)
    assert process.journal.records[-1].returncode == 4 and process.journal.failed()


def test_the_stderr_of_a_background_process_joins_its_record_before_or_after_stop(capsys):
    process.journal.reset(verbosity=2)
    proc = process.popen([PYTHON, "-c", "raise SystemExit(1)"], stdin=subprocess.DEVNULL)
    process.journal.output(proc, "error: lost connection to pod\n")
    proc.wait()
    process.stop(proc)
    process.journal.output(proc, "read after it ended\n")
    [record] = process.journal.records
    assert record.stderr == "error: lost connection to pod\nread after it ended\n" and record.pid == proc.pid
    err = capsys.readouterr().err
    assert "  | error: lost connection to pod\n" in err and "  | read after it ended\n" in err


def test_a_timeout_is_recorded_and_is_our_timeout_error():
    with pytest.raises(PreevyError) as raised:
        process.run([PYTHON, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert raised.value.exit_code == ExitCode.TIMEOUT
    assert process.journal.records[-1].returncode is None


def test_on_line_gets_each_stdout_line_while_the_program_still_runs(tmp_path):
    # the program prints, then waits for a file that only on_line creates: it can end only if each line
    # reaches on_line as it comes, not once the program has ended
    go = tmp_path / "go"
    script = (
        "import os, sys, time\n"
        "print('first', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        "print('second'); sys.stderr.write('said\\n'); sys.exit(3)\n"
    )
    seen = []

    def on_line(line):
        seen.append(line)
        go.touch()

    result = process.run([PYTHON, "-c", script], stdin="ignored", on_line=on_line, timeout=30)
    assert seen == ["first\n", "second\n"]
    assert (result.returncode, result.stdout, result.stderr) == (3, "first\nsecond\n", "said\n")


def test_on_line_with_a_timeout_stops_the_program_and_is_our_timeout_error():
    with pytest.raises(PreevyError) as raised:
        process.run(
            [PYTHON, "-c", "import time; print('x', flush=True); time.sleep(30)"], timeout=0.5, on_line=print
        )
    assert raised.value.exit_code == ExitCode.TIMEOUT
    assert process.journal.records[-1].returncode is None


# Run by a child Python: a program whose pid goes to a file (the shell becomes the program), then a wait.
KILLED_PARENT = """
import subprocess, sys
sys.path.insert(0, {src!r})
from kubectl_preevy import process
script = 'echo $$ > {pid_file}; exec sleep 60'
if {mode!r} == "popen":
    process.popen(['sh', '-c', script])
elif {mode!r} == "reader":  # reads what we write: ends at the end of it, quick start
    script = 'echo $$ > {pid_file}; exec cat > /dev/null'
    reader = process.popen(['sh', '-c', script], stdin=subprocess.PIPE, ends_without_us=True)
else:
    process.run(['sh', '-c', script], timeout={timeout})
import time
time.sleep(60)
"""


@pytest.mark.parametrize(
    ("mode", "timeout"),
    [("popen", None), ("run", None), ("run", 600), ("reader", None)],
    ids=["popen", "run", "long-run", "stdin-reader"],
)
def test_a_program_that_may_outlive_us_is_killed_with_us(mode, timeout, tmp_path):
    """SIGKILL leaves no cleanup to us: the parent-death signal ends what would otherwise run on (the
    quicker start without it is only for runs bounded by SHORT_RUN_SECONDS, which end by themselves, and
    programs that end with their input from us)."""
    pid_file = tmp_path / "pid"
    src = str(pathlib.Path(process.__file__).parents[1])
    code = KILLED_PARENT.format(src=src, pid_file=pid_file, mode=mode, timeout=timeout)
    parent = subprocess.Popen([PYTHON, "-c", code])
    try:
        deadline = time.monotonic() + 20
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert time.monotonic() < deadline and parent.poll() is None
            time.sleep(0.05)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(int(pid_file.read_text())):
            assert time.monotonic() < deadline, "the program outlived the killed parent"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if pid_file.exists() and pid_file.read_text().strip() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = (pathlib.Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_plumbum_is_loaded_without_urllib_request_which_still_works_when_used():
    """plumbum imports urllib.request only for LocalPath.as_uri: it gets a stand-in, the real module
    (with ssl and http.client) is imported at its first use, by whatever form of import."""
    probe = (
        "import sys; from kubectl_preevy import process; process.command(['true'])\n"
        "print('ssl' in sys.modules, 'http.client' in sys.modules, type(sys.modules['socket']).__name__)\n"
        "import socket; print(socket.gethostname() == __import__('os').uname().nodename, type(socket.socket).__name__)\n"
        "import urllib.request; from urllib.request import Request\n"
        "print(urllib.request.pathname2url('/a b'), Request.__name__, 'ssl' in sys.modules)\n"
        "import plumbum; print(plumbum.local.path('/x y').as_uri())\n"
    )
    out = run_fresh(probe)
    assert out.splitlines() == ["False False Deferred", "True type", "/a%20b Request True", "file:///x%20y"]


def test_loading_plumbum_starts_no_program():
    """plumbum reads platform.uname() when imported, whose processor field runs `uname -p`: it is given, so
    the only programs an invocation starts are the ones it runs (the system's name is still the real one)."""
    probe = (
        "import os, subprocess\n"
        "started = []\n"
        "real_init = subprocess.Popen.__init__\n"
        "def init(self, args, *a, **k): started.append(args); real_init(self, args, *a, **k)\n"
        "subprocess.Popen.__init__ = init\n"
        "from kubectl_preevy import process; process.command(['true'])\n"
        "import plumbum; print(started, plumbum.local.uname == os.uname().sysname)\n"
    )
    out = run_fresh(probe)
    assert out.split() == ["[]", "True"]


def test_meanwhile_runs_while_the_program_runs_and_before_its_input_is_written(tmp_path):
    """The program waits for its input, which is written only once meanwhile() returned: meanwhile sees it
    running (its mark file written), and the program then gets its input and ends."""
    mark = tmp_path / "started"
    program = f"import pathlib, sys; pathlib.Path({str(mark)!r}).write_text('up'); print(sys.stdin.read())"
    seen = []

    def meanwhile() -> None:
        for _ in range(1000):  # bounded: the program writes its mark at once
            if mark.exists():
                break
            time.sleep(0.01)
        seen.append(mark.read_text())

    result = process.run([PYTHON, "-c", program], stdin="input", timeout=60, meanwhile=meanwhile)
    assert seen == ["up"] and result.ok and result.stdout == "input\n"


def test_a_failure_of_meanwhile_stops_the_program_and_is_raised(tmp_path):
    def meanwhile() -> None:
        raise ValueError("meanwhile failed")

    with pytest.raises(ValueError, match="meanwhile failed"):
        process.run([PYTHON, "-c", "import time; time.sleep(60)"], timeout=120, meanwhile=meanwhile)
    (record,) = process.journal.records
    assert record.returncode is None and record.stderr == "(interrupted)"


def test_the_collector_is_off_through_start_up_and_on_again_once_the_first_program_started():
    """console_main turns the cyclic garbage collector off; the first program started turns it on again,
    with start-up's objects frozen (they live as long as the process). A collector someone else runs is left
    alone, frozen nothing."""
    assert run_fresh(
        "import gc, sys; from kubectl_preevy import cli, process\n"
        "def main():\n"
        "    print(gc.isenabled(), gc.get_freeze_count() > 0)\n"
        "    process.run(['true']); print(gc.isenabled(), gc.get_freeze_count() > 0)\n"
        "    process.popen(['true']).wait(); return 0\n"
        "cli.main = main; cli.console_main()\n"
    ).split() == ["False", "False", "True", "True"]
    assert run_fresh(
        "import gc; from kubectl_preevy import process\n"
        "process.run(['true']); print(gc.isenabled(), gc.get_freeze_count())\n"
    ).split() == ["True", "0"]
