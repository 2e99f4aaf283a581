"""Preevy's naming rules, reproduced exactly so that Preevy and kubectl-preevy find each other's environments.

Source of truth: Preevy v0.0.67, packages/driver-kube-pod/src/driver/client/{labels,metadata}.ts,
packages/core/src/{strings,env-id}.ts. JavaScript regexes and `substring` work on UTF-16 code
units, so a character outside the BMP counts (and is replaced) twice: see `_utf16_units`.
"""

import json
import math
import re
from typing import Any

MAX_LABEL_LENGTH = 63
MAX_NAME_LENGTH = 63
INSTANCE_SPARE_LENGTH = 15  # room for the StatefulSet's pod name suffix
INSTANCE_MAX_LENGTH = MAX_NAME_LENGTH - INSTANCE_SPARE_LENGTH  # 48
INSTANCE_SUFFIX_LENGTH = 5
LOWERCASE_NUMERIC = "abcdefghijklmnopqrstuvwxyz0123456789"

LABEL_PROFILE_ID = "preevy.dev/profile-id"
LABEL_ENV_ID = "preevy.dev/env-id"
LABEL_INSTANCE = "preevy.dev/instance"
LABEL_DELETED = "preevy.dev/deleted"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "kubectl-preevy"  # its value on everything we create
DOCKER_HOST_COMPONENT = "docker-host"

ANNOTATION_PROFILE_ID = "preevy.dev/profile-id"
ANNOTATION_ENV_ID = "preevy.dev/env-id"
ANNOTATION_CREATED_AT = "preevy.dev/created-at"
ANNOTATION_TEMPLATE_HASH = "preevy.dev/template-hash"
ANNOTATION_KIND = "preevy.dev/kubernetes-kind"
ANNOTATION_API_VERSION = "preevy.dev/kubernetes-api-version"
ANNOTATION_ALL_TYPES = "preevy.dev/all-types"

# (compiled at their first use, by re's cache: `ls` and `down` need neither before their first kubectl)
_RFC1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_RFC1123_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"


def _utf16_units(text: str) -> str:
    """text with every non-BMP character doubled, so a per-character replace counts like JavaScript's."""
    return "".join(ch * 2 if ord(ch) > 0xFFFF else ch for ch in text)


def _ensure_alnum_ends(text: str, prefix_pattern: str, suffix_pattern: str, prefix: str) -> str:
    if text and re.fullmatch(prefix_pattern, text[0]):
        text = prefix + text
    if text and re.fullmatch(suffix_pattern, text[-1]):
        text = text + "z"
    return text


def truncate_prefix(prefix: str, suffix: str, max_length: int, separator: str = "-") -> str:
    """Preevy's truncatePrefix: `prefix` cut so that `prefix-suffix` fits in max_length."""
    return separator.join([prefix[: max(0, max_length - len(suffix) - len(separator))], suffix])


def truncate_with_hash(text: str, max_length: int, hash_length: int = 4, separator: str = "-") -> str:
    """Preevy's truncateWithHash: too long => cut + `-` + the first alphanumerics of base64url(md5)."""
    if len(text) <= max_length:
        return text
    import base64  # here, as hashlib: most commands never hash (its OpenSSL binding costs ~2 ms)
    import hashlib

    digest = base64.urlsafe_b64encode(hashlib.md5(text.encode()).digest()).decode()
    suffix = re.sub(r"[^a-zA-Z0-9]", "", digest)[:hash_length]
    return truncate_prefix(text, suffix, max_length, separator)


def sanitize_label_value(value: str) -> str:
    """Preevy's sanitizeLabel: a valid label value (<= 63 chars) for any string."""
    text = re.sub(r"[^a-zA-Z0-9_.-]", "-", _utf16_units(value))
    text = _ensure_alnum_ends(text, r"[^a-zA-Z0-9]", r"[^a-zA-Z0-9]", "a")
    return truncate_with_hash(text, MAX_LABEL_LENGTH)


def sanitize_labels(labels: dict[str, str]) -> dict[str, str]:
    return {key: sanitize_label_value(value) for key, value in labels.items()}


def sanitize_name(value: str) -> str:
    """Preevy's sanitizeName (object names): lowercase, [a-z0-9-], starts with a letter, ends alphanumeric."""
    text = re.sub(r"[^a-z0-9-]", "-", _utf16_units(value.lower()))
    return _ensure_alnum_ends(text, r"[^a-z]", r"[^a-z0-9]", "a")


