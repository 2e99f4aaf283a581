"""The pull/merge request comment of an environment: GitHub issue comments, GitLab MR notes.

One comment per environment, found again by Preevy's marker `<!-- preevy-env-id: <envId> -->`
(so a comment Preevy wrote is updated in place), listing the URLs; `down` marks it deleted. The
text is a Jinja2 template the user can replace, rendered in Jinja2's immutable sandbox: a template
is data, it cannot reach Python. Only the standard library talks HTTP (bounded timeouts), and the
token goes in a header to the configured API only: never into a message, never to another host.
"""

import dataclasses
import json
import pathlib
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from kubectl_preevy import console, messages
from kubectl_preevy.errors import ExitCode, PreevyError

MODES = ("auto", "always", "never")
MAX_PAGES = 50
PER_PAGE = 100
GITHUB_API_URL = "https://api.github.com"
GITLAB_TOKEN_VARIABLES = ("PREEVY_GITLAB_TOKEN", "GITLAB_TOKEN")

DEFAULT_TEMPLATE = """\
{% if urls %}**Preview environment `{{ env_id }}`** is up ([kubectl-preevy](https://preevy.dev), \
namespace `{{ namespace }}`):

| Service | Port | URL |
|---------|------|-----|
{% for url in urls %}| {{ url.service }} | {{ url.port }} | {{ url.url }} |
{% endfor %}{% elif deleted %}The preview environment `{{ env_id }}` of this pull request has been deleted.
{% else %}The preview environment `{{ env_id }}` is up; no service publishes a port.
{% endif %}"""
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


def marker(env_id: str) -> str:
    return f"<!-- preevy-env-id: {env_id} -->"


@dataclasses.dataclass(frozen=True)
class Target:
    """Where the comments of one pull/merge request live."""

    provider: str  # github | gitlab
    description: str  # e.g. "GitHub pull request octo/hello#12" (what we say; no token)
    comments_url: str  # list (GET, paginated) and create (POST)
    headers: dict[str, str]  # authentication included: never printed
    update_method: str  # PATCH (GitHub) | PUT (GitLab)

    def comment_url(self, comment_id: int) -> str:
        if self.provider == "github":
            return re.sub(r"/issues/\d+/comments$", f"/issues/comments/{comment_id}", self.comments_url)
        return f"{self.comments_url}/{comment_id}"


def detect(environ: Mapping[str, str]) -> tuple[Target | None, str]:
    """The pull/merge request of this CI job, or None and why not."""
    if environ.get("GITHUB_ACTIONS") or environ.get("GITHUB_REPOSITORY"):
        return _github(environ)
    if environ.get("GITLAB_CI") or environ.get("CI_API_V4_URL"):
        return _gitlab(environ)
    return None, messages.PR_NOT_CI


def _github(environ: Mapping[str, str]) -> tuple[Target | None, str]:
    repository = environ.get("GITHUB_REPOSITORY", "")
    number = _github_pr_number(environ)
    token = environ.get("GITHUB_TOKEN", "")
    if not repository or number is None:
        return None, messages.PR_NOT_A_PR.format(provider="GitHub", where="GITHUB_EVENT_PATH / GITHUB_REF")
    if not token:
        return None, messages.PR_NO_TOKEN.format(variables="GITHUB_TOKEN")
    api = environ.get("GITHUB_API_URL") or GITHUB_API_URL
    return (
        Target(
            "github",
            f"GitHub pull request {repository}#{number}",
            f"{api.rstrip('/')}/repos/{repository}/issues/{number}/comments",
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
            "PATCH",
        ),
        "",
    )


def _github_pr_number(environ: Mapping[str, str]) -> int | None:
    """From the event payload (pull_request events), else from GITHUB_REF refs/pull/N/merge."""
    event_path = environ.get("GITHUB_EVENT_PATH")
    if event_path:
        try:
            event = json.loads(pathlib.Path(event_path).read_text())
        except (OSError, ValueError):
            event = {}
        pull_request = event.get("pull_request") if isinstance(event, dict) else None
        if isinstance(pull_request, dict) and isinstance(pull_request.get("number"), int):
            return int(pull_request["number"])
    match = re.fullmatch(r"refs/pull/(\d+)/(?:merge|head)", environ.get("GITHUB_REF", ""))
    return int(match.group(1)) if match else None


def _gitlab(environ: Mapping[str, str]) -> tuple[Target | None, str]:
    api = environ.get("CI_API_V4_URL", "")
    project = environ.get("CI_PROJECT_ID", "")
    iid = environ.get("CI_MERGE_REQUEST_IID", "")
    if not (api and project and iid.isdigit()):
        return None, messages.PR_NOT_A_PR.format(provider="GitLab", where="CI_MERGE_REQUEST_IID")
    token = next((environ[v] for v in GITLAB_TOKEN_VARIABLES if environ.get(v)), "")
    if not token:
        return None, messages.PR_NO_TOKEN.format(variables=" or ".join(GITLAB_TOKEN_VARIABLES))
    project_path = urllib.parse.quote(project, safe="")
    return (
        Target(
            "gitlab",
            f"GitLab merge request !{iid} of project {project}",
            f"{api.rstrip('/')}/projects/{project_path}/merge_requests/{iid}/notes",
            {"PRIVATE-TOKEN": token},
            "PUT",
        ),
        "",
    )


