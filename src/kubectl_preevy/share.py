"""Private access to one environment without exposing anything: a ServiceAccount whose Role allows
only `get` on the docker-host StatefulSet and its pod and `pods/portforward` of that pod, and a
kubeconfig with a time-bound token (TokenRequest) for it.

The reviewer cannot list anything, so the kubeconfig's context carries the environment
(an extension `preevy.dev/environment`: env id, StatefulSet, pod) and `connect --id` uses it to
get those objects by name instead of finding them by labels.
"""

import copy
import datetime
import json
from typing import Any

from kubectl_preevy import environment, expose, naming, template
from kubectl_preevy.environment import Environment
from kubectl_preevy.kubectl import Kubectl

COMPONENT = "preview-share"  # app.kubernetes.io/component of the share objects
EXTENSION = "preevy.dev/environment"
TYPES = [
    {"apiVersion": "v1", "kind": "ServiceAccount"},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role"},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding"},
]


def share_name(instance: str) -> str:
    return naming.truncate_with_hash(f"{instance}-share", naming.MAX_NAME_LENGTH).lower()


def objects(env: Environment, pod: str) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding `<instance>-share`, labelled like the environment's objects."""
    name, namespace = share_name(env.instance), env.namespace
    role: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": [
            {
                "apiGroups": ["apps"],
                "resources": ["statefulsets"],
                "resourceNames": [env.name],
                "verbs": ["get"],
            },
            {"apiGroups": [""], "resources": ["pods"], "resourceNames": [pod], "verbs": ["get"]},
            # the routing Service's URL table, for `kubectl preevy urls` (see expose.py)
            {
                "apiGroups": [""],
                "resources": ["services"],
                "resourceNames": [expose.service_name(env.instance)],
                "verbs": ["get"],
            },
            # create: the apiserver allows kubectl's WebSocket port-forward (a GET) to whoever may
            # create the SPDY one, so `get` is not needed
            {
                "apiGroups": [""],
                "resources": ["pods/portforward"],
                "resourceNames": [pod],
                "verbs": ["create"],
            },
        ],
    }
    found: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}},
        role,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]
    labels = env.statefulset["metadata"].get("labels") or {}
    annotations = env.statefulset["metadata"].get("annotations") or {}
    for index, obj in enumerate(found):
        template.add_object_metadata(
            obj,
            index,
            profile_id=labels.get(naming.LABEL_PROFILE_ID, ""),
            env_id=env.env_id,
            instance=env.instance,
            created_at=annotations.get(naming.ANNOTATION_CREATED_AT, ""),
            template_hash=annotations.get(naming.ANNOTATION_TEMPLATE_HASH, ""),
        )
        obj["metadata"]["labels"][naming.LABEL_COMPONENT] = COMPONENT
    return found


def declare_types(kubectl: Kubectl, env: Environment) -> None:
    """Adds the share kinds to the StatefulSet's preevy.dev/all-types (when a custom template lacks
    them), so that `down` deletes the share objects."""
    annotations = env.statefulset["metadata"].get("annotations") or {}
    try:
        declared = json.loads(annotations.get(naming.ANNOTATION_ALL_TYPES, "[]"))
    except json.JSONDecodeError:
        declared = []
    missing = [t for t in TYPES if t not in declared]
    if missing:
        kubectl.check(
            "annotate",
            "statefulsets.apps",
            env.name,
            f"{naming.ANNOTATION_ALL_TYPES}={json.dumps(declared + missing, separators=(',', ':'))}",
            "--overwrite",
        )


def declared_types(env: Environment | None) -> list[dict[str, Any]]:
    """The share kinds the environment declares (kept by the next `up`, so `down` still removes them)."""
    if env is None:
        return []
    try:
        declared = json.loads(
            (env.statefulset["metadata"].get("annotations") or {}).get(naming.ANNOTATION_ALL_TYPES, "[]")
        )
    except json.JSONDecodeError:
        return []
    return [t for t in TYPES if t in declared]


def token(kubectl: Kubectl, service_account: str, ttl_seconds: float) -> str:
    """A TokenRequest token of the ServiceAccount, valid for ttl_seconds."""
    return kubectl.check("create", "token", service_account, f"--duration={int(ttl_seconds)}s").stdout.strip()


def kubeconfig(
    kubectl: Kubectl, env: Environment, pod: str, bearer: str, ttl_seconds: float
) -> dict[str, Any]:
    """A kubeconfig with the current context's cluster (CA inlined), the token, and the environment."""
    current = json.loads(
        kubectl.check("config", "view", "--minify", "--raw", "--flatten", "-o", "json").stdout
    )
    cluster = copy.deepcopy(current["clusters"][0])
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=ttl_seconds)
    user = f"preevy-share-{env.env_id}"
    context = f"preevy-{env.env_id}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": bearer}}],
        "contexts": [
            {
                "name": context,
                "context": {
                    "cluster": cluster["name"],
                    "user": user,
                    "namespace": env.namespace,
                    "extensions": [
                        {
                            "name": EXTENSION,
                            "extension": {
                                "envId": env.env_id,
                                "statefulSet": env.name,
                                "pod": pod,
                                "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            },
                        }
                    ],
                },
            }
        ],
        "current-context": context,
        "preferences": {},
    }


def shared_environment(kubectl: Kubectl, env_id: str) -> Environment | None:
    """The environment a share kubeconfig names (its context's extension), got by name; None when
    the current context is not a share of env_id."""
    result = kubectl.run("config", "view", "--minify", "-o", "json")
    if not result.ok:
        return None
    try:
        contexts = json.loads(result.stdout).get("contexts") or []
    except json.JSONDecodeError:
        return None
    for ctx in contexts:
        for ext in (ctx.get("context") or {}).get("extensions") or []:
            info = ext.get("extension") or {}
            if ext.get("name") == EXTENSION and info.get("envId") == env_id and info.get("statefulSet"):
                return environment.Environment(kubectl.json("statefulsets.apps", info["statefulSet"]))
    return None
