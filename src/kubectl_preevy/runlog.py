"""The log file of a failed run: what ran (process.journal) with its full stderr, and the traceback of an
unexpected exception; kept in $XDG_STATE_HOME/kubectl-preevy/logs/ (else ~/.local/state/...), the last
MAX_LOGS of them. Nothing leaves the machine: the user decides whether to attach one to a bug report.
"""

import datetime
import os
import pathlib
import platform
import shlex
import traceback
from collections.abc import Mapping

from kubectl_preevy import __version__, process

MAX_LOGS = 20
LOG_PREFIX = "kubectl-preevy-"


def log_dir(environ: Mapping[str, str]) -> pathlib.Path:
    base = environ.get("XDG_STATE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".local", "state"
    )
    return pathlib.Path(base) / "kubectl-preevy" / "logs"


def log_text(
    argv: list[str], outcome: str, records: list[process.Record], error: BaseException | None = None
) -> str:
    """The log: the invocation, how it ended, every program run with its stderr, then the traceback."""
    lines = [
        f"kubectl-preevy {__version__} (python {platform.python_version()}, {platform.platform()})",
        f"command: {shlex.join(['kubectl-preevy', *process.redact(argv)])}",
        f"outcome: {outcome}",
        "",
        f"programs run ({len(records)}, oldest first):",
    ]
    for record in records:
        lines.append(record.describe())
        lines += [f"  | {line}" for line in record.stderr.rstrip().splitlines()]
    if error is not None:
        lines += ["", "traceback:", *"".join(traceback.format_exception(error)).rstrip().splitlines()]
    return "\n".join(lines) + "\n"


def write_log(text: str, environ: Mapping[str, str], now: datetime.datetime | None = None) -> pathlib.Path:
    """Write a new log file (readable by its owner only: stderr may show cluster details), keep the
    MAX_LOGS newest. Raises OSError when it cannot be written."""
    directory = log_dir(environ)
    directory.mkdir(parents=True, exist_ok=True)
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    path = directory / f"{LOG_PREFIX}{moment:%Y%m%dT%H%M%S.%f}Z-{os.getpid()}.log"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as log:
        log.write(text)
    prune(directory)
    return path


def prune(directory: pathlib.Path, keep: int = MAX_LOGS) -> None:
    """Remove all but the `keep` newest of our log files (named by time, so by name); nothing else."""
    logs = sorted(p for p in directory.glob(f"{LOG_PREFIX}*.log") if p.is_file())
    for old in logs[: max(0, len(logs) - keep)]:
        try:
            old.unlink()
        except OSError:
            pass  # another run removed it
