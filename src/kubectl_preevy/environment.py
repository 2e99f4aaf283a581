"""An environment in the cluster: found by its labels, applied, waited for, explained, deleted.

An environment is the objects of one rendered template, all labelled with its instance name;
its docker-host StatefulSet carries the env id, the creation time and the list of object types.
"""

import dataclasses
import json
import re
import subprocess
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubectl_preevy import console, messages, naming, parallel, process, retry
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.kubectl import Kubectl, duration

if TYPE_CHECKING:  # datetime and permissions are imported where used: `ls` needs neither (start-up time)
    import datetime

FIELD_MANAGER = "kubectl-preevy"
# Types deleted with every environment whatever its template says: the pods (so that `down`
# waits until their processes are gone) and the claims the StatefulSet made.
ALWAYS_DELETED_TYPES = ("Pod", "PersistentVolumeClaim")
# When the docker-host StatefulSet is already gone (an interrupted `down`), what may be left.
LEFTOVER_TYPES = (
    "statefulsets.apps",
    "pods",
    "persistentvolumeclaims",
    "configmaps",
    "serviceaccounts",
    "secrets",
    "services",
    "roles.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
)
POLL_SECONDS = 2.0  # between looks for a true failure while waiting
# with on_pod, looks for it only (seconds from the start), until it wants no more: the looks that diagnose
# keep their pace (a container that exits is said as it was, once restarted)
QUICK_LOOKS_AT = (0.3, 0.6, 1.0, 1.5)
REASON_MAX_LENGTH = 300  # of the reason in the one-line `not ready` error
# (these patterns are compiled at their first use, by re's cache: only a failure needs them)
_LEGACY_FORBIDDEN = r'deployments\.apps is forbidden|cannot list resource "deployments"'
# kubectl: the type is not in discovery (a CRD removed since the environment was made)
_NOT_SERVED = (
    r"the server doesn't have a resource type|no matches for kind|could not find the requested resource"
)
# a dry run refused by authorization or admission rather than by validation
_REFUSED = r"\(Forbidden\)|is forbidden|exceeded quota|violates PodSecurity|admission webhook .* denied"
_IMMUTABLE = r"(Forbidden: updates to statefulset spec[^\n]*|field is immutable[^\n]*)"


LEGACY_TYPES = ("deployments.apps", *LEFTOVER_TYPES)  # a docker-host Deployment (Preevy before v0.0.60)


