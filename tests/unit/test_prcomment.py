"""Where the comment goes (GitHub, GitLab, neither) and its sandboxed rendering."""

import json

import pytest

from kubectl_preevy import cioutputs, prcomment
from kubectl_preevy.errors import PreevyError

ROWS = [{"service": "web", "port": 80, "url": "https://web.example"}]


def test_github_pr_number_from_the_event_then_the_ref(tmp_path):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 12}}))
    base = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r", "GITHUB_TOKEN": "t"}
    target, _ = prcomment.detect(base | {"GITHUB_EVENT_PATH": str(event), "GITHUB_REF": "refs/pull/3/merge"})
    assert target is not None and target.comments_url == "https://api.github.com/repos/o/r/issues/12/comments"
    assert target.comment_url(5) == "https://api.github.com/repos/o/r/issues/comments/5"
    target, _ = prcomment.detect(
        base | {"GITHUB_REF": "refs/pull/3/merge", "GITHUB_API_URL": "http://h/api/v3"}
    )
    assert target is not None and target.comments_url == "http://h/api/v3/repos/o/r/issues/3/comments"
    assert prcomment.detect(base | {"GITHUB_REF": "refs/heads/main"})[0] is None
    target, why = prcomment.detect(
        {k: v for k, v in base.items() if k != "GITHUB_TOKEN"} | {"GITHUB_REF": "refs/pull/3/merge"}
    )
    assert target is None and why == "no token: set GITHUB_TOKEN"


def test_gitlab_merge_request_notes():
    environ = {
        "GITLAB_CI": "true",
        "CI_API_V4_URL": "https://gl/api/v4",
        "CI_PROJECT_ID": "42",
        "CI_MERGE_REQUEST_IID": "7",
    }
    assert prcomment.detect(environ)[1] == "no token: set PREEVY_GITLAB_TOKEN or GITLAB_TOKEN"
    target, _ = prcomment.detect(environ | {"GITLAB_TOKEN": "x"})
    assert target is not None and target.headers == {"PRIVATE-TOKEN": "x"}
    assert target.comment_url(9) == "https://gl/api/v4/projects/42/merge_requests/7/notes/9"
    assert prcomment.detect({"GITLAB_CI": "true"} | {"GITLAB_TOKEN": "x"})[0] is None
    assert prcomment.detect({})[1] == "not a GitHub Actions or GitLab CI job"


def test_render_has_the_marker_and_stays_in_the_sandbox():
    body = prcomment.render(prcomment.DEFAULT_TEMPLATE, env_id="e1", namespace="ns", urls=ROWS, deleted=False)
    assert body.startswith("<!-- preevy-env-id: e1 -->\n")
    assert "| web | 80 | https://web.example |" in body
    gone = prcomment.render(prcomment.DEFAULT_TEMPLATE, env_id="e1", namespace="ns", urls=[], deleted=True)
    assert "deleted" in gone and "https://" not in gone
    for unsafe in ("{{ urls.append(1) }}", "{{ ''.__class__.__mro__[1].__subclasses__() }}"):
        with pytest.raises(PreevyError):
            prcomment.render(unsafe, env_id="e", namespace="n", urls=[], deleted=False)


def test_ci_outputs_formats():
    assert cioutputs.dotenv("e1", ROWS) == (
        "PREEVY_ENV_ID=e1\nPREEVY_URL=https://web.example\nPREEVY_URL_WEB_80=https://web.example\n"
    )
    assert "| web | 80 | https://web.example |" in cioutputs.summary("e1", ROWS)


def test_the_token_never_follows_a_redirect_to_another_host():
    import http.server

    from tests.e2e.forge import LocalServer

    seen: list[str | None] = []

    class Elsewhere(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

    with LocalServer(Elsewhere) as elsewhere:

        class Redirecting(Elsewhere):
            def do_GET(self) -> None:
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{elsewhere.port}/steal")
                self.send_header("Content-Length", "0")
                self.end_headers()

        with LocalServer(Redirecting) as api:
            environ = {
                "GITHUB_ACTIONS": "true",
                "GITHUB_REPOSITORY": "o/r",
                "GITHUB_REF": "refs/pull/1/merge",
                "GITHUB_TOKEN": "secret",
                "GITHUB_API_URL": f"http://127.0.0.1:{api.port}",
            }
            target, _ = prcomment.detect(environ)
            assert target is not None
            with pytest.raises(PreevyError) as raised:
                prcomment.find_comment(target, "e1")
    assert seen == []
    assert "HTTP 302" in raised.value.message and "secret" not in raised.value.message
