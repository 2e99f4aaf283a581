"""The environment template: render (Jinja2, compatible with Preevy's nunjucks templates), parse, validate,
and add Preevy's labels and annotations.

Template variables (Preevy's contract): id, namespace, labels, storageSize, storageClass (may be undefined).
"""

import copy
import datetime
import functools
import json
import pathlib
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from kubectl_preevy import __version__, messages, naming
from kubectl_preevy.errors import ExitCode, PreevyError

if TYPE_CHECKING:
    import jinja2
    import markupsafe
    import yaml

    from kubectl_preevy.options import Options

_importing_renderer = threading.Lock()


def import_renderer() -> None:
    """Jinja2's sandbox and YAML imported, by one thread at a time: two threads importing Jinja2's package
    at once may see it partially initialized (an ImportError). `up` imports them ahead, beside its reads."""
    with _importing_renderer:
        import jinja2.exceptions
        import jinja2.sandbox  # noqa: F401
        import yaml  # noqa: F401


OPTIONAL_VARIABLES = frozenset({"storageClass"})
PVC_TYPE = {"apiVersion": "v1", "kind": "PersistentVolumeClaim"}
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "StorageClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PriorityClass",
        "RuntimeClass",
        "IngressClass",
        "CSIDriver",
        "CSINode",
        "VolumeAttachment",
        "APIService",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "CertificateSigningRequest",
        "FlowSchema",
        "PriorityLevelConfiguration",
    }
)
# Strings YAML (1.1, as kubectl reads it) could take for something else, beyond what PyYAML's resolver knows.
_YAML_1_1_BOOLEANS = frozenset({"y", "n"})
_PLAIN_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


class TemplateLabels(dict[str, str]):
    """The `labels` variable: iterates as (key, value) pairs like a nunjucks object (`{% for k, v in labels %}`),
    and is otherwise a plain mapping (`labels['x']`, `labels | length`, `labels.items()`)."""

    def __iter__(self) -> Iterator[tuple[str, str]]:  # type: ignore[override]  # nunjucks' iteration
        return iter(dict.items(self))


def template_labels(profile_id: str, instance: str) -> dict[str, str]:
    """The `labels` Preevy renders templates with (selector and pod labels of the docker-host StatefulSet)."""
    return {naming.LABEL_PROFILE_ID: profile_id, naming.LABEL_INSTANCE: instance}


# --- YAML-safe output --------------------------------------------------------------------------------


