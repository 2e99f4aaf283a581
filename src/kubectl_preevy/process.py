"""The one wrapper for running programs (kubectl, docker, git), built on plumbum.

Every program run is recorded (argv with secrets redacted, exit code, duration, stderr) in `journal`:
`-v` prints each record on stderr, `-vv` with the program's stderr too, and the log file written when a
command fails holds them all (see runlog.py).

Child lifetime: every child runs in a process group of its own, so a Ctrl-C at the terminal (or a
signal to our group) reaches only us and we stop the children in order (a kubectl that dies of
SIGINT first would otherwise turn an interruption into an error); and on Linux with a parent-death
signal, so that no child (port-forward, exec) outlives us even after SIGKILL.
"""

import collections
import contextlib
import dataclasses
import functools
import gc
import importlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, cast

from kubectl_preevy import deferred, interrupt, messages
from kubectl_preevy.errors import ExitCode, PreevyError

if TYPE_CHECKING:
    from plumbum.commands.base import BoundCommand


@dataclasses.dataclass
class Result:
    """A program run to completion: its argv, exit code and output."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def last_error_line(self) -> str:
        """The last non-empty stderr line: what a failed tool said, for our one-line errors."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else f"exit code {self.returncode}"


SECRET_FLAGS = ("--token",)  # their values never reach a log or a hint
REDACTED = "REDACTED"
MAX_RECORDS = 300
MAX_RECORDED_STDERR = 64 * 1024


def redact(argv: list[str]) -> list[str]:
    """argv with the values of secret flags (`--token X`, `--token=X`) replaced by REDACTED."""
    redacted: list[str] = []
    for arg in argv:
        if redacted and redacted[-1] in SECRET_FLAGS:
            redacted.append(REDACTED)
        elif arg.startswith(tuple(f"{flag}=" for flag in SECRET_FLAGS)):
            redacted.append(arg.split("=", 1)[0] + "=" + REDACTED)
        else:
            redacted.append(arg)
    return redacted


@dataclasses.dataclass
class Record:
    """One program run: argv (redacted), exit code (None: stopped by us, on a timeout, Ctrl-C or when done
    with it), seconds, stderr (when captured; its last MAX_RECORDED_STDERR characters)."""

    argv: list[str]
    returncode: int | None
    seconds: float
    stderr: str = ""
    pid: int | None = None  # of a background process (popen)

    def describe(self) -> str:
        outcome = "stopped" if self.returncode is None else f"exit {self.returncode}"
        return f"$ {shlex.join(self.argv)}  ({outcome}, {self.seconds:.2f}s)"


class Journal:
    """The program runs of this invocation, the last MAX_RECORDS of them; echoed on stderr when verbose."""

    def __init__(self) -> None:
        self.verbosity = 0
        self.records: collections.deque[Record] = collections.deque(maxlen=MAX_RECORDS)
        self._started: dict[int, tuple[list[str], float]] = {}  # popen'd pid -> (argv, start time)
        self._stderr: dict[int, str] = {}  # popen'd pid -> its stderr so far, as its reader passed it on

    def add(
        self,
        argv: list[str],
        returncode: int | None,
        started: float,
        stderr: str = "",
        pid: int | None = None,
    ) -> None:
        record = Record(
            redact(argv), returncode, time.monotonic() - started, stderr[-MAX_RECORDED_STDERR:], pid
        )
        self.records.append(record)
        if self.verbosity >= 1:
            from kubectl_preevy import console

            console.info(record.describe())
            self._echo_stderr(record.stderr)

    def _echo_stderr(self, stderr: str) -> None:
        if self.verbosity >= 2 and stderr.strip():
            from kubectl_preevy import console

            console.info("\n".join(f"  | {line}" for line in stderr.rstrip().splitlines()))

    def output(self, proc: subprocess.Popen[bytes], stderr: str) -> None:
        """stderr of a background process, read by its owner (a pipe reader, a file after it ended):
        kept with its record, however long after `stop` it comes."""
        if proc.pid in self._started:
            self._stderr[proc.pid] = (self._stderr.get(proc.pid, "") + stderr)[-MAX_RECORDED_STDERR:]
            return
        for record in reversed(self.records):
            if record.pid == proc.pid:
                record.stderr = (record.stderr + stderr)[-MAX_RECORDED_STDERR:]
                self._echo_stderr(stderr)
                return

    def reset(self, verbosity: int) -> None:
        """A new invocation (main() may run several in one process: the tests)."""
        self.verbosity = verbosity
        self.records.clear()
        self._stderr.clear()

    def failed(self) -> bool:
        return any(record.returncode not in (0, None) for record in self.records)

    def started(self, proc: subprocess.Popen[bytes], argv: list[str]) -> None:
        self._started[proc.pid] = (list(argv), time.monotonic())
        if self.verbosity >= 1:
            from kubectl_preevy import console

            console.info(f"$ {shlex.join(redact(list(argv)))}  (started, pid {proc.pid})")

    def stopped(self, proc: subprocess.Popen[bytes], by_us: bool) -> None:
        started = self._started.pop(proc.pid, None)
        if started is not None:
            stderr = self._stderr.pop(proc.pid, "")
            self.add(started[0], None if by_us else proc.returncode, started[1], stderr, proc.pid)


