"""User-facing messages, kept together so wording stays consistent.

Every error message says what went wrong AND what to do, on one line.
"""

MISSING_TOOL = "{tool} was not found on PATH: install it (see the README's requirements) and retry"
COMMAND_TIMED_OUT = "`{command}` did not finish within {seconds:g}s: check the cluster and retry"
INTERRUPTED = (
    "interrupted: run the same command again to continue, or `kubectl preevy down` to remove the environment"
)

# --- options, profiles, environment ids, templates (options.py, profiles.py, envid.py, template.py) ---
INVALID_OPTION = 'invalid {option} "{value}" (from {source}): {why}'
WHY_RFC1123_LABEL = (
    "must be lowercase letters, digits and '-', start and end with a letter or digit, at most 63 characters"
)
WHY_RFC1123_SUBDOMAIN = (
    "must be lowercase letters, digits, '-' and '.', start and end with a letter or digit, "
    "at most 253 characters"
)
WHY_CONTEXT = "must be the name of a context of your kubeconfig (see `kubectl config get-contexts`)"
WHY_PATH = "must be a file path"
WHY_FILE_MISSING = "{path} does not exist: fix the path"
WHY_BOOL = "must be true or false"
WHY_STORAGE_SIZE = "must be a positive number of GiB, from 0.001 to 1000000"
UNKNOWN_OPTION = 'unknown option "{key}" (from {source}): use one of {known}'
X_PREEVY_NOT_MAPPING = "{key} (from {where}) must be a mapping: see `kubectl preevy up -h` for its options"

PROFILE_CREATED_DEFAULT = (
    "no profile yet: created profile 'default' (id default) in {path}; "
    "`kubectl preevy init NAME` creates another"
)
PROFILE_DEFAULT_NOT_SAVED = (
    "no profile yet: using profile 'default' (id default) without saving it ({reason})"
)
PROFILE_DEFAULT_DRY_RUN = "a dry run writes nothing"
PROFILE_NOT_FOUND = (
    "profile '{name}' not found on this machine nor in namespace {namespace} of the cluster: "
    "create it with `kubectl preevy init {name}`, or pass -n with the namespace that holds it"
)
PROFILE_NOT_LOCAL_CLUSTER_FAILED = (
    "profile '{name}' is not on this machine, and looking for it in the cluster failed "
    "({detail}): see `kubectl preevy profile ls`"
)
PROFILE_EXISTS = (
    "profile '{name}' already exists ({where}): change it with `kubectl preevy profile config set` "
    "or remove it with `kubectl preevy profile rm {name}`"
)
INVALID_PROFILE_NAME = (
    "invalid profile name \"{name}\": use lowercase letters, digits and '-', "
    "starting with a letter, at most 40 characters"
)
INVALID_PROFILE_ID = (
    "invalid profile id \"{id}\": use lowercase letters, digits, '-', '_' and '.', "
    "starting and ending with a letter or digit, at most 63 characters"
)
WHY_PROFILE_ID = (
    "use lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit, "
    "at most 63 characters"
)
PROFILE_FILE_INVALID = "profile file {path} is not valid ({problem}): fix it or remove it with `kubectl preevy profile rm {name}`"
PROFILE_CONFIGMAP_INVALID = (
    "profile ConfigMap {namespace}/{configmap} is not valid ({problem}): fix it with "
    "`kubectl edit configmap {configmap} -n {namespace}`"
)
PROFILE_CLUSTER_FAILED = "could not {action} profile '{name}' in the cluster: {detail}"
PROFILE_CLUSTER_LIST_FAILED = (
    "could not list the profiles kept in the cluster ({detail}): listing local ones only"
)
PROFILE_CLUSTER_OPTIONS_SKIPPED = (
    "kubeconfig and context are not stored in a cluster profile: they differ on every machine"
)
PROFILE_CLUSTER_OPTION_REFUSED = (
    "kubeconfig and context cannot be stored in a cluster profile (they differ on every "
    "machine): pass --kubeconfig/--context, or set them in a local profile"
)
PROFILE_TEMPLATE_UNREADABLE = (
    "cannot read the template {path} to store it in the cluster profile ({problem}): fix the path"
)
PROFILE_SETTING_INVALID = 'invalid setting "{setting}": use KEY=VALUE, KEY one of {known}'
PROFILE_WRITE_FAILED = "could not write {path}: {problem}"
PROFILE_CREATED = "created profile '{name}' (id {id}) {where}; it is now the current profile"
PROFILE_UPDATED = "updated profile '{name}' {where}"
PROFILE_REMOVED = "removed profile '{name}' {where}"
PROFILE_NOW_CURRENT = "profile '{name}' is now the current profile"

