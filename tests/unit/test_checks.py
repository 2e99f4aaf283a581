"""Pure parts of the checks before `up` (issue 10): RBAC rule matching, the permissions a template needs and
the Role granting them, Pod Security levels of the rendered pods, quota headroom."""

import fractions
import json
import pathlib
import tempfile

import pytest

from kubectl_preevy import permissions, podsecurity, preflight, quota, resources, template
from kubectl_preevy.permissions import Permission
from tests.unit.test_template import opts

NS = "previews"


def rendered(variant: str = "default.yaml.njk", storage_class: str | None = None) -> list[dict]:
    """A bundled template rendered as `up` renders it (the sysbox variant from a copy in a file)."""
    path = None
    if variant != "default.yaml.njk":
        path = pathlib.Path(tempfile.mkdtemp()) / variant
        path.write_text(resources.template_text(variant))
    instance = "p-e-abcde"
    return template.render_template(
        opts(path, namespace=NS, storage_class=storage_class),
        instance,
        template.template_labels("p", instance),
    )


def perm(group: str, resource: str, verb: str) -> Permission:
    return Permission(group, resource, verb, "test", frozenset({"up"}))


# --- RBAC rule matching ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "permission", "allowed"),
    [
        (
            {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["create"]},
            ("apps", "statefulsets", "create"),
            True,
        ),
        (
            {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["get"]},
            ("apps", "statefulsets", "create"),
            False,
        ),
        (
            {"apiGroups": [""], "resources": ["statefulsets"], "verbs": ["*"]},
            ("apps", "statefulsets", "create"),
            False,
        ),
        ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, ("", "pods/exec", "create"), True),
        ({"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}, ("", "pods/exec", "create"), False),
        (
            {"apiGroups": [""], "resources": ["*/exec"], "verbs": ["create"]},
            ("", "pods/exec", "create"),
            True,
        ),
        (
            {"apiGroups": [""], "resources": ["pods/*"], "verbs": ["create"]},
            ("", "pods/exec", "create"),
            False,
        ),
        ({"apiGroups": [""], "resources": ["*/exec"], "verbs": ["get"]}, ("", "pods", "get"), False),
        (
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"], "resourceNames": ["x"]},
            ("", "configmaps", "create"),
            False,
        ),
    ],
)
def test_rules_match_as_the_rbac_authorizer_does(rule, permission, allowed):
    assert permissions.rule_allows(rule, perm(*permission)) is allowed


def test_the_default_template_needs_what_up_down_and_connect_do():
    needed = permissions.required(rendered())
    by_type = permissions.grouped(needed)
    assert by_type[("apps", "statefulsets")] == ["get", "list", "watch", "create", "patch", "delete"]
    assert by_type[("", "pods/exec")] == ["create"]
    assert by_type[("", "pods/portforward")] == ["create"]
    assert by_type[("", "configmaps")] == ["get", "list", "watch", "create", "update", "patch", "delete"]
    # the template's Role grants pods get/list in "" and metrics.k8s.io: one must hold them to grant them
    assert by_type[("metrics.k8s.io", "pods")] == ["get", "list"]
    connect = {p.type_name for p in needed if "connect" in p.commands}
    assert connect == {"statefulsets.apps", "pods", "pods/portforward"}
    optional = {(p.type_name, p.verb) for p in needed if p.optional}
    assert ("storageclasses.storage.k8s.io", "list") in optional
    assert ("namespaces", "get") in optional


def test_the_role_grants_every_namespaced_permission_and_nothing_is_missing():
    needed = permissions.required(rendered())
    rules = permissions.role_rules([p for p in needed if not p.cluster_scoped])
    assert all(permissions.allowed(rules, p) for p in needed if not p.cluster_scoped)
    assert not any(permissions.allowed(rules, p) for p in needed if p.cluster_scoped)
    assert {
        "apiGroups": [""],
        "resources": ["pods/exec", "pods/portforward"],
        "verbs": ["create"],
    } in rules


