"""`kubectl preevy down`: delete every object of the environment, its volume included."""
from kubectl_preevy import console, environment, messages, urls
from kubectl_preevy.commands import shared
from kubectl_preevy.errors import ExitCode, PreevyError


def run(args) -> int:
    timeout = shared.parse_duration(args.timeout, "--timeout")
    current = shared.load_run(args, project="optional")
    env_id = shared.env_id(args, current)
    kubectl = current.kubectl
    with shared.sigterm_as_interrupt():
        # Objects already marked deleted are included: that is an interrupted `down` to finish.
        targets = {env.instance: env.types for env in environment.find(kubectl, current.profile.id, env_id,
                                                                       include_deleted=True)}
        if not targets:
            leftovers = environment.leftover_instances(kubectl, current.profile.id, env_id)
            targets = {instance: list(environment.LEFTOVER_TYPES) for instance in leftovers}
        if not targets:
            if args.force:
                return 0
            raise PreevyError(messages.UNKNOWN_ENVIRONMENT_DOWN.format(env_id=env_id, namespace=kubectl.namespace),
                              ExitCode.FAILURE)
        for instance, types in targets.items():
            console.step(messages.DELETING.format(instance=instance, namespace=kubectl.namespace))
            environment.delete(kubectl, instance, types, wait=args.wait, timeout_seconds=timeout)
    if args.output == "json":
        console.result(urls.to_json({"apiVersion": urls.API_VERSION, "kind": "DeletedEnvironment", "envId": env_id,
                                     "namespace": kubectl.namespace, "instances": sorted(targets)}))
    else:
        console.result(env_id)
    return 0
