"""Pod Security Admission (API half), as the 1.32 built-in `PodSecurity` admission plugin.

The namespace's labels `pod-security.kubernetes.io/{enforce,warn,audit}` (and `-version`) pick
a level (privileged, baseline, restricted). Pods violating `enforce` are refused (403,
`violates PodSecurity "baseline:latest": ...`); `warn` violations come back as `Warning:`
headers (`would violate PodSecurity ...`); workload templates (StatefulSet, Deployment, Job,
CronJob...) are never refused but warned about at the enforce and warn levels. `audit` only
annotates audit events, which the emulator does not keep.

Checks (policy IDs of k8s.io/pod-security-admission, same order and wording): baseline:
capabilities_baseline, hostNamespaces, hostPathVolumes, hostPorts, privileged, procMount,
seLinuxOptions, seccompProfile_baseline, sysctls, appArmorProfile; restricted adds
allowPrivilegeEscalation, capabilities_restricted, restrictedVolumes, runAsNonRoot, runAsUser,
seccompProfile_restricted (which replace their baseline counterparts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

LEVELS = ("privileged", "baseline", "restricted")
LABEL = "pod-security.kubernetes.io/"
TEMPLATE_KINDS = {
    "statefulsets.apps": ("spec", "template"),
    "deployments.apps": ("spec", "template"),
    "replicasets.apps": ("spec", "template"),
    "daemonsets.apps": ("spec", "template"),
    "jobs.batch": ("spec", "template"),
    "cronjobs.batch": ("spec", "jobTemplate", "spec", "template"),
    "replicationcontrollers": ("spec", "template"),
}
DEFAULT_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
}  # fmt: skip
ALLOWED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip
VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs", "iscsi",
    "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI",
    "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk",
    "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image",
)  # fmt: skip


def _q(items) -> str:
    return '"' + '", "'.join(items) + '"' if items else ""


def _n(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def _containers(spec: dict) -> Iterator[dict]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or []


def _sc(c: dict) -> dict:
    return c.get("securityContext") or {}


Result = tuple[str, str] | None  # (forbidden reason, forbidden detail)


def _privileged(meta: dict, spec: dict) -> Result:
    bad = [c["name"] for c in _containers(spec) if _sc(c).get("privileged") is True]
    if bad:
        return (
            "privileged",
            f"{_n('container', 'containers', len(bad))} {_q(bad)} must not set securityContext.privileged=true",
        )
    return None


def _host_namespaces(meta: dict, spec: dict) -> Result:
    bad = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True]
    return ("host namespaces", ", ".join(bad)) if bad else None


def _host_path_volumes(meta: dict, spec: dict) -> Result:
    bad = [v.get("name", "") for v in spec.get("volumes") or [] if v.get("hostPath") is not None]
    return ("hostPath volumes", f"{_n('volume', 'volumes', len(bad))} {_q(bad)}") if bad else None


def _host_ports(meta: dict, spec: dict) -> Result:
    bad, ports = [], []
    for c in _containers(spec):
        found = False
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                found = True
                ports.append(str(p["hostPort"]))
        if found:
            bad.append(c["name"])
    if not bad:
        return None
    return "hostPort", (
        f"{_n('container', 'containers', len(bad))} {_q(bad)} {_n('uses', 'use', len(bad))} "
        f"{_n('hostPort', 'hostPorts', len(ports))} {', '.join(ports)}"
    )


def _capabilities_baseline(meta: dict, spec: dict) -> Result:
    bad, caps = [], set()
    for c in _containers(spec):
        added = [
            a for a in (_sc(c).get("capabilities") or {}).get("add") or [] if a not in DEFAULT_CAPABILITIES
        ]
        if added:
            bad.append(c["name"])
            caps.update(added)
    if not bad:
        return None
    return "non-default capabilities", (
        f"{_n('container', 'containers', len(bad))} {_q(bad)} must not include {_q(sorted(caps))} "
        "in securityContext.capabilities.add"
    )


def _proc_mount(meta: dict, spec: dict) -> Result:
    bad = [c["name"] for c in _containers(spec) if _sc(c).get("procMount") not in (None, "Default")]
    if bad:
        return (
            "procMount",
            f"{_n('container', 'containers', len(bad))} {_q(bad)} must not set securityContext.procMount to {_q(sorted({_sc(c)['procMount'] for c in _containers(spec) if c['name'] in bad}))}",
        )
    return None


def _se_linux(meta: dict, spec: dict) -> Result:
    allowed_types = ("", "container_t", "container_init_t", "container_kvm_t", "container_engine_t")
    setters = []
    pod_opts = (spec.get("securityContext") or {}).get("seLinuxOptions") or {}
    if pod_opts.get("type", "") not in allowed_types or pod_opts.get("user") or pod_opts.get("role"):
        setters.append("pod")
    bad = []
    for c in _containers(spec):
        o = _sc(c).get("seLinuxOptions") or {}
        if o.get("type", "") not in allowed_types or o.get("user") or o.get("role"):
            bad.append(c["name"])
    if bad:
        setters.append(f"{_n('container', 'containers', len(bad))} {_q(bad)}")
    if not setters:
        return None
    return "seLinuxOptions", f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions"


def _seccomp_type(sc: dict) -> str | None:
    return (sc.get("seccompProfile") or {}).get("type")


def _seccomp_baseline(meta: dict, spec: dict) -> Result:
    setters = []
    if _seccomp_type(spec.get("securityContext") or {}) == "Unconfined":
        setters.append("pod")
    bad = [c["name"] for c in _containers(spec) if _seccomp_type(_sc(c)) == "Unconfined"]
    if bad:
        setters.append(f"{_n('container', 'containers', len(bad))} {_q(bad)}")
    if not setters:
        return None
    return (
        "seccompProfile",
        f'{" and ".join(setters)} must not set securityContext.seccompProfile.type to "Unconfined"',
    )


def _sysctls(meta: dict, spec: dict) -> Result:
    bad = [
        s.get("name", "")
        for s in (spec.get("securityContext") or {}).get("sysctls") or []
        if s.get("name") not in SAFE_SYSCTLS
    ]
    return ("forbidden sysctls", ", ".join(bad)) if bad else None


def _app_armor(meta: dict, spec: dict) -> Result:
    bad = []
    for k, v in (meta.get("annotations") or {}).items():
        if (
            k.startswith("container.apparmor.security.beta.kubernetes.io/")
            and v not in ("runtime/default",)
            and not v.startswith("localhost/")
        ):
            bad.append(f"{k}={v!r}".replace("'", '"'))
    if (((spec.get("securityContext") or {}).get("appArmorProfile")) or {}).get("type") == "Unconfined":
        bad.append('pod must not set securityContext.appArmorProfile.type to "Unconfined"')
    return ("forbidden AppArmor profiles", ", ".join(bad)) if bad else None


def _allow_privilege_escalation(meta: dict, spec: dict) -> Result:
    bad = [c["name"] for c in _containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False]
    if bad:
        return "allowPrivilegeEscalation != false", (
            f"{_n('container', 'containers', len(bad))} {_q(bad)} must set securityContext.allowPrivilegeEscalation=false"
        )
    return None


def _capabilities_restricted(meta: dict, spec: dict) -> Result:
    missing_drop, adding, caps = [], [], set()
    for c in _containers(spec):
        cap = _sc(c).get("capabilities")
        if cap is None:
            missing_drop.append(c["name"])
            continue
        if "ALL" not in (cap.get("drop") or []):
            missing_drop.append(c["name"])
        added = [a for a in cap.get("add") or [] if a != "NET_BIND_SERVICE"]
        if added:
            adding.append(c["name"])
            caps.update(added)
    details = []
    if missing_drop:
        details.append(
            f'{_n("container", "containers", len(missing_drop))} {_q(missing_drop)} must set securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{_n('container', 'containers', len(adding))} {_q(adding)} must not include {_q(sorted(caps))} in securityContext.capabilities.add"
        )
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def _restricted_volumes(meta: dict, spec: dict) -> Result:
    bad, types = [], set()
    for v in spec.get("volumes") or []:
        for source in VOLUME_SOURCES:
            if v.get(source) is not None and source not in ALLOWED_VOLUMES:
                bad.append(v.get("name", ""))
                types.add(source)
                break
    if not bad:
        return None
    return "restricted volume types", (
        f"{_n('volume', 'volumes', len(bad))} {_q(bad)} {_n('uses', 'use', len(bad))} restricted "
        f"{_n('volume type', 'volume types', len(types))} {_q(sorted(types))}"
    )


def _run_as_non_root(meta: dict, spec: dict) -> Result:
    setters = []
    pod_value = (spec.get("securityContext") or {}).get("runAsNonRoot")
    if pod_value is False:
        setters.append("pod")
    explicit, implicit = [], []
    for c in _containers(spec):
        v = _sc(c).get("runAsNonRoot")
        if v is False:
            explicit.append(c["name"])
        elif v is None and pod_value is not True:
            implicit.append(c["name"])
    if explicit:
        setters.append(f"{_n('container', 'containers', len(explicit))} {_q(explicit)}")
    if setters:
        return (
            "runAsNonRoot != true",
            f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false",
        )
    if implicit:
        return "runAsNonRoot != true", (
            f"pod or {_n('container', 'containers', len(implicit))} {_q(implicit)} must set securityContext.runAsNonRoot=true"
        )
    return None


def _run_as_user(meta: dict, spec: dict) -> Result:
    setters = []
    if (spec.get("securityContext") or {}).get("runAsUser") == 0:
        setters.append("pod")
    bad = [c["name"] for c in _containers(spec) if _sc(c).get("runAsUser") == 0]
    if bad:
        setters.append(f"{_n('container', 'containers', len(bad))} {_q(bad)}")
    return ("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0") if setters else None


def _seccomp_restricted(meta: dict, spec: dict) -> Result:
    ok = ("RuntimeDefault", "Localhost")
    pod_type = _seccomp_type(spec.get("securityContext") or {})
    setters, bad_types, implicit = [], set(), []
    if pod_type is not None and pod_type not in ok:
        setters.append("pod")
        bad_types.add(pod_type)
    explicit = []
    for c in _containers(spec):
        t = _seccomp_type(_sc(c))
        if t is None:
            if pod_type is None:
                implicit.append(c["name"])
        elif t not in ok:
            explicit.append(c["name"])
            bad_types.add(t)
    if explicit:
        setters.append(f"{_n('container', 'containers', len(explicit))} {_q(explicit)}")
    if setters:
        return "seccompProfile", (
            f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to {_q(sorted(bad_types))}"
        )
    if implicit:
        return "seccompProfile", (
            f"pod or {_n('container', 'containers', len(implicit))} {_q(implicit)} must set "
            'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'
        )
    return None


Check = Callable[[dict, dict], Result]
BASELINE: list[tuple[str, Check]] = [
    ("appArmorProfile", _app_armor),
    ("capabilities_baseline", _capabilities_baseline),
    ("hostNamespaces", _host_namespaces),
    ("hostPathVolumes", _host_path_volumes),
    ("hostPorts", _host_ports),
    ("privileged", _privileged),
    ("procMount", _proc_mount),
    ("seLinuxOptions", _se_linux),
    ("seccompProfile_baseline", _seccomp_baseline),
    ("sysctls", _sysctls),
]
RESTRICTED: list[tuple[str, Check]] = [
    ("allowPrivilegeEscalation", _allow_privilege_escalation),
    ("capabilities_restricted", _capabilities_restricted),
    ("restrictedVolumes", _restricted_volumes),
    ("runAsNonRoot", _run_as_non_root),
    ("runAsUser", _run_as_user),
    ("seccompProfile_restricted", _seccomp_restricted),
]
OVERRIDDEN_BY_RESTRICTED = {"capabilities_baseline", "hostPathVolumes", "seccompProfile_baseline"}


def violations(level: str, meta: dict, spec: dict) -> list[str]:
    """`reason (detail)` for every check of `level` the pod (metadata, spec) fails, in the plugin's order."""
    if level == "privileged":
        return []
    checks = BASELINE
    if level == "restricted":
        checks = [c for c in BASELINE if c[0] not in OVERRIDDEN_BY_RESTRICTED] + RESTRICTED
    out = []
    for _, check in checks:
        r = check(meta, spec)
        if r is not None:
            out.append(f"{r[0]} ({r[1]})")
    return out