ENV_ID_INVALID = (
    "invalid --id \"{value}\": use lowercase letters, digits, '_' and '-', starting with a letter "
    "(e.g. --id {suggestion})"
)
ENV_ID_EMPTY = 'invalid --id "": pass a name such as --id my-feature'
ENV_ID_NO_BRANCH = "cannot tell the environment id: {reason}: pass --id NAME"
ENV_ID_DETACHED = "git HEAD in {cwd} is detached (no branch)"
ENV_ID_NO_GIT = "{cwd} is not in a git repository"
ENV_ID_GIT_MISSING = "git is not installed"

TEMPLATE_ERROR = "template {template}: {problem}"
TEMPLATE_DOCUMENT_ERROR = "template {template}, document {document}: {problem}"
TEMPLATE_UNREADABLE = "cannot read it ({problem}): check --kube-pod-template"
TEMPLATE_SYNTAX = "line {line}: {problem}: fix the template syntax"
TEMPLATE_UNDEFINED = (
    "{where}{problem}: the template can use id, namespace, labels, storageSize and storageClass"
)
TEMPLATE_RENDER_FAILED = "{where}{problem}"
TEMPLATE_UNSAFE = (
    "{where}refused: {problem}; a template is data (variables, filters, loops), it cannot reach Python"
)
TEMPLATE_YAML = (
    "invalid YAML ({problem}, line {line} of the rendered output): see `kubectl preevy up --dry-run`"
)
TEMPLATE_NOT_OBJECT = (
    "not a Kubernetes object (a mapping with apiVersion, kind and metadata.name): fix or remove that document"
)
TEMPLATE_MISSING_FIELD = "{what} has no {field}: add it to the template"
TEMPLATE_OTHER_NAMESPACE = (
    '{kind} {name} is in namespace "{namespace}", not the environment\'s namespace "{expected}": '
    "use `namespace: {{{{ namespace }}}}` or leave it out"
)
TEMPLATE_CLUSTER_SCOPED = (
    "{kind} {name} is cluster-scoped: every object of the environment must be in its namespace"
)
TEMPLATE_DUPLICATE = "{kind} {name} is also defined in document {other}: each object must be defined once"
TEMPLATE_NO_DOCKER_HOST = (
    "no StatefulSet labelled app.kubernetes.io/component: docker-host: exactly one is needed "
    "(it runs dockerd; see `kubectl preevy template`)"
)
TEMPLATE_TWO_DOCKER_HOSTS = (
    "StatefulSet {name} is labelled app.kubernetes.io/component: docker-host like the one "
    "in document {other}: exactly one is allowed"
)
TEMPLATE_NO_CONTAINERS = "StatefulSet {name} has no containers (spec.template.spec.containers): add the container that runs dockerd"
TEMPLATE_NO_NAMESPACE = "no namespace to render the template in"

# --- runtime: compose project, cluster, environment, files, Docker (up/down/connect/ls) ---

NO_COMPOSE_FILE = (
    "no compose file in {directory} (looked for {names}): run in the project directory or pass -f FILE"
)
SEVERAL_COMPOSE_FILES = "several compose files in {directory} ({files}): keep one, or choose with -f FILE"
MISSING_COMPOSE_PLUGIN = (
    "the docker compose plugin is not installed (`docker compose` is not a docker command): "
    "install docker-compose-plugin and retry"
)
INVALID_COMPOSE = (
    "invalid compose project: {error}: fix the compose file (`docker compose config` shows the problem)"
)

