"""Label and field selectors, as the API server parses them."""

from __future__ import annotations

import re

from . import errors

_KEY = r"[A-Za-z0-9_./-]+"
_VAL = r"[A-Za-z0-9_.-]*"
_NOT_EXISTS = re.compile(rf"^!\s*({_KEY})$")
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\((.*)\)$")
_OP = re.compile(rf"^({_KEY})\s*(==|=|!=|>|<)\s*({_VAL})$")
_EXISTS = re.compile(rf"^({_KEY})$")


def _split_top(s: str) -> list[str]:
    out: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def parse_labels(selector: str | None) -> list[tuple]:
    """Returns requirements (op, key, values). Raises ApiError(400) on a bad selector."""
    reqs: list[tuple] = []
    if not selector or not selector.strip():
        return reqs
    for term in _split_top(selector):
        t = term.strip()
        if not t:
            raise errors.bad_request("unable to parse requirement: found '', expected: identifier")
        if m := _NOT_EXISTS.match(t):
            reqs.append(("!", m.group(1), ()))
        elif m := _SET.match(t):
            vals = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append((m.group(2), m.group(1), vals))
        elif m := _OP.match(t):
            op = "=" if m.group(2) == "==" else m.group(2)
            if op in (">", "<") and not re.fullmatch(r"-?\d+", m.group(3)):
                raise errors.bad_request(
                    "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer"
                )
            reqs.append((op, m.group(1), (m.group(3),)))
        elif m := _EXISTS.match(t):
            reqs.append(("exists", m.group(1), ()))
        else:
            raise errors.bad_request(f"unable to parse requirement: invalid label selector term: {t!r}")
    return reqs


def match_labels(reqs: list[tuple], labels: dict | None) -> bool:
    labels = labels or {}
    for op, key, vals in reqs:
        present = key in labels
        v = labels.get(key)
        if op == "=" and not (present and v == vals[0]):
            return False
        if op == "!=" and present and v == vals[0]:
            return False
        if op == "exists" and not present:
            return False
        if op == "!" and present:
            return False
        if op == "in" and not (present and v in vals):
            return False
        if op == "notin" and present and v in vals:
            return False
        if op in (">", "<"):
            try:
                n = int(v) if present else None
            except ValueError:
                return False
            if n is None or (op == ">" and not n > int(vals[0])) or (op == "<" and not n < int(vals[0])):
                return False
    return True


def selector_from_label_selector(sel: dict | None) -> list[tuple]:
    """A metav1.LabelSelector (matchLabels/matchExpressions) as requirements."""
    reqs: list[tuple] = []
    if not sel:
        return reqs
    for k, v in (sel.get("matchLabels") or {}).items():
        reqs.append(("=", k, (v,)))
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for e in sel.get("matchExpressions") or []:
        reqs.append((ops.get(e.get("operator"), "exists"), e.get("key"), tuple(e.get("values") or ())))
    return reqs


def label_selector_string(sel: dict | None) -> str:
    parts = []
    for op, k, vals in selector_from_label_selector(sel):
        if op == "=":
            parts.append(f"{k}={vals[0]}")
        elif op in ("in", "notin"):
            parts.append(f"{k} {op} ({','.join(vals)})")
        elif op == "exists":
            parts.append(k)
        else:
            parts.append(f"!{k}")
    return ",".join(parts)


def parse_fields(selector: str | None, allowed: tuple[str, ...]) -> list[tuple[str, str, str]]:
    reqs: list[tuple[str, str, str]] = []
    if not selector or not selector.strip():
        return reqs
    for term in selector.split(","):
        t = term.strip()
        m = re.match(r"^([^=!]+?)\s*(==|=|!=)\s*(.*)$", t)
        if not m:
            raise errors.bad_request(f"invalid selector: '{selector}'; can't understand '{t}'")
        field, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        if field not in ("metadata.name", "metadata.namespace") and field not in allowed:
            raise errors.bad_request(f"field label not supported: {field}")
        reqs.append((field, "!=" if op == "!=" else "=", value))
    return reqs


def _field_value(obj: dict, field: str) -> str:
    if field == "source":
        field = "source.component"
    cur = obj
    for part in field.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def match_fields(reqs, obj: dict) -> bool:
    for field, op, value in reqs:
        v = _field_value(obj, field)
        if (op == "=") != (v == value):
            return False
    return True
