"""`kubectl preevy template [--variant default|sysbox]`: print a bundled template, to start a custom one."""

import argparse


def run(args: argparse.Namespace) -> int:
    from kubectl_preevy import console, resources

    console.result(resources.template_text(resources.TEMPLATE_VARIANTS[args.variant]))
    return 0
