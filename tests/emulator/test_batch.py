"""batch/v1 Jobs and CronJobs, and pods' in-cluster identity, driven by the real kubectl."""

from __future__ import annotations

import datetime
import json
from typing import Any

import yaml

from tests.emulator.test_node_kubelet import _until
from tests.kubesim import cron

UTC = datetime.timezone.utc


def _ts(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(sim, *args):
    return json.loads(sim.kubectl(*args, "-o", "json").stdout)


def _conditions(job: dict) -> dict[str, tuple[str, str]]:
    return {
        c["type"]: (c["status"], c.get("reason", "")) for c in job.get("status", {}).get("conditions", [])
    }


def test_cronjob_then_a_job_created_from_it_runs_to_completion(kubesim, namespace):
    kubesim.set_cron_clock("2026-01-01T00:00:00Z")  # before the CronJob was created: no run is due
    created = kubesim.kubectl(
        "create", "cronjob", "hello", "-n", namespace, "--image=busybox:1.36", "--schedule=*/30 * * * *",
        "--", "sh", "-c", "echo hello from $(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)",
    )  # fmt: skip
    assert created.stdout.strip() == "cronjob.batch/hello created"
    cronjob = _json(kubesim, "get", "cronjob", "hello", "-n", namespace)
    assert cronjob["spec"]["concurrencyPolicy"] == "Allow"
    assert cronjob["spec"]["successfulJobsHistoryLimit"] == 3
    table = kubesim.kubectl("get", "cronjobs", "-n", namespace).stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST",
        "SCHEDULE",
        "AGE",
    ]
    assert table[1].split()[:6] == ["hello", "*/30", "*", "*", "*", "*"]

    made = kubesim.kubectl("create", "job", "manual", "--from=cronjob/hello", "-n", namespace)
    assert made.stdout.strip() == "job.batch/manual created"
    kubesim.kubectl("wait", "--for=condition=complete", "job/manual", "-n", namespace, "--timeout=60s")
    job = _json(kubesim, "get", "job", "manual", "-n", namespace)
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert _conditions(job) == {
        "SuccessCriteriaMet": ("True", "CompletionsReached"),
        "Complete": ("True", "CompletionsReached"),
    }
    assert job["status"]["succeeded"] == 1 and job["status"]["completionTime"]
    pods = _json(kubesim, "get", "pods", "-n", namespace, "-l", "job-name=manual")["items"]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]
    assert kubesim.kubectl("logs", "job/manual", "-n", namespace).stdout == f"hello from {namespace}\n"
    row = kubesim.kubectl("get", "job", "manual", "-n", namespace, "--no-headers").stdout.split()
    assert row[:3] == ["manual", "Complete", "1/1"]
    reasons = kubesim.kubectl(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=manual",
        "-o", "jsonpath={.items[*].reason}",
    ).stdout.split()  # fmt: skip
    assert "SuccessfulCreate" in reasons and "Completed" in reasons

    kubesim.kubectl("delete", "job", "manual", "-n", namespace, "--wait=true", "--timeout=60s")
    _until(lambda: not _json(kubesim, "get", "pods", "-n", namespace)["items"], what="the job's pods gone")


