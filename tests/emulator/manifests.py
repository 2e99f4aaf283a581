"""Manifests shared by the emulator tests (containers run host programs: sleep)."""


def statefulset(
    name: str = "demo",
    replicas: int = 1,
    app: str = "demo",
    claim: str = "data",
    annotation: str | None = None,
) -> str:
    ann = f'\n      annotations: {{rev: "{annotation}"}}' if annotation else ""
    return f"""apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {name}
  labels: {{app: {app}}}
spec:
  serviceName: {name}
  replicas: {replicas}
  selector:
    matchLabels: {{app: {app}}}
  template:
    metadata:
      labels: {{app: {app}}}{ann}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: main
        image: busybox:1.36
        command: ["sleep", "3600"]
        volumeMounts:
        - {{name: {claim}, mountPath: /data}}
  volumeClaimTemplates:
  - metadata:
      name: {claim}
      labels: {{tier: storage}}
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests: {{storage: 1Gi}}
"""


def bundle(app: str = "demo", replicas: int = 1, annotation: str | None = None) -> str:
    """ServiceAccount, ConfigMap, StatefulSet (with volumeClaimTemplates), Role, RoleBinding."""
    return f"""apiVersion: v1
kind: ServiceAccount
metadata:
  name: {app}
  labels: {{app: {app}}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {app}
  labels: {{app: {app}}}
data:
  key: value
---
{statefulset(app, replicas, app, annotation=annotation)}---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {app}
  labels: {{app: {app}}}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {app}
  labels: {{app: {app}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {app}}}
subjects:
- {{kind: ServiceAccount, name: {app}}}
"""


def configmap(name: str, labels: dict | None = None, data: dict | None = None) -> str:
    import json

    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels or {}},
            "data": data or {},
        }
    )
