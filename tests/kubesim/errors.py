"""Kubernetes Status objects and the ApiError exception that carries one."""

from __future__ import annotations

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        obj["details"] = details
    return obj


class ApiError(Exception):
    """Raised anywhere in request handling; the server answers with its Status."""

    def __init__(self, status_obj: dict, headers: dict | None = None):
        super().__init__(status_obj.get("message", ""))
        self.status = status_obj
        self.code = status_obj["code"]
        self.headers = headers or {}


def _details(name, group, kind):
    d = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = kind
    return d


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        status(
            404,
            "NotFound",
            f'{_qualified(resource, group)} "{name}" not found',
            _details(name, group, resource),
        )
    )


def namespace_not_found(name: str) -> ApiError:
    return not_found("namespaces", "", name)


def no_such_route() -> ApiError:
    return ApiError(status(404, "NotFound", "the server could not find the requested resource", {}))


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        status(
            409,
            "AlreadyExists",
            f'{_qualified(resource, group)} "{name}" already exists',
            _details(name, group, resource),
        )
    )


def conflict(resource: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(
        status(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
            _details(name, group, resource),
        )
    )


def stale(resource: str, group: str, name: str) -> ApiError:
    return conflict(
        resource,
        group,
        name,
        "the object has been modified; please apply your changes to the latest version and try again",
    )


def apply_conflicts(resource: str, group: str, name: str, conflicts: list[tuple[str, str, str]]) -> ApiError:
    """conflicts: (manager, apiVersion, field path like .spec.replicas)."""
    causes = [
        {"reason": "FieldManagerConflict", "message": f'conflict with "{m}" using {v}', "field": f}
        for m, v, f in conflicts
    ]
    if len(conflicts) == 1:
        m, v, f = conflicts[0]
        msg = f'Apply failed with 1 conflict: conflict with "{m}" using {v}: {f}'
    else:
        lines = "\n".join(f'- conflict with "{m}" using {v}: {f}' for m, v, f in conflicts)
        msg = f"Apply failed with {len(conflicts)} conflicts:\n{lines}"
    d = _details(name, group, resource)
    d["causes"] = causes
    return ApiError(status(409, "Conflict", msg, d))


def invalid(kind: str, group: str, name: str, causes: list[dict]) -> ApiError:
    """causes: [{"reason": "FieldValueInvalid", "message": "...", "field": "metadata.name"}]."""
    if len(causes) == 1:
        tail = f"{causes[0]['field']}: {causes[0]['message']}"
    else:
        tail = "[" + ", ".join(f"{c['field']}: {c['message']}" for c in causes) + "]"
    d = _details(name, group, kind)
    d["causes"] = causes
    qualified = f"{kind}.{group}" if group else kind  # the apiserver names the GroupKind
    return ApiError(status(422, "Invalid", f'{qualified} "{name}" is invalid: {tail}', d))


def field_invalid(field: str, value, detail: str) -> dict:
    v = f'"{value}"' if isinstance(value, str) else str(value)
    return {"reason": "FieldValueInvalid", "message": f"Invalid value: {v}: {detail}", "field": field}


def field_required(field: str, detail: str) -> dict:
    return {"reason": "FieldValueRequired", "message": f"Required value: {detail}", "field": field}


def field_forbidden(field: str, detail: str) -> dict:
    return {"reason": "FieldValueForbidden", "message": f"Forbidden: {detail}", "field": field}


def field_unsupported(field: str, value, supported: list[str]) -> dict:
    sup = ", ".join(f'"{s}"' for s in supported)
    return {
        "reason": "FieldValueNotSupported",
        "message": f'Unsupported value: "{value}": supported values: {sup}',
        "field": field,
    }


def bad_request(message: str) -> ApiError:
    return ApiError(status(400, "BadRequest", message))


def method_not_allowed() -> ApiError:
    return ApiError(
        status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})
    )


def forbidden(resource: str, group: str, name: str, why: str) -> ApiError:
    q = _qualified(resource, group)
    msg = f'{q} "{name}" is forbidden: {why}' if name else f"{q} is forbidden: {why}"
    return ApiError(status(403, "Forbidden", msg, _details(name, group, resource)))


def unsupported_media_type(ctype: str) -> ApiError:
    return ApiError(
        status(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format ({ctype}) - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml, application/strategic-merge-patch+json",
            {},
        )
    )


def internal(message: str) -> ApiError:
    return ApiError(
        status(
            500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]}
        )
    )


def gone(message: str) -> dict:
    return status(410, "Expired", message)


def for_code(code: int, message: str | None = None) -> dict:
    """A Status a real server would send for this HTTP code (used by fault injection)."""
    reason = REASONS.get(code, "InternalError" if code >= 500 else "BadRequest")
    if reason == "InternalError":
        msg = f"Internal error occurred: {message or 'injected fault'}"
        return status(code, reason, msg, {"causes": [{"message": message or "injected fault"}]})
    if reason == "ServiceUnavailable":
        return status(code, reason, message or "the server is currently unable to handle the request", {})
    if reason == "Timeout":
        return status(
            code,
            reason,
            message
            or "the server was unable to return a response in the time allotted, but may still be processing the request",
            {},
        )
    if reason == "TooManyRequests":
        return status(
            code,
            reason,
            message or "the server has received too many requests and has asked us to try again later",
            {},
        )
    return status(code, reason, message or f"injected fault ({code})", {})
