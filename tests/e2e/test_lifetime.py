"""ttl, sleep-after, sleep, wake and gc, as a user sees them: objects gone or kept, pages served, ls."""

import json
import time

from tests.e2e import (
    connect,
    environment_objects,
    error_lines,
    hello_project,
    http_get,
    preevy,
    stop,
    up_json,
)


def ls_items(namespace: str, cwd, env) -> dict[str, dict]:
    listed = preevy("ls", "-n", namespace, "-o", "json", cwd=cwd, env=env, check=True)
    return {item["envId"]: item for item in json.loads(listed.stdout)["items"]}


def gc(namespace: str, *flags: str, cwd, env) -> dict:
    result = preevy("gc", "-n", namespace, "-o", "json", *flags, cwd=cwd, env=env, timeout=180, check=True)
    return json.loads(result.stdout)


def annotation(kubesim, namespace: str, statefulset: str, key: str) -> str:
    path = "{.metadata.annotations." + key.replace(".", "\\.").replace("/", "\\/") + "}"
    return kubesim.kubectl("get", "sts", statefulset, "-n", namespace, "-o", f"jsonpath={path}").stdout


def test_ttl_then_gc_deletes_the_environment_and_dry_run_or_keep_do_not(kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    up = up_json("-n", namespace, "--id", "short-lived", "--ttl", "1s", cwd=project, env=env)
    statefulset = up["statefulSet"]
    assert annotation(kubesim, namespace, statefulset, "preevy.dev/expires-at")
    assert annotation(kubesim, namespace, statefulset, "preevy.dev/last-deploy-at")
    time.sleep(1.5)

    item = ls_items(namespace, tmp_path, env)["short-lived"]
    assert (item["state"], item["ready"]) == ("running", "1/1")
    assert sorted(u["service"] for u in item["urls"]) == ["counter", "web"]
    table = preevy("ls", "-n", namespace, cwd=tmp_path, env=env, check=True).stdout
    header, row = table.splitlines()
    assert header.split() == [
        "ENV",
        "ID",
        "INSTANCE",
        "NAMESPACE",
        "STATE",
        "READY",
        "AGE",
        "EXPIRES",
        "URLS",
    ]
    assert row.split()[3:7:3] == ["running", "expired"]

    dry = gc(namespace, "--dry-run", cwd=tmp_path, env=env)
    assert [(i["envId"], i["action"]) for i in dry["items"]] == [("short-lived", "would-delete")]
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=short-lived") != []

    kubesim.kubectl("annotate", "sts", statefulset, "-n", namespace, "preevy.dev/keep=true")
    assert gc(namespace, cwd=tmp_path, env=env)["items"] == []
    assert ls_items(namespace, tmp_path, env)["short-lived"]["state"] == "running"
    kubesim.kubectl("annotate", "sts", statefulset, "-n", namespace, "preevy.dev/keep-")

    # an `up` or `down` of the environment holds its lock: gc leaves it for the next run
    lock = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "preevy-lock-default-short-lived",
            "annotations": {
                "preevy.dev/lock-holder": "`kubectl preevy up` on ci-runner (pid 7)",
                "preevy.dev/lock-expires-at": "2999-01-01T00:00:00Z",
            },
        },
    }
    kubesim.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(lock))
    busy = gc(namespace, cwd=tmp_path, env=env)
    assert [(i["envId"], i["action"], i["reason"]) for i in busy["items"]] == [
        ("short-lived", "skipped", "locked by another run")
    ]
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=short-lived") != []
    kubesim.kubectl("delete", "configmap", "preevy-lock-default-short-lived", "-n", namespace)

    done = gc(namespace, cwd=tmp_path, env=env)
    assert [(i["envId"], i["action"]) for i in done["items"]] == [("short-lived", "deleted")]
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=short-lived") == []
    assert ls_items(namespace, tmp_path, env) == {}


