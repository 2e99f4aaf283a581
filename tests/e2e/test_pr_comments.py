"""Pull/merge request comments and CI outputs: `up` and `down` against a local GitHub and GitLab API."""

import json

from tests.e2e import error_lines, hello_project, preevy, up_json
from tests.e2e.forge import ForgeServer

TOKEN = "ghp_secret-token-never-printed"
MARKER = "<!-- preevy-env-id: {} -->"


def test_github_comment_found_by_preevys_marker_updated_in_place_then_marked_deleted(
    kubesim, namespace, env, tmp_path
):
    project = hello_project(tmp_path / "hello")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "number": 7, "pull_request": {"number": 7}}))
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs.txt"
    with ForgeServer(TOKEN) as forge:
        thread = "octo/hello/7"
        for n in range(120):  # Preevy's own comment is on the second page
            forge.add(thread, f"review remark {n}")
        preevys = forge.add(thread, MARKER.format("pr-7") + "\nwritten by Preevy", user="github-actions")
        forge.add(thread, "a later remark")
        ci = env | {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "octo/hello",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_REF": "refs/pull/7/merge",
            "GITHUB_API_URL": forge.url,
            "GITHUB_TOKEN": TOKEN,
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_OUTPUT": str(outputs),
        }
        flags = ["-n", namespace, "--id", "pr-7", "--pr-comment", "always"]
        result = preevy("up", *flags, cwd=project, env=ci, timeout=180, check=True)
        assert TOKEN not in result.stdout + result.stderr
        assert len(forge.comments[thread]) == 122  # updated in place, nothing created
        assert preevys["body"].startswith(MARKER.format("pr-7"))
        assert "| web | 8080 | http://localhost:8080 |" in preevys["body"]
        assert "| counter | 8081 | http://localhost:8081 |" in preevys["body"]
        assert "| web | 8080 | http://localhost:8080 |" in summary.read_text()
        lines = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
        assert lines["env-id"] == "pr-7"
        assert sorted((r["service"], r["url"]) for r in json.loads(lines["urls"])) == [
            ("counter", "http://localhost:8081"),
            ("web", "http://localhost:8080"),
        ]
        assert ("PATCH", f"/repos/octo/hello/issues/comments/{preevys['id']}") in forge.requests

        preevy("up", *flags, cwd=project, env=ci, timeout=180, check=True)
        assert len(forge.comments[thread]) == 122
        assert [c["id"] for c in forge.comments[thread] if MARKER.format("pr-7") in c["body"]] == [
            preevys["id"]
        ]

        down = preevy("down", *flags, cwd=project, env=ci, timeout=180, check=True)
        assert TOKEN not in down.stdout + down.stderr
        assert "deleted" in preevys["body"] and "localhost" not in preevys["body"]
        assert preevys["body"].startswith(MARKER.format("pr-7"))
        assert not [m for m, _ in forge.requests if m == "POST"]


def test_gitlab_note_created_once_updated_then_marked_deleted_and_dotenv_written(
    kubesim, namespace, env, tmp_path
):
    project = hello_project(tmp_path / "hello")
    template = tmp_path / "comment.j2"
    template.write_text(
        "{% if deleted %}gone: {{ env_id }}{% else %}{% for u in urls %}{{ u.service }}={{ u.url }};{% endfor %}"
        "{% endif %}{{ ''.__class__ }}"
    )
    with ForgeServer(TOKEN) as forge:
        ci = env | {
            "GITLAB_CI": "true",
            "CI_API_V4_URL": f"{forge.url}/api/v4",
            "CI_PROJECT_ID": "group/hello",
            "CI_MERGE_REQUEST_IID": "3",
            "PREEVY_GITLAB_TOKEN": TOKEN,
        }
        flags = ["-n", namespace, "--id", "mr-3", "--pr-comment-template", str(template)]
        for n in range(105):  # more than one page of 100
            forge.add("group/hello/3", f"review note {n}")
        for _ in range(2):
            up_json(*flags, cwd=project, env=ci)
            notes = [c for c in forge.comments["group/hello/3"] if MARKER.format("mr-3") in c["body"]]
            assert len(notes) == 1 and len(forge.comments["group/hello/3"]) == 106
            assert notes[0]["body"] == (
                MARKER.format("mr-3") + "\ncounter=http://localhost:8081;web=http://localhost:8080;"
            )  # the sandbox gave nothing for ''.__class__
        assert (project / "preevy.env").read_text().splitlines() == [
            "PREEVY_ENV_ID=mr-3",
            "PREEVY_URL=http://localhost:8081",
            "PREEVY_URL_COUNTER_8081=http://localhost:8081",
            "PREEVY_URL_WEB_8080=http://localhost:8080",
        ]
        assert [m for m, _ in forge.requests].count("POST") == 1
        assert [m for m, _ in forge.requests].count("PUT") == 1
        preevy("down", *flags, cwd=project, env=ci, timeout=180, check=True)
        assert notes[0]["body"] == MARKER.format("mr-3") + "\ngone: mr-3"


def test_auto_skips_outside_a_pull_request_and_always_refuses_before_touching_the_cluster(
    kubesim, namespace, env, tmp_path
):
    project = hello_project(tmp_path / "hello")
    github_push = env | {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": "octo/hello",
        "GITHUB_REF": "refs/heads/main",
    }
    refused = preevy(
        "up", "-n", namespace, "--id", "push", "--pr-comment", "always", cwd=project, env=github_push
    )
    assert refused.returncode == 2
    assert error_lines(refused.stderr) == [
        "error: cannot comment on the pull request: not a GitHub pull/merge request job (nothing in "
        "GITHUB_EVENT_PATH / GITHUB_REF) (or pass --pr-comment auto to skip outside pull requests)"
    ]
    assert (
        kubesim.kubectl("get", "sts,cm", "-n", namespace, "-o", "name").stdout
        == "configmap/kube-root-ca.crt\n"
    )
    bad = tmp_path / "bad.j2"
    bad.write_text("{{ urls.pop() }}")
    unsafe = preevy(
        "up", "-n", namespace, "--id", "push", "--pr-comment-template", str(bad), cwd=project, env=github_push
    )
    assert unsafe.returncode == 2 and len(error_lines(unsafe.stderr)) == 1
    assert "does not render" in unsafe.stderr
    assert (
        kubesim.kubectl("get", "sts,cm", "-n", namespace, "-o", "name").stdout
        == "configmap/kube-root-ca.crt\n"
    )

    no_token = github_push | {"GITHUB_REF": "refs/pull/9/merge"}
    done = preevy("up", "-n", namespace, "--id", "push", cwd=project, env=no_token, timeout=180, check=True)
    assert "pull request comment skipped: no token: set GITHUB_TOKEN" in done.stderr
    # a developer's own down, outside any CI job: nothing said about comments
    local = preevy("down", "-n", namespace, "--id", "push", cwd=project, env=env, timeout=180, check=True)
    assert "pull request comment" not in local.stderr