KUBECONFIG_BROKEN = "kubeconfig {0} cannot be read ({1}): fix the file, or pass another one with --kubeconfig"
KUBECONFIG_MISSING = (
    "kubeconfig {0} does not exist: pass an existing file with --kubeconfig, or fix $KUBECONFIG"
)
KUBECONFIG_ENV_MISSING = (
    "kubeconfig {path} (from $KUBECONFIG) does not exist: fix $KUBECONFIG, or pass an existing file "
    "with --kubeconfig"
)
CONTEXT_MISSING = (
    "context {0} is not in the kubeconfig: pass one of `kubectl config get-contexts` with --context"
)
NO_CURRENT_CONTEXT = (
    "the kubeconfig has no current context: pass --context, or select one with "
    "`kubectl config use-context NAME`"
)
NO_CLUSTER_SELECTED = (
    "the kubeconfig selects no cluster (kubectl fell back to localhost:8080): pass --context, or select one "
    "with `kubectl config use-context NAME`"
)
CLUSTER_UNREACHABLE = (
    "cannot reach the cluster at {0}: check that it is running and that the kubeconfig and "
    "context point to it (`kubectl cluster-info`)"
)
CLUSTER_UNREACHABLE_BECAUSE = (
    "cannot reach the cluster ({0}): check that it is running and that the kubeconfig and "
    "context point to it (`kubectl cluster-info`)"
)
CLUSTER_UNAUTHORIZED = (
    "the cluster refused our credentials ({detail}): log in again, or fix the kubeconfig's user"
)
NAMESPACE_MISSING = (
    "namespace {namespace} does not exist: create it with `kubectl create namespace {namespace}`, "
    "or choose another with -n"
)
KUBECTL_FAILED = (
    "`{command}` failed: {error}: fix what it says, or run the command again if the cluster was busy"
)

PORT_FORWARD_FAILED = (
    "cannot forward a port of pod {pod}: {error}: check the pod with `kubectl describe pod {pod}`"
)
NO_FREE_PORT = "no free local port at or above {port}: free one and retry"
FORWARD_LOST = "port-forward lost ({error}): reconnecting in {seconds}s"
FORWARD_RESTORED = "port-forward restored"

ENV_ID_USED = "environment id: {env_id} ({why})"
INVALID_DURATION = (
    "invalid {flag} {value!r}: use a duration with a unit on every number, such as 90s, 5m or 1h30m"
)
DUPLICATE_ENVIRONMENTS = (
    "environment {env_id} exists several times ({instances}), from concurrent runs: acting on the "
    "newest, {chosen} (as Preevy does); `{down}` removes them all"
)
LOCK_WAITING = "waiting for {holder}, which is changing environment {env_id}"
LOCK_BROKEN = (
    "the lock of environment {env_id} held by {holder} expired at {expires_at} (that run stopped without "
    "releasing it): taking it over"
)
LOCK_HOLDER_GONE = "the lock of environment {env_id} is held by {holder}, which no longer runs on this machine: taking it over"
LOCK_TIMEOUT = (
    "environment {env_id} is still locked by {holder} after {timeout}: let that run finish and retry, or "
    "pass a longer --timeout (a lock left behind by a crashed run is taken over after {expires_at})"
)
LOCK_NOT_RELEASED = (
    "could not release the lock of environment {env_id} ({error}): the next run takes it over "
    "within {seconds}s"
)
LOCK_LOST = (
    "the lock of environment {env_id} was taken over by another run (this one did not renew it in time): "
    "check the environment once both have finished"
)
CREATING = "creating environment {env_id} in namespace {namespace}"
UPDATING = "updating environment {env_id} in namespace {namespace}"
RECREATING = "deleting {instance} (and its volume) to create it again"
IMMUTABLE_CHANGE = (
    "the environment cannot be changed in place ({detail}): run `{again}` to "
    "delete it, its volume (images, volumes) included, and create it again"
)
WAITING_READY = "waiting for StatefulSet {name} to be ready"
NOT_READY = (
    "environment {env_id} not ready after {timeout}: {reason}; inspect with `kubectl describe pod {pod} "
    "-n {namespace}`, remove with `{cleanup}`"
)
REASON_NO_POD = "its pod was not created"
REASON_WAITING = "container {container} is waiting ({reason}): {message}"
REASON_EXITED = "container {container} exited with code {code} (restart count {restarts})"
REASON_LAST_LOG_LINE = "{reason}, its last log line: {line}"
REASON_NOT_READY = "pod {pod} runs but is not ready (its readiness probe fails)"
NO_READY_POD = (
    "no ready pod of StatefulSet {name} (environment {env_id}) in namespace {namespace}: run `{again}` again"
)
SYNCING = "copying files into {pod}:{directory}"
SYNC_MISSING_SOURCE = (
    "{path} does not exist: the pod gets an empty directory there, as docker compose would create"
)
HOST_PATHS_KEPT = "kept as the Docker host's own (not copied): {paths}"
MISSING_SOURCES = "{problems}: docker compose would refuse it too; create it or fix the compose file"
MISSING_BIND = "bind source {path} of service {service} does not exist (long syntax, create_host_path false)"
MISSING_BUILD_CONTEXT = "build context {path} of service {service} does not exist"
MISSING_DOCKERFILE = "Dockerfile {path} of service {service} does not exist"
MISSING_FILE = "{what} {name} of service {service}: file {path} does not exist"
OUTSIDE_PROJECT = (
    "not copied into the cluster: {paths} (outside the project {root}); to copy them, pass "
    "--copy-outside PATH for each, or list them in x-preevy {key}: [PATH, ...]"
)
X_PREEVY_COPY_OUTSIDE_INVALID = "x-preevy {key} must be a list of paths"
SYNC_KEPT = (
    "kept the pod's version of {count} path(s) that differ from yours and that this tool did not write "
    "(a container's, or an older version's copy): {paths} (under {directory} in the pod); remove them "
    "there to have yours copied"
)
SYNC_IN_PLACE = "rewritten in place, running containers see the change: {paths}"
SYNC_CHANGED_RETRY = "changed while being copied, copying again: {paths}"
SYNC_CHANGED_AS_READ = (
    "changed again while being copied, the pod has them as read (the next `up` copies them again): {paths}"
)
DRY_RUN_NEW_POD = "a new pod"
DRY_RUN_COPY = (
    "up would copy {files} files ({size}, {size_bytes} bytes) into {where}:{directory}, "
    "{unchanged} unchanged, {deleted} deleted"
)
SYNC_SUMMARY = "synced {files} {noun} ({size}), {unchanged} unchanged, {deleted} deleted"
SYNC_STREAM = ", as {stream}"
LOCAL_FILE_UNREADABLE = (
    "cannot read {path} ({error}): make it readable, or remove it from the compose file's volumes"
)
FILE_SYNC_FAILED = (
    "copying files into the pod failed: {error}: check that its first container has sh, tar, find and mkfifo"
)
DOCKER_NOT_ANSWERING = "the Docker server of pod {pod} did not answer within {timeout} ({error}): check its logs with `kubectl logs {pod}`"
DOCKER_API_FAILED = "the Docker server answered {status} to {path}: {error}"
COMPOSE_UP = "docker compose up (project {project})"
COMPOSE_UP_FAILED = (
    "`docker compose up` failed (exit code {code}; its output is above): fix the project and run "
    "`{again}` again, or `{down}` to remove the environment"
)
PROVISIONED = "Preview environment {env_id} provisioned at: StatefulSet/{name} of namespace {namespace}"
CONNECT_HINT = "these URLs work on this machine while `{command}` runs"
NO_PUBLISHED_PORTS = "no service publishes a port"

