"""Interruptions (Ctrl-C, SIGTERM of a cancelled CI job): they unwind the run like KeyboardInterrupt, and
are remembered, so that the run ends as interrupted (exit 130) whatever error a dying step raised."""

import contextlib
import signal
import threading
from collections.abc import Iterator

_received = threading.Event()


def received() -> bool:
    """Whether SIGINT or SIGTERM arrived during this run."""
    return _received.is_set()


@contextlib.contextmanager
def as_keyboard_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the block (so every `finally` stops what it
    started) and are remembered (received())."""

    def interrupt(signum: int, frame: object) -> None:
        _received.set()
        raise KeyboardInterrupt

    previous_term = signal.signal(signal.SIGTERM, interrupt)
    previous_int = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
