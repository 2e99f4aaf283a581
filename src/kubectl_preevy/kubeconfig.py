"""The current context's namespace and API server URL, read from the kubeconfig files the way kubectl
(client-go) reads them, without running `kubectl config view` (a process: ~70 ms on every command).

Only the plain case is answered here: files that parse as YAML mappings, a current context (or
--context) defined in them, its cluster (with a server) and user defined. Anything else answers None and the
caller asks kubectl itself, whose answer (or error) then stands.

client-go's rules: --kubeconfig names the only file; else $KUBECONFIG's list (missing files skipped,
duplicates once), else ~/.kube/config. Merged: the first file that sets current-context wins, and the
first definition of a named context, cluster or user wins. A context without a namespace: `default`.

The answer is remembered in the cache directory under the files' identity and stat (device, inode, size,
modification and change times), like git's index: a run that finds the files as they were needs no YAML
parser (importing it is ~8 ms of every command). Any change to a file, even a touch, asks again.
"""

import json
import os
from collections.abc import Mapping
from typing import Any, NamedTuple


class Current(NamedTuple):
    namespace: str
    server: str


_READ: dict[tuple[str, ...], Current | None] = {}  # one read per invocation for the same question


def current(kubeconfig: str | None, context: str | None, environ: Mapping[str, str]) -> Current | None:
    """The namespace (`default` when the context sets none) and server URL, or None: ask kubectl."""
    paths = files(kubeconfig, environ)
    key = (*paths, "\0", context or "")
    if key not in _READ:
        _READ[key] = _remembered(paths, bool(kubeconfig), context, environ)
    return _READ[key]


ANSWERS_FILE = "kubeconfig-answers.json"
MAX_ANSWERS = 16


def _remembered(
    paths: list[str], explicit: bool, context: str | None, environ: Mapping[str, str]
) -> Current | None:
    """_read's answer, from the cache when the files are unchanged since it was written there."""
    from kubectl_preevy.profiles import cache_dir, write_cache_file

    stats = [_stat(path) for path in paths]
    fingerprint = json.dumps([_identity(paths, stats), explicit, context])
    cache = cache_dir(environ) / ANSWERS_FILE
    answers = _load_answers(str(cache))
    if fingerprint in answers:
        return answers[fingerprint]
    answer = _read(paths, explicit=explicit, context=context)
    if not _racy(stats):
        answers[fingerprint] = answer
        kept = list(answers.items())[-MAX_ANSWERS:]
        write_cache_file(cache, json.dumps({k: list(v) if v else None for k, v in kept}).encode())
    return answer


RACY_SECONDS = 2


def _racy(stats: list[os.stat_result | None]) -> bool:
    """A file changed within RACY_SECONDS: another change in the same clock tick could keep its stat (git's
    "racily clean" entries). Its answer is not remembered."""
    import time

    newest = max((max(st.st_mtime_ns, st.st_ctime_ns) for st in stats if st), default=0)
    return time.time_ns() - newest < RACY_SECONDS * 1_000_000_000


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _identity(paths: list[str], stats: list[os.stat_result | None]) -> list[object]:
    """Each file as its stat says it is now (just its path: missing or unreadable)."""
    return [
        [path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns] if st else [path]
        for path, st in zip(paths, stats, strict=True)
    ]


def _load_answers(cache: str) -> dict[str, Current | None]:
    """The remembered answers; whatever is not one (a damaged or foreign file) is forgotten."""
    try:
        with open(cache, encoding="utf-8") as file:
            stored = json.load(file)
    except (OSError, ValueError):
        return {}
    answers: dict[str, Current | None] = {}
    for fingerprint, answer in stored.items() if isinstance(stored, dict) else ():
        if answer is None:
            answers[fingerprint] = None
        elif isinstance(answer, list) and len(answer) == 2 and all(isinstance(v, str) for v in answer):
            answers[fingerprint] = Current(*answer)
    return answers


def files(kubeconfig: str | None, environ: Mapping[str, str]) -> list[str]:
    """The files kubectl loads, in precedence order."""
    if kubeconfig:
        return [kubeconfig]
    listed = [path for path in environ.get("KUBECONFIG", "").split(os.pathsep) if path]
    if listed:
        return list(dict.fromkeys(listed))
    home = environ.get("HOME") or os.path.expanduser("~")
    return [os.path.join(home, ".kube", "config")]


def _read(paths: list[str], *, explicit: bool, context: str | None) -> Current | None:
    configs = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except FileNotFoundError:
            if explicit:
                return None  # kubectl's error names the file
            continue
        except (OSError, UnicodeDecodeError):
            return None
        config = _parse(text)
        if config is None:
            return None
        configs.append(config)
    name = context or next((c["current-context"] for c in configs if c.get("current-context")), None)
    if not isinstance(name, str):
        return None  # no file at all (in a pod: the ServiceAccount), or no current context
    found = _named(configs, "contexts", "context", name)
    if found is None:
        return None
    user = found.get("user")
    if user and _named(configs, "users", "user", user) is None:
        return None  # kubectl's own error names it
    namespace = found.get("namespace") or "default"
    cluster = _named(configs, "clusters", "cluster", found.get("cluster"))
    server = cluster.get("server") if cluster is not None else None
    if not isinstance(namespace, str) or not isinstance(server, str) or not server:
        return None
    return Current(namespace, server)


def _parse(text: str) -> dict[str, Any] | None:
    """A kubeconfig file as a mapping ({} when empty, as client-go takes it), None when it is not one."""
    import yaml

    try:
        document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    if document is None:
        return {}
    return document if isinstance(document, dict) else None


def _named(configs: list[dict[str, Any]], section: str, field: str, name: object) -> dict[str, Any] | None:
    """The first file's definition of `name` in its `section` list (its `field` mapping), or None (also
    for a name defined twice in one file: kubectl refuses such a file, and says why)."""
    if not isinstance(name, str) or not name:
        return None
    for config in configs:
        entries = config.get(section) or []
        if not isinstance(entries, list):
            return None
        found = [entry for entry in entries if isinstance(entry, dict) and entry.get("name") == name]
        if len(found) > 1:
            return None
        if found:
            value = found[0].get(field) or {}
            return value if isinstance(value, dict) else None
    return None
