"""parallel.together: steps at the same time, results in order, the first failure once all have ended."""

import threading

import pytest

from kubectl_preevy import parallel


def test_results_come_in_order_and_a_missing_step_gives_none():
    assert parallel.together(lambda: 1, None, lambda: 3) == [1, None, 3]
    assert parallel.together(lambda: "only") == ["only"]


def test_the_steps_run_at_the_same_time():
    both = threading.Barrier(2, timeout=5)  # each waits for the other: only concurrent steps pass

    def step() -> str:
        both.wait()
        return "met"

    assert parallel.together(step, step) == ["met", "met"]


def test_the_first_failure_in_order_is_raised_once_every_step_has_ended():
    ended = threading.Event()

    def slow() -> None:
        ended.wait(0.2)
        ended.set()

    def first() -> None:
        raise ValueError("first")

    with pytest.raises(ValueError, match="first"):
        parallel.together(first, slow, lambda: (_ for _ in ()).throw(KeyError("later")))
    assert ended.is_set()

    with pytest.raises(KeyError):
        parallel.together(lambda: 1, lambda: (_ for _ in ()).throw(KeyError("only")))
