"""Profiles: a profile id (in every object's labels, so environments are found again) and option defaults.

Two stores:
- local: `$XDG_CONFIG_HOME/kubectl-preevy/profiles/<name>.yaml` (default ~/.config), plus a `current` file;
- cluster: a ConfigMap `preevy-profile-<name>` in a namespace, so a laptop and a CI job share a profile.
  It is looked up there when no local profile has the name, in the namespace of -n (else the context's).
  Its template, if any, is embedded in the ConfigMap, and used from a copy in ~/.cache/kubectl-preevy.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from kubectl_preevy import console, messages, naming, process
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.options import Connection

DEFAULT_PROFILE = "default"
DEFAULT_PROFILE_ID = "default"  # deterministic: a laptop and a fresh CI machine find the same environments
PROFILE_ENV_VAR = "PREEVY_PROFILE"
STORE_LOCAL = "local"
STORE_CLUSTER = "cluster"
CONFIGMAP_PREFIX = "preevy-profile-"
LABEL_PROFILE = "preevy.dev/profile"
CONFIGMAP_ID_KEY = "profile-id"
CONFIGMAP_TEMPLATE_KEY = "template.yaml.njk"
MAX_NAME_LENGTH = 40
KUBECTL_TIMEOUT = 30
# (compiled at their first use, by re's cache: a run that names no profile needs neither)
_NAME = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_ID = r"[a-z0-9]([-a-z0-9_.]*[a-z0-9])?"


@dataclasses.dataclass
class Profile:
    """A profile: its name, id and option defaults, and where it is kept."""

    name: str
    id: str  # goes into every object's labels (preevy.dev/profile-id)
    options: dict[str, object]  # option defaults, Preevy's option names (see options.OPTION_NAMES)
    store: str = STORE_LOCAL  # local | cluster
    location: str = ""  # the file, or namespace/ConfigMap, it is kept in

    def to_dict(self, current: bool = False) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.id,
            "store": self.store,
            "location": self.location,
            "current": current,
            "options": dict(self.options),
        }


def validate_name(name: str) -> str:
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not re.fullmatch(_NAME, name):
        raise PreevyError(messages.INVALID_PROFILE_NAME.format(name=name), ExitCode.USAGE)
    return name


def validate_id(profile_id: str) -> str:
    if len(profile_id) > naming.MAX_LABEL_LENGTH or not re.fullmatch(_ID, profile_id):
        raise PreevyError(messages.INVALID_PROFILE_ID.format(id=profile_id), ExitCode.USAGE)
    return profile_id


def _id_problem(profile_id: str) -> str | None:
    """Why a stored profile id is not valid (it goes into every object's labels), or None."""
    if len(profile_id) > naming.MAX_LABEL_LENGTH or not re.fullmatch(_ID, profile_id):
        return f"invalid id {profile_id!r}: " + messages.WHY_PROFILE_ID
    return None


def new_profile_id(name: str) -> str:
    """`default` for the default profile (deterministic), else Preevy's style `<name>-<5 random [a-z0-9]>`."""
    return DEFAULT_PROFILE_ID if name == DEFAULT_PROFILE else f"{name}-{naming.random_suffix()}"


def option_to_text(value: object) -> str:
    return naming.js_number(value) if isinstance(value, (int, float)) else str(value)


# --- local store ------------------------------------------------------------------------------------


def config_dir(environ: Mapping[str, str]) -> pathlib.Path:
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".config"
    )
    return pathlib.Path(base) / "kubectl-preevy"


def cache_dir(environ: Mapping[str, str]) -> pathlib.Path:
    base = environ.get("XDG_CACHE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".cache"
    )
    return pathlib.Path(base) / "kubectl-preevy"


