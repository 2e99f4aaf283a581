"""`kubectl preevy urls [SERVICE [PORT]]`: the public URLs of an existing environment, read from its
routing Service (see expose.py), so it works with `--id` and without the compose files."""

import argparse
import json
import pathlib

from kubectl_preevy import console, expose, messages, urls
from kubectl_preevy.commands import shared
from kubectl_preevy.errors import ExitCode, PreevyError


def run(args: argparse.Namespace) -> int:
    current = shared.load_run(args, project="optional")
    env_id = shared.env_id(args, current)
    env = shared.existing_environment(current, env_id)
    rows = expose.read_rows(current.kubectl, env.instance)
    if rows is None:
        console.info(
            messages.NOT_EXPOSED.format(env_id=env_id, command=current.command_hint("connect", env_id))
        )
        return 0
    selected = [
        r
        for r in rows
        if (args.service is None or r.service == args.service) and (args.port is None or r.port == args.port)
    ]
    if not selected and (args.service or args.port):
        what = (
            args.service + (f" port {args.port}" if args.port else "")
            if args.service
            else f"port {args.port}"
        )
        known = ", ".join(sorted({f"{r.service}:{r.port}" for r in rows})) or "none"
        raise PreevyError(
            messages.NO_MATCHING_URL.format(what=what, env_id=env_id, services=known), ExitCode.USAGE
        )
    service_urls = urls.public_urls(selected)
    if args.output_urls_to:
        path = pathlib.Path(args.output_urls_to)
        path.write_text(json.dumps(urls.services_json(service_urls), indent=2) + "\n")
        console.info(messages.URLS_WRITTEN.format(path=path))
    document = urls.environment_document(
        env_id, current.kubectl.namespace, env.name, service_urls, instance=env.instance
    )
    if args.output != "table":
        console.document(document, args.output)
    else:
        console.result(urls.urls_table(service_urls))
    return 0
