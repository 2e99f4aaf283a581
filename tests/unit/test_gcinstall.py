"""The objects of `install gc`: what the CronJob runs and the Role it runs under."""

from kubectl_preevy import gcinstall


def test_objects_run_gc_in_the_namespace_under_a_role_without_secrets_or_exec():
    sa, role, binding, cronjob = gcinstall.objects("previews", "@hourly", "reg.example/gc:1")
    assert [o["kind"] for o in (sa, role, binding, cronjob)] == [
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "CronJob",
    ]
    assert all(o["metadata"]["namespace"] == "previews" for o in (sa, role, binding, cronjob))
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert "secrets" not in resources and "pods/exec" not in resources
    assert not any(
        "create" in rule["verbs"] and rule["resources"] != ["configmaps"] for rule in role["rules"]
    )
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "preevy-gc", "namespace": "previews"}]
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["concurrencyPolicy"]) == ("@hourly", "Forbid")
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "preevy-gc" and pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["command"] == ["kubectl-preevy", "gc", "--namespace", "previews"]
    assert pod["containers"][0]["image"] == "reg.example/gc:1"