UNKNOWN_ENVIRONMENT = "no environment {env_id} in namespace {namespace}: see `{ls}`"
UNKNOWN_ENVIRONMENT_DOWN = UNKNOWN_ENVIRONMENT + ", or pass --force to ignore"
DELETING = "deleting {instance} in namespace {namespace}"
DELETE_TIMEOUT = (
    "objects of {instance} still exist after {timeout}: see `kubectl get all,pvc -n {namespace} -l "
    "preevy.dev/instance={instance}`, and run `{again}` again"
)

NO_ENVIRONMENTS = "no environment of profile '{profile}' in namespace {namespace}"

NOTHING_TO_CONNECT = "no service of the environment publishes a port: add `ports:` to the compose file"
CONNECTED = "forwarding to the environment; press Ctrl-C to stop"
CONNECT_STOPPED = "stopped forwarding"

# --- failures: retries, validation, interruptions, repairs (issue 9) ---
RETRYING = "`{command}` failed ({error}): retrying in {seconds:g}s"
VALIDATION_FAILED = (
    "the cluster refused the environment's objects in a dry run ({detail}); nothing was created: "
    "fix the template or the options (`kubectl preevy up --dry-run` prints the objects)"
)
VALIDATION_REFUSED = (
    "the cluster would refuse the environment's objects ({detail}); nothing was created: "
    "ask for the missing rights or policy exception, or change the template"
)
FIRST_APPLY_FAILED_CLEANED = "the first apply failed: removed what it had created of {instance}"
FIRST_APPLY_CLEANUP_FAILED = (
    "the first apply failed and removing what it created failed too ({error}): `{cleanup}` removes it"
)
TYPE_NOT_SERVED = "the cluster no longer serves {type}: nothing of that type to delete"
STUCK_ROLLOUT_REPAIRED = (
    "pod {pod} is not ready and runs the previous template (revision {old}, the StatefulSet wants {new}): "
    "deleting it so that the new template rolls out (kubernetes/kubernetes#67250)"
)
INTERRUPTED_HINT = "interrupted: run `{again}` to continue, or `{down}` to remove the environment"
INTERRUPTED_DOWN = "interrupted: run `{again}` to finish deleting the environment"
TIMEOUT_TOO_LONG = "invalid {flag} {value!r}: at most {maximum} (a longer wait is a hang; use a shorter one)"
POD_RESTARTED_DURING = (
    "pod {pod} {what} during {step}: {detail}: run `{again}` again (the copy and the start pick up where "
    "they stopped)"
)
POD_REPLACED = "was replaced"
POD_CONTAINER_RESTARTED = "had its container {container} restarted"
POD_GONE = "went away"
FORWARD_DROPPED_DURING_COMPOSE = (
    "the port-forward to the Docker server of pod {pod} dropped during `docker compose up` ({error}): "
    "run `{again}` again"
)
DOCKERD_STOPPED = (
    "the Docker server of pod {pod} stopped answering during {step} ({error}): see `kubectl logs {pod} -n "
    "{namespace}`, then run `{again}` again"
)
RETRYING_STEP = "{problem}: trying once more"

