"""Bounded waiting for the emulator tests."""

from __future__ import annotations

import time


def until(pred, what: str, timeout: float = 30.0):
    """pred()'s first truthy value, polled every 0.2 s; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