def test_one_rule_less_fails_the_permission_row_naming_what_is_missing():
    needed = permissions.required(rendered())
    rules = [
        r
        for r in permissions.role_rules([p for p in needed if not p.cluster_scoped])
        if r["resources"] != ["pods/exec", "pods/portforward"]
    ]
    facts = preflight.Facts(
        NS,
        rules=preflight.Reading(document={"status": {"resourceRules": rules, "incomplete": False}}),
        namespace_object=preflight.Reading(problem="forbidden", forbidden=True),
        storage_classes=preflight.Reading(problem="forbidden", forbidden=True),
        quotas=preflight.Reading(document={"items": []}),
    )
    checks = preflight.evaluate(facts, rendered(), needed, storage_class=None)
    failed = {c.subject: c for c in checks if c.result == preflight.FAIL}
    assert set(failed) == {"pods/exec", "pods/portforward"}
    assert failed["pods/exec"].detail.startswith("create pods/exec in namespace previews")
    skipped = {c.check for c in checks if c.result == preflight.SKIPPED}
    assert skipped == {"permission", "pod security", "storage class"}
    error = preflight.refusal(checks, "up")
    assert error is not None and error.exit_code == 6
    assert "create pods/exec" in error.message and "pods/portforward" in error.message
    assert "kubectl preevy rbac -n previews" in error.message
    assert preflight.refusal([c for c in checks if c.subject != "pods/exec"], "down") is None


def test_forbidden_lines_name_what_was_refused():
    stderr = (
        'Error from server (Forbidden): roles.rbac.authorization.k8s.io is forbidden: User "ci" cannot list '
        'resource "roles" in API group "rbac.authorization.k8s.io" in the namespace "ns"\n'
        'Error from server (Forbidden): pods "x-0" is forbidden: User "ci" cannot delete resource "pods" in '
        'API group "" in the namespace "ns"\n'
    )
    assert permissions.refused_requests(stderr) == ["list roles.rbac.authorization.k8s.io", "delete pods"]


# --- Pod Security ----------------------------------------------------------------------------------------


def pod_spec(objects: list[dict]) -> dict:
    return template.docker_host_statefulset(objects)["spec"]["template"]["spec"]


def test_the_default_template_is_privileged_and_the_sysbox_variant_baseline():
    default, sysbox = pod_spec(rendered()), pod_spec(rendered("sysbox.yaml.njk"))
    assert podsecurity.violations(default, "privileged") == []
    assert podsecurity.violations(default, "baseline") == [
        'privileged (container "docker" must not set securityContext.privileged=true)'
    ]
    assert podsecurity.violations(sysbox, "baseline") == []
    restricted = podsecurity.violations(sysbox, "restricted")
    assert [v.split(" (")[0] for v in restricted] == [
        "allowPrivilegeEscalation != false",
        "runAsNonRoot != true",
        "seccompProfile",
        "unrestricted capabilities",
    ]