# Lifetime: ttl, sleep-after, sleep, wake, gc (issue 11)
WHY_DURATION = "must be a duration such as 90s, 30m, 8h or 3d"
SLEEPING = "sleeping {env_id}: scaling StatefulSet/{name} to 0 (its volume is kept)"
SLEPT = "{env_id} sleeps; `{command}` brings it back"
ALREADY_SLEEPING = "{env_id} already sleeps"
WAKING = "waking {env_id}: scaling StatefulSet/{name} back to 1"
ALREADY_AWAKE = "{env_id} is running"
RESTARTING_SERVICES = "restarting the services of project {project} from the model stored in the pod"
SLEEP_TIMEOUT = (
    "pod {pod} is still there {timeout} after scaling to 0: see `kubectl describe pod {pod} -n {namespace}`, "
    "then run `{command}` again"
)
NO_STORED_MODEL = (
    "the pod of {env_id} holds no compose model ({path}): run `kubectl preevy up` in the project to "
    "deploy it again"
)
GC_LOCKED = "locked by another run"
GC_NOTHING = "nothing to collect in {scope}"
GC_SCOPE_ALL = "any namespace"
GC_SCOPE_NAMESPACE = "namespace {namespace}"
GC_REASON_EXPIRED = "expired at {expires_at}"
GC_REASON_IDLE = "idle since {since} (sleep-after {sleep_after})"
GC_CHANGED = "changed meanwhile (renewed, woken or deleted)"
GC_FAILED = "gc of {env_id} failed: {error}"

