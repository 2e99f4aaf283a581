"""The environment's options and where each one came from.

Precedence: flag > environment variable > `x-preevy.drivers.kube-pod` in the compose file > profile
> built-in default. Every value is validated, and an error names the option and its source.
"""

import argparse
import dataclasses
import pathlib
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kubectl_preevy import messages, naming, process
from kubectl_preevy.errors import ExitCode, PreevyError

if TYPE_CHECKING:
    from kubectl_preevy.profiles import Profile

DRIVER = "kube-pod"
DEFAULT_STORAGE_SIZE = 5.0
MIN_STORAGE_SIZE = 0.001  # GiB: about 1 MiB
MAX_STORAGE_SIZE = 1_000_000.0  # GiB
SOURCE_DEFAULT = "default"
SOURCE_CONTEXT = "the kubeconfig context (else `default`)"
SOURCE_KUBECTL = "kubectl's default loading"

# Preevy's option names (profile keys, x-preevy keys) -> Options field and CLI flag (args attribute).
OPTION_FIELDS = {
    "namespace": "namespace",
    "kubeconfig": "kubeconfig",
    "context": "context",
    "template": "template",
    "server-side-apply": "server_side_apply",
    "storage-class": "storage_class",
    "storage-size": "storage_size",
    "expose": "expose",
    "domain": "domain",
    "gateway": "gateway",
    "ingress-class": "ingress_class",
    "tls-secret": "tls_secret",
    "cluster-issuer": "cluster_issuer",
    "ttl": "ttl",
    "sleep-after": "sleep_after",
}
OPTION_FLAGS = {
    "namespace": "-n/--namespace",
    "kubeconfig": "--kubeconfig",
    "context": "--context",
    "template": "--kube-pod-template",
    "server-side-apply": "--[no-]kube-pod-server-side-apply",
    "storage-class": "--kube-pod-storage-class",
    "storage-size": "--kube-pod-storage-size",
    "expose": "--expose",
    "domain": "--domain",
    "gateway": "--gateway",
    "ingress-class": "--ingress-class",
    "tls-secret": "--tls-secret",
    "cluster-issuer": "--cluster-issuer",
    "ttl": "--ttl",
    "sleep-after": "--sleep-after",
}
OPTION_ENV_VARS = {
    "kubeconfig": "KUBECONFIG",
    "context": "KUBE_CONTEXT",
    "expose": "PREEVY_EXPOSE",
    "domain": "PREEVY_DOMAIN",
    "gateway": "PREEVY_GATEWAY",
    "ingress-class": "PREEVY_INGRESS_CLASS",
    "tls-secret": "PREEVY_TLS_SECRET",
    "cluster-issuer": "PREEVY_CLUSTER_ISSUER",
    "ttl": "PREEVY_TTL",
    "sleep-after": "PREEVY_SLEEP_AFTER",
}
EXPOSE_MODES = ("none", "gateway", "ingress")
MAX_DOMAIN_LENGTH = 253 - 64  # room for the first label, <service>-<port>-<env id>, and its dot
OPTION_NAMES = tuple(OPTION_FIELDS)


@dataclasses.dataclass(frozen=True)
class Connection:
    """kubectl's connection flags given after the plugin name (kubectl does not pass its own to plugins).
    Flags only: they say who and where this machine connects as, so no profile or compose file sets them."""

    as_user: str | None = None
    as_groups: tuple[str, ...] = ()
    token: str | None = None
    server: str | None = None
    user: str | None = None
    cluster: str | None = None
    request_timeout: str | None = None  # API calls only: it would cut exec, port-forward and watches
    certificate_authority: str | None = None
    insecure_skip_tls_verify: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Connection":
        """The flags of args, validated (PreevyError USAGE)."""
        request_timeout = getattr(args, "request_timeout", None)
        if request_timeout is not None and not re.fullmatch(_KUBECTL_TIMEOUT, request_timeout):
            raise PreevyError(messages.INVALID_REQUEST_TIMEOUT.format(value=request_timeout), ExitCode.USAGE)
        insecure = getattr(args, "insecure_skip_tls_verify", None)
        if insecure not in (None, "true", "false"):
            raise PreevyError(messages.INVALID_INSECURE_FLAG.format(value=insecure), ExitCode.USAGE)
        return cls(
            as_user=getattr(args, "as_user", None),
            as_groups=tuple(getattr(args, "as_groups", None) or ()),
            token=getattr(args, "token", None),
            server=getattr(args, "server", None),
            user=getattr(args, "user", None),
            cluster=getattr(args, "cluster", None),
            request_timeout=request_timeout,
            certificate_authority=getattr(args, "certificate_authority", None),
            insecure_skip_tls_verify=insecure == "true",
        )

    def kubectl_flags(self, *, request_timeout: bool = True) -> list[str]:
        """The flags for kubectl, as `--flag=value` (the token included: redact before showing them)."""
        values = [
            ("--as", self.as_user),
            *(("--as-group", group) for group in self.as_groups),
            ("--token", self.token),
            ("--server", self.server),
            ("--user", self.user),
            ("--cluster", self.cluster),
            ("--request-timeout", self.request_timeout if request_timeout else None),
            ("--certificate-authority", self.certificate_authority),
        ]
        flags = [f"{flag}={value}" for flag, value in values if value is not None]
        if self.insecure_skip_tls_verify:
            flags.append("--insecure-skip-tls-verify=true")
        return flags


