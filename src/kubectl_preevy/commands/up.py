"""`kubectl preevy up`: create or update the environment, copy the files, start every service."""

import argparse
import datetime
import hashlib
import json
import os
import pathlib
import tempfile
from typing import Any

from kubectl_preevy import (
    cioutputs,
    compose,
    console,
    docker,
    environment,
    expose,
    filesync,
    lifetime,
    lock,
    messages,
    naming,
    prcomment,
    preflight,
    remote,
    resources,
    share,
    sleepwake,
    template,
    urls,
)
from kubectl_preevy.commands import shared
from kubectl_preevy.commands.shared import Run
from kubectl_preevy.environment import Environment
from kubectl_preevy.errors import PreevyError


def run(args: argparse.Namespace) -> int:
    timeout = shared.parse_duration(args.timeout, "--timeout")
    current = shared.load_run(args, project="required")
    project = current.project
    assert project is not None  # project="required"
    # what would travel is checked before the cluster is asked anything
    compose.check_sources(project, args.copy_outside, pathlib.Path.cwd())
    env_id = shared.env_id(args, current)
    comment_template = prcomment.checked_template(
        args.pr_comment, args.pr_comment_template, env_id, os.environ
    )
    host_paths = compose.host_bind_sources(project)
    if host_paths:
        console.info(messages.HOST_PATHS_KEPT.format(paths=", ".join(host_paths)))
    with shared.sigterm_as_interrupt():
        if args.dry_run:
            current.kubectl.namespace_exists()
            exposure = expose.resolve(current.kubectl, current.options)
            _with_base_uris(args, current, exposure, env_id)
            _dry_run(current, env_id, exposure)
            _dry_run_urls(current, exposure, env_id)
            return 0
        # a template that does not render or validate, or that the cluster would refuse, fails before the lock
        preflight.require(
            current.kubectl,
            rendered_objects(current, env_id),
            existing=lambda: bool(environment.find(current.kubectl, current.profile.id, env_id)),
            storage_class=current.options.storage_class,
            command="up --recreate" if args.recreate else "up",
            also=("down",) if args.recreate else (),  # it may delete the environment
        )
        exposure = expose.resolve(current.kubectl, current.options)  # refusals before any write
        base_uris = _with_base_uris(args, current, exposure, env_id)
        with lock.held(current.kubectl, current.profile.id, env_id, "up", timeout):
            existing = _existing(current, env_id)
            if existing and lifetime.of(existing.statefulset).state == lifetime.STATE_SLEEPING:
                sleepwake.scale_up(current.kubectl, existing)
            applied_at = datetime.datetime.now(datetime.timezone.utc)
            env = _apply(
                current,
                env_id,
                existing,
                _objects(current, env_id, existing, exposure),
                recreate=args.recreate,
                timeout=timeout,
                exposure=exposure,
            )
            console.step(messages.WAITING_READY.format(name=env.name))
            environment.wait_ready(
                current.kubectl, env_id, env.name, timeout, current.command_hint("down", env_id), applied_at
            )
            services, stats = _deploy(current, env, base_uris)
            public = _route(current, env, env_id, exposure, services, existing, timeout)
            document = _report(args, current, env_id, env, services, stats, public)
            rows = document["services"]
            _record_urls(current, env, rows)
    cioutputs.write(os.environ, env_id, rows, pathlib.Path.cwd())
    prcomment.comment(
        args.pr_comment,
        os.environ,
        env_id=env_id,
        namespace=current.kubectl.namespace,
        urls=rows,
        deleted=False,
        template=comment_template,
    )
    return 0


def _with_base_uris(
    args: argparse.Namespace, current: Run, exposure: expose.Exposure | None, env_id: str
) -> dict[str, str]:
    """PREEVY_BASE_URI_* of the public URLs; the compose model is read again with them, so that
    `${PREEVY_BASE_URI_API_3000}` is interpolated as Preevy does (in the compose files, `.env`,
    `env_file`s: wherever compose interpolates)."""
    project = _project(current)
    base_uris = expose.base_uri_environment(exposure, project.model, env_id)
    if base_uris:
        current.project = compose.load_project(
            getattr(args, "files", None),
            getattr(args, "project", None),
            pathlib.Path.cwd(),
            {**os.environ, **base_uris},
        )
    return base_uris