def write_cache_file(path: pathlib.Path, data: bytes) -> None:
    """A file of our cache written whole (a concurrent run reads the old one or the new one). Best effort:
    a cache that cannot be written is only slower."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(data)
        temporary.replace(path)
    except OSError:
        temporary.unlink(missing_ok=True)


class LocalStore:
    def __init__(self, environ: Mapping[str, str]):
        self.dir = config_dir(environ)
        self.profiles_dir = self.dir / "profiles"
        self.current_file = self.dir / "current"

    def path(self, name: str) -> pathlib.Path:
        return self.profiles_dir / f"{name}.yaml"

    def load(self, name: str) -> Profile | None:
        path = self.path(name)
        try:
            text = path.read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            raise PreevyError(
                messages.PROFILE_FILE_INVALID.format(path=path, problem=err.strerror, name=name)
            ) from None
        return self._parse(name, path, text)

    def _parse(self, name: str, path: pathlib.Path, text: str) -> Profile:
        def invalid(problem: str) -> PreevyError:
            return PreevyError(messages.PROFILE_FILE_INVALID.format(path=path, problem=problem, name=name))

        data = _yaml_document(text, invalid)
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise invalid("no id")
        problem = _id_problem(data["id"])
        if problem:
            raise invalid(problem)
        options = data.get("options") or {}
        if not isinstance(options, dict):
            raise invalid("options is not a mapping")
        return Profile(name=name, id=data["id"], options=options, store=STORE_LOCAL, location=str(path))

    def save(self, profile: Profile) -> None:
        path = self.path(profile.name)
        document = {
            "apiVersion": console.API_VERSION,
            "kind": "Profile",
            "name": profile.name,
            "id": profile.id,
            "options": dict(profile.options),
        }
        # JSON, which is YAML: read back without importing yaml (~8 ms of every command)
        _write_atomically(path, json.dumps(document, indent=2) + "\n")
        profile.store, profile.location = STORE_LOCAL, str(path)

    def remove(self, name: str) -> bool:
        try:
            self.path(name).unlink()
        except FileNotFoundError:
            return False
        if self.current() == name:
            self.set_current(None)
        return True

    def list(self) -> list[Profile]:
        if not self.profiles_dir.is_dir():
            return []
        names = sorted(
            path.stem for path in self.profiles_dir.glob("*.yaml") if re.fullmatch(_NAME, path.stem)
        )
        return [profile for profile in (self.load(name) for name in names) if profile]

    def current(self) -> str | None:
        try:
            name = self.current_file.read_text().strip()
        except OSError:
            return None
        return name or None

    def set_current(self, name: str | None) -> None:
        if name is None:
            self.current_file.unlink(missing_ok=True)
        else:
            _write_atomically(self.current_file, name + "\n")


def _read_template(path: str) -> str:
    try:
        return pathlib.Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise PreevyError(
            messages.PROFILE_TEMPLATE_UNREADABLE.format(
                path=path, problem=getattr(err, "strerror", None) or err
            ),
            ExitCode.USAGE,
        ) from None


def _yaml_document(text: str, invalid: Callable[[str], PreevyError]) -> object:
    """A YAML document: read as JSON when it is that (as we write profiles), else by yaml."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        raise invalid(f"invalid YAML: {str(err).splitlines()[0]}") from None


