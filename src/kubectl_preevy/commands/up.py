"""`kubectl preevy up`: create or update the environment, copy the files, start every service."""

import argparse
import dataclasses
import datetime
import functools
import hashlib
import json
import os
import pathlib
import tempfile
import threading
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, TypeAlias

from kubectl_preevy import (
    cioutputs,
    compose,
    console,
    diagnosis,  # noqa: F401  loaded here, before environment's watcher thread uses it
    docker,
    envid,
    environment,
    expose,
    filesync,
    interrupt,
    lifetime,
    lock,
    messages,
    naming,
    parallel,
    prcomment,
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
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.kubectl import Kubectl
from kubectl_preevy.portforward import PortForward

if TYPE_CHECKING:
    from kubectl_preevy import preflight


@dataclasses.dataclass(frozen=True)
class Hints:
    """The commands an error line of this up names."""

    again: str  # the user's command line, to run it again
    down: str  # the `down` that removes this environment


def run(args: argparse.Namespace) -> int:
    timeout = shared.parse_duration(args.timeout, "--timeout")
    foreseen = _foreseen(args)
    if foreseen:
        with shared.sigterm_as_interrupt():  # the lock is released however the read ends
            current, early = _load_beside_the_lock(args, timeout, foreseen)
    else:
        current, early = shared.load_run(args, project="required", check_namespace=False), None
    try:
        return _run(args, current, timeout, early)
    finally:
        if early is not None:
            early.forwards.stop()  # (when nothing took it over)
            early.lock.release()  # once up has ended (a second release asks nothing)


@dataclasses.dataclass(frozen=True)
class _Early:
    """The lock taken and the environment looked at while the compose model was read."""

    env_id: str
    lock: lock.EnvironmentLock
    first_look: list[Environment]
    forwards: "_EarlyForward"
    ahead: "_Ahead"


@dataclasses.dataclass(frozen=True)
class _Foreseen:
    """The environment id known before the compose model is read, and why (as shared.env_id says it)."""

    env_id: str
    why: str
    project_name: str | None  # the project it was derived from (None: --id, whatever the model names)


def _foreseen(args: argparse.Namespace) -> _Foreseen | None:
    """The environment id, when neither it nor the options need the compose model: the files cannot set
    options (no x-preevy, nothing included), and the id is --id or `<project>-<branch>` with a project name
    the files tell plainly (compose.foreseen_name). Then the lock and the look run while `docker compose
    config` reads the model. None: the model is read first."""
    if args.dry_run:
        return None
    cwd, files = pathlib.Path.cwd(), getattr(args, "files", None)
    if shared.may_set_options(files, cwd, os.environ):
        return None
    if args.env_id:
        return _Foreseen(*envid.resolve_env_id(args.env_id, "", os.environ, cwd), project_name=None)
    name = compose.foreseen_name(files, getattr(args, "project", None), cwd, os.environ)
    if name is None:
        return None
    try:
        return _Foreseen(*envid.resolve_env_id(None, name, os.environ, cwd), project_name=name)
    except PreevyError:
        return None  # no branch: the usual path says so, after the model


def _load_beside_the_lock(
    args: argparse.Namespace, timeout: float, foreseen: _Foreseen
) -> tuple[Run, _Early | None]:
    """The model read while the foreseen environment's lock is taken and the environment looked at. Should
    the model name another project (the foresight was wrong), that lock is released and None returned."""
    current = shared.load_run(args, project="none", check_namespace=False)  # the lock's create checks it
    env_id = foreseen.env_id
    kubectl, profile_id = current.kubectl, current.profile.id
    env_lock = lock.EnvironmentLock(kubectl, profile_id, env_id, lock.holder_description("up"))
    loaded: dict[str, compose.ComposeProject] = {}
    hints = Hints(current.rerun_hint(), current.command_hint("down", env_id))
    forwards = _EarlyForward()
    ahead = _Ahead.begin(current, env_id)

    def load_model() -> None:
        loaded["project"] = current.project = compose.load_project(
            getattr(args, "files", None), getattr(args, "project", None), pathlib.Path.cwd(), os.environ
        )
        ahead.validate(args, current, env_id)

    try:
        first_look = _lock_and_look(current, env_id, env_lock, timeout, forwards, load_model, ahead.new)
    except BaseException as err:
        forwards.stop()
        current.project = loaded.get("project")
        try:
            if isinstance(err, PreevyError) and err.exit_code == ExitCode.REFUSED and current.project:
                # every missing permission in one line, when that is why the lock was refused
                objects = rendered_objects(current, env_id)
                _preflight(args, current, objects, existing=lambda: False, reads=ahead.reads)
        finally:
            env_lock.release()
        if isinstance(err, KeyboardInterrupt):
            raise _interrupted(hints) from None
        raise
    current.project = loaded["project"]
    if foreseen.project_name not in (None, current.project.name):
        forwards.stop()
        env_lock.release()
        return current, None  # _run says the id the model gives
    shared.say_env_id(env_id, foreseen.why)
    return current, _Early(env_id, env_lock, first_look, forwards, ahead)


# the checks' reads, begun beside the lock (_Ahead); None: made when the checks run
_Reads: TypeAlias = "parallel.Begun[preflight.Facts] | None"
_Validation: TypeAlias = tuple[list[dict[str, Any]], PreevyError | None]  # the objects, the dry run's refusal


class _Ahead:
    """What an up that expects a new environment (expect_new) begins before the lock is held, beside it: the
    checks' reads (preflight.read_facts), and once the model is read the new environment's objects (its first
    instance name) through the server's dry run. Only reads: what they say is used under the lock, once the
    look under it agrees (a new environment, the first name free; _checked_objects), else done again. An
    up that expects the environment to exist begins none of it (an unchanged one's up would not use it)."""

    def __init__(self, new: bool, reads: _Reads):
        self.new, self.reads = new, reads
        self.validation: parallel.Begun[_Validation] | None = None

    @classmethod
    def begin(cls, current: Run, env_id: str) -> "_Ahead":
        if not expect_new(current, env_id):
            return cls(False, None)
        from kubectl_preevy import preflight

        kubectl, storage_class = current.kubectl, current.options.storage_class
        return cls(True, parallel.Begun(lambda: preflight.read_facts(kubectl, storage_class)))

    def validate(self, args: argparse.Namespace, current: Run, env_id: str) -> None:
        """Begin the dry run of the new environment's objects (the model read; without an exposure: one is
        resolved under the lock, and its kinds are among the objects)."""
        if self.new and current.options.expose == "none":
            self.validation = parallel.Begun(lambda: _new_objects_validated(args, current, env_id, None))


def _new_objects_validated(
    args: argparse.Namespace, current: Run, env_id: str, exposure: expose.Exposure | None
) -> _Validation:
    """The objects of a new environment under its first instance name, and the dry run's refusal of them."""
    guess = _objects(current, env_id, None, exposure, instance=_instance_name(current, env_id))
    return guess, _validation_error(current, None, guess, recreate=args.recreate)


def expect_new(current: Run, env_id: str) -> bool:
    """Whether the environment is likely new: this machine keeps no record of a copy into its pod (as named
    when the environment is made: the instance name it gets first; `down` forgets it). A guess that only
    orders what `up` reads (_lock_and_look): a wrong one costs a moment, never a check."""
    from kubectl_preevy.synccache import SyncCache

    kubectl = current.kubectl
    pod = f"{_instance_name(current, env_id)}-0"
    try:
        server = kubectl.server_url()
    except PreevyError:
        return False  # (the kubeconfig's problem is said by the lock's kubectl, as it is without a guess)
    return not SyncCache.of(kubectl.environ, server, kubectl.namespace, pod).kept()


def _lock_and_look(
    current: Run,
    env_id: str,
    env_lock: lock.EnvironmentLock,
    timeout: float,
    forwards: "_EarlyForward",
    beside: Callable[[], object],
    new: bool = False,
) -> list[Environment]:
    """The lock taken while the environment is looked at (the first look; a forward to its pod begun when
    it is Ready) and `beside` runs. The look in this thread: a forward it starts must outlive the step (see
    parallel.py).
    new: a new environment is expected (expect_new): then the look is the one under the lock, once the
    lock is held (_checked_objects looks no more): one read less, where the environment is new."""

    foreseen_pod = None if new else f"{_instance_name(current, env_id)}-0"

    def look() -> None:
        # what comes after the look is imported while its read runs (begun first: imports hold up a start)
        kubectl, profile_id = current.kubectl, current.profile.id
        forwards.look(kubectl, profile_id, env_id, new, foreseen_pod, meanwhile=_warm_imports)

    def lock_then_look() -> None:
        env_lock.acquire(timeout)
        look()

    if new:
        parallel.together(lock_then_look, beside)
    else:
        parallel.together(look, lambda: env_lock.acquire(timeout), beside)
    return forwards.found()


def _warm_imports() -> None:
    """What the steps after the look import (the template's renderer, YAML), imported while it waits."""
    try:
        template.import_renderer()
    except ImportError:
        pass  # said where it is needed


class _EarlyForward:
    """A forward to the Docker server of the environment's pod, started as soon as the first look finds the
    environment rolled out and Ready, or before it to the pod an existing environment is expected to have
    (before the rest of up knows whether it will be used: _reach takes it when the environment is unchanged,
    else it is stopped)."""

    def __init__(self) -> None:
        self._forward: PortForward | None = None
        self._found: list[Environment] = []
        self._failure: Exception | None = None
        # the look made under the lock: the docker hosts (deleted ones too) and the instance names taken
        self.under_lock: tuple[list[Environment], set[str]] | None = None

    def look(
        self,
        kubectl: Kubectl,
        profile_id: str,
        env_id: str,
        under_lock: bool = False,
        foreseen_pod: str | None = None,
        meanwhile: Callable[[], object] | None = None,
    ) -> None:
        """The first look, and the forward started when it found the environment Ready. Its failure is kept
        for found(): the steps beside it (the model, the lock) say theirs first, as they did.
        under_lock: made once the lock is held, it reads what _checked_objects needs too.
        foreseen_pod: the pod an existing environment is expected to have (expect_new): its forward is begun
        while the look reads (only a read: stopped unless the look finds that pod Ready). meanwhile: run while
        the look's read runs."""

        def while_looking() -> None:  # (the look's read started first: it is on the way to the first write)
            if foreseen_pod is not None:
                self._forward = docker.begin_forward(kubectl, foreseen_pod)
            if meanwhile is not None:
                meanwhile()

        try:
            if under_lock:
                self.under_lock = environment.find_with_instances(kubectl, profile_id, env_id, while_looking)
                self._found = _live(self.under_lock[0])
            else:
                self._found = environment.find(kubectl, profile_id, env_id, meanwhile=while_looking)
        except Exception as err:  # noqa: BLE001 (raised by found())
            self.stop()
            self._failure = err
            return
        live = _live(self._found)
        if len(live) == 1 and not live[0].legacy and _rolled_out_and_ready(live[0].statefulset):
            # begun only: it gets ready while the rest goes on (_Deploy.prepare waits for it)
            pod = f"{live[0].name}-0"
            if self._forward is None or self._forward.pod != pod:
                self.stop()
                self._forward = docker.begin_forward(kubectl, pod)
        else:
            self.stop()

    def found(self) -> list[Environment]:
        if self._failure is not None:
            raise self._failure
        return self._found

    def take(self, pod: str) -> PortForward | None:
        """The forward when it goes to this pod (the caller stops it), else None (it is stopped)."""
        forward, self._forward = self._forward, None
        if forward is not None and forward.pod != pod:
            forward.stop()
            return None
        return forward

    def stop(self) -> None:
        forward, self._forward = self._forward, None
        if forward is not None:
            forward.stop()


def _run(args: argparse.Namespace, current: Run, timeout: float, early: _Early | None) -> int:
    project = current.project
    assert project is not None  # loaded in either way
    # what would travel is checked before anything but the lock (taken beside the model's read, then
    # released) is written
    compose.check_sources(project, args.copy_outside, pathlib.Path.cwd())
    filesync.excluder_of(project)  # a malformed x-preevy.sync is refused before the cluster is asked
    env_id = early.env_id if early else shared.env_id(args, current)
    comment_template = prcomment.checked_template(
        args.pr_comment, args.pr_comment_template, env_id, os.environ
    )
    host_paths = compose.host_bind_sources(project)
    if host_paths:
        console.info(messages.HOST_PATHS_KEPT.format(paths=", ".join(host_paths)))
    hints = Hints(current.rerun_hint(), current.command_hint("down", env_id))
    try:
        with shared.sigterm_as_interrupt():
            if args.dry_run:
                current.kubectl.namespace_exists()
                exposure = expose.resolve(current.kubectl, current.options)
                _with_base_uris(args, current, exposure, env_id)
                _dry_run(current, env_id, exposure)
                _dry_run_urls(current, exposure, env_id)
                return 0
            rows = _up(args, current, env_id, timeout, hints, early)
    except KeyboardInterrupt:
        raise _interrupted(hints) from None
    except PreevyError as err:
        if interrupt.received() and err.exit_code != ExitCode.INTERRUPTED:
            raise _interrupted(hints) from None
        raise
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


def _interrupted(hints: Hints) -> PreevyError:
    return PreevyError(
        messages.INTERRUPTED_HINT.format(again=hints.again, down=hints.down), ExitCode.INTERRUPTED
    )


def _up(
    args: argparse.Namespace, current: Run, env_id: str, timeout: float, hints: Hints, early: _Early | None
) -> list[dict[str, Any]]:
    """Up to the printed result; the URL rows of the environment document.

    The lock is taken while the environment is looked at (the first look) and the template rendered:
    nothing the lock protects is written before it is held. What was seen is proved current (the drift
    check) by a precondition on the first write (an unchanged environment: its annotation at the
    resourceVersion seen), else the environment is looked at again under the lock. Whatever is applied is
    validated before it is: the identity's rights and the namespace's policies (preflight), the exposure,
    and the API server's validation and admission in a dry run of the whole manifest."""
    kubectl = current.kubectl
    # the objects of the checks (the template rendered: it is data, and may be refused), meanwhile
    render = functools.cache(lambda: rendered_objects(current, env_id))
    if early is not None:  # taken and looked at while the model was read; run() releases it however up ends
        first, taken = early.first_look, early.lock
        return _locked(
            args, current, env_id, timeout, hints, render, first, taken, early.forwards, early.ahead
        )
    env_lock = lock.EnvironmentLock(kubectl, current.profile.id, env_id, lock.holder_description("up"))
    forwards = _EarlyForward()
    ahead = _Ahead.begin(current, env_id)
    ahead.validate(args, current, env_id)
    try:
        try:
            first_look = _lock_and_look(current, env_id, env_lock, timeout, forwards, render, ahead.new)
        except PreevyError as err:
            if err.exit_code == ExitCode.REFUSED:  # every missing permission in one line, when that is why
                _preflight(args, current, render(), existing=lambda: False, reads=ahead.reads)
            raise
        return _locked(args, current, env_id, timeout, hints, render, first_look, env_lock, forwards, ahead)
    finally:
        forwards.stop()
        env_lock.release()


def _locked(
    args: argparse.Namespace,
    current: Run,
    env_id: str,
    timeout: float,
    hints: Hints,
    checked: Callable[[], list[dict[str, Any]]],
    first_look: list[Environment],
    env_lock: lock.EnvironmentLock,
    forwards: _EarlyForward,
    ahead: _Ahead,
) -> list[dict[str, Any]]:
    """checked: the objects of the checks (only a full path needs them); forwards: the forward the first look
    may have started; ahead: what was begun before the lock was held."""
    exposure = expose.resolve(current.kubectl, current.options)  # refusals before any write
    base_uris = _with_base_uris(args, current, exposure, env_id)
    seen = _existing(current, env_id, first_look)
    objects = _objects(current, env_id, seen, exposure) if seen is not None else []
    env: Environment | None = None
    ready: _ReadyPod | None = None
    if seen is not None and unchanged_and_ready(seen, objects):
        # the unchanged environment's moment written at the version seen (see _refresh), while its pod is
        # read and the forward to it started (used only when the write proved nothing changed)
        ready, refreshed = _reach(
            current,
            seen,
            hints,
            base_uris,
            lambda: _refresh(current, env_id, seen, objects, precondition=True),
            forwards.take(f"{seen.name}-0"),
        )
        env = seen if refreshed else None
    forwards.stop()  # (one _reach did not take: to a pod about to change)
    existing = seen
    if env is None:  # something to apply, or changed since the first look
        looked = forwards.under_lock
        existing, objects = _checked_objects(
            args, current, env_id, checked, seen, objects, exposure, ahead, looked
        )
        env, applied_at = _update(args, current, env_id, timeout, hints, existing, objects, exposure)
        rollout = None
        if applied_at is not None:
            console.step(messages.WAITING_READY.format(name=env.name))
            rollout = functools.partial(
                environment.wait_ready, current.kubectl, env_id, env.name, timeout, hints.down, applied_at
            )
        ready, _ = _reach(
            current,
            env,
            hints,
            base_uris,
            rollout=rollout,
            rollout_seconds=timeout,
            compose_early=existing is None and rollout is not None,
        )
    services, stats = _deploy(current, env, env_id, timeout, hints, base_uris, ready)
    public = _route(current, env, env_id, exposure, services, existing, timeout)
    rows: list[dict[str, Any]] = _report(args, current, env_id, env, services, stats, public)["services"]
    urls_changed = lifetime.urls_annotation(rows) != _recorded_urls(existing, env)
    parallel.together(env_lock.release, (lambda: _record_urls(current, env, rows)) if urls_changed else None)
    return rows


def _checked_objects(
    args: argparse.Namespace,
    current: Run,
    env_id: str,
    checked: Callable[[], list[dict[str, Any]]],
    seen: Environment | None,
    seen_objects: list[dict[str, Any]],
    exposure: expose.Exposure | None,
    ahead: _Ahead | None = None,
    looked: tuple[list[Environment], set[str]] | None = None,
) -> tuple[Environment | None, list[dict[str, Any]]]:
    """Under the lock: the environment as it is now (looked at again) and the objects to apply, validated.
    seen_objects: those rendered for the environment as first seen (if it was).
    At the same time as that look and the preflight's reads, a dry run of what the first look says will be
    applied (a new environment: its first instance name); done again when the look or the names taken
    say otherwise. looked: the first look, made under the lock (it read the names taken): not made again."""
    kubectl, profile_id = current.kubectl, current.profile.id
    # one read: the docker hosts (deleted ones too) and every instance name the environment's objects carry
    look = functools.cache(lambda: looked or environment.find_with_instances(kubectl, profile_id, env_id))

    def speculate() -> _Validation:
        if seen:
            return seen_objects, _validation_error(current, seen, seen_objects, recreate=args.recreate)
        if ahead is not None and ahead.validation is not None:
            return ahead.validation.result()  # begun once the model was read
        return _new_objects_validated(args, current, env_id, exposure)

    reads = ahead.reads if ahead else None
    _, (guess, speculative) = parallel.together(
        lambda: _preflight(args, current, checked(), existing=lambda: _live(look()[0]) != [], reads=reads),
        speculate,
    )
    found, taken = look()
    existing = _existing(current, env_id, _live(found))
    if _same_version(existing, seen) and (existing is not None or _instance_of(guess) not in taken):
        if speculative is not None:
            raise speculative
        return existing, guess
    # made, changed or deleted since the first look, or the first name is taken: rendered and validated again
    instance = _instance_name(current, env_id, taken) if existing is None else None
    objects = _objects(current, env_id, existing, exposure, instance=instance)
    if not unchanged_and_ready(existing, objects):
        _validate(current, existing, objects, recreate=args.recreate)
    return existing, objects


def _update(
    args: argparse.Namespace,
    current: Run,
    env_id: str,
    timeout: float,
    hints: Hints,
    existing: Environment | None,
    objects: list[dict[str, Any]],
    exposure: expose.Exposure | None,
) -> tuple[Environment, datetime.datetime | None]:
    """The environment made as the objects say (applied: when, for the rollout's wait), or refreshed when it
    is already (None)."""
    if existing is not None and unchanged_and_ready(existing, objects):
        _refresh(current, env_id, existing, objects)
        return existing, None
    if existing and lifetime.of(existing.statefulset).state == lifetime.STATE_SLEEPING:
        sleepwake.scale_up(current.kubectl, existing)
    applied_at = datetime.datetime.now(datetime.timezone.utc)
    env = _apply(
        current,
        env_id,
        existing,
        objects,
        recreate=args.recreate,
        timeout=timeout,
        exposure=exposure,
        hints=hints,
    )
    current.save_profile()  # the environment exists: its profile (id default) is kept from now on
    return env, applied_at


def _preflight(
    args: argparse.Namespace,
    current: Run,
    checked: list[dict[str, Any]],
    existing: Callable[[], bool],
    reads: _Reads = None,
) -> None:
    from kubectl_preevy import preflight  # (not needed by an unchanged environment's up)

    preflight.require(
        current.kubectl,
        checked,
        existing=existing,
        storage_class=current.options.storage_class,
        command="up --recreate" if args.recreate else "up",
        also=("down",) if args.recreate else (),  # it may delete the environment
        read=reads,
    )


def _live(found: list[Environment]) -> list[Environment]:
    """The environments not being deleted (a `down` in progress, or one that was interrupted)."""
    return [e for e in found if not e.deleting]


def _instance_of(objects: list[dict[str, Any]]) -> str:
    return Environment(template.docker_host_statefulset(objects)).instance


def _validation_error(
    current: Run, existing: Environment | None, objects: list[dict[str, Any]], *, recreate: bool
) -> PreevyError | None:
    """The dry run's refusal (raised by the caller when these turn out to be the objects applied)."""
    if existing is not None and unchanged_and_ready(existing, objects):
        return None
    try:
        _validate(current, existing, objects, recreate=recreate)
    except PreevyError as err:
        return err
    return None


@dataclasses.dataclass
class _ReadyPod:
    """The Ready pod as just read, a forward to its Docker server already started, and what goes before
    `docker compose up` already done through it (the copy, the look for Preevy's agent)."""

    document: dict[str, Any]
    forward: PortForward
    prepared: "_Prepared"
    # a new environment's `docker compose up`, run while its rollout was confirmed (_reach): the ports it
    # published, or its failure; and the pod's state when it began (what a failure is explained against)
    composed: "list[docker.PublishedPort] | PreevyError | None" = None
    before: "PodState | None" = None


SPECULATIVE_FORWARD_SECONDS = 5.0  # a Ready pod's dockerd answers at once; else _deploy says why


def _reach(
    current: Run,
    env: Environment,
    hints: Hints,
    base_uris: dict[str, str],
    meanwhile: Callable[[], Any] | None = None,
    started: PortForward | None = None,
    rollout: Callable[[Callable[[dict[str, Any]], bool]], None] | None = None,
    rollout_seconds: float = 0,
    compose_early: bool = False,
) -> tuple[_ReadyPod | None, Any]:
    """The environment's Ready pod read while, through a forward to its Docker server, the files are copied
    and Preevy's agent looked for (_Deploy.prepare), and `meanwhile` runs too (the proof that an unchanged environment
    is still the one seen: then nothing is known yet, and what is done meanwhile must be harmless if it turns
    out otherwise: the same files the full path copies, into the environment's own volume, under the lock).
    The pod, its forward and that work (None when any of it did not work out: _deploy does it all again, and
    says why), and the result of `meanwhile` (when it is False, the forward is stopped: it was not wanted).
    started: a forward to the pod already started (then stopped by this, or by the deploy it is handed to).
    rollout: the wait for the rollout of what was just applied (environment.wait_ready, given a function that
    sees each pod its looks read), before the pod is read: the work begins as soon as a look sees the pod's
    container run (_Sighting), during the wait, rather than after it; its failure is raised (rollout_seconds:
    its bound, and so how long dockerd is waited for meanwhile).
    compose_early: a new environment's (its only pod is the one seen running): `docker compose up` follows
    the copy at once, while the rollout is confirmed (the kubelet marks the pod Ready a probe period or more
    after dockerd answers). What it did stands once the rollout succeeded and the Ready pod is the one it
    ran in; otherwise _deploy does it all again there (or the rollout's failure is raised)."""
    forwards: list[PortForward] = [started] if started else []
    pod = f"{env.name}-0"  # a Deployment's pod (legacy) has no name known in advance
    deploy = None if env.legacy else _Deploy(current, env, pod, hints, base_uris)
    sighting = _Sighting(env) if rollout is not None else None

    composed: list[list[docker.PublishedPort] | PreevyError] = []  # (at most one)

    def prepare() -> _Prepared | None:
        if deploy is None or (sighting is not None and not sighting.runs()):
            return None  # (a rollout that failed is raised by its step)
        seconds = SPECULATIVE_FORWARD_SECONDS + (rollout_seconds if sighting else 0)
        early = sighting if compose_early else None  # (compose_early comes with a rollout, so a sighting)
        try:
            prepared = deploy.prepare(
                forwards,
                forward_seconds=seconds,
                say=False,
                given_up=sighting.given_up if sighting else None,
                look_for_agents=early is None,
            )
        except PreevyError:
            return None  # done again by _deploy, which says why if it fails again
        if early is not None:
            if early.failed:
                return None  # (raised by its step)
            composed.append(deploy.compose_early(forwards[0], prepared))
        return prepared

    def ready_pod() -> dict[str, Any] | None:
        if rollout is not None and sighting is not None:
            sighting.follow(rollout)
        return _ready_pod_or_none(current, env)

    try:
        # the forward is started in this thread: it must outlive the step (see parallel.py)
        prepared, document, result = parallel.together(prepare, ready_pod, meanwhile)
    except BaseException:
        for forward in forwards:
            forward.stop()
        raise
    wanted = result is not False and document is not None
    same = document is not None and (sighting is None or sighting.same_pod(document))
    if wanted and same and prepared is not None and document["metadata"]["name"] == pod:
        if composed:  # (begun once the pod was seen running, or once the rollout ended before any look did)
            began = sighting.seen if sighting is not None and sighting.seen is not None else document
            return _ReadyPod(document, forwards[0], prepared, composed[0], _pod_state_of(began)), result
        return _ReadyPod(document, forwards[0], prepared), result
    for forward in forwards:
        forward.stop()
    return None, result


class _Sighting:
    """The rollout's wait followed (follow, in its own thread) for the moment its looks see the pod's first
    container run: the copy and the forward to dockerd may begin then (runs, in another thread)."""

    def __init__(self, env: Environment):
        self.env = env
        self.uid: str | None = None  # of the pod seen running
        self.seen: dict[str, Any] | None = None  # that pod, as the look read it
        self.failed = False
        self._running, self._ended = threading.Event(), threading.Event()
        self._settled = threading.Event()  # running, or ended
        self._ended_at = 0.0

    def follow(self, rollout: Callable[[Callable[[dict[str, Any]], bool]], None]) -> None:
        try:
            rollout(self._saw)
        except BaseException:
            self.failed = True
            raise
        finally:
            self._ended_at = time.monotonic()
            self._ended.set()
            self._settled.set()

    def _saw(self, pod: dict[str, Any]) -> bool:
        """A pod a look read: whether it was seen running (then no more looks are wanted)."""
        if self._running.is_set() or pod["metadata"].get("deletionTimestamp"):
            return self._running.is_set()
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("name") == self.env.first_container and "running" in (status.get("state") or {}):
                self.uid, self.seen = pod["metadata"].get("uid"), pod
                self._running.set()
                self._settled.set()
        return self._running.is_set()

    def runs(self) -> bool:
        """Once the pod's container was seen running (True), or the rollout ended: True when it rolled out."""
        self._settled.wait()
        return self._running.is_set() or not self.failed

    def given_up(self) -> bool:
        """Whether dockerd is waited for no more: the rollout failed, or ended a while ago."""
        ended_for = time.monotonic() - self._ended_at if self._ended.is_set() else 0.0
        return self.failed or ended_for > SPECULATIVE_FORWARD_SECONDS

    def same_pod(self, document: dict[str, Any]) -> bool:
        """Whether the Ready pod is the one seen running (what was done through it was done in it)."""
        return self.uid is None or document["metadata"].get("uid") == self.uid


def _ready_pod_or_none(current: Run, env: Environment) -> dict[str, Any] | None:
    try:
        return environment.ready_pod_document(current.kubectl, env)
    except PreevyError:
        return None  # looked for again (and said) when the copy starts


def _recorded_urls(existing: Environment | None, env: Environment) -> str | None:
    """The URL rows recorded on the StatefulSet as it was looked at (None: another, or a new one)."""
    if existing is None or existing.name != env.name:
        return None
    return (existing.statefulset["metadata"].get("annotations") or {}).get(lifetime.ANNOTATION_URLS)


# written by every up (the time of this one): not a change of what the environment is
MOMENT_ANNOTATIONS = frozenset({lifetime.ANNOTATION_LAST_DEPLOY_AT, lifetime.ANNOTATION_EXPIRES_AT})


def unchanged_and_ready(existing: Environment | None, objects: list[dict[str, Any]]) -> bool:
    """Whether applying the objects would change nothing but the moment annotations, and the StatefulSet
    is rolled out and Ready: then `up` skips the server dry run, the apply and `rollout status`. The
    template hash covers every object the template renders (and so every option rendered into it); the
    labels and the other annotations (ttl, sleep-after, the exposure's types, the compose project) are
    compared one by one, a removed one included."""
    if existing is None:
        return False
    live, ours = existing.statefulset, template.docker_host_statefulset(objects)
    live_meta, our_meta = live["metadata"], ours["metadata"]
    if not our_meta.get("annotations", {}).get(naming.ANNOTATION_TEMPLATE_HASH):
        return False
    live_annotations = live_meta.get("annotations") or {}
    our_annotations = our_meta.get("annotations") or {}
    for key in set(our_annotations) | (MOMENT_ANNOTATIONS & set(live_annotations)):
        if key in MOMENT_ANNOTATIONS:
            if (key in our_annotations) != (key in live_annotations):
                return False  # a ttl given or removed
        elif live_annotations.get(key) != our_annotations[key]:
            return False
    live_labels = live_meta.get("labels") or {}
    if any(live_labels.get(k) != v for k, v in (our_meta.get("labels") or {}).items()):
        return False
    return _rolled_out_and_ready(live)


def _rolled_out_and_ready(statefulset: dict[str, Any]) -> bool:
    spec, status = statefulset.get("spec") or {}, statefulset.get("status") or {}
    replicas = spec.get("replicas", 1)
    return bool(
        replicas >= 1
        and status.get("observedGeneration") == statefulset["metadata"].get("generation")
        and status.get("readyReplicas", 0) == replicas
        and status.get("updatedReplicas", 0) == replicas
        and status.get("currentRevision")
        and status.get("currentRevision") == status.get("updateRevision")
    )


def _same_version(a: Environment | None, b: Environment | None) -> bool:
    if a is None or b is None:
        return a is b
    return bool(
        a.instance == b.instance
        and a.statefulset["metadata"].get("resourceVersion")
        == b.statefulset["metadata"].get("resourceVersion")
    )


def _refresh(
    current: Run,
    env_id: str,
    existing: Environment,
    objects: list[dict[str, Any]],
    precondition: bool = False,
) -> bool:
    """The unchanged environment: only the moment of this up written (one call instead of the apply).
    precondition: only if the StatefulSet is still at the resourceVersion it was seen at (every `up` and
    `down` writes it): False when it is not, and nothing was written."""
    annotations = template.docker_host_statefulset(objects)["metadata"]["annotations"]
    version = existing.statefulset["metadata"].get("resourceVersion")
    result = current.kubectl.run(
        "annotate",
        f"statefulset/{existing.name}",
        *(f"{key}={annotations[key]}" for key in sorted(MOMENT_ANNOTATIONS) if key in annotations),
        "--overwrite",
        *([f"--resource-version={version}"] if precondition and version else []),
        retry_transient=not precondition,  # a Conflict is the answer, not a failure to try again
    )
    if not result.ok:
        if precondition and any(r in result.stderr for r in ("(Conflict)", "(NotFound)")):
            return False
        raise current.kubectl.error(result)
    console.step(messages.UNCHANGED.format(env_id=env_id, namespace=current.kubectl.namespace))
    current.save_profile()
    return True


def _validate(
    current: Run, existing: Environment | None, objects: list[dict[str, Any]], *, recreate: bool
) -> None:
    try:
        environment.validate(
            current.kubectl,
            template.manifest_yaml(objects),
            server_side=current.options.server_side_apply,
            new=existing is None,
        )
    except environment.ImmutableChange as change:
        if not recreate:
            raise environment.ImmutableChange(change.detail, current.rerun_hint("--recreate")) from None


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
        if _may_have_routing(existing):
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


ROUTING_KINDS = frozenset({"service", "services", "httproute", "httproutes", "ingress", "ingresses"})


def _may_have_routing(existing: Environment | None) -> bool:
    """Whether the environment as it was may hold routing objects (a new one holds none): it declares a
    Service, HTTPRoute or Ingress type."""
    if existing is None:
        return False
    return any(name.split(".")[0].lower() in ROUTING_KINDS for name in existing.types)


def _record_urls(current: Run, env: Environment, rows: list[dict[str, Any]]) -> None:
    """The URL rows of the environment document on the StatefulSet, for `ls` (whatever kind of URL)."""
    current.kubectl.check(
        "annotate",
        f"statefulset/{env.name}",
        f"{lifetime.ANNOTATION_URLS}={lifetime.urls_annotation(rows)}",
        "--overwrite",
    )


def _existing(current: Run, env_id: str, found: list[Environment] | None = None) -> Environment | None:
    if found is None:
        found = environment.find(current.kubectl, current.profile.id, env_id)
    return environment.newest(found, env_id, current.command_hint("down", env_id))


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
    _, taken = environment.find_with_instances(current.kubectl, current.profile.id, env_id)
    return _instance_name(current, env_id, taken | avoid)


def _instance_name(current: Run, env_id: str, taken: Collection[str] = ()) -> str:
    """The first instance name derived from the environment that is not taken."""
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
    hints: Hints,
) -> Environment:
    kubectl = current.kubectl
    verb = messages.UPDATING if existing else messages.CREATING
    console.step(verb.format(env_id=env_id, namespace=kubectl.namespace))
    if existing is None:
        _first_apply(current, objects, hints)
        return Environment(template.docker_host_statefulset(objects))
    try:
        environment.apply(
            kubectl,
            template.manifest_yaml(objects),
            server_side=current.options.server_side_apply,
            new=False,
        )
    except environment.ImmutableChange as change:
        if not recreate:
            raise environment.ImmutableChange(change.detail, current.rerun_hint("--recreate")) from None
        console.step(messages.RECREATING.format(instance=existing.instance))
        environment.delete(
            kubectl, existing.instance, existing.types, wait=True, timeout_seconds=timeout, again=hints.down
        )
        objects = _objects(current, env_id, None, exposure, avoid=frozenset({existing.instance}))
        _first_apply(current, objects, hints)
    return Environment(template.docker_host_statefulset(objects))


