"""`kubectl preevy connect`: every published port of the environment on 127.0.0.1, until Ctrl-C.

The published ports come from the running environment itself (the Docker server's containers,
read through a forward), so `connect --id ID` works without the project's compose files.
A forward that drops is started again, with back-off.
"""

import argparse
import time

from kubectl_preevy import console, docker, environment, messages, portforward, urls
from kubectl_preevy.commands import shared
from kubectl_preevy.commands.shared import Run
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.portforward import PortForward

POLL_SECONDS = 0.5
BACKOFF_SECONDS = (1, 2, 4, 8, 15, 30)
STABLE_SECONDS = 30  # a forward up this long resets the back-off


def run(args: argparse.Namespace) -> int:
    current = shared.load_run(args, project="optional")
    env_id = shared.env_id(args, current)
    kubectl = current.kubectl
    with shared.sigterm_as_interrupt():
        try:
            env = shared.existing_environment(current, env_id, awake=True)
            pod = environment.ready_pod(kubectl, env, current.command_hint("up", env_id))
            published = _published_ports(current, pod)
            local_ports = portforward.local_ports_for(sorted({p.published for p in published}))
            forward = PortForward(kubectl, pod, [(local, remote) for remote, local in local_ports.items()])
            try:
                forward.start()
                _report(args, env_id, current, env, urls.service_urls(published, local_ports))
                _keep_alive(forward, current, env)
            finally:
                forward.stop()
        except KeyboardInterrupt:
            console.info(messages.CONNECT_STOPPED)
    return 0


def _published_ports(current: Run, pod: str) -> list[docker.PublishedPort]:
    with docker.forward(current.kubectl, pod) as docker_forward:
        published = docker.published_ports(
            docker_forward.local_ports[docker.DOCKER_PORT], current.project.name if current.project else None
        )
    if not published:
        from kubectl_preevy import expose

        targets = expose.compose_targets(current.project.model) if current.project else []
        refused = [f"{t.service}: {t.reason}" for t in targets if t.reason]
        if refused:  # ports exist, but no forward can carry them: "add ports:" would be false advice
            raise PreevyError(
                messages.NOTHING_TO_CONNECT_ROUTABLE.format(why="; ".join(refused)), ExitCode.FAILURE
            )
        raise PreevyError(messages.NOTHING_TO_CONNECT, ExitCode.FAILURE)
    return published


def _report(
    args: argparse.Namespace,
    env_id: str,
    current: Run,
    env: environment.Environment,
    service_urls: list[urls.ServiceUrl],
) -> None:
    if args.output != "table":
        console.document(
            urls.environment_document(
                env_id, current.kubectl.namespace, env.name, service_urls, instance=env.instance
            ),
            args.output,
        )
    else:
        console.result(urls.urls_table(service_urls))
    console.info(messages.CONNECTED)


def _keep_alive(forward: PortForward, current: Run, env: environment.Environment) -> None:
    """Forever: when kubectl exits (`lost connection to pod`), start it again on the same local ports."""
    failures = 0
    started_at = time.monotonic()
    while True:
        time.sleep(POLL_SECONDS)
        if forward.running:
            continue
        if time.monotonic() - started_at > STABLE_SECONDS:
            failures = 0
        delay = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)]
        console.warn(
            messages.FORWARD_LOST.format(error=forward.last_error or "kubectl exited", seconds=delay)
        )
        time.sleep(delay)
        failures += 1
        try:
            forward.pod = environment.ready_pod(current.kubectl, env)  # the pod may have been replaced
            forward.start()
        except PreevyError as err:
            console.warn(err.message)
            continue
        started_at = time.monotonic()
        console.info(messages.FORWARD_RESTORED)
