"""kubectl, bound to the resolved kubeconfig, context and namespace; its raw errors made into ours."""

import json
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

from kubectl_preevy import kubeconfig as kubeconfig_files
from kubectl_preevy import messages, process, retry
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.options import Connection

# Verbs that only talk to the API server: they get --request-timeout so a dead server cannot
# hang them. Streams (exec, port-forward) and watches (rollout status, wait) must not.
API_VERBS = frozenset(
    {"get", "apply", "create", "delete", "label", "annotate", "patch", "replace", "auth", "logs"}
)
REQUEST_TIMEOUT = "20s"
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
API_CALL_TIMEOUT_SECONDS = 90
# Verbs safe to repeat after a transient failure (see retry.py); `apply` only server-side.
RETRIED_VERBS = frozenset({"get", "delete", "label", "annotate", "rollout", "logs", "api-resources", "auth"})


_CONFIG_VIEWS: dict[tuple[tuple[str, ...], str, str], str] = {}  # one read per invocation (see _config_view)


class Kubectl:
    def __init__(
        self,
        kubeconfig: str | None,
        context: str | None,
        namespace: str | None,
        environ: Mapping[str, str],
        connection: Connection | None = None,
    ):
        self.environ = dict(environ)
        self.connection = connection or Connection()
        self._kubeconfig, self._context = kubeconfig, context
        self._config_flags = (
            (["--kubeconfig", kubeconfig] if kubeconfig else [])
            + (["--context", context] if context else [])
            + self.connection.kubectl_flags(request_timeout=False)
        )
        self.in_cluster = in_cluster(kubeconfig, self.environ)
        if not kubeconfig:
            missing = missing_kubeconfig(self.environ)
            if missing:
                raise PreevyError(messages.KUBECONFIG_ENV_MISSING.format(path=missing), ExitCode.CLUSTER)
        self.namespace = namespace or ""
        self._server_url: str | None = self.connection.server
        self.namespace_document: str | None = None  # the namespace as `namespace_exists` read it
        self._reached = False  # once the cluster answered, a refused connection is a transient failure
        if not namespace:
            self.namespace = self._current_namespace()

    def argv(self, verb: str, *args: str) -> list[str]:
        request_timeout = self.connection.request_timeout or REQUEST_TIMEOUT
        # kubectl ignores its in-cluster config once a flag such as --request-timeout changes the
        # default config (a CronJob's pod then asks localhost:8080): the process timeout bounds it there
        in_cluster_default = self.in_cluster and not self.connection.request_timeout
        timeout = (
            ["--request-timeout", request_timeout] if verb in API_VERBS and not in_cluster_default else []
        )
        return ["kubectl", *self._config_flags, "-n", self.namespace, verb, *timeout, *args]

    def run(
        self,
        *args: str,
        stdin: str | bytes | None = None,
        timeout: float | None = API_CALL_TIMEOUT_SECONDS,
        retry_transient: bool | None = None,
        on_line: Callable[[str], object] | None = None,
        meanwhile: Callable[[], object] | None = None,
    ) -> process.Result:
        """Run kubectl; never raises on failure (see `check`). A transient failure (retry.py) of a step that
        is safe to repeat is retried with back-off; retry_transient None: decided by the verb. on_line: each
        stdout line as it comes; meanwhile: run once kubectl has started, on the first try only (see
        process.run)."""
        argv = self.argv(*args)
        if retry_transient is None:
            retry_transient = safe_to_repeat(args)
        if not retry_transient:
            return self._run_once(argv, stdin, timeout, on_line, meanwhile)
        pending = [meanwhile]
        return retry.retrying(
            lambda: self._run_once(argv, stdin, timeout, on_line, pending.pop() if pending else None),
            self._transient,
            on_retry=self._say_retrying,
        )

    def _run_once(
        self,
        argv: list[str],
        stdin: str | bytes | None,
        timeout: float | None,
        on_line: Callable[[str], object] | None = None,
        meanwhile: Callable[[], object] | None = None,
    ) -> process.Result:
        result = process.run(
            argv, stdin=stdin, env=self.environ, timeout=timeout, on_line=on_line, meanwhile=meanwhile
        )
        if result.ok:
            self._reached = True
        return result

    def _transient(self, result: process.Result) -> bool:
        if result.ok or not retry.is_transient(result.stderr):
            return False
        # a connection that fails before the cluster ever answered is a wrong address or a cluster that is
        # down: said at once (exit 4), not after the back-off
        return self._reached or not retry.is_connection_failure(result.stderr)

    def _say_retrying(self, result: process.Result, delay: float) -> None:
        from kubectl_preevy import console

        console.warn(
            messages.RETRYING.format(
                command=self._command(result),
                error=_clean(retry.transient_line(result.stderr)),
                seconds=delay,
            )
        )

    def check(
        self,
        *args: str,
        stdin: str | bytes | None = None,
        timeout: float | None = API_CALL_TIMEOUT_SECONDS,
        retry_transient: bool | None = None,
        meanwhile: Callable[[], object] | None = None,
    ) -> process.Result:
        """Run kubectl; a failure becomes our one-line PreevyError. meanwhile: as run's."""
        result = self.run(
            *args, stdin=stdin, timeout=timeout, retry_transient=retry_transient, meanwhile=meanwhile
        )
        if not result.ok:
            raise self.error(result)
        return result

    def json(self, *args: str, meanwhile: Callable[[], object] | None = None) -> dict[str, Any]:
        """`kubectl get ARGS -o json`, parsed. meanwhile: as run's."""
        document: dict[str, Any] = json.loads(
            self.check("get", *args, "-o", "json", meanwhile=meanwhile).stdout
        )
        return document

    def popen(self, *args: str, **popen_kwargs: Any) -> subprocess.Popen[bytes]:
        return process.popen(self.argv(*args), env=self.environ, **popen_kwargs)

    def error(self, result: process.Result) -> PreevyError:
        return translate_error(result.stderr, self._command(result), self.namespace, result.last_error_line())

    def _command(self, result: process.Result) -> str:
        rest = result.argv[1 + len(self._config_flags) :]
        verb = rest[2] if rest[:1] == ["-n"] else rest[0]
        return f"kubectl {verb}"

    def namespace_exists(self) -> None:
        """A clear error for a missing namespace, before anything is applied.

        A user allowed only inside the namespace may not read it: then we go on.
        """
        result = self.run("get", "namespace", self.namespace, "-o", "json")
        if result.ok:
            self.namespace_document = result.stdout  # read once: the checks before `up` look at it too
            return
        if "Forbidden" in result.stderr or "forbidden" in result.stderr:
            return
        if "NotFound" in result.stderr:
            raise PreevyError(messages.NAMESPACE_MISSING.format(namespace=self.namespace), ExitCode.CLUSTER)
        raise self.error(result)

    def _current_namespace(self) -> str:
        # the server's URL with it (the copy chooses its stream by it)
        read = self._read_kubeconfig()
        if read is not None:
            self._server_url = self._server_url or read.server
            return read.namespace
        namespace, _, server = self._config_view(
            '{.contexts[0].context.namespace}{"\\n"}{.clusters[0].cluster.server}'
        ).partition("\n")
        self._server_url = self._server_url or server.strip()
        return namespace.strip() or "default"

    def _read_kubeconfig(self) -> kubeconfig_files.Current | None:
        """The files read in-process when they are plain (kubeconfig.py), else None: ask `config view`."""
        if self.connection.cluster:  # another cluster than the context's: kubectl resolves it
            return None
        return kubeconfig_files.current(self._kubeconfig, self._context, self.environ)

    def server_url(self) -> str:
        """The API server's URL, as --server or the kubeconfig's current context says."""
        if self._server_url is None:
            read = self._read_kubeconfig()
            self._server_url = (
                read.server
                if read is not None
                else self._config_view("{.clusters[0].cluster.server}").strip()
            )
        return self._server_url

    def _config_view(self, jsonpath: str) -> str:
        """The kubeconfig as kubectl reads it, once per invocation for the same flags and question."""
        key = (tuple(self._config_flags), jsonpath, self.environ.get("KUBECONFIG", ""))
        if key not in _CONFIG_VIEWS:
            _CONFIG_VIEWS[key] = self._read_config_view(jsonpath)
        return _CONFIG_VIEWS[key]

    def _read_config_view(self, jsonpath: str) -> str:
        result = process.run(
            ["kubectl", *self._config_flags, "config", "view", "--minify", "-o", f"jsonpath={jsonpath}"],
            env=self.environ,
            timeout=API_CALL_TIMEOUT_SECONDS,
        )
        if not result.ok:
            raise self.error(result)
        return result.stdout


