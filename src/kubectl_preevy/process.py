"""The one wrapper for running programs (kubectl, docker, git), built on plumbum."""

import dataclasses
import subprocess

from kubectl_preevy import messages
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
    return Result(list(argv), proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def popen(
    argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None, **popen_kwargs
) -> subprocess.Popen:
    """Start argv in the background. The caller owns the process and must `stop()` it."""
    return command(argv).popen(env=env, cwd=cwd, **popen_kwargs)


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


def run_attached(
    argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None, *, stdin: bool = True
) -> int:
    """Run argv on our own stdin (none when stdin=False), stdout and stderr (a terminal stays a terminal);
    its exit code. Interrupted (Ctrl-C, SIGTERM as KeyboardInterrupt): it is stopped, the interrupt goes on."""
    proc = popen(
        argv, env=env, cwd=cwd, stdin=None if stdin else subprocess.DEVNULL, stdout=None, stderr=None
    )
    try:
        return proc.wait()
    except BaseException:
        stop(proc)
        raise
