"""`kubectl preevy rbac`: the minimal Role (and RoleBinding, ServiceAccount) for a CI identity that runs
`up`, `down` and `connect` with the template, as YAML for `kubectl apply -f -`."""

import argparse
import os
from typing import Any

from kubectl_preevy import console, expose, naming, permissions, profiles, template
from kubectl_preevy.kubectl import Kubectl
from kubectl_preevy.options import resolve_options

PLACEHOLDER_ENV_ID = "rbac"
CLUSTER_READS_ROLE = "kubectl-preevy-cluster-reads"


def run(args: argparse.Namespace) -> int:
    # no compose project, and no profile saved: printing a Role changes nothing on this machine
    profile = profiles.load_profile(args, os.environ, save_default=False)
    options = resolve_options(args, None, None, profile, os.environ)
    namespace = Kubectl(
        options.kubeconfig, options.context, options.namespace, os.environ, options.connection
    ).namespace
    instance = naming.instance_name(profile.id, PLACEHOLDER_ENV_ID)
    objects = template.render_template(
        options, instance, template.template_labels(profile.id, instance), namespace=namespace
    ) + expose.routing_kinds(options)  # the Service and routes of --expose (from the profile)
    console.result(template.manifest_yaml(documents(args, namespace, permissions.required(objects))))
    return 0


def documents(
    args: argparse.Namespace, namespace: str, needed: list[permissions.Permission]
) -> list[dict[str, Any]]:
    """The Role; with subjects, its RoleBinding; with --service-account, the ServiceAccount first; with
    --cluster-reads, a ClusterRole and ClusterRoleBinding for the optional cluster-scoped reads."""
    subjects = _subjects(args, namespace)
    docs: list[dict[str, Any]] = []
    if args.service_account:
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": args.service_account, "namespace": namespace},
            }
        )
    namespaced = [p for p in needed if not p.cluster_scoped]
    docs.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": args.role_name, "namespace": namespace},
            "rules": permissions.role_rules(namespaced),
        }
    )
    if subjects:
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": args.role_name, "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": args.role_name},
                "subjects": subjects,
            }
        )
    if args.cluster_reads:
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": CLUSTER_READS_ROLE},
                "rules": permissions.role_rules(p for p in needed if p.cluster_scoped),
            }
        )
        if subjects:
            docs.append(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": f"{CLUSTER_READS_ROLE}-{namespace}-{args.role_name}"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": CLUSTER_READS_ROLE,
                    },
                    "subjects": subjects,
                }
            )
    return docs


def _subjects(args: argparse.Namespace, namespace: str) -> list[dict[str, Any]]:
    subjects: list[dict[str, Any]] = []
    if args.service_account:
        subjects.append({"kind": "ServiceAccount", "name": args.service_account, "namespace": namespace})
    subjects += [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u} for u in args.users or []
    ]
    subjects += [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in args.groups or []
    ]
    return subjects