def _first_apply(current: Run, objects: list[dict[str, Any]], hints: Hints) -> None:
    """Create the environment; when that fails, remove what it created (nothing is left half-made)."""
    kubectl = current.kubectl
    try:
        environment.apply(
            kubectl, template.manifest_yaml(objects), server_side=current.options.server_side_apply, new=True
        )
    except PreevyError:
        if interrupt.received():
            raise  # a new run continues from there; `down` finds it by its labels
        env = Environment(template.docker_host_statefulset(objects))
        try:
            environment.delete(
                kubectl, env.instance, env.types, wait=False, timeout_seconds=60, again=hints.down
            )
        except PreevyError as cleanup:
            console.warn(
                messages.FIRST_APPLY_CLEANUP_FAILED.format(error=cleanup.message, cleanup=hints.down)
            )
        else:
            console.warn(messages.FIRST_APPLY_FAILED_CLEANED.format(instance=env.instance))
        raise


def _deploy(
    current: Run,
    env: Environment,
    env_id: str,
    timeout: float,
    hints: Hints,
    base_uris: dict[str, str],
    ready: "_ReadyPod | None" = None,
) -> tuple[list[docker.PublishedPort], filesync.SyncStats]:
    """The copy and `docker compose up`, once more when the pod, its container or the forward failed under
    them (both are safe to repeat: the copy is incremental, compose up converges). ready: the Ready pod as
    just read and a forward to it (else both are done here)."""
    for attempt in (1, 2):
        document = ready.document if attempt == 1 and ready else None
        document = document or environment.ready_pod_document(current.kubectl, env, hints.again)
        pod = str(document["metadata"]["name"])
        reached = ready if attempt == 1 else None
        before = reached.before if reached and reached.before else _pod_state_of(document)
        deploy = _Deploy(current, env, pod, hints, base_uris, reached)
        try:
            return deploy.run()
        except PreevyError as err:
            if err.exit_code != ExitCode.FAILURE or interrupt.received():
                raise
            problem = deploy.explain(before, err)
            if problem is None:
                raise
            if attempt == 2:
                raise PreevyError(problem, ExitCode.FAILURE) from None
            console.warn(messages.RETRYING_STEP.format(problem=problem.split(": run `")[0]))
            environment.wait_ready(current.kubectl, env_id, env.name, timeout, hints.down)
    raise AssertionError("unreachable")


