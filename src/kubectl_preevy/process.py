"""The one wrapper for running programs (kubectl, docker, git), built on plumbum.

Child lifetime: every child runs in a process group of its own, so a Ctrl-C at the terminal (or a
signal to our group) reaches only us and we stop the children in order (a kubectl that dies of
SIGINT first would otherwise turn an interruption into an error); and on Linux with a parent-death
signal, so that no child (port-forward, exec) outlives us even after SIGKILL.
"""

import ctypes
import dataclasses
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable

from kubectl_preevy import interrupt, messages
from kubectl_preevy.errors import ExitCode, PreevyError


@dataclasses.dataclass
class Result:
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


def command(argv: list[str]):
    """A plumbum command for argv, or a PreevyError saying how to install the missing program."""
    from plumbum import local
    from plumbum.commands.processes import CommandNotFound

    try:
        return local[argv[0]][argv[1:]]
    except CommandNotFound:
        raise PreevyError(messages.MISSING_TOOL.format(tool=argv[0]), ExitCode.MISSING_TOOL) from None


def run(
    argv: list[str],
    stdin: str | bytes | None = None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
) -> Result:
    """Run argv to completion, capturing its output as text. Never raises on a non-zero exit.

    env, when given, is the program's whole environment.
    """
    proc = popen(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate(stdin.encode() if isinstance(stdin, str) else stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise PreevyError(
            messages.COMMAND_TIMED_OUT.format(command=" ".join(argv[:2]), seconds=timeout), ExitCode.TIMEOUT
        ) from None
    except BaseException:
        stop(proc)
        raise
    interrupt.raise_pending()
    return Result(list(argv), proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def popen(
    argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None, **popen_kwargs
) -> subprocess.Popen:
    """Start argv in the background. The caller owns the process and must `stop()` it."""
    with interrupt.deferred():  # see interrupt.py: never a KeyboardInterrupt inside the fork
        proc = command(argv).popen(env=env, cwd=cwd, preexec_fn=_child_setup(os.getpid()), **popen_kwargs)
    try:
        interrupt.raise_pending()
    except KeyboardInterrupt:
        stop(proc)
        raise
    return proc


PR_SET_PDEATHSIG = 1  # linux/prctl.h


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl, loaded in the parent (never between fork and exec), or None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _child_setup(parent_pid: int) -> Callable[[], None]:
    prctl = _prctl()

    def setup() -> None:
        os.setpgid(0, 0)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent_pid:  # the parent died before the signal was armed
                os._exit(1)

    return setup


def stop(proc: subprocess.Popen, grace_seconds: float = 3.0) -> None:
    """Terminate a process we started (by its pid, via Popen), then kill it if it lingers."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
