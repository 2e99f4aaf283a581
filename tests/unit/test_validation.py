"""The server dry run's verdict: a binding to a Role of the same manifest is no refusal (the dry run does
not create the Role; a real apiserver checks an identity without `bind` against it)."""

from kubectl_preevy.environment import _only_missing_own_roles

MANIFEST = """apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: env-role, namespace: ns}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: env-rolebind, namespace: ns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: env-role}
"""
OWN = (
    "Error from server (Forbidden): error when applying patch: rolebindings.rbac.authorization.k8s.io "
    '"env-rolebind" is forbidden: role.rbac.authorization.k8s.io "env-role" not found'
)


def test_a_binding_to_the_manifests_own_role_passes():
    assert _only_missing_own_roles(OWN + "\n", MANIFEST)


def test_a_binding_to_another_role_is_a_refusal():
    assert not _only_missing_own_roles(OWN.replace('"env-role"', '"admin-role"'), MANIFEST)


def test_any_other_error_is_one():
    other = (
        'Error from server (Invalid): error when applying patch: StatefulSet "x" is invalid: spec.replicas'
    )
    assert not _only_missing_own_roles(OWN + "\n" + other, MANIFEST)
    assert not _only_missing_own_roles("", MANIFEST)
