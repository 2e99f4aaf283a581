"""Command line: parses arguments, runs one command, maps errors to exit codes.

Command modules are imported only when their command runs, so `--help` stays instant. Every failure
ends as ONE `error:` line on stderr (and, with `-o json|yaml`, an Error document on stdout); an
unexpected exception is ExitCode.INTERNAL with its traceback in a log file (runlog.py).
"""

import argparse
import gc
import importlib
import io
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, cast

from kubectl_preevy import __version__, messages
from kubectl_preevy.errors import ExitCode, PreevyError

OUTPUT_FORMATS = ("table", "json", "yaml")


class _Parser(argparse.ArgumentParser):
    """argparse with our one-line `error: ...` (and Error document) and the usage exit code."""

    requested_output: str | None = None  # -o of the command line, set by main before parsing

    def error(self, message: str) -> NoReturn:
        from kubectl_preevy import console

        line = f"{message} (see `{self.prog} -h`)"
        console.error(line)
        print_error_document(_Parser.requested_output, line, ExitCode.USAGE)
        sys.exit(int(ExitCode.USAGE))


def prog_name(argv0: str | None = None) -> str:
    """`kubectl preevy` when run as a kubectl plugin (or from our checkout), else the program name."""
    name = os.path.basename(argv0 or sys.argv[0])
    return "kubectl preevy" if name.startswith("kubectl-") else name


def _add_cluster_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster (kubectl's flags; Preevy's --kube-pod-* names also work)")
    group.add_argument(
        "--kubeconfig",
        "--kube-pod-kubeconfig",
        dest="kubeconfig",
        metavar="PATH",
        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)",
    )
    group.add_argument(
        "--context",
        "--kube-pod-context",
        dest="context",
        metavar="NAME",
        help="kubeconfig context (default: $KUBE_CONTEXT, else the current context)",
    )
    group.add_argument(
        "-n",
        "--namespace",
        "--kube-pod-namespace",
        dest="namespace",
        metavar="NS",
        help="namespace (default: the current context's namespace, else `default`)",
    )
    group.add_argument("--profile", metavar="NAME", help="profile to use (default: the current profile)")
    _add_connection_flags(parser)


def _add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """kubectl's own connection flags, passed to every kubectl call (options.Connection)."""
    group = parser.add_argument_group("connection (kubectl's flags, passed to every kubectl call)")
    group.add_argument("--as", dest="as_user", metavar="USER", help="impersonate this user")
    group.add_argument(
        "--as-group",
        dest="as_groups",
        action="append",
        metavar="GROUP",
        help="impersonate this group (repeatable)",
    )
    group.add_argument("--token", metavar="TOKEN", help="bearer token (shown as REDACTED in hints and logs)")
    group.add_argument("-s", "--server", metavar="URL", help="address of the API server")
    group.add_argument("--user", metavar="NAME", help="kubeconfig user to use")
    group.add_argument("--cluster", metavar="NAME", help="kubeconfig cluster to use")
    group.add_argument(
        "--request-timeout",
        metavar="DURATION",
        help="timeout of each API request, e.g. 30s (default here: 20s; exec, port-forward and waits have none)",
    )
    group.add_argument(
        "--certificate-authority", metavar="PATH", help="CA certificate file of the API server"
    )
    group.add_argument(
        "--insecure-skip-tls-verify",
        nargs="?",
        const="true",
        metavar="true|false",
        help="do not check the server's certificate (insecure)",
    )


def _add_driver_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("environment template")
    group.add_argument(
        "--kube-pod-template",
        dest="template",
        metavar="PATH",
        help="template file (default: the bundled template; see `kubectl preevy template`)",
    )
    group.add_argument(
        "--kube-pod-server-side-apply",
        dest="server_side_apply",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply with server-side apply (default) or client-side create/apply",
    )
    group.add_argument(
        "--kube-pod-storage-class",
        dest="storage_class",
        metavar="CLASS",
        help="StorageClass of the Docker data volume (default: the cluster's default)",
    )
    group.add_argument(
        "--kube-pod-storage-size",
        dest="storage_size",
        metavar="GIB",
        help="size of the Docker data volume in GiB (default: 5)",
    )


