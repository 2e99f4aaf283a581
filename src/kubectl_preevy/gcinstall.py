"""The objects of `kubectl preevy install gc`: gc as a CronJob in the namespace, under its own minimal Role.

The Role holds exactly what `kubectl preevy gc --namespace NS` does with the bundled templates'
environments: list the docker-host StatefulSets, take the environment's lock (a ConfigMap), delete
the objects of the environment (StatefulSet, pods, claims, ConfigMaps, ServiceAccounts,
Role, RoleBinding), scale a StatefulSet to 0 and wait for its pod to go. No secrets, no exec, no
pod creation, nothing outside the namespace. A custom template with other
kinds needs those added to the Role (`install gc --dry-run` prints it).
"""

import copy
from typing import Any

from kubectl_preevy import __version__, naming

NAME = "preevy-gc"
DEFAULT_SCHEDULE = "*/30 * * * *"
# where the project's releases would publish the image (the project's home, setup.cfg `url`): build and
# push the Dockerfile's image to your registry and pass --image until then
DEFAULT_IMAGE = f"ghcr.io/kubectl-preevy/kubectl-preevy-gc:{__version__}"
COMPONENT = "gc"
DELETE_VERBS = ["get", "list", "watch", "delete"]

RULES: list[dict[str, Any]] = [
    {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": list(DELETE_VERBS)},
    {"apiGroups": ["apps"], "resources": ["statefulsets/scale"], "verbs": ["get", "patch", "update"]},
    {
        "apiGroups": [""],
        "resources": ["pods", "persistentvolumeclaims", "serviceaccounts"],
        "verbs": list(DELETE_VERBS),
    },
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": [*DELETE_VERBS, "create", "update"]},
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["roles", "rolebindings"],
        "verbs": list(DELETE_VERBS),
    },
]


def labels() -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "kubectl-preevy-gc",
        "app.kubernetes.io/component": COMPONENT,
        naming.LABEL_MANAGED_BY: naming.MANAGED_BY,
        "app.kubernetes.io/version": __version__,
    }


def objects(namespace: str, schedule: str, image: str) -> list[dict[str, Any]]:
    """ServiceAccount, Role, RoleBinding and CronJob, in that order (what the CronJob needs first)."""

    def metadata() -> dict[str, Any]:
        return {"name": NAME, "namespace": namespace, "labels": labels()}

    container = {
        "name": "gc",
        "image": image,
        "command": ["kubectl-preevy", "gc", "--namespace", namespace],
        "env": [{"name": "HOME", "value": "/tmp"}],  # kubectl's cache, the zipapp's unpacked copy
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata()},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": metadata(),
            "rules": copy.deepcopy(RULES),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": metadata(),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}],
        },
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": metadata(),
            "spec": {
                "schedule": schedule,
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 300,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {
                    "metadata": {"labels": labels()},
                    "spec": {
                        "backoffLimit": 1,
                        "activeDeadlineSeconds": 1800,
                        "ttlSecondsAfterFinished": 86400,
                        "template": {
                            "metadata": {"labels": labels()},
                            "spec": {
                                "serviceAccountName": NAME,
                                "restartPolicy": "Never",
                                "containers": [container],
                                "volumes": [{"name": "tmp", "emptyDir": {}}],
                            },
                        },
                    },
                },
            },
        },
    ]