def duration(seconds: float) -> str:
    """seconds as a duration kubectl parses (Go's time.ParseDuration: never an exponent such as 3.6e+09s)."""
    return f"{max(seconds, 0.001):.3f}".rstrip("0").rstrip(".") + "s"


def safe_to_repeat(args: tuple[str, ...] | list[str]) -> bool:
    """Whether a kubectl command line may run again after a transient failure."""
    if not args:
        return False
    if args[0] == "apply":
        return "--server-side" in args
    return args[0] in RETRIED_VERBS


def in_cluster(kubeconfig: str | None, environ: Mapping[str, str]) -> bool:
    """Whether kubectl will use the pod's ServiceAccount (no kubeconfig anywhere, the service env and token)."""
    home = environ.get("HOME") or os.path.expanduser("~")
    return (
        not kubeconfig
        and not environ.get("KUBECONFIG")
        and not os.path.exists(os.path.join(home, ".kube", "config"))
        and bool(environ.get("KUBERNETES_SERVICE_HOST") and environ.get("KUBERNETES_SERVICE_PORT"))
        and os.path.exists(SERVICE_ACCOUNT_TOKEN)
    )


# (pattern in kubectl's stderr, message, exit code); the first match wins. These patterns are compiled at
# their first use (re's cache): only a failure needs them, and compiling them all costs ~1 ms of every start.
_TRANSLATIONS = (
    (r'error loading config file "([^"]*)": (.*)', messages.KUBECONFIG_BROKEN, ExitCode.CLUSTER),
    (
        r"(?m)^error: (?:stat|open) ([^:]+): no such file or directory",
        messages.KUBECONFIG_MISSING,
        ExitCode.CLUSTER,
    ),
    (
        r"cannot locate context (\S+)|context was not found for specified context: (\S+)|"
        r'context "([^"]+)" does not exist',
        messages.CONTEXT_MISSING,
        ExitCode.CLUSTER,
    ),
    (r'auth info "([^"]+)" does not exist', messages.USER_MISSING, ExitCode.CLUSTER),
    (r'no server found for cluster "([^"]+)"', messages.CLUSTER_MISSING, ExitCode.CLUSTER),
    (
        r"unable to read certificate-authority (\S+) for \S+ due to (?:open \S+: )?(.*)",
        messages.CERTIFICATE_AUTHORITY_UNREADABLE,
        ExitCode.CLUSTER,
    ),
    (
        r"current-context must exist|invalid configuration: no configuration has been provided",
        messages.NO_CURRENT_CONTEXT,
        ExitCode.CLUSTER,
    ),
    (
        r"The connection to the server localhost:8080 was refused",
        messages.NO_CLUSTER_SELECTED,
        ExitCode.CLUSTER,
    ),
    (
        r"The connection to the server (\S+) was refused",
        messages.CLUSTER_UNREACHABLE,
        ExitCode.CLUSTER,
    ),
    (
        r"dial tcp (\S+): connect: connection refused",
        messages.CLUSTER_UNREACHABLE,
        ExitCode.CLUSTER,
    ),
    (
        r"Unable to connect to the server: (.*)",
        messages.CLUSTER_UNREACHABLE_BECAUSE,
        ExitCode.CLUSTER,
    ),
    (
        r"(Unauthorized|must be logged in|provide credentials)",
        messages.CLUSTER_UNAUTHORIZED,
        ExitCode.CLUSTER,
    ),
    (r'namespaces "([^"]+)" not found', messages.NAMESPACE_MISSING, ExitCode.CLUSTER),
    (
        r"unable to create new content in namespace (\S+) because it is being terminated",
        messages.NAMESPACE_TERMINATING_AT,
        ExitCode.CLUSTER,
    ),
)


