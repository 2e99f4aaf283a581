"""The one retry policy: which kubectl failures are transient, and how long to back off.

Only steps that are safe to repeat are retried (server-side apply, get/list, rollout status,
listing through exec, label, delete): repeating them changes nothing that the first attempt did
not already do. Create, replace and streams that consumed their input are never retried here.
"""

import re
import time
from collections.abc import Callable
from typing import TypeVar

ATTEMPTS = 5  # in all, the first one included
FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 8.0

# What kubectl prints for an answer worth trying again: HTTP 429/500/502/503/504, a connection
# reset or refused while the command ran, an optimistic-concurrency conflict. (Compiled at its first use, by
# re's cache, as the next one: only a failure needs them, ~0.5 ms of every start.)
_TRANSIENT = (
    r"\((TooManyRequests|InternalError|ServiceUnavailable|Timeout|ServerTimeout|BadGateway)\)"
    r"|the server (has received too many requests|is currently unable to handle the request"
    r"|was unable to return a response in the time allotted)"
    r"|an error on the server \(.*\) has prevented the request from succeeding"
    r"|Internal error occurred"
    r"|connection reset by peer|connection refused|broken pipe|unexpected EOF|http2: client connection lost"
    r"|TLS handshake timeout|i/o timeout"
    r"|the object has been modified; please apply your changes to the latest version"
)

# The part of those that is about the connection rather than an answer of the API server.
_CONNECTION = (
    r"connection reset by peer|connection refused|was refused|broken pipe|unexpected EOF"
    r"|http2: client connection lost|TLS handshake timeout|i/o timeout|Unable to connect to the server"
)

T = TypeVar("T")


def is_transient(stderr: str) -> bool:
    return bool(re.search(_TRANSIENT, stderr))


def is_connection_failure(stderr: str) -> bool:
    return bool(re.search(_CONNECTION, stderr))


def transient_line(stderr: str) -> str:
    """The line of stderr that makes the failure transient (what the retry warning quotes)."""
    for line in stderr.splitlines():
        if re.search(_TRANSIENT, line):
            return line.strip()
    return stderr.strip().splitlines()[-1] if stderr.strip() else ""


def delays(attempts: int = ATTEMPTS) -> list[float]:
    """Back-off before each repeat: 0.5, 1, 2, 4 s... capped at MAX_DELAY_SECONDS."""
    return [min(FIRST_DELAY_SECONDS * 2**n, MAX_DELAY_SECONDS) for n in range(attempts - 1)]


def retrying(
    attempt: Callable[[], T],
    should_retry: Callable[[T], bool],
    *,
    deadline: float | None = None,
    on_retry: Callable[[T, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """attempt() until should_retry(result) is False, ATTEMPTS at most, never sleeping past deadline
    (time.monotonic()); the last result is returned either way."""
    result = attempt()
    for delay in delays():
        if not should_retry(result):
            return result
        if deadline is not None and time.monotonic() + delay >= deadline:
            return result
        if on_retry is not None:
            on_retry(result, delay)
        sleep(delay)
        result = attempt()
    return result
