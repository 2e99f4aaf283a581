"""batch/v1 (API half): Job and CronJob defaults, validation, the Job's generated selector, and the Job
and CronJob controllers, as kube-apiserver and kube-controller-manager 1.32 do them.

Job controller: creates pods from the template (`<job>-<5 random>`, owned by the Job, labels
`batch.kubernetes.io/controller-uid`, `batch.kubernetes.io/job-name`, `controller-uid`, `job-name`)
up to `parallelism` until `completions` pods Succeeded; a Failed pod is replaced until more than
`backoffLimit` failed; `activeDeadlineSeconds`; `suspend`; `ttlSecondsAfterFinished`. Status:
`startTime`, `active`, `ready`, `succeeded`, `failed`, `terminating`, `uncountedTerminatedPods`,
`completionTime` and the conditions SuccessCriteriaMet + Complete (CompletionsReached), or
FailureTarget + Failed (BackoffLimitExceeded / DeadlineExceeded). Events SuccessfulCreate,
SuccessfulDelete, Completed, BackoffLimitExceeded, DeadlineExceeded, FailedCreate (a pod the API
refused: Pod Security, quota; retried) (source job-controller).
Not modelled: Indexed completion, pod failure / success policies, the job-tracking finalizer, the
back-off delay between retries (a failed pod is replaced at once).

CronJob controller (ControllerV2's syncCronJob, checked every second): the latest scheduled minute
(cron.py, UTC; spec.timeZone is recorded, not applied) after `lastScheduleTime` (else the creation
time) and after now - `startingDeadlineSeconds` starts a Job `<cronjob>-<minutes since the epoch>`
(SuccessfulCreate), unless suspended, already started, or forbidden by `concurrencyPolicy`: Forbid
skips it while a Job it started runs (JobAlreadyActive, lastScheduleTime unchanged, so the skipped
run starts once that Job finishes), Replace deletes the running ones (SuccessfulDelete). Status
`active` (the Jobs it started; SawCompletedJob / MissingJob take them out), `lastScheduleTime`,
`lastSuccessfulTime`; events UnexpectedJob, TooManyMissedTimes, MissSchedule, FailedCreate; finished
Jobs beyond the history limits are deleted. `kubectl create job --from=cronjob/X` is kubectl's own
(a Job owned by the CronJob, which the controller reports as UnexpectedJob and never counts as active).
Its clock can be stopped (faults.cron_clock, `POST /kubesim/v1/faults/clock`).
"""

from __future__ import annotations

import copy
import datetime
import logging
import random
import string
import uuid

from . import cron, errors, objects
from .controllers import Controller

log = logging.getLogger("kubesim.batch")

JOBS = "jobs.batch"
CRONJOBS = "cronjobs.batch"
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"
RESTART_POLICIES = ["OnFailure", "Never"]
CONCURRENCY_POLICIES = ["Allow", "Forbid", "Replace"]
BACKOFF_MESSAGE = "Job has reached the specified backoff limit"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _ts(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(ts: str | None) -> datetime.datetime | None:
    if not ts:
        return None
    try:
        return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


# ------------------------------------------------------------------ defaults, validation, admission


def default_job_spec(spec: dict) -> None:
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1 if spec.get("parallelism", 1) is not None else None)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    spec.setdefault("manualSelector", None)
    if spec.get("manualSelector") is None:
        spec.pop("manualSelector")
    tpl = spec.get("template")
    if isinstance(tpl, dict) and isinstance(tpl.get("spec"), dict):
        objects.default_pod_spec(tpl["spec"])


def default_cronjob_spec(spec: dict) -> None:
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_spec = (spec.get("jobTemplate") or {}).get("spec")
    if isinstance(job_spec, dict):
        tpl = job_spec.get("template")
        if isinstance(tpl, dict) and isinstance(tpl.get("spec"), dict):
            objects.default_pod_spec(tpl["spec"])


