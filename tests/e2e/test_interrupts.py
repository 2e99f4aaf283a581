"""Interruptions: a real SIGINT/SIGTERM/SIGKILL to the plugin's process group at each step of `up` and
`down`. INT and TERM end with exit 130 and one line saying how to continue; after any of them no child
(kubectl port-forward, exec, rollout status, docker compose) survives, the next run continues, and once
`down` succeeds nothing labelled is left."""

import os
import pathlib
import signal
import time

import pytest

from tests.e2e import environment_objects, error_lines, hello_project, preevy, run_until

UP_STEPS = (
    "> creating environment",
    "> waiting for StatefulSet",
    "> copying files",
    "> docker compose up",
)
DOWN_STEP = "> deleting"
STEP_TIMEOUT = 120


def interrupted_at(args: list[str], step: str, sig: int, cwd: pathlib.Path, env: dict) -> tuple[int, str]:
    """Run kubectl-preevy in a process group of its own; when stderr shows the step, signal the group."""
    result = run_until(args, step, cwd, env, lambda proc: os.killpg(proc.pid, sig), timeout=STEP_TIMEOUT)
    return result.returncode, result.stderr


def survivors(*markers: str, timeout: float = 15) -> list[str]:
    """Command lines of live processes naming one of the markers, once they had time to go."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for entry in pathlib.Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state != "Z" and any(marker in argv for marker in markers):
                found.append(argv)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def assert_interrupted(code: int, stderr: str, sig: int, hint: str) -> None:
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
        return
    assert code == 130, stderr
    lines = error_lines(stderr)
    assert len(lines) == 1 and lines[0].startswith("error: interrupted: run `"), stderr
    assert hint in lines[0], lines[0]
    assert "Traceback" not in stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["INT", "TERM", "KILL"])
def test_interrupted_at_every_step_then_the_next_run_continues(sig, kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    env_id = f"sig-{signal.Signals(sig).name.lower()}"
    flags = ["--id", env_id, "-n", namespace]
    hint = f"--id {env_id} --namespace={namespace}"
    for step in UP_STEPS:
        code, stderr = interrupted_at(["up", *flags, "--timeout", "60s"], step, sig, project, env)
        assert_interrupted(code, stderr, sig, hint)
        assert survivors(namespace, str(project)) == [], f"children left after {step!r}"

    up = preevy("up", *flags, "--timeout", "60s", cwd=project, env=env, timeout=STEP_TIMEOUT)
    assert up.returncode == 0, up.stderr
    if sig == signal.SIGKILL:
        assert "which no longer runs on this machine: taking it over" in up.stderr  # the dead run's lock

    code, stderr = interrupted_at(["down", *flags], DOWN_STEP, sig, project, env)
    assert_interrupted(code, stderr, sig, f"kubectl preevy down {hint}")
    assert survivors(namespace, str(project)) == []
    down = preevy("down", *flags, cwd=project, env=env)
    assert down.returncode == 0, down.stderr
    assert environment_objects(kubesim, namespace, f"preevy.dev/env-id={env_id}") == []
    assert environment_objects(kubesim, namespace, "app.kubernetes.io/managed-by") == []  # the lock too
