"""Interruptions (Ctrl-C, SIGTERM of a cancelled CI job): they unwind the run like KeyboardInterrupt, and
are remembered, so that the run ends as interrupted (exit 130) whatever error a dying step raised.

While a child process is being forked the interruption is deferred: a KeyboardInterrupt raised inside
Python's at-fork callbacks would be swallowed ("Exception ignored in ... _releaseLock") and lost. It is
raised right after (raise_pending), once; the clean-up that follows may run programs again.
"""

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

_OWNER_PID = os.getpid()  # the process whose run an interruption unwinds
_received = threading.Event()
_pending = False
_deferring = 0


def received() -> bool:
    """Whether SIGINT or SIGTERM arrived during this run."""
    return _received.is_set()


def _interrupt(signum: int, frame: object) -> None:
    global _pending
    if os.getpid() != _OWNER_PID:
        # a child forked by another thread, between fork and exec (Python code still runs there, its
        # at-fork callbacks): not ours to unwind; the run that forked it stops it as it unwinds
        return
    _received.set()
    if _deferring:
        _pending = True
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """No KeyboardInterrupt inside the block (a fork); see raise_pending. Only the main thread's forks
    matter: the signal is handled there (a step run in another thread forks without deferring it)."""
    global _deferring
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1


def raise_pending() -> None:
    """The KeyboardInterrupt of a signal that arrived while deferred, once."""
    global _pending
    if _pending and not _deferring and threading.current_thread() is threading.main_thread():
        _pending = False
        raise KeyboardInterrupt


@contextlib.contextmanager
def as_keyboard_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the block (so every `finally` stops what it
    started) and are remembered (received())."""
    previous_term = signal.signal(signal.SIGTERM, _interrupt)
    previous_int = signal.signal(signal.SIGINT, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