# Pull/merge request comments and CI outputs (issue 11)
PR_NOT_CI = "not a GitHub Actions or GitLab CI job"
PR_NOT_A_PR = "not a {provider} pull/merge request job (nothing in {where})"
PR_NO_TOKEN = "no token: set {variables}"
PR_COMMENT_SKIPPED = "pull request comment skipped: {why}"
PR_COMMENT_IMPOSSIBLE = (
    "cannot comment on the pull request: {why} (or pass --pr-comment auto to skip outside pull requests)"
)
PR_COMMENT_DONE = "pull request comment {outcome}: {target}"
PR_API_FAILED = "commenting on {target} failed: {method} {path}: {error}: check the token's permissions"
PR_TEMPLATE_ERROR = (
    "the pull request comment template does not render: {error}: fix it, or drop --pr-comment-template"
)
PR_TEMPLATE_UNREADABLE = "cannot read the pull request comment template {path} ({error})"
CI_OUTPUT_UNWRITABLE = "cannot write the CI output {path} ({error})"
CI_DOTENV_WRITTEN = "URLs written to {path} (dotenv, for GitLab environment:url)"
PR_COMMENT_MODE = "invalid pull request comment mode {mode!r} (from $PREEVY_PR_COMMENT): use one of {modes}"
GC_BAD_SCHEDULE = (
    "invalid --schedule {schedule!r}: use 5 cron fields (minute hour day-of-month month day-of-week), "
    "e.g. '*/30 * * * *', or @hourly/@daily"
)
GC_BAD_IMAGE = (
    "invalid --image {image!r}: use an image reference such as registry.example/kubectl-preevy-gc:0.1.0"
)
GC_INSTALLED = (
    "CronJob {name} in namespace {namespace} runs `kubectl preevy gc` on {schedule!r} with image {image}, "
    "as ServiceAccount {name} (Role {name})"
)
GC_RUN_NOW = "run it now: kubectl create job {name}-now --from=cronjob/{name} -n {namespace}"
GC_REASON_UNFINISHED = "its deletion did not finish"
# --- diagnostics, connection flags (issue 15) ---------------------------------------------------------
INVALID_REQUEST_TIMEOUT = (
    "invalid --request-timeout {value!r}: use a number of seconds or a duration with a unit on every "
    "part, such as 30s, 2m or 1m30s (0: no timeout)"
)
INVALID_INSECURE_FLAG = "invalid --insecure-skip-tls-verify={value!r}: use true or false"
INTERNAL_ERROR = (
    "internal error (a bug in kubectl-preevy): {error}; the traceback and the commands run are in {log}: "
    "please attach it to a bug report (check it for anything you would not share)"
)
INTERNAL_ERROR_NO_LOG = (
    "internal error (a bug in kubectl-preevy): {error} (no log file: {reason}); run again with -vv "
    "and attach the output to a bug report"
)
LOG_WRITTEN = "the commands run and their full output: {log}"
USER_MISSING = "kubeconfig user {0} does not exist: pass one of `kubectl config get-users` with --user"
CLUSTER_MISSING = (
    "kubeconfig cluster {0} does not exist: pass one of `kubectl config get-clusters` with --cluster"
)
CERTIFICATE_AUTHORITY_UNREADABLE = (
    "cannot read the certificate authority {0} ({1}): pass a readable file with --certificate-authority"
)
KUBECTL_REFUSED = (
    "the cluster refused `{command}`: {error}: ask your cluster admin for the rights (or a policy exception), "
    "or use another namespace"
)
ENVIRONMENT_SLEEPS = "{env_id} sleeps (scaled to 0): wake it with `{command}`"

# checks before `up` and `kubectl preevy doctor` (preflight.py), refusals while waiting (diagnosis.py)
NAMESPACE_TERMINATING = (
    "namespace {namespace} is being deleted (Terminating): wait until `kubectl get namespace {namespace}` "
    "says NotFound and create it again, or choose another with -n"
)
PERMISSION_MISSING = "{permission} in namespace {namespace} ({why}; needed by {commands})"
PERMISSION_OPTIONAL = "{permission} is not allowed: {why} is not checked"
PERMISSION_FIX = (
    "have an administrator apply the Role printed by `kubectl preevy rbac -n {namespace}` "
    "(all checks: `kubectl preevy doctor -n {namespace}`)"
)
REFUSED_PERMISSIONS = "`kubectl preevy {command}` needs permissions this identity lacks: {missing}; {fix}"
PSA_SKIPPED = "the Pod Security check is skipped: cannot read namespace {namespace} ({error})"
PSA_REFUSED = (
    'namespace {namespace} enforces Pod Security "{level}", which refuses the pods of {what}: {violations}'
)
PSA_WARNED = 'Pod Security "{level}" would warn about {what}: {violations}'
PSA_FIX = (
    "use a template without privileged containers (`kubectl preevy template --variant sysbox`), or have an "
    "administrator run `kubectl label namespace {namespace} "
    "pod-security.kubernetes.io/enforce=privileged --overwrite`"
)
STORAGE_CLASS_SKIPPED = "the StorageClass check is skipped: cannot read StorageClasses ({error})"
NO_DEFAULT_STORAGE_CLASS = "the cluster has no default StorageClass: the volume claim would stay Pending"
STORAGE_CLASS_MISSING = "StorageClass {name} does not exist: the volume claim would stay Pending"
STORAGE_CLASS_FIX = "choose one with --kube-pod-storage-class NAME (see `kubectl get storageclass`)"
QUOTA_SKIPPED = "the quota check is skipped: cannot read ResourceQuotas ({error})"
QUOTA_SHORT = "ResourceQuota {quota} refuses the environment: {detail}"
QUOTA_FIX = (
    "free some of it, or have an administrator raise it (`kubectl describe resourcequota {quota} -n "
    "{namespace}`), or lower the template's requests and --kube-pod-storage-size"
)
APPLY_WARNING = "the cluster warns: {warning}"
FAILED_CREATE_PSA = 'the namespace\'s Pod Security policy "{level}" refuses the pod: {violations}'
FAILED_CREATE_QUOTA = "a ResourceQuota refuses the pod or its volume claim: {detail}"
QUOTA_FIX_ANY = (
    "free some of it, or have an administrator raise it (`kubectl describe resourcequota -n {namespace}`), "
    "or lower the template's requests and --kube-pod-storage-size"
)
FAILED_CREATE = "StatefulSet {statefulset} cannot create its pod: {detail}"
FAILED_CREATE_FIX = "see `kubectl describe statefulset {statefulset} -n {namespace}`"
IMAGE_PULL_FAILED = "container {container} cannot pull image {image}: {detail}"
IMAGE_PULL_FIX = (
    "fix the template's image (`kubectl preevy template` shows the default), or give the pod access to "
    "the registry (imagePullSecrets)"
)
OOM_KILLED = (
    "container {container} was killed for exceeding its memory limit (OOMKilled, restart count {restarts})"
)
OOM_FIX = "raise resources.limits.memory of the container in your template (`kubectl preevy template`)"
CRASH_LOOP = "container {container} keeps exiting (CrashLoopBackOff)"
CRASH_FIX = "see `kubectl logs --previous` of the pod"
CLAIM_PENDING = "volume claim {claim} stays Pending: {detail}"
REFUSED_WHILE_WAITING = "environment {env_id} cannot start: {reason}; {fix}; remove it with `{cleanup}`"
DELETE_REFUSED = (
    "deleted what this identity may; the cluster refused: {refused}: have an administrator grant "
    "`kubectl preevy rbac -n {namespace}`, then run `{again}` again"
)
NAMESPACE_TERMINATING_AT = (
    "namespace {0} is being deleted (Terminating): wait until `kubectl get namespace {0}` says NotFound "
    "and create it again, or choose another with -n"
)
RBAC_HINT = (
    ": have an administrator apply the Role printed by `kubectl preevy rbac -n {namespace}` (all checks: "
    "`kubectl preevy doctor`)"
)
DOCTOR_FAILED = "{count} check(s) failed, the first: {first} (the table above says how to fix each)"

