"""Checks before anything is created: permissions (one SelfSubjectRulesReview), the namespace's Pod
Security level against the template's pods, the StorageClass of its claims, quota headroom.

`gather` asks the cluster (its few reads run concurrently); `evaluate` is pure and gives one Check per
row of `kubectl preevy doctor`; `require` is what `up` runs: it refuses with one line.
"""

import dataclasses
import functools
import json
from collections.abc import Callable, Collection, Sequence
from typing import Any

from kubectl_preevy import console, messages, parallel, permissions, podsecurity, quota
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.kubectl import Kubectl
from kubectl_preevy.permissions import Permission

OK, FAIL, WARN, SKIPPED = "ok", "fail", "warn", "skipped"
DEFAULT_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)
MAX_PARALLEL = 8


@dataclasses.dataclass(frozen=True)
class Check:
    """One preflight check's result, for the commands it concerns."""

    check: str  # permission | namespace | pod security | storage class | quota
    subject: str
    result: str  # ok | fail | warn | skipped
    detail: str
    fix: str = ""
    commands: frozenset[str] = frozenset({permissions.UP, permissions.DOWN, permissions.CONNECT})
    exit_code: ExitCode = ExitCode.REFUSED

    def as_json(self) -> dict[str, object]:
        return {
            "check": self.check,
            "subject": self.subject,
            "result": self.result,
            "detail": self.detail,
            "fix": self.fix,
            "commands": sorted(self.commands),
        }


@dataclasses.dataclass
class Reading:
    """One read of the cluster: the parsed document, or why there is none (`forbidden`, `not found`...)."""

    document: dict[str, Any] | None = None
    problem: str = ""
    forbidden: bool = False
    not_found: bool = False


@dataclasses.dataclass
class Facts:
    """What preflight read from the cluster, once, for all its checks."""

    namespace: str
    rules: Reading
    namespace_object: Reading
    storage_classes: Reading
    quotas: Reading
    existing: bool = False  # the environment exists already (its quota usage is counted)
    access: dict[Permission, bool] = dataclasses.field(default_factory=dict)  # SelfSubjectAccessReviews


def _read(kubectl: Kubectl, *args: str, stdin: str | None = None) -> Reading:
    result = kubectl.run(*args, stdin=stdin)
    if result.ok:
        try:
            return Reading(document=json.loads(result.stdout))
        except json.JSONDecodeError:
            return Reading(problem="unreadable answer")
    text = result.stderr
    error = kubectl.error(result)
    if error.exit_code == ExitCode.CLUSTER and "namespaces" not in text:
        raise error  # unreachable, credentials refused, kubeconfig broken: no check means anything
    forbidden = "Forbidden" in text or "forbidden" in text
    return Reading(
        problem="forbidden" if forbidden else result.last_error_line(),
        forbidden=forbidden,
        not_found="NotFound" in text or "doesn't have a resource type" in text,
    )


