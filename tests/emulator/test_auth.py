"""Authentication and RBAC in kubesim, driven by the real kubectl as restricted identities
(ServiceAccount tokens, client certificates, impersonation)."""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.request

import pytest
import yaml

SA = 'User "system:serviceaccount:{ns}:ci"'
GROUPS = '(groups=["system:serviceaccounts" "system:serviceaccounts:{ns}" "system:authenticated"])'


def _cluster(kubeconfig) -> dict:
    return yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]


def _ci(kubesim, ns, clusterrole=None):
    """ServiceAccount `ci` in ns (bound to `clusterrole` in ns) and a kubeconfig for it."""
    kubesim.kubectl("create", "serviceaccount", "ci", "-n", ns)
    if clusterrole:
        kubesim.kubectl(
            "create", "rolebinding", f"ci-{clusterrole}", f"--clusterrole={clusterrole}",
            f"--serviceaccount={ns}:ci", "-n", ns,
        )  # fmt: skip
    return kubesim.kubeconfig_for_service_account(ns, "ci")


def test_service_account_identity_and_forbidden_wording(kubesim, namespace):
    kc = _ci(kubesim, namespace)
    who = json.loads(kubesim.kubectl_as(kc, "auth", "whoami", "-o", "json").stdout)
    assert who["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:ci"
    assert who["status"]["userInfo"]["groups"] == [
        "system:serviceaccounts",
        f"system:serviceaccounts:{namespace}",
        "system:authenticated",
    ]
    res = kubesim.kubectl_as(kc, "get", "pods", check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == (
        f"Error from server (Forbidden): pods is forbidden: {SA.format(ns=namespace)} cannot list resource "
        f'"pods" in API group "" in the namespace "{namespace}"'
    )
    res = kubesim.kubectl_as(kc, "create", "configmap", "x", check=False)
    assert (
        f'configmaps is forbidden: {SA.format(ns=namespace)} cannot create resource "configmaps" in API '
        f'group "" in the namespace "{namespace}"' in res.stderr
    )
    res = kubesim.kubectl_as(kc, "get", "clusterroles", check=False)
    assert (
        f"clusterroles.rbac.authorization.k8s.io is forbidden: {SA.format(ns=namespace)} cannot list resource "
        '"clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope' in res.stderr
    )


def test_can_i_answers_as_the_bound_role_says(kubesim, namespace):
    kc = _ci(kubesim, namespace, "edit")

    def can(*args):
        return kubesim.kubectl_as(kc, "auth", "can-i", *args, check=False)

    assert can("create", "pods").stdout.strip() == "yes"
    assert can("create", "pods", "--subresource=exec").stdout.strip() == "yes"
    assert can("get", "pods/portforward").stdout.strip() == "yes"
    assert can("create", "statefulsets.apps").stdout.strip() == "yes"
    no = can("create", "roles.rbac.authorization.k8s.io")
    assert (no.returncode, no.stdout.strip()) == (1, "no")
    assert can("list", "pods", "-n", "default").stdout.strip() == "no"
    assert can("get", "/api").stdout.strip() == "yes"
    listing = kubesim.kubectl_as(kc, "auth", "can-i", "--list").stdout
    rows = {line.split()[0]: line for line in listing.splitlines() if line and not line.startswith(" ")}
    assert "pods/exec" in rows and "create" in rows["pods/exec"]
    assert "roles.rbac.authorization.k8s.io" not in rows
    # the real thing, not only the review: edit can list and create pods' owners
    kubesim.kubectl_as(kc, "get", "pods")
    kubesim.kubectl_as(kc, "create", "configmap", "made-by-ci", "--from-literal=a=b")


def test_view_is_read_only_and_aggregates_new_rules(kubesim, namespace):
    kc = _ci(kubesim, namespace, "view")
    kubesim.kubectl("create", "secret", "generic", "s1", "--from-literal=a=b", "-n", namespace)
    assert kubesim.kubectl_as(kc, "get", "secrets", check=False).returncode == 1
    role = f"secret-reader-{namespace}"
    kubesim.kubectl(
        "apply", "-f", "-",
        input=yaml.safe_dump({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": role, "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
        }),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while kubesim.kubectl_as(kc, "get", "secrets", check=False).returncode != 0:
            assert time.monotonic() < deadline, "view never aggregated the new ClusterRole"
            time.sleep(0.2)
        view = json.loads(kubesim.kubectl("get", "clusterrole", "view", "-o", "json").stdout)
        assert {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]} in view["rules"]
    finally:
        kubesim.kubectl("delete", "clusterrole", role)


def test_escalation_is_refused_unless_held_or_bind(kubesim, namespace):
    kc = _ci(kubesim, namespace, "admin")
    kubesim.kubectl_as(kc, "create", "role", "pod-reader", "--verb=get", "--resource=pods")
    kubesim.kubectl_as(
        kc, "create", "rolebinding", "rb-view", "--clusterrole=view", f"--serviceaccount={namespace}:ci"
    )
    res = kubesim.kubectl_as(
        kc, "create", "rolebinding", "rb-root", "--clusterrole=cluster-admin", f"--serviceaccount={namespace}:ci",
        check=False,
    )  # fmt: skip
    assert res.returncode == 1
    assert (
        f'rolebindings.rbac.authorization.k8s.io "rb-root" is forbidden: user "system:serviceaccount:{namespace}:ci" '
        f"{GROUPS.format(ns=namespace)} is attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}\n'
        '{NonResourceURLs:["*"], Verbs:["*"]}'
    ) in res.stderr
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "too-much"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "escalate"]},
            {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get", "list"]},
        ],
    }
    res = kubesim.kubectl_as(kc, "apply", "--server-side", "-f", "-", input=yaml.safe_dump(role), check=False)
    assert res.returncode == 1
    assert res.stderr.strip().endswith(
        "is attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:[""], Resources:["pods"], Verbs:["escalate"]}\n'
        '{APIGroups:["storage.k8s.io"], Resources:["storageclasses"], Verbs:["get" "list"]}'
    ), res.stderr
    assert kubesim.kubectl("get", "role", "too-much", "-n", namespace, check=False).returncode == 1
    # `bind` on exactly that ClusterRole lets a binding through without holding its rules
    kubesim.kubectl(
        "create", "role", "binder", "--verb=bind", "--resource=clusterroles.rbac.authorization.k8s.io",
        "--resource-name=cluster-admin", "-n", namespace,
    )  # fmt: skip
    kubesim.kubectl(
        "create",
        "rolebinding",
        "ci-binder",
        "--role=binder",
        f"--serviceaccount={namespace}:ci",
        "-n",
        namespace,
    )
    kubesim.kubectl_as(
        kc,
        "create",
        "rolebinding",
        "rb-root",
        "--clusterrole=cluster-admin",
        f"--serviceaccount={namespace}:ci",
    )
    assert kubesim.kubectl_as(kc, "auth", "can-i", "create", "nodes").stdout.strip() == "yes"