def policy(namespace: dict | None) -> dict[str, str]:
    """mode -> "level:version" from the namespace's labels (privileged:latest when unset)."""
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    out = {}
    for mode in ("enforce", "warn", "audit"):
        level = labels.get(LABEL + mode, "privileged")
        if level not in LEVELS:
            level = "restricted"  # an invalid level is evaluated as restricted
        out[mode] = f"{level}:{labels.get(LABEL + mode + '-version', 'latest')}"
    return out


def check_pod(namespace: dict | None, pod: dict) -> tuple[str | None, list[str]]:
    """(refusal message or None, warnings) for creating `pod` in `namespace`."""
    p = policy(namespace)
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    refusal = None
    enforce = violations(p["enforce"].split(":")[0], meta, spec)
    if enforce:
        refusal = f'violates PodSecurity "{p["enforce"]}": {", ".join(enforce)}'
    warnings = []
    if not enforce:  # a refused request gets no warnings
        warn = violations(p["warn"].split(":")[0], meta, spec)
        if warn:
            warnings.append(f'would violate PodSecurity "{p["warn"]}": {", ".join(warn)}')
    return refusal, warnings


def check_template(namespace: dict | None, key: str, obj: dict) -> list[str]:
    """Warnings for a workload's pod template (enforce level, then warn level if different)."""
    path = TEMPLATE_KINDS.get(key)
    if path is None:
        return []
    tpl: dict = obj
    for part in path:
        tpl = (tpl or {}).get(part) or {}
    meta, spec = tpl.get("metadata") or {}, tpl.get("spec") or {}
    p = policy(namespace)
    out = []
    for mode in ("enforce", "warn"):
        if mode == "warn" and p["warn"] == p["enforce"]:
            continue
        v = violations(p[mode].split(":")[0], meta, spec)
        if v:
            out.append(f'would violate PodSecurity "{p[mode]}": {", ".join(v)}')
    return out


def existing_pod_warnings(old_ns: dict | None, new_ns: dict, pods: list[dict]) -> list[str]:
    """The warnings of a namespace update that changes the enforce level: the existing pods that
    violate it, those failing the same checks grouped (`web-0 (and 2 other pods): privileged`)."""
    new = policy(new_ns)["enforce"]
    if old_ns is None or policy(old_ns)["enforce"] == new:
        return []
    level = new.split(":")[0]
    by_reasons: dict[str, list[str]] = {}
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        reasons = [
            v.split(" (", 1)[0] for v in violations(level, pod.get("metadata") or {}, pod.get("spec") or {})
        ]
        if reasons:
            by_reasons.setdefault(", ".join(reasons), []).append(pod["metadata"]["name"])
    if not by_reasons:
        return []
    name = new_ns["metadata"]["name"]
    out = [f'existing pods in namespace "{name}" violate the new PodSecurity enforce level "{new}"']
    for joined, names in by_reasons.items():
        who = (
            names[0]
            if len(names) == 1
            else f"{names[0]} (and {len(names) - 1} other {_n('pod', 'pods', len(names) - 1)})"
        )
        out.append(f"{who}: {joined}")
    return out
