"""The CI recipes (examples/ci): valid for their CI (check-jsonschema's bundled GitHub and GitLab schemas),
and their shell steps, run with the variables the CI would set, against the emulator.

Not run: `uses:` steps (the checkout is the test's project directory). Runner semantics kept:
every `run:` is `bash -e` with the step's `env:` (GitHub expressions `${{ a.b.c }}` looked up in
the contexts), $GITHUB_ENV / $GITHUB_PATH carried to the next steps, $GITHUB_OUTPUT per step; for
GitLab, `before_script` + `script` in one `sh -e` with the global, job and CI variables. The zipapp
is downloaded from a local HTTP server, the PR/MR API is the local forge (tests/e2e/forge.py).
"""

import functools
import http.server
import json
import os
import pathlib
import re
import shutil
import subprocess

import yaml

from tests.e2e import REPO_ROOT, environment_objects, hello_project, user_env
from tests.e2e.forge import ForgeServer, LocalServer
from tests.packaging.support import build_zipapp

GITHUB = REPO_ROOT / "examples" / "ci" / "github-actions.yml"
GITLAB = REPO_ROOT / "examples" / "ci" / "gitlab-ci.yml"
TOKEN = "ci-token-not-to-be-printed"
_EXPRESSION = re.compile(r"\$\{\{\s*([\w.\-]+)\s*\}\}")


