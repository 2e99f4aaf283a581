"""Patch formats (merge, strategic merge, JSON patch) and a rough server-side apply with managedFields."""

from __future__ import annotations

import copy
import json

from . import errors

# ---------------------------------------------------------------- merge keys (strategic merge / SSA)

_KEYED = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "secrets": "name",
    "readinessGates": None,
    "tolerations": None,
}
_SET_LISTS = {"finalizers"}


def merge_key(path: tuple[str, ...]) -> str | None:
    """The merge key for the list at this path of field names (None: atomic list)."""
    if not path:
        return None
    name = path[-1]
    if name == "ports":
        return (
            "containerPort"
            if any(p in ("containers", "initContainers", "ephemeralContainers") for p in path)
            else "port"
        )
    if name == "secrets" and "metadata" not in path and len(path) != 1:
        return None
    return _KEYED.get(name)


def _strip(v):
    """Remove $-directives from a value taken over from a patch."""
    if isinstance(v, dict):
        return {k: _strip(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [_strip(x) for x in v if not (isinstance(x, dict) and x.get("$patch") == "delete")]
    return v


# ---------------------------------------------------------------- RFC 7386


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# ---------------------------------------------------------------- strategic merge patch


def strategic_merge(orig, patch, path: tuple[str, ...] = ()):
    if not isinstance(patch, dict):
        return _strip(patch)
    if patch.get("$patch") == "replace":
        return _strip(patch)
    if patch.get("$patch") == "delete":
        return None
    result = dict(orig) if isinstance(orig, dict) else {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys") or k.startswith("$setElementOrder/"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(v, list):
                result[field] = [x for x in result[field] if x not in v]
            continue
        if v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            merged = strategic_merge(result.get(k), v, path + (k,))
            if merged is None:
                result.pop(k, None)
            else:
                result[k] = merged
        elif isinstance(v, list):
            result[k] = _merge_list(result.get(k), v, path + (k,))
        else:
            result[k] = v
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: x for k, x in result.items() if k in retain}
    return result


def _merge_list(orig, patch: list, path: tuple[str, ...]):
    orig = orig if isinstance(orig, list) else []
    if path and path[-1] in _SET_LISTS:
        out = list(orig)
        for x in patch:
            if x not in out:
                out.append(x)
        return out
    key = merge_key(path)
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [_strip(x) for x in patch if not (isinstance(x, dict) and x.get("$patch") == "replace")]
    if not key or not all(isinstance(x, dict) for x in patch) or not all(isinstance(x, dict) for x in orig):
        return _strip(patch)
    out = [copy.deepcopy(x) for x in orig]
    for item in patch:
        kv = item.get(key)
        idx = next((i for i, x in enumerate(out) if x.get(key) == kv), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(_strip(item))
        else:
            out[idx] = strategic_merge(out[idx], item, path)
    return out


# ---------------------------------------------------------------- RFC 6902


def _pointer(p: str) -> list[str]:
    if p == "":
        return []
    if not p.startswith("/"):
        raise errors.bad_request(
            f"the server rejected our request due to an error in our request: invalid JSON pointer {p!r}"
        )
    return [s.replace("~1", "/").replace("~0", "~") for s in p[1:].split("/")]


def _resolve(doc, parts, create=False):
    cur = doc
    for part in parts:
        if isinstance(cur, list):
            cur = cur[int(part)]
        elif isinstance(cur, dict):
            cur = cur[part]
        else:
            raise KeyError(part)
    return cur


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise errors.bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        try:
            doc = _json_patch_op(doc, op)
        except errors.ApiError:
            raise
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise errors.ApiError(
                errors.status(
                    422,
                    "Invalid",
                    f"the server rejected our request due to an error in our request: {op!r}: {e}",
                    {},
                )
            )
    return doc


def _json_patch_op(doc, op):
    """One RFC 6902 operation applied to doc (changed in place where it can be); returns the doc."""
    kind = op["op"]
    parts = _pointer(op.get("path", ""))
    if kind == "test":
        if _resolve(doc, parts) != op.get("value"):
            raise errors.ApiError(
                errors.status(
                    422,
                    "Invalid",
                    f"the server rejected our request due to an error in our request: testing value {op.get('path')} failed",
                    {},
                )
            )
        return doc
    if kind == "remove":
        return _remove(doc, parts)
    if kind in ("move", "copy"):
        src = _pointer(op["from"])
        value = copy.deepcopy(_resolve(doc, src))
        if kind == "move":
            doc = _remove(doc, src)
    elif kind in ("add", "replace"):
        value = copy.deepcopy(op["value"])
    else:
        raise errors.bad_request(f"unexpected operation {kind!r}")
    if kind == "replace":
        _resolve(doc, parts)  # must exist
        doc = _remove(doc, parts)
    return _add(doc, parts, value)


def _add(doc, parts, value):
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            parent.insert(int(last), value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise KeyError(last)
    return doc


def _remove(doc, parts):
    if not parts:
        return None
    parent = _resolve(doc, parts[:-1])
    if isinstance(parent, list):
        parent.pop(int(parts[-1]))
    else:
        del parent[parts[-1]]
    return doc


# ---------------------------------------------------------------- managed fields

# A field path is a tuple of elements ("f", name) or ("k", canonical-json-of-key) (list item by merge key).


def _names(path) -> tuple[str, ...]:
    return tuple(e[1] for e in path if e[0] == "f")


def field_set(obj: dict, with_status: bool = False) -> set[tuple]:
    out: set[tuple] = set()
    for k, v in obj.items():
        if k in ("apiVersion", "kind") or (k == "status" and not with_status):
            continue
        if k == "metadata":
            for mk in ("labels", "annotations", "finalizers", "ownerReferences"):
                if mk in (v or {}):
                    _walk(v[mk], ((("f", "metadata"), ("f", mk))), out)
            continue
        _walk(v, (("f", k),), out)
    return out


def _walk(v, path, out):
    if isinstance(v, dict) and v:
        for k, x in v.items():
            _walk(x, path + (("f", k),), out)
        return
    if isinstance(v, list) and v:
        key = merge_key(_names(path))
        if key and all(isinstance(x, dict) and key in x for x in v):
            for x in v:
                ip = path + (("k", json.dumps({key: x[key]}, separators=(",", ":"))),)
                out.add(ip)
                for k, y in x.items():
                    _walk(y, ip + (("f", k),), out)
            return
    out.add(path)


def get_path(obj, path):
    cur = obj
    for kind, name in path:
        if kind == "f":
            if not isinstance(cur, dict) or name not in cur:
                return _MISSING
            cur = cur[name]
        else:
            if not isinstance(cur, list):
                return _MISSING
            ((k, v),) = json.loads(name).items()
            cur = next((x for x in cur if isinstance(x, dict) and x.get(k) == v), _MISSING)
            if cur is _MISSING:
                return cur
    return cur


_MISSING = object()


def _delete_path(obj, path) -> None:
    parent = get_path(obj, path[:-1])
    kind, name = path[-1]
    if kind == "f" and isinstance(parent, dict):
        parent.pop(name, None)
    elif kind == "k" and isinstance(parent, list):
        ((k, v),) = json.loads(name).items()
        parent[:] = [x for x in parent if not (isinstance(x, dict) and x.get(k) == v)]


def to_fields_v1(paths: set[tuple]) -> dict:
    root: dict = {}
    for path in sorted(paths):
        d = root
        for kind, name in path:
            d = d.setdefault(f"{kind}:{name}", {})
        if path and path[-1][0] == "k":
            d["."] = {}
    return root


def from_fields_v1(fv1: dict) -> set[tuple]:
    out: set[tuple] = set()

    def walk(d, path):
        children = [k for k in d if k != "."]
        if path and (not children or "." in d):
            out.add(path)
        for k in children:
            kind, _, name = k.partition(":")
            walk(d[k], path + ((kind, name),))

    walk(fv1 or {}, ())
    return out


def path_string(path) -> str:
    s = ""
    for kind, name in path:
        if kind == "f":
            s += "." + name
        else:
            ((k, v),) = json.loads(name).items()
            s += f"[{k}={v}]"
    return s


def _entries(obj) -> list[dict]:
    return list((obj.get("metadata") or {}).get("managedFields") or [])


def _entry(manager, operation, api_version, paths, now, subresource=None) -> dict:
    e = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(paths),
    }
    if subresource:
        e["subresource"] = subresource
    return e


def _covers(owned: tuple, p: tuple) -> bool:
    return p[: len(owned)] == owned


def record_update(
    old: dict | None, new: dict, manager: str, api_version: str, now: str, subresource: str | None = None
) -> list[dict]:
    """managedFields after a non-apply write by manager: it takes the fields it changed."""
    with_status = subresource == "status"
    new_paths = field_set(new, with_status)
    if subresource == "status":
        new_paths = {p for p in new_paths if p[0] == ("f", "status")}
    changed = new_paths if old is None else {p for p in new_paths if get_path(old, p) != get_path(new, p)}
    entries = []
    mine = set()
    for e in _entries(old or {}):
        paths = from_fields_v1(e.get("fieldsV1"))
        if (
            e.get("manager") == manager
            and e.get("operation") == "Update"
            and e.get("subresource") == subresource
        ):
            mine = paths
            continue
        paths = {p for p in paths if p not in changed}
        if paths:
            entries.append(dict(e, fieldsV1=to_fields_v1(paths)))
    mine = {p for p in mine | changed if get_path(new, p) is not _MISSING}
    if mine:
        entries.append(_entry(manager, "Update", api_version, mine, now, subresource))
    return entries


def server_side_apply(
    live: dict | None, applied: dict, manager: str, force: bool, api_version: str, now: str
):
    """Returns (merged object, managedFields). Raises ApiError(409) on conflicts without force."""
    applied = copy.deepcopy(applied)
    new_paths = field_set(applied)
    if live is None:
        return applied, [_entry(manager, "Apply", api_version, new_paths, now)]
    others: list[tuple[dict, set]] = []
    previous: set = set()
    for e in _entries(live):
        paths = from_fields_v1(e.get("fieldsV1"))
        if e.get("manager") == manager and e.get("operation") == "Apply":
            previous = paths
        else:
            others.append((e, paths))
    conflicts = _apply_conflicts(live, applied, manager, new_paths, others)
    if conflicts and not force:
        raise _conflict_error(live, conflicts)
    taken = {p for _, p in conflicts}
    merged = copy.deepcopy(live)
    still_owned = set().union(*(paths for _, paths in others)) if others else set()
    for p in sorted(previous - new_paths, key=len, reverse=True):
        if p in still_owned or any(_covers(p, o) for o in still_owned):
            continue
        if p[0] in (("f", "metadata"),) and len(p) < 2:
            continue
        _delete_path(merged, p)
    merged = strategic_merge(merged, _applied_patch(applied, merged))
    out = [
        dict(e, fieldsV1=to_fields_v1(kept))
        for e, paths in others
        if (kept := {p for p in paths if p not in taken})
    ]
    out.append(_entry(manager, "Apply", api_version, new_paths, now))
    return merged, out


def _apply_conflicts(live: dict, applied: dict, manager: str, new_paths: set, others: list) -> list:
    """(other manager's entry, path) for each applied path another manager owns with another value."""
    conflicts = []
    for e, paths in others:
        if e.get("manager") == manager:
            continue
        for p in new_paths:
            if p[-1][0] == "k":
                continue
            owned = any(_covers(o, p) for o in paths if o == p or (len(o) < len(p) and o[-1][0] == "f"))
            if owned and get_path(live, p) != get_path(applied, p):
                conflicts.append((e, p))
    return conflicts


def _applied_patch(applied, live):
    """The applied config as a strategic patch; lists without merge keys replace, nulls delete."""
    return applied


def _conflict_error(live, conflicts):
    meta = live.get("metadata") or {}
    api_version = live.get("apiVersion", "v1")
    group = api_version.split("/")[0] if "/" in api_version else ""
    from .resources import RESOURCES

    plural = next(
        (r.plural for r in RESOURCES if r.kind == live.get("kind") and r.group == group),
        live.get("kind", "").lower(),
    )
    return errors.apply_conflicts(
        plural,
        group,
        meta.get("name", ""),
        [(e.get("manager"), e.get("apiVersion"), path_string(p)) for e, p in conflicts],
    )
