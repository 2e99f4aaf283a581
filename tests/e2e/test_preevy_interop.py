"""Environments both tools share: one made with Preevy's default template (the `preevy` variant renders it
object for object) keeps its template hash and its volume when kubectl-preevy updates it; with duplicates
of one id, the newest is acted on, with a warning."""

import copy
import json

from kubectl_preevy import template
from tests.e2e import REPO_ROOT, hello_project, preevy, remote, up_json
from tests.unit.test_template import opts as unit_options

ENV_ID = "interop"
HASH = "preevy.dev/template-hash"


def statefulset(kubesim, namespace: str, name: str) -> dict:
    return json.loads(kubesim.kubectl("get", "statefulset", name, "-n", namespace, "-o", "json").stdout)


def preevys_hash(namespace: str, instance: str) -> str:
    """The hash Preevy computes for its default template with these arguments."""
    opts = unit_options(None, namespace=namespace)
    labels = template.template_labels("default", instance)
    return template.render_template(opts, instance, labels, variant="preevy").template_hash


def test_an_environment_made_with_preevys_template_keeps_its_hash_and_volume(
    kubesim, namespace, env, tmp_path
):
    project = hello_project(tmp_path / "hello")
    preevy_template = tmp_path / "preevy.yaml.njk"
    printed = preevy("template", "--variant", "preevy", cwd=tmp_path, env=env, check=True).stdout
    preevy_template.write_text(printed)
    assert printed == (REPO_ROOT / "templates" / "preevy.yaml.njk").read_text()
    flags = ["-n", namespace, "--id", ENV_ID]

    first = up_json(*flags, "--kube-pod-template", str(preevy_template), cwd=project, env=env)
    name = first["statefulSet"]
    created = statefulset(kubesim, namespace, name)
    preevy_hash = created["metadata"]["annotations"][HASH]
    assert preevy_hash == preevys_hash(namespace, name)
    claim_uid = kubesim.kubectl(
        "get", "pvc", f"data-{name}-0", "-n", namespace, "-o", "jsonpath={.metadata.uid}"
    ).stdout
    remote(kubesim, namespace, f"{name}-0", "sh", "-c", "echo kept > /var/lib/preevy/marker")

    updated = preevy("up", *flags, "--timeout", "60s", cwd=project, env=env, check=True, timeout=180)
    assert f"environment {ENV_ID} was made by Preevy with its default template" in updated.stderr
    after = statefulset(kubesim, namespace, name)
    assert after["metadata"]["annotations"][HASH] == preevy_hash
    assert after["metadata"]["uid"] == created["metadata"]["uid"]
    container = after["spec"]["template"]["spec"]["containers"][0]
    assert "readinessProbe" not in container and not container.get("resources")
    assert (
        kubesim.kubectl(
            "get", "pvc", f"data-{name}-0", "-n", namespace, "-o", "jsonpath={.metadata.uid}"
        ).stdout
        == claim_uid
    )
    assert remote(kubesim, namespace, f"{name}-0", "cat", "/var/lib/preevy/marker").stdout == "kept\n"

    # A duplicate of the same id, newer (as two concurrent `preevy up` leave): the newest is acted on.
    duplicate = copy.deepcopy(after)
    instance = name[:-5] + "zzzzz"
    metadata = duplicate["metadata"]
    for field in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"):
        metadata.pop(field, None)
    duplicate.pop("status", None)
    metadata["name"] = instance
    metadata["labels"]["preevy.dev/instance"] = metadata["labels"]["app.kubernetes.io/instance"] = instance
    metadata["annotations"]["preevy.dev/created-at"] = "2099-01-01T00:00:00.000Z"
    for labels in (
        duplicate["spec"]["selector"]["matchLabels"],
        duplicate["spec"]["template"]["metadata"]["labels"],
        duplicate["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"],
    ):
        labels["preevy.dev/instance"] = instance
    kubesim.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(duplicate))
    status = preevy("status", *flags, "-o", "json", cwd=tmp_path, env=env, check=True)
    assert json.loads(status.stdout)["instance"] == instance
    assert f"acting on the newest, {instance} (as Preevy does)" in status.stderr

    down = preevy("down", *flags, "-o", "json", cwd=tmp_path, env=env, check=True, timeout=180)
    assert json.loads(down.stdout)["instances"] == sorted([name, instance])