def _template_causes(spec: dict, prefix: str) -> list:
    tpl = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    pod_spec = tpl.get("spec")
    causes = objects._containers_causes(pod_spec, f"{prefix}.template.spec")
    policy = (pod_spec or {}).get("restartPolicy")
    if policy not in RESTART_POLICIES:
        if policy in (None, "", "Always"):
            causes.append(
                errors.field_required(
                    f"{prefix}.template.spec.restartPolicy", 'valid values: "OnFailure", "Never"'
                )
                if not policy
                else errors.field_unsupported(
                    f"{prefix}.template.spec.restartPolicy", policy, RESTART_POLICIES
                )
            )
        else:
            causes.append(
                errors.field_unsupported(f"{prefix}.template.spec.restartPolicy", policy, RESTART_POLICIES)
            )
    for field in ("parallelism", "completions", "backoffLimit"):
        value = spec.get(field)
        if value is not None and (not isinstance(value, int) or value < 0):
            causes.append(
                errors.field_invalid(f"{prefix}.{field}", value, "must be greater than or equal to 0")
            )
    return causes


def job_causes(key: str, obj: dict, old: dict | None) -> list:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [errors.field_required("spec", "")]
    causes = _template_causes(spec, "spec")
    if old is not None:
        old_spec = old.get("spec") or {}
        if old_spec.get("template") != spec.get("template"):
            causes.append(errors.field_invalid("spec.template", "", "field is immutable"))
        if old_spec.get("selector") != spec.get("selector"):
            causes.append(errors.field_invalid("spec.selector", "", "field is immutable"))
    return causes


def cronjob_causes(key: str, obj: dict, old: dict | None) -> list:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [errors.field_required("spec", "")]
    causes = []
    schedule = spec.get("schedule")
    if not schedule:
        causes.append(errors.field_required("spec.schedule", ""))
    else:
        try:
            cron.parse(schedule)
        except cron.ScheduleError as e:
            causes.append(errors.field_invalid("spec.schedule", schedule, str(e)))
    policy = spec.get("concurrencyPolicy")
    if policy not in CONCURRENCY_POLICIES:
        causes.append(errors.field_unsupported("spec.concurrencyPolicy", policy, CONCURRENCY_POLICIES))
    job_spec = (spec.get("jobTemplate") or {}).get("spec")
    if not isinstance(job_spec, dict):
        causes.append(errors.field_required("spec.jobTemplate.spec", ""))
    else:
        causes += _template_causes(job_spec, "spec.jobTemplate.spec")
    return causes


def admit_job(obj: dict) -> None:
    """The Job strategy: the uid now, and the selector and pod labels made from it (unless manualSelector)."""
    meta = obj.setdefault("metadata", {})
    meta["uid"] = str(uuid.uuid4())
    spec = obj.get("spec") or {}
    if spec.get("manualSelector"):
        return
    name, uid = meta.get("name", ""), meta["uid"]
    spec["selector"] = {"matchLabels": {CONTROLLER_UID: uid}}
    tpl_meta = spec.setdefault("template", {}).setdefault("metadata", {})
    labels = tpl_meta.setdefault("labels", {})
    labels.update({CONTROLLER_UID: uid, JOB_NAME: name, "controller-uid": uid, "job-name": name})


# ------------------------------------------------------------------ tables


def _job_status(o: dict) -> str:
    conditions = {c.get("type"): c.get("status") for c in (o.get("status") or {}).get("conditions") or []}
    if conditions.get("Complete") == "True":
        return "Complete"
    if conditions.get("Failed") == "True":
        return "Failed"
    if conditions.get("FailureTarget") == "True":
        return "FailureTarget"
    if conditions.get("SuccessCriteriaMet") == "True":
        return "SuccessCriteriaMet"
    if (o.get("spec") or {}).get("suspend"):
        return "Suspended"
    return "Running"


def job_row(o: dict) -> list:
    from .tables import age, human_duration

    spec, status = o.get("spec") or {}, o.get("status") or {}
    start, end = _parse(status.get("startTime")), _parse(status.get("completionTime"))
    duration = ""
    if start is not None:
        duration = human_duration(int(((end or _now()) - start).total_seconds()))
    completions = spec.get("completions")
    return [
        o["metadata"]["name"],
        _job_status(o),
        f"{status.get('succeeded', 0)}/{completions if completions is not None else 1}",
        duration,
        age(o["metadata"].get("creationTimestamp")),
    ]


