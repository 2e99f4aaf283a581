"""The retry policy (retry.py), kubectl durations and which kubectl steps are safe to repeat."""

import pytest

from kubectl_preevy import retry
from kubectl_preevy.commands import shared
from kubectl_preevy.errors import PreevyError
from kubectl_preevy.kubectl import duration, safe_to_repeat

TRANSIENT = [
    "Error from server (InternalError): Internal error occurred: etcdserver: leader changed",
    "Error from server (ServiceUnavailable): the server is currently unable to handle the request",
    "Error from server (TooManyRequests): the server has received too many requests and has asked us to try again later",
    "Error from server (Timeout): the server was unable to return a response in the time allotted",
    'Error from server (Conflict): Operation cannot be fulfilled on configmaps "x": the object has been modified; '
    "please apply your changes to the latest version and try again",
    'error: an error on the server ("") has prevented the request from succeeding (get pods)',
    "Unable to connect to the server: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer",
]
PERMANENT = [
    'Error from server (NotFound): namespaces "x" not found',
    'Error from server (Forbidden): pods is forbidden: User "u" cannot list resource "pods"',
    'The StatefulSet "x" is invalid: spec.replicas: Invalid value: -1',
    'error: the server doesn\'t have a resource type "widgets"',
]


@pytest.mark.parametrize("stderr", TRANSIENT)
def test_transient(stderr):
    assert retry.is_transient(stderr)
    assert retry.transient_line("noise\n" + stderr + "\nSee https://example") == stderr


@pytest.mark.parametrize("stderr", PERMANENT)
def test_permanent(stderr):
    assert not retry.is_transient(stderr)


def test_back_off_is_bounded_and_exponential():
    assert retry.delays() == [0.5, 1, 2, 4]
    assert max(retry.delays(10)) == retry.MAX_DELAY_SECONDS


def test_retrying_stops_at_success_and_after_the_last_attempt():
    slept: list[float] = []
    answers = iter([False, False, True])
    assert retry.retrying(lambda: next(answers), lambda ok: not ok, sleep=slept.append) is True
    assert slept == [0.5, 1]
    slept.clear()
    assert retry.retrying(lambda: False, lambda ok: not ok, sleep=slept.append) is False
    assert slept == [0.5, 1, 2, 4]


def test_retrying_never_sleeps_past_the_deadline():
    slept: list[float] = []
    assert retry.retrying(lambda: False, lambda ok: not ok, deadline=0.0, sleep=slept.append) is False
    assert slept == []


@pytest.mark.parametrize(
    "args, safe",
    [
        (("get", "pods"), True),
        (("apply", "--server-side", "-f", "-"), True),
        (("apply", "-f", "-"), False),
        (("create", "-f", "-"), False),
        (("replace", "-f", "-"), False),
        (("delete", "pods", "-l", "x"), True),
        (("rollout", "status", "statefulset/x"), True),
        (("exec", "p", "--", "sh"), False),
        ((), False),
    ],
)
def test_safe_to_repeat(args, safe):
    assert safe_to_repeat(args) is safe


@pytest.mark.parametrize(
    "seconds, text", [(300, "300s"), (1.5, "1.5s"), (86400, "86400s"), (0.0001, "0.001s"), (2 / 3, "0.667s")]
)
def test_kubectl_durations_never_have_an_exponent(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize("text", ["25h", "1441m", "100000h", "86401"])
def test_timeouts_over_a_day_are_refused(text):
    with pytest.raises(PreevyError, match="at most 24h"):
        shared.parse_duration(text, "--timeout")


def test_a_day_is_allowed():
    assert shared.parse_duration("24h", "--timeout") == 86400


def test_a_connection_that_fails_is_not_an_answer():
    assert retry.is_connection_failure("Unable to connect to the server: dial tcp 10.0.0.1:443: i/o timeout")
    assert retry.is_connection_failure("The connection to the server 127.0.0.1:6443 was refused")
    assert not retry.is_connection_failure(TRANSIENT[0])