def _write_atomically(path: pathlib.Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(text)
        os.replace(temporary, path)
    except OSError as err:
        raise PreevyError(
            messages.PROFILE_WRITE_FAILED.format(path=path, problem=err.strerror or err)
        ) from None


# --- cluster store ----------------------------------------------------------------------------------


class ClusterStoreError(PreevyError):
    """kubectl failed on a profile ConfigMap; `detail` is what kubectl said."""

    def __init__(self, message: str, detail: str):
        super().__init__(message, ExitCode.CLUSTER)
        self.detail = detail


class ClusterStore:
    """Profiles as ConfigMaps, through kubectl with the cluster flags of this run."""

    def __init__(
        self,
        kubeconfig: str | None,
        context: str | None,
        namespace: str | None,
        environ: Mapping[str, str],
        connection: Connection | None = None,
    ):
        from kubectl_preevy.kubectl import Kubectl

        self.environ = dict(environ)
        self.kubectl = Kubectl(kubeconfig, context, namespace, environ, connection)

    @classmethod
    def from_args(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> "ClusterStore":
        return cls(
            getattr(args, "kubeconfig", None),
            getattr(args, "context", None) or environ.get("KUBE_CONTEXT"),
            getattr(args, "namespace", None),
            environ,
            Connection.from_args(args),
        )

    @property
    def where(self) -> str:
        return f"namespace {self.kubectl.namespace}"

    def _kubectl(self, *args: str, stdin: str | None = None, action: str, name: str) -> process.Result:
        result = self.kubectl.run(*args, stdin=stdin, timeout=KUBECTL_TIMEOUT)
        if not result.ok:
            detail = result.last_error_line()
            raise ClusterStoreError(
                messages.PROFILE_CLUSTER_FAILED.format(action=action, name=name, detail=detail), detail
            )
        return result

    def load(self, name: str) -> Profile | None:
        result = self._kubectl(
            "get",
            "configmap",
            CONFIGMAP_PREFIX + name,
            "--ignore-not-found",
            "-o",
            "json",
            action="read",
            name=name,
        )
        return self._parse(json.loads(result.stdout), name) if result.stdout.strip() else None

    def list(self) -> list[Profile]:
        result = self._kubectl(
            "get",
            "configmaps",
            "-l",
            f"{naming.LABEL_MANAGED_BY}={naming.MANAGED_BY},{LABEL_PROFILE}",
            "-o",
            "json",
            action="list",
            name="*",
        )
        items = json.loads(result.stdout).get("items", [])
        profiles = [
            self._parse(item, item.get("metadata", {}).get("labels", {}).get(LABEL_PROFILE, ""))
            for item in items
        ]
        return sorted(profiles, key=lambda profile: profile.name)

    def _parse(self, configmap: dict[str, Any], name: str) -> Profile:
        from kubectl_preevy import options as options_module

        metadata = configmap.get("metadata", {})
        namespace, configmap_name = metadata.get("namespace", "?"), metadata.get("name", "?")
        data = dict(configmap.get("data") or {})
        profile_id = data.pop(CONFIGMAP_ID_KEY, None)
        problem = f"no {CONFIGMAP_ID_KEY}" if not profile_id else _id_problem(profile_id)
        if problem:
            raise PreevyError(
                messages.PROFILE_CONFIGMAP_INVALID.format(
                    namespace=namespace, configmap=configmap_name, problem=problem
                ),
                ExitCode.USAGE,
            )
        options = {key: value for key, value in data.items() if key in options_module.OPTION_NAMES}
        options.pop("template", None)
        if data.get(CONFIGMAP_TEMPLATE_KEY):
            options["template"] = str(self._template_file(name, data[CONFIGMAP_TEMPLATE_KEY]))
        return Profile(
            name=name,
            id=profile_id,
            options=options,
            store=STORE_CLUSTER,
            location=f"{namespace}/configmap/{configmap_name}",
        )

    def _template_file(self, name: str, text: str) -> pathlib.Path:
        """The profile's embedded template as a local file (content-addressed, in the user's cache dir)."""
        import hashlib  # here: only this needs it (its OpenSSL binding costs ~2 ms)

        digest = hashlib.sha1(text.encode()).hexdigest()[:12]
        path = cache_dir(self.environ) / "templates" / f"{name}-{digest}.yaml.njk"
        if not path.is_file():
            _write_atomically(path, text)
        return path

    def manifest(self, profile: Profile) -> str:
        """The profile's ConfigMap. A template is embedded (its text, not its path: a path means nothing
        on another machine), so CI renders the laptop's custom template without copying files by hand."""
        data = {CONFIGMAP_ID_KEY: profile.id}
        data.update(
            {key: option_to_text(value) for key, value in profile.options.items() if key != "template"}
        )
        if profile.options.get("template"):
            data[CONFIGMAP_TEMPLATE_KEY] = _read_template(str(profile.options["template"]))
        metadata = {
            "name": CONFIGMAP_PREFIX + profile.name,
            "labels": {naming.LABEL_MANAGED_BY: naming.MANAGED_BY, LABEL_PROFILE: profile.name},
        }
        return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})

    def create(self, profile: Profile) -> None:
        result = self._kubectl(
            "create",
            "-f",
            "-",
            "-o",
            "json",
            stdin=self.manifest(profile),
            action="create",
            name=profile.name,
        )
        self._located(profile, result)

    def replace(self, profile: Profile) -> None:
        result = self._kubectl(
            "replace",
            "-f",
            "-",
            "-o",
            "json",
            stdin=self.manifest(profile),
            action="update",
            name=profile.name,
        )
        self._located(profile, result)

    def _located(self, profile: Profile, result: process.Result) -> None:
        metadata = json.loads(result.stdout).get("metadata", {})
        profile.store = STORE_CLUSTER
        profile.location = f"{metadata.get('namespace', '?')}/configmap/{metadata.get('name', '?')}"

    def remove(self, name: str) -> bool:
        result = self._kubectl(
            "delete",
            "configmap",
            CONFIGMAP_PREFIX + name,
            "--ignore-not-found",
            "-o",
            "name",
            action="remove",
            name=name,
        )
        return bool(result.stdout.strip())