def cronjob_row(o: dict) -> list:
    from .tables import age

    spec, status = o.get("spec") or {}, o.get("status") or {}
    last = status.get("lastScheduleTime")
    return [
        o["metadata"]["name"],
        spec.get("schedule", ""),
        spec.get("timeZone") or "<none>",
        str(bool(spec.get("suspend"))),
        len(status.get("active") or []),
        age(last) if last else "<none>",
        age(o["metadata"].get("creationTimestamp")),
    ]


# ------------------------------------------------------------------ controllers


def _conditions_true(status: dict) -> set[str]:
    return {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}


def finished(job: dict) -> str | None:
    """ "Complete" or "Failed" once the Job is done."""
    done = _conditions_true(job.get("status") or {}) & {"Complete", "Failed"}
    return next(iter(done)) if done else None


def _condition(type_: str, reason: str, message: str, at: str) -> dict:
    return {
        "type": type_,
        "status": "True",
        "lastProbeTime": at,
        "lastTransitionTime": at,
        "reason": reason,
        "message": message,
    }


def _owner_ref(obj: dict) -> dict:
    meta = obj["metadata"]
    return {
        "apiVersion": obj.get("apiVersion", "batch/v1"),
        "kind": obj.get("kind", ""),
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owned_by(obj: dict, uid: str) -> bool:
    return any(
        r.get("uid") == uid and r.get("controller") for r in obj["metadata"].get("ownerReferences") or []
    )


def _suffix() -> str:
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(5))