# --- exposing environments (expose.py, commands/urls.py) ---
WHY_EXPOSE = "must be none, gateway or ingress"
WHY_DOMAIN = (
    "must be a DNS domain (lowercase letters, digits, '-' and '.', at most 189 characters), "
    "e.g. pr.example.com, whose wildcard *.pr.example.com points at your ingress or Gateway"
)
WHY_GATEWAY = "must be NAME or NAMESPACE/NAME of an existing Gateway (see `kubectl get gateways -A`)"
EXPOSE_NEEDS = (
    "expose {mode} (from {source}) needs {option}: pass {flag} (or set it in the profile or x-preevy)"
)
NOT_ROUTABLE_HOST_NETWORK = "network_mode: host (it shares the pod's network; no port is published to route)"
NOT_ROUTABLE_PROTOCOL = "{protocol} (HTTP routes and port-forwards carry TCP only)"
GATEWAY_API_MISSING = (
    "the cluster does not serve the Gateway API (gateway.networking.k8s.io/v1): "
    "install a Gateway API implementation, or use --expose ingress"
)
GATEWAY_NOT_FOUND = "Gateway {gateway} not found: pass --gateway NAMESPACE/NAME of an existing one (see `kubectl get gateways -A`)"
GATEWAY_NO_LISTENER_FOR_DOMAIN = (
    "hostname not matched by any listener: no HTTP/HTTPS listener of Gateway {gateway} accepts hostnames "
    "under {domain} (its listeners: {listeners}); use a --domain one of them matches"
)
GATEWAY_NAMESPACE_NOT_ALLOWED = (
    "listener does not allow routes from this namespace: no listener of Gateway {gateway} accepts routes "
    "from namespace {namespace} (allowedRoutes); ask its owner to allow it, or use another --gateway or -n"
)
NO_INGRESS_CLASS = (
    "no IngressClass: the cluster has no default IngressClass (classes: {classes}); "
    "pass --ingress-class, or ask an admin to install an ingress controller"
)
INGRESS_CLASS_NOT_FOUND = "IngressClass {name} not found: pass --ingress-class with one of: {classes}"
TLS_SECRET_NOT_FOUND = (
    "Secret {name} not found in namespace {namespace}: create it "
    "(`kubectl create secret tls {name} --cert=... --key=...`) or drop --tls-secret"
)
WAITING_ROUTES = "waiting until the {kind} objects ({count}) are accepted"
ROUTE_REFUSED = "Gateway {gateway} refused HTTPRoute {route}: {explanation}; fix it and run up again, or remove the environment with `{hint}`"
REFUSED_NAMESPACE = "listener does not allow routes from this namespace ({namespace})"
REFUSED_HOSTNAME = "hostname not matched by any listener ({hosts})"
REFUSED_NO_PARENT = "Gateway {gateway} not found"
ROUTE_NOT_ACCEPTED = (
    "HTTPRoute {names} not accepted within {timeout} ({detail}): check the Gateway's controller, "
    "then run up again or `{hint}`"
)
INGRESS_NO_ADDRESS = (
    "Ingress {names} got no address within {timeout} ({detail}): is an ingress controller serving its class? "
    "Then run up again or `{hint}`"
)
NO_CONTROLLER_STATUS = "no status from any controller"
NOT_EXPOSED = (
    "environment {env_id} has no public URLs (it was brought up with --expose none): "
    "`{command}` forwards its ports to localhost"
)
NO_MATCHING_URL = "no URL for {what} in environment {env_id}: its services are {services}"
EXPOSE_DRY_RUN_URLS = "the public URLs would be:"
URLS_WRITTEN = "URLs written to {path}"
SHARED = (
    "shared environment {env_id} for {ttl}: save this kubeconfig to FILE and send it privately; "
    "with it `{command}` forwards its ports (get and port-forward of pod {pod}, nothing else); "
    "`kubectl preevy down` removes the access"
)
GATEWAY_NOT_READABLE = (
    "cannot read Gateway {gateway} (forbidden): assuming an HTTPS listener on 443 for the URLs; "
    "its controller's answer on the HTTPRoutes decides"
)
NOTHING_TO_CONNECT_ROUTABLE = (
    "no port of the environment can be forwarded ({why}): publish a TCP port to reach a service"
)
EXPOSE_OPTIONS_IGNORED = "{options} apply to --expose ingress only: ignored with --expose {mode}"