def test_tokens_from_kubectl_create_token_expire_and_die_with_the_account(kubesim, namespace):
    _ci(kubesim, namespace, "view")
    short = kubesim.kubectl("create", "token", "ci", "-n", namespace, "--duration=5m", check=False)
    assert short.returncode == 1
    assert (
        'TokenRequest.authentication.k8s.io "ci" is invalid: spec.expirationSeconds: Invalid value: 300: '
        "may not specify a duration less than 10 minutes"
    ) in short.stderr
    token = kubesim.kubectl("create", "token", "ci", "-n", namespace, "--duration=10m").stdout.strip()
    kc = kubesim.kubeconfig_for_token(token, namespace)
    assert kubesim.kubectl_as(kc, "get", "pods").returncode == 0
    expiring = kubesim.kubeconfig_for_token(
        kubesim.service_account_token(namespace, "ci", seconds=1), namespace
    )
    time.sleep(2)
    res = kubesim.kubectl_as(expiring, "get", "pods", check=False)
    assert (res.returncode, res.stderr.strip()) == (
        1,
        "error: You must be logged in to the server (Unauthorized)",
    )
    kubesim.kubectl("delete", "serviceaccount", "ci", "-n", namespace)
    res = kubesim.kubectl_as(kc, "get", "pods", check=False)
    assert (res.returncode, res.stderr.strip()) == (
        1,
        "error: You must be logged in to the server (Unauthorized)",
    )
    kubesim.kubectl(
        "create", "serviceaccount", "ci", "-n", namespace
    )  # same name, new uid: old token stays dead
    assert kubesim.kubectl_as(kc, "get", "pods", check=False).returncode == 1


