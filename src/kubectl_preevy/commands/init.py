"""`kubectl preevy init [NAME] [--store local|cluster] [option flags]`: create a profile and make it current."""

import argparse
import os
import pathlib
from collections.abc import Mapping

from kubectl_preevy import messages, options, profiles
from kubectl_preevy.errors import ExitCode, PreevyError

MACHINE_SPECIFIC_OPTIONS = ("kubeconfig", "context")


def run(args: argparse.Namespace) -> int:
    from kubectl_preevy import console

    environ = os.environ
    name = profiles.validate_name(args.name)
    explicit_id = getattr(args, "profile_id", None)
    profile_id = profiles.validate_id(explicit_id) if explicit_id else profiles.new_profile_id(name)
    profile = profiles.Profile(name=name, id=profile_id, options=option_defaults_from_flags(args))
    local = profiles.LocalStore(environ)
    existing = local.load(name)
    if existing:
        raise PreevyError(messages.PROFILE_EXISTS.format(name=name, where=existing.location), ExitCode.USAGE)
    if args.store == profiles.STORE_CLUSTER:
        _create_in_cluster(profile, args, environ)
    else:
        local.save(profile)
    local.set_current(name)
    console.info(messages.PROFILE_CREATED.format(name=name, id=profile_id, where=f"in {profile.location}"))
    return 0


def option_defaults_from_flags(args: argparse.Namespace) -> dict[str, object]:
    """The option flags given to init, validated, as profile option defaults (paths made absolute)."""
    values = {}
    for name, field in options.OPTION_FIELDS.items():
        raw = getattr(args, field, None)
        if raw is None:
            continue
        value = options.parse_option(name, raw, f"flag {options.OPTION_FLAGS[name]}", pathlib.Path.cwd())
        values[name] = str(value) if isinstance(value, pathlib.Path) else value
    return values


def _create_in_cluster(
    profile: profiles.Profile, args: argparse.Namespace, environ: Mapping[str, str]
) -> None:
    from kubectl_preevy import console

    skipped = [name for name in MACHINE_SPECIFIC_OPTIONS if name in profile.options]
    if skipped:
        console.warn(messages.PROFILE_CLUSTER_OPTIONS_SKIPPED)
        for name in skipped:
            del profile.options[name]
    # -n says where the profile is kept; environments go there too unless `profile config set namespace=...`
    profile.options.pop("namespace", None)
    cluster = profiles.ClusterStore.from_args(args, environ)
    cluster.kubectl.namespace_exists()
    existing = cluster.load(profile.name)
    if existing:
        raise PreevyError(
            messages.PROFILE_EXISTS.format(name=profile.name, where=existing.location), ExitCode.USAGE
        )
    cluster.create(profile)