SYNC_EXCLUDE_INVALID = (
    "x-preevy.sync in {file} must be a mapping with `exclude:`, a list of globs (.dockerignore syntax, "
    "relative to the project directory): fix it and run the command again"
)
UNCHANGED = "environment {env_id} in namespace {namespace} is unchanged and ready: not applied again"
# --- day two, Preevy interop (issue 12) ----------------------------------------------------------------------
PREEVY_TEMPLATE_KEPT = (
    "environment {env_id} was made by Preevy with its default template: updating it with the same "
    "objects (`kubectl preevy template --variant preevy`), so Preevy keeps recognizing it"
)
PREEVY_AGENT_KEPT = (
    "keeping Preevy's agent ({containers}): `docker compose up` runs without --remove-orphans for this "
    "project, so other containers the compose files no longer have are kept too"
)
MODEL_NOT_STORED = (
    "could not write the compose model into pod {pod} (/var/lib/preevy/projects): {error}; "
    "run `kubectl preevy up` again"
)
NO_REMOTE_PROJECT = (
    "pod {pod} holds no compose project yet (/var/lib/preevy/projects/*/docker-compose.yaml): "
    "run `{hint}` in the project first"
)
NO_REMOTE_PROJECT_NAMED = (
    "pod {pod} holds no compose project {project} (/var/lib/preevy/projects/{project}/docker-compose.yaml): "
    "run `{hint}` in that project first, or drop -p"
)
UNKNOWN_SERVICES = "no service {services} in project {project} (its services: {known})"
LOGS_STOPPED = "stopped following the logs"
STATUS_NO_CONTAINERS = "no containers: run `kubectl preevy up` in the project"
PURGE_ALL_PROFILES = "every profile"
PURGE_NOTHING = "nothing to purge: no environment of {whose} in namespace {namespace}"
PURGE_NEEDS_YES = (
    "purge would delete {count} environment(s) and their volumes, and stdin is not a terminal to confirm: "
    "run `{command}`"
)
PURGE_CONFIRM = (
    "delete {count} environment(s) of {whose} in namespace {namespace}, volumes included ({envs})? [y/N] "
)
PURGE_DECLINED = "nothing deleted"
MODEL_FROM_CONTAINERS = (
    "pod {pod} holds no stored compose model: using project {project} as its containers tell it "
    "(the next `kubectl preevy up` stores the model)"
)
