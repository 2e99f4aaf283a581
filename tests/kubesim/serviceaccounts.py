"""The ServiceAccount admission plugin (API half), as kube-apiserver 1.32 mutates a new pod.

Unless `automountServiceAccountToken: false` (pod, else its ServiceAccount), the pod gets the
projected volume `kube-api-access-<5 random>` (a bound token with expirationSeconds 3607, the
`kube-root-ca.crt` ConfigMap's ca.crt, the namespace from the downward API) mounted read-only at
/var/run/secrets/kubernetes.io/serviceaccount in every container and init container that does
not mount something there already. The kubelet writes a real token (authn.Tokens) bound to the
pod. Not modelled: refusing a pod whose ServiceAccount does not exist (the kubelet then reports
FailedMount until it does).
"""

from __future__ import annotations

import random
import string

MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
TOKEN_SECONDS = 3607


def _suffix() -> str:
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(5))


def admit_pod(store, pod: dict) -> None:
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    namespace = pod.get("metadata", {}).get("namespace", "")
    account = spec.get("serviceAccountName") or "default"
    automount = spec.get("automountServiceAccountToken")
    if automount is None:
        sa = store.get("serviceaccounts", namespace, account)
        automount = (sa or {}).get("automountServiceAccountToken", True)
    if automount is False:
        return
    containers = [
        c for f in ("initContainers", "containers") for c in spec.get(f) or [] if isinstance(c, dict)
    ]
    if all(any(m.get("mountPath") == MOUNT_PATH for m in c.get("volumeMounts") or []) for c in containers):
        return
    name = VOLUME_PREFIX + _suffix()
    spec.setdefault("volumes", []).append(
        {
            "name": name,
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": TOKEN_SECONDS, "path": "token"}},
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                }
                            ]
                        }
                    },
                ],
            },
        }
    )
    for c in containers:
        mounts = c.setdefault("volumeMounts", [])
        if not any(m.get("mountPath") == MOUNT_PATH for m in mounts):
            mounts.append({"name": name, "readOnly": True, "mountPath": MOUNT_PATH})
