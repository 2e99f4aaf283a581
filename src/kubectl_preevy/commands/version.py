"""`kubectl preevy version`: the version of kubectl-preevy (from kubectl_preevy.__version__ only)."""
import argparse
import json

from kubectl_preevy import __version__, console

API_VERSION = "kubectl-preevy/v1"


def run(args: argparse.Namespace) -> int:
    if args.output == "json":
        console.result(json.dumps({"apiVersion": API_VERSION, "kind": "Version", "version": __version__}, indent=2))
    else:
        console.result(f"kubectl-preevy {__version__}")
    return 0