def test_baseline_checks_word_violations_as_admission_does():
    spec = {
        "hostNetwork": True,
        "containers": [
            {
                "name": "a",
                "securityContext": {"capabilities": {"add": ["SYS_ADMIN", "CHOWN"]}},
                "ports": [{"containerPort": 80, "hostPort": 80}],
            }
        ],
        "volumes": [{"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}],
    }
    assert podsecurity.violations(spec, "baseline") == [
        "host namespaces (hostNetwork=true)",
        'non-default capabilities (container "a" must not include "SYS_ADMIN" in securityContext.capabilities.add)',
        'hostPath volumes (volume "sock")',
        'hostPort (container "a" uses hostPort 80)',
    ]


def test_namespace_labels_set_the_levels():
    labels = {
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    assert podsecurity.namespace_levels(labels) == {
        "enforce": "baseline",
        "warn": "restricted",
        "audit": "privileged",
    }


def test_a_baseline_namespace_fails_doctor_with_the_fix():
    facts = preflight.Facts(
        NS,
        rules=preflight.Reading(
            document={"status": {"resourceRules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}}
        ),
        namespace_object=preflight.Reading(
            document={"metadata": {"name": NS, "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}
        ),
        storage_classes=preflight.Reading(
            document={
                "items": [
                    {
                        "metadata": {
                            "name": "standard",
                            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                        }
                    }
                ]
            }
        ),
        quotas=preflight.Reading(document={"items": []}),
    )
    objects = rendered()
    checks = preflight.evaluate(facts, objects, permissions.required(objects), storage_class=None)
    error = preflight.refusal(checks, "up")
    assert error is not None and error.exit_code == 6
    assert 'enforces Pod Security "baseline"' in error.message
    assert "kubectl preevy template --variant sysbox" in error.message
    assert f"kubectl label namespace {NS} pod-security.kubernetes.io/enforce=privileged" in error.message
    assert [c.subject for c in checks if c.check == "storage class"] == ["standard"]


# --- StorageClass ----------------------------------------------------------------------------------------


def storage_facts(classes: list[dict] | None, not_found: bool = False) -> preflight.Facts:
    reading = (
        preflight.Reading(document={"items": classes})
        if classes is not None
        else preflight.Reading(problem="x", forbidden=not not_found, not_found=not_found)
    )
    return preflight.Facts(NS, preflight.Reading(), preflight.Reading(), reading, preflight.Reading())


def sc(name: str, default: bool = False, created: str = "2026-01-01T00:00:00Z") -> dict:
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {
        "kind": "StorageClass",
        "metadata": {"name": name, "annotations": annotations, "creationTimestamp": created},
    }


def test_storage_class_checks():
    objects = rendered()
    no_default = preflight.storage_checks(storage_facts([sc("fast")]), objects, None)
    assert [(c.result, c.fix) for c in no_default] == [
        ("fail", "choose one with --kube-pod-storage-class NAME (see `kubectl get storageclass`)")
    ]
    assert (
        preflight.storage_checks(
            storage_facts([sc("a", True), sc("b", True, "2026-02-01T00:00:00Z")]), objects, None
        )[0].subject
        == "b"
    )
    chosen = rendered(storage_class="slow")
    assert preflight.storage_checks(storage_facts([sc("fast", True)]), chosen, "slow")[0].detail.startswith(
        "StorageClass slow does not exist"
    )
    named_missing = preflight.storage_checks(storage_facts(None, not_found=True), chosen, "slow")
    assert named_missing[0].result == "fail"
    forbidden = preflight.storage_checks(storage_facts(None), objects, None)
    assert [c.result for c in forbidden] == ["skipped"]


# --- quota -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", fractions.Fraction(1, 10)),
        ("256Mi", 256 * 2**20),
        ("1.5Gi", 3 * 2**29),
        ("2e3", 2000),
        ("4", 4),
        ("1k", 1000),
    ],
)
def test_quantities(text, value):
    assert quota.parse_quantity(text) == value


def rq(hard: dict, used: dict | None = None, name: str = "q") -> dict:
    return {"kind": "ResourceQuota", "metadata": {"name": name}, "status": {"hard": hard, "used": used or {}}}


def test_quota_headroom_of_the_default_template():
    objects = rendered()
    assert (
        quota.shortfalls(
            objects, [rq({"requests.memory": "1Gi", "pods": "2"}, {"requests.memory": "512Mi", "pods": "1"})]
        )
        == []
    )
    short = quota.shortfalls(objects, [rq({"requests.memory": "1Gi"}, {"requests.memory": "900Mi"})])
    assert [s.detail for s in short] == ["requests.memory: needs 256Mi, 124Mi of 1Gi left"]
    storage = quota.shortfalls(objects, [rq({"requests.storage": "4Gi", "persistentvolumeclaims": "1"})])
    assert [s.detail for s in storage] == ["requests.storage: needs 5Gi, 4Gi of 4Gi left"]
    per_class = quota.shortfalls(
        objects, [rq({"gold.storageclass.storage.k8s.io/requests.storage": "1Gi"})], default_class="gold"
    )
    assert [s.resource for s in per_class] == ["gold.storageclass.storage.k8s.io/requests.storage"]


def test_a_quota_on_limits_needs_limits_or_a_limitrange_default():
    objects = rendered()
    assert [s.detail for s in quota.shortfalls(objects, [rq({"limits.memory": "4Gi"})])] == [
        "must specify limits.memory for: docker"
    ]
    limit_range = {
        "kind": "LimitRange",
        "spec": {"limits": [{"type": "Container", "default": {"memory": "512Mi"}}]},
    }
    assert quota.shortfalls(objects, [rq({"limits.memory": "4Gi"})], [limit_range]) == []
    assert [s.detail for s in quota.shortfalls(objects, [rq({"limits.memory": "256Mi"})], [limit_range])] == [
        "limits.memory: needs 512Mi, 256Mi of 256Mi left"
    ]


def test_counts_of_objects():
    objects = rendered()
    short = quota.shortfalls(
        objects,
        [
            rq(
                {"configmaps": "3", "count/statefulsets.apps": "1"},
                {"configmaps": "3", "count/statefulsets.apps": "1"},
            )
        ],
    )
    assert [s.resource for s in short] == ["configmaps", "count/statefulsets.apps"]


def test_refused_types_in_kubectls_forbidden_lines():
    stderr = (
        'Error from server (Forbidden): roles.rbac.authorization.k8s.io "x" is forbidden: User "u" cannot delete '
        'resource "roles" in API group "rbac.authorization.k8s.io" in the namespace "n"\n'
    )
    assert permissions.refused_type("Role.v1.rbac.authorization.k8s.io", stderr)
    assert permissions.refused_type("roles.rbac.authorization.k8s.io", stderr)
    assert not permissions.refused_type("RoleBinding.v1.rbac.authorization.k8s.io", stderr)
    assert not permissions.refused_type("Pod", stderr)


def test_only_what_an_incomplete_rules_review_does_not_grant_is_asked_again():
    needed = permissions.required(rendered())
    granted = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]

    def facts(status: dict | None) -> preflight.Facts:
        reading = (
            preflight.Reading(document={"status": status}) if status is not None else preflight.Reading()
        )
        return preflight.Facts(NS, reading, preflight.Reading(), preflight.Reading(), preflight.Reading())

    assert preflight.uncertain(facts({"resourceRules": granted, "incomplete": False}), needed) == []
    asked = preflight.uncertain(facts({"resourceRules": granted, "incomplete": True}), needed)
    assert asked and {p.verb for p in asked} == {"create", "update", "patch", "delete"}
    assert preflight.uncertain(facts(None), needed) == needed  # the review itself failed: ask for each


def test_up_recreate_also_needs_what_down_does():
    needed = permissions.required(rendered())
    rules = [
        {
            "apiGroups": ["*"],
            "resources": ["*"],
            "verbs": ["get", "list", "watch", "create", "update", "patch"],
        },
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["delete"]},  # up releases its lock
    ]
    facts = preflight.Facts(
        NS,
        preflight.Reading(document={"status": {"resourceRules": rules}}),
        preflight.Reading(problem="forbidden", forbidden=True),
        preflight.Reading(problem="forbidden", forbidden=True),
        preflight.Reading(document={"items": []}),
    )
    checks = preflight.evaluate(facts, rendered(), needed, storage_class=None)
    assert preflight.refusal(checks, "up") is None
    error = preflight.refusal(checks, "up --recreate", also=("down",))
    assert error is not None and error.message.startswith("`kubectl preevy up --recreate` needs permissions")
    assert "delete statefulsets.apps" in error.message


SC_FORBIDDEN = (
    'Error from server (Forbidden): storageclasses.storage.k8s.io is forbidden: User "ci" cannot list '
    'resource "storageclasses" in API group "storage.k8s.io" at the cluster scope\n'
)
QUOTA_FORBIDDEN = (
    'Error from server (Forbidden): resourcequotas is forbidden: User "ci" cannot list resource '
    '"resourcequotas" in API group "" in the namespace "dev"\n'
)


def test_one_read_of_quotas_and_storage_classes_gives_each_its_reading():
    quota_item = {"kind": "ResourceQuota", "metadata": {"name": "small"}}
    range_item = {"kind": "LimitRange", "metadata": {"name": "defaults"}}
    class_item = {"kind": "StorageClass", "metadata": {"name": "standard"}}
    listed = json.dumps({"kind": "List", "items": [quota_item, range_item, class_item]})
    quotas, storage = preflight.split_quotas_and_storage(True, listed, "")
    assert quotas.document == {"kind": "List", "items": [quota_item, range_item]}
    assert storage.document == {"kind": "List", "items": [class_item]}

    # a Role's identity: the StorageClasses refused, the quotas read
    quotas, storage = preflight.split_quotas_and_storage(
        False, json.dumps({"kind": "List", "items": [quota_item]}), SC_FORBIDDEN
    )
    assert quotas.document == {"kind": "List", "items": [quota_item]}
    assert storage.document is None and storage.forbidden and storage.problem == "forbidden"

    quotas, storage = preflight.split_quotas_and_storage(
        False, json.dumps({"kind": "List", "items": []}), QUOTA_FORBIDDEN + SC_FORBIDDEN
    )
    assert quotas.forbidden and storage.forbidden


def test_a_read_of_quotas_and_storage_classes_that_failed_otherwise_is_done_again_alone():
    unreachable = "error: dial tcp 127.0.0.1:6443: connect: connection refused\n"
    assert preflight.split_quotas_and_storage(False, "", unreachable) is None
    assert preflight.split_quotas_and_storage(False, "", SC_FORBIDDEN + unreachable) is None
    assert preflight.split_quotas_and_storage(True, "not json", "") is None
