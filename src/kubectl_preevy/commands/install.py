"""`kubectl preevy install gc`: gc as a CronJob in the namespace (ServiceAccount, minimal Role, RoleBinding).

Checked by the server (`--dry-run=server`) before anything is written; `--dry-run` prints the objects.
"""

import argparse
import os
import re

from kubectl_preevy import console, gcinstall, messages, template
from kubectl_preevy import options as options_module
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.kubectl import Kubectl

_SCHEDULE = re.compile(r"@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+")
FIELD_MANAGER = "kubectl-preevy"


def run(args: argparse.Namespace) -> int:
    schedule = args.schedule.strip()
    if not _SCHEDULE.fullmatch(schedule):
        raise PreevyError(messages.GC_BAD_SCHEDULE.format(schedule=args.schedule), ExitCode.USAGE)
    if not args.image.strip() or any(c.isspace() for c in args.image):
        raise PreevyError(messages.GC_BAD_IMAGE.format(image=args.image), ExitCode.USAGE)
    options = options_module.resolve_options(args, None, None, None, os.environ)
    kubectl = Kubectl(options.kubeconfig, options.context, options.namespace, os.environ, options.connection)
    manifest = template.manifest_yaml(gcinstall.objects(kubectl.namespace, schedule, args.image))
    if args.dry_run:
        console.result(manifest)
        return 0
    kubectl.namespace_exists()
    apply = ["apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts", "-f", "-"]
    kubectl.check(*apply, "--dry-run=server", stdin=manifest)
    kubectl.check(*apply, stdin=manifest)
    console.info(
        messages.GC_INSTALLED.format(
            name=gcinstall.NAME, namespace=kubectl.namespace, schedule=schedule, image=args.image
        )
    )
    console.info(messages.GC_RUN_NOW.format(name=gcinstall.NAME, namespace=kubectl.namespace))
    console.result(f"cronjob.batch/{gcinstall.NAME}")
    return 0
