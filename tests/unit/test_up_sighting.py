"""The rollout followed for the moment the pod's container runs (commands/up.py's _Sighting), without a cluster:
the rollout is a function given the pods a look would read."""

import threading

import pytest

from kubectl_preevy.commands.up import _Sighting
from kubectl_preevy.environment import Environment
from kubectl_preevy.errors import ExitCode, PreevyError

ENV = Environment(
    {
        "kind": "StatefulSet",
        "metadata": {"name": "x", "namespace": "ns"},
        "spec": {"template": {"spec": {"containers": [{"name": "docker"}, {"name": "sidecar"}]}}},
    }
)


def pod(uid: str, **states: dict) -> dict:
    statuses = [{"name": name, "state": state} for name, state in states.items()]
    return {"metadata": {"name": "x-0", "uid": uid}, "status": {"containerStatuses": statuses}}


def test_the_work_begins_once_the_first_container_runs_and_only_in_that_pod():
    sighting = _Sighting(ENV)
    rolled = threading.Event()

    def rollout(on_pod):
        assert not on_pod(
            pod("u1", docker={"waiting": {"reason": "ContainerCreating"}}, sidecar={"running": {}})
        )
        assert on_pod(pod("u1", docker={"running": {}}))
        rolled.wait(5)

    follower = threading.Thread(target=sighting.follow, args=(rollout,))
    follower.start()
    assert sighting.runs()  # before the rollout ended
    assert not sighting.given_up()
    rolled.set()
    follower.join(5)
    assert sighting.same_pod(pod("u1"))
    assert not sighting.same_pod(pod("u2"))  # replaced before it was Ready: the work is done again


def test_a_rollout_that_ends_before_any_look_lets_the_work_begin_after_it():
    sighting = _Sighting(ENV)
    sighting.follow(lambda on_pod: None)
    assert sighting.runs() and sighting.same_pod(pod("any"))


def test_a_rollout_that_fails_stops_the_work_and_is_raised():
    sighting = _Sighting(ENV)

    def rollout(on_pod):
        on_pod({**pod("u1", docker={"running": {}}), "metadata": {"uid": "u1", "deletionTimestamp": "t"}})
        raise PreevyError("not ready", ExitCode.TIMEOUT)

    with pytest.raises(PreevyError):
        sighting.follow(rollout)
    assert not sighting.runs() and sighting.given_up()