def _add_expose_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("public URLs (from the cluster's own ingress or Gateway)")
    for flag, dest, metavar, help_text in (
        ("expose", "expose", "MODE", "none (default: localhost URLs through `connect`), gateway or ingress"),
        ("domain", "domain", "DOMAIN", "wildcard domain: URLs are <service>-<port>-<env id>.DOMAIN"),
        ("gateway", "gateway", "[NS/]NAME", "the Gateway the HTTPRoutes attach to (--expose gateway)"),
        ("ingress-class", "ingress_class", "CLASS", "IngressClass (default: the cluster's default class)"),
        ("tls-secret", "tls_secret", "SECRET", "wildcard certificate Secret for the Ingress (HTTPS URLs)"),
        ("cluster-issuer", "cluster_issuer", "ISSUER", "cert-manager ClusterIssuer for the Ingress"),
    ):
        group.add_argument(f"--{flag}", f"--kube-pod-{flag}", dest=dest, metavar=metavar, help=help_text)


def _add_project_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("compose project")
    group.add_argument(
        "-f",
        "--file",
        dest="files",
        action="append",
        metavar="FILE",
        help="compose file (repeatable; default: compose.yaml & co. in the current directory)",
    )
    group.add_argument("-p", "--project", dest="project", metavar="NAME", help="compose project name")
    group.add_argument(
        "--id", dest="env_id", metavar="ID", help="environment id (default: <project>-<git branch>)"
    )


def _add_output_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=OUTPUT_FORMATS,
        default="table",
        help="result format on stdout (json is versioned: see `apiVersion`)",
    )


def _add_target_flags(parser: argparse.ArgumentParser) -> None:
    """--id, or the project's compose files (long --file only: -f is `logs --follow`), and -p."""
    group = parser.add_argument_group("environment (default: the one `up` would use here)")
    group.add_argument("--id", dest="env_id", metavar="ID", help="environment id")
    group.add_argument(
        "--file", dest="files", action="append", metavar="FILE", help="compose file (repeatable)"
    )
    group.add_argument(
        "-p",
        "--project",
        dest="project",
        metavar="NAME",
        help="compose project in the pod (default: the last up)",
    )
    _add_cluster_flags(parser)


def _add_day_two_commands(commands) -> None:  # type: ignore[no-untyped-def]
    logs = commands.add_parser("logs", help="the services' logs (docker compose logs), with --id alone")
    logs.add_argument("services", nargs="*", metavar="SERVICE", help="only these services")
    logs.add_argument("-f", "--follow", action="store_true", help="follow the logs until Ctrl-C")
    logs.add_argument("--tail", metavar="N", help="only the last N lines of each container")
    logs.add_argument("--since", metavar="T", help="only since T (2013-01-02T13:23:37Z, or 42m)")
    logs.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    _add_target_flags(logs)

    exec_ = commands.add_parser("exec", help="run a command in a service's container: exec SERVICE -- CMD...")
    exec_.add_argument("service", metavar="SERVICE")
    exec_.add_argument("cmd", nargs="*", metavar="CMD", help="the command (after --; default: sh)")
    exec_.add_argument("-i", "--interactive", action="store_true", help="pass stdin to the command")
    exec_.add_argument(
        "-t",
        "--tty",
        action="store_true",
        help="allocate a TTY (default: when stdin and stdout are terminals)",
    )
    _add_target_flags(exec_)

    shell = commands.add_parser("shell", help="a shell (or a command after --) in the Docker host container")
    shell.add_argument("cmd", nargs="*", metavar="CMD", help="the command (after --; default: sh)")
    _add_target_flags(shell)

    status = commands.add_parser("status", help="the pod, containers, health, ports, URLs and expiry")
    _add_target_flags(status)
    _add_output_flag(status)

    purge = commands.add_parser("purge", help="delete every environment of the profile in the namespace")
    purge.add_argument("--all-profiles", action="store_true", help="every environment in the namespace")
    purge.add_argument("--yes", action="store_true", help="do not ask (needed when stdin is not a terminal)")
    purge.add_argument("--wait", action="store_true", help="wait until every object is gone")
    purge.add_argument(
        "--timeout", default="3m", metavar="DURATION", help="per environment: lock and deletion (default: 3m)"
    )
    _add_cluster_flags(purge)
    _add_output_flag(purge)

    env_id = commands.add_parser("env-id", help="the environment id `up` would use here, and why")
    _add_project_flags(env_id)
    _add_output_flag(env_id)


def _add_verbose_flag(parser: argparse.ArgumentParser, dest: str) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        dest=dest,
        action="count",
        default=0,
        help="show every program run (argv, exit code, duration) on stderr; -vv: with its stderr",
    )


