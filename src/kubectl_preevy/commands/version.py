"""`kubectl preevy version`: the version of kubectl-preevy (from kubectl_preevy.__version__ only)."""

import argparse

from kubectl_preevy import __version__, console


def run(args: argparse.Namespace) -> int:
    if args.output != "table":
        console.document(
            {"apiVersion": console.API_VERSION, "kind": "Version", "version": __version__}, args.output
        )
    else:
        console.result(f"kubectl-preevy {__version__}")
    return 0