def test_client_certificate_users_groups_and_anonymous(kubesim, namespace):
    kc = kubesim.kubeconfig_for_user("alice", ["devs"], namespace)
    who = json.loads(kubesim.kubectl_as(kc, "auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    assert (who["username"], who["groups"]) == ("alice", ["devs", "system:authenticated"])
    assert kubesim.kubectl_as(kc, "get", "configmaps", check=False).returncode == 1
    kubesim.kubectl(
        "create", "rolebinding", "devs-view", "--clusterrole=view", "--group=devs", "-n", namespace
    )
    kubesim.kubectl_as(kc, "get", "configmaps")
    # no credential at all (kubectl would prompt for a password): system:anonymous
    ca = ssl.create_default_context(
        cadata=base64.b64decode(_cluster(kc)["certificate-authority-data"]).decode()
    )
    url = f"{kubesim.server}/api/v1/namespaces/{namespace}/configmaps"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, context=ca, timeout=10)
    assert e.value.code == 403
    assert json.loads(e.value.read())["message"] == (
        f'configmaps is forbidden: User "system:anonymous" cannot list resource "configmaps" in API group "" '
        f'in the namespace "{namespace}"'
    )
    with urllib.request.urlopen(f"{kubesim.server}/version", context=ca, timeout=10) as r:  # public info
        assert json.loads(r.read())["minor"] == "32"
    bad = kubesim.kubeconfig_for_token("not-a-token", namespace)
    res = kubesim.kubectl_as(bad, "get", "configmaps", check=False)
    assert res.stderr.strip() == "error: You must be logged in to the server (Unauthorized)"
    # a valid client certificate wins over a bad token (x509 runs before the token authenticators)
    both = kubesim.kubectl_as(kc, "--token", "not-a-token", "auth", "whoami", "-o", "json")
    assert json.loads(both.stdout)["status"]["userInfo"]["username"] == "alice"


def test_impersonation_needs_impersonate(kubesim, namespace):
    kubesim.kubectl("create", "serviceaccount", "ci", "-n", namespace)
    res = kubesim.kubectl(
        "get", "pods", "-n", namespace, f"--as=system:serviceaccount:{namespace}:ci", check=False
    )
    assert f'{SA.format(ns=namespace)} cannot list resource "pods"' in res.stderr
    kc = kubesim.kubeconfig_for_user("bob", [], namespace)
    res = kubesim.kubectl_as(kc, "get", "pods", "--as=alice", check=False)
    assert res.stderr.strip() == (
        'Error from server (Forbidden): users "alice" is forbidden: User "bob" cannot impersonate resource '
        '"users" in API group "" at the cluster scope'
    )


def test_exec_and_port_forward_are_authorized_on_their_subresources(kubesim, namespace):
    kubesim.kubectl(
        "run", "sleeper", "-n", namespace, "--image=busybox:1.36", "--restart=Never", "--", "sleep", "3600"
    )
    kubesim.kubectl("wait", "--for=condition=Ready", "pod/sleeper", "-n", namespace, "--timeout=60s")
    viewer = _ci(kubesim, namespace, "view")
    res = kubesim.kubectl_as(viewer, "exec", "sleeper", "--", "true", check=False)
    # kubectl 1.32 tries a websocket (a GET: `get` on pods/exec, as a 1.32 apiserver authorizes it),
    # is refused, falls back to SPDY (a POST: `create`), is refused again and reports that one
    assert res.stderr.strip() == (
        f'Error from server (Forbidden): pods "sleeper" is forbidden: {SA.format(ns=namespace)} cannot create '
        f'resource "pods/exec" in API group "" in the namespace "{namespace}"'
    )
    kubesim.kubectl(
        "create",
        "rolebinding",
        "ci-edit",
        "--clusterrole=edit",
        f"--serviceaccount={namespace}:ci",
        "-n",
        namespace,
    )
    assert kubesim.kubectl_as(viewer, "exec", "sleeper", "--", "echo", "hi").stdout == "hi\n"


def test_exec_with_only_create_on_pods_exec_works_as_through_kubectl_s_spdy_fallback(kubesim, namespace):
    kubesim.kubectl(
        "run", "sleeper", "-n", namespace, "--image=busybox:1.36", "--restart=Never", "--", "sleep", "3600"
    )  # fmt: skip
    kubesim.kubectl("wait", "--for=condition=Ready", "pod/sleeper", "-n", namespace, "--timeout=60s")
    kc = _ci(kubesim, namespace)
    kubesim.kubectl("create", "role", "execer", "-n", namespace, "--verb=get", "--resource=pods")
    kubesim.kubectl(
        "create", "role", "exec-create", "-n", namespace, "--verb=create", "--resource=pods/exec,pods/portforward"
    )  # fmt: skip
    for role in ("execer", "exec-create"):
        kubesim.kubectl(
            "create", "rolebinding", role, f"--role={role}", f"--serviceaccount={namespace}:ci", "-n", namespace
        )  # fmt: skip
    assert kubesim.kubectl_as(kc, "exec", "sleeper", "--", "echo", "ok").stdout == "ok\n"
