"""The Compose project: its model from `docker compose config`, and that model rewritten for the pod.

`docker compose config --format json` does every bit of Compose's own work (several `-f` files,
`.env`, `env_file`, profiles, `extends`, interpolation); we only read and rewrite its output.
"""

import copy
import dataclasses
import json
import os
import pathlib
from collections.abc import Iterator, Mapping
from typing import Any

from kubectl_preevy import messages, process
from kubectl_preevy.errors import ExitCode, PreevyError

# Preevy's default files (core/src/compose/files.ts): one base file, else one override file alone;
# a system file (compose.preevy.*) always goes first, also before -f files.
DEFAULT_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_FILE_NAMES = (
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
)
SYSTEM_FILE_NAMES = (
    "compose.preevy.yaml",
    "compose.preevy.yml",
    "docker-compose.preevy.yaml",
    "docker-compose.preevy.yml",
)
# Bind sources that name the Docker host itself (its socket, its logs): inside the pod they
# mean the pod's own, so they stay as they are and nothing is copied.
HOST_PATHS = (
    pathlib.PurePosixPath("/var/run"),
    pathlib.PurePosixPath("/run"),
    pathlib.PurePosixPath("/var/log"),
)
REMOTE_PROJECTS_DIR = "/var/lib/preevy/projects"
CONFIG_TIMEOUT_SECONDS = 60


@dataclasses.dataclass
class ComposeProject:
    name: str
    files: list[pathlib.Path]
    working_dir: pathlib.Path
    model: dict[str, Any]
    x_preevy: dict[str, Any] | None

    @property
    def remote_dir(self) -> str:
        """Where the project's files live in the pod."""
        return f"{REMOTE_PROJECTS_DIR}/{self.name}"


@dataclasses.dataclass(frozen=True)
class SyncedPath:
    """A local file or directory the services mount, and where it goes under the remote project dir."""

    local: pathlib.Path
    remote: str  # relative to ComposeProject.remote_dir: `relative/...` or `absolute/...`
    exists: bool  # a missing bind source is created as an empty directory, as docker compose does


def load_project(
    files: list[str] | None, project: str | None, cwd: pathlib.Path, environ: Mapping[str, str]
) -> ComposeProject:
    paths = system_files(cwd) + (
        [(cwd / f).resolve() for f in files] if files else default_files(cwd, environ)
    )
    argv = ["docker", "compose"]
    if project:
        argv += ["-p", project]
    for path in paths:
        argv += ["-f", str(path)]
    result = process.run(
        argv + ["config", "--format", "json"], env=dict(environ), cwd=str(cwd), timeout=CONFIG_TIMEOUT_SECONDS
    )
    if not result.ok:
        raise _config_error(result, environ)
    model = json.loads(result.stdout)
    return ComposeProject(
        name=model["name"],
        files=paths,
        working_dir=paths[0].parent,
        model=model,
        x_preevy=model.get("x-preevy"),
    )


def default_files(cwd: pathlib.Path, environ: Mapping[str, str], required: bool = True) -> list[pathlib.Path]:
    """COMPOSE_FILE, else exactly one of compose.yaml & co., else exactly one of their override files.

    None found: an error, or [] when not required.
    """
    if environ.get("COMPOSE_FILE"):
        separator = environ.get("COMPOSE_PATH_SEPARATOR", os.pathsep)
        return [(cwd / f).resolve() for f in environ["COMPOSE_FILE"].split(separator) if f]
    found = _one_of(cwd, DEFAULT_FILE_NAMES) or _one_of(cwd, OVERRIDE_FILE_NAMES)
    if found is None:
        if not required:
            return []
        raise PreevyError(
            messages.NO_COMPOSE_FILE.format(directory=cwd, names=", ".join(DEFAULT_FILE_NAMES)),
            ExitCode.USAGE,
        )
    return [found]


def system_files(cwd: pathlib.Path) -> list[pathlib.Path]:
    """Preevy's system compose file (compose.preevy.yaml & co.), if there is one: read before the others."""
    found = _one_of(cwd, SYSTEM_FILE_NAMES)
    return [found] if found else []


def _one_of(directory: pathlib.Path, names: tuple[str, ...]) -> pathlib.Path | None:
    found = [directory / name for name in names if (directory / name).is_file()]
    if len(found) > 1:
        raise PreevyError(
            messages.SEVERAL_COMPOSE_FILES.format(
                files=", ".join(f.name for f in found), directory=directory
            ),
            ExitCode.USAGE,
        )
    return found[0].resolve() if found else None


def _config_error(result: process.Result, environ: Mapping[str, str]) -> PreevyError:
    # Without the plugin, the docker CLI reads `compose` or its flags as its own, and says so in ways
    # that vary by version: ask the plugin itself.
    if not process.run(
        ["docker", "compose", "version"], env=dict(environ), timeout=CONFIG_TIMEOUT_SECONDS
    ).ok:
        return PreevyError(messages.MISSING_COMPOSE_PLUGIN, ExitCode.MISSING_TOOL)
    return PreevyError(messages.INVALID_COMPOSE.format(error=result.last_error_line()), ExitCode.USAGE)


def remote_relative_path(local: pathlib.Path, working_dir: pathlib.Path) -> str:
    """Preevy's layout: `relative/<path under the project dir>` or `absolute/<absolute path>`."""
    try:
        relative = local.relative_to(working_dir).as_posix()
    except ValueError:
        return f"absolute{local.as_posix()}"
    return "relative" if relative == "." else f"relative/{relative}"


def is_host_path(source: str) -> bool:
    path = pathlib.PurePosixPath(source)
    return path == pathlib.PurePosixPath("/") or any(path == p or p in path.parents for p in HOST_PATHS)


def synced_paths(project: ComposeProject) -> list[SyncedPath]:
    """Every bind-mount source and file-based secret/config, nested ones folded into their parent."""
    sources = {pathlib.Path(s) for s in _bind_sources(project.model)} | {
        pathlib.Path(s) for s in _file_sources(project.model)
    }
    roots = sorted(s for s in sources if not any(parent in sources for parent in s.parents))
    return [
        SyncedPath(local=s, remote=remote_relative_path(s, project.working_dir), exists=s.exists())
        for s in roots
    ]


def remote_model(project: ComposeProject) -> dict[str, Any]:
    """The model with every local path the Docker server needs replaced by its copy in the pod.

    Build contexts stay local: the docker client streams them through the forward.
    `profiles` go: `docker compose config` already chose the services, and the remote run must
    not filter them again.
    """
    model = copy.deepcopy(project.model)

    def remote(source: str) -> str:
        return f"{project.remote_dir}/{remote_relative_path(pathlib.Path(source), project.working_dir)}"

    for service in model.get("services", {}).values():
        service.pop("profiles", None)
        for volume in service.get("volumes") or []:
            if _is_synced_bind(volume):
                volume["source"] = remote(volume["source"])
    for section in ("secrets", "configs"):
        for entry in (model.get(section) or {}).values():
            if entry.get("file"):
                entry["file"] = remote(entry["file"])
    return model


def _is_synced_bind(volume: dict[str, Any]) -> bool:
    return volume.get("type") == "bind" and bool(volume.get("source")) and not is_host_path(volume["source"])


def _bind_sources(model: dict[str, Any]) -> Iterator[str]:
    for service in model.get("services", {}).values():
        for volume in service.get("volumes") or []:
            if _is_synced_bind(volume):
                yield volume["source"]


def _file_sources(model: dict[str, Any]) -> Iterator[str]:
    for section in ("secrets", "configs"):
        for entry in (model.get(section) or {}).values():
            if entry.get("file"):
                yield entry["file"]