# --- lookup -----------------------------------------------------------------------------------------


def requested_name(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    """The profile named by --profile, else $PREEVY_PROFILE, else the current one (None: no choice made)."""
    name = getattr(args, "profile", None) or environ.get(PROFILE_ENV_VAR) or LocalStore(environ).current()
    return validate_name(name) if name else None


def find_profile(name: str, args: argparse.Namespace, environ: Mapping[str, str]) -> Profile | None:
    """The local profile of that name, else the one kept in the cluster, else None."""
    profile = LocalStore(environ).load(name)
    if profile:
        return profile
    try:
        return ClusterStore.from_args(args, environ).load(name)
    except ClusterStoreError as err:
        raise PreevyError(
            messages.PROFILE_NOT_LOCAL_CLUSTER_FAILED.format(name=name, detail=err.detail), err.exit_code
        ) from None


def load_profile(
    args: argparse.Namespace, environ: Mapping[str, str], *, save_default: bool = True, quiet: bool = False
) -> Profile:
    """--profile, else $PREEVY_PROFILE, else the current profile, else `default` (created on first use,
    saved unless save_default is False; quiet: not saved and nothing said, see save_default_profile)."""
    name = requested_name(args, environ)
    if name:
        profile = find_profile(name, args, environ)
        if profile is None:
            raise PreevyError(
                messages.PROFILE_NOT_FOUND.format(
                    name=name, namespace=ClusterStore.from_args(args, environ).kubectl.namespace
                ),
                ExitCode.USAGE,
            )
        return profile
    return _default_profile(args, environ, save_default, quiet)


def _default_profile(
    args: argparse.Namespace, environ: Mapping[str, str], save: bool, quiet: bool = False
) -> Profile:
    local = LocalStore(environ)
    profile = local.load(DEFAULT_PROFILE)
    if profile:
        return profile
    try:
        profile = ClusterStore.from_args(args, environ).load(DEFAULT_PROFILE)
    except PreevyError:
        profile = None  # no usable cluster here: the command itself reports that, better
    if profile:
        return profile
    profile = Profile(name=DEFAULT_PROFILE, id=DEFAULT_PROFILE_ID, options={})
    if quiet:
        return profile
    if not save:
        console.info(messages.PROFILE_DEFAULT_NOT_SAVED.format(reason=messages.PROFILE_DEFAULT_DRY_RUN))
        return profile
    return save_default_profile(profile, environ)


def save_default_profile(profile: Profile, environ: Mapping[str, str]) -> Profile:
    """Save the made-up default profile, and say so (or why it could not be saved)."""
    local = LocalStore(environ)
    try:
        local.save(profile)
    except PreevyError as err:
        console.info(messages.PROFILE_DEFAULT_NOT_SAVED.format(reason=err.message))
        return profile
    console.info(messages.PROFILE_CREATED_DEFAULT.format(path=local.path(DEFAULT_PROFILE)))
    return profile
