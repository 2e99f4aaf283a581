"""Admission in kubesim through the real kubectl: Pod Security levels from namespace labels,
ResourceQuota and LimitRange, and the StatefulSet controller's FailedCreate."""

from __future__ import annotations

import json
import time

import yaml


def _label(kubesim, ns, **modes):
    args = [f"pod-security.kubernetes.io/{m}={lvl}" for m, lvl in modes.items()]
    kubesim.kubectl("label", "namespace", ns, "--overwrite", *args)


def _pod(name, **security):
    container = {"name": name, "image": "busybox:1.36", "command": ["sleep", "3600"]}
    if security:
        container["securityContext"] = security
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container]},
    }


def _dind_statefulset(name="env"):
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "docker",
                            "image": "busybox:1.36",
                            "command": ["sleep", "3600"],
                            "securityContext": {"privileged": True},
                        }
                    ],
                    "volumes": [{"name": "host", "hostPath": {"path": "/tmp"}}],
                },
            },
        },
    }


def _events(kubesim, ns, selector):
    out = kubesim.kubectl("get", "events", "-n", ns, "--field-selector", selector, "-o", "json").stdout
    return json.loads(out)["items"]


def _wait_event(kubesim, ns, selector, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        found = _events(kubesim, ns, selector)
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no event {selector}"
        time.sleep(0.2)


def test_baseline_refuses_a_privileged_pod_with_the_real_wording(kubesim, namespace):
    _label(kubesim, namespace, enforce="baseline")
    res = kubesim.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=yaml.safe_dump(_pod("docker", privileged=True)),
        check=False,
    )
    assert res.returncode == 1
    assert res.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "docker" is forbidden: '
        'violates PodSecurity "baseline:latest": privileged (container "docker" must not set '
        "securityContext.privileged=true)"
    )
    assert kubesim.kubectl("get", "pod", "docker", "-n", namespace, check=False).returncode == 1
    kubesim.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(_pod("plain")))


def test_restricted_lists_every_failed_check_and_privileged_allows_all(kubesim, namespace):
    _label(kubesim, namespace, enforce="restricted", **{"enforce-version": "v1.32"})
    res = kubesim.kubectl(
        "run", "p", "-n", namespace, "--image=busybox:1.36", "--", "sleep", "9", check=False
    )
    assert res.stderr.strip() == (
        'Error from server (Forbidden): pods "p" is forbidden: violates PodSecurity "restricted:v1.32": '
        'allowPrivilegeEscalation != false (container "p" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "p" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "p" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "p" must set securityContext.seccompProfile.type to "RuntimeDefault" or '
        '"Localhost")'
    )
    ok = _pod(
        "ok",
        allowPrivilegeEscalation=False,
        capabilities={"drop": ["ALL"]},
        runAsNonRoot=True,
        seccompProfile={"type": "RuntimeDefault"},
    )
    kubesim.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(ok))
    _label(kubesim, namespace, enforce="privileged")
    kubesim.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(_pod("root", privileged=True)))


def test_warn_mode_and_workload_templates_give_warnings(kubesim, namespace):
    _label(kubesim, namespace, warn="baseline")
    res = kubesim.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(_pod("w", privileged=True))
    )
    assert res.stderr.strip() == (
        'Warning: would violate PodSecurity "baseline:latest": privileged (container "w" must not set '
        "securityContext.privileged=true)"
    )
    _label(kubesim, namespace, enforce="baseline", warn="baseline")
    res = kubesim.kubectl(
        "apply", "--server-side", "-n", namespace, "-f", "-", input=yaml.safe_dump(_dind_statefulset())
    )
    assert res.stdout.strip() == "statefulset.apps/env serverside-applied"  # never refused itself
    assert res.stderr.strip() == (
        'Warning: would violate PodSecurity "baseline:latest": hostPath volumes (volume "host"), '
        'privileged (container "docker" must not set securityContext.privileged=true)'
    )


def test_statefulset_pods_refused_by_pod_security_are_failed_create_events(kubesim, namespace):
    _label(kubesim, namespace, enforce="baseline")
    kubesim.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(_dind_statefulset()))
    event = _wait_event(kubesim, namespace, "involvedObject.name=env,reason=FailedCreate")
    assert (event["type"], event["source"]["component"], event["involvedObject"]["kind"]) == (
        "Warning",
        "statefulset-controller",
        "StatefulSet",
    )
    assert event["message"] == (
        'create Pod env-0 in StatefulSet env failed error: pods "env-0" is forbidden: violates PodSecurity '
        '"baseline:latest": hostPath volumes (volume "host"), privileged (container "docker" must not set '
        "securityContext.privileged=true)"
    )
    assert kubesim.kubectl("get", "pod", "env-0", "-n", namespace, check=False).returncode == 1
    _label(kubesim, namespace, enforce="privileged")  # relabel: the controller's retry succeeds
    kubesim.kubectl("wait", "--for=condition=Ready", "pod/env-0", "-n", namespace, "--timeout=60s")