def _leaf_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers of every (sub)command that runs something: those without subcommands."""
    children = [
        child
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for child in dict.fromkeys(action.choices.values())
    ]
    return [leaf for child in children for leaf in _leaf_parsers(child)] if children else [parser]


class _Unbuilt:
    """The parser of a command that does not run: whatever is added to it is dropped (start-up time)."""

    def __getattr__(self, name: str) -> Callable[..., "_Unbuilt"]:
        return lambda *args, **kwargs: self


class _Commands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """The subcommands: when one runs, only its parser is made (each of the others costs ~0.1 ms: the help,
    which lists them all, is built when no command runs)."""

    built: str | None = None  # None or "": every command's parser is built

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if self.built and name != self.built:
            return _Unbuilt()
        return super().add_parser(name, **kwargs)


def command_in(argv: list[str]) -> str:
    """The command argv runs ("" when none: the top-level help, --version or a usage error)."""
    first = next((arg for arg in argv if not arg.startswith("-")), "")
    return first if first in COMMAND_MODULES else ""


def build_parser(prog: str, command: str | None = None) -> argparse.ArgumentParser:
    """The parser; command: build only this command's parser (None or "": every command's)."""
    parser = _Parser(
        prog=prog, description="A Docker Compose project as a preview environment in one pod of your cluster."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # before the command (`kubectl preevy -v up`) and after it (`up -v`): two counters, added up in main
    _add_verbose_flag(parser, "global_verbose")
    commands = cast(_Commands, parser.add_subparsers(dest="command", metavar="COMMAND", action=_Commands))
    commands.built = command
    commands.required = True

    up = commands.add_parser("up", help="create or update the environment and start every service")
    _add_project_flags(up)
    _add_cluster_flags(up)
    _add_driver_flags(up)
    _add_expose_flags(up)
    up.add_argument(
        "--timeout",
        default="5m",
        metavar="DURATION",
        help="how long to wait for the Docker server to be ready (default: 5m)",
    )
    up.add_argument(
        "--dry-run",
        action="store_true",
        help="print the objects `up` would apply, as YAML, and the files it would copy, and stop",
    )
    up.add_argument(
        "--copy-outside",
        action="append",
        default=[],
        metavar="PATH",
        help="copy bind sources and files under PATH although it is outside the project (repeatable)",
    )
    up.add_argument(
        "--recreate",
        action="store_true",
        help="delete and recreate the environment (and its volume) when a change cannot be applied in place",
    )
    _add_lifetime_flags(up)
    _add_pr_comment_flags(up)
    _add_output_flag(up)

    down = commands.add_parser("down", help="delete every object of the environment")
    _add_project_flags(down)
    _add_cluster_flags(down)
    _add_driver_flags(down)
    _add_expose_flags(down)
    down.add_argument("--force", action="store_true", help="exit 0 quietly if the environment does not exist")
    down.add_argument(
        "--no-wait", dest="wait", action="store_false", help="do not wait until every object is gone"
    )
    down.add_argument(
        "--timeout", default="3m", metavar="DURATION", help="how long to wait for deletion (default: 3m)"
    )
    _add_pr_comment_flags(down)
    _add_output_flag(down)

    connect = commands.add_parser("connect", help="forward every published port to 127.0.0.1 until Ctrl-C")
    _add_project_flags(connect)
    _add_cluster_flags(connect)
    _add_output_flag(connect)

    urls = commands.add_parser("urls", help="print the public URLs of an environment (see --expose)")
    urls.add_argument("service", nargs="?", help="only this compose service")
    urls.add_argument("port", nargs="?", type=int, help="only this container port")
    _add_project_flags(urls)
    _add_cluster_flags(urls)
    _add_output_flag(urls)
    urls.add_argument("--output-urls-to", metavar="FILE", help="also write the URLs to FILE as JSON")

    share = commands.add_parser(
        "share", help="print a kubeconfig that can only `connect` to the environment, for a reviewer"
    )
    _add_project_flags(share)
    _add_cluster_flags(share)
    share.add_argument(
        "--ttl",
        dest="token_ttl",  # not the environment's ttl option
        default="8h",
        metavar="DURATION",
        help="how long the kubeconfig's token is valid (default: 8h)",
    )

    ls = commands.add_parser("ls", help="list the environments of the profile")
    _add_cluster_flags(ls)
    _add_output_flag(ls)

    _add_day_two_commands(commands)

    template = commands.add_parser("template", help="print the default template (to start a custom one)")
    template.add_argument(
        "--variant",
        choices=("default", "sysbox", "preevy"),
        default="default",
        help="which bundled template to print",
    )

    init = commands.add_parser("init", help="create a profile")
    init.add_argument("name", nargs="?", default="default", help="profile name (default: `default`)")
    _add_cluster_flags(init)
    _add_driver_flags(init)
    _add_expose_flags(init)
    init.add_argument(
        "--store",
        choices=("local", "cluster"),
        default="local",
        help="keep the profile on this machine, or in a ConfigMap in the cluster to share it with CI",
    )
    init.add_argument(
        "--profile-id",
        metavar="ID",
        help="profile id (default: `default` for the default profile, else <name>-<5 random>); "
        "reuse a Preevy profile's id to find its environments",
    )

    profile = commands.add_parser("profile", help="list, show, select, configure and remove profiles")
    profile_commands = profile.add_subparsers(dest="profile_command", metavar="SUBCOMMAND")
    profile_commands.required = True
    for name, help_text in (
        ("ls", "list profiles"),
        ("show", "show a profile"),
        ("use", "make a profile current"),
        ("rm", "remove a profile"),
    ):
        sub = profile_commands.add_parser(name, help=help_text)
        if name != "ls":
            sub.add_argument("name", nargs="?" if name == "show" else None)
        _add_cluster_flags(sub)
        if name in ("ls", "show"):
            _add_output_flag(sub)
    config = profile_commands.add_parser("config", help="set or unset option defaults of a profile")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION")
    config_commands.required = True
    config_set = config_commands.add_parser("set", help="set option defaults: KEY=VALUE ...")
    config_set.add_argument("settings", nargs="+", metavar="KEY=VALUE")
    _add_cluster_flags(config_set)
    config_unset = config_commands.add_parser("unset", help="unset option defaults: KEY ...")
    config_unset.add_argument("keys", nargs="+", metavar="KEY")
    _add_cluster_flags(config_unset)

    # issue 10: checks before `up`, and the Role a CI identity needs
    doctor = commands.add_parser(
        "doctor",
        help="check permissions, Pod Security, StorageClass and quota before `up` (takes up's flags)",
    )
    _add_project_flags(doctor)
    _add_cluster_flags(doctor)
    _add_driver_flags(doctor)
    _add_expose_flags(doctor)
    for flag in ("--timeout",):
        doctor.add_argument(flag, help=argparse.SUPPRESS)
    for flag in ("--dry-run", "--recreate"):
        doctor.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    doctor.set_defaults(dry_run=True)  # writes nothing, not even the default profile
    _add_output_flag(doctor)
    rbac = commands.add_parser(
        "rbac", help="print the minimal Role (and RoleBinding) for an identity that runs up/down/connect"
    )
    _add_cluster_flags(rbac)
    _add_driver_flags(rbac)
    _add_expose_flags(rbac)  # the routing objects' permissions too
    rbac.add_argument(
        "--service-account", metavar="NAME", help="bind the Role to this ServiceAccount (printed too)"
    )
    rbac.add_argument(
        "--bind-user", dest="users", action="append", metavar="NAME", help="bind the Role to a user"
    )
    rbac.add_argument(
        "--bind-group", dest="groups", action="append", metavar="NAME", help="bind the Role to a group"
    )
    rbac.add_argument("--role-name", default="kubectl-preevy", metavar="NAME", help="default: kubectl-preevy")
    rbac.add_argument(
        "--cluster-reads",
        action="store_true",
        help="also a ClusterRole (and binding) to read StorageClasses and the namespace (optional checks)",
    )

    version = commands.add_parser("version", help="print the version")
    _add_output_flag(version)
    _add_lifetime_commands(commands)
    for leaf in _leaf_parsers(parser):
        _add_verbose_flag(leaf, "verbose")
    return parser


# --- lifetime: ttl, sleep-after, sleep, wake, gc (issue 11) -------------------------------------------


def _add_lifetime_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("lifetime")
    group.add_argument(
        "--ttl",
        metavar="DURATION",
        help="delete the environment (`kubectl preevy gc`) this long after its last up, e.g. 72h "
        "(also $PREEVY_TTL; annotation preevy.dev/keep=true opts out)",
    )
    group.add_argument(
        "--sleep-after",
        dest="sleep_after",
        metavar="DURATION",
        help="let `kubectl preevy gc` sleep the environment once idle this long, e.g. 8h "
        "(also $PREEVY_SLEEP_AFTER)",
    )


def _add_pr_comment_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pull/merge request comment (GitHub Actions, GitLab CI)")
    group.add_argument(
        "--pr-comment",
        choices=("auto", "always", "never"),
        default=os.environ.get("PREEVY_PR_COMMENT") or "auto",
        help="comment the URLs on the pull/merge request: auto (when in one, with a token), always "
        "(else an error), never (default: $PREEVY_PR_COMMENT, else auto)",
    )
    group.add_argument(
        "--pr-comment-template",
        metavar="PATH",
        default=os.environ.get("PREEVY_PR_COMMENT_TEMPLATE"),
        help="Jinja2 template of the comment (sandboxed; variables env_id, namespace, urls, deleted)",
    )


def _add_lifetime_commands(commands: "argparse._SubParsersAction[_Parser]") -> None:
    for name, help_text, default_timeout in (
        ("sleep", "scale the environment to 0, keeping its volume", "3m"),
        ("wake", "scale a sleeping environment back and restart its services", "5m"),
    ):
        sub = commands.add_parser(name, help=help_text)
        _add_project_flags(sub)
        _add_cluster_flags(sub)
        sub.add_argument(
            "--timeout",
            default=default_timeout,
            metavar="DURATION",
            help=f"how long to wait (default: {default_timeout})",
        )
        if name == "wake":
            _add_output_flag(sub)
    gc = commands.add_parser("gc", help="delete expired environments and sleep idle ones")
    _add_cluster_flags(gc)
    gc.add_argument("-A", "--all-namespaces", action="store_true", help="environments of every namespace")
    gc.add_argument("--dry-run", action="store_true", help="say what gc would do, and do nothing")
    gc.add_argument(
        "--timeout", default="3m", metavar="DURATION", help="how long to wait per environment (default: 3m)"
    )
    _add_output_flag(gc)

    install = commands.add_parser("install", help="install cluster-side helpers (gc as a CronJob)")
    install_commands = install.add_subparsers(dest="install_command", metavar="WHAT")
    install_commands.required = True
    install_gc = install_commands.add_parser(
        "gc", help="run `kubectl preevy gc` in the namespace on a schedule (ServiceAccount, Role, CronJob)"
    )
    _add_cluster_flags(install_gc)
    install_gc.add_argument(
        "--schedule", default="*/30 * * * *", metavar="CRON", help="cron schedule (default: '*/30 * * * *')"
    )
    install_gc.add_argument(
        "--image",
        default=f"ghcr.io/kubectl-preevy/kubectl-preevy-gc:{__version__}",
        metavar="IMAGE",
        help="image with python3, kubectl and kubectl-preevy (see the Dockerfile; default: %(default)s)",
    )
    install_gc.add_argument("--dry-run", action="store_true", help="print the objects and stop")


COMMAND_MODULES = {
    "up": "up",
    "down": "down",
    "connect": "connect",
    "ls": "ls",
    "urls": "urls",
    "share": "share",
    "template": "template",
    "init": "init",
    "profile": "profile",
    "version": "version",
    "sleep": "sleep",
    "wake": "wake",
    "gc": "gc",
    "install": "install",
    "doctor": "doctor",
    "rbac": "rbac",
    "logs": "logs",
    "exec": "exec",
    "shell": "shell",
    "status": "status",
    "purge": "purge",
    "env-id": "env_id",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(prog_name(), command_in(argv))
    _Parser.requested_output = requested_output(argv)
    args = parser.parse_args(argv)
    from kubectl_preevy import process

    process.journal.reset(verbosity=args.global_verbose + args.verbose)
    return _run(_run_command, args, argv)


def console_main() -> NoReturn:
    """The program's entry point: main(), then our output flushed and the process ended at once. The
    interpreter's own shutdown (tearing down every module: ~25 ms once plumbum and rich are loaded) does
    nothing a finished run needs: every file and temporary directory was closed by the `with` that opened
    it, and every program we ran has ended (a daemon thread's would be killed by a normal exit too).
    The cyclic garbage collector is off until the first program starts (see process.resume_collector)."""
    gc.disable()
    try:
        code = main()
    except SystemExit as exit:  # argparse's --help and usage errors (their text is already written)
        if isinstance(exit.code, str):
            sys.stderr.write(exit.code + "\n")
        code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # whoever read it went away: nothing more to say
            pass
    os._exit(code)


def _run_command(args: argparse.Namespace) -> int | None:
    """Import the command's module (only now: `--help` stays fast) and run it."""
    module = importlib.import_module(f"kubectl_preevy.commands.{COMMAND_MODULES[args.command]}")
    run: Callable[[argparse.Namespace], int | None] = module.run
    return run(args)


def _run(
    command: Callable[[argparse.Namespace], int | None], args: argparse.Namespace, argv: list[str]
) -> int:
    """Run the command; every way it can end becomes an exit code and at most one `error:` line."""
    try:
        return int(command(args) or 0)
    except PreevyError as err:
        from kubectl_preevy import interrupt

        if interrupt.received() and err.exit_code != ExitCode.INTERRUPTED:
            # a child died of the same Ctrl-C before our handler ran: the interruption is the truth
            return _fail(args, argv, messages.INTERRUPTED, ExitCode.INTERRUPTED, "interrupted")
        message = " ".join(err.message.split("\n"))  # one line, whatever a tool's output put in it
        return _fail(args, argv, message, err.exit_code, f"error: {message}")
    except KeyboardInterrupt:
        return _fail(args, argv, messages.INTERRUPTED, ExitCode.INTERRUPTED, "interrupted")
    except BrokenPipeError:  # whoever read our stdout went away (`| head`): not a bug, nothing to say
        _silence_stdout()
        return int(ExitCode.FAILURE)
    except Exception as err:  # noqa: BLE001  the catch-all: a bug, reported with its log file
        return _internal_error(args, argv, err)


def _fail(args: argparse.Namespace, argv: list[str], message: str, exit_code: ExitCode, outcome: str) -> int:
    """The error line (and document); the log file too when a program failed, for its full stderr
    (not for bad input: what ran does not explain it)."""
    from kubectl_preevy import console, process

    console.error(message)
    try:
        print_error_document(getattr(args, "output", None), message, exit_code)
    except BrokenPipeError:  # whoever read our stdout went away: the error line said it all
        _silence_stdout()
    if exit_code != ExitCode.USAGE and process.journal.failed():
        log = _write_log(argv, outcome)
        if isinstance(log, str):
            console.info(messages.LOG_WRITTEN.format(log=log))
    return int(exit_code)


def _internal_error(args: argparse.Namespace, argv: list[str], err: Exception) -> int:
    from kubectl_preevy import console

    error = f"{type(err).__name__}: {err}".rstrip(": ")
    log = _write_log(argv, f"internal error: {error}", err)
    message = (
        messages.INTERNAL_ERROR.format(error=error, log=log)
        if isinstance(log, str)
        else messages.INTERNAL_ERROR_NO_LOG.format(error=error, reason=log)
    )
    console.error(" ".join(message.split()))
    print_error_document(getattr(args, "output", None), message, ExitCode.INTERNAL)
    return int(ExitCode.INTERNAL)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real file (tests capture it): nothing to flush into a closed pipe


def _write_log(argv: list[str], outcome: str, error: BaseException | None = None) -> str | OSError:
    """The log file's path, or why it could not be written."""
    from kubectl_preevy import process, runlog

    text = runlog.log_text(argv, outcome, list(process.journal.records), error)
    try:
        return str(runlog.write_log(text, os.environ))
    except OSError as write_error:
        return write_error


def print_error_document(output: str | None, message: str, exit_code: ExitCode) -> None:
    """With -o json|yaml, a failure is also a document on stdout, so scripts can parse it."""
    if output not in ("json", "yaml"):
        return
    from kubectl_preevy import console

    console.document(
        {
            "apiVersion": console.API_VERSION,
            "kind": "Error",
            "message": message,
            "exitCode": int(exit_code),
            "reason": exit_code.name,
        },
        output,
    )


def requested_output(argv: list[str]) -> str | None:
    """The -o/--output value in argv, read before parsing: a usage error is a document too."""
    for index, arg in enumerate(argv):
        if arg in ("-o", "--output") and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--output="):
            return arg.split("=", 1)[1]
        if arg.startswith("-o") and not arg.startswith("--") and len(arg) > 2:
            return arg[2:]
    return None