def _project(current: Run) -> compose.ComposeProject:
    assert current.project is not None, "up always loads the compose project"
    return current.project


def _dry_run_urls(current: Run, exposure: expose.Exposure | None, env_id: str) -> None:
    if exposure is None:
        return
    targets = expose.compose_targets(_project(current).model)
    rows = [
        expose.Row(
            t.service,
            t.port,
            exposure.url(t.service, t.port, env_id) if t.reason is None and t.port is not None else None,
            t.reason,
        )
        for t in targets
    ]
    console.info(messages.EXPOSE_DRY_RUN_URLS)
    console.info(urls.urls_table(urls.public_urls(rows)))


def _route(
    current: Run,
    env: Environment,
    env_id: str,
    exposure: expose.Exposure | None,
    services: list[docker.PublishedPort],
    existing: Environment | None,
    timeout: float,
) -> list[expose.Row] | None:
    """The Service and routes of the published ports applied (stale ones removed), and accepted."""
    kubectl = current.kubectl
    resources = expose.resource_names(exposure, existing.types if existing else [])
    if exposure is None:
        expose.remove_stale(kubectl, env.instance, [], resources)
        return None
    targets = expose.compose_targets(_project(current).model)
    objects = expose.build_objects(
        exposure, statefulset=env.statefulset, env_id=env_id, published=services, targets=targets
    )
    environment.apply(
        kubectl, template.manifest_yaml(objects), server_side=current.options.server_side_apply, new=False
    )
    expose.remove_stale(kubectl, env.instance, objects, resources)
    expose.wait_accepted(kubectl, exposure, objects, timeout, current.command_hint("down", env_id))
    return expose.rows(exposure, env_id, services, targets)


def _record_urls(current: Run, env: Environment, rows: list[dict[str, Any]]) -> None:
    """The URL rows of the environment document on the StatefulSet, for `ls` (whatever kind of URL)."""
    current.kubectl.check(
        "annotate",
        f"statefulset/{env.name}",
        f"{lifetime.ANNOTATION_URLS}={lifetime.urls_annotation(rows)}",
        "--overwrite",
    )


def _existing(current: Run, env_id: str) -> Environment | None:
    return environment.newest(environment.find(current.kubectl, current.profile.id, env_id), env_id)


def rendered_objects(current: Run, env_id: str) -> list[dict[str, Any]]:
    """The objects of a new environment, for the checks (doctor, before `up`): its instance name is a
    stand-in that asks the cluster nothing (no permission is needed to find it)."""
    instance = naming.instance_name(current.profile.id, env_id)
    return _objects(current, env_id, None, None, instance=instance) + expose.routing_kinds(current.options)


def _dry_run(current: Run, env_id: str, exposure: expose.Exposure | None) -> None:
    """The objects `up` would apply, after the files it would copy (as YAML comments, so the output
    stays a manifest): compared with the running pod's when there is one, else all of them."""
    project = current.project
    assert project is not None
    existing = _existing(current, env_id)
    objects = _objects(current, env_id, existing, exposure)
    shell: filesync.Shell | None = None
    where = messages.DRY_RUN_NEW_POD
    if existing is not None:
        try:
            pod = environment.ready_pod(current.kubectl, existing)
            shell, where = filesync.PodShell(current.kubectl, pod, existing.first_container), pod
        except PreevyError:
            pass  # not running: compared with nothing, as a new pod
    sync_plan, local = filesync.preview(shell, project)
    console.result(_copy_listing(sync_plan, local, where, project.remote_dir))
    console.result(template.manifest_yaml(objects))


def _copy_listing(
    sync_plan: filesync.SyncPlan, local: dict[str, filesync.Entry], where: str, remote_dir: str
) -> str:
    files = [p for p in sync_plan.send if local[p].kind != "dir"]
    size = sum(local[p].size for p in files if local[p].kind == "file")
    summary = messages.DRY_RUN_COPY.format(
        files=len(files),
        size=filesync.human_size(size),
        size_bytes=size,
        where=where,
        directory=remote_dir,
        unchanged=sync_plan.unchanged,
        deleted=len(sync_plan.delete_files),
    )
    console.info(summary)
    lines = [f"# {summary}"]
    lines += [f"#   copy {p} ({local[p].size} B)" for p in files]
    lines += [f"#   delete {p}" for p in sync_plan.delete_files]
    lines += [f"#   keep the pod's {p}" for p in sync_plan.kept]
    return "\n".join(lines)


