"""Decode the protobuf request bodies that typed kubectl commands send (k8s runtime.Unknown envelope)."""

from __future__ import annotations

import base64
import datetime
import json
import struct

from .protobuf_schema import MESSAGES
from .resources import RESOURCES

MAGIC = b"k8s\x00"

ROOTS = {r.kind: r.proto for r in RESOURCES if r.proto}
ROOTS["DeleteOptions"] = "meta.DeleteOptions"
ROOTS["TokenRequest"] = "authn.TokenRequest"

# proto2 cannot tell an unset pointer from an explicit zero; these fields keep a 0 / false
KEEP_ZERO = {
    "replicas",
    "automountServiceAccountToken",
    "immutable",
    "terminationGracePeriodSeconds",
    "partition",
    "revisionHistoryLimit",
    "enableServiceLinks",
    "defaultMode",
    "optional",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "privileged",
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "gracePeriodSeconds",
    "containerPort",
    "port",
    "count",
}


# Go structs embedded inline in JSON but carried as a nested message in protobuf
INLINE = {"localObjectReference", "ephemeralContainerCommon", "volumeSource", "ingressRuleValue", "handler"}


class DecodeError(ValueError):
    pass


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise DecodeError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 70:
            raise DecodeError("varint too long")


def _fields(buf: bytes):
    i = 0
    while i < len(buf):
        tag, i = _varint(buf, i)
        num, wt = tag >> 3, tag & 7
        v: int | bytes
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v, i = buf[i : i + 8], i + 8
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i : i + n], i + n
        elif wt == 5:
            v, i = buf[i : i + 4], i + 4
        else:
            raise DecodeError(f"unsupported wire type {wt}")
        yield num, wt, v


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _time(buf: bytes, micro: bool = False):
    secs = nanos = 0
    for num, _, v in _fields(buf):
        if num == 1:
            secs = _signed(v)
        elif num == 2:
            nanos = _signed(v)
    if secs == 0 and nanos == 0:
        return None
    t = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc)
    if micro:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{nanos // 1000:06d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _scalar(t: str, wt: int, v):
    if t == "s":
        return v.decode("utf-8")
    if t == "y":
        return base64.b64encode(v).decode()
    if t == "b":
        return bool(v)
    if t == "i":
        return _signed(v)
    if t == "d":
        return struct.unpack("<d", v)[0] if wt == 1 else struct.unpack("<f", v)[0]
    raise DecodeError(t)


def _value(t: str, wt: int, v):
    if t in ("s", "y", "b", "i", "d"):
        return _scalar(t, wt, v)
    if t in ("meta.Time", "meta.MicroTime"):
        return _time(v, t == "meta.MicroTime")
    if t == "resource.Quantity":
        return next((x.decode() for n, _, x in _fields(v) if n == 1), "0")
    if t == "intstr.IntOrString":
        typ, iv, sv = 0, 0, ""
        for n, _, x in _fields(v):
            if n == 1:
                typ = x
            elif n == 2:
                iv = _signed(x)
            elif n == 3:
                sv = x.decode()
        return sv if typ == 1 else iv
    if t in ("runtime.RawExtension", "meta.FieldsV1"):
        raw = next((x for n, _, x in _fields(v) if n == 1), b"")
        return json.loads(raw.decode()) if raw else {}
    if t == "meta.Duration":
        return next((f"{_signed(x) / 1e9:g}s" for n, _, x in _fields(v) if n == 1), "0s")
    return decode_message(t, v)


def decode_message(name: str, buf: bytes) -> dict:
    schema = MESSAGES.get(name)
    if schema is None:
        raise DecodeError(f"unknown message {name}")
    out: dict = {}
    for num, wt, v in _fields(buf):
        if num not in schema:
            continue
        fname, t = schema[num]
        if t.startswith("map:"):
            key, val = _map_entry(t[4:], v)
            out.setdefault(fname, {})[key] = val
        elif t.endswith("*"):
            out.setdefault(fname, []).extend(_repeated(t[:-1], wt, v))
        else:
            val = _value(t, wt, v)
            if fname in INLINE and isinstance(val, dict):
                out.update(val)
                continue
            if (
                val is None
                or val == ""
                or ((val == 0 or val is False) and not isinstance(val, dict) and fname not in KEEP_ZERO)
            ):
                continue
            out[fname] = val
    return out


def _map_entry(vt: str, buf: bytes) -> tuple[str, object]:
    key, val = "", None
    for n, w, x in _fields(buf):
        if n == 1:
            key = x.decode()
        elif n == 2:
            val = _value(vt, w, x)
    if val is None:
        val = "" if vt in ("s", "y") else {}
    return key, val


def _repeated(et: str, wt: int, v) -> list:
    """The values of one occurrence of a repeated field (several when packed)."""
    if wt == 2 and et in ("i", "b", "d"):  # packed
        vals = []
        j = 0
        while j < len(v):
            x, j = _varint(v, j)
            vals.append(_scalar(et, 0, x))
        return vals
    return [_value(et, wt, v)]


def decode(body: bytes) -> dict:
    """A protobuf-encoded object (with the k8s envelope) as its JSON form."""
    if not body.startswith(MAGIC):
        raise DecodeError("missing k8s protobuf magic")
    api_version = kind = ""
    raw = b""
    for num, _, v in _fields(body[4:]):
        if num == 1:
            for n, _, x in _fields(v):
                if n == 1:
                    api_version = x.decode()
                elif n == 2:
                    kind = x.decode()
        elif num == 2:
            raw = v
    root = ROOTS.get(kind)
    if root is None:
        raise DecodeError(f"kubesim cannot decode protobuf for kind {kind!r}")
    obj = {"apiVersion": api_version, "kind": kind}
    obj.update(decode_message(root, raw))
    return obj
