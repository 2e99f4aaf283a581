"""Host side of pod volumes and container environments (kubelet.py uses it; no namespaces here).

Volume directories live under the pod's state dir (`state_dir/pods/<uid>/volumes/<name>`),
except persistentVolumeClaim (the claim's PV directory, `cluster.pvc_path`) and hostPath.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import re
from collections.abc import Set as AbstractSet
from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class NotReadyYet(Exception):
    """Something the pod needs does not exist yet (a configMap, a secret, a claim): retry later.
    `reason` is the container waiting reason to show; `mount_failure` the message of the
    FailedMount event the real kubelet records when it is a volume that cannot be set up."""

    container: Any = None  # the container that waits, set by the kubelet

    def __init__(self, message: str, reason: str = "ContainerCreating", mount_failure: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.mount_failure = mount_failure
        self.container = None  # the container whose env or mounts are wrong (set by the kubelet)


class ConfigError(NotReadyYet):
    def __init__(self, message: str):
        super().__init__(message, "CreateContainerConfigError")


# ------------------------------------------------------------------ $(VAR) expansion

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known variables are replaced, $$ is a literal $,
    unknown references stay as they are."""

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _REF.sub(sub, text)


# ------------------------------------------------------------------ object data


def _object_files(kind: str, obj: dict) -> dict[str, bytes]:
    files = {}
    if kind == "configMap":
        for key, value in (obj.get("data") or {}).items():
            files[key] = str(value).encode()
        for key, value in (obj.get("binaryData") or {}).items():
            files[key] = base64.b64decode(value)
    else:
        for key, value in (obj.get("data") or {}).items():
            files[key] = base64.b64decode(value)
        for key, value in (obj.get("stringData") or {}).items():
            files[key] = str(value).encode()
    return files


def _get_object(store, kind: str, namespace: str, name: str) -> dict | None:
    return store.get("configmaps" if kind == "configMap" else "secrets", namespace, name)


def field_value(pod: dict, path: str, pod_ip: str | None = None) -> str:
    meta, spec = pod.get("metadata", {}), pod.get("spec", {})
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f"{k}={json.dumps(str(v))}" for k, v in sorted(items.items()))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName") or "kubesim",
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": "127.0.0.1",
        "status.hostIPs": "127.0.0.1",
    }
    value = simple.get(path)
    return "" if value is None else str(value)


def _items_files(kind: str, obj: dict | None, src: dict) -> list[tuple[str, bytes, int | None]]:
    """(relative path, content, mode or None) for a configMap/secret source with optional items."""
    if obj is None:
        return []
    data = _object_files(kind, obj)
    items = src.get("items")
    if not items:
        return [(key, value, None) for key, value in data.items()]
    out = []
    for item in items:
        key = item.get("key")
        if key not in data:
            if src.get("optional"):
                continue
            raise NotReadyYet(
                f"configmap references non-existent config key: {key}"
                if kind == "configMap"
                else f"references non-existent secret key: {key}"
            )
        out.append((item.get("path") or key, data[key], item.get("mode")))
    return out


def _safe_join(base: pathlib.Path, rel: str) -> pathlib.Path:
    rel_path = pathlib.PurePosixPath(rel)
    if rel_path.is_absolute() or ".." in rel_path.parts:
        raise ConfigError(f"invalid path {rel!r}")
    return base / rel_path


