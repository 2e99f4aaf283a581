"""`kubectl preevy env-id`: the environment id `up` would use here, and why."""

import argparse
import os
import pathlib

from kubectl_preevy import compose, console, envid


def run(args: argparse.Namespace) -> int:
    project = None
    if not args.env_id:
        project = compose.load_project(args.files, args.project, pathlib.Path.cwd(), os.environ)
    value, why = envid.resolve_env_id(
        args.env_id, project.name if project else "", os.environ, pathlib.Path.cwd()
    )
    if args.output != "table":
        console.document(
            {"apiVersion": console.API_VERSION, "kind": "EnvironmentId", "envId": value, "why": why},
            args.output,
        )
    else:
        console.result(value)
        console.info(why)
    return 0
