"""resource.Quantity as the apiserver decodes it: a request whose quantities do not parse is refused
with 400 before validation (the typed object cannot even be built)."""

from __future__ import annotations

import re

from . import errors

# k8s.io/apimachinery/pkg/api/resource: <signedNumber><suffix>, suffix binary (Ki..Ei), decimal
# (n u m "" k M G T P E) or a decimal exponent (e3, E-2)
_QUANTITY = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?")
QUANTITY_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
# maps of quantities (container resources, PVC requests, quotas, node capacity...) and single ones
_QUANTITY_MAPS = ("requests", "limits", "hard", "capacity", "allocatable", "overhead")
_QUANTITY_FIELDS = ("sizeLimit",)


def is_quantity(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, str) and _QUANTITY.fullmatch(value) is not None


def bad_quantities(obj: object) -> list[str]:
    """The quantities of an object that do not parse (their values)."""
    found: list[str] = []
    _walk(obj, found)
    return found


def _walk(node: object, found: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, found)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in _QUANTITY_MAPS and isinstance(value, dict):
            found += [str(v) for v in value.values() if not is_quantity(v)]
        elif key in _QUANTITY_FIELDS and value is not None:
            if not is_quantity(value):
                found.append(str(value))
        elif key not in ("metadata", "status"):
            _walk(value, found)


def check(kind: str, version: str, obj: dict) -> None:
    """400 BadRequest, worded as the apiserver's decoder words it, when a quantity does not parse."""
    if bad_quantities(obj):
        raise errors.bad_request(
            f'{kind} in version "{version}" cannot be handled as a {kind}: {QUANTITY_ERROR}'
        )