def test_a_failing_job_fails_after_its_backoff_limit_and_a_bad_one_is_refused(kubesim, namespace):
    manifest: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "broken", "namespace": namespace},
        "spec": {
            "backoffLimit": 1,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "exit 3"]}],
                }
            },
        },
    }
    kubesim.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    kubesim.kubectl("wait", "--for=condition=failed", "job/broken", "-n", namespace, "--timeout=60s")
    job = _json(kubesim, "get", "job", "broken", "-n", namespace)
    assert _conditions(job)["Failed"] == ("True", "BackoffLimitExceeded")
    assert job["status"]["failed"] == 2
    assert (
        kubesim.kubectl("get", "job", "broken", "-n", namespace, "--no-headers").stdout.split()[1] == "Failed"
    )

    manifest["metadata"]["name"] = "always"
    manifest["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    refused = kubesim.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest), check=False)
    assert refused.returncode == 1
    assert (
        'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"'
        in (refused.stderr)
    )
    bad = kubesim.kubectl(
        "create", "cronjob", "bad", "-n", namespace, "--image=busybox", "--schedule=61 * * * *", check=False
    )
    assert bad.returncode == 1
    assert (
        'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61' in bad.stderr
    )


def test_a_pod_reaches_the_api_as_its_service_account_under_rbac(kubesim, namespace):
    kubesim.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    kubesim.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", namespace)
    kubesim.kubectl(
        "create",
        "rolebinding",
        "reader",
        "--role=pod-reader",
        f"--serviceaccount={namespace}:reader",
        "-n",
        namespace,
    )
    script = (
        "ls /var/run/secrets/kubernetes.io/serviceaccount; "
        "echo host=$KUBERNETES_SERVICE_HOST port=$KUBERNETES_SERVICE_PORT; "
        "kubectl get pods -o name; "
        "kubectl get secrets 2>&1; "
        "kubectl auth whoami -o jsonpath='{.status.userInfo.username}'"
    )
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "whoami", "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "serviceAccountName": "reader",
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "main",
                            "image": "bitnami/kubectl:1.32",
                            "command": ["sh", "-c", script],
                            "env": [{"name": "HOME", "value": "/tmp"}],
                        }
                    ],
                }
            },
        },
    }
    kubesim.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    kubesim.kubectl("wait", "--for=condition=complete", "job/whoami", "-n", namespace, "--timeout=60s")
    out = kubesim.kubectl("logs", "job/whoami", "-n", namespace).stdout.splitlines()
    assert out[:3] == ["ca.crt", "namespace", "token"]
    assert out[3] == "host=127.0.0.1 port=443"
    pod = _json(kubesim, "get", "pods", "-n", namespace, "-l", "job-name=whoami")["items"][0]
    assert out[4] == f"pod/{pod['metadata']['name']}"
    assert out[5] == (
        f'Error from server (Forbidden): secrets is forbidden: User "system:serviceaccount:{namespace}:reader" '
        f'cannot list resource "secrets" in API group "" in the namespace "{namespace}"'
    )
    assert out[6] == f"system:serviceaccount:{namespace}:reader"
    volumes = [v["name"] for v in pod["spec"]["volumes"]]
    assert len(volumes) == 1 and volumes[0].startswith("kube-api-access-")
    assert (
        pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"]
        == "/var/run/secrets/kubernetes.io/serviceaccount"
    )


