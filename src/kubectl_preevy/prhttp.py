"""The pull/merge request API's HTTP layer (prcomment.py's): the standard library's urllib, imported only
when a comment is written (urllib.request brings ssl and http.client: ~11 ms that `down` without a comment
would pay). Bounded timeouts; the token, in a header, goes to the configured API's origin only."""

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kubectl_preevy import messages
from kubectl_preevy.errors import PreevyError

if TYPE_CHECKING:
    from kubectl_preevy.prcomment import Target

TIMEOUT_SECONDS = 20


def same_origin(url: str, reference: str) -> bool:
    a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(reference)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects within the API's origin only: urllib would send the token's header to any host."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if not same_origin(newurl, req.full_url):
            return None  # urllib then raises the 3xx as an HTTPError
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def request(
    target: "Target", method: str, url: str, body: dict[str, Any] | None
) -> tuple[Any, Mapping[str, str]]:
    data = json.dumps(body).encode() if body is not None else None
    headers = dict(target.headers)
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    path = urllib.parse.urlsplit(url).path
    try:
        opener = urllib.request.build_opener(_SameOriginRedirects)
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            raw = response.read()
            return (json.loads(raw) if raw.strip() else None), response.headers
    except urllib.error.HTTPError as err:
        detail = err.read(300).decode(errors="replace").strip()
        raise PreevyError(
            messages.PR_API_FAILED.format(
                target=target.description, method=method, path=path, error=f"HTTP {err.code} {detail}"
            )
        ) from None
    except (OSError, ValueError) as err:
        raise PreevyError(
            messages.PR_API_FAILED.format(target=target.description, method=method, path=path, error=err)
        ) from None
