"""Pod Security Standards (the checks of Kubernetes' Pod Security Admission, `latest` version) over a pod
spec, and the namespace labels that set the levels. Pure functions: the namespace is read elsewhere.

Each violation is worded as the admission controller words it, e.g.
`privileged (container "docker" must not set securityContext.privileged=true)`.
"""

from collections.abc import Iterator, Mapping
from typing import Any

LEVELS = ("privileged", "baseline", "restricted")
LABEL_PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "warn", "audit")
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    }
)
RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)


def namespace_levels(labels: Mapping[str, str]) -> dict[str, str]:
    """mode -> level from the namespace's labels; a mode without a label is `privileged` (the built-in
    default of an API server without an AdmissionConfiguration)."""
    levels = {}
    for mode in MODES:
        value = labels.get(LABEL_PREFIX + mode, "privileged")
        levels[mode] = (
            value if value in LEVELS else "restricted"
        )  # an invalid level is enforced as restricted
    return levels


def violations(
    pod_spec: Mapping[str, Any], level: str, pod_metadata: Mapping[str, Any] | None = None
) -> list[str]:
    """The pod's violations of `level` (none at `privileged`), in the admission controller's words."""
    if level == "privileged":
        return []
    found = list(_baseline(pod_spec, pod_metadata or {}))
    if level == "restricted":
        found += list(_restricted(pod_spec))
    return found


def _containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]


def _names(names: list[str], noun: str) -> str:
    quoted = ", ".join(f'"{n}"' for n in names)
    return f"{noun}s {quoted}" if len(names) > 1 else f"{noun} {quoted}"


def _security(container: Mapping[str, Any]) -> Mapping[str, Any]:
    return container.get("securityContext") or {}