# kubectl's --request-timeout: a number of seconds, or a Go duration (1s, 2m, 1h30m, 500ms). (This module's
# patterns are compiled at their first use, by re's cache: most runs need none of them.)
_KUBECTL_TIMEOUT = r"\d+|(?:\d+(?:\.\d*)?(?:h|m|s|ms|us|µs|ns))+"


@dataclasses.dataclass(frozen=True)
class Options:
    """The resolved options of a run: flags, else x-preevy, else the profile, else defaults."""

    namespace: str | None  # None: the current context's namespace (Kubectl resolves it, else "default")
    kubeconfig: str | None  # None: kubectl's own loading ($KUBECONFIG, merged; ~/.kube/config)
    context: str | None  # None: current context
    template: pathlib.Path | None  # None: bundled default
    server_side_apply: bool
    storage_class: str | None
    storage_size: float  # GiB, > 0
    sources: dict[str, str]  # option name -> where the value came from
    connection: Connection = Connection()
    expose: str = "none"  # none | gateway | ingress: public URLs from the cluster's own routing
    domain: str | None = None  # wildcard domain of the hostnames (<service>-<port>-<env id>.<domain>)
    gateway: str | None = None  # NAME or NAMESPACE/NAME of an existing Gateway (expose gateway)
    ingress_class: str | None = None  # None: the cluster's default IngressClass (expose ingress)
    tls_secret: str | None = None  # an existing wildcard certificate Secret (expose ingress)
    cluster_issuer: str | None = None  # cert-manager's cluster-issuer annotation (expose ingress)
    ttl: float | None = None  # seconds: the environment expires that long after its last `up`
    sleep_after: float | None = None  # seconds: `gc` sleeps it when idle that long


# Go's time.ParseDuration, as kubectl reads --timeout: every number has its unit ("1h30" is refused);
# days (`d`) only where asked (ttl, sleep-after).
_DURATION_PART = r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)"
_DURATION = f"(?:{_DURATION_PART})+"
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


def duration_seconds(text: str, *, days: bool = False) -> float | None:
    """A Go duration (90s, 5m, 1h30m, 1.5m, 500ms; with days=True also 3d) or a plain number of seconds
    -> seconds; None unless valid and > 0."""
    value = text.strip() if text else ""
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        total = float(value)
    elif re.fullmatch(_DURATION, value):
        parts = re.findall(_DURATION_PART, value)
        if not days and any(unit == "d" for _, unit in parts):
            return None
        total = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    else:
        return None
    return total if 0 < total < float("inf") else None


def resolve_options(
    args: argparse.Namespace,
    x_preevy: dict[str, Any] | None,
    compose_file: pathlib.Path | None,
    profile: "Profile | None",
    environ: Mapping[str, str],
) -> Options:
    """The options of this run: each from the first source that sets it, validated (PreevyError USAGE)."""
    cwd = pathlib.Path.cwd()
    compose_dir = compose_file.parent if compose_file else cwd
    profile_name = profile.name if profile else ""
    layers: list[tuple[Mapping[str, object], Callable[[str], str], pathlib.Path]] = [
        (_flag_values(args), lambda name: f"flag {OPTION_FLAGS[name]}", cwd),
        (_env_values(environ), lambda name: f"env {OPTION_ENV_VARS[name]}", cwd),
        (
            x_preevy_driver_options(x_preevy, compose_file),
            lambda name: f"x-preevy in {compose_file or 'the compose file'}",
            compose_dir,
        ),
        (dict(profile.options) if profile else {}, lambda name: f"profile '{profile_name}'", cwd),
    ]
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in OPTION_NAMES:
        for layer_values, describe, base_dir in layers:
            if layer_values.get(name) is not None:
                source = describe(name)
                values[name] = parse_option(name, layer_values[name], source, base_dir)
                sources[name] = source
                break
    if sources.get("kubeconfig", "").startswith("env "):
        values["kubeconfig"] = None  # kubectl reads (and merges) $KUBECONFIG itself
    resolved = Options(
        namespace=values.get("namespace"),
        kubeconfig=values.get("kubeconfig"),
        context=values.get("context"),
        template=values.get("template"),
        server_side_apply=values.get("server-side-apply", True),
        storage_class=values.get("storage-class"),
        storage_size=values.get("storage-size", DEFAULT_STORAGE_SIZE),
        ttl=values.get("ttl"),
        sleep_after=values.get("sleep-after"),
        sources={name: sources.get(name, _default_source(name)) for name in OPTION_NAMES},
        expose=values.get("expose", "none"),
        domain=values.get("domain"),
        gateway=values.get("gateway"),
        ingress_class=values.get("ingress-class"),
        tls_secret=values.get("tls-secret"),
        cluster_issuer=values.get("cluster-issuer"),
        connection=Connection.from_args(args),
    )
    _check_exposure(resolved)
    return resolved