class JobController(Controller):
    def reconcile(self) -> None:
        for job in self.store.list(JOBS):
            if job["metadata"].get("deletionTimestamp"):
                continue
            try:
                self._sync(job)
            except errors.ApiError as e:
                log.warning("job %s/%s: %s", job["metadata"]["namespace"], job["metadata"]["name"], e)

    def _pods(self, job: dict) -> list[dict]:
        ns, uid = job["metadata"]["namespace"], job["metadata"]["uid"]
        return [p for p in self.store.list("pods", ns) if _owned_by(p, uid)]

    def _sync(self, job: dict) -> None:
        meta, spec = job["metadata"], job.get("spec") or {}
        status = dict(job.get("status") or {})
        now = _now()
        done = finished(job)
        if done:
            self._expire(job, status, now)
            return
        pods = self._pods(job)
        phase = {p["metadata"]["uid"]: (p.get("status") or {}).get("phase") for p in pods}
        succeeded = max(status.get("succeeded", 0), sum(1 for v in phase.values() if v == "Succeeded"))
        failed = max(status.get("failed", 0), sum(1 for v in phase.values() if v == "Failed"))
        active = [
            p for p in pods if phase[p["metadata"]["uid"]] not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")
        ]  # fmt: skip
        terminating = sum(1 for p in pods if p["metadata"].get("deletionTimestamp"))
        completions = spec.get("completions")
        parallelism = spec.get("parallelism", 1)
        if not spec.get("suspend") and not status.get("startTime"):
            status["startTime"] = _ts(now)
        conditions = list(status.get("conditions") or [])
        started = _parse(status.get("startTime"))
        deadline = spec.get("activeDeadlineSeconds")
        at = _ts(now)
        if (completions is not None and succeeded >= completions) or (completions is None and succeeded > 0):
            conditions += [
                _condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    at,
                ),
                _condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods", at),
            ]
            status["completionTime"] = at
            self._delete_pods(job, active)
            active = []
            self.cluster.record_event(job, "Completed", "Job completed", component="job-controller")
        elif failed > spec.get("backoffLimit", 6):
            conditions += self._fail(job, active, "BackoffLimitExceeded", BACKOFF_MESSAGE, at)
            active = []
        elif deadline and started and (now - started).total_seconds() >= deadline:
            conditions += self._fail(job, active, "DeadlineExceeded", DEADLINE_MESSAGE, at)
            active = []
        elif not spec.get("suspend"):
            remaining = (completions - succeeded) if completions is not None else parallelism
            for _ in range(max(0, min(parallelism, remaining) - len(active))):
                try:
                    active.append(self._create_pod(job))
                except errors.ApiError as e:  # Pod Security, quota, LimitRange: retried on the next pass
                    self.cluster.record_event(
                        job,
                        "FailedCreate",
                        f"Error creating: {e.status['message']}",
                        "Warning",
                        "job-controller",
                    )
                    break
        status.update(
            {
                "active": len(active),
                "succeeded": succeeded,
                "failed": failed,
                "ready": sum(1 for p in active if _ready(p)),
                "terminating": terminating,
                "uncountedTerminatedPods": {},
            }
        )
        for field in ("active", "succeeded", "failed"):
            if status[field] == 0:
                status.pop(field)
        if conditions:
            status["conditions"] = conditions
        if status != (job.get("status") or {}):
            self.store.patch_status(JOBS, meta["namespace"], meta["name"], status)

    def _fail(self, job: dict, active: list[dict], reason: str, message: str, at: str) -> list[dict]:
        """Stop the running pods; the conditions FailureTarget and Failed (and a Warning event)."""
        self._delete_pods(job, active)
        self.cluster.record_event(job, reason, message, "Warning", "job-controller")
        return [_condition("FailureTarget", reason, message, at), _condition("Failed", reason, message, at)]

    def _create_pod(self, job: dict) -> dict:
        meta, tpl = job["metadata"], (job.get("spec") or {}).get("template") or {}
        tpl_meta = tpl.get("metadata") or {}
        pod = {
            "metadata": {
                "name": f"{meta['name']}-{_suffix()}",
                "generateName": f"{meta['name']}-",
                "namespace": meta["namespace"],
                "labels": dict(tpl_meta.get("labels") or {}),
                "annotations": dict(tpl_meta.get("annotations") or {}),
                "ownerReferences": [_owner_ref(job)],
            },
            "spec": copy.deepcopy(tpl.get("spec") or {}),
        }
        if not pod["metadata"]["annotations"]:
            del pod["metadata"]["annotations"]
        created = self.cluster.create_object("pods", pod)
        self.cluster.record_event(
            job, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}", component="job-controller"
        )
        return created

    def _delete_pods(self, job: dict, pods: list[dict]) -> None:
        for pod in pods:
            self.cluster.delete_object("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
            self.cluster.record_event(
                job, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}", component="job-controller"
            )

    def _expire(self, job: dict, status: dict, now: datetime.datetime) -> None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        ended = max(
            (_parse(c.get("lastTransitionTime")) for c in status.get("conditions") or []),
            default=None,
            key=lambda t: t or now,
        )
        if ended is not None and (now - ended).total_seconds() >= ttl:
            meta = job["metadata"]
            self.cluster.delete_object(JOBS, meta["namespace"], meta["name"])


