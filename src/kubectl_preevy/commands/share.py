"""`kubectl preevy share`: a kubeconfig that lets a reviewer `connect` to one environment and do
nothing else, valid for --ttl (the token expires by itself; `down` removes the ServiceAccount)."""

import argparse

import yaml

from kubectl_preevy import console, environment, messages, share, template
from kubectl_preevy.commands import shared


def run(args: argparse.Namespace) -> int:
    ttl = shared.parse_duration(args.token_ttl, "--ttl")
    current = shared.load_run(args, project="optional")
    env_id = shared.env_id(args, current)
    kubectl = current.kubectl
    with shared.sigterm_as_interrupt():
        env = shared.existing_environment(current, env_id)
        pod = environment.ready_pod(kubectl, env)
        found = share.objects(env, pod)
        environment.apply(
            kubectl, template.manifest_yaml(found), server_side=current.options.server_side_apply, new=False
        )
        share.declare_types(kubectl, env)
        token = share.token(kubectl, share.share_name(env.instance), ttl)
        config = share.kubeconfig(kubectl, env, pod, token, ttl)
    console.result(yaml.safe_dump(config, sort_keys=False).rstrip("\n"))
    console.info(
        messages.SHARED.format(
            env_id=env_id,
            ttl=args.token_ttl,
            pod=pod,
            command=f"KUBECONFIG=FILE kubectl preevy connect --id {env_id}",
        )
    )
    return 0