journal = Journal()


def command(argv: list[str]) -> "BoundCommand":
    """A plumbum command for argv, or a PreevyError saying how to install the missing program."""
    if "plumbum" not in sys.modules:
        with _importing_plumbum:  # threads may run their first programs together (down: lock and find)
            if "plumbum" not in sys.modules:
                _import_plumbum()
    from plumbum import local
    from plumbum.commands.processes import CommandNotFound

    try:
        return local[argv[0]][argv[1:]]
    except CommandNotFound:
        raise PreevyError(messages.MISSING_TOOL.format(tool=argv[0]), ExitCode.MISSING_TOOL) from None


_importing_plumbum = threading.Lock()


# What plumbum's packages bind from the modules it is loaded without (see _import_plumbum):
# (package, name there) -> (module, name in it). Each is served at its first use, from the real module.
_PLUMBUM_UNLOADED = {
    ("plumbum", "colors"): ("plumbum.colorlib", "ansicolors"),
    ("plumbum", "BaseRemoteMachine"): ("plumbum.machines.remote", "BaseRemoteMachine"),
    ("plumbum", "PuttyMachine"): ("plumbum.machines.ssh_machine", "PuttyMachine"),
    ("plumbum", "SshMachine"): ("plumbum.machines.ssh_machine", "SshMachine"),
    ("plumbum.machines", "BaseRemoteMachine"): ("plumbum.machines.remote", "BaseRemoteMachine"),
    ("plumbum.machines", "RemoteCommand"): ("plumbum.machines.remote", "RemoteCommand"),
    ("plumbum.machines", "PuttyMachine"): ("plumbum.machines.ssh_machine", "PuttyMachine"),
    ("plumbum.machines", "SshMachine"): ("plumbum.machines.ssh_machine", "SshMachine"),
}


def _import_plumbum() -> None:
    """plumbum, without what it imports for features we never use (see deferred.py): urllib.request (with
    email, http.client and ssl: ~11 ms, a tenth of `ls`) only for LocalPath.as_uri, socket for SSH, pickle for
    daemons (~4 ms), traceback (with linecache, tokenize and textwrap: ~1.5 ms), which logging imports to print
    a failed handler's exception, its color library (~4 ms) and its remote and SSH machines (~0.6 ms). What its
    packages bind from those two (`plumbum.colors`, `plumbum.SshMachine`...) is served at its first use instead
    (a module's __getattr__), from the real module: the same object plumbum would have bound."""
    _processor_not_asked()
    modules = sorted({module for module, _ in _PLUMBUM_UNLOADED.values()})
    deferred.defer("urllib.request", "socket", "pickle", "traceback", *modules)
    with contextlib.ExitStack() as placed:
        for module in modules:
            names = dict.fromkeys(name for m, name in _PLUMBUM_UNLOADED.values() if m == module)
            placed.enter_context(deferred.placeholders(module, *names))
        import plumbum  # noqa: F401
    for package, name in _PLUMBUM_UNLOADED:
        namespace = vars(sys.modules[package])
        if name in namespace and namespace[name] is None:  # the placeholder: its module was not loaded
            del namespace[name]
            namespace["__getattr__"] = functools.partial(_served, package)


