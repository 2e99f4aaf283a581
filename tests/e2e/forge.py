"""A local GitHub and GitLab REST API, on 127.0.0.1, for the comment endpoints kubectl-preevy uses.

As documented (GitHub itself cannot be reached from our machines):
- GitHub REST 2022-11-28, "Issue comments": GET /repos/{owner}/{repo}/issues/{n}/comments (per_page,
  page; `Link: <...>; rel="next"`), POST the same (201), PATCH /repos/{owner}/{repo}/issues/comments/{id}.
  `Authorization: Bearer <token>` else 401 {"message": "Bad credentials"}.
- GitLab REST v4, "Notes" of merge requests: GET /api/v4/projects/{id}/merge_requests/{iid}/notes
  (per_page, page; X-Page, X-Next-Page, X-Total, Link), POST (201), PUT .../notes/{note_id}.
  `PRIVATE-TOKEN: <token>` else 401 {"message": "401 Unauthorized"}.
"""

import dataclasses
import http.server
import json
import re
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass
class Forge:
    token: str
    comments: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)  # thread -> comments
    requests: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (method, path)
    next_id: int = 1000
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, thread: str, body: str, user: str = "someone") -> dict[str, Any]:
        self.next_id += 1
        comment = {"id": self.next_id, "body": body, "user": {"login": user}, "author": {"username": user}}
        self.comments.setdefault(thread, []).append(comment)
        return comment


GITHUB_THREAD = re.compile(r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments")
GITHUB_COMMENT = re.compile(r"/repos/([^/]+/[^/]+)/issues/comments/(\d+)")
GITLAB_THREAD = re.compile(r"/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes")
GITLAB_NOTE = re.compile(r"/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes/(\d+)")


def handler(forge: Forge) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

        def do_PUT(self) -> None:
            self._route("PUT")

        def _route(self, method: str) -> None:
            parts = urllib.parse.urlsplit(self.path)
            path = parts.path  # GitLab's project id `group%2Fname` stays one segment
            forge.requests.append((method, urllib.parse.unquote(path)))
            query = dict(urllib.parse.parse_qsl(parts.query))
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            gitlab = path.startswith("/api/v4/")
            if gitlab and self.headers.get("PRIVATE-TOKEN") != forge.token:
                return self._send(401, {"message": "401 Unauthorized"})
            if not gitlab and self.headers.get("Authorization") != f"Bearer {forge.token}":
                return self._send(401, {"message": "Bad credentials"})
            for pattern, kind in (
                (GITLAB_NOTE, "one"),
                (GITLAB_THREAD, "list"),
                (GITHUB_COMMENT, "one"),
                (GITHUB_THREAD, "list"),
            ):
                match = pattern.fullmatch(path)
                if match:
                    if kind == "list":
                        thread = "/".join(urllib.parse.unquote(g) for g in match.groups())
                        return self._thread(method, path, thread, query, body, gitlab)
                    return self._one(method, int(match.groups()[-1]), body, gitlab)
            return self._send(404, {"message": "Not Found"})

        def _thread(
            self, method: str, path: str, thread: str, query: dict[str, str], body: Any, gitlab: bool
        ) -> None:
            comments = forge.comments.setdefault(thread, [])
            if method == "POST":
                if not isinstance(body, dict) or not isinstance(body.get("body"), str):
                    return self._send(422 if not gitlab else 400, {"message": "body is missing"})
                return self._send(201, forge.add(thread, body["body"], user="preevy-bot"))
            if method != "GET":
                return self._send(405 if gitlab else 404, {"message": "Not Found"})
            per_page = min(int(query.get("per_page", 30 if not gitlab else 20)), 100)
            page = int(query.get("page", 1))
            chunk = comments[(page - 1) * per_page : page * per_page]
            last = max(1, -(-len(comments) // per_page))
            headers = {}
            links = []
            if page < last:
                links.append(f'<{forge.url}{path}?per_page={per_page}&page={page + 1}>; rel="next"')
            links.append(f'<{forge.url}{path}?per_page={per_page}&page={last}>; rel="last"')
            headers["Link"] = ", ".join(links)
            if gitlab:
                headers.update(
                    {
                        "X-Page": str(page),
                        "X-Next-Page": str(page + 1) if page < last else "",
                        "X-Total": str(len(comments)),
                    }
                )
            return self._send(200, chunk, headers)

        def _one(self, method: str, comment_id: int, body: Any, gitlab: bool) -> None:
            found = [c for thread in forge.comments.values() for c in thread if c["id"] == comment_id]
            if not found:
                return self._send(404, {"message": "Not Found"})
            if method != ("PUT" if gitlab else "PATCH"):
                return self._send(405 if gitlab else 404, {"message": "Not Found"})
            found[0]["body"] = body["body"]
            return self._send(200, found[0])

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


class LocalServer:
    """An HTTP server on 127.0.0.1 in a thread of the test process; stopped (socket closed) on exit."""

    def __init__(self, handler_class: Callable[..., http.server.BaseHTTPRequestHandler]):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "LocalServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class ForgeServer:
    """The forge API on a LocalServer: `with ForgeServer(token) as forge` gives the Forge."""

    def __init__(self, token: str):
        self.forge = Forge(token)
        self.local = LocalServer(handler(self.forge))
        self.forge.port = self.local.port

    def __enter__(self) -> Forge:
        self.local.__enter__()
        return self.forge

    def __exit__(self, *exc: object) -> None:
        self.local.__exit__(*exc)