def test_resource_quota_counts_and_refuses(kubesim, namespace):
    kubesim.kubectl("create", "quota", "small", "-n", namespace, "--hard=pods=1,requests.storage=1Gi")
    kubesim.kubectl("run", "one", "-n", namespace, "--image=busybox:1.36", "--", "sleep", "3600")
    res = kubesim.kubectl(
        "run", "two", "-n", namespace, "--image=busybox:1.36", "--", "sleep", "3600", check=False
    )
    assert res.stderr.strip() == (
        'Error from server (Forbidden): pods "two" is forbidden: exceeded quota: small, requested: pods=1, '
        "used: pods=1, limited: pods=1"
    )
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "big"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
    }
    res = kubesim.kubectl("create", "-n", namespace, "-f", "-", input=yaml.safe_dump(claim), check=False)
    assert (
        'persistentvolumeclaims "big" is forbidden: exceeded quota: small, requested: requests.storage=2Gi, '
        "used: requests.storage=0, limited: requests.storage=1Gi"
    ) in res.stderr
    deadline = time.monotonic() + 10
    while True:
        quota = json.loads(kubesim.kubectl("get", "quota", "small", "-n", namespace, "-o", "json").stdout)
        if quota.get("status", {}).get("used") == {"pods": "1", "requests.storage": "0"}:
            break
        assert time.monotonic() < deadline, quota.get("status")
        time.sleep(0.2)
    assert quota["status"]["hard"] == {"pods": "1", "requests.storage": "1Gi"}
    table = kubesim.kubectl("get", "quota", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert table[1].split(None, 2)[2].strip() == "pods: 1/1, requests.storage: 0/1Gi"


def test_quota_on_memory_needs_requests_and_limit_range_defaults_them(kubesim, namespace):
    kubesim.kubectl("create", "quota", "mem", "-n", namespace, "--hard=requests.memory=1Gi")
    res = kubesim.kubectl(
        "run", "bare", "-n", namespace, "--image=busybox:1.36", "--", "sleep", "9", check=False
    )
    assert res.stderr.strip() == (
        'Error from server (Forbidden): pods "bare" is forbidden: failed quota: mem: must specify '
        "requests.memory for: bare"
    )
    limits = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "defaults"},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "defaultRequest": {"memory": "256Mi"},
                    "default": {"memory": "512Mi"},
                    "max": {"memory": "1Gi"},
                }
            ]
        },
    }
    kubesim.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(limits))
    kubesim.kubectl("run", "defaulted", "-n", namespace, "--image=busybox:1.36", "--", "sleep", "3600")
    pod = json.loads(kubesim.kubectl("get", "pod", "defaulted", "-n", namespace, "-o", "json").stdout)
    assert pod["spec"]["containers"][0]["resources"] == {
        "limits": {"memory": "512Mi"},
        "requests": {"memory": "256Mi"},
    }
    res = kubesim.kubectl(
        "run", "huge", "-n", namespace, "--image=busybox:1.36", "--overrides",
        json.dumps({"spec": {"containers": [{"name": "huge", "image": "busybox:1.36",
                                             "resources": {"limits": {"memory": "2Gi"}}}]}}),
        check=False,
    )  # fmt: skip
    assert res.stderr.strip() == (
        'Error from server (Forbidden): pods "huge" is forbidden: maximum memory usage per Container is 1Gi, '
        "but limit is 2Gi"
    )
    for i in range(4):
        res = kubesim.kubectl(
            "run", f"more-{i}", "-n", namespace, "--image=busybox:1.36", "--", "sleep", "3600", check=False
        )  # fmt: skip
    assert res.stderr.strip() == (
        'Error from server (Forbidden): pods "more-3" is forbidden: exceeded quota: mem, requested: '
        "requests.memory=256Mi, used: requests.memory=1Gi, limited: requests.memory=1Gi"
    )


def test_labelling_a_namespace_warns_about_its_existing_pods(kubesim, namespace):
    for name in ("a-0", "a-1"):
        kubesim.kubectl(
            "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(_pod(name, privileged=True))
        )
    res = kubesim.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=baseline"
    )  # the pods keep running: enforcement applies to new pods
    assert res.stderr.splitlines() == [
        f'Warning: existing pods in namespace "{namespace}" violate the new PodSecurity enforce level '
        '"baseline:latest"',
        "Warning: a-0 (and 1 other pod): privileged",
    ]
    assert res.stdout.strip() == f"namespace/{namespace} labeled"