def _check_exposure(options: Options) -> None:
    """The options `expose` needs together (each named with where `expose` came from)."""
    needed = {"gateway": ("domain", "gateway"), "ingress": ("domain",)}.get(options.expose, ())
    for name in needed:
        if getattr(options, OPTION_FIELDS[name]) is None:
            raise PreevyError(
                messages.EXPOSE_NEEDS.format(
                    mode=options.expose,
                    source=options.sources["expose"],
                    option=name,
                    flag=OPTION_FLAGS[name],
                ),
                ExitCode.USAGE,
            )


def _default_source(name: str) -> str:
    return {"namespace": SOURCE_CONTEXT, "kubeconfig": SOURCE_KUBECTL, "context": SOURCE_CONTEXT}.get(
        name, SOURCE_DEFAULT
    )


def _flag_values(args: argparse.Namespace) -> dict[str, object]:
    return {name: getattr(args, field, None) for name, field in OPTION_FIELDS.items()}


def _env_values(environ: Mapping[str, str]) -> dict[str, object]:
    return {name: environ.get(var) or None for name, var in OPTION_ENV_VARS.items()}


def x_preevy_driver_options(
    x_preevy: dict[str, Any] | None, compose_file: pathlib.Path | None
) -> dict[str, object]:
    """`x-preevy.drivers.kube-pod` of the compose file, checked for shape and unknown keys."""
    if not x_preevy:
        return {}
    where = f"x-preevy in {compose_file or 'the compose file'}"
    if not isinstance(x_preevy, Mapping):
        raise PreevyError(messages.X_PREEVY_NOT_MAPPING.format(where=where, key="x-preevy"), ExitCode.USAGE)
    drivers = x_preevy.get("drivers") or {}
    if not isinstance(drivers, Mapping):
        raise PreevyError(
            messages.X_PREEVY_NOT_MAPPING.format(where=where, key="x-preevy.drivers"), ExitCode.USAGE
        )
    driver_options = drivers.get(DRIVER) or {}
    if not isinstance(driver_options, Mapping):
        raise PreevyError(
            messages.X_PREEVY_NOT_MAPPING.format(where=where, key=f"x-preevy.drivers.{DRIVER}"),
            ExitCode.USAGE,
        )
    unknown = sorted(set(driver_options) - set(OPTION_NAMES))
    if unknown:
        raise PreevyError(
            messages.UNKNOWN_OPTION.format(key=unknown[0], source=where, known=", ".join(OPTION_NAMES)),
            ExitCode.USAGE,
        )
    return dict(driver_options)


def parse_option(name: str, raw: object, source: str, base_dir: pathlib.Path | None = None) -> object:
    """raw (a flag's string, a YAML value, a profile value) as the option's type, or PreevyError USAGE."""
    if name not in OPTION_FIELDS:
        raise PreevyError(
            messages.UNKNOWN_OPTION.format(key=name, source=source, known=", ".join(OPTION_NAMES)),
            ExitCode.USAGE,
        )
    return _PARSERS[name](name, raw, source, base_dir or pathlib.Path.cwd())


def _invalid(name: str, raw: object, source: str, why: str) -> PreevyError:
    return PreevyError(
        messages.INVALID_OPTION.format(option=name, value=_show(raw), source=source, why=why), ExitCode.USAGE
    )


def _show(raw: object) -> str:
    return (
        raw
        if isinstance(raw, str)
        else repr(raw)
        if not isinstance(raw, (int, float))
        else naming.js_number(raw)
    )


def _parse_namespace(name: str, raw: object, source: str, base_dir: pathlib.Path) -> str:
    if not isinstance(raw, str) or not naming.is_rfc1123_label(raw):
        raise _invalid(name, raw, source, messages.WHY_RFC1123_LABEL)
    return raw


def _parse_storage_class(name: str, raw: object, source: str, base_dir: pathlib.Path) -> str:
    if not isinstance(raw, str) or not naming.is_rfc1123_subdomain(raw):
        raise _invalid(name, raw, source, messages.WHY_RFC1123_SUBDOMAIN)
    return raw


