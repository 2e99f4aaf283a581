"""The RBAC authorizer (API half), as Kubernetes 1.32's `rbac` authorizer and registry behave.

Rules come from the store's ClusterRoles/Roles through ClusterRoleBindings/RoleBindings
(rbac.authorization.k8s.io/v1): verbs, apiGroups, resources (with `res/sub` and `*/sub`),
resourceNames, nonResourceURLs (with a trailing `*`). `system:masters` is allowed everything
before RBAC is consulted (the apiserver's privileged-group authorizer). Escalation prevention
(`ConfirmNoEscalation`, `bind`/`escalate`) and the Forbidden wording follow the apiserver.
"""

from __future__ import annotations

import dataclasses

from . import errors
from .authn import MASTERS, User

GROUP = "rbac.authorization.k8s.io"
CLUSTERROLES = f"clusterroles.{GROUP}"
ROLES = f"roles.{GROUP}"
CLUSTERROLEBINDINGS = f"clusterrolebindings.{GROUP}"
ROLEBINDINGS = f"rolebindings.{GROUP}"


@dataclasses.dataclass(frozen=True)
class Attributes:
    """What a request asks to do (the apiserver's authorizer.Attributes)."""

    user: User
    verb: str
    resource_request: bool = True
    path: str = ""
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


# ---------------------------------------------------------------- rule matching
def _has(items, value) -> bool:
    return value in (items or ())