@dataclasses.dataclass
class Environment:
    """An environment, as its docker-host object (StatefulSet, or legacy Deployment) describes it."""

    statefulset: dict[
        str, Any
    ]  # the docker-host object: a StatefulSet, or a Deployment for a legacy environment

    @property
    def kind(self) -> str:
        return str(self.statefulset.get("kind") or "StatefulSet")

    @property
    def legacy(self) -> bool:
        """An environment of Preevy before v0.0.60: its docker host is a Deployment."""
        return self.kind == "Deployment"

    @property
    def profile_id(self) -> str:
        return str(
            self._annotations.get(naming.ANNOTATION_PROFILE_ID)
            or self._labels.get(naming.LABEL_PROFILE_ID, "")
        )

    @property
    def name(self) -> str:
        return str(self.statefulset["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.statefulset["metadata"]["namespace"])

    @property
    def instance(self) -> str:
        return str(self._labels.get(naming.LABEL_INSTANCE, self.name))

    @property
    def env_id(self) -> str:
        return str(
            self._annotations.get(naming.ANNOTATION_ENV_ID) or self._labels.get(naming.LABEL_ENV_ID, "")
        )

    @property
    def created_at(self) -> str:
        return str(
            self._annotations.get(naming.ANNOTATION_CREATED_AT)
            or self.statefulset["metadata"].get("creationTimestamp", "")
        )

    @property
    def template_hash(self) -> str:
        return str(self._annotations.get(naming.ANNOTATION_TEMPLATE_HASH, ""))

    @property
    def ready_replicas(self) -> str:
        status = self.statefulset.get("status") or {}
        return f"{status.get('readyReplicas', 0)}/{self.statefulset['spec'].get('replicas', 1)}"

    @property
    def first_container(self) -> str:
        return str(self.statefulset["spec"]["template"]["spec"]["containers"][0]["name"])

    @property
    def types(self) -> list[str]:
        """kubectl resource names of every type of the environment (all-types annotation), pods and PVCs."""
        if self.legacy:
            return list(LEGACY_TYPES)
        try:
            declared = json.loads(self._annotations.get(naming.ANNOTATION_ALL_TYPES, "[]"))
        except json.JSONDecodeError:
            declared = []
        names = [
            resource_name(t["apiVersion"], t["kind"]) for t in declared if "apiVersion" in t and "kind" in t
        ]
        names = names or [resource_name("apps/v1", "StatefulSet")]
        return list(dict.fromkeys(names + list(ALWAYS_DELETED_TYPES)))

    @property
    def deleting(self) -> bool:
        """Being deleted: kubectl's DELETE was accepted (deletionTimestamp: a foreground deletion keeps the
        object until its pods are gone), or labelled so by the `down` of an earlier version."""
        return bool(self.statefulset["metadata"].get("deletionTimestamp")) or (
            self._labels.get(naming.LABEL_DELETED) == "true"
        )

    @property
    def deleted_line(self) -> str:
        """What `kubectl delete` prints once its DELETE of the docker host was accepted."""
        return f'{self.kind.lower()}.apps "{self.name}" deleted'

    @property
    def _labels(self) -> dict[str, Any]:
        return self.statefulset["metadata"].get("labels") or {}

    @property
    def _annotations(self) -> dict[str, Any]:
        return self.statefulset["metadata"].get("annotations") or {}


def resource_name(api_version: str, kind: str) -> str:
    """A type as kubectl names it unambiguously: `Kind.version.group`, or just `Kind` for the core group."""
    if "/" not in api_version:
        return kind
    group, version = api_version.split("/", 1)
    return f"{kind}.{version}.{group}"


def find(
    kubectl: Kubectl,
    profile_id: str,
    env_id: str,
    include_deleted: bool = False,
    legacy: bool = False,
    meanwhile: Callable[[], object] | None = None,
) -> list[Environment]:
    """The environment's docker-host StatefulSets, newest first (`preevy.dev/created-at`, as Preevy picks;
    more than one only after concurrent ups of Preevy). legacy: docker-host Deployments too. meanwhile: run
    while the read runs (Kubectl.run)."""
    selector = naming.env_selector(
        profile_id, env_id, deleted=None if include_deleted else False, docker_host=True
    )
    return _docker_hosts(kubectl, selector, legacy, include_deleted, meanwhile=meanwhile)


def find_with_instances(
    kubectl: Kubectl,
    profile_id: str,
    env_id: str,
    meanwhile: Callable[[], object] | None = None,
    legacy: bool = False,
) -> tuple[list[Environment], set[str]]:
    """In one read, the environment's docker-host StatefulSets, deleted ones too (newest first), and every
    instance name its objects still carry (those of a `down --no-wait` in progress, or an interrupted
    one, included). Types this identity may not list are passed over (it could not delete their objects
    either). meanwhile: run while the read runs (Kubectl.run). legacy: docker-host Deployments too."""
    from kubectl_preevy import permissions

    selector = naming.env_selector(profile_id, env_id, deleted=None)
    types = LEGACY_TYPES if legacy else LEFTOVER_TYPES
    host_kinds = ("StatefulSet", "Deployment") if legacy else ("StatefulSet",)
    result = kubectl.run("get", ",".join(types), "-l", selector, "-o", "json", meanwhile=meanwhile)
    if not result.ok and (
        permissions.other_errors(result.stderr)
        or not permissions.refused_requests(result.stderr)
        or permissions.refused_type(LEFTOVER_TYPES[0], result.stderr)  # the docker hosts: as find says it
    ):
        raise kubectl.error(result)
    try:
        items = json.loads(result.stdout).get("items") or [] if result.stdout.strip() else []
    except json.JSONDecodeError:
        raise kubectl.error(result) from None
    labels = [(item, item["metadata"].get("labels") or {}) for item in items]
    hosts = [
        Environment(item)
        for item, item_labels in labels
        if item.get("kind") in host_kinds
        and item_labels.get(naming.LABEL_COMPONENT) == naming.DOCKER_HOST_COMPONENT
    ]
    instances = {
        str(item_labels[naming.LABEL_INSTANCE])
        for _, item_labels in labels
        if naming.LABEL_INSTANCE in item_labels
    }
    return sorted(hosts, key=lambda env: env.created_at, reverse=True), instances


def list_all(
    kubectl: Kubectl,
    profile_id: str | None,
    *,
    include_deleted: bool = False,
    all_namespaces: bool = False,
    legacy: bool = False,
    meanwhile: Callable[[], object] | None = None,
) -> list[Environment]:
    """The environments of the profile (profile_id None: of every profile) in the namespace, or in every
    namespace, newest first; legacy: docker-host Deployments too (Preevy before v0.0.60). meanwhile: run while
    the read runs (Kubectl.run)."""
    selector = ",".join(
        [
            naming.profile_selector(profile_id) if profile_id is not None else naming.LABEL_PROFILE_ID,
            naming.LABEL_ENV_ID,
            *([] if include_deleted else [f"{naming.LABEL_DELETED}!=true"]),
            f"{naming.LABEL_COMPONENT}={naming.DOCKER_HOST_COMPONENT}",
        ]
    )
    return _docker_hosts(kubectl, selector, legacy, include_deleted, all_namespaces, meanwhile)


def _docker_hosts(
    kubectl: Kubectl,
    selector: str,
    legacy: bool,
    include_deleted: bool,
    every_namespace: bool = False,
    meanwhile: Callable[[], object] | None = None,
) -> list[Environment]:
    """legacy: Deployments too (read beside the StatefulSets), unless listing them is forbidden (a Role made
    by `kubectl preevy rbac` has no Deployments: whoever holds only it cannot have made, nor delete, a legacy
    environment). include_deleted False: those being deleted are passed over (the selector excludes those
    labelled so). meanwhile: run while the first read runs."""
    statefulsets, deployments = parallel.together(
        lambda: _listed(kubectl, "statefulsets", selector, every_namespace, meanwhile),
        (lambda: _listed(kubectl, "deployments", selector, every_namespace)) if legacy else None,
    )
    if not statefulsets.ok:
        raise kubectl.error(statefulsets)
    items = _items(kubectl, statefulsets, "StatefulSet")
    if deployments is not None:
        if deployments.ok:
            items += _items(kubectl, deployments, "Deployment")
        elif not re.search(_LEGACY_FORBIDDEN, deployments.stderr):
            raise kubectl.error(deployments)
    envs = [env for env in map(Environment, items) if include_deleted or not env.deleting]
    return sorted(envs, key=lambda env: env.created_at, reverse=True)


def _listed(
    kubectl: Kubectl,
    plural: str,
    selector: str,
    every_namespace: bool,
    meanwhile: Callable[[], object] | None = None,
) -> process.Result:
    """The apps/v1 objects of that type with these labels, as the API server lists them: `get --raw` skips
    kubectl's discovery, decoding and printing (~10 ms of a listing of 10 environments)."""
    import urllib.parse

    where = "" if every_namespace else f"/namespaces/{urllib.parse.quote(kubectl.namespace, safe='')}"
    query = urllib.parse.urlencode({"labelSelector": selector})
    return kubectl.run("get", "--raw", f"/apis/apps/v1{where}/{plural}?{query}", meanwhile=meanwhile)


def _items(kubectl: Kubectl, result: process.Result, kind: str) -> list[dict[str, Any]]:
    """A list's items, each with its kind and apiVersion (the API server leaves them out of list items;
    `kubectl get -o json` puts them back, as here)."""
    try:
        items: list[dict[str, Any]] = json.loads(result.stdout).get("items") or []
    except (json.JSONDecodeError, AttributeError):
        raise kubectl.error(result) from None
    for item in items:
        item.setdefault("kind", kind)
        item.setdefault("apiVersion", "apps/v1")
    return items


def deletion_targets(
    kubectl: Kubectl, profile_id: str, env_id: str
) -> dict[str, tuple[list[str], Environment | None]]:
    """What deleting the environment deletes: instance -> the types of its objects, and its docker host (None:
    gone already, or never made). One read finds them all: the docker hosts (Deployments too), those being
    deleted included (an interrupted `down` to finish), and every other instance the environment's objects
    carry (a docker host deleted already; a first apply interrupted before it made one, beside the instance
    a later `up` made)."""
    hosts, instances = find_with_instances(kubectl, profile_id, env_id, legacy=True)
    targets: dict[str, tuple[list[str], Environment | None]] = {
        env.instance: (env.types, env) for env in hosts
    }
    for instance in sorted(instances - targets.keys()):
        targets[instance] = (list(LEFTOVER_TYPES), None)
    return targets


def newest(envs: list[Environment], env_id: str, down: str = "") -> Environment | None:
    """The environment to act on: the newest, as Preevy picks it, with a warning when there are others
    (down: the command that removes them all)."""
    if len(envs) > 1:
        console.warn(
            messages.DUPLICATE_ENVIRONMENTS.format(
                env_id=env_id,
                instances=", ".join(e.instance for e in envs),
                chosen=envs[0].instance,
                down=down or f"kubectl preevy down --id {env_id}",
            )
        )
    return envs[0] if envs else None


def _apply_args(server_side: bool, new: bool) -> list[str]:
    if server_side:
        return ["apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts", "-f", "-"]
    if new:
        return ["create", "--save-config", "-f", "-"]
    return ["apply", "-f", "-"]


def validate(kubectl: Kubectl, manifest: str, *, server_side: bool, new: bool) -> None:
    """The whole manifest through the API server's validation and admission, persisting nothing
    (`--dry-run=server`): unknown fields or kinds, invalid values, admission refusals end here, before
    any object exists. ImmutableChange when only an in-place update is refused."""
    result = kubectl.run(*_apply_args(server_side, new), "--dry-run=server", stdin=manifest)
    if result.ok or _only_missing_own_roles(result.stderr, manifest):
        return
    _raise_immutable(result.stderr)
    detail = _one_line(_first_error(result.stderr), limit=REASON_MAX_LENGTH)
    if re.search(_REFUSED, result.stderr):
        raise PreevyError(messages.VALIDATION_REFUSED.format(detail=detail), ExitCode.REFUSED)
    error = kubectl.error(result)
    if error.exit_code != ExitCode.FAILURE:  # unreachable cluster, missing namespace...: already clear
        raise error
    if retry.is_transient(result.stderr):  # still failing after the retries: not the template's fault
        raise error
    raise PreevyError(messages.VALIDATION_FAILED.format(detail=detail), ExitCode.USAGE)


def _only_missing_own_roles(stderr: str, manifest: str) -> bool:
    """Whether every error of a dry run is a binding to a Role of the manifest itself, which a dry run
    does not create: an identity without `bind` has its bindings checked against the bound Role, which
    then "is not found" (a real apiserver answers so too). The real apply creates the Role first."""
    import yaml

    errors = [line for line in stderr.splitlines() if line.startswith(("Error from server", "error:"))]
    if not errors:
        return False
    roles = {
        (document.get("kind"), (document.get("metadata") or {}).get("name"))
        for document in yaml.safe_load_all(manifest)
        if isinstance(document, dict)
    }
    for line in errors:
        missing = re.search(_MISSING_ROLE, line)
        if not missing or (_ROLE_KINDS[missing.group(1)], missing.group(2)) not in roles:
            return False
    return True


_MISSING_ROLE = r'is forbidden: (role|clusterrole)\.rbac\.authorization\.k8s\.io "([^"]+)" not found'
_ROLE_KINDS = {"role": "Role", "clusterrole": "ClusterRole"}


def _first_error(stderr: str) -> str:
    """kubectl's first error line (one per refused object), without its prefix."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("Error from server", "error:"))] or lines or ["?"]
    return re.sub(r"^(error: |Error from server( \(\w+\))?: )", "", errors[0])


def apply(kubectl: Kubectl, manifest: str, *, server_side: bool, new: bool) -> None:
    """Create or update the objects. Server-side apply updates in place (and is retried on transient
    errors: it is idempotent); what Kubernetes refuses to change in place (a StatefulSet's
    volumeClaimTemplates...) is reported, never deleted silently."""
    from kubectl_preevy import diagnosis  # here: `ls` and `down` never need it (start-up)

    result = kubectl.run(*_apply_args(server_side, new), stdin=manifest)
    for warning in diagnosis.apply_warnings(result.stderr):
        console.warn(messages.APPLY_WARNING.format(warning=warning))
    if result.ok:
        return
    _raise_immutable(result.stderr)
    raise kubectl.error(result)


def _raise_immutable(stderr: str) -> None:
    immutable = re.search(_IMMUTABLE, stderr)
    if immutable:
        raise ImmutableChange(immutable.group(1)[:200])


class ImmutableChange(PreevyError):
    """The template or an option changed a field Kubernetes does not change in place."""

    def __init__(self, detail: str, again: str = "kubectl preevy up --recreate"):
        super().__init__(messages.IMMUTABLE_CHANGE.format(detail=detail, again=again), ExitCode.FAILURE)
        self.detail = detail


def wait_ready(
    kubectl: Kubectl,
    env_id: str,
    name: str,
    timeout_seconds: float,
    cleanup_hint: str,
    since: "datetime.datetime | None" = None,
    on_pod: Callable[[dict[str, Any]], bool] | None = None,
) -> None:
    """`kubectl rollout status` with a deadline; meanwhile, every POLL_SECONDS, a pod stuck on an older
    template is replaced (repair_stuck_rollout), and a true failure (diagnosis.py) ends the wait at once.
    On timeout, why the pod is not ready.
    since: when the objects were applied (older events belong to another run).
    on_pod: given each pod a look reads; True once it wants no more (until then, more looks: QUICK_LOOKS_AT)."""
    if since is None:
        import datetime

        since = datetime.datetime.now(datetime.timezone.utc)
    rollout = ("rollout", "status", f"statefulset/{name}", f"--timeout={duration(timeout_seconds)}")
    proc = kubectl.popen(*rollout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        watcher = _Watcher(kubectl, proc, env_id, name, cleanup_hint, since, on_pod)
        stderr = _wait_watching(proc, watcher, timeout_seconds + 30)
    finally:
        process.stop(proc)
    if proc.returncode == 0:
        return
    if "timed out" not in stderr:
        raise kubectl.error(process.Result(kubectl.argv(*rollout), proc.returncode, "", stderr))
    raise PreevyError(
        messages.NOT_READY.format(
            env_id=env_id,
            timeout=f"{timeout_seconds:g}s",
            reason=unready_reason(kubectl, name),
            pod=f"{name}-0",
            namespace=kubectl.namespace,
            cleanup=cleanup_hint,
        ),
        ExitCode.TIMEOUT,
    )


def _wait_watching(proc: subprocess.Popen[bytes], watcher: "_Watcher", timeout_seconds: float) -> str:
    """Until `rollout status` exits (its stderr returned), or a true failure is raised. The looks run in a
    thread of their own (_Watcher): the exit is seen at once, not once a look in progress has ended; a look
    that finds a true failure stops the rollout's wait, which ends this one at once."""
    threading.Thread(target=watcher.run, daemon=True).start()
    try:
        _, err = proc.communicate(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        raise PreevyError(
            messages.COMMAND_TIMED_OUT.format(command="kubectl rollout", seconds=timeout_seconds),
            ExitCode.TIMEOUT,
        ) from None
    finally:
        failure = watcher.stop()
    if failure is not None:
        raise failure
    return err.decode(errors="replace")


class _Watcher:
    """Every POLL_SECONDS while `rollout status` runs: a pod stuck on an older template replaced, a true
    failure recorded (and the rollout's wait stopped). Once stopped it writes and records nothing: a look
    still running then is a read whose answer nobody wants."""

    def __init__(
        self,
        kubectl: Kubectl,
        proc: subprocess.Popen[bytes],
        env_id: str,
        name: str,
        cleanup_hint: str,
        since: "datetime.datetime",
        on_pod: Callable[[dict[str, Any]], bool] | None = None,
    ):
        self.kubectl, self.proc, self.env_id, self.name = kubectl, proc, env_id, name
        self.cleanup_hint, self.since, self.on_pod = cleanup_hint, since, on_pod
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._failure: BaseException | None = None

    def stop(self) -> BaseException | None:
        """No more looks; the failure that stopped the rollout's wait, if one did."""
        with self._lock:
            self._stopped.set()
            return self._failure

    def run(self) -> None:
        repaired: set[str] = set()
        start, full = time.monotonic(), POLL_SECONDS  # (seconds from start: the next look)
        quick = list(QUICK_LOOKS_AT if self.on_pod else ())
        while True:
            is_full = not quick or full <= quick[0]
            at = full if is_full else quick.pop(0)
            if self._stopped.wait(max(0.0, start + at - time.monotonic())):
                return
            if not is_full:
                if self._sight():
                    quick.clear()
                continue
            full += POLL_SECONDS
            failure: BaseException | None = None
            try:
                failure = self._look(repaired)
            except BaseException as err:  # noqa: BLE001 (a failed repair: raised by the waiting thread)
                failure = err
            if failure is not None:
                with self._lock:
                    if not self._stopped.is_set():
                        self._failure = failure
                        self.proc.terminate()  # the wait ends now, with this failure
                return

    def _sight(self) -> bool:
        """A look for on_pod only (nothing diagnosed): whether it wants no more of them."""
        looked = _statefulset_and_pod(self.kubectl, self.name)
        pod = looked[1] if looked is not None else None
        return bool(pod is not None and self.on_pod is not None and self.on_pod(pod))

    def _look(self, repaired: set[str]) -> PreevyError | None:
        kubectl, name = self.kubectl, self.name
        looked = _statefulset_and_pod(kubectl, name)
        if looked is None or self._stopped.is_set():
            return None  # a read that fails diagnoses nothing
        statefulset, pod = looked
        if pod is not None and self.on_pod is not None:
            self.on_pod(pod)
        with self._lock:  # (never a pod deleted once the rollout has ended)
            if self._stopped.is_set() or repair_stuck_rollout(
                kubectl, statefulset, [pod] if pod else [], repaired
            ):
                return None  # the crash-looping pod was the old template's: not a failure of this one
        from kubectl_preevy import diagnosis

        found = diagnosis.true_failure(kubectl, name, self.since, pod=pod)
        if not found:
            return None
        reason = unready_reason(kubectl, name) if found.crash else found.reason
        return PreevyError(
            messages.REFUSED_WHILE_WAITING.format(
                env_id=self.env_id, reason=reason, fix=found.fix, cleanup=self.cleanup_hint
            ),
            found.exit_code,
        )


def _statefulset_and_pod(kubectl: Kubectl, name: str) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """The StatefulSet and its pod (`<name>-0`, None when there is none), in one read; None if it failed."""
    result = kubectl.run("get", f"statefulset/{name}", f"pod/{name}-0", "--ignore-not-found", "-o", "json")
    if not result.ok:
        return None
    try:
        items = json.loads(result.stdout).get("items") or []
    except json.JSONDecodeError:
        return None
    statefulsets = [i for i in items if i.get("kind") == "StatefulSet"]
    pods = [i for i in items if i.get("kind") == "Pod"]
    return (statefulsets[0], pods[0] if pods else None) if statefulsets else None


def repair_stuck_rollout(
    kubectl: Kubectl, statefulset: dict[str, Any], pods: list[dict[str, Any]], repaired: set[str]
) -> bool:
    """The StatefulSet "forced rollback" trap (kubernetes/kubernetes#67250): with podManagementPolicy
    OrderedReady, a pod of an older revision that is not Ready is never replaced by the controller, so a
    fixed template never rolls out. The documented fix: delete that pod. statefulset, pods: as just read
    (one replica: its pod `<name>-0`); repaired: pod uids done. Whether a pod was deleted now."""
    name = statefulset["metadata"]["name"]
    status = statefulset.get("status") or {}
    update_revision = status.get("updateRevision")
    if not update_revision or status.get("observedGeneration", 0) < statefulset["metadata"].get(
        "generation", 1
    ):
        return False
    deleted = False
    for pod in pods:
        metadata = pod["metadata"]
        revision = (metadata.get("labels") or {}).get("controller-revision-hash")
        if (
            metadata.get("uid") in repaired
            or metadata.get("deletionTimestamp")
            or not _owned_by(pod, name)
            or _is_ready(pod)
            or not revision
            or revision == update_revision
        ):
            continue
        console.warn(
            messages.STUCK_ROLLOUT_REPAIRED.format(pod=metadata["name"], old=revision, new=update_revision)
        )
        kubectl.check("delete", "pod", metadata["name"], "--wait=false", "--ignore-not-found")
        repaired.add(metadata.get("uid", ""))
        deleted = True
    return deleted


def _owned_by(pod: dict[str, Any], statefulset: str) -> bool:
    return any(
        ref.get("kind") == "StatefulSet" and ref.get("name") == statefulset
        for ref in pod["metadata"].get("ownerReferences") or []
    )


def _is_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


pod_ready = _is_ready  # the public name (status)


def unready_reason(kubectl: Kubectl, name: str) -> str:
    """The most telling reason, in one phrase: a container that keeps exiting (exit code, last log line),
    else the pod's latest warning event (a failing probe, a volume that cannot be mounted...), else the
    state a container waits in."""
    pod_name = f"{name}-0"
    result = kubectl.run("get", "pod", pod_name, "-o", "json")
    if not result.ok:
        return latest_warning(_warning_events(kubectl, "StatefulSet", name)) or messages.REASON_NO_POD
    pod = json.loads(result.stdout)
    exited = exited_container(pod)
    if exited:
        status, terminated = exited
        return exit_reason(status, terminated, _last_log_line(kubectl, pod_name, status["name"]))
    return pod_reason(pod, _warning_events(kubectl, "Pod", pod_name))


def exited_container(pod: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(status, terminated state) of the first container that exited and is not running again."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        terminated = (status.get("lastState") or {}).get("terminated") or state.get("terminated")
        if "running" not in state and terminated:
            return status, terminated
    return None


def pod_reason(pod: dict[str, Any], warning_events: list[dict[str, Any]]) -> str:
    """Why a pod whose containers did not exit is not ready: its latest warning, else the state a
    container waits in, else just that it is not ready."""
    warning = latest_warning(warning_events, uid=pod["metadata"].get("uid"))
    if warning:
        return warning
    pod_name = pod["metadata"]["name"]
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for status in statuses:
        waiting = (status.get("state") or {}).get("waiting")
        if waiting:
            return _one_line(
                messages.REASON_WAITING.format(
                    container=status["name"],
                    reason=waiting.get("reason", ""),
                    message=waiting.get("message", ""),
                ).rstrip(": ")
            )
    return messages.REASON_NOT_READY.format(pod=pod_name)


def _last_log_line(kubectl: Kubectl, pod: str, container: str) -> str:
    """The container's last log line (in back-off: the exited instance's), "" if none."""
    logs = kubectl.run("logs", pod, "-c", container, "--tail=1")
    return logs.stdout.strip().splitlines()[-1] if logs.ok and logs.stdout.strip() else ""


def exit_reason(status: dict[str, Any], terminated: dict[str, Any], last_line: str) -> str:
    """A container that exited: its exit code and restarts, and its last log line."""
    reason = messages.REASON_EXITED.format(
        container=status["name"], code=terminated.get("exitCode"), restarts=status.get("restartCount", 0)
    )
    return _one_line(
        messages.REASON_LAST_LOG_LINE.format(reason=reason, line=last_line) if last_line else reason
    )


def _warning_events(kubectl: Kubectl, kind: str, name: str) -> list[dict[str, Any]]:
    """The Warning events of an object (by kind and name); none when they cannot be read."""
    result = kubectl.run(
        "get",
        "events",
        "--field-selector",
        f"involvedObject.kind={kind},involvedObject.name={name},type=Warning",
        "-o",
        "json",
    )
    if not result.ok:
        return []
    items: list[dict[str, Any]] = json.loads(result.stdout).get("items") or []
    return items


def latest_warning(events: list[dict[str, Any]], uid: str | None = None) -> str | None:
    """`Reason: message` of the latest Warning event; a BackOff only when there is nothing else.
    uid: only that object's events (a StatefulSet's new pod has the name of the one it replaces)."""
    events = [
        event
        for event in events
        if uid is None or (event.get("involvedObject") or {}).get("uid") in (None, uid)
    ]
    if not events:
        return None
    latest = max(
        events,
        key=lambda e: (e.get("reason") != "BackOff", e.get("lastTimestamp") or e.get("eventTime") or ""),
    )
    return _one_line(f"{latest.get('reason', '')}: {latest.get('message', '')}".strip(": "))


def _one_line(text: str, limit: int = REASON_MAX_LENGTH) -> str:
    """text with its whitespace runs (newlines of a probe's output...) as single spaces, cut to limit."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def ready_pod(kubectl: Kubectl, env: Environment, again: str = "kubectl preevy up") -> str:
    """The name of a Ready pod owned by the environment's StatefulSet."""
    return str(ready_pod_document(kubectl, env, again)["metadata"]["name"])


def ready_pod_document(
    kubectl: Kubectl, env: Environment, again: str = "kubectl preevy up"
) -> dict[str, Any]:
    """The Ready pod of the environment: its StatefulSet has one replica, so the pod is `<name>-0` (one
    get by name, no listing; also what a `share` kubeconfig may do). A legacy Deployment's pods are
    listed by its selector."""
    for pod in _candidate_pods(kubectl, env):
        owned = env.legacy or _owned_by(pod, env.name)
        if owned and _is_ready(pod) and not pod["metadata"].get("deletionTimestamp"):
            return pod
    raise PreevyError(
        messages.NO_READY_POD.format(env_id=env.env_id, name=env.name, namespace=env.namespace, again=again),
        ExitCode.FAILURE,
    )


def _candidate_pods(kubectl: Kubectl, env: Environment) -> list[dict[str, Any]]:
    if env.legacy:
        selector = ",".join(f"{k}={v}" for k, v in env.statefulset["spec"]["selector"]["matchLabels"].items())
        return list(kubectl.json("pods", "-l", selector)["items"])
    result = kubectl.run("get", "pod", f"{env.name}-0", "-o", "json")
    if result.ok:
        return [json.loads(result.stdout)]
    if "(NotFound)" in result.stderr:
        return []
    raise kubectl.error(result)


def delete(
    kubectl: Kubectl,
    instance: str,
    types: list[str],
    *,
    wait: bool,
    timeout_seconds: float,
    again: str = "kubectl preevy down",
    marked: Callable[[], object] | None = None,
    docker_host: Environment | None = None,
) -> None:
    """Delete every object of the instance (foreground: waited for when wait).

    A type the cluster no longer serves is skipped (said so); one this identity may not delete does not
    stop the others, and the error names it. again: the `down` that retries (for the hints). marked: run
    once kubectl says the DELETE of the docker host was accepted, while the objects are deleted (or, with
    no docker host or none deleted, once kubectl ends): from then on it carries deletionTimestamp (or is
    gone), so that concurrent ups and ls pass it over (`down` releases its lock there: an `up` from then on
    makes a new instance, which this delete does not touch)."""
    selector = f"{naming.LABEL_INSTANCE}={instance}"
    release = _Release(docker_host.deleted_line if docker_host else None, marked)

    def forget() -> None:
        """What this machine kept of the docker host's copies goes with it (a hint only: never needed again),
        forgotten once kubectl has started (its digest's hashlib costs ~2.5 ms)."""
        from kubectl_preevy.synccache import SyncCache

        SyncCache.forget_pod(kubectl.environ, kubectl.server_url, kubectl.namespace, f"{instance}-0")

    try:
        _delete_served(kubectl, types, selector, wait, timeout_seconds, again, instance, release, forget)
    finally:
        release.now()


class _Release:
    """Reads `kubectl delete`'s stdout as it comes: runs then() once `line` (None: never), or now()."""

    def __init__(self, line: str | None, then: Callable[[], object] | None):
        self.line, self.then, self.done = line, then, then is None

    def __call__(self, line: str) -> None:
        if line.rstrip("\n") == self.line:
            self.now()

    def now(self) -> None:
        if not self.done and self.then is not None:
            self.done = True
            self.then()


def _delete_served(
    kubectl: Kubectl,
    types: list[str],
    selector: str,
    wait: bool,
    timeout_seconds: float,
    again: str,
    instance: str,
    release: _Release,
    meanwhile: Callable[[], object],
) -> None:
    from kubectl_preevy import permissions

    result = _delete_types(kubectl, types, selector, wait, timeout_seconds, release, meanwhile)
    if not result.ok and re.search(_NOT_SERVED, result.stderr):
        # kubectl resolves every type before it deletes anything: nothing was deleted
        served = _served(kubectl, types, selector)
        if not served:
            return
        result = _delete_types(kubectl, served, selector, wait, timeout_seconds, release)
    else:
        served = types
    release.now()  # the docker host's DELETE refused, or none: nothing more to wait for
    refused = permissions.refused_requests(result.stderr)
    if not result.ok and refused and not permissions.other_errors(result.stderr):
        # partial RBAC: kubectl deleted what it was allowed to, but waits only when nothing failed
        allowed = [t for t in served if not permissions.refused_type(t, result.stderr)]
        if wait and allowed:
            result = _delete_types(kubectl, allowed, selector, wait, timeout_seconds)
        if result.ok or not permissions.other_errors(result.stderr):
            raise PreevyError(
                messages.DELETE_REFUSED.format(
                    refused=", ".join(refused), namespace=kubectl.namespace, again=again
                ),
                ExitCode.REFUSED,
            )
    if result.ok:
        return
    if wait and "timed out" in result.stderr:
        raise PreevyError(
            messages.DELETE_TIMEOUT.format(
                instance=instance, timeout=f"{timeout_seconds:g}s", namespace=kubectl.namespace, again=again
            ),
            ExitCode.TIMEOUT,
        )
    raise kubectl.error(result)


def _served(kubectl: Kubectl, types: list[str], selector: str) -> list[str]:
    """The types the cluster still serves (one may not be: a CRD removed since the environment was made),
    each asked alone; those it does not are said so."""
    from kubectl_preevy import permissions

    served = []
    for kind in types:
        one = kubectl.run("get", kind, "-l", selector, "-o", "name")
        if not one.ok and re.search(_NOT_SERVED, one.stderr):
            console.warn(messages.TYPE_NOT_SERVED.format(type=kind))
            continue
        if not one.ok and not permissions.refused_requests(one.stderr):
            raise kubectl.error(one)
        served.append(kind)
    return served


def _delete_types(
    kubectl: Kubectl,
    types: list[str],
    selector: str,
    wait: bool,
    timeout_seconds: float,
    on_line: Callable[[str], object] | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> process.Result:
    # foreground: an object is gone only once what it owns is (the pods of a template's other StatefulSets)
    return kubectl.run(
        "delete",
        ",".join(types),
        "-l",
        selector,
        "--cascade=foreground",
        f"--wait={'true' if wait else 'false'}",
        f"--timeout={duration(timeout_seconds)}",
        timeout=timeout_seconds + 60,
        on_line=on_line,
        meanwhile=meanwhile,
    )