def test_cron_schedules():
    utc = UTC
    at = datetime.datetime(2026, 11, 27, 10, 7, tzinfo=utc)  # a Friday
    assert cron.parse("*/30 * * * *").next_after(at) == at.replace(minute=30)
    assert cron.parse("0 9 * * mon-fri").next_after(at) == datetime.datetime(2026, 11, 30, 9, 0, tzinfo=utc)
    assert cron.parse("@monthly").next_after(at) == datetime.datetime(2026, 12, 1, tzinfo=utc)
    assert cron.parse("0 0 13 * 5").next_after(at) == datetime.datetime(
        2026, 12, 4, tzinfo=utc
    )  # 13th OR Friday
    assert cron.parse("0 0 * * 7").next_after(at) == datetime.datetime(
        2026, 11, 29, tzinfo=utc
    )  # 7 is Sunday
    hourly = cron.parse("5 * * * *")
    assert hourly.most_recent(at - datetime.timedelta(hours=2), at) == (at.replace(minute=5), 2)
    assert hourly.most_recent(at - datetime.timedelta(minutes=10), at) == (at.replace(minute=5), 0)
    assert hourly.most_recent(at, at) == (None, 0)
    weekly = cron.parse("0 0 * * 0")  # missed for 30 days: the latest Sunday, past the last day
    assert weekly.most_recent(at - datetime.timedelta(days=30), at) == (
        datetime.datetime(2026, 11, 22, tzinfo=utc),
        4,
    )
    minutely = cron.parse("* * * * *")  # missed for a day: more than 100 (TooManyMissedTimes)
    assert minutely.most_recent(at - datetime.timedelta(days=1), at) == (at, 1440)
    for bad, message in (
        ("x", "expected exactly 5 fields, found 1: [x]"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("TZ=UTC * * * * *", "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
    ):
        try:
            cron.parse(bad)
        except cron.ScheduleError as e:
            assert str(e) == message
        else:
            raise AssertionError(bad)


def test_a_cronjob_starts_the_job_that_is_due_and_forbid_skips_while_it_runs(kubesim, namespace):
    # The controller's clock stands still where the test puts it: nothing depends on where the
    # wall-clock minute falls. Ten minutes ahead, as if the controller had been down that long.
    due = (datetime.datetime.now(UTC) + datetime.timedelta(minutes=10)).replace(second=0, microsecond=0)
    kubesim.set_cron_clock(_ts(due + datetime.timedelta(seconds=30)))
    pod_spec = {
        "restartPolicy": "Never",
        "containers": [{"name": "tick", "image": "busybox", "command": ["sleep", "3600"]}],
    }
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "tick", "namespace": namespace},
        "spec": {
            "schedule": "* * * * *",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": pod_spec}}},
        },
    }
    kubesim.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))

    def status() -> dict:
        return _json(kubesim, "get", "cronjob", "tick", "-n", namespace).get("status", {})

    def events(reason: str) -> list[tuple[str, str]]:
        items = _json(
            kubesim, "get", "events", "-n", namespace,
            "--field-selector", f"involvedObject.name=tick,reason={reason}",
        )["items"]  # fmt: skip
        return [(e["type"], e["message"]) for e in items]

    def jobs() -> list[str]:
        return sorted(j["metadata"]["name"] for j in _json(kubesim, "get", "jobs", "-n", namespace)["items"])

    [ref] = _until(lambda: status().get("active"), what="the due job")
    first = f"tick-{int(due.timestamp() // 60)}"
    assert ref["name"] == first and ref["kind"] == "Job"
    job = _json(kubesim, "get", "job", first, "-n", namespace)
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == _ts(due)
    assert job["metadata"]["ownerReferences"][0]["name"] == "tick"
    assert status()["lastScheduleTime"] == _ts(due)
    assert events("SuccessfulCreate") == [("Normal", f"Created job {first}")]

    # A minute on, the next run is due while the first one runs: Forbid skips it, says so, and
    # leaves lastScheduleTime where it was.
    kubesim.set_cron_clock(_ts(due + datetime.timedelta(seconds=90)))
    skipped = _until(lambda: events("JobAlreadyActive"), what="JobAlreadyActive")
    assert skipped == [
        ("Normal", "Not starting job because prior execution is running and concurrency policy is Forbid")
    ]
    now = status()
    assert now["lastScheduleTime"] == _ts(due) and [r["name"] for r in now["active"]] == [first]
    assert jobs() == [first]

    # The first run fails: the run that was skipped starts at once (it is still unmet).
    pod = _until(
        lambda: [
            p["metadata"]["name"]
            for p in _json(kubesim, "get", "pods", "-n", namespace, "-l", f"job-name={first}")["items"]
            if p["status"].get("phase") == "Running"
        ],
        what="the first job's pod running",
    )[0]
    kubesim.kill_container(namespace, pod, "tick")
    second = f"tick-{int(due.timestamp() // 60) + 1}"
    _until(lambda: [r["name"] for r in status().get("active", [])] == [second], what="the skipped run")
    assert status()["lastScheduleTime"] == _ts(due + datetime.timedelta(minutes=1))
    assert events("SawCompletedJob") == [("Normal", f"Saw completed job: {first}, condition: Failed")]
    assert jobs() == [first, second]

    kubesim.kubectl("delete", "cronjob", "tick", "-n", namespace, "--cascade=foreground", "--timeout=60s")
    assert jobs() == []


def test_a_job_whose_pod_pod_security_refuses_says_so_in_a_failed_create_event(kubesim, namespace):
    kubesim.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    kubesim.kubectl("create", "job", "plain", "-n", namespace, "--image=busybox", "--", "true")

    def failed_create() -> str:
        return kubesim.kubectl(
            "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=plain,reason=FailedCreate",
            "-o", "jsonpath={.items[*].message}",
        ).stdout  # fmt: skip

    message = _until(failed_create, what="FailedCreate")
    assert message.startswith('Error creating: pods "plain-')
    assert 'is forbidden: violates PodSecurity "restricted:latest"' in message
    assert _json(kubesim, "get", "pods", "-n", namespace)["items"] == []