def _new_instance(current: Run, env_id: str, avoid: frozenset[str] = frozenset()) -> str:
    """The instance name of a new environment: Preevy's `<profile>-<env>-<5 chars>`, the suffix
    derived from the environment (so `up --dry-run` shows the name `up` will use), skipping names
    that objects still carry (a `down --no-wait` in progress, or the instance being recreated)."""
    taken = set(avoid) | {
        e.instance for e in environment.find(current.kubectl, current.profile.id, env_id, True)
    }
    taken |= set(environment.leftover_instances(current.kubectl, current.profile.id, env_id))
    for attempt in range(100):
        seed = f"{current.profile.id}\0{env_id}\0{current.kubectl.namespace}\0{attempt}"
        number = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")
        suffix = ""
        for _ in range(naming.INSTANCE_SUFFIX_LENGTH):
            number, digit = divmod(number, len(naming.LOWERCASE_NUMERIC))
            suffix += naming.LOWERCASE_NUMERIC[digit]
        name = naming.instance_name(current.profile.id, env_id, suffix)
        if name not in taken:
            return name
    return naming.instance_name(current.profile.id, env_id)


def _objects(
    current: Run,
    env_id: str,
    existing: Environment | None,
    exposure: expose.Exposure | None,
    avoid: frozenset[str] = frozenset(),
    instance: str | None = None,
) -> list[dict[str, Any]]:
    """The template's objects with Preevy's metadata; the instance name and creation time of the
    existing environment are kept, so an unchanged environment applies as a no-op. An environment
    Preevy made with its default template is updated with the `preevy` variant, so that its template
    hash, and Preevy's next `up` of it, stay as they were."""
    instance = instance or (existing.instance if existing else _new_instance(current, env_id, avoid))
    created_at = existing.created_at if existing else datetime.datetime.now(datetime.timezone.utc)

    def render(variant: str) -> template.TemplateObjects:
        return template.render_template(
            current.options,
            instance,
            template.template_labels(current.profile.id, instance),
            namespace=current.kubectl.namespace,
            variant=variant,
        )

    rendered = render("default")
    if existing and current.options.template is None and existing.template_hash != rendered.template_hash:
        preevys = render(resources.PREEVY_VARIANT)
        if existing.template_hash == preevys.template_hash:
            console.info(messages.PREEVY_TEMPLATE_KEPT.format(env_id=env_id))
            rendered = preevys
    objects = template.add_environment_metadata(
        rendered,
        profile_id=current.profile.id,
        env_id=env_id,
        instance=instance,
        created_at=created_at,
        extra_types=[*(exposure.types if exposure else []), *share.declared_types(existing)],
    )
    project = current.project.name if current.project else ""
    annotations = lifetime.up_annotations(
        lifetime.now(), current.options.ttl, current.options.sleep_after, project
    )
    template.docker_host_statefulset(objects)["metadata"]["annotations"].update(annotations)
    return objects


def _apply(
    current: Run,
    env_id: str,
    existing: Environment | None,
    objects: list[dict[str, Any]],
    *,
    recreate: bool,
    timeout: float,
    exposure: expose.Exposure | None,
) -> Environment:
    kubectl = current.kubectl
    verb = messages.UPDATING if existing else messages.CREATING
    console.step(verb.format(env_id=env_id, namespace=kubectl.namespace))
    try:
        environment.apply(
            kubectl,
            template.manifest_yaml(objects),
            server_side=current.options.server_side_apply,
            new=existing is None,
        )
    except environment.ImmutableChange:
        if not recreate or existing is None:
            raise
        console.step(messages.RECREATING.format(instance=existing.instance))
        environment.delete(kubectl, existing.instance, existing.types, wait=True, timeout_seconds=timeout)
        objects = _objects(current, env_id, None, exposure, avoid=frozenset({existing.instance}))
        environment.apply(
            kubectl, template.manifest_yaml(objects), server_side=current.options.server_side_apply, new=True
        )
    return Environment(template.docker_host_statefulset(objects))