_FORBIDDEN = r"(?m)^Error from server \(Forbidden\)"
_RBAC_DENIAL = r'is forbidden: User "[^"]*" cannot \S+ resource'


def translate_error(stderr: str, command: str, namespace: str, last_line: str) -> PreevyError:
    """kubectl's stderr as our one-line error: a known cause with what to do, else what kubectl said."""
    for pattern, message, exit_code in _TRANSLATIONS:
        match = re.search(pattern, stderr)
        if match:
            groups = [g for g in match.groups() if g is not None]
            return PreevyError(message.format(*groups, namespace=namespace, detail=last_line), exit_code)
    if re.search(_FORBIDDEN, stderr):  # RBAC, Pod Security admission, a ResourceQuota: the cluster said no
        rbac = messages.RBAC_HINT.format(namespace=namespace) if re.search(_RBAC_DENIAL, stderr) else ""
        return PreevyError(
            messages.KUBECTL_REFUSED.format(command=command, error=_clean(last_line)) + rbac, ExitCode.REFUSED
        )
    return PreevyError(
        messages.KUBECTL_FAILED.format(command=command, error=_clean(last_line)), ExitCode.FAILURE
    )


def missing_kubeconfig(environ: Mapping[str, str]) -> str | None:
    """$KUBECONFIG when it names only files that do not exist (kubectl would then run with an empty
    configuration and blame the context, or try localhost:8080), else None."""
    paths = [p for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if not paths or any(os.path.exists(p) for p in paths):
        return None
    return os.pathsep.join(paths)


def _clean(line: str) -> str:
    """kubectl's `error: ...` / `Error from server (X): ...` without the prefix (ours adds `error:`)."""
    return re.sub(r"^(error: |Error from server( \(\w+\))?: )", "", line)
