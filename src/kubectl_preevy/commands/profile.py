"""`kubectl preevy profile ls|show|use|rm|config set|config unset`: manage profiles (local and in-cluster)."""

import argparse
import os
import pathlib
from collections.abc import Mapping
from typing import Any

from kubectl_preevy import messages, options, profiles
from kubectl_preevy.errors import ExitCode, PreevyError

SOURCE_CONFIG_SET = "profile config set"


def run(args: argparse.Namespace) -> int:
    handler = {"ls": _ls, "show": _show, "use": _use, "rm": _rm, "config": _config}[args.profile_command]
    return handler(args, os.environ)


# --- ls / show -------------------------------------------------------------------------------------


def _ls(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from kubectl_preevy import console

    local = profiles.LocalStore(environ)
    current = local.current()
    listed = {profile.name: profile for profile in local.list()}
    try:
        for profile in profiles.ClusterStore.from_args(args, environ).list():
            listed.setdefault(profile.name, profile)  # a local profile shadows a cluster one
    except PreevyError as err:
        console.warn(messages.PROFILE_CLUSTER_LIST_FAILED.format(detail=getattr(err, "detail", err.message)))
    items = [listed[name].to_dict(current=name == current) for name in sorted(listed)]
    if args.output != "table":
        console.document(
            {"apiVersion": console.API_VERSION, "kind": "ProfileList", "current": current, "items": items},
            args.output,
        )
    else:
        console.result(
            console.table(
                [
                    [
                        "*" if item["current"] else "",
                        item["name"],
                        item["id"],
                        item["store"],
                        _options_text(item["options"]),
                    ]
                    for item in items
                ],
                ["current", "name", "id", "store", "options"],
            )
        )
    return 0


def _show(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from kubectl_preevy import console

    profile = _named_profile(args.name, args, environ) if args.name else profiles.load_profile(args, environ)
    document = profile.to_dict(current=profiles.LocalStore(environ).current() == profile.name)
    if args.output != "table":
        console.document({"apiVersion": console.API_VERSION, "kind": "Profile", **document}, args.output)
        return 0
    lines = [
        f"name: {profile.name}",
        f"id: {profile.id}",
        f"store: {profile.store} ({profile.location})",
        f"current: {'yes' if document['current'] else 'no'}",
        "options:",
    ]
    lines += [f"  {key}: {profiles.option_to_text(value)}" for key, value in sorted(profile.options.items())]
    if not profile.options:
        lines.append("  (none: built-in defaults)")
    console.result("\n".join(lines))
    return 0


def _options_text(values: dict[str, Any]) -> str:
    return " ".join(f"{key}={profiles.option_to_text(value)}" for key, value in sorted(values.items())) or "-"


# --- use / rm --------------------------------------------------------------------------------------


def _named_profile(name: str, args: argparse.Namespace, environ: Mapping[str, str]) -> profiles.Profile:
    profiles.validate_name(name)
    profile = profiles.find_profile(name, args, environ)
    if profile is None:
        raise PreevyError(
            messages.PROFILE_NOT_FOUND.format(
                name=name, namespace=profiles.ClusterStore.from_args(args, environ).where
            ),
            ExitCode.USAGE,
        )
    return profile


def _use(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from kubectl_preevy import console

    profile = _named_profile(args.name, args, environ)
    profiles.LocalStore(environ).set_current(profile.name)
    console.info(messages.PROFILE_NOW_CURRENT.format(name=profile.name))
    return 0


def _rm(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from kubectl_preevy import console

    name = profiles.validate_name(args.name)
    local = profiles.LocalStore(environ)
    path = local.path(name)
    if local.remove(name):
        where = f"from {path}"
    else:
        cluster = profiles.ClusterStore.from_args(args, environ)
        if not cluster.remove(name):
            raise PreevyError(
                messages.PROFILE_NOT_FOUND.format(name=name, namespace=cluster.where), ExitCode.USAGE
            )
        if local.current() == name:
            local.set_current(None)
        where = f"from the cluster ({cluster.where})"
    console.info(messages.PROFILE_REMOVED.format(name=name, where=where))
    return 0


# --- config set / unset ----------------------------------------------------------------------------


def _config(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from kubectl_preevy import console

    # the settings are checked before the profile is loaded: a bad one writes no file (not even `default`)
    if args.config_command == "set":
        updates = parse_settings(args.settings)
    else:
        for key in args.keys:
            if key not in options.OPTION_NAMES:
                raise PreevyError(
                    messages.UNKNOWN_OPTION.format(
                        key=key, source="profile config unset", known=", ".join(options.OPTION_NAMES)
                    ),
                    ExitCode.USAGE,
                )
    profile = profiles.load_profile(args, environ)
    if args.config_command == "set":
        _check_storable(profile, updates)
        profile.options.update(updates)
    else:
        for key in args.keys:
            profile.options.pop(key, None)
    _save(profile, args, environ)
    console.info(messages.PROFILE_UPDATED.format(name=profile.name, where=f"({profile.location})"))
    return 0


def parse_settings(settings: list[str]) -> dict[str, object]:
    """KEY=VALUE settings as validated option defaults (all checked before anything is written)."""
    values = {}
    for setting in settings:
        key, separator, raw = setting.partition("=")
        if not separator or key not in options.OPTION_NAMES:
            raise PreevyError(
                messages.PROFILE_SETTING_INVALID.format(
                    setting=setting, known=", ".join(options.OPTION_NAMES)
                ),
                ExitCode.USAGE,
            )
        value = options.parse_option(key, raw, SOURCE_CONFIG_SET, pathlib.Path.cwd())
        values[key] = str(value) if isinstance(value, pathlib.Path) else value
    return values


def _check_storable(profile: profiles.Profile, updates: dict[str, Any]) -> None:
    from kubectl_preevy.commands.init import MACHINE_SPECIFIC_OPTIONS

    if profile.store == profiles.STORE_CLUSTER and any(name in updates for name in MACHINE_SPECIFIC_OPTIONS):
        raise PreevyError(messages.PROFILE_CLUSTER_OPTION_REFUSED, ExitCode.USAGE)


def _save(profile: profiles.Profile, args: argparse.Namespace, environ: Mapping[str, str]) -> None:
    if profile.store == profiles.STORE_CLUSTER:
        profiles.ClusterStore.from_args(args, environ).replace(profile)
    else:
        profiles.LocalStore(environ).save(profile)
