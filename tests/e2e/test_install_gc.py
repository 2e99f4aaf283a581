"""`kubectl preevy install gc`: the Job made from its CronJob runs gc in the cluster, as its own
ServiceAccount under its minimal Role, and deletes an expired environment (and only that one).

The emulator runs host programs for images: the gc image is mapped to a directory holding the
zipapp (not under /tmp: every pod has its own /tmp), so the Job runs it with the host's python3
and kubectl, in the pod's namespaces, reaching the API as the pod's ServiceAccount.
"""

import json
import shutil
import time
import uuid

import yaml

from tests.e2e import REPO_ROOT, environment_objects, hello_project, preevy, up_json
from tests.packaging.support import build_zipapp

IMAGE = "kubectl-preevy-gc:e2e"


def test_the_job_from_the_gc_cronjob_deletes_the_expired_environment_under_its_own_role(
    kubesim, namespace, env, tmp_path
):
    image_dir = REPO_ROOT / "build" / f"gc-image-{uuid.uuid4().hex[:8]}"
    try:
        build_zipapp(image_dir / "kubectl-preevy", tmp_path / "zipapp-work")
        kubesim.add_image(IMAGE, [str(image_dir)])
        project = hello_project(tmp_path / "hello")
        up_json("-n", namespace, "--id", "doomed", "--ttl", "1s", cwd=project, env=env)
        up_json("-n", namespace, "--id", "kept", "--ttl", "72h", cwd=project, env=env)

        dry = preevy("install", "gc", "-n", namespace, "--image", IMAGE, "--dry-run", cwd=tmp_path, env=env)
        assert [o["kind"] for o in yaml.safe_load_all(dry.stdout)] == [
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "CronJob",
        ]
        assert kubesim.kubectl("get", "cronjobs", "-n", namespace, "-o", "name").stdout == ""
        installed = preevy(
            "install", "gc", "-n", namespace, "--image", IMAGE, cwd=tmp_path, env=env, check=True
        )
        assert installed.stdout == "cronjob.batch/preevy-gc\n"
        cronjob = json.loads(
            kubesim.kubectl("get", "cronjob", "preevy-gc", "-n", namespace, "-o", "json").stdout
        )
        assert cronjob["spec"]["schedule"] == "*/30 * * * *"

        account = f"system:serviceaccount:{namespace}:preevy-gc"
        for verb, resource, where, allowed in (
            ("delete", "statefulsets.apps", namespace, "yes"),
            ("patch", "statefulsets.apps --subresource=scale", namespace, "yes"),  # sleep scales
            ("patch", "statefulsets.apps", namespace, "no"),  # gc labels nothing
            ("create", "configmaps", namespace, "yes"),
            ("get", "secrets", namespace, "no"),
            ("create", "pods", namespace, "no"),
            ("list", "statefulsets.apps", "default", "no"),
        ):
            answer = kubesim.kubectl(
                "auth", "can-i", verb, *resource.split(), "-n", where, "--as", account, check=False
            )
            assert answer.stdout.strip() == allowed, (verb, resource, where)

        # the gc pod passes Pod Security's `restricted` level (the environments' dind pods need privileged,
        # and run already: enforcement applies to new pods)
        kubesim.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
        time.sleep(1.5)  # `doomed` expires
        kubesim.kubectl("create", "job", "gc-now", "--from=cronjob/preevy-gc", "-n", namespace)
        done = kubesim.kubectl(
            "wait", "--for=condition=complete", "job/gc-now", "-n", namespace, "--timeout=150s",
            check=False, timeout=180,
        )  # fmt: skip
        logs = kubesim.kubectl("logs", "job/gc-now", "-n", namespace, check=False).stdout
        assert done.returncode == 0, logs
        pod = json.loads(
            kubesim.kubectl("get", "pods", "-n", namespace, "-l", "job-name=gc-now", "-o", "json").stdout
        )["items"][0]
        assert pod["spec"]["serviceAccountName"] == "preevy-gc"
        rows = [line.split() for line in logs.splitlines() if line.split()[:1] in (["ACTION"], ["deleted"])]
        assert len(rows) == 2, logs
        assert rows[0][:4] == ["ACTION", "ENV", "ID", "NAMESPACE"]
        assert rows[1][:3] == ["deleted", "doomed", namespace], logs
        assert environment_objects(kubesim, namespace, "preevy.dev/env-id=doomed") == []
        assert environment_objects(kubesim, namespace, "preevy.dev/env-id=kept") != []
        preevy("down", "-n", namespace, "--id", "kept", cwd=tmp_path, env=env, timeout=180, check=True)
    finally:
        shutil.rmtree(image_dir, ignore_errors=True)