def check_jsonschema(schema: str, path: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["check-jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_recipes_pass_the_github_and_gitlab_schemas_and_a_broken_one_does_not(tmp_path):
    for schema, path in (("vendor.github-workflows", GITHUB), ("vendor.gitlab-ci", GITLAB)):
        result = check_jsonschema(schema, path)
        assert result.returncode == 0, result.stdout + result.stderr
    broken = yaml.safe_load(GITHUB.read_text())
    del broken["jobs"]["preview"]["runs-on"]
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    assert check_jsonschema("vendor.github-workflows", tmp_path / "broken.yml").returncode == 1

    workflow = yaml.safe_load(GITHUB.read_text())
    assert workflow[True]["pull_request"]["types"] == ["opened", "synchronize", "reopened", "closed"]  # `on`
    assert "schedule" in workflow[True]
    jobs = workflow["jobs"]
    assert jobs["preview"]["concurrency"]["group"] == jobs["cleanup"]["concurrency"]["group"]
    assert "${{ github.event.pull_request.number }}" in jobs["preview"]["concurrency"]["group"]
    assert "--force" in jobs["cleanup"]["steps"][-1]["run"]
    assert "secrets.PREEVY_KUBECONFIG" in json.dumps(jobs["preview"]["steps"])
    gitlab = yaml.safe_load(GITLAB.read_text())
    environment = gitlab["review"]["environment"]
    assert (environment["url"], environment["on_stop"], environment["auto_stop_in"]) == (
        "$PREEVY_URL",
        "stop_review",
        "3 days",
    )
    assert gitlab["review"]["artifacts"]["reports"]["dotenv"] == "preevy.env"
    assert gitlab["stop_review"]["environment"]["action"] == "stop"


class _Downloads:
    """The zipapp served on 127.0.0.1 (the recipes download kubectl-preevy from a URL)."""

    def __init__(self, directory: pathlib.Path):
        self.local = LocalServer(functools.partial(_QuietHandler, directory=str(directory)))

    def __enter__(self) -> str:
        self.local.__enter__()
        return f"http://127.0.0.1:{self.local.port}/kubectl-preevy"

    def __exit__(self, *exc: object) -> None:
        self.local.__exit__(*exc)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _base_env(kubesim, tmp_path: pathlib.Path) -> dict[str, str]:
    """A CI machine: PATH with kubectl and docker (HOME kept: the compose plugin is there), the zipapp
    unpacked under the test's directory, no kubeconfig until the recipe writes one."""
    environ = user_env(kubesim, tmp_path / "config")
    environ.pop("KUBECONFIG", None)
    environ["SHIV_ROOT"] = str(tmp_path / "shiv")
    environ["CI"] = "true"
    return environ


def _expand(value: object, contexts: dict) -> str:
    def lookup(match: re.Match) -> str:
        node: object = contexts
        for part in match.group(1).split("."):
            node = node.get(part, "") if isinstance(node, dict) else ""
        return str(node)

    return _EXPRESSION.sub(lookup, str(value))


def run_github_job(
    job: dict, environ: dict[str, str], contexts: dict, cwd: pathlib.Path, runner: pathlib.Path
):
    """Each `run:` step as the runner runs it; the outputs of each step by id."""
    environ = dict(environ)
    github_env, github_path = runner / "env", runner / "path"
    github_env.write_text("")
    github_path.write_text("")
    outputs: dict[str, dict[str, str]] = {}
    for number, step in enumerate(job["steps"]):
        if "run" not in step:
            continue
        output = runner / f"output-{number}"
        output.write_text("")
        step_env = {key: _expand(value, contexts) for key, value in (step.get("env") or {}).items()}
        env = environ | step_env | {"GITHUB_ENV": str(github_env), "GITHUB_PATH": str(github_path)}
        env["GITHUB_OUTPUT"] = str(output)
        result = subprocess.run(
            ["bash", "-e", "-c", step["run"]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
        )
        assert TOKEN not in result.stdout + result.stderr
        assert result.returncode == 0, f"step {step.get('name')}: {result.stdout}{result.stderr}"
        for line in github_env.read_text().splitlines():
            key, _, value = line.partition("=")
            environ[key] = value
        added = [line for line in github_path.read_text().splitlines() if line]
        environ["PATH"] = ":".join([*reversed(added), *environ["PATH"].split(":")])
        github_path.write_text("")
        if step.get("id"):
            outputs[step["id"]] = dict(
                line.split("=", 1) for line in output.read_text().splitlines() if "=" in line
            )
    return outputs


def test_github_recipe_up_on_open_and_push_down_on_close_gc_on_schedule(kubesim, namespace, tmp_path):
    project = hello_project(tmp_path / "repository")
    build_zipapp(tmp_path / "download" / "kubectl-preevy", tmp_path / "zipapp-work")
    kubeconfig = pathlib.Path(kubesim.env["KUBECONFIG"]).read_text()
    workflow = yaml.safe_load(GITHUB.read_text())
    with ForgeServer(TOKEN) as forge, _Downloads(tmp_path / "download") as url:
        runner = tmp_path / "runner"
        runner.mkdir()
        summary = runner / "summary.md"

        def run(job: str, event_name: str, action: str | None) -> dict:
            event = {"action": action, "number": 5, "pull_request": {"number": 5}} if action else {}
            (runner / "event.json").write_text(json.dumps(event))
            contexts = {
                "secrets": {"PREEVY_KUBECONFIG": kubeconfig},
                "vars": {"PREEVY_NAMESPACE": namespace, "KUBECTL_PREEVY_URL": url},
                "github": {"token": TOKEN, "event": event},
            }
            environ = _base_env(kubesim, tmp_path) | {
                "GITHUB_ACTIONS": "true",
                "GITHUB_EVENT_NAME": event_name,
                "GITHUB_EVENT_PATH": str(runner / "event.json"),
                "GITHUB_REF": "refs/pull/5/merge" if action else "refs/heads/main",
                "GITHUB_REPOSITORY": "octo/shop",
                "GITHUB_API_URL": forge.url,
                "GITHUB_STEP_SUMMARY": str(summary),
                "RUNNER_TEMP": str(runner),
            }
            return run_github_job(workflow["jobs"][job], environ, contexts, project, runner)

        outputs = run("preview", "pull_request", "opened")
        urls = json.loads(outputs["up"]["urls"])
        assert sorted(u["service"] for u in urls) == ["counter", "web"]
        assert environment_objects(kubesim, namespace, "preevy.dev/env-id=pr-5") != []
        expires = kubesim.kubectl(
            "get", "sts", "-n", namespace, "-l", "preevy.dev/env-id=pr-5",
            "-o", "jsonpath={.items[0].metadata.annotations.preevy\\.dev/expires-at}",
        ).stdout  # fmt: skip
        assert expires
        [comment] = forge.comments["octo/shop/5"]
        assert (
            comment["body"].startswith("<!-- preevy-env-id: pr-5 -->") and urls[0]["url"] in comment["body"]
        )
        assert "| web | 8080 |" in summary.read_text()

        run("preview", "pull_request", "synchronize")
        assert len(forge.comments["octo/shop/5"]) == 1

        run("cleanup", "pull_request", "closed")
        assert environment_objects(kubesim, namespace, "preevy.dev/env-id=pr-5") == []
        assert "deleted" in forge.comments["octo/shop/5"][0]["body"]
        run("cleanup", "pull_request", "closed")  # closed twice (re-run): --force, still fine

        run("gc", "schedule", None)


def run_gitlab_job(config: dict, name: str, environ: dict[str, str], cwd: pathlib.Path) -> None:
    job = config[name]
    base = config.get(job.get("extends", ""), {})
    variables = {**(config.get("variables") or {}), **(job.get("variables") or {})}
    lines = [*(base.get("before_script") or []), *(job.get("script") or [])]
    result = subprocess.run(
        ["sh", "-e", "-c", "\n".join(lines)],
        cwd=cwd,
        env=environ | {k: str(v) for k, v in variables.items()},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert TOKEN not in result.stdout + result.stderr
    assert result.returncode == 0, f"job {name}: {result.stdout}{result.stderr}"


def test_gitlab_recipe_review_app_with_dotenv_url_then_stop(kubesim, namespace, tmp_path):
    project = hello_project(tmp_path / "repository")
    build_zipapp(tmp_path / "download" / "kubectl-preevy", tmp_path / "zipapp-work")
    kubeconfig = tmp_path / "kubeconfig-variable"  # a File variable: GitLab gives its path
    shutil.copy(kubesim.env["KUBECONFIG"], kubeconfig)
    config = yaml.safe_load(GITLAB.read_text())
    with ForgeServer(TOKEN) as forge, _Downloads(tmp_path / "download") as url:
        environ = _base_env(kubesim, tmp_path) | {
            "GITLAB_CI": "true",
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_PROJECT_DIR": str(project),
            "CI_API_V4_URL": f"{forge.url}/api/v4",
            "CI_PROJECT_ID": "1234",
            "CI_MERGE_REQUEST_IID": "4",
            "PREEVY_GITLAB_TOKEN": TOKEN,
            "PREEVY_KUBECONFIG": str(kubeconfig),
            "PREEVY_NAMESPACE": namespace,
            "KUBECTL_PREEVY_URL": url,
        }
        run_gitlab_job(config, "review", environ, project)
        dotenv = dict(line.split("=", 1) for line in (project / "preevy.env").read_text().splitlines())
        assert dotenv["PREEVY_ENV_ID"] == "mr-4"
        assert dotenv["PREEVY_URL"].startswith("http://")
        [note] = forge.comments["1234/4"]
        assert (
            note["body"].startswith("<!-- preevy-env-id: mr-4 -->") and dotenv["PREEVY_URL"] in note["body"]
        )
        assert environment_objects(kubesim, namespace, "preevy.dev/env-id=mr-4") != []

        shutil.rmtree(project / ".preevy-bin")
        os.remove(project / "preevy.env")
        run_gitlab_job(config, "stop_review", environ, project)
        assert environment_objects(kubesim, namespace, "preevy.dev/env-id=mr-4") == []
        assert "deleted" in forge.comments["1234/4"][0]["body"]
        run_gitlab_job(config, "gc", environ | {"CI_PIPELINE_SOURCE": "schedule"}, project)