def test_gc_finishes_a_deletion_that_did_not_finish(kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    statefulset = up_json("-n", namespace, "--id", "half-gone", cwd=project, env=env)["statefulSet"]
    # what the interrupted `down` of an earlier version left: the StatefulSet labelled deleted
    kubesim.kubectl("label", "sts", statefulset, "-n", namespace, "preevy.dev/deleted=true")
    assert ls_items(namespace, tmp_path, env)["half-gone"]["state"] == "deleting"

    done = gc(namespace, cwd=tmp_path, env=env)
    assert [(i["envId"], i["action"], i["reason"]) for i in done["items"]] == [
        ("half-gone", "deleted", "its deletion did not finish")
    ]
    assert environment_objects(kubesim, namespace, "preevy.dev/env-id=half-gone") == []


def test_sleep_after_then_gc_sleeps_and_wake_brings_the_same_page_and_data_back(
    kubesim, namespace, env, tmp_path
):
    project = hello_project(tmp_path / "hello")
    flags = ["-n", namespace, "--id", "napper"]
    statefulset = up_json(*flags, "--sleep-after", "1s", cwd=project, env=env)["statefulSet"]
    claim_uid = kubesim.kubectl(
        "get", "pvc", f"data-{statefulset}-0", "-n", namespace, "-o", "jsonpath={.metadata.uid}"
    ).stdout
    served = connect(flags, project, env, services=2)
    try:
        first_urls = served.urls
        page = http_get(served.urls["web"])
        assert http_get(served.urls["counter"]).strip() == b"1"
    finally:
        stop(served.proc)
    time.sleep(1.5)

    done = gc(namespace, cwd=tmp_path, env=env)
    assert [(i["envId"], i["action"]) for i in done["items"]] == [("napper", "slept")]
    assert ls_items(namespace, tmp_path, env)["napper"]["state"] == "sleeping"
    pods = kubesim.kubectl("get", "pods", "-n", namespace, "-o", "name").stdout
    assert f"pod/{statefulset}-0" not in pods
    assert (
        kubesim.kubectl(
            "get", "pvc", f"data-{statefulset}-0", "-n", namespace, "-o", "jsonpath={.metadata.uid}"
        ).stdout
        == claim_uid
    )
    assert gc(namespace, cwd=tmp_path, env=env)["items"] == []  # asleep: nothing more to do

    # wake needs no compose file: the model is in the pod's volume
    woken = preevy("wake", "--id", "napper", "-n", namespace, cwd=tmp_path, env=env, timeout=180, check=True)
    assert "web" in woken.stdout
    assert ls_items(namespace, tmp_path, env)["napper"]["state"] == "running"
    served = connect(flags, project, env, services=2)
    try:
        # the same services; a local port may have moved on if another program took it meanwhile
        assert served.urls.keys() == first_urls.keys()
        assert http_get(served.urls["web"]) == page
        assert http_get(served.urls["counter"]).strip() == b"2"  # the named volume's count survived
    finally:
        stop(served.proc)

    # sleep by hand: connect says how to wake it; then `up` wakes it
    preevy("sleep", *flags, cwd=tmp_path, env=env, timeout=180, check=True)
    assert ls_items(namespace, tmp_path, env)["napper"]["state"] == "sleeping"
    asleep = preevy("connect", *flags, cwd=project, env=env)
    assert asleep.returncode == 1
    assert error_lines(asleep.stderr) == [
        f"error: napper sleeps (scaled to 0): wake it with `kubectl preevy wake --id napper --namespace={namespace}`"
    ]
    again = up_json(*flags, cwd=project, env=env)
    assert again["statefulSet"] == statefulset
    assert ls_items(namespace, tmp_path, env)["napper"]["state"] == "running"
    preevy("down", *flags, cwd=project, env=env, timeout=180, check=True)


def test_bad_lifetime_input_is_one_error_line_and_touches_nothing(kubesim, namespace, env, tmp_path):
    project = hello_project(tmp_path / "hello")
    for args, code, words in (
        (["up", "--ttl", "0s"], 2, 'invalid ttl "0s" (from flag --ttl): must be a duration'),
        (["up", "--sleep-after", "soon"], 2, 'invalid sleep-after "soon" (from flag --sleep-after)'),
        (["sleep", "--id", "nobody"], 1, "no environment nobody in namespace"),
        (["wake", "--id", "nobody"], 1, "no environment nobody in namespace"),
        (["gc", "--timeout", "x"], 2, "invalid --timeout 'x'"),
        (["install", "gc", "--schedule", "every hour"], 2, "invalid --schedule 'every hour'"),
    ):
        result = preevy(*args, "-n", namespace, cwd=project, env=env)
        assert result.returncode == code, (args, result.stderr)
        [line] = error_lines(result.stderr)
        assert words in line, line
    assert kubesim.kubectl("get", "sts,cronjobs,roles", "-n", namespace, "-o", "name").stdout == ""
    env_with_bad = env | {"PREEVY_TTL": "forever"}
    result = preevy("up", "-n", namespace, cwd=project, env=env_with_bad)
    assert result.returncode == 2 and "(from env PREEVY_TTL)" in error_lines(result.stderr)[0]
    everywhere = preevy("gc", "-A", "--dry-run", "-o", "json", cwd=tmp_path, env=env, check=True)
    assert json.loads(everywhere.stdout)["kind"] == "GarbageCollection"
