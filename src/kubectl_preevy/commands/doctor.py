"""`kubectl preevy doctor`: before anything is created, whether this identity, namespace and cluster let
`up`, `down` and `connect` work with this template; one row per check, with the fix."""

import argparse

from kubectl_preevy import console, environment, messages, preflight
from kubectl_preevy.commands import shared
from kubectl_preevy.commands import up as up_command
from kubectl_preevy.errors import ExitCode, PreevyError


def run(args: argparse.Namespace) -> int:
    current = shared.load_run(args, project="optional")
    env_id = shared.env_id(args, current)
    kubectl = current.kubectl
    checks = preflight.run_checks(
        kubectl,
        up_command.rendered_objects(current, env_id),
        existing=lambda: bool(environment.find(kubectl, current.profile.id, env_id)),
        storage_class=current.options.storage_class,
    )
    _report(args, kubectl.namespace, env_id, checks)
    failed = [c for c in checks if c.result == preflight.FAIL]
    if failed:
        exit_code = ExitCode.CLUSTER if any(c.check == "namespace" for c in failed) else ExitCode.REFUSED
        raise PreevyError(
            messages.DOCTOR_FAILED.format(
                count=len(failed), first=f"{failed[0].subject}: {failed[0].detail}"
            ),
            exit_code,
        )
    return 0


def _report(args: argparse.Namespace, namespace: str, env_id: str, checks: list[preflight.Check]) -> None:
    if args.output in ("json", "yaml"):
        document = {
            "apiVersion": console.API_VERSION,
            "kind": "Doctor",
            "namespace": namespace,
            "envId": env_id,
            "ok": not any(c.result == preflight.FAIL for c in checks),
            "checks": [c.as_json() for c in checks],
        }
        console.document(document, args.output)
        return
    rows = [[c.check, c.subject, c.result, c.detail, c.fix] for c in checks]
    console.result(console.table(rows, ["check", "subject", "result", "detail", "fix"]))