def _ready(pod: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


class CronJobController(Controller):
    """kube-controller-manager's cronjob-controller (ControllerV2): `status.active` holds the Jobs it
    started (a Job it did not start is reported, never adopted); a Forbid skip, a missed start and
    too many missed runs leave `lastScheduleTime` alone, so the skipped run starts once the running
    Job finishes (unless `startingDeadlineSeconds` has passed by then)."""

    def __init__(self, cluster) -> None:
        super().__init__(cluster)
        # (cronjob uid, reason, subject): the events of a repeated finding, recorded once. The real
        # controller records them again on each sync (at the next scheduled time, on any change of
        # its Jobs); kubesim syncs every second and would only grow the Event's count.
        self._told: set[tuple[str, str, str]] = set()

    def reconcile(self) -> None:
        for cronjob in self.store.list(CRONJOBS):
            try:
                self._sync(cronjob)
            except (errors.ApiError, cron.ScheduleError) as e:
                log.warning("cronjob %s: %s", cronjob["metadata"]["name"], e)

    def _now(self) -> datetime.datetime:
        return self.cluster.faults.cron_clock or _now()

    def _tell(self, cronjob: dict, reason: str, subject: str, message: str, type_: str = "Normal") -> None:
        told = (cronjob["metadata"]["uid"], reason, subject)
        if told not in self._told:
            self._told.add(told)
            self.cluster.record_event(cronjob, reason, message, type_, "cronjob-controller")

    def _sync(self, cronjob: dict) -> None:
        meta, spec = cronjob["metadata"], cronjob.get("spec") or {}
        status = copy.deepcopy(cronjob.get("status") or {})
        ns, uid = meta["namespace"], meta["uid"]
        jobs = [j for j in self.store.list(JOBS, ns) if _owned_by(j, uid)]
        self._prune(cronjob, spec, jobs, status)
        self._track(cronjob, jobs, status)
        if not meta.get("deletionTimestamp") and not spec.get("suspend"):
            self._schedule(cronjob, spec, status)
        if not status.get("active"):
            status.pop("active", None)
        if status != (cronjob.get("status") or {}):
            self.store.patch_status(CRONJOBS, ns, meta["name"], status)

    def _track(self, cronjob: dict, jobs: list[dict], status: dict) -> None:
        """syncCronJob's bookkeeping: finished Jobs leave `active`, the latest completion is
        `lastSuccessfulTime`, a running Job it did not start is reported, a vanished one dropped."""
        active = status.get("active") or []
        listed = {ref.get("uid") for ref in active}
        for job in jobs:
            job_uid, name = job["metadata"]["uid"], job["metadata"]["name"]
            outcome = finished(job)
            if outcome is None:
                if job_uid not in listed and not job["metadata"].get("deletionTimestamp"):
                    self._tell(
                        cronjob,
                        "UnexpectedJob",
                        job_uid,
                        f"Saw a job that the controller did not create or forgot: {name}",
                        "Warning",
                    )
                continue
            if job_uid in listed:
                active = [ref for ref in active if ref.get("uid") != job_uid]
                self.cluster.record_event(
                    cronjob,
                    "SawCompletedJob",
                    f"Saw completed job: {name}, condition: {outcome}",
                    component="cronjob-controller",
                )
            completed = (job.get("status") or {}).get("completionTime")
            if outcome == "Complete" and completed and (status.get("lastSuccessfulTime") or "") < completed:
                status["lastSuccessfulTime"] = completed
        present = {j["metadata"]["uid"] for j in jobs}
        for ref in list(active):
            if (
                ref.get("uid") not in present
                and self.store.get(JOBS, ref.get("namespace"), ref.get("name", "")) is None
            ):
                active.remove(ref)
                self.cluster.record_event(
                    cronjob,
                    "MissingJob",
                    f"Active job went missing: {ref.get('name')}",
                    component="cronjob-controller",
                )
        status["active"] = active

    def _schedule(self, cronjob: dict, spec: dict, status: dict) -> None:
        """syncCronJob from the schedule on: start the Job of the latest unmet scheduled time, or say why not."""
        now = self._now()
        due = self._due(cronjob, spec, status, now)
        if due is None:
            return
        meta = cronjob["metadata"]
        name = f"{meta['name']}-{int(due.timestamp() // 60)}"
        deadline = spec.get("startingDeadlineSeconds")
        active = status["active"]
        if deadline is not None and due + datetime.timedelta(seconds=deadline) < now:
            self._tell(
                cronjob,
                "MissSchedule",
                _ts(due),
                "Missed scheduled time to start a job: " + due.strftime("%a, %d %b %Y %H:%M:%S +0000"),
                "Warning",
            )
            return
        if any(ref.get("name") == name for ref in active) or status.get("lastScheduleTime") == _ts(due):
            return  # already processed
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and active:
            self._tell(
                cronjob,
                "JobAlreadyActive",
                _ts(due),
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            )
            return
        if policy == "Replace":
            for ref in list(active):
                self.cluster.delete_object(JOBS, ref["namespace"], ref["name"])
                active.remove(ref)
                self.cluster.record_event(
                    cronjob, "SuccessfulDelete", f"Deleted job {ref['name']}", component="cronjob-controller"
                )
        job = self._start(cronjob, spec, name, due)
        if job is not None:
            active.append(_object_reference(job))
            status["lastScheduleTime"] = _ts(due)

    def _due(
        self, cronjob: dict, spec: dict, status: dict, now: datetime.datetime
    ) -> datetime.datetime | None:
        """nextScheduleTime: the latest scheduled time after lastScheduleTime (else the creation time),
        and after now - startingDeadlineSeconds; TooManyMissedTimes past 100 missed runs."""
        schedule = cron.parse(spec.get("schedule", ""))
        earliest = _parse(status.get("lastScheduleTime")) or _parse(
            cronjob["metadata"].get("creationTimestamp")
        )
        earliest = earliest or now
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - datetime.timedelta(seconds=deadline))
        due, missed = schedule.most_recent(earliest, now)
        if due is not None and missed > 100:
            self._tell(
                cronjob,
                "TooManyMissedTimes",
                _ts(due),
                "too many missed start times. "
                "Set or decrease .spec.startingDeadlineSeconds or check clock skew",
                "Warning",
            )
        return due

    def _start(self, cronjob: dict, spec: dict, name: str, due: datetime.datetime) -> dict | None:
        """The Job (created now, or found created by this CronJob earlier), or None."""
        meta = cronjob["metadata"]
        template = spec.get("jobTemplate") or {}
        tpl_meta = template.get("metadata") or {}
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": dict(tpl_meta.get("labels") or {}),
                "annotations": {**(tpl_meta.get("annotations") or {}), SCHEDULED_AT: _ts(due)},
                "ownerReferences": [_owner_ref(cronjob)],
            },
            "spec": copy.deepcopy(template.get("spec") or {}),
        }
        if self.cluster.namespace_phase(meta["namespace"]) != "Active":
            return None  # NamespaceTerminatingCause: any creation fails, nothing is said
        try:
            created = self.cluster.create_object(JOBS, job)  # defaulted and admitted (selector) there
        except errors.ApiError as e:
            if e.status.get("reason") != "AlreadyExists":
                self.cluster.record_event(
                    cronjob,
                    "FailedCreate",
                    f"Error creating job: {e.status['message']}",
                    "Warning",
                    "cronjob-controller",
                )
                return None
            existing = self.store.get(JOBS, meta["namespace"], name)
            return existing if existing is not None and _owned_by(existing, meta["uid"]) else None
        self.cluster.record_event(
            cronjob, "SuccessfulCreate", f"Created job {name}", component="cronjob-controller"
        )
        return created

    def _prune(self, cronjob: dict, spec: dict, jobs: list[dict], status: dict) -> None:
        """cleanupFinishedJobs: the oldest finished Jobs beyond the history limits are deleted."""
        for outcome, field, default in (
            ("Complete", "successfulJobsHistoryLimit", 3),
            ("Failed", "failedJobsHistoryLimit", 1),
        ):
            done = sorted(
                (j for j in jobs if finished(j) == outcome and not j["metadata"].get("deletionTimestamp")),
                key=lambda j: (j.get("status") or {}).get("startTime") or j["metadata"]["creationTimestamp"],
            )
            limit = spec.get(field, default)
            for job in done[: max(0, len(done) - limit)]:
                self.cluster.delete_object(JOBS, job["metadata"]["namespace"], job["metadata"]["name"])
                status["active"] = [
                    ref for ref in status.get("active") or [] if ref.get("uid") != job["metadata"]["uid"]
                ]
                self.cluster.record_event(
                    cronjob, "SuccessfulDelete", f"Deleted job {job['metadata']['name']}",
                    component="cronjob-controller",
                )  # fmt: skip


def _object_reference(job: dict) -> dict:
    meta = job["metadata"]
    return {
        "kind": "Job",
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
        "apiVersion": "batch/v1",
        "resourceVersion": meta.get("resourceVersion", ""),
    }
