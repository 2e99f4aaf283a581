"""Environment ids: --id, CI branch variables (Preevy's providers first), git (a real repository)."""

import subprocess

import pytest

from kubectl_preevy import envid, naming
from kubectl_preevy.errors import ExitCode, PreevyError

GIT_IDENTITY = ["-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "commit.gpgsign=false"]


def git(cwd, *args):
    subprocess.run(["git", *GIT_IDENTITY, *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture
def repo(tmp_path):
    """A real git repository without commits, on branch feature/X."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "feature/X")
    return path


@pytest.fixture
def not_a_repo(tmp_path, monkeypatch):
    path = tmp_path / "plain"
    path.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return path


def test_explicit_id_is_used_as_is(not_a_repo):
    assert envid.resolve_env_id("my-env_1", "shop", {}, not_a_repo) == ("my-env_1", "from --id")


@pytest.mark.parametrize(
    "value,suggestion", [("My-Env", "my-env"), ("feature/x", "feature-x"), ("1abc", "a1abc")]
)
def test_explicit_id_must_be_normalized(value, suggestion, not_a_repo):
    with pytest.raises(PreevyError) as caught:
        envid.resolve_env_id(value, "shop", {}, not_a_repo)
    assert caught.value.exit_code == ExitCode.USAGE
    assert f'invalid --id "{value}"' in caught.value.message
    assert f"--id {suggestion}" in caught.value.message


def test_empty_explicit_id_is_an_error(not_a_repo):
    with pytest.raises(PreevyError, match=r'invalid --id ""'):
        envid.resolve_env_id("", "shop", {}, not_a_repo)


CI_CASES = [
    (
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_HEAD_REF": "feature/PR-1",
            "GITHUB_REF_NAME": "1/merge",
            "GITHUB_REF_TYPE": "branch",
        },
        "GITHUB_HEAD_REF",
        "feature/PR-1",
    ),
    (
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_HEAD_REF": "",
            "GITHUB_REF_NAME": "main",
            "GITHUB_REF_TYPE": "branch",
        },
        "GITHUB_REF_NAME",
        "main",
    ),
    (
        {"GITLAB_CI": "true", "CI_COMMIT_BRANCH": "dev", "CI_COMMIT_REF_NAME": "dev"},
        "CI_COMMIT_BRANCH",
        "dev",
    ),
    (
        {"GITLAB_CI": "true", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "mr/x", "CI_COMMIT_REF_NAME": "y"},
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
        "mr/x",
    ),
    ({"GITLAB_CI": "true", "CI_COMMIT_REF_NAME": "release"}, "CI_COMMIT_REF_NAME", "release"),
    ({"TRAVIS": "true", "TRAVIS_BRANCH": "tr"}, "TRAVIS_BRANCH", "tr"),
    ({"CIRCLECI": "true", "CIRCLE_BRANCH": "circle/b"}, "CIRCLE_BRANCH", "circle/b"),
    ({"BUILD_DEFINITIONNAME": "pipe", "BUILD_SOURCEBRANCHNAME": "az"}, "BUILD_SOURCEBRANCHNAME", "az"),
    (
        {"JENKINS_URL": "http://j", "CHANGE_BRANCH": "pr-src", "BRANCH_NAME": "PR-7"},
        "CHANGE_BRANCH",
        "pr-src",
    ),
    ({"JENKINS_URL": "http://j", "BRANCH_NAME": "jb"}, "BRANCH_NAME", "jb"),
    ({"BITBUCKET_BUILD_NUMBER": "3", "BITBUCKET_BRANCH": "bb"}, "BITBUCKET_BRANCH", "bb"),
    ({"BUILDKITE": "true", "BUILDKITE_BRANCH": "bk"}, "BUILDKITE_BRANCH", "bk"),
]


@pytest.mark.parametrize("environ,variable,branch", CI_CASES, ids=[case[1] for case in CI_CASES])
def test_branch_from_ci_variables_beats_git(environ, variable, branch, repo):
    env_id, why = envid.resolve_env_id(None, "Shop", environ, repo)
    assert env_id == naming.normalize_env_id(f"Shop-{naming.normalize_env_id(branch)}")
    assert why == f'from project "Shop" and ${variable} "{branch}"'


@pytest.mark.parametrize(
    "environ",
    [
        {"GITHUB_HEAD_REF": "x"},  # not in GitHub Actions
        {"GITHUB_ACTIONS": "true", "GITHUB_REF_NAME": "v1.0", "GITHUB_REF_TYPE": "tag"},
        {"TRAVIS": "true", "TRAVIS_BRANCH": "v1", "TRAVIS_TAG": "v1"},
        {"BRANCH_NAME": "x"},  # not in Jenkins
    ],
)
def test_ci_variables_outside_their_ci_are_ignored(environ, repo):
    assert envid.resolve_env_id(None, "shop", environ, repo) == (
        "shop-feature-x",
        'from project "shop" and git branch "feature/X"',
    )


def test_branch_from_git_without_commits(repo):
    assert envid.resolve_env_id(None, "shop", {}, repo) == (
        "shop-feature-x",
        'from project "shop" and git branch "feature/X"',
    )


def test_branch_from_git_in_a_subdirectory(repo):
    sub = repo / "a" / "b"
    sub.mkdir(parents=True)
    assert envid.resolve_env_id(None, "shop", {}, sub)[0] == "shop-feature-x"


def test_branch_is_normalized_before_joining_like_preevy(repo):
    # Preevy: normalize(project + "-" + normalize(branch)): a branch starting with a digit gets its own "a"
    git(repo, "checkout", "-q", "-b", "123-Fix")
    assert envid.resolve_env_id(None, "shop", {}, repo)[0] == "shop-a123-fix"


def test_detached_head_is_an_error_saying_to_pass_id(repo):
    git(repo, "commit", "-q", "--allow-empty", "-m", "one")
    git(repo, "checkout", "-q", "--detach")
    with pytest.raises(PreevyError) as caught:
        envid.resolve_env_id(None, "shop", {}, repo)
    assert "detached" in caught.value.message and "--id" in caught.value.message
    assert caught.value.exit_code == ExitCode.USAGE


def test_no_git_repository_is_an_error_saying_to_pass_id(not_a_repo):
    with pytest.raises(PreevyError) as caught:
        envid.resolve_env_id(None, "shop", {}, not_a_repo)
    assert "not in a git repository" in caught.value.message and "pass --id" in caught.value.message
