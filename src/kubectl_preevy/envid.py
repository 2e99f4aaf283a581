"""Which environment id to use, and why: --id, else `<project>-<branch>` with the branch from CI or git.

Like Preevy (core/src/env-id.ts): the branch is normalized, then `<project>-<branch>` is normalized again.
"""

import pathlib
from collections.abc import Callable, Mapping

from kubectl_preevy import messages, naming, process
from kubectl_preevy.errors import ExitCode, PreevyError

GIT_TIMEOUT = 10


def _set(var: str) -> Callable[[Mapping[str, str]], bool]:
    return lambda environ: bool(environ.get(var))


# (branch variable, when it applies), first match wins. The first ones are Preevy's own CI providers
# (core/src/ci-providers), in its order, so both tools compute the same id in the same CI job.
CI_BRANCH_VARIABLES = (
    ("GITHUB_HEAD_REF", _set("GITHUB_ACTIONS")),  # pull request: its source branch
    (
        "GITHUB_REF_NAME",
        lambda env: bool(env.get("GITHUB_ACTIONS")) and env.get("GITHUB_REF_TYPE") == "branch",
    ),
    ("CI_COMMIT_BRANCH", _set("GITLAB_CI")),
    ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", _set("GITLAB_CI")),
    ("CI_COMMIT_REF_NAME", _set("GITLAB_CI")),
    ("TRAVIS_BRANCH", lambda env: bool(env.get("TRAVIS")) and not env.get("TRAVIS_TAG")),
    ("CIRCLE_BRANCH", _set("CIRCLECI")),
    ("BUILD_SOURCEBRANCHNAME", _set("BUILD_DEFINITIONNAME")),  # Azure Pipelines
    ("CHANGE_BRANCH", _set("JENKINS_URL")),  # Jenkins multibranch: a change request
    ("BRANCH_NAME", _set("JENKINS_URL")),
    ("BITBUCKET_BRANCH", _set("BITBUCKET_BUILD_NUMBER")),
    ("BUILDKITE_BRANCH", _set("BUILDKITE")),
)


def resolve_env_id(
    explicit: str | None, project_name: str, environ: Mapping[str, str], cwd: pathlib.Path | str
) -> tuple[str, str]:
    """(environment id, why), e.g. ("shop-main", 'from project "shop" and git branch "main"')."""
    if explicit is not None:
        return validate_env_id(explicit), "from --id"
    branch, branch_source = branch_name(environ, pathlib.Path(cwd))
    env_id = naming.normalize_env_id(f"{project_name}-{naming.normalize_env_id(branch)}")
    return env_id, f'from project "{project_name}" and {branch_source} "{branch}"'


def validate_env_id(value: str) -> str:
    if not value:
        raise PreevyError(messages.ENV_ID_EMPTY, ExitCode.USAGE)
    suggestion = naming.normalize_env_id(value)
    if suggestion != value:
        shown = value.encode("unicode_escape").decode()  # a newline in it stays on the one error line
        raise PreevyError(messages.ENV_ID_INVALID.format(value=shown, suggestion=suggestion), ExitCode.USAGE)
    return value


def branch_name(environ: Mapping[str, str], cwd: pathlib.Path) -> tuple[str, str]:
    """(branch, where it came from): a CI variable, else the checked-out git branch."""
    for variable, applies in CI_BRANCH_VARIABLES:
        if environ.get(variable) and applies(environ):
            return environ[variable], f"${variable}"
    return git_branch(cwd), "git branch"


def git_branch(cwd: pathlib.Path) -> str:
    # symbolic-ref (not rev-parse) also works in a repository without commits, and fails when detached
    try:
        result = process.run(
            ["git", "symbolic-ref", "--quiet", "--short", "HEAD"], cwd=str(cwd), timeout=GIT_TIMEOUT
        )
    except PreevyError as err:
        if err.exit_code == ExitCode.MISSING_TOOL:
            raise PreevyError(
                messages.ENV_ID_NO_BRANCH.format(reason=messages.ENV_ID_GIT_MISSING), ExitCode.USAGE
            ) from None
        raise
    if result.ok and result.stdout.strip():
        return result.stdout.strip()
    reason = messages.ENV_ID_DETACHED if result.returncode == 1 else messages.ENV_ID_NO_GIT
    raise PreevyError(messages.ENV_ID_NO_BRANCH.format(reason=reason.format(cwd=cwd)), ExitCode.USAGE)
