"""Independent steps run at the same time: each kubectl or docker call is its own process, so threads that
wait on them overlap their round trips (the GIL is released while waiting).

A program that must outlive its step (a port-forward) is started in the main thread: a child dies with the
thread that started it (process.py's parent-death signal)."""

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

Step = Callable[[], Any]
T = TypeVar("T")


class _Background:
    """One step in a daemon thread: an interrupted run does not wait for it (its programs die with us)."""

    def __init__(self, step: Step):
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(step,), daemon=True)
        self._thread.start()

    def _run(self, step: Step) -> None:
        try:
            self.result = step()
        except BaseException as err:  # noqa: BLE001 (handed to the main thread)
            self.error = err

    def join(self, seconds: float) -> None:
        self._thread.join(seconds)

    def wait(self) -> None:
        while self._thread.is_alive():
            self._thread.join(0.05)  # short joins: a signal reaches the main thread meanwhile


INTERRUPTED_WAIT_SECONDS = 2.0


def _give_time(background: list["_Background | None"]) -> None:
    """Interrupted: the steps get a moment to end (reads do); a longer one (a copy) is left to die with
    this process, its programs with it."""
    deadline = time.monotonic() + INTERRUPTED_WAIT_SECONDS
    for step in background:
        if step is not None:
            step.join(max(0.0, deadline - time.monotonic()))


def together(first: Step, *others: Step | None) -> list[Any]:
    """Run `first` in this thread and the others (None: no step, None as its result) in threads; wait for
    all of them. Their results in order; the first failure in that order is raised once all have ended.
    An interruption (KeyboardInterrupt) is raised once the others ended, or after a moment (_give_time)."""
    background = [_Background(step) if step is not None else None for step in others]
    failure: BaseException | None = None
    try:
        try:
            head = first()
        except Exception as err:  # noqa: BLE001 (raised once the others have ended: nothing outlives the call)
            head, failure = None, err
        for step in background:
            if step is not None:
                step.wait()
    except BaseException:
        _give_time(background)
        raise
    results: list[Any] = [head]
    for step in background:
        if step is None:
            results.append(None)
            continue
        if step.error is not None:
            failure = failure or step.error
        results.append(step.result)
    if failure is not None:
        raise failure
    return results


class Begun(Generic[T]):
    """A step begun now in a daemon thread, its result taken later (result(): waits, raises its failure).
    For a read whose answer a later step may want: never for a program that must outlive its step."""

    def __init__(self, step: Callable[[], T]):
        self._background = _Background(step)

    def result(self) -> T:
        self._background.wait()
        if self._background.error is not None:
            raise self._background.error
        result: T = self._background.result
        return result