def render(
    template_text: str, *, env_id: str, namespace: str, urls: list[dict[str, Any]], deleted: bool
) -> str:
    """The comment body: Preevy's marker, then the template rendered in the immutable sandbox."""
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    sandbox = ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=True)
    try:
        text = sandbox.from_string(template_text).render(
            env_id=env_id, namespace=namespace, urls=urls, deleted=deleted
        )
    except TemplateError as err:
        raise PreevyError(messages.PR_TEMPLATE_ERROR.format(error=err), ExitCode.USAGE) from None
    return f"{marker(env_id)}\n{text}"


def checked_template(mode: str, path: str | None, env_id: str, environ: Mapping[str, str]) -> str:
    """The template's text, rendered once to check it before anything is written ("" with mode never; the
    bundled one is not: it is ours, and jinja2 then need not load); with mode always, the pull request and
    token must be there too."""
    if mode not in MODES:
        raise PreevyError(messages.PR_COMMENT_MODE.format(mode=mode, modes=", ".join(MODES)), ExitCode.USAGE)
    if mode == "never":
        return ""
    if mode == "always":
        target, why = detect(environ)
        if target is None:
            raise PreevyError(messages.PR_COMMENT_IMPOSSIBLE.format(why=why), ExitCode.USAGE)
    text = template_text(path)
    if path:
        render(
            text, env_id=env_id, namespace="", urls=[{"service": "s", "port": 1, "url": "u"}], deleted=False
        )
        render(text, env_id=env_id, namespace="", urls=[], deleted=True)
    return text


def template_text(path: str | None) -> str:
    if not path:
        return DEFAULT_TEMPLATE
    try:
        return pathlib.Path(path).read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise PreevyError(
            messages.PR_TEMPLATE_UNREADABLE.format(path=path, error=err), ExitCode.USAGE
        ) from None


def publish(target: Target, env_id: str, body: str, *, create: bool = True) -> str:
    """Update the environment's comment (found by its marker) or create it: "updated", "created", or
    "absent" (create False and none found)."""
    from kubectl_preevy import prhttp  # here: only a comment written needs HTTP

    existing = find_comment(target, env_id)
    if existing is not None:
        prhttp.request(target, target.update_method, target.comment_url(existing), {"body": body})
        return "updated"
    if not create:
        return "absent"
    prhttp.request(target, "POST", target.comments_url, {"body": body})
    return "created"


def find_comment(target: Target, env_id: str) -> int | None:
    """The id of the first comment holding the environment's marker, following every page."""
    wanted = marker(env_id)
    url: str | None = f"{target.comments_url}?{urllib.parse.urlencode({'per_page': PER_PAGE})}"
    for _ in range(MAX_PAGES):
        if url is None:
            break
        comments, url = _list_page(target, url)
        for comment in comments:
            if isinstance(comment, dict) and wanted in str(comment.get("body") or ""):
                return int(comment["id"])
    return None


def _list_page(target: Target, url: str) -> tuple[list[Any], str | None]:
    from kubectl_preevy import prhttp

    payload, headers = prhttp.request(target, "GET", url, None)
    next_url = None
    match = _NEXT_LINK.search(headers.get("Link") or "")
    if match:
        next_url = match.group(1)
    elif headers.get("X-Next-Page"):  # GitLab also says it this way
        next_url = _with_page(url, headers["X-Next-Page"])
    if next_url is not None and not prhttp.same_origin(next_url, target.comments_url):
        next_url = None  # the token goes to the configured API only
    return (payload if isinstance(payload, list) else []), next_url


def _with_page(url: str, page: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query["page"] = page
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def comment(
    mode: str,
    environ: Mapping[str, str],
    *,
    env_id: str,
    namespace: str,
    urls: list[dict[str, Any]],
    deleted: bool,
    template: str,
) -> None:
    """Write (up) or mark deleted (down) the environment's comment, as mode says:
    never; auto (skip silently outside CI, with one info line in a CI job that is no PR or has no token; warn
    on an API failure); always (those are errors)."""
    if mode == "never":
        return
    target, why = detect(environ)
    if target is None:
        if mode == "always":
            raise PreevyError(messages.PR_COMMENT_IMPOSSIBLE.format(why=why), ExitCode.USAGE)
        if why != messages.PR_NOT_CI:  # outside CI (a developer's own `up`) there is nothing to say
            console.info(messages.PR_COMMENT_SKIPPED.format(why=why))
        return
    body = render(template, env_id=env_id, namespace=namespace, urls=urls, deleted=deleted)
    try:
        outcome = publish(target, env_id, body, create=not deleted)
    except PreevyError as err:
        if mode == "always":
            raise
        console.warn(err.message)
        return
    console.info(messages.PR_COMMENT_DONE.format(outcome=outcome, target=target.description))
