"""`kubectl preevy wake`: scale a sleeping environment back and restart its services (URLs unchanged)."""

import argparse

from kubectl_preevy import console, lifetime, lock, messages, sleepwake, urls
from kubectl_preevy.commands import shared


def run(args: argparse.Namespace) -> int:
    timeout = shared.parse_duration(args.timeout, "--timeout")
    current = shared.load_run(args, project="optional")
    env_id = shared.env_id(args, current)
    kubectl = current.kubectl
    with shared.sigterm_as_interrupt(), lock.held(kubectl, current.profile.id, env_id, "wake", timeout):
        env = shared.existing_environment(current, env_id)
        facts = lifetime.of(env.statefulset)
        if facts.state != lifetime.STATE_SLEEPING:
            console.info(messages.ALREADY_AWAKE.format(env_id=env_id))
        services = sleepwake.wake(kubectl, env, timeout, current.command_hint("down", env_id))
    # the rows the last `up` recorded (local or public URLs: the same ports are published again)
    recorded = [urls.ServiceUrl(r["service"], int(r.get("port") or 0), r["url"]) for r in facts.urls]
    service_urls = recorded or urls.service_urls(services)
    if args.output != "table":
        document = urls.environment_document(env_id, kubectl.namespace, env.name, service_urls)
        console.document(document, args.output)
    elif service_urls:
        console.result(urls.urls_table(service_urls))
        if not recorded or any(u.url.startswith("http://localhost:") for u in service_urls):
            console.info(messages.CONNECT_HINT.format(command=current.command_hint("connect", env_id)))
    return 0