def _deploy(
    current: Run, env: Environment, base_uris: dict[str, str]
) -> tuple[list[docker.PublishedPort], filesync.SyncStats]:
    """Through a forward to the pod's Docker server: copy the files, `docker compose up`, read the ports."""
    project, kubectl = current.project, current.kubectl
    assert project is not None, "up always loads the compose project"
    pod = environment.ready_pod(kubectl, env)
    with docker.forward(kubectl, pod) as docker_forward:
        port = docker_forward.local_ports[docker.DOCKER_PORT]
        console.step(messages.SYNCING.format(pod=pod, directory=project.remote_dir))
        stats = filesync.sync(kubectl, pod, env.first_container, project)
        console.info(stats.summary())
        model = compose.remote_model(project)
        agents = docker.preevy_agents(docker.containers(port, project.name), set(model.get("services") or {}))
        if agents:
            console.info(messages.PREEVY_AGENT_KEPT.format(containers=", ".join(agents)))
        # kept in the pod before the services start (for day two and `wake`), with Preevy's agent if it runs
        stored = _with_kept_agent(current, env, pod, project.name, model) if agents else model
        _store_model(current, env, pod, project.name, stored)
        console.step(messages.COMPOSE_UP.format(project=project.name))
        with tempfile.NamedTemporaryFile("w", prefix=f"preevy-{project.name}-", suffix=".json") as model_file:
            json.dump(model, model_file)
            model_file.flush()
            docker.compose_up(
                project.name,
                model_file.name,
                str(project.working_dir),
                {**os.environ, **base_uris},
                port,
                remove_orphans=not agents,
            )
        return docker.published_ports(port, project.name), stats


def _with_kept_agent(
    current: Run, env: Environment, pod: str, project: str, model: dict[str, Any]
) -> dict[str, Any]:
    """The model plus Preevy's agent service from the model stored before (Preevy's), so that Preevy's
    commands still see its agent in the project."""
    try:
        stored = remote.load(current.kubectl, pod, env.first_container, project, "")
    except PreevyError:
        return model
    services = dict(model.get("services") or {})
    agent = (stored.model.get("services") or {}).get(docker.PREEVY_AGENT_SERVICE)
    if agent is not None:
        services.setdefault(docker.PREEVY_AGENT_SERVICE, agent)
    return {**model, "services": services}


def _store_model(current: Run, env: Environment, pod: str, project: str, model: dict[str, Any]) -> None:
    """The model as it runs and Preevy's driver metadata, in the pod where Preevy keeps them."""
    options = current.options
    opts: dict[str, object] = {"namespace": current.kubectl.namespace, "storageSize": options.storage_size}
    if options.storage_class:
        opts["storageClass"] = options.storage_class
    remote.store(
        current.kubectl,
        pod,
        env.first_container,
        project,
        model,
        remote.driver_metadata(
            env.env_id, env.instance, env.name, current.kubectl.namespace, env.created_at, opts
        ),
    )


def _report(
    args: argparse.Namespace,
    current: Run,
    env_id: str,
    env: Environment,
    services: list[docker.PublishedPort],
    stats: filesync.SyncStats,
    public: list[expose.Row] | None,
) -> dict[str, Any]:
    """Print the result; the environment document (its `services` rows feed ls, CI outputs, comments)."""
    namespace = current.kubectl.namespace
    if public is None:  # localhost URLs through `connect`, and what no forward can carry
        refused = [t for t in expose.compose_targets(_project(current).model) if t.reason]
        public_rows = [expose.Row(t.service, t.port, None, t.reason) for t in refused]
        service_urls = urls.service_urls(services) + urls.public_urls(public_rows)
    else:
        service_urls = urls.public_urls(public)
    console.info(messages.PROVISIONED.format(env_id=env_id, name=env.name, namespace=namespace))
    connect = current.command_hint("connect", env_id)
    document = urls.environment_document(
        env_id,
        namespace,
        env.name,
        service_urls,
        instance=env.instance,
        connect=connect,
        sync=stats.as_json(),
    )
    if args.output != "table":
        console.document(document, args.output)
        return document
    if service_urls:
        console.result(urls.urls_table(service_urls))
        console.info(messages.CONNECT_HINT.format(command=connect))
    else:
        console.info(messages.NO_PUBLISHED_PORTS)
    return document
