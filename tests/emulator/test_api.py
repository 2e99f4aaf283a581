"""The API half of kubesim, driven end to end by the real kubectl."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from . import manifests


def _json(sim, *args):
    return json.loads(sim.kubectl(*args, "-o", "json").stdout)


def _http(sim, method, path, body=None, ctype="application/json", timeout=30):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(sim.url + path, data=data, method=method, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _apply_bundle(sim, ns, **kw):
    return sim.kubectl(
        "apply",
        "--server-side",
        "--field-manager=kubectl-preevy",
        "-n",
        ns,
        "-f",
        "-",
        input=manifests.bundle(**kw),
    )


def _until(pred, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# ---------------------------------------------------------------- basics


def test_version(kubesim):
    out = json.loads(kubesim.kubectl("version", "-o", "json").stdout)
    assert out["serverVersion"]["gitVersion"] == "v1.32.4"
    assert (out["serverVersion"]["major"], out["serverVersion"]["minor"]) == ("1", "32")


def test_auth_can_i(kubesim, namespace):
    assert kubesim.kubectl("auth", "can-i", "create", "pods", "-n", namespace).stdout.strip() == "yes"


def test_openapi_v2_is_404_and_v3_declares_field_validation(kubesim):
    assert _http(kubesim, "GET", "/openapi/v2")[0] == 404
    _code, body = _http(kubesim, "GET", "/openapi/v3")
    url = json.loads(body)["paths"]["apis/apps/v1"]["serverRelativeURL"]
    doc = json.loads(_http(kubesim, "GET", url)[1])
    op = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}"]["patch"]
    assert any(p["name"] == "fieldValidation" for p in op["parameters"])


# ---------------------------------------------------------------- server-side apply


def test_server_side_apply_bundle_and_reapply(kubesim, namespace):
    out = _apply_bundle(kubesim, namespace).stdout.splitlines()
    assert out == [
        "serviceaccount/demo serverside-applied",
        "configmap/demo serverside-applied",
        "statefulset.apps/demo serverside-applied",
        "role.rbac.authorization.k8s.io/demo serverside-applied",
        "rolebinding.rbac.authorization.k8s.io/demo serverside-applied",
    ]
    kubesim.kubectl("rollout", "status", "statefulset/demo", "-n", namespace, "--timeout=60s")
    sts = _json(kubesim, "get", "sts", "demo", "-n", namespace, "--show-managed-fields")
    assert sts["metadata"]["generation"] == 1
    assert sts["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert sts["spec"]["podManagementPolicy"] == "OrderedReady"
    managers = {m["manager"] for m in sts["metadata"]["managedFields"]}
    assert "kubectl-preevy" in managers
    rv = sts["metadata"]["resourceVersion"]

    _apply_bundle(kubesim, namespace)  # same manifest: nothing changes
    sts = _json(kubesim, "get", "sts", "demo", "-n", namespace)
    assert sts["metadata"]["generation"] == 1 and sts["metadata"]["resourceVersion"] == rv

    _apply_bundle(kubesim, namespace, replicas=2)
    sts = _json(kubesim, "get", "sts", "demo", "-n", namespace)
    assert sts["metadata"]["generation"] == 2
    kubesim.kubectl("rollout", "status", "statefulset/demo", "-n", namespace, "--timeout=60s")
    pods = _json(kubesim, "get", "pods", "-n", namespace, "-l", "app=demo")["items"]
    assert sorted(p["metadata"]["name"] for p in pods) == ["demo-0", "demo-1"]
    pod = pods[0]
    labels = pod["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "demo-0"
    assert labels["apps.kubernetes.io/pod-index"] == "0"
    assert (
        labels["controller-revision-hash"]
        == _json(kubesim, "get", "sts", "demo", "-n", namespace)["status"]["updateRevision"]
    )
    ref = pod["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"], ref["blockOwnerDeletion"]) == (
        "StatefulSet",
        "demo",
        True,
        True,
    )
    vol = next(v for v in pod["spec"]["volumes"] if v["name"] == "data")
    assert vol["persistentVolumeClaim"]["claimName"] == "data-demo-0"
    pvc = _json(kubesim, "get", "pvc", "data-demo-0", "-n", namespace)
    assert pvc["metadata"]["labels"] == {"tier": "storage", "app": "demo"}
    assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["storageClassName"] == "standard"
    assert (kubesim.state_dir / "volumes" / namespace / "data-demo-0").is_dir()


def test_server_side_apply_conflict(kubesim, namespace):
    cm = manifests.configmap("shared", data={"k": "1"})
    kubesim.kubectl("apply", "--server-side", "--field-manager=alice", "-n", namespace, "-f", "-", input=cm)
    other = manifests.configmap("shared", data={"k": "2"})
    res = kubesim.kubectl(
        "apply", "--server-side", "--field-manager=bob", "-n", namespace, "-f", "-", input=other, check=False
    )
    assert res.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "alice"' in res.stderr and ".data.k" in res.stderr
    kubesim.kubectl(
        "apply",
        "--server-side",
        "--field-manager=bob",
        "--force-conflicts",
        "-n",
        namespace,
        "-f",
        "-",
        input=other,
    )
    assert _json(kubesim, "get", "cm", "shared", "-n", namespace)["data"] == {"k": "2"}
    # the same value from another manager is shared ownership, not a conflict
    kubesim.kubectl(
        "apply", "--server-side", "--field-manager=carol", "-n", namespace, "-f", "-", input=other
    )


def test_server_side_apply_removes_fields_it_no_longer_applies(kubesim, namespace):
    kubesim.kubectl(
        "apply",
        "--server-side",
        "--field-manager=m",
        "-n",
        namespace,
        "-f",
        "-",
        input=manifests.configmap("c", labels={"a": "1", "b": "2"}, data={"x": "1", "y": "2"}),
    )
    kubesim.kubectl(
        "apply",
        "--server-side",
        "--field-manager=m",
        "-n",
        namespace,
        "-f",
        "-",
        input=manifests.configmap("c", labels={"a": "1"}, data={"x": "1"}),
    )
    cm = _json(kubesim, "get", "cm", "c", "-n", namespace)
    assert cm["data"] == {"x": "1"} and cm["metadata"]["labels"] == {"a": "1"}


# ---------------------------------------------------------------- client-side apply, create


def test_client_side_apply(kubesim, namespace):
    cm = manifests.configmap("csa", data={"k": "v"})
    assert (
        kubesim.kubectl("apply", "-n", namespace, "-f", "-", input=cm).stdout.strip()
        == "configmap/csa created"
    )
    assert (
        kubesim.kubectl("apply", "-n", namespace, "-f", "-", input=cm).stdout.strip()
        == "configmap/csa unchanged"
    )
    cm2 = manifests.configmap("csa", data={"k": "v2"})
    assert (
        kubesim.kubectl("apply", "-n", namespace, "-f", "-", input=cm2).stdout.strip()
        == "configmap/csa configured"
    )
    got = _json(kubesim, "get", "cm", "csa", "-n", namespace)
    assert got["data"] == {"k": "v2"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in got["metadata"]["annotations"]


def test_create_twice_is_already_exists(kubesim, namespace):
    cm = manifests.configmap("twice")
    assert (
        kubesim.kubectl("create", "-n", namespace, "-f", "-", input=cm).stdout.strip()
        == "configmap/twice created"
    )
    res = kubesim.kubectl("create", "-n", namespace, "-f", "-", input=cm, check=False)
    assert res.returncode == 1
    assert (
        'Error from server (AlreadyExists): error when creating "STDIN": configmaps "twice" already exists'
        in res.stderr
    )


def test_typed_create_commands(kubesim, namespace):
    """kubectl create <kind> sends protobuf bodies."""
    kubesim.kubectl("create", "configmap", "lit", "--from-literal=a=b", "-n", namespace)
    assert _json(kubesim, "get", "cm", "lit", "-n", namespace)["data"] == {"a": "b"}
    kubesim.kubectl("create", "secret", "generic", "s", "--from-literal=p=q", "-n", namespace)
    assert _json(kubesim, "get", "secret", "s", "-n", namespace)["data"] == {"p": "cQ=="}
    kubesim.kubectl("create", "serviceaccount", "robot", "-n", namespace)
    kubesim.kubectl("create", "deployment", "web", "--image=busybox:1.36", "--replicas=0", "-n", namespace)
    assert _json(kubesim, "get", "deploy", "web", "-n", namespace)["spec"]["replicas"] == 0


# ---------------------------------------------------------------- selectors


def test_label_selectors(kubesim, namespace):
    for name, labels in (("a", {"tier": "web", "env": "prod"}), ("b", {"tier": "db"}), ("c", {"env": "dev"})):
        kubesim.kubectl(
            "apply",
            "--server-side",
            "--field-manager=t",
            "-n",
            namespace,
            "-f",
            "-",
            input=manifests.configmap(name, labels=labels),
        )

    def names(selector):
        items = _json(kubesim, "get", "cm", "-n", namespace, "-l", selector)["items"]
        return sorted(i["metadata"]["name"] for i in items if i["metadata"]["name"] in "abc")

    assert names("tier=web") == ["a"]
    assert names("tier==db") == ["b"]
    assert names("tier!=web") == ["b", "c"]
    assert names("tier") == ["a", "b"]
    assert names("!tier") == ["c"]
    assert names("tier in (web,db)") == ["a", "b"]
    assert names("tier notin (web)") == ["b", "c"]
    assert names("tier,env") == ["a"]
    assert names("tier=web,env=dev") == []


def test_list_items_carry_no_kind_as_the_api_server_writes_them(kubesim, namespace):
    kubesim.kubectl("create", "-n", namespace, "-f", "-", input=manifests.configmap("listed"))
    raw = json.loads(kubesim.kubectl("get", "--raw", f"/api/v1/namespaces/{namespace}/configmaps").stdout)
    assert raw["kind"] == "ConfigMapList" and raw["apiVersion"] == "v1"
    assert raw["items"] and all(not set(item) & {"kind", "apiVersion"} for item in raw["items"])
    printed = _json(kubesim, "get", "cm", "-n", namespace, "listed")
    assert (printed["kind"], printed["apiVersion"]) == ("ConfigMap", "v1")  # a single object carries them
    listed = _json(kubesim, "get", "cm", "-n", namespace)["items"]
    assert {(item["kind"], item["apiVersion"]) for item in listed} == {
        ("ConfigMap", "v1")
    }  # kubectl sets them


def test_field_selectors(kubesim, namespace):
    kubesim.kubectl("create", "-n", namespace, "-f", "-", input=manifests.configmap("f1"))
    kubesim.kubectl("create", "-n", namespace, "-f", "-", input=manifests.configmap("f2"))
    got = _json(kubesim, "get", "cm", "-n", namespace, "--field-selector", "metadata.name=f1")["items"]
    assert [i["metadata"]["name"] for i in got] == ["f1"]
    got = _json(kubesim, "get", "cm", "-n", namespace, "--field-selector", "metadata.name!=f1")["items"]
    assert "f1" not in [i["metadata"]["name"] for i in got] and "f2" in [i["metadata"]["name"] for i in got]
    got = _json(
        kubesim, "get", "cm", "-A", "--field-selector", f"metadata.namespace={namespace},metadata.name=f2"
    )["items"]
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in got] == [(namespace, "f2")]


# ---------------------------------------------------------------- rollout, wait


def test_rollout_status_times_out_while_pod_unready(kubesim, namespace):
    kubesim.hold_unready(namespace, "slow-0")
    kubesim.kubectl(
        "apply",
        "--server-side",
        "--field-manager=t",
        "-n",
        namespace,
        "-f",
        "-",
        input=manifests.statefulset("slow", app="slow"),
    )
    res = kubesim.kubectl(
        "rollout", "status", "statefulset/slow", "-n", namespace, "--timeout=4s", check=False
    )
    assert res.returncode == 1
    assert "timed out waiting for the condition" in res.stderr
    sts = _json(kubesim, "get", "sts", "slow", "-n", namespace)
    assert sts["status"].get("readyReplicas", 0) == 0
    kubesim.hold_unready(namespace, "slow-0", hold=False)
    kubesim.kubectl("rollout", "status", "statefulset/slow", "-n", namespace, "--timeout=60s")


def test_ordered_ready_waits_for_previous_pod(kubesim, namespace):
    kubesim.hold_unready(namespace, "ord-0")
    kubesim.kubectl(
        "apply",
        "--server-side",
        "--field-manager=t",
        "-n",
        namespace,
        "-f",
        "-",
        input=manifests.statefulset("ord", replicas=2, app="ord"),
    )
    _until(
        lambda: kubesim.kubectl("get", "pod", "ord-0", "-n", namespace, check=False).returncode == 0,
        what="ord-0",
    )
    time.sleep(2)
    assert kubesim.kubectl("get", "pod", "ord-1", "-n", namespace, check=False).returncode == 1
    kubesim.hold_unready(namespace, "ord-0", hold=False)
    kubesim.kubectl("rollout", "status", "statefulset/ord", "-n", namespace, "--timeout=60s")
    assert _json(kubesim, "get", "sts", "ord", "-n", namespace)["status"]["readyReplicas"] == 2


def test_wait_for_ready_and_delete(kubesim, namespace):
    kubesim.kubectl(
        "apply",
        "--server-side",
        "--field-manager=t",
        "-n",
        namespace,
        "-f",
        "-",
        input=manifests.statefulset("w", app="w"),
    )
    _until(lambda: _json(kubesim, "get", "pods", "-n", namespace, "-l", "app=w")["items"], what="pod w-0")
    out = kubesim.kubectl(
        "wait", "--for=condition=Ready", "pod", "-l", "app=w", "-n", namespace, "--timeout=60s"
    ).stdout
    assert "pod/w-0 condition met" in out
    uid = _json(kubesim, "get", "pod", "w-0", "-n", namespace)["metadata"]["uid"]
    kubesim.kubectl("delete", "pod", "w-0", "-n", namespace)  # waits until it is really gone
    # the controller recreates it
    kubesim.kubectl("rollout", "status", "statefulset/w", "-n", namespace, "--timeout=60s")
    assert _json(kubesim, "get", "pod", "w-0", "-n", namespace)["metadata"]["uid"] != uid
    kubesim.kubectl("delete", "sts", "w", "-n", namespace, "--wait=false")
    kubesim.kubectl(
        "wait", "--for=delete", "pod/w-0", "-n", namespace, "--timeout=60s"
    )  # (silent if already gone)
    assert kubesim.kubectl("get", "pod", "w-0", "-n", namespace, check=False).returncode == 1


# ---------------------------------------------------------------- delete, scale, roll


def test_delete_by_label_across_types(kubesim, namespace):
    _apply_bundle(kubesim, namespace)
    kubesim.kubectl("rollout", "status", "statefulset/demo", "-n", namespace, "--timeout=60s")
    vol = kubesim.state_dir / "volumes" / namespace / "data-demo-0"
    assert vol.is_dir()
    out = kubesim.kubectl(
        "delete",
        "sts,cm,sa,role,rolebinding,pvc",
        "-l",
        "app=demo",
        "-n",
        namespace,
        "--wait=true",
        "--timeout=60s",
    ).stdout
    assert 'statefulset.apps "demo" deleted' in out and 'persistentvolumeclaim "data-demo-0" deleted' in out
    left = kubesim.kubectl(
        "get", "sts,pods,cm,sa,role,rolebinding,pvc", "-l", "app=demo", "-n", namespace, "-o", "name"
    ).stdout
    assert left.strip() == ""
    _until(lambda: not vol.exists(), timeout=30, what="the PVC directory to go")


def test_deleting_statefulset_keeps_pvcs(kubesim, namespace):
    kubesim.kubectl(
        "apply",
        "--server-side",
        "--field-manager=t",
        "-n",
        namespace,
        "-f",
        "-",
        input=manifests.statefulset("keep", app="keep"),
    )
    kubesim.kubectl("rollout", "status", "statefulset/keep", "-n", namespace, "--timeout=60s")
    kubesim.kubectl("delete", "sts", "keep", "-n", namespace)
    kubesim.kubectl("wait", "--for=delete", "pod/keep-0", "-n", namespace, "--timeout=60s")
    assert (
        kubesim.kubectl("get", "pods", "-n", namespace, "-l", "app=keep", "-o", "name").stdout.strip() == ""
    )
    assert kubesim.kubectl("get", "pvc", "-n", namespace, "-o", "name").stdout.split() == [
        "persistentvolumeclaim/data-keep-0"
    ]
    assert (kubesim.state_dir / "volumes" / namespace / "data-keep-0").is_dir()


def test_scale_to_zero_keeps_pvcs(kubesim, namespace):
    kubesim.kubectl(
        "apply",
        "--server-side",
        "--field-manager=t",
        "-n",
        namespace,
        "-f",
        "-",
        input=manifests.statefulset("sc", replicas=2, app="sc"),
    )
    kubesim.kubectl("rollout", "status", "statefulset/sc", "-n", namespace, "--timeout=60s")
    kubesim.kubectl("scale", "sts", "sc", "--replicas=0", "-n", namespace)
    _until(
        lambda: not _json(kubesim, "get", "pods", "-n", namespace, "-l", "app=sc")["items"], what="pods to go"
    )
    assert sorted(kubesim.kubectl("get", "pvc", "-n", namespace, "-o", "name").stdout.split()) == [
        "persistentvolumeclaim/data-sc-0",
        "persistentvolumeclaim/data-sc-1",
    ]
    kubesim.kubectl("rollout", "status", "statefulset/sc", "-n", namespace, "--timeout=60s")
    assert _json(kubesim, "get", "sts", "sc", "-n", namespace)["status"]["replicas"] == 0


def test_template_change_rolls_the_pod(kubesim, namespace):
    def apply(rev):
        kubesim.kubectl(
            "apply",
            "--server-side",
            "--field-manager=t",
            "-n",
            namespace,
            "-f",
            "-",
            input=manifests.statefulset("roll", app="roll", annotation=rev),
        )

    apply("1")
    kubesim.kubectl("rollout", "status", "statefulset/roll", "-n", namespace, "--timeout=60s")
    before = _json(kubesim, "get", "pod", "roll-0", "-n", namespace)["metadata"]
    apply("2")
    kubesim.kubectl("rollout", "status", "statefulset/roll", "-n", namespace, "--timeout=60s")
    after = _json(kubesim, "get", "pod", "roll-0", "-n", namespace)["metadata"]
    assert after["uid"] != before["uid"]
    assert after["labels"]["controller-revision-hash"] != before["labels"]["controller-revision-hash"]
    assert after["annotations"] == {"rev": "2"}
    sts = _json(kubesim, "get", "sts", "roll", "-n", namespace)
    assert (
        sts["status"]["currentRevision"]
        == sts["status"]["updateRevision"]
        == after["labels"]["controller-revision-hash"]
    )
    reasons = kubesim.kubectl(
        "get", "events", "-n", namespace, "-o", "jsonpath={.items[*].reason}"
    ).stdout.split()
    assert "SuccessfulCreate" in reasons and "SuccessfulDelete" in reasons


def test_strategic_merge_patch_merges_containers_by_name(kubesim, namespace):
    kubesim.kubectl(
        "apply",
        "--server-side",
        "--field-manager=t",
        "-n",
        namespace,
        "-f",
        "-",
        input=manifests.statefulset("smp", app="smp"),
    )
    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "main", "env": [{"name": "A", "value": "1"}]}]}}
        }
    }
    kubesim.kubectl("patch", "sts", "smp", "-n", namespace, "--type=strategic", "-p", json.dumps(patch))
    c = _json(kubesim, "get", "sts", "smp", "-n", namespace)["spec"]["template"]["spec"]["containers"]
    assert (
        len(c) == 1 and c[0]["command"] == ["sleep", "3600"] and c[0]["env"] == [{"name": "A", "value": "1"}]
    )
    kubesim.kubectl(
        "patch",
        "sts",
        "smp",
        "-n",
        namespace,
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/replicas","value":0}]',
    )
    assert _json(kubesim, "get", "sts", "smp", "-n", namespace)["spec"]["replicas"] == 0


def test_pod_spec_is_immutable(kubesim, namespace):
    kubesim.kubectl(
        "apply",
        "--server-side",
        "--field-manager=t",
        "-n",
        namespace,
        "-f",
        "-",
        input=manifests.statefulset("imm", app="imm"),
    )
    kubesim.kubectl("rollout", "status", "statefulset/imm", "-n", namespace, "--timeout=60s")
    res = kubesim.kubectl(
        "patch",
        "pod",
        "imm-0",
        "-n",
        namespace,
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/containers/0/command","value":["sleep","5"]}]',
        check=False,
    )
    assert res.returncode == 1
    assert 'The Pod "imm-0" is invalid: spec: Forbidden: pod updates may not change fields' in res.stderr
    kubesim.kubectl("label", "pod", "imm-0", "-n", namespace, "extra=yes")


# ---------------------------------------------------------------- errors


def test_error_messages(kubesim, namespace):
    res = kubesim.kubectl("get", "sts", "nope", "-n", namespace, check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == 'Error from server (NotFound): statefulsets.apps "nope" not found'
    res = kubesim.kubectl("get", "cm", "nope", "-n", namespace, check=False)
    assert res.stderr.strip() == 'Error from server (NotFound): configmaps "nope" not found'

    res = kubesim.kubectl(
        "create", "-n", namespace, "-f", "-", input=manifests.configmap("Bad_Name"), check=False
    )
    assert res.returncode == 1
    assert (
        'The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain'
        in res.stderr
    )
    res = kubesim.kubectl(
        "create",
        "-n",
        namespace,
        "-f",
        "-",
        check=False,
        input='{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}',
    )
    assert (
        'The ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required'
        in res.stderr
    )

    code, body = _http(
        kubesim,
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}},
    )
    status = json.loads(body)
    assert code == 422 and status["reason"] == "Invalid" and status["details"]["causes"][0]["field"] == "kind"
    code, body = _http(kubesim, "POST", f"/api/v1/namespaces/{namespace}/configmaps", b"{not json")
    assert code == 400 and json.loads(body)["reason"] == "BadRequest"
    code, body = _http(kubesim, "PUT", f"/api/v1/namespaces/{namespace}/configmaps")
    assert code == 405 and json.loads(body)["reason"] == "MethodNotAllowed"
    code, body = _http(kubesim, "GET", "/apis/apps/v1/namespaces/x/widgets")
    assert code == 404 and json.loads(body)["reason"] == "NotFound"

    res = kubesim.kubectl(
        "create",
        "-f",
        "-",
        "-n",
        namespace,
        check=False,
        input='{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"u"},"datta":{}}',
    )
    assert 'strict decoding error: unknown field "datta"' in res.stderr

    res = kubesim.kubectl(
        "create",
        "--raw",
        f"/api/v1/namespaces/{namespace}/configmaps",
        "-f",
        "-",
        check=False,
        input="{not json",
    )
    assert res.returncode == 1 and "BadRequest" in res.stderr


def test_put_with_stale_resource_version_conflicts(kubesim, namespace):
    kubesim.kubectl("create", "-n", namespace, "-f", "-", input=manifests.configmap("rv"))
    cm = _json(kubesim, "get", "cm", "rv", "-n", namespace)
    kubesim.kubectl("label", "cm", "rv", "-n", namespace, "x=y")
    cm["data"] = {"a": "b"}
    res = kubesim.kubectl("replace", "-n", namespace, "-f", "-", input=json.dumps(cm), check=False)
    assert res.returncode == 1
    assert (
        'Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled on configmaps "rv": the object has been modified'
        in res.stderr
    )


def test_missing_namespace(kubesim):
    res = kubesim.kubectl("create", "-n", "nope-ns", "-f", "-", input=manifests.configmap("x"), check=False)
    assert res.returncode == 1
    assert 'namespaces "nope-ns" not found' in res.stderr
    res = kubesim.kubectl(
        "apply",
        "--server-side",
        "--field-manager=t",
        "-n",
        "nope-ns",
        "-f",
        "-",
        input=manifests.configmap("x"),
        check=False,
    )
    assert 'namespaces "nope-ns" not found' in res.stderr
    res = kubesim.kubectl("get", "namespace", "nope-ns", check=False)
    assert res.stderr.strip() == 'Error from server (NotFound): namespaces "nope-ns" not found'


def test_namespace_deletion_removes_contents(kubesim):
    ns = "doomed-ns"
    kubesim.kubectl("create", "namespace", ns)
    _apply_bundle(kubesim, ns)
    kubesim.kubectl("rollout", "status", "statefulset/demo", "-n", ns, "--timeout=60s")
    code, body = _http(kubesim, "DELETE", f"/api/v1/namespaces/{ns}", {"propagationPolicy": "Background"})
    deleted = json.loads(body)
    assert code == 200
    assert deleted["status"]["phase"] == "Terminating" and deleted["metadata"]["deletionTimestamp"]
    res = kubesim.kubectl("create", "-n", ns, "-f", "-", input=manifests.configmap("late"), check=False)
    assert res.returncode == 1 and ("being terminated" in res.stderr or "not found" in res.stderr)
    kubesim.kubectl("wait", "--for=delete", f"namespace/{ns}", "--timeout=60s")
    for kind in ("pods", "pvc", "sts", "cm"):
        assert kubesim.kubectl("get", kind, "-n", ns, "-o", "name").stdout.strip() == ""
    assert not (kubesim.state_dir / "volumes" / ns / "data-demo-0").exists()
    res = kubesim.kubectl("delete", "namespace", "default", check=False)
    assert res.returncode == 1 and "Forbidden" in res.stderr


def test_garbage_collects_orphans(kubesim, namespace):
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "orphan",
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "gone",
                    "uid": "00000000-0000-0000-0000-000000000000",
                }
            ],
        },
    }
    kubesim.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(cm))
    _until(
        lambda: kubesim.kubectl("get", "cm", "orphan", "-n", namespace, check=False).returncode == 1,
        what="garbage collection",
    )


# ---------------------------------------------------------------- tables, watch, faults


def test_table_output(kubesim, namespace):
    kubesim.kubectl(
        "apply",
        "--server-side",
        "--field-manager=t",
        "-n",
        namespace,
        "-f",
        "-",
        input=manifests.statefulset("tbl", app="tbl"),
    )
    kubesim.kubectl("rollout", "status", "statefulset/tbl", "-n", namespace, "--timeout=60s")
    pods = kubesim.kubectl("get", "pods", "-n", namespace).stdout.splitlines()
    assert pods[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert pods[1].split()[:3] == ["tbl-0", "1/1", "Running"]
    sts = kubesim.kubectl("get", "sts", "-n", namespace).stdout.splitlines()
    assert sts[0].split() == ["NAME", "READY", "AGE"] and sts[1].split()[:2] == ["tbl", "1/1"]
    pvc = kubesim.kubectl("get", "pvc", "-n", namespace).stdout.splitlines()
    assert pvc[1].split()[:2] == ["data-tbl-0", "Bound"]


def test_watch_replays_from_resource_version(kubesim, namespace):
    code, body = _http(kubesim, "GET", f"/api/v1/namespaces/{namespace}/configmaps")
    rv = json.loads(body)["metadata"]["resourceVersion"]
    kubesim.kubectl("create", "-n", namespace, "-f", "-", input=manifests.configmap("w1"))
    kubesim.kubectl("label", "cm", "w1", "-n", namespace, "a=b")
    kubesim.kubectl("delete", "cm", "w1", "-n", namespace)
    t0 = time.monotonic()
    code, body = _http(
        kubesim,
        "GET",
        f"/api/v1/namespaces/{namespace}/configmaps?watch=true&resourceVersion={rv}"
        f"&timeoutSeconds=2&fieldSelector=metadata.name%3Dw1",
    )
    assert code == 200 and 1.5 < time.monotonic() - t0 < 10
    events = [json.loads(line) for line in body.splitlines()]
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1]["object"]["metadata"]["labels"] == {"a": "b"}
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)


def test_watch_with_kubectl(kubesim, namespace):
    import subprocess

    p = subprocess.Popen(
        ["kubectl", "get", "cm", "-n", namespace, "-w", "--output-watch-events", "-o", "json"],
        env=kubesim.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        kubesim.kubectl("create", "-n", namespace, "-f", "-", input=manifests.configmap("watched"))
        time.sleep(1.5)
    finally:
        p.terminate()
        out, _ = p.communicate(timeout=10)
    events = [json.loads(doc) for doc in out.replace("}\n{", "}\0{").split("\0") if doc.strip()]
    assert ("ADDED", "watched") in [(e["type"], e["object"]["metadata"]["name"]) for e in events]


def test_request_fault_injection(kubesim, namespace):
    kubesim.kubectl("create", "-n", namespace, "-f", "-", input=manifests.configmap("flaky"))
    kubesim.fault_requests("get", "configmaps", 500)
    res = kubesim.kubectl("get", "cm", "flaky", "-n", namespace, check=False)
    assert res.returncode == 1 and "Error from server (InternalError)" in res.stderr
    kubesim.kubectl("get", "cm", "flaky", "-n", namespace)
    kubesim.fault_requests("patch", "statefulsets.apps", 503, count=1)
    res = kubesim.kubectl(
        "apply",
        "--server-side",
        "--field-manager=t",
        "-n",
        namespace,
        "-f",
        "-",
        input=manifests.statefulset("f", app="f"),
        check=False,
    )
    assert res.returncode == 1 and "ServiceUnavailable" in res.stderr


def test_status_subresource(kubesim, namespace):
    kubesim.kubectl(
        "create",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "st"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }
        ),
    )
    _until(
        lambda: _json(kubesim, "get", "pvc", "st", "-n", namespace)["status"].get("phase") == "Bound",
        what="bound",
    )
    kubesim.kubectl(
        "patch",
        "pvc",
        "st",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"conditions":[{"type":"Resizing","status":"True"}]}}',
    )
    st = _json(kubesim, "get", "pvc", "st", "-n", namespace)["status"]
    assert st["conditions"][0]["type"] == "Resizing" and st["phase"] == "Bound"


def test_system_namespaces_cannot_be_deleted(kubesim):
    for name in ("default", "kube-system", "kube-public"):
        res = kubesim.kubectl("delete", "namespace", name, "--wait=false", check=False)
        assert res.returncode == 1, res.stdout
        assert f'Error from server (Forbidden): namespaces "{name}" is forbidden' in res.stderr
        assert kubesim.kubectl("get", "namespace", name, "-o", "name").stdout.strip() == f"namespace/{name}"