def _baseline(spec: Mapping[str, Any], metadata: Mapping[str, Any]) -> Iterator[str]:
    pod_security = spec.get("securityContext") or {}
    containers = _containers(spec)
    host = [f"{field}=true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    if host:
        yield f"host namespaces ({', '.join(host)})"
    privileged = [c["name"] for c in containers if _security(c).get("privileged")]
    if privileged:
        yield f"privileged ({_names(privileged, 'container')} must not set securityContext.privileged=true)"
    added = []
    added += _added_capabilities(containers, BASELINE_CAPABILITIES)
    if added:
        yield f"non-default capabilities ({'; '.join(added)})"
    host_paths = [v["name"] for v in spec.get("volumes") or [] if "hostPath" in v]
    if host_paths:
        yield f"hostPath volumes ({_names(host_paths, 'volume')})"
    ports = []
    for c in containers:
        used = [str(p["hostPort"]) for p in c.get("ports") or [] if p.get("hostPort")]
        if used:
            ports.append(
                f'container "{c["name"]}" uses hostPort{"s" if len(used) > 1 else ""} {", ".join(used)}'
            )
    if ports:
        yield f"hostPort ({'; '.join(ports)})"
    unmasked = [c["name"] for c in containers if _security(c).get("procMount") == "Unmasked"]
    if unmasked:
        yield f'procMount ({_names(unmasked, "container")} must not set securityContext.procMount to "Unmasked")'
    unconfined = ["pod"] if (pod_security.get("seccompProfile") or {}).get("type") == "Unconfined" else []
    unconfined += [
        f'container "{c["name"]}"'
        for c in containers
        if (_security(c).get("seccompProfile") or {}).get("type") == "Unconfined"
    ]
    if unconfined:
        yield f'seccompProfile ({" and ".join(unconfined)} must not set securityContext.seccompProfile.type to "Unconfined")'
    sysctls = [s["name"] for s in pod_security.get("sysctls") or [] if s.get("name") not in SAFE_SYSCTLS]
    if sysctls:
        yield f"forbidden sysctls ({', '.join(sysctls)})"
    annotations = metadata.get("annotations") or {}
    apparmor = [
        key.rsplit("/", 1)[-1]
        for key, value in annotations.items()
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and value == "unconfined"
    ]
    if apparmor:
        yield f'forbidden AppArmor profile{"s" if len(apparmor) > 1 else ""} ({", ".join(apparmor)}="unconfined")'


def _restricted(spec: Mapping[str, Any]) -> Iterator[str]:
    pod_security = spec.get("securityContext") or {}
    containers = _containers(spec)
    restricted_volumes = []
    for volume in spec.get("volumes") or []:
        kinds = [k for k in volume if k != "name" and k not in RESTRICTED_VOLUME_TYPES]
        if kinds:
            restricted_volumes.append(f'volume "{volume["name"]}" uses restricted volume type "{kinds[0]}"')
    if restricted_volumes:
        yield f"restricted volume types ({'; '.join(restricted_volumes)})"
    escalation = [c["name"] for c in containers if _security(c).get("allowPrivilegeEscalation") is not False]
    if escalation:
        yield (
            f"allowPrivilegeEscalation != false ({_names(escalation, 'container')} must set "
            "securityContext.allowPrivilegeEscalation=false)"
        )
    pod_non_root = pod_security.get("runAsNonRoot")
    root = [
        c["name"]
        for c in containers
        if _security(c).get("runAsNonRoot") is False
        or (_security(c).get("runAsNonRoot") is None and pod_non_root is not True)
    ]
    if root or pod_non_root is False:
        yield f"runAsNonRoot != true (pod or {_names(root, 'container')} must set securityContext.runAsNonRoot=true)"
    uid0 = [c["name"] for c in containers if _security(c).get("runAsUser") == 0]
    if pod_security.get("runAsUser") == 0:
        yield "runAsUser=0 (pod must not set runAsUser=0)"
    elif uid0:
        yield f"runAsUser=0 ({_names(uid0, 'container')} must not set runAsUser=0)"
    pod_seccomp = (pod_security.get("seccompProfile") or {}).get("type")
    no_seccomp = [
        c["name"]
        for c in containers
        if (_security(c).get("seccompProfile") or {}).get("type", pod_seccomp)
        not in ("RuntimeDefault", "Localhost")
    ]
    if no_seccomp:
        yield (
            f"seccompProfile (pod or {_names(no_seccomp, 'container')} must set "
            'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
        )
    capabilities = []
    no_drop = [
        c["name"]
        for c in containers
        if "ALL" not in ((_security(c).get("capabilities") or {}).get("drop") or [])
    ]
    if no_drop:
        capabilities.append(
            f'{_names(no_drop, "container")} must set securityContext.capabilities.drop=["ALL"]'
        )
    capabilities += _added_capabilities(containers, frozenset({"NET_BIND_SERVICE"}))
    if capabilities:
        yield f"unrestricted capabilities ({'; '.join(capabilities)})"


def _added_capabilities(containers: list[Mapping[str, Any]], allowed: frozenset[str]) -> list[str]:
    found = []
    for c in containers:
        extra = [
            cap for cap in (_security(c).get("capabilities") or {}).get("add") or [] if cap not in allowed
        ]
        if extra:
            caps = ", ".join(f'"{cap}"' for cap in extra)
            found.append(
                f'container "{c["name"]}" must not include {caps} in securityContext.capabilities.add'
            )
    return found


def pod_templates(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(description, pod template) of every object that makes pods: StatefulSets, Deployments, Pods..."""
    found = []
    for obj in objects:
        kind, name = obj.get("kind", ""), (obj.get("metadata") or {}).get("name", "")
        spec = obj.get("spec") or {}
        if kind == "Pod":
            found.append((f"Pod {name}", {"metadata": obj.get("metadata") or {}, "spec": spec}))
        elif kind == "CronJob":
            job = (spec.get("jobTemplate") or {}).get("spec") or {}
            found.append((f"CronJob {name}", job.get("template") or {}))
        elif isinstance(spec.get("template"), dict) and "spec" in spec["template"]:
            found.append((f"{kind} {name}", spec["template"]))
    return found
