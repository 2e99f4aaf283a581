"""The Compose project: its model from `docker compose config`, and that model rewritten for the pod.

`docker compose config --format json` does every bit of Compose's own work (several `-f` files,
`.env`, `env_file`, profiles, `extends`, interpolation); we only read and rewrite its output.
"""

import copy
import dataclasses
import json
import os
import pathlib
import re
import shutil
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
# Bind sources that name the Docker host itself (its kernel's views, its devices, its Docker data,
# its socket and logs, its clock): on a remote Docker host they mean that host's own, so they stay
# as they are and nothing is copied. Exporters (node-exporter, cadvisor) then see the pod's host.
HOST_PATHS = tuple(
    pathlib.PurePosixPath(p)
    for p in (
        "/proc",
        "/sys",
        "/dev",
        "/lib/modules",
        "/usr/src",
        "/var/lib/docker",
        "/run",
        "/var/run",
        "/var/log",
        "/etc/localtime",
    )
)
X_PREEVY_COPY_OUTSIDE = "copy-outside"
REMOTE_PROJECTS_DIR = "/var/lib/preevy/projects"
CONFIG_TIMEOUT_SECONDS = 60


@dataclasses.dataclass
class ComposeProject:
    """The compose project as `docker compose config` resolved it."""

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


# where the docker CLI looks for plugins after the user's own directory (on Linux: cli-plugins/manager)
SYSTEM_PLUGIN_DIRS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)


def compose_command(environ: Mapping[str, str]) -> list[str]:
    """`docker compose`: the compose plugin itself where the docker CLI would find it, so that the CLI's own
    start and its check of the plugin (two more programs before compose runs) are skipped. Run alone, the
    plugin reads the same files and variables (DOCKER_HOST, COMPOSE_*, the config directory). A CLI told
    to look elsewhere first (cliPluginsExtraDirs), or no plugin where we look: `docker compose` as typed
    (as is a missing docker CLI: said as such)."""
    if shutil.which("docker", path=environ.get("PATH")) is None:
        return ["docker", "compose"]
    config = environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    try:
        with open(os.path.join(config, "config.json"), encoding="utf-8") as file:
            extra_dirs = "cliPluginsExtraDirs" in json.load(file)
    except (OSError, ValueError):
        extra_dirs = False
    if not extra_dirs:
        for directory in (os.path.join(config, "cli-plugins"), *SYSTEM_PLUGIN_DIRS):
            plugin = os.path.join(directory, "docker-compose")
            if os.path.isfile(plugin) and os.access(plugin, os.X_OK):
                return [plugin]
    return ["docker", "compose"]


def load_project(
    files: list[str] | None, project: str | None, cwd: pathlib.Path, environ: Mapping[str, str]
) -> ComposeProject:
    paths = system_files(cwd) + (
        [(cwd / f).resolve() for f in files] if files else default_files(cwd, environ)
    )
    argv = compose_command(environ)
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


# Compose's rule for a project name it is given (-p, COMPOSE_PROJECT_NAME, `name:`); a directory's name is
# made into one (compose-go's NormalizeProjectName: lower case, only these characters, no leading - or _)
VALID_PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def foreseen_name(
    files: list[str] | None, project: str | None, cwd: pathlib.Path, environ: Mapping[str, str]
) -> str | None:
    """The project name `docker compose config` will report, when the files and settings say it plainly:
    -p, else COMPOSE_PROJECT_NAME, else the last top-level `name:` without interpolation, else the project
    directory's name. None whenever that is not certain (an env file that may set it, a name to
    interpolate, a file that does not parse): the caller then waits for the model."""
    given = project or environ.get("COMPOSE_PROJECT_NAME")
    if given:
        return given if VALID_PROJECT_NAME.fullmatch(given) else None
    try:
        paths = system_files(cwd) + (
            [(cwd / f).resolve() for f in files] if files else default_files(cwd, environ)
        )
    except PreevyError:
        return None
    if not paths or environ.get("COMPOSE_ENV_FILES") or _env_file_may_name(paths[0].parent):
        return None
    named = _name_in_files(paths)
    if named is not None:
        return named or None
    normalized = re.sub(r"[^a-z0-9_-]", "", paths[0].parent.name.lower()).lstrip("_-")
    return normalized or None