def write_files(
    directory: pathlib.Path,
    files: list[tuple[str, bytes, int | None]],
    default_mode: int | None,
    previous: AbstractSet[str] = frozenset(),
) -> set[str]:
    """Writes the files into `directory` (in place: the directory itself may be bind-mounted into
    running containers) and removes those of `previous` that are gone; returns what it wrote.
    Anything else in the directory (written by a container) is left alone."""
    directory.mkdir(parents=True, exist_ok=True)
    written = set()
    for rel, content, mode in files:
        target = _safe_join(directory, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.kubesim-tmp"
        tmp.write_bytes(content)
        os.chmod(
            tmp, (mode if mode is not None else default_mode if default_mode is not None else 0o644) & 0o7777
        )
        os.replace(tmp, target)
        written.add(rel)
    for rel in set(previous) - written:
        try:
            _safe_join(directory, rel).unlink()
        except (OSError, ConfigError):
            pass
    return written


# ------------------------------------------------------------------ volumes


class Volume:
    def __init__(
        self,
        name: str,
        path: pathlib.Path,
        readonly: bool,
        kind: str,
        refs: set[tuple[str, str]],
        files: AbstractSet[str] = frozenset(),
    ):
        self.name = name
        self.files = set(files)  # what kubesim wrote (configMap/secret/... volumes)
        self.path = path  # host path of the volume's root
        self.readonly = readonly  # the volume source forces read-only
        self.kind = kind
        self.refs = refs  # ("configmaps"|"secrets", name) the content comes from


def api_volume_files(
    store, pod: dict, volume: dict, pod_ip: str | None, tokens=None
) -> tuple[list, int | None, set] | None:
    """Files of a configMap/secret/projected/downwardAPI volume; None for other kinds."""
    ns = pod["metadata"]["namespace"]
    refs: set[tuple[str, str]] = set()
    if "configMap" in volume or "secret" in volume:
        kind = "configMap" if "configMap" in volume else "secret"
        src = volume[kind] or {}
        name = src.get("name") if kind == "configMap" else src.get("secretName")
        refs.add(("configmaps" if kind == "configMap" else "secrets", name))
        obj = _get_object(store, kind, ns, name)
        if obj is None and not src.get("optional"):
            raise NotReadyYet(f'{kind.lower()} "{name}" not found')
        return _items_files(kind, obj, src), src.get("defaultMode"), refs
    if "downwardAPI" in volume:
        src = volume["downwardAPI"] or {}
        return _downward_files(pod, src.get("items") or [], pod_ip), src.get("defaultMode"), refs
    if "projected" in volume:
        src = volume["projected"] or {}
        files = []
        for source in src.get("sources") or []:
            if "configMap" in source or "secret" in source:
                kind = "configMap" if "configMap" in source else "secret"
                sub = source[kind] or {}
                name = sub.get("name")
                refs.add(("configmaps" if kind == "configMap" else "secrets", name))
                obj = _get_object(store, kind, ns, name)
                if obj is None and not sub.get("optional"):
                    if kind == "configMap" and name == "kube-root-ca.crt":
                        continue  # the service-account volume: no CA, nothing to verify against
                    raise NotReadyYet(f'{kind.lower()} "{name}" not found')
                files += _items_files(kind, obj, sub)
            elif "downwardAPI" in source:
                files += _downward_files(pod, (source["downwardAPI"] or {}).get("items") or [], pod_ip)
            elif "serviceAccountToken" in source:
                token_source = source["serviceAccountToken"] or {}
                files.append(
                    (
                        token_source.get("path") or "token",
                        _service_account_token(store, pod, token_source, tokens),
                        None,
                    )
                )
        return files, src.get("defaultMode"), refs
    return None


def _service_account_token(store, pod: dict, source: dict, tokens) -> bytes:
    """A token of the pod's ServiceAccount bound to the pod (authn.Tokens), as the kubelet requests it."""
    if tokens is None:
        return b"kubesim-service-account-token"
    ns = pod["metadata"]["namespace"]
    name = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    sa = store.get("serviceaccounts", ns, name)
    if sa is None:
        raise NotReadyYet(f'failed to fetch token: serviceaccounts "{name}" not found')
    audience = source.get("audience")
    token, _ = tokens.issue(
        sa, int(source.get("expirationSeconds") or 3607), [audience] if audience else None, bound=pod
    )
    return token.encode()


def _downward_files(pod: dict, items: list, pod_ip: str | None) -> list:
    out = []
    for item in items:
        if "fieldRef" in item:
            value = field_value(pod, (item["fieldRef"] or {}).get("fieldPath", ""), pod_ip)
        else:
            value = "0"
        out.append((item.get("path", ""), value.encode(), item.get("mode")))
    return out


def prepare_volumes(cluster, pod: dict, pod_dir: pathlib.Path, pod_ip: str | None) -> dict[str, Volume]:
    """Creates (or refreshes) every volume's host directory. Raises NotReadyYet (with the
    FailedMount message the real kubelet would record)."""
    volumes: dict[str, Volume] = {}
    for volume in pod.get("spec", {}).get("volumes") or []:
        name = volume.get("name")
        try:
            volumes[name] = _prepare_volume(cluster, pod, volume, pod_dir / "volumes" / name, pod_ip)
        except NotReadyYet as e:
            e.mount_failure = e.mount_failure or f'MountVolume.SetUp failed for volume "{name}" : {e}'
            raise
    return volumes


def _prepare_volume(cluster, pod: dict, volume: dict, own_dir: pathlib.Path, pod_ip: str | None) -> Volume:
    name = volume.get("name")
    if "persistentVolumeClaim" in volume:
        return _claim_volume(cluster, pod, volume)
    if "hostPath" in volume:
        return _host_path_volume(volume)
    api = api_volume_files(cluster.store, pod, volume, pod_ip, cluster.tokens)
    if api is None:  # emptyDir and anything unknown: an empty directory removed with the pod
        own_dir.mkdir(parents=True, exist_ok=True)
        return Volume(name, own_dir, False, "emptyDir", set())
    files, mode, refs = api
    written = write_files(own_dir, files, mode)
    kind = next(k for k in ("configMap", "secret", "downwardAPI", "projected") if k in volume)
    return Volume(name, own_dir, False, kind, refs, written)


def _claim_volume(cluster, pod: dict, volume: dict) -> Volume:
    ns, name = pod["metadata"]["namespace"], volume.get("name")
    src = volume["persistentVolumeClaim"] or {}
    claim = src.get("claimName")
    if cluster.store.get("persistentvolumeclaims", ns, claim) is None:
        raise NotReadyYet(
            f'persistentvolumeclaim "{claim}" not found',
            mount_failure=(
                f"Unable to attach or mount volumes: unmounted volumes=[{name}], unattached volumes=[{name}], "
                f"failed to process volumes=[{name}]: error processing PVC {ns}/{claim}: failed to fetch PVC "
                f'from API server: persistentvolumeclaims "{claim}" not found'
            ),
        )
    path = pathlib.Path(cluster.pvc_path(ns, claim))
    path.mkdir(parents=True, exist_ok=True)
    return Volume(name, path, bool(src.get("readOnly")), "persistentVolumeClaim", set())


def _host_path_volume(volume: dict) -> Volume:
    src = volume["hostPath"] or {}
    path = pathlib.Path(src.get("path", "/"))
    kind = src.get("type") or ""
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate" and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    elif kind == "Directory" and not path.is_dir():
        raise NotReadyYet(f"hostPath type check failed: {path} is not a directory")
    elif kind == "File" and not path.is_file():
        raise NotReadyYet(f"hostPath type check failed: {path} is not a file")
    elif not kind and not path.exists():
        raise NotReadyYet(f"hostPath {path} does not exist")
    return Volume(volume.get("name"), path, False, "hostPath", set())


def refresh_api_volume(cluster, pod: dict, volume: Volume, pod_ip: str | None) -> None:
    """Rewrites a configMap/secret/projected volume after its source object changed."""
    for spec in pod.get("spec", {}).get("volumes") or []:
        if spec.get("name") == volume.name:
            try:
                api = api_volume_files(cluster.store, pod, spec, pod_ip, cluster.tokens)
            except NotReadyYet:
                return
            if api is not None:
                volume.files = write_files(volume.path, api[0], api[1], volume.files)


def container_mounts(
    container: dict, volumes: dict[str, Volume], env: dict[str, str]
) -> list[tuple[str, str, bool]]:
    """(host source path, mountPath, read-only) per volumeMount; subPath directories are created
    in the volume (as the kubelet does). Raises ConfigError."""
    out = []
    for vm in container.get("volumeMounts") or []:
        volume = volumes.get(vm.get("name"))
        if volume is None:
            raise ConfigError(f'volume "{vm.get("name")}" not found')
        source = volume.path
        sub = vm.get("subPath") or expand(vm.get("subPathExpr") or "", env)
        if sub:
            source = _safe_join(volume.path, sub)
            if not source.exists():
                if volume.kind in ("configMap", "secret", "downwardAPI", "projected"):
                    raise ConfigError(f"subPath {sub!r} not found in volume {volume.name!r}")
                source.mkdir(parents=True, exist_ok=True)
        readonly = bool(vm.get("readOnly")) or volume.readonly
        out.append((str(source), vm.get("mountPath", ""), readonly))
    return out


# ------------------------------------------------------------------ environment


def container_env(
    store, pod: dict, container: dict, pod_ip: str | None, service_env: dict[str, str] | None = None
) -> dict[str, str]:
    """The container's environment: the services' (KUBERNETES_SERVICE_HOST...), envFrom, then env
    (with $(VAR) expansion and valueFrom), plus PATH/HOME/HOSTNAME defaults. Raises ConfigError for
    a missing non-optional reference."""
    ns = pod["metadata"]["namespace"]
    env: dict[str, str] = dict(service_env or {})
    for source in container.get("envFrom") or []:
        env.update(_env_from(store, ns, source))
    for var in container.get("env") or []:
        name = var.get("name")
        if "valueFrom" not in var:
            env[name] = expand(str(var.get("value", "")), env)
            continue
        vf = var["valueFrom"] or {}
        if "fieldRef" in vf:
            env[name] = field_value(pod, (vf["fieldRef"] or {}).get("fieldPath", ""), pod_ip)
        elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
            value = _key_ref(store, ns, vf)
            if value is not None:
                env[name] = value
        else:  # resourceFieldRef and the like: no resources here
            env[name] = "0"
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOME", "/root")
    env.setdefault("HOSTNAME", pod["metadata"]["name"])
    return env


def _env_from(store, ns: str, source: dict) -> dict[str, str]:
    prefix = source.get("prefix") or ""
    env = {}
    for kind in ("configMap", "secret"):
        ref = source.get(f"{kind}Ref")
        if ref is None:
            continue
        obj = _get_object(store, kind, ns, ref.get("name"))
        if obj is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{kind.lower()} "{ref.get("name")}" not found')
        for key, value in _object_files(kind, obj).items():
            env[prefix + key] = value.decode(errors="replace")
    return env


def _key_ref(store, ns: str, value_from: dict) -> str | None:
    """The value of a configMapKeyRef / secretKeyRef; None when missing but optional."""
    kind = "configMap" if "configMapKeyRef" in value_from else "secret"
    ref = value_from[f"{kind}KeyRef"] or {}
    obj = _get_object(store, kind, ns, ref.get("name"))
    data = _object_files(kind, obj) if obj is not None else None
    if data is None or ref.get("key") not in data:
        if ref.get("optional"):
            return None
        raise ConfigError(
            f'{kind.lower()} "{ref.get("name")}" not found'
            if data is None
            else f"couldn't find key {ref.get('key')} in {kind[0].upper()}{kind[1:]} {ns}/{ref.get('name')}"
        )
    return data[ref["key"]].decode(errors="replace")