def rules_review(kubectl: Kubectl) -> Reading:
    """The identity's rules in the namespace: one SelfSubjectRulesReview."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": kubectl.namespace},
    }
    return _read(kubectl, "create", "--validate=false", "-o", "json", "-f", "-", stdin=json.dumps(review))


def read_facts(kubectl: Kubectl, storage_class: str | None) -> Facts:
    """The rules, the namespace, the StorageClasses and the quotas, read concurrently (`existing` is left
    False: gather, or require's caller, says whether the environment exists)."""
    rules, namespace, (quotas, storage) = parallel.together(
        lambda: rules_review(kubectl),
        lambda: _namespace(kubectl),
        lambda: _quotas_and_storage(kubectl, storage_class),
    )
    return Facts(kubectl.namespace, rules, namespace, storage, quotas)


def gather(kubectl: Kubectl, storage_class: str | None, existing: Callable[[], bool]) -> Facts:
    """The reads of read_facts and whether the environment exists, concurrently."""
    facts: Facts
    facts, exists = parallel.together(lambda: read_facts(kubectl, storage_class), lambda: _exists(existing))
    return dataclasses.replace(facts, existing=bool(exists))


QUOTA_TYPES, STORAGE_TYPES = ("resourcequotas", "limitranges"), ("storageclasses.storage.k8s.io",)


def _quotas_and_storage(kubectl: Kubectl, storage_class: str | None) -> tuple[Reading, Reading]:
    """The ResourceQuotas and LimitRanges, and the StorageClasses (the one named), each as its own read would
    give it. Without a named class, in one read (one kubectl less): kubectl prints what it could list and
    says which types it may not, the reading of a refused type is then `forbidden`; any other failure, and
    each is read again alone."""
    if storage_class:
        quotas, named = parallel.together(
            lambda: _read(kubectl, "get", ",".join(QUOTA_TYPES), "-o", "json"),
            lambda: _read(kubectl, "get", "storageclass", storage_class, "-o", "json"),
        )
        return quotas, named
    result = kubectl.run("get", ",".join(QUOTA_TYPES + STORAGE_TYPES), "-o", "json")
    split = split_quotas_and_storage(result.ok, result.stdout, result.stderr)
    if split is not None:
        return split
    return _read(kubectl, "get", ",".join(QUOTA_TYPES), "-o", "json"), _read(
        kubectl, "get", ",".join(STORAGE_TYPES), "-o", "json"
    )


def split_quotas_and_storage(ok: bool, stdout: str, stderr: str) -> tuple[Reading, Reading] | None:
    """The quotas' and the StorageClasses' readings out of the one `kubectl get` of both; None when it
    failed otherwise than by a type's Forbidden (then each is read alone, and says its own problem)."""
    refused = {t for t in QUOTA_TYPES + STORAGE_TYPES if permissions.refused_type(t, stderr)}
    if not ok and (not refused or permissions.other_errors(stderr)):
        return None
    try:
        items: list[dict[str, Any]] = json.loads(stdout or "{}").get("items") or []
    except (json.JSONDecodeError, AttributeError):
        return None

    def reading(types: tuple[str, ...], kinds: tuple[str, ...]) -> Reading:
        if refused & set(types):
            return Reading(problem="forbidden", forbidden=True)
        return Reading(document={"kind": "List", "items": [i for i in items if i.get("kind") in kinds]})

    return reading(QUOTA_TYPES, ("ResourceQuota", "LimitRange")), reading(STORAGE_TYPES, ("StorageClass",))


def _namespace(kubectl: Kubectl) -> Reading:
    if kubectl.namespace_document is not None:
        return Reading(document=json.loads(kubectl.namespace_document))
    return _read(kubectl, "get", "namespace", kubectl.namespace, "-o", "json")


def _exists(existing: Callable[[], bool]) -> bool:
    try:
        return existing()
    except PreevyError:
        return False  # not listable: the permission check says so


def resolve_uncertain(kubectl: Kubectl, facts: Facts, needed: Sequence[Permission]) -> None:
    """When the rules review is incomplete (another authorizer, e.g. a webhook, also decides) or failed,
    a SelfSubjectAccessReview (`kubectl auth can-i`) for each permission the rules do not grant."""
    asked = uncertain(facts, needed)
    if not asked:
        return
    for start in range(0, len(asked), MAX_PARALLEL):
        batch = asked[start : start + MAX_PARALLEL]
        answers = parallel.together(*(functools.partial(_can_i, kubectl, p) for p in batch))
        facts.access.update(zip(batch, answers, strict=True))


def uncertain(facts: Facts, needed: Sequence[Permission]) -> list[Permission]:
    """The permissions the rules review leaves open: none when it is complete (what it does not grant is
    refused), else every one it does not grant."""
    document = facts.rules.document
    if document is not None and not (document.get("status") or {}).get("incomplete"):
        return []
    return [p for p in needed if not permissions.allowed(_resource_rules(facts), p)]


def _can_i(kubectl: Kubectl, permission: Permission) -> bool:
    resource, _, subresource = permission.resource.partition("/")
    name = f"{resource}.{permission.group}" if permission.group else resource
    args = [
        "auth",
        "can-i",
        permission.verb,
        name,
        *([f"--subresource={subresource}"] if subresource else []),
    ]
    return kubectl.run(*args).stdout.strip() == "yes"


def _resource_rules(facts: Facts) -> list[dict[str, Any]]:
    document = facts.rules.document or {}
    return list((document.get("status") or {}).get("resourceRules") or [])


def is_allowed(facts: Facts, permission: Permission) -> bool:
    return permissions.allowed(_resource_rules(facts), permission) or facts.access.get(permission, False)


def evaluate(
    facts: Facts,
    objects: Sequence[dict[str, Any]],
    needed: Sequence[Permission],
    *,
    storage_class: str | None,
) -> list[Check]:
    return [
        *namespace_checks(facts),
        *permission_checks(facts, needed),
        *pod_security_checks(facts, objects),
        *storage_checks(facts, objects, storage_class),
        *quota_checks(facts, objects),
    ]


def namespace_checks(facts: Facts) -> list[Check]:
    ns = facts.namespace
    reading = facts.namespace_object
    if reading.document is None and not reading.not_found:
        return []  # not readable (a Role cannot grant it): the Pod Security check says it was skipped
    document = reading.document or {}
    terminating = (document.get("status") or {}).get("phase") == "Terminating" or (
        document.get("metadata") or {}
    ).get("deletionTimestamp")
    if reading.not_found or terminating:
        message = messages.NAMESPACE_MISSING if reading.not_found else messages.NAMESPACE_TERMINATING
        return [Check("namespace", ns, FAIL, message.format(namespace=ns), exit_code=ExitCode.CLUSTER)]
    return [Check("namespace", ns, OK, "exists")]


def permission_checks(facts: Facts, needed: Sequence[Permission]) -> list[Check]:
    """One row per type: the verbs it needs, those missing, and which commands they stop."""
    rows = []
    for (group, resource), verbs in permissions.grouped(needed).items():
        of_type = [p for p in needed if (p.group, p.resource) == (group, resource)]
        missing = [p for p in of_type if not is_allowed(facts, p)]
        subject = of_type[0].type_name
        if not missing:
            rows.append(Check("permission", subject, OK, ", ".join(verbs)))
            continue
        missing_verbs = [p.verb for p in missing]
        commands = frozenset().union(*(p.commands for p in missing))
        why = "; ".join(dict.fromkeys(p.why for p in missing))
        if all(p.optional for p in missing):
            rows.append(
                Check(
                    "permission",
                    subject,
                    SKIPPED,
                    messages.PERMISSION_OPTIONAL.format(
                        permission=permissions.describe(group, resource, missing_verbs), why=why
                    ),
                    commands=frozenset(),
                )
            )
            continue
        rows.append(
            Check(
                "permission",
                subject,
                FAIL,
                messages.PERMISSION_MISSING.format(
                    permission=permissions.describe(group, resource, missing_verbs),
                    namespace=facts.namespace,
                    why=why,
                    commands=", ".join(sorted(commands)),
                ),
                messages.PERMISSION_FIX.format(namespace=facts.namespace),
                commands=commands,
            )
        )
    return rows


def pod_security_checks(facts: Facts, objects: Sequence[dict[str, Any]]) -> list[Check]:
    ns = facts.namespace
    templates = podsecurity.pod_templates(list(objects))
    if facts.namespace_object.document is None:
        return [
            Check(
                "pod security",
                ns,
                SKIPPED,
                messages.PSA_SKIPPED.format(namespace=ns, error=facts.namespace_object.problem),
                commands=frozenset(),
            )
        ]
    labels = (facts.namespace_object.document.get("metadata") or {}).get("labels") or {}
    levels = podsecurity.namespace_levels(labels)
    rows = []
    for description, pod in templates:
        refused = podsecurity.violations(pod.get("spec") or {}, levels["enforce"], pod.get("metadata"))
        warned = podsecurity.violations(pod.get("spec") or {}, levels["warn"], pod.get("metadata"))
        if refused:
            rows.append(
                Check(
                    "pod security",
                    description,
                    FAIL,
                    messages.PSA_REFUSED.format(
                        namespace=ns, level=levels["enforce"], what=description, violations="; ".join(refused)
                    ),
                    messages.PSA_FIX.format(namespace=ns),
                    commands=frozenset({permissions.UP}),
                )
            )
        elif warned:
            rows.append(
                Check(
                    "pod security",
                    description,
                    WARN,
                    messages.PSA_WARNED.format(
                        level=levels["warn"], what=description, violations="; ".join(warned)
                    ),
                    commands=frozenset(),
                )
            )
        else:
            rows.append(
                Check("pod security", description, OK, f"enforce={levels['enforce']}", commands=frozenset())
            )
    return rows


def storage_checks(facts: Facts, objects: Sequence[dict[str, Any]], storage_class: str | None) -> list[Check]:
    claims = quota.claims(objects)
    if not claims:
        return []
    reading = facts.storage_classes
    wanted = {spec.get("storageClassName", storage_class) for _, spec in claims}
    wanted.discard("")  # "": bound to a PersistentVolume made by hand, no class involved
    if reading.document is None and not (storage_class and reading.not_found and not reading.forbidden):
        return [
            Check(
                "storage class",
                ", ".join(sorted(w or "(default)" for w in wanted)),
                SKIPPED,
                messages.STORAGE_CLASS_SKIPPED.format(error=reading.problem),
                commands=frozenset(),
            )
        ]
    document = reading.document or {}
    classes = document.get("items", [document] if document.get("kind") == "StorageClass" else [])
    names = {(c.get("metadata") or {}).get("name") for c in classes}
    rows = []
    for name in sorted(wanted, key=lambda w: w or ""):
        if name is None:
            default = default_class(classes)
            if default:
                rows.append(
                    Check("storage class", default, OK, "the default StorageClass", commands=frozenset())
                )
            else:
                rows.append(
                    Check(
                        "storage class",
                        "(default)",
                        FAIL,
                        messages.NO_DEFAULT_STORAGE_CLASS,
                        messages.STORAGE_CLASS_FIX,
                        commands=frozenset({permissions.UP}),
                    )
                )
        elif name in names:
            rows.append(Check("storage class", name, OK, "exists", commands=frozenset()))
        else:
            rows.append(
                Check(
                    "storage class",
                    name,
                    FAIL,
                    messages.STORAGE_CLASS_MISSING.format(name=name),
                    messages.STORAGE_CLASS_FIX,
                    commands=frozenset({permissions.UP}),
                )
            )
    return rows


def default_class(classes: Sequence[dict[str, Any]]) -> str | None:
    """The default StorageClass (the newest when several are marked, as the API server picks it)."""
    defaults = [
        c
        for c in classes
        if any(
            ((c.get("metadata") or {}).get("annotations") or {}).get(a) == "true"
            for a in DEFAULT_CLASS_ANNOTATIONS
        )
    ]
    if not defaults:
        return None
    newest = max(
        defaults, key=lambda c: (c["metadata"].get("creationTimestamp", ""), c["metadata"].get("name", ""))
    )
    return str(newest["metadata"]["name"])


def quota_checks(facts: Facts, objects: Sequence[dict[str, Any]]) -> list[Check]:
    ns = facts.namespace
    if facts.quotas.document is None:
        return [
            Check(
                "quota",
                ns,
                SKIPPED,
                messages.QUOTA_SKIPPED.format(error=facts.quotas.problem),
                commands=frozenset(),
            )
        ]
    items = facts.quotas.document.get("items") or []
    quotas = [i for i in items if i.get("kind") == "ResourceQuota"]
    if not quotas:
        return [Check("quota", ns, OK, "no ResourceQuota", commands=frozenset())]
    if facts.existing:
        return [
            Check(
                "quota", ns, OK, "the environment exists: its usage is already counted", commands=frozenset()
            )
        ]
    limit_ranges = [i for i in items if i.get("kind") == "LimitRange"]
    storage = facts.storage_classes.document or {}
    default = default_class(storage.get("items") or [])
    short = quota.shortfalls(objects, quotas, limit_ranges, default)
    if not short:
        return [
            Check(
                "quota",
                ", ".join(q["metadata"]["name"] for q in quotas),
                OK,
                "enough headroom",
                commands=frozenset(),
            )
        ]
    return [
        Check(
            "quota",
            s.quota,
            FAIL,
            messages.QUOTA_SHORT.format(quota=s.quota, detail=s.detail),
            messages.QUOTA_FIX.format(quota=s.quota, namespace=ns),
            commands=frozenset({permissions.UP}),
        )
        for s in short
    ]


def run_checks(
    kubectl: Kubectl,
    objects: Sequence[dict[str, Any]],
    *,
    existing: Callable[[], bool],
    storage_class: str | None,
    read: "parallel.Begun[Facts] | None" = None,
) -> list[Check]:
    """existing: whether the environment exists (run concurrently with the reads); read: read_facts begun
    already (then existing runs while it ends)."""
    needed = permissions.required(objects)
    if read is None:
        facts = gather(kubectl, storage_class, existing)
    else:
        exists = _exists(existing)
        facts = dataclasses.replace(read.result(), existing=exists, access={})
    resolve_uncertain(kubectl, facts, needed)
    return evaluate(facts, objects, needed, storage_class=storage_class)


def refusal(checks: Sequence[Check], command: str, also: Collection[str] = ()) -> PreevyError | None:
    """The one-line error for what stops `command` (and what it also does, e.g. `up --recreate` deletes as
    `down` does): every missing permission in one line, else the first failed policy check."""
    needs = {command.split()[0], *also}
    failed = [c for c in checks if c.result == FAIL and (needs & c.commands or c.check == "namespace")]
    if not failed:
        return None
    first = failed[0]
    if first.check == "permission":
        missing = [c.detail for c in failed if c.check == "permission"]
        return PreevyError(
            messages.REFUSED_PERMISSIONS.format(command=command, missing="; ".join(missing), fix=first.fix),
            ExitCode.REFUSED,
        )
    return PreevyError(f"{first.detail}: {first.fix}" if first.fix else first.detail, first.exit_code)


def require(
    kubectl: Kubectl,
    objects: Sequence[dict[str, Any]],
    *,
    existing: Callable[[], bool],
    storage_class: str | None,
    command: str,
    also: Collection[str] = (),
    read: "parallel.Begun[Facts] | None" = None,
) -> None:
    """`up`'s checks: refuse with one line, say which checks were skipped. read: as run_checks."""
    checks = run_checks(kubectl, objects, existing=existing, storage_class=storage_class, read=read)
    error = refusal(checks, command, also)
    if error:
        raise error
    for check in checks:  # (a Pod Security `warn` is said by the cluster itself when the objects are applied)
        if check.result == SKIPPED and check.check != "permission":
            console.warn(check.detail)