def random_suffix(length: int = INSTANCE_SUFFIX_LENGTH) -> str:
    import secrets  # here: it brings hmac and hashlib (~3 ms), most commands never draw one

    return "".join(secrets.choice(LOWERCASE_NUMERIC) for _ in range(length))


def instance_name(profile_id: str, env_id: str, suffix: str | None = None) -> str:
    """Preevy's envRandomName: sanitize(`<profile id>-<env id>`) cut to 42 chars, `-`, 5 random [a-z0-9].

    The result (<= 48 chars) names the StatefulSet and prefixes the other objects of the environment.
    `suffix` (tests, or re-rendering an existing instance) replaces the random part.
    """
    return truncate_prefix(
        sanitize_name(f"{profile_id}-{env_id}"),
        random_suffix() if suffix is None else suffix,
        INSTANCE_MAX_LENGTH,
    )


def normalize_env_id(value: str) -> str:
    """Preevy's env id normalize: lowercase, [a-z0-9_-], starts with a letter (no suffix rule)."""
    text = re.sub(r"[^a-z0-9_-]", "-", _utf16_units(value.lower()))
    if text and not re.fullmatch(r"[a-z]", text[0]):
        text = "a" + text
    return text


def is_rfc1123_label(value: str) -> bool:
    """A valid namespace (or other DNS label) name: [a-z0-9-], alphanumeric ends, <= 63 chars."""
    return len(value) <= MAX_LABEL_LENGTH and re.fullmatch(_RFC1123_LABEL, value) is not None


def is_rfc1123_subdomain(value: str) -> bool:
    """A valid object name such as a StorageClass's: dot-separated DNS labels, <= 253 chars."""
    return len(value) <= 253 and re.fullmatch(_RFC1123_SUBDOMAIN, value) is not None


def env_selector(
    profile_id: str, env_id: str, *, deleted: bool | None = False, docker_host: bool = False
) -> str:
    """Preevy's envSelector: the label selector of an environment's objects.

    deleted=False excludes objects being deleted, True selects only those, None both.
    """
    parts = [
        f"{LABEL_PROFILE_ID}={sanitize_label_value(profile_id)}",
        f"{LABEL_ENV_ID}={sanitize_label_value(env_id)}",
    ]
    if deleted is not None:
        parts.append(f"{LABEL_DELETED}{'=' if deleted else '!='}true")
    if docker_host:
        parts.append(f"{LABEL_COMPONENT}={DOCKER_HOST_COMPONENT}")
    return ",".join(parts)


def profile_selector(profile_id: str) -> str:
    return f"{LABEL_PROFILE_ID}={sanitize_label_value(profile_id)}"


def template_hash(specs: list[dict[str, Any]]) -> str:
    """Preevy's calcTemplateHash: `sha1:` + base64(sha1(stable JSON of the rendered specs)).

    specs are the rendered objects BEFORE environment metadata is added.
    """
    import base64
    import hashlib

    digest = hashlib.sha1(stable_json(specs).encode()).digest()
    return "sha1:" + base64.b64encode(digest).decode()


def stable_json(value: object) -> str:
    """JSON.stringify with keys sorted like JavaScript's default sort (fast-safe-stringify's stableStringify)."""
    if isinstance(value, dict):
        items = sorted(
            ((_json_key(key), item) for key, item in value.items()), key=lambda kv: kv[0].encode("utf-16-be")
        )
        return "{" + ",".join(f"{_json_string(key)}:{stable_json(item)}" for key, item in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(stable_json(item) for item in value) + "]"
    if isinstance(value, str):
        return _json_string(value)
    if value is None or value is True or value is False:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return js_number(value)
    return _json_string(str(value))


def js_number(value: int | float) -> str:
    """A number (or boolean) as JavaScript prints it: 5.0 -> "5", 1e-07 -> "1e-7", True -> "true",
    NaN -> "null" (as JSON.stringify)."""
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return "null"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    return re.sub(r"e([+-])0*(\d)", r"e\1\2", text)


def _json_key(key: object) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return json.dumps(key)
    if isinstance(key, (int, float)):
        return js_number(key)
    return str(key)


def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