def _served(package: str, name: str) -> Any:
    """A name a plumbum package binds from a module it was loaded without, at its first use (`plumbum.colors`):
    the real module's object, bound in the package from then on."""
    if (package, name) not in _PLUMBUM_UNLOADED:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    module, attribute = _PLUMBUM_UNLOADED[package, name]
    value = getattr(importlib.import_module(module), attribute)
    vars(sys.modules[package])[name] = value
    return value


def _processor_not_asked() -> None:
    """plumbum's LocalMachine reads `platform.uname()[0]` when imported, and indexing the answer computes
    every field: the processor's by running `uname -p`, one more program (~4 ms) in every invocation. We read
    no field but the system's, so the processor is given as unknown ("", what `uname -p` says on Debian)."""
    import platform

    platform.uname().__dict__.setdefault("processor", "")


def run(
    argv: list[str],
    stdin: str | bytes | None = None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
    on_line: Callable[[str], object] | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> Result:
    """Run argv to completion, capturing its output as text. Never raises on a non-zero exit.

    env, when given, is the program's whole environment. on_line: called with each line of the program's
    stdout as it comes (in this thread, while the program runs on), e.g. to act on progress it reports.
    meanwhile: called once the program has started, while it runs (in this thread: a thread started before
    the program would hold the interpreter while the program waits to start); its failure stops the program.
    """
    started = time.monotonic()
    proc = _popen(
        argv,
        env=env,
        cwd=cwd,
        dies_with_us=timeout is None or timeout > SHORT_RUN_SECONDS,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        if meanwhile is not None:
            meanwhile()
        # readied while the program runs: a later background or long run needs it before its fork (~1.5 ms)
        _prctl()
        data = stdin.encode() if isinstance(stdin, str) else stdin
        if on_line is None:
            out, err = proc.communicate(data, timeout=timeout)
        else:
            out, err = _communicate_lines(proc, data, timeout, on_line)
    except subprocess.TimeoutExpired:
        stop(proc)
        journal.add(argv, None, started, f"(stopped after {timeout}s)")
        raise PreevyError(
            messages.COMMAND_TIMED_OUT.format(command=" ".join(argv[:2]), seconds=timeout), ExitCode.TIMEOUT
        ) from None
    except BaseException:
        stop(proc)
        journal.add(argv, None, started, "(interrupted)")
        raise
    result = Result(list(argv), proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
    journal.add(argv, result.returncode, started, result.stderr)
    interrupt.raise_pending()
    return result


def _communicate_lines(
    proc: subprocess.Popen[bytes], data: bytes | None, timeout: float | None, on_line: Callable[[str], object]
) -> tuple[bytes, bytes]:
    """communicate(), with each stdout line handed to on_line as it comes. stdout is read in this thread
    (a Ctrl-C interrupts the read); stdin and stderr in threads; a timeout stops the program (TimeoutExpired
    once its output ended)."""
    stderr: list[bytes] = []
    helpers = [threading.Thread(target=lambda: stderr.append(_read_all(proc.stderr)))]
    if data is not None:
        helpers.append(threading.Thread(target=_write_all, args=(proc.stdin, data)))
    timed_out = threading.Event()

    def time_out() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout, time_out) if timeout is not None else None
    for thread in [*helpers, *([timer] if timer else [])]:
        thread.daemon = True
        thread.start()
    lines = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            on_line(line.decode(errors="replace"))
        proc.wait()
    finally:
        if timer is not None:
            timer.cancel()
    if timed_out.is_set():
        raise subprocess.TimeoutExpired(proc.args, timeout or 0)
    for thread in helpers:
        thread.join()
    return b"".join(lines), b"".join(stderr)


def _read_all(stream: IO[bytes] | None) -> bytes:
    return stream.read() if stream is not None else b""


def _write_all(stream: IO[bytes] | None, data: bytes) -> None:
    if stream is None:
        return
    try:
        stream.write(data)
        stream.close()
    except BrokenPipeError:
        pass


def popen(
    argv: list[str],
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    *,
    terminal: bool = False,
    ends_without_us: bool = False,
    **popen_kwargs: Any,
) -> subprocess.Popen[bytes]:
    """Start argv in the background. The caller owns the process and must `stop()` it (which records it).
    terminal: the child reads the user's terminal (`kubectl exec -it`): it stays in our process group,
    the terminal's foreground one (a group of its own would be stopped by SIGTTIN), and gets Ctrl-C too.
    ends_without_us: it ends at the end of its input from us (a pipe only we write, which closes when we
    die, even killed): started without the parent-death signal, so through vfork (~5 ms less)."""
    proc = _popen(
        argv, env=env, cwd=cwd, own_group=not terminal, dies_with_us=not ends_without_us, **popen_kwargs
    )
    journal.started(proc, argv)
    return proc


# A program run to completion within this bound ends by itself should this process be killed: a kubectl
# request carries its own --request-timeout, and `docker compose config`, git and `tar --version` are
# quick. It is started without the parent-death signal, so with no Python code between fork and exec, and
# subprocess then uses vfork: ~4 ms less a start (a fork copies this process's page tables). Longer runs
# and every program started in the background keep the signal: killed with us, whatever kills us.
SHORT_RUN_SECONDS = 90


def _popen(
    argv: list[str],
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    own_group: bool = True,
    dies_with_us: bool = True,
    **popen_kwargs: Any,
) -> subprocess.Popen[bytes]:
    bound = command(argv)
    if own_group and not dies_with_us and sys.version_info >= (3, 11):
        popen_kwargs["process_group"] = 0  # setpgid in the child, without a Python hook
    else:
        popen_kwargs["preexec_fn"] = _child_setup(os.getpid(), own_group)
    with interrupt.deferred():  # see interrupt.py: never a KeyboardInterrupt inside the fork
        proc = cast("subprocess.Popen[bytes]", bound.popen(env=env, cwd=cwd, **popen_kwargs))
    resume_collector()
    try:
        interrupt.raise_pending()
    except KeyboardInterrupt:
        stop(proc)
        raise
    return proc


_collector_resumed = False


def resume_collector() -> None:
    """The end of start-up, once the first program has started: the cyclic garbage collector, off until then
    (cli.console_main), is on again. Start-up's imports make some 100,000 objects, none of them garbage, and
    the collector's ~15 passes over them (~1.5 ms) found nothing; they are frozen (gc.freeze: moved where no
    later pass looks), being the modules, classes and functions that live as long as the process anyway."""
    global _collector_resumed
    if not _collector_resumed:
        _collector_resumed = True
        if not gc.isenabled():
            gc.freeze()
            gc.enable()


PR_SET_PDEATHSIG = 1  # linux/prctl.h


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl, loaded in the parent (never between fork and exec), or None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes  # here: only programs need it, not `version`

        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def _child_setup(parent_pid: int, own_group: bool = True) -> Callable[[], None]:
    """What runs in the child before exec: a process group of its own, SIGKILL when the parent dies."""
    prctl = _prctl()

    def setup() -> None:
        if own_group:
            os.setpgid(0, 0)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent_pid:  # the parent died before the signal was armed
                os._exit(1)

    return setup


def argv_of(proc: subprocess.Popen[bytes]) -> list[str]:
    """The argv a process was started with (as our Result records it)."""
    args = proc.args
    if isinstance(args, (str, bytes, os.PathLike)):
        return [os.fsdecode(args)]
    return [os.fsdecode(arg) for arg in args]


def stop(proc: subprocess.Popen[bytes], grace_seconds: float = 3.0) -> None:
    """Terminate a process we started (by its pid, via Popen), then kill it if it lingers."""
    running = proc.poll() is None
    if running:
        proc.terminate()
        try:
            proc.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    journal.stopped(proc, by_us=running)


def run_attached(
    argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None, *, stdin: bool = True
) -> int:
    """Run argv on our own stdin (none when stdin=False), stdout and stderr (a terminal stays a terminal);
    its exit code. Interrupted (Ctrl-C, SIGTERM as KeyboardInterrupt): it is stopped, the interrupt goes on."""
    proc = popen(
        argv,
        env=env,
        cwd=cwd,
        terminal=stdin,  # it may read the user's terminal: in the foreground process group
        stdin=None if stdin else subprocess.DEVNULL,
        stdout=None,
        stderr=None,
    )
    try:
        return proc.wait()
    finally:
        stop(proc)