def _parse_context(name: str, raw: object, source: str, base_dir: pathlib.Path) -> str:
    if not isinstance(raw, str) or not raw.strip() or "\n" in raw:
        raise _invalid(name, raw, source, messages.WHY_CONTEXT)
    return raw


def _parse_kubeconfig(name: str, raw: object, source: str, base_dir: pathlib.Path) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise _invalid(name, raw, source, messages.WHY_PATH)
    if source.startswith("env "):
        return raw  # possibly several paths joined by ':', which kubectl merges itself
    path = (base_dir / pathlib.Path(raw).expanduser()).resolve()
    if not path.is_file():
        raise _invalid(name, raw, source, messages.WHY_FILE_MISSING.format(path=path))
    return str(path)


def _parse_template(name: str, raw: object, source: str, base_dir: pathlib.Path) -> pathlib.Path:
    if not isinstance(raw, str) or not raw.strip():
        raise _invalid(name, raw, source, messages.WHY_PATH)
    path = (base_dir / pathlib.Path(raw).expanduser()).resolve()
    if not path.is_file():
        raise _invalid(name, raw, source, messages.WHY_FILE_MISSING.format(path=path))
    return path


def _parse_bool(name: str, raw: object, source: str, base_dir: pathlib.Path) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
        return raw.strip().lower() in ("true", "yes", "1")
    raise _invalid(name, raw, source, messages.WHY_BOOL)


def _parse_storage_size(name: str, raw: object, source: str, base_dir: pathlib.Path) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise _invalid(name, raw, source, messages.WHY_STORAGE_SIZE)
    try:
        size = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise _invalid(name, raw, source, messages.WHY_STORAGE_SIZE) from None
    # the template writes it as `{{ storageSize }}Gi`: outside this range Python writes an exponent
    # (1e-07Gi), which is no Kubernetes quantity
    if not MIN_STORAGE_SIZE <= size <= MAX_STORAGE_SIZE or "e" in repr(size):
        raise _invalid(name, raw, source, messages.WHY_STORAGE_SIZE)
    return size


def _parse_expose(name: str, raw: object, source: str, base_dir: pathlib.Path) -> str:
    if not isinstance(raw, str) or raw.strip().lower() not in EXPOSE_MODES:
        raise _invalid(name, raw, source, messages.WHY_EXPOSE)
    return raw.strip().lower()


def _parse_domain(name: str, raw: object, source: str, base_dir: pathlib.Path) -> str:
    text = raw.strip().lower() if isinstance(raw, str) else ""
    text = text[2:] if text.startswith("*.") else text
    if not naming.is_rfc1123_subdomain(text) or len(text) > MAX_DOMAIN_LENGTH:
        raise _invalid(name, raw, source, messages.WHY_DOMAIN)
    return text


def _parse_gateway(name: str, raw: object, source: str, base_dir: pathlib.Path) -> str:
    namespace, _, gateway = raw.partition("/") if isinstance(raw, str) else ("", "", "")
    if not gateway:
        namespace, gateway = "", namespace
    if not naming.is_rfc1123_subdomain(gateway) or (namespace and not naming.is_rfc1123_label(namespace)):
        raise _invalid(name, raw, source, messages.WHY_GATEWAY)
    return str(raw)


def _parse_duration(name: str, raw: object, source: str, base_dir: pathlib.Path) -> float:
    seconds = (
        float(raw)
        if isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw > 0
        else duration_seconds(raw, days=True)
        if isinstance(raw, str)
        else None
    )
    if seconds is None:
        raise _invalid(name, raw, source, messages.WHY_DURATION)
    return seconds


_PARSERS: dict[str, Callable[[str, object, str, pathlib.Path], object]] = {
    "namespace": _parse_namespace,
    "kubeconfig": _parse_kubeconfig,
    "context": _parse_context,
    "template": _parse_template,
    "server-side-apply": _parse_bool,
    "storage-class": _parse_storage_class,
    "storage-size": _parse_storage_size,
    "expose": _parse_expose,
    "domain": _parse_domain,
    "gateway": _parse_gateway,
    "ingress-class": _parse_storage_class,
    "tls-secret": _parse_storage_class,
    "cluster-issuer": _parse_storage_class,
    "ttl": _parse_duration,
    "sleep-after": _parse_duration,
}


def cluster_flags(options: Options, namespace: str | None = None) -> list[str]:
    """The flags of a recovery hint: kubeconfig, context, namespace (namespace overrides
    options.namespace when given) and the connection flags given, the token redacted."""
    flags = []
    if options.kubeconfig:
        flags.append(f"--kubeconfig={options.kubeconfig}")
    if options.context:
        flags.append(f"--context={options.context}")
    namespace = namespace or options.namespace
    if namespace:
        flags.append(f"--namespace={namespace}")
    return flags + process.redact(options.connection.kubectl_flags())