@dataclasses.dataclass(frozen=True)
class PodState:
    """A pod as a step began: its uid and its containers' restarts (what a failure is explained against)."""

    uid: str
    restarts: dict[str, int]  # container -> restartCount
    exists: bool = True


def _pod_state(current: Run, pod: str) -> PodState:
    result = current.kubectl.run("get", "pod", pod, "-o", "json")
    if not result.ok:
        return PodState("", {}, exists=False)
    return _pod_state_of(json.loads(result.stdout))


def _pod_state_of(document: dict[str, Any]) -> PodState:
    statuses = (document.get("status") or {}).get("containerStatuses") or []
    return PodState(
        document["metadata"].get("uid", ""), {s["name"]: s.get("restartCount", 0) for s in statuses}
    )


STEP_COPY = "the copy of the files"
STEP_FORWARD = "the start of the port-forward"
STEP_COMPOSE_UP = "`docker compose up`"
EXPLAIN_LOOKS = 4


@dataclasses.dataclass(frozen=True)
class _Prepared:
    """What goes before `docker compose up`: the model as it runs (stored in the pod), Preevy's agent
    containers kept, the copy's numbers."""

    model: dict[str, Any]
    agents: list[str]
    stats: filesync.SyncStats


class _Deploy:
    """Through a forward to the pod's Docker server: copy the files, `docker compose up`, read the ports;
    and when that fails, the true reason (explain)."""

    def __init__(
        self,
        current: Run,
        env: Environment,
        pod: str,
        hints: Hints,
        base_uris: dict[str, str],
        reached: _ReadyPod | None = None,
    ):
        self.current, self.env, self.pod, self.hints, self.base_uris = current, env, pod, hints, base_uris
        self.reached = reached  # the forward already started (stopped by run) and the copy done through it
        self.step = STEP_FORWARD
        self.forward_problem: str | None = None

    def run(self) -> tuple[list[docker.PublishedPort], filesync.SyncStats]:
        project = _project(self.current)
        forwards: list[PortForward] = [self.reached.forward] if self.reached else []
        try:
            composed = self.reached.composed if self.reached else None
            if self.reached:
                prepared = self.reached.prepared
                if composed is None:
                    self._say_copy(prepared.stats, project)
            else:
                prepared = self.prepare(forwards)
            self.step = STEP_COMPOSE_UP
            if isinstance(composed, PreevyError):
                raise composed
            if composed is not None:
                return composed, prepared.stats
            return self._compose_up(forwards[0], project, prepared), prepared.stats
        except PreevyError:
            if forwards:
                self.forward_problem = self._forward_problem(forwards[0])  # while it is still ours
            raise
        finally:
            for docker_forward in forwards:
                docker_forward.stop()

    def prepare(
        self,
        forwards: list[PortForward],
        *,
        forward_seconds: float | None = None,
        say: bool = True,
        given_up: Callable[[], bool] | None = None,
        look_for_agents: bool = True,
    ) -> _Prepared:
        """The copy at the same time as the forward's start and the look for Preevy's agent (_agents). The
        forward started is added to forwards (the caller stops it; one there already was begun, and is waited
        for). say=False: the copy's lines are said by run(). look_for_agents=False: a new environment's pod,
        which has none."""
        project, kubectl = _project(self.current), self.current.kubectl
        if say:
            console.step(messages.SYNCING.format(pod=self.pod, directory=project.remote_dir))
        model = compose.remote_model(project)
        failed_in: dict[int, str] = {}  # id of an error -> the step it ended

        def step(name: str, action: Callable[[], Any]) -> Callable[[], Any]:
            def run() -> Any:
                try:
                    return action()
                except BaseException as err:
                    failed_in[id(err)] = name
                    raise

            return run

        def start_forward() -> None:
            timeout = forward_seconds or docker.PING_TIMEOUT_SECONDS
            container = self.env.first_container if given_up else None  # a pod just seen running (_Sighting)
            if forwards:  # begun by the first look: waited for here
                docker.forward(kubectl, self.pod, timeout, begun=forwards[0], given_up=given_up)
            else:
                forwards.append(
                    docker.forward(kubectl, self.pod, timeout, given_up=given_up, container=container)
                )

        def forward_and_agents() -> list[str]:
            step(STEP_FORWARD, start_forward)()
            if not look_for_agents:
                return []
            port = forwards[0].local_ports[docker.DOCKER_PORT]
            return list(step(STEP_COMPOSE_UP, lambda: self._agents(port, project, model))())

        def copy() -> filesync.SyncStats:
            stats = filesync.sync(kubectl, self.pod, self.env.first_container, project)
            # (an interrupted run may be exiting: this thread then says nothing)
            if say and not interrupt.received():
                console.info(stats.summary())
            return stats

        try:
            # the forward is started in this thread: it must outlive the step (see parallel.py)
            agents, stats = parallel.together(forward_and_agents, step(STEP_COPY, copy))
        except PreevyError as err:
            self.step = failed_in.get(id(err), self.step)
            raise
        return _Prepared(model, agents, stats)

    def compose_early(
        self, docker_forward: PortForward, prepared: _Prepared
    ) -> list[docker.PublishedPort] | PreevyError:
        """`docker compose up` while the pod's rollout is still being confirmed (see _reach): the ports it
        published, or its failure (raised by run(), once the rollout is known to have succeeded)."""
        project = _project(self.current)
        self._say_copy(prepared.stats, project)
        try:
            return self._compose_up(docker_forward, project, prepared)
        except PreevyError as err:
            return err

    def _say_copy(self, stats: filesync.SyncStats, project: compose.ComposeProject) -> None:
        console.step(messages.SYNCING.format(pod=self.pod, directory=project.remote_dir))
        console.info(stats.summary())

    def _compose_up(
        self, docker_forward: PortForward, project: compose.ComposeProject, prepared: _Prepared
    ) -> list[docker.PublishedPort]:
        """`docker compose up` while the model is stored in the pod (_store); the ports it published."""
        services, _ = parallel.together(
            lambda: self._compose_up_only(docker_forward, project, prepared),
            lambda: self._store(project, prepared),
        )
        return list(services)

    def _compose_up_only(
        self, docker_forward: PortForward, project: compose.ComposeProject, prepared: _Prepared
    ) -> list[docker.PublishedPort]:
        port = docker_forward.local_ports[docker.DOCKER_PORT]
        console.step(messages.COMPOSE_UP.format(project=project.name))
        with tempfile.NamedTemporaryFile("w", prefix=f"preevy-{project.name}-", suffix=".json") as model_file:
            json.dump(prepared.model, model_file)
            model_file.flush()
            try:
                environ = {**os.environ, **self.base_uris}
                docker.compose_up(
                    project.name,
                    model_file.name,
                    str(project.working_dir),
                    environ,
                    port,
                    remove_orphans=not prepared.agents,
                )
            except docker.ComposeUpFailed as failed:
                if self._forward_problem(docker_forward) is not None:
                    raise
                raise docker.ComposeUpFailed(failed.code, self.hints.again, self.hints.down) from None
        return docker.published_ports(port, project.name)

    def _agents(self, port: int, project: compose.ComposeProject, model: dict[str, Any]) -> list[str]:
        """The containers of Preevy's agent running in the pod (then kept: no --remove-orphans)."""
        agents = docker.preevy_agents(docker.containers(port, project.name), set(model.get("services") or {}))
        if agents:
            console.info(messages.PREEVY_AGENT_KEPT.format(containers=", ".join(agents)))
        return agents

    def _store(self, project: compose.ComposeProject, prepared: _Prepared) -> None:
        """The model kept in the pod (for day two and `wake`), with Preevy's agent service if its containers
        run (read from the model stored before, which this overwrites)."""
        current, env, model = self.current, self.env, prepared.model
        stored = _with_kept_agent(current, env, self.pod, project.name, model) if prepared.agents else model
        _store_model(current, env, self.pod, project.name, stored)

    def _forward_problem(self, docker_forward: PortForward) -> str | None:
        """The forward dropped during compose up, or dockerd no longer answers through it."""
        if not docker_forward.running:
            if self.step != STEP_COMPOSE_UP:
                return None
            return messages.FORWARD_DROPPED_DURING_COMPOSE.format(
                pod=self.pod, error=docker_forward.last_error or "kubectl exited", again=self.hints.again
            )
        answer = docker.ping(docker_forward.local_ports[docker.DOCKER_PORT])
        if answer is None:
            return None
        return messages.DOCKERD_STOPPED.format(
            pod=self.pod,
            step=self.step,
            error=answer,
            namespace=self.current.kubectl.namespace,
            again=self.hints.again,
        )

    def explain(self, before: PodState, err: PreevyError) -> str | None:
        """What really happened when a step failed: the pod replaced or gone, its container restarted, the
        forward dropped, dockerd not answering. None: the step's own error is the truth. The kubelet may
        report a restart a moment after the forward or the exec broke: the pod is looked at a few times."""
        for look in range(EXPLAIN_LOOKS):
            problem = self._pod_problem(before, err)
            if problem is not None:
                return problem
            if self.forward_problem is None and self.step != STEP_COPY:
                break  # nothing points at the pod
            if look < EXPLAIN_LOOKS - 1:
                time.sleep(1)
        return self.forward_problem

    def _pod_problem(self, before: PodState, err: PreevyError) -> str | None:
        after = _pod_state(self.current, self.pod)
        detail = err.message
        if not after.exists:
            what = messages.POD_GONE
        elif after.uid != before.uid:
            what = messages.POD_REPLACED
        else:
            restarted = [c for c, n in after.restarts.items() if n > before.restarts.get(c, 0)]
            if not restarted:
                return None
            what = messages.POD_CONTAINER_RESTARTED.format(container=restarted[0])
            detail = environment.unready_reason(self.current.kubectl, self.env.name)
        return messages.POD_RESTARTED_DURING.format(
            pod=self.pod, what=what, step=self.step, detail=detail, again=self.hints.again
        )


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