def rule_allows(rule: dict, a: Attributes) -> bool:
    verbs = rule.get("verbs") or []
    if not (_has(verbs, "*") or _has(verbs, a.verb)):
        return False
    if not a.resource_request:
        return any(
            u == "*" or u == a.path or (u.endswith("*") and a.path.startswith(u[:-1]))
            for u in rule.get("nonResourceURLs") or []
        )
    groups = rule.get("apiGroups") or []
    if not (_has(groups, "*") or _has(groups, a.api_group)):
        return False
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    if not any(
        r == "*" or r == combined or (a.subresource and r == f"*/{a.subresource}")
        for r in rule.get("resources") or []
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or a.name in names


def _subject_matches(subject: dict, user: User, binding_namespace: str) -> bool:
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == user.name
    if kind == "Group":
        return subject.get("name") in user.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_namespace
        return user.name == f"system:serviceaccount:{ns}:{subject.get('name')}"
    return False


def _describe_subject(subject: dict, binding_namespace: str) -> str:
    if subject.get("kind") == "ServiceAccount":
        ns = subject.get("namespace") or binding_namespace
        return f'ServiceAccount "{subject.get("name")}/{ns}"'
    return f'{subject.get("kind")} "{subject.get("name")}"'


class Authorizer:
    def __init__(self, store):
        self.store = store

    def _role_rules(self, ref: dict, namespace: str) -> tuple[list[dict] | None, str]:
        """Rules of a roleRef, or (None, the lister's NotFound text)."""
        name = ref.get("name", "")
        if ref.get("kind") == "Role":
            role = self.store.get(ROLES, namespace, name)
            return (role.get("rules") or [] if role else None), f'role.{GROUP} "{name}" not found'
        role = self.store.get(CLUSTERROLES, None, name)
        return (role.get("rules") or [] if role else None), f'clusterrole.{GROUP} "{name}" not found'

    def _visit(self, user: User, namespace: str):
        """(binding description, rules) of every binding that applies to `user` in `namespace`
        (cluster bindings first); missing roles yield (None, error text)."""
        for b in self.store.list(CLUSTERROLEBINDINGS):
            for s in b.get("subjects") or []:
                if _subject_matches(s, user, ""):
                    rules, missing = self._role_rules(b.get("roleRef") or {}, "")
                    ref = b.get("roleRef") or {}
                    desc = (
                        f'ClusterRoleBinding "{b["metadata"]["name"]}" of {ref.get("kind")} '
                        f'"{ref.get("name")}" to {_describe_subject(s, "")}'
                    )
                    yield (desc, rules) if rules is not None else (None, missing)
                    break
        if not namespace:
            return
        for b in self.store.list(ROLEBINDINGS, namespace):
            for s in b.get("subjects") or []:
                if _subject_matches(s, user, namespace):
                    ref = b.get("roleRef") or {}
                    rules, missing = self._role_rules(ref, namespace)
                    desc = (
                        f'RoleBinding "{b["metadata"]["name"]}/{namespace}" of {ref.get("kind")} '
                        f'"{ref.get("name")}" to {_describe_subject(s, namespace)}'
                    )
                    yield (desc, rules) if rules is not None else (None, missing)
                    break

    def authorize(self, a: Attributes) -> tuple[bool, str]:
        """(allowed, reason) as the apiserver's authorizer chain answers."""
        if MASTERS in a.user.groups:
            return True, ""
        problems = []
        for desc, rules in self._visit(a.user, a.namespace if a.resource_request else ""):
            if desc is None:
                problems.append(rules)
                continue
            if any(rule_allows(r, a) for r in rules):
                return True, f"RBAC: allowed by {desc}"
        return False, _rbac_errors(problems)

    def rules_for(self, user: User, namespace: str) -> tuple[list[dict], list[str]]:
        """Every rule `user` holds in `namespace` (cluster-wide ones included), and resolution errors."""
        rules: list[dict] = []
        problems: list[str] = []
        for desc, rs in self._visit(user, namespace):
            if desc is None:
                problems.append(rs)
            else:
                rules.extend(rs)
        return rules, problems

    def allowed(
        self, user: User, verb: str, group: str, resource: str, namespace: str, name: str = ""
    ) -> bool:
        return self.authorize(Attributes(user, verb, True, "", namespace, group, "", resource, "", name))[0]

    # ---------------------------------------------------------------- escalation prevention
    def confirm_no_escalation(self, user: User, namespace: str, rules: list[dict]) -> str | None:
        """None when `user` holds every permission in `rules` (in `namespace`), else the apiserver's
        message naming the missing ones."""
        if MASTERS in user.groups:
            return None
        owner, problems = self.rules_for(user, namespace)
        missing = [r for rule in rules for r in breakdown(rule) if not any(covers(o, r) for o in owner)]
        if not missing:
            return None
        lines = sorted({compact_string(r) for r in compact(missing)})
        groups = " ".join(f'"{g}"' for g in user.groups)
        msg = (
            f'user "{user.name}" (groups=[{groups}]) is attempting to grant RBAC permissions not '
            "currently held:\n" + "\n".join(lines)
        )
        if problems:
            msg += f"; resolution errors: [{', '.join(problems)}]"
        return msg

    def check_role_write(self, user: User, key: str, obj: dict) -> None:
        """Creating/updating a Role or ClusterRole: no permission the writer lacks, unless it may `escalate`."""
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or ""
        resource = key.split(".", 1)[0]
        if self.allowed(user, "escalate", GROUP, resource, namespace, meta.get("name", "")):
            return
        rules = list(obj.get("rules") or [])
        if key == CLUSTERROLES and obj.get("aggregationRule"):
            return  # the aggregated rules are written by the controller; the apiserver checks them then
        why = self.confirm_no_escalation(user, namespace, rules)
        if why:
            raise errors.forbidden(resource, GROUP, meta.get("name", ""), why)

    def check_binding_write(self, user: User, key: str, obj: dict) -> None:
        """Creating/updating a binding: the writer may `bind` the role, or holds all its permissions."""
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or ""
        resource = key.split(".", 1)[0]
        ref = obj.get("roleRef") or {}
        ref_resource = "roles" if ref.get("kind") == "Role" else "clusterroles"
        if self.allowed(user, "bind", GROUP, ref_resource, namespace, ref.get("name", "")):
            return
        if MASTERS in user.groups:
            return
        rules, missing = self._role_rules(ref, namespace)
        if rules is None:
            raise errors.forbidden(resource, GROUP, meta.get("name", ""), missing)
        why = self.confirm_no_escalation(user, namespace, rules)
        if why:
            raise errors.forbidden(resource, GROUP, meta.get("name", ""), why)


def breakdown(rule: dict) -> list[dict]:
    """One rule per (group, resource, verb[, name]) and per (url, verb), as rbac validation does."""
    out: list[dict] = []
    for g in rule.get("apiGroups") or []:
        for r in rule.get("resources") or []:
            for v in rule.get("verbs") or []:
                names = rule.get("resourceNames") or []
                if names:
                    out.extend(
                        {"apiGroups": [g], "resources": [r], "verbs": [v], "resourceNames": [n]}
                        for n in names
                    )
                else:
                    out.append({"apiGroups": [g], "resources": [r], "verbs": [v]})
    for u in rule.get("nonResourceURLs") or []:
        for v in rule.get("verbs") or []:
            out.append({"nonResourceURLs": [u], "verbs": [v]})
    return out


def _resources_cover(owner: list[str], wanted: list[str]) -> bool:
    if "*" in owner:
        return True
    for path in wanted:
        if path in owner:
            continue
        if "/" not in path or "*/" + path.split("/", 1)[1] not in owner:
            return False
    return True


def _urls_cover(owner: list[str], wanted: list[str]) -> bool:
    for u in wanted:
        if not any(o == "*" or o == u or (o.endswith("*") and u.startswith(o[:-1])) for o in owner):
            return False
    return True


def covers(owner: dict, sub: dict) -> bool:
    ov, og = owner.get("verbs") or [], owner.get("apiGroups") or []
    sv, sg = sub.get("verbs") or [], sub.get("apiGroups") or []
    on, sn = owner.get("resourceNames") or [], sub.get("resourceNames") or []
    return (
        ("*" in ov or all(v in ov for v in sv))
        and ("*" in og or all(g in og for g in sg))
        and _resources_cover(owner.get("resources") or [], sub.get("resources") or [])
        and _urls_cover(owner.get("nonResourceURLs") or [], sub.get("nonResourceURLs") or [])
        and (not on or all(n in on for n in sn))
        and (bool(sn) or not on)
    )


def compact(rules: list[dict]) -> list[dict]:
    """Merges the verbs of simple rules (one group, one resource, at most one name)."""
    out: list[dict] = []
    simple: dict[tuple, dict] = {}
    for r in rules:
        g, res, names = r.get("apiGroups") or [], r.get("resources") or [], r.get("resourceNames") or []
        if len(g) == 1 and len(res) == 1 and not r.get("nonResourceURLs") and len(names) <= 1:
            k = (g[0], res[0], tuple(names))
            if k in simple:
                simple[k]["verbs"] = simple[k]["verbs"] + list(r.get("verbs") or [])
            else:
                simple[k] = {**r, "verbs": list(r.get("verbs") or [])}
        else:
            out.append(r)
    return out + list(simple.values())


def _q(items: list[str]) -> str:
    return "[" + " ".join(f'"{i}"' for i in items) + "]"


def compact_string(rule: dict) -> str:
    """PolicyRule.CompactString()."""
    parts = []
    for key, label in (
        ("apiGroups", "APIGroups"),
        ("resources", "Resources"),
        ("nonResourceURLs", "NonResourceURLs"),
        ("resourceNames", "ResourceNames"),
        ("verbs", "Verbs"),
    ):
        if rule.get(key):
            parts.append(f"{label}:{_q(rule[key])}")
    return "{" + ", ".join(parts) + "}"


def _rbac_errors(problems: list[str]) -> str:
    """utilerrors.NewAggregate's text, prefixed as the RBAC authorizer prefixes it."""
    if not problems:
        return ""
    return "RBAC: " + (problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]")


# ---------------------------------------------------------------- the Forbidden answer
def forbidden_message(a: Attributes) -> str:
    if not a.resource_request:
        return f'User "{a.user.name}" cannot {a.verb} path "{a.path}"'
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    where = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    return f'User "{a.user.name}" cannot {a.verb} resource "{resource}" in API group "{a.api_group}" {where}'


def forbidden(a: Attributes, reason: str = "") -> errors.ApiError:
    why = forbidden_message(a) + (f": {reason}" if reason else "")
    if not a.resource_request:
        return errors.ApiError(errors.status(403, "Forbidden", f"forbidden: {why}", {}))
    return errors.forbidden(a.resource, a.api_group, a.name, why)