def _env_file_may_name(project_dir: pathlib.Path) -> bool:
    try:
        return "COMPOSE_PROJECT_NAME" in (project_dir / ".env").read_text(errors="replace")
    except FileNotFoundError:
        return False
    except OSError:
        return True


def _name_in_files(paths: list[pathlib.Path]) -> str | None:
    """The last file's top-level `name:` (None: no file has one; "": one that is not plain)."""
    import yaml  # only here: most commands never need it

    named = None
    for path in paths:
        try:
            document = yaml.safe_load(path.read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return ""
        if not isinstance(document, dict):
            return ""
        if "name" in document:
            value = document["name"]
            named = value if isinstance(value, str) and VALID_PROJECT_NAME.fullmatch(value) else ""
    return named


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
        [*compose_command(environ), "version"], env=dict(environ), timeout=CONFIG_TIMEOUT_SECONDS
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


def host_bind_sources(project: ComposeProject) -> list[str]:
    """The bind sources that are the Docker host's own paths (kept as they are, not copied)."""
    return sorted(
        {
            volume["source"]
            for service in project.model.get("services", {}).values()
            for volume in service.get("volumes") or []
            if volume.get("type") == "bind" and volume.get("source") and is_host_path(volume["source"])
        }
    )


def synced_paths(project: ComposeProject) -> list[SyncedPath]:
    """Every bind-mount source and runtime secret/config file, nested ones folded into their parent."""
    sources = set(mount_sources(project))
    roots = sorted(s for s in sources if not any(parent in sources for parent in s.parents))
    return [
        SyncedPath(local=s, remote=remote_relative_path(s, project.working_dir), exists=s.exists())
        for s in roots
    ]


def mount_sources(project: ComposeProject) -> list[pathlib.Path]:
    """Every local path a container mounts (bind sources, runtime secret and config files), unfolded."""
    return sorted(
        {pathlib.Path(s) for s in _bind_sources(project.model)}
        | {pathlib.Path(s) for s in _runtime_files(project.model).values()}
    )


def remote_model(project: ComposeProject) -> dict[str, Any]:
    """The model with every local path the Docker server needs replaced by its copy in the pod.

    Build contexts and build secrets stay local: the docker client reads them and streams them
    through the forward. A secret used both at build and at run time is split in two: the build
    reads the local file (under the name `<name>-preevy-local`, same secret id), services the copy.
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
    runtime = _runtime_files(model)
    for service in model.get("services", {}).values():
        for secret in (service.get("build") or {}).get("secrets") or []:
            if ("secrets", secret.get("source")) in runtime:
                local_name = f"{secret['source']}-preevy-local"
                model["secrets"][local_name] = copy.deepcopy(model["secrets"][secret["source"]])
                secret["target"] = secret.get("target") or secret["source"]
                secret["source"] = local_name
    for (section, name), file in runtime.items():
        model[section][name]["file"] = remote(file)
    return model


def _is_synced_bind(volume: dict[str, Any]) -> bool:
    return volume.get("type") == "bind" and bool(volume.get("source")) and not is_host_path(volume["source"])


def _bind_sources(model: dict[str, Any]) -> Iterator[str]:
    for service in model.get("services", {}).values():
        for volume in service.get("volumes") or []:
            if _is_synced_bind(volume):
                yield volume["source"]


def _runtime_files(model: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(section, name) -> file of the secrets and configs services mount at run time (build secrets
    are read by the client, so they stay out)."""
    found: dict[tuple[str, str], str] = {}
    for service in model.get("services", {}).values():
        for section in ("secrets", "configs"):
            for reference in service.get(section) or []:
                name = reference.get("source") if isinstance(reference, dict) else reference
                entry = (model.get(section) or {}).get(name) or {}
                if isinstance(name, str) and entry.get("file"):
                    found[(section, name)] = entry["file"]
    return found


# --- what may travel, checked before anything is provisioned ------------------------------------


def check_sources(project: ComposeProject, copy_outside: list[str], cwd: pathlib.Path) -> None:
    """Refuse (PreevyError USAGE, one line) what docker compose would refuse (missing secret, config,
    long-syntax bind source, build context, Dockerfile) and, unless opted in, the paths to copy that
    are outside the project directory and the git work tree containing it."""
    problems = missing_sources(project.model)
    if problems:
        raise PreevyError(messages.MISSING_SOURCES.format(problems="; ".join(problems)), ExitCode.USAGE)
    allowed = copy_outside_paths(project, copy_outside, cwd)
    outside = outside_sources(project, allowed)
    if outside:
        raise PreevyError(
            messages.OUTSIDE_PROJECT.format(
                paths=", ".join(outside),
                root=project_root(project.working_dir),
                key=X_PREEVY_COPY_OUTSIDE,
            ),
            ExitCode.USAGE,
        )


def missing_sources(model: dict[str, Any]) -> list[str]:
    """What the project names but does not exist, as docker compose would refuse it."""
    problems = []
    for service_name, service in model.get("services", {}).items():
        for volume in service.get("volumes") or []:
            source = volume.get("source")
            if (
                volume.get("type") == "bind"
                and source
                and not is_host_path(source)
                and not (volume.get("bind") or {}).get("create_host_path")
                and not os.path.lexists(source)
            ):
                problems.append(messages.MISSING_BIND.format(path=source, service=service_name))
        build = service.get("build") or {}
        context = build.get("context")
        if context and _is_local_context(context):
            if not os.path.isdir(context):
                problems.append(messages.MISSING_BUILD_CONTEXT.format(path=context, service=service_name))
            elif not build.get("dockerfile_inline"):
                dockerfile = os.path.join(context, build.get("dockerfile") or "Dockerfile")
                if not os.path.isfile(dockerfile):
                    problems.append(messages.MISSING_DOCKERFILE.format(path=dockerfile, service=service_name))
        for section, references in (("secrets", service.get("secrets")), ("configs", service.get("configs"))):
            for reference in references or []:
                problems += _missing_file(model, section, reference, service_name)
        for reference in build.get("secrets") or []:
            problems += _missing_file(model, "secrets", reference, service_name)
    return list(dict.fromkeys(problems))


def _missing_file(model: dict[str, Any], section: str, reference: object, service: str) -> list[str]:
    name = reference.get("source") if isinstance(reference, dict) else reference
    file = ((model.get(section) or {}).get(name) or {}).get("file")
    if file and not os.path.exists(file):
        return [messages.MISSING_FILE.format(what=section[:-1], name=name, path=file, service=service)]
    return []


def _is_local_context(context: str) -> bool:
    return "://" not in context and not context.startswith(("git@", "github.com/"))


def project_root(working_dir: pathlib.Path) -> pathlib.Path:
    """The git work tree containing the project directory (a monorepo's `../shared` is in), else the
    project directory itself."""
    for directory in (working_dir, *working_dir.parents):
        if (directory / ".git").exists():
            return directory
    return working_dir


def copy_outside_paths(project: ComposeProject, flags: list[str], cwd: pathlib.Path) -> list[pathlib.Path]:
    """The opted-in paths: --copy-outside (relative to the current directory) and x-preevy
    `copy-outside` (relative to the project directory)."""
    listed = (
        (project.x_preevy or {}).get(X_PREEVY_COPY_OUTSIDE) if isinstance(project.x_preevy, dict) else None
    )
    if listed is None:
        listed = []
    if not isinstance(listed, list) or not all(isinstance(p, str) and p for p in listed):
        raise PreevyError(
            messages.X_PREEVY_COPY_OUTSIDE_INVALID.format(key=X_PREEVY_COPY_OUTSIDE), ExitCode.USAGE
        )
    return [_absolute(p, cwd) for p in flags] + [_absolute(p, project.working_dir) for p in listed]


def _absolute(path: str, base: pathlib.Path) -> pathlib.Path:
    return pathlib.Path(os.path.normpath(base / os.path.expanduser(path)))


def outside_sources(project: ComposeProject, allowed: list[pathlib.Path]) -> list[str]:
    """The paths to copy that are outside the project root and not opted in; a symlink is named with
    where it leads (`path -> target`), since the copy follows it."""
    roots = [project_root(project.working_dir), *allowed]

    def inside(path: pathlib.Path) -> bool:
        return any(path == root or root in path.parents for root in roots)

    found = []
    for synced in synced_paths(project):
        real = pathlib.Path(os.path.realpath(synced.local))
        if not inside(synced.local):
            found.append(str(synced.local))
        elif not inside(real):
            found.append(f"{synced.local} -> {real}")
    return found