def yaml_value(value: object) -> str:
    """How `{{ value }}` is written: a plain scalar where YAML reads it back unchanged, else a JSON scalar.

    So an id, label, namespace or storage class can never inject YAML, while `{{ storageSize }}Gi` and
    `name: {{ id }}-sa` render as Preevy's templates expect. `| safe` (or `| dump`) writes text as is.
    """
    import jinja2
    import markupsafe

    if isinstance(value, jinja2.Undefined):
        return str(value)  # "" for an optional variable (storageClass), else StrictUndefined raises
    if value is None:
        return ""
    if isinstance(value, markupsafe.Markup):
        return str(value)
    if isinstance(value, (int, float)):  # booleans too: true / false
        return naming.js_number(value)
    if isinstance(value, str):
        return value if is_plain_yaml(value) else json.dumps(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(dict(value.items()) if isinstance(value, dict) else list(value))
    return yaml_value(str(value))


def is_plain_yaml(text: str) -> bool:
    """Whether text written unquoted is read back by YAML (in any position) as this same string."""
    import yaml

    if not _PLAIN_SAFE.fullmatch(text) or text.lower() in _YAML_1_1_BOOLEANS:
        return False
    tag: str = yaml.resolver.Resolver().resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return tag == "tag:yaml.org,2002:str"


def _dump(value: object, indent: int | None = None) -> "markupsafe.Markup":
    """nunjucks' `dump` filter: JSON, written as is."""
    import markupsafe

    return markupsafe.Markup(json.dumps(value, indent=indent))


# --- rendering ----------------------------------------------------------------------------------------


def template_source(options: "Options", variant: str = "default") -> tuple[str, str]:
    """(display name, text) of the template of these options: the file, else the bundled variant."""
    from kubectl_preevy import resources

    if options.template is None:
        bundled = resources.TEMPLATE_VARIANTS[variant]
        return resources.template_display_name(bundled), resources.template_text(bundled)
    name = str(options.template)
    source = options.sources.get("template", "")
    if source.startswith("profile ") and pathlib.Path(name).parent.match("kubectl-preevy/templates"):
        name += f" (kept in the cluster by {source})"  # the local copy of a cluster profile's template
    try:
        return name, pathlib.Path(options.template).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        problem = getattr(err, "strerror", None) or str(err)
        raise PreevyError(
            messages.TEMPLATE_ERROR.format(
                template=options.template, problem=messages.TEMPLATE_UNREADABLE.format(problem=problem)
            ),
            ExitCode.USAGE,
        ) from None


class TemplateObjects(list[dict[str, Any]]):
    """The validated objects of a rendered template, and `template_hash`: Preevy's hash of the documents
    exactly as rendered and parsed (empty ones included), before any namespace or metadata is filled in."""

    def __init__(self, objects: list[dict[str, Any]], template_hash: str) -> None:
        super().__init__(objects)
        self.template_hash = template_hash


def render_template(
    options: "Options",
    instance: str,
    labels: dict[str, str],
    *,
    namespace: str | None = None,
    variant: str = "default",
) -> "TemplateObjects":
    """The template's objects: rendered, parsed and validated (PreevyError naming the file and document).

    namespace: the environment's (resolved) namespace, when options.namespace is None. Objects without a
    namespace get it; the returned list holds the non-empty documents in template order.
    variant: which bundled template, when options.template is None (resources.TEMPLATE_VARIANTS).
    """
    name, text = template_source(options, variant)
    namespace = namespace or options.namespace
    if not namespace:
        raise PreevyError(
            messages.TEMPLATE_ERROR.format(template=name, problem=messages.TEMPLATE_NO_NAMESPACE)
        )
    context = {
        "id": instance,
        "namespace": namespace,
        "labels": TemplateLabels(labels),
        "storageSize": _storage_size(options.storage_size),
    }
    if options.storage_class is not None:
        context["storageClass"] = options.storage_class
    rendered = render_text(name, text, context)
    documents = parse_documents(name, rendered)
    rendered_hash = naming.template_hash(documents)  # before validate_objects fills in namespaces
    return TemplateObjects(validate_objects(name, documents, namespace), rendered_hash)


def _storage_size(size: float) -> int | float:
    return int(size) if float(size).is_integer() else size


def render_text(name: str, text: str, context: dict[str, Any]) -> str:
    """Render template text with Jinja2, as nunjucks would render it for Preevy.

    The environment is sandboxed and immutable: a template is data (it may come from a ConfigMap that
    others can edit), so reaching Python internals (`__globals__`, `__class__`, `os.system`...) or
    mutating the variables is refused, and nothing the template says runs on this machine.
    """
    import_renderer()
    import jinja2
    import jinja2.exceptions
    import jinja2.sandbox

    environment = jinja2.sandbox.ImmutableSandboxedEnvironment(
        loader=jinja2.FunctionLoader(lambda _: (text, name, lambda: True)),
        undefined=_undefined_class(),
        finalize=yaml_value,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.filters["dump"] = _dump
    try:
        return environment.get_template(name).render(context)
    except jinja2.exceptions.SecurityError as err:
        problem = messages.TEMPLATE_UNSAFE.format(where=_template_line(name), problem=str(err).rstrip("."))
    except jinja2.TemplateSyntaxError as err:
        problem = messages.TEMPLATE_SYNTAX.format(line=err.lineno, problem=err.message)
    except jinja2.UndefinedError as err:
        problem = messages.TEMPLATE_UNDEFINED.format(where=_template_line(name), problem=err.message)
    except (
        jinja2.TemplateError,
        TypeError,
        ValueError,
        ArithmeticError,
        AttributeError,
        KeyError,
        IndexError,
    ) as err:
        problem = messages.TEMPLATE_RENDER_FAILED.format(
            where=_template_line(name), problem=str(err) or type(err).__name__
        )
    raise PreevyError(messages.TEMPLATE_ERROR.format(template=name, problem=problem), ExitCode.USAGE)


def _template_line(name: str) -> str:
    """`line N: ` of the template frame of the exception being handled (Jinja2 rewrites tracebacks so)."""
    traceback = sys.exc_info()[2]
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == name:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return f"line {line}: " if line else ""


@functools.cache
def _undefined_class() -> "type[jinja2.Undefined]":
    import jinja2

    class TemplateUndefined(jinja2.StrictUndefined):
        """StrictUndefined, except the optional variables (storageClass): falsy and empty, as in nunjucks."""

        def _optional(self) -> bool:
            return self._undefined_name in OPTIONAL_VARIABLES and self._undefined_obj is jinja2.utils.missing

        def __bool__(self) -> bool:  # type: ignore[override]  # StrictUndefined raises; ours may not
            return False if self._optional() else super().__bool__()

        def __str__(self) -> str:  # type: ignore[override]
            return "" if self._optional() else super().__str__()

    return TemplateUndefined


# --- parsing and validation ---------------------------------------------------------------------------


def _yaml_loader() -> "type[yaml.SafeLoader]":
    import yaml

    base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class TemplateLoader(base):  # type: ignore[valid-type,misc]  # the C loader when PyYAML has it
        """Safe loading, with timestamps kept as strings (objects go out as JSON, as kubectl reads them)."""

    TemplateLoader.add_constructor(
        "tag:yaml.org,2002:timestamp", yaml.constructor.SafeConstructor.construct_yaml_str
    )
    return TemplateLoader


def parse_documents(name: str, rendered: str) -> list[Any]:
    """The rendered YAML documents, in order (None for an empty one)."""
    import yaml

    documents = []
    try:
        for document in yaml.load_all(rendered, Loader=_yaml_loader()):
            documents.append(document)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise PreevyError(
            messages.TEMPLATE_DOCUMENT_ERROR.format(
                template=name,
                document=len(documents) + 1,
                problem=messages.TEMPLATE_YAML.format(problem=problem, line=mark.line + 1 if mark else "?"),
            ),
            ExitCode.USAGE,
        ) from None
    return documents


def validate_objects(name: str, documents: list[Any], namespace: str) -> list[dict[str, Any]]:
    """The non-empty documents, checked as environment objects; missing namespaces filled in."""
    objects: list[dict[str, Any]] = []
    seen: dict[tuple[str, str, str], int] = {}
    docker_hosts: list[int] = []

    def fail(number: int, problem: str) -> PreevyError:
        return PreevyError(
            messages.TEMPLATE_DOCUMENT_ERROR.format(template=name, document=number, problem=problem),
            ExitCode.USAGE,
        )

    for number, document in enumerate(documents, start=1):
        if document is None:
            continue
        problem = _object_problem(document, namespace)
        if problem:
            raise fail(number, problem)
        kind, object_name = document["kind"], document["metadata"]["name"]
        key = (
            document["apiVersion"].split("/")[0] if "/" in document["apiVersion"] else "",
            kind,
            object_name,
        )
        if key in seen:
            raise fail(
                number, messages.TEMPLATE_DUPLICATE.format(kind=kind, name=object_name, other=seen[key])
            )
        seen[key] = number
        if is_docker_host(document):
            if docker_hosts:
                raise fail(
                    number, messages.TEMPLATE_TWO_DOCKER_HOSTS.format(name=object_name, other=docker_hosts[0])
                )
            if not _containers(document):
                raise fail(number, messages.TEMPLATE_NO_CONTAINERS.format(name=object_name))
            docker_hosts.append(number)
        objects.append(document)
    if not docker_hosts:
        raise PreevyError(
            messages.TEMPLATE_ERROR.format(template=name, problem=messages.TEMPLATE_NO_DOCKER_HOST),
            ExitCode.USAGE,
        )
    return objects


def _object_problem(document: object, namespace: str) -> str | None:
    """What is wrong with one document as an object of the environment (fills in a missing namespace)."""
    if not isinstance(document, dict):
        return messages.TEMPLATE_NOT_OBJECT
    kind = document.get("kind")
    what = kind if isinstance(kind, str) and kind else "object"
    for field in ("apiVersion", "kind"):
        if not isinstance(document.get(field), str) or not document[field]:
            return messages.TEMPLATE_MISSING_FIELD.format(what=what, field=field)
    metadata = document.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        return messages.TEMPLATE_MISSING_FIELD.format(what=what, field="metadata.name")
    if kind in CLUSTER_SCOPED_KINDS:
        return messages.TEMPLATE_CLUSTER_SCOPED.format(kind=kind, name=metadata["name"])
    object_namespace = metadata.get("namespace")
    if object_namespace in (None, ""):
        metadata["namespace"] = namespace
    elif object_namespace != namespace:
        return messages.TEMPLATE_OTHER_NAMESPACE.format(
            kind=kind, name=metadata["name"], namespace=object_namespace, expected=namespace
        )
    return None


def _containers(statefulset: dict[str, Any]) -> list[Any]:
    containers = (((statefulset.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")
    return containers if isinstance(containers, list) else []


def is_docker_host(obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return (
        obj.get("kind") == "StatefulSet"
        and labels.get(naming.LABEL_COMPONENT) == naming.DOCKER_HOST_COMPONENT
    )


def docker_host_statefulset(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The StatefulSet labelled app.kubernetes.io/component: docker-host (validated: exactly one)."""
    for obj in objects:
        if is_docker_host(obj):
            return obj
    raise PreevyError(
        messages.TEMPLATE_ERROR.format(template="", problem=messages.TEMPLATE_NO_DOCKER_HOST), ExitCode.USAGE
    )


# --- environment metadata -------------------------------------------------------------------------------


def all_types(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Preevy's all-types: PersistentVolumeClaim (made by the StatefulSet), then every type of the template."""
    types = []
    for obj in [PVC_TYPE, *objects]:
        entry = {"apiVersion": obj["apiVersion"], "kind": obj["kind"]}
        if entry not in types:
            types.append(entry)
    return types


def iso_timestamp(moment: datetime.datetime | str) -> str:
    """JavaScript's toISOString: UTC, milliseconds, `Z`."""
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def add_environment_metadata(
    objects: list[dict[str, Any]],
    *,
    profile_id: str,
    env_id: str,
    instance: str,
    created_at: datetime.datetime | str,
    extra_types: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Copies of the objects with Preevy's labels and annotations (addEnvMetadata), the template hash (of
    the documents as rendered when objects come from render_template, else of the objects as given), and
    `preevy.dev/all-types` on the docker-host StatefulSet (plus extra_types: the kinds of objects made
    later, outside the template, such as the routing of expose.py)."""
    specs = copy.deepcopy(objects)
    template_hash = getattr(objects, "template_hash", None) or naming.template_hash(objects)
    declared = all_types(objects)
    declared += [t for t in extra_types if t not in declared]
    types = json.dumps(declared, separators=(",", ":"))
    for index, spec in enumerate(specs):
        add_object_metadata(
            spec,
            index,
            profile_id=profile_id,
            env_id=env_id,
            instance=instance,
            created_at=created_at,
            template_hash=template_hash,
        )
        if is_docker_host(spec):
            spec["metadata"]["annotations"][naming.ANNOTATION_ALL_TYPES] = types
    return specs


def add_object_metadata(
    spec: dict[str, Any],
    index: int,
    *,
    profile_id: str,
    env_id: str,
    instance: str,
    created_at: datetime.datetime | str,
    template_hash: str,
) -> dict[str, Any]:
    """One object with the labels and annotations every object of the environment carries (in place)."""
    metadata = spec.setdefault("metadata", {})
    metadata["labels"] = dict(metadata.get("labels") or {})
    metadata["annotations"] = dict(metadata.get("annotations") or {})
    metadata["labels"].update(
        naming.sanitize_labels(
            {
                naming.LABEL_PROFILE_ID: profile_id,
                naming.LABEL_ENV_ID: env_id,
                naming.LABEL_INSTANCE: instance,
                "app.kubernetes.io/instance": instance,
                naming.LABEL_MANAGED_BY: naming.MANAGED_BY,
                "app.kubernetes.io/name": env_id,
                "app.kubernetes.io/part-of": profile_id,
                "app.kubernetes.io/version": __version__,
                "internal.config.kubernetes.io/index": str(index),
            }
        )
    )
    metadata["annotations"].update(
        {
            naming.ANNOTATION_ENV_ID: env_id,
            naming.ANNOTATION_PROFILE_ID: profile_id,
            naming.ANNOTATION_CREATED_AT: iso_timestamp(created_at),
            naming.ANNOTATION_TEMPLATE_HASH: template_hash,
            naming.ANNOTATION_KIND: spec["kind"],
            naming.ANNOTATION_API_VERSION: spec["apiVersion"],
        }
    )
    return spec


def manifest_yaml(objects: list[dict[str, Any]]) -> str:
    """The objects as a YAML stream for kubectl (and `up --dry-run`).

    kubectl reads YAML 1.1, where a bare `y`/`n` is a boolean; PyYAML does not know that and would
    leave such a label value unquoted, so our dumper quotes them.
    """
    import yaml

    return yaml.dump_all(objects, Dumper=_manifest_dumper(), sort_keys=False)


@functools.cache
def _manifest_dumper() -> "type[yaml.SafeDumper]":
    import yaml

    base: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class ManifestDumper(base):  # type: ignore[valid-type,misc]  # the C dumper when PyYAML has it
        pass

    ManifestDumper.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))
    return ManifestDumper
