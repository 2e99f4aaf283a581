"""Templates: Preevy's templates render unchanged, values are YAML-safe, bad templates fail clearly.

Hashes marked "reference" were computed by Preevy's own code path under node: nunjucks.renderString,
yaml.parseAllDocuments(...).toJS(), fast-safe-stringify's stableStringify, sha1, base64.
"""

import datetime
import json
import pathlib

import pytest
import yaml

from kubectl_preevy import naming, resources, template
from kubectl_preevy.errors import ExitCode, PreevyError
from kubectl_preevy.options import Options

# Preevy v0.0.67 packages/driver-kube-pod/static/default-template.yaml.njk, byte for byte.
PREEVY_DEFAULT_TEMPLATE = """\
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ id }}-sa
  namespace: {{ namespace }}

---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ id }}-dc
  namespace: {{ namespace }}
data:
  daemon.json: |
    {
      "tls": false
    }
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ id }}
  namespace: {{ namespace }}
  labels:
    app.kubernetes.io/component: docker-host
spec:
  replicas: 1
  selector:
    matchLabels:
      {% for k, v in labels %}
      {{ k }}: {{ v }}
      {% endfor %}
  template:
    metadata:
      labels:
        {% for k, v in labels %}
        {{ k }}: {{ v }}
        {% endfor %}
    spec:
      serviceAccountName: {{ id }}-sa
      containers:
      - name: docker
        image: docker:24.0.7-dind-alpine3.18
        securityContext:
          privileged: true
        command: ["dockerd", "--host=tcp://0.0.0.0:2375", "--host=unix:///var/run/docker.sock"]
        volumeMounts:
        - name: docker-config
          mountPath: /etc/docker
        - name: data
          subPath: docker
          mountPath: /var/lib/docker
        - name: data
          subPath: preevy
          mountPath: /var/lib/preevy
      volumes:
      - name: docker-config
        configMap:
          name: {{ id }}-dc
  volumeClaimTemplates:
  - metadata:
      name: data
      labels:
        {% for k, v in labels %}
        {{ k }}: {{ v }}
        {% endfor %}
    spec:
      accessModes: ["ReadWriteOnce"]
{% if storageClass %}
      storageClassName: "{{ storageClass }}"
{% endif %}
      resources:
        requests:
          storage: {{ storageSize }}Gi
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ id }}-role
  namespace: {{ namespace }}
rules:
- apiGroups:
    - metrics.k8s.io
    - ""
  resources:
    - pods
  verbs:
    - get
    - list

---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ id }}-rolebind
  namespace: {{ namespace }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ id }}-role
subjects:
- kind: ServiceAccount
  name: {{ id }}-sa
"""

# A custom template written for Preevy: nunjucks idioms, its own labels, a second (database) StatefulSet.
PREEVY_STYLE_CUSTOM_TEMPLATE = """\
{# A Preevy-style custom template: extra labels, a database StatefulSet, nunjucks idioms #}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ id }}-extra
  namespace: {{ namespace }}
  labels:
    team: previews
    {% for k, v in labels %}
    {{ k }}: {{ v }}
    {% endfor %}
data:
  label-count: "{{ labels | length }}"
  instance: {{ labels['preevy.dev/instance'] }}
{% if storageClass %}
  storage-class: {{ storageClass }}
{% else %}
  storage-class: cluster-default
{% endif %}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ id }}
  namespace: {{ namespace }}
  labels:
    app.kubernetes.io/component: docker-host
    team: previews
spec:
  replicas: 1
  selector:
    matchLabels:
      {% for k, v in labels %}
      {{ k }}: {{ v }}
      {% endfor %}
  template:
    metadata:
      labels:
        {% for k, v in labels %}
        {{ k }}: {{ v }}
        {% endfor %}
    spec:
      containers:
      - name: docker
        image: docker:24.0.7-dind-alpine3.18
        securityContext:
          privileged: true
        command: ["dockerd", "--host=tcp://0.0.0.0:2375", "--host=unix:///var/run/docker.sock"]
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: ["ReadWriteOnce"]
      resources:
        requests:
          storage: {{ storageSize }}Gi
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ id }}-db
  namespace: {{ namespace }}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {{ id }}-db
  template:
    metadata:
      labels:
        app: {{ id }}-db
    spec:
      containers:
      - name: db
        image: postgres:16-alpine
"""


def write(tmp_path: pathlib.Path, text: str, name: str = "t.yaml.njk") -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def opts(template_path=None, namespace="previews", storage_class=None, storage_size=5.0) -> Options:
    return Options(
        namespace=namespace,
        kubeconfig=None,
        context=None,
        template=template_path,
        server_side_apply=True,
        storage_class=storage_class,
        storage_size=storage_size,
        sources={},
    )


def render(template_path=None, instance="p-e-abcde", profile_id="p", **kwargs):
    return template.render_template(
        opts(template_path, **kwargs), instance, template.template_labels(profile_id, instance)
    )


def by_kind(objects, kind):
    return [obj for obj in objects if obj["kind"] == kind]


# --- Preevy's own templates ------------------------------------------------------------------------------


def test_preevy_default_template_renders_unchanged(tmp_path):
    objects = render(
        write(tmp_path, PREEVY_DEFAULT_TEMPLATE),
        instance="myprofile13-myenv12-abcde",
        profile_id="myprofile13",
        namespace="ns1",
    )
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("ServiceAccount", "myprofile13-myenv12-abcde-sa"),
        ("ConfigMap", "myprofile13-myenv12-abcde-dc"),
        ("StatefulSet", "myprofile13-myenv12-abcde"),
        ("Role", "myprofile13-myenv12-abcde-role"),
        ("RoleBinding", "myprofile13-myenv12-abcde-rolebind"),
    ]
    statefulset = objects[2]
    labels = {"preevy.dev/profile-id": "myprofile13", "preevy.dev/instance": "myprofile13-myenv12-abcde"}
    assert statefulset["spec"]["selector"]["matchLabels"] == labels
    assert statefulset["spec"]["template"]["metadata"]["labels"] == labels
    assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"] == labels
    assert "storageClassName" not in statefulset["spec"]["volumeClaimTemplates"][0]["spec"]
    assert statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert json.loads(objects[1]["data"]["daemon.json"]) == {"tls": False}
    assert naming.template_hash(objects) == "sha1:W8Xt6yTUkbL02njo6pMfZI5N/Qo="  # reference


def test_preevy_default_template_with_storage_class_and_fractional_size(tmp_path):
    objects = render(
        write(tmp_path, PREEVY_DEFAULT_TEMPLATE),
        namespace="previews",
        storage_class="fast",
        storage_size=12.5,
    )
    claim = objects[2]["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == "fast" and claim["resources"]["requests"]["storage"] == "12.5Gi"
    assert naming.template_hash(objects) == "sha1:sLRFJ4J10PSfQhTx3IrY4s/Qkkc="  # reference


@pytest.mark.parametrize(
    "storage_class,expected_hash,expected_class",
    [
        (None, "sha1:uY4TAGKWaAgMCVy4LEe3HJMe778=", "cluster-default"),  # reference
        ("fast", "sha1:UQTvgLbJvj+/urar5t3AzADOVRU=", "fast"),  # reference
    ],
)
def test_preevy_style_custom_template(tmp_path, storage_class, expected_hash, expected_class):
    instance = "ci-abc12-shop-main-q1w2e"
    objects = render(
        write(tmp_path, PREEVY_STYLE_CUSTOM_TEMPLATE),
        instance=instance,
        profile_id="ci-abc12",
        storage_class=storage_class,
        storage_size=2.5,
    )
    configmap = objects[0]
    assert configmap["metadata"]["labels"] == {
        "team": "previews",
        "preevy.dev/profile-id": "ci-abc12",
        "preevy.dev/instance": instance,
    }
    assert configmap["data"] == {"label-count": "2", "instance": instance, "storage-class": expected_class}
    assert [o["metadata"]["name"] for o in by_kind(objects, "StatefulSet")] == [instance, f"{instance}-db"]
    assert template.docker_host_statefulset(objects)["metadata"]["name"] == instance
    assert naming.template_hash(objects) == expected_hash


def test_labels_work_as_pairs_and_as_a_mapping(tmp_path):
    text = (
        "{% set first = labels | first %}" + VALID_DOCKER_HOST + "data:\n"
        '  pairs: "{% for k, v in labels %}{{ k | safe }}={{ v | safe }};{% endfor %}"\n'
        '  items: "{% for k, v in labels.items() %}{{ v | safe }};{% endfor %}"\n'
        "  keys: \"{{ labels.keys() | join(',') | safe }}\"\n"
        "  has: \"{{ 'preevy.dev/instance' in labels }}\"\n"
        '  sorted: "{% for k, v in labels | dictsort %}{{ k | safe }};{% endfor %}"\n'
        "  json: '{{ labels | dump }}'\n"
    )
    data = render(write(tmp_path, text))[0]["data"]
    assert data["pairs"] == "preevy.dev/profile-id=p;preevy.dev/instance=p-e-abcde;"
    assert data["items"] == "p;p-e-abcde;"
    assert data["keys"] == "preevy.dev/profile-id,preevy.dev/instance"
    assert data["has"] == "true"
    assert data["sorted"] == "preevy.dev/instance;preevy.dev/profile-id;"
    assert json.loads(data["json"]) == {"preevy.dev/profile-id": "p", "preevy.dev/instance": "p-e-abcde"}


VALID_DOCKER_HOST = """apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ id }}
  labels:
    app.kubernetes.io/component: docker-host
spec:
  template:
    spec:
      containers: [{name: docker, image: docker:dind}]
"""


def test_storage_class_may_be_undefined_but_other_variables_are_strict(tmp_path):
    text = VALID_DOCKER_HOST + (
        "  x: '{{ storageClass }}'\n  y: {{ 'set' if storageClass is defined else 'unset' }}\n"
        "  z: {{ storageClass | default('none') }}\n"
    )
    spec = render(write(tmp_path, text))[0]["spec"]
    assert (spec["x"], spec["y"], spec["z"]) == ("", "unset", "none")
    with pytest.raises(PreevyError) as caught:
        render(write(tmp_path, VALID_DOCKER_HOST + "  x: {{ storageclass }}\n"))
    assert caught.value.message.startswith(
        f"template {tmp_path / 't.yaml.njk'}: line 11: 'storageclass' is undefined"
    )
    assert "the template can use id, namespace, labels, storageSize and storageClass" in caught.value.message


def test_storage_size_renders_like_a_javascript_number(tmp_path):
    text = VALID_DOCKER_HOST + "  size: {{ storageSize }}Gi\n"
    assert render(write(tmp_path, text), storage_size=5.0)[0]["spec"]["size"] == "5Gi"
    assert render(write(tmp_path, text), storage_size=0.25)[0]["spec"]["size"] == "0.25Gi"


# --- the bundled templates --------------------------------------------------------------------------------


def test_bundled_default_template_has_preevys_objects_plus_probe_and_requests():
    objects = render(None, storage_class="fast")
    preevy = template.validate_objects(
        "preevy",
        template.parse_documents(
            "preevy",
            template.render_text(
                "preevy",
                PREEVY_DEFAULT_TEMPLATE,
                {
                    "id": "p-e-abcde",
                    "namespace": "previews",
                    "storageSize": 5,
                    "storageClass": "fast",
                    "labels": template.TemplateLabels(template.template_labels("p", "p-e-abcde")),
                },
            ),
        ),
        "previews",
    )
    container = template.docker_host_statefulset(objects)["spec"]["template"]["spec"]["containers"][0]
    probe = container.pop("readinessProbe")
    assert probe["httpGet"] == {"path": "/_ping", "port": 2375} and probe["periodSeconds"] == 1
    assert probe["failureThreshold"] >= 10
    assert container.pop("resources") == {"requests": {"cpu": "100m", "memory": "256Mi"}}
    assert objects == preevy


def test_bundled_sysbox_template_is_unprivileged(tmp_path):
    path = write(tmp_path, resources.template_text("sysbox.yaml.njk"))
    statefulset = template.docker_host_statefulset(render(path))
    pod = statefulset["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "sysbox-runc"
    assert "privileged" not in json.dumps(statefulset)
    assert pod["containers"][0]["readinessProbe"]["httpGet"]["port"] == 2375


def test_template_text_reads_every_variant():
    for name in resources.TEMPLATE_VARIANTS.values():
        assert "app.kubernetes.io/component: docker-host" in resources.template_text(name)


# --- YAML injection -------------------------------------------------------------------------------------

INJECTIONS = [
    "a: b",
    "x\nevil: true",
    "x\n  privileged: true",
    "'quoted'",
    '"dq"',
    "{a: 1}",
    "[1]",
    "#c",
    "- x",
    "true",
    "null",
    "123",
    "1.5",
    "0x10",
    "2024-01-01",
    "y",
    "~",
    "a #b",
    "*alias",
    "&anchor",
    "!tag",
    "%",
    "@x",
    "`x`",
    "x: |",
    "\u2028",
    "tab\there",
    "",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_values_are_written_as_yaml_scalars_of_themselves(value):
    out = template.yaml_value(value)
    assert (
        yaml.safe_load(f"key: {out}\nother: 1\n") == {"key": value if value else None, "other": 1}
        or value == ""
    )
    assert yaml.safe_load(f"[{out}, 2]") == [value, 2] if value else True
    assert "\n" not in out


@pytest.mark.parametrize("value", ["ok", "a-b.c/d_e", "p-e-abcde-sa", "preevy.dev/profile-id"])
def test_plain_values_stay_plain(value):
    assert template.yaml_value(value) == value


def test_injection_through_labels_instance_and_namespace_is_inert(tmp_path):
    evil = "x\n      privileged: true\n      hostNetwork: true"
    path = write(tmp_path, PREEVY_DEFAULT_TEMPLATE)
    labels = {"preevy.dev/profile-id": evil, "preevy.dev/instance": "i: j"}
    objects = template.render_template(opts(path, namespace="previews"), "inst", labels)
    statefulset = template.docker_host_statefulset(objects)
    assert statefulset["spec"]["selector"]["matchLabels"] == labels
    assert "hostNetwork" not in statefulset["spec"]["template"]["spec"]
    evil_namespace = "previews\n  namespace: kube-system"  # (options reject it; rendering alone is inert too)
    objects = template.render_template(opts(path, namespace=evil_namespace), "inst", labels)
    assert {obj["metadata"]["namespace"] for obj in objects} == {evil_namespace}


def test_injection_through_a_quoted_storage_class_fails_closed(tmp_path):
    path = write(tmp_path, PREEVY_DEFAULT_TEMPLATE)  # storageClassName: "{{ storageClass }}"
    with pytest.raises(PreevyError, match=r"document 3: invalid YAML"):
        render(path, storage_class='x"\n      privileged: "true')
    assert (
        template.docker_host_statefulset(render(path, storage_class="fast.ssd"))["spec"][
            "volumeClaimTemplates"
        ][0]["spec"]["storageClassName"]
        == "fast.ssd"
    )


def test_safe_and_dump_write_text_as_is(tmp_path):
    text = VALID_DOCKER_HOST + "  raw: {{ '{a: 1}' | safe }}\n  dumped: {{ {'k': [1, 2]} | dump }}\n"
    spec = render(write(tmp_path, text))[0]["spec"]
    assert spec["raw"] == {"a": 1} and spec["dumped"] == {"k": [1, 2]}


# --- validation: each error names the file and the document -------------------------------------------

SA = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {{ id }}-sa\n"


@pytest.mark.parametrize(
    "documents,problem",
    [
        ([SA, "kind: ConfigMap\nmetadata: {name: x}\n"], "document 2: ConfigMap has no apiVersion"),
        ([SA, "apiVersion: v1\nmetadata: {name: x}\n"], "document 2: object has no kind"),
        (
            [
                SA,
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
                "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  labels: {app.kubernetes.io/component: docker-host}\n",
            ],
            "document 3: StatefulSet has no metadata.name",
        ),
        ([SA, "apiVersion: v1\nkind: ConfigMap\n"], "document 2: ConfigMap has no metadata.name"),
        (["- just\n- a list\n"], "document 1: not a Kubernetes object"),
        (
            [SA, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: other}\n"],
            'document 2: ConfigMap x is in namespace "other", not the environment\'s namespace "previews"',
        ),
        (
            ["apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: x}\n"],
            "document 1: ClusterRole x is cluster-scoped",
        ),
        ([SA, SA], "document 2: ServiceAccount p-e-abcde-sa is also defined in document 1"),
        ([SA], ": no StatefulSet labelled app.kubernetes.io/component: docker-host"),
        (
            [SA, "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: plain}\nspec: {}\n"],
            ": no StatefulSet labelled app.kubernetes.io/component: docker-host",
        ),
        (
            [VALID_DOCKER_HOST, VALID_DOCKER_HOST.replace("{{ id }}", "{{ id }}-2")],
            "document 2: StatefulSet p-e-abcde-2 is labelled app.kubernetes.io/component: docker-host like the one in document 1",
        ),
        (
            [VALID_DOCKER_HOST.replace("[{name: docker, image: docker:dind}]", "[]")],
            "document 1: StatefulSet p-e-abcde has no containers",
        ),
        ([SA, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n"], "document 2: invalid YAML"),
        ([SA, "a: b\n  c: d\n"], "document 2: invalid YAML"),
    ],
)
def test_invalid_template_names_file_and_document(tmp_path, documents, problem):
    path = write(tmp_path, "---\n".join(documents))
    with pytest.raises(PreevyError) as caught:
        render(path)
    message = caught.value.message
    assert caught.value.exit_code == ExitCode.USAGE
    assert message.startswith(f"template {path}")
    assert problem in message, message
    assert "\n" not in message


@pytest.mark.parametrize(
    "text,problem",
    [
        ("{% for k, v in labels %}\n{{ k }\n", "line 2: unexpected '}'"),
        ("{% if x %}\n", "line 1: Unexpected end of template"),
        ("{{ labels.nope.deeper }}", "line 1: "),
        ("{{ 1 / 0 }}", "division by zero"),
    ],
)
def test_template_syntax_and_render_errors_name_file_and_line(tmp_path, text, problem):
    path = write(tmp_path, text)
    with pytest.raises(PreevyError) as caught:
        render(path)
    assert caught.value.message.startswith(f"template {path}: ")
    assert problem in caught.value.message, caught.value.message


def test_unreadable_template_is_an_error(tmp_path):
    path = tmp_path / "gone.yaml.njk"
    with pytest.raises(PreevyError, match=rf"template {path}: cannot read it"):
        render(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(PreevyError, match=rf"template {path}: cannot read it"):
        render(path)


def test_missing_namespaces_are_filled_in_and_empty_documents_skipped(tmp_path):
    path = write(tmp_path, "---\n" + SA + "---\n# nothing\n---\n" + VALID_DOCKER_HOST + "---\n")
    objects = render(path)
    assert [o["metadata"]["namespace"] for o in objects] == ["previews", "previews"]


def test_namespace_comes_from_the_caller_when_options_have_none(tmp_path):
    objects = template.render_template(opts(None, namespace=None), "i", {}, namespace="from-context")
    assert {o["metadata"]["namespace"] for o in objects} == {"from-context"}
    with pytest.raises(PreevyError, match="no namespace"):
        template.render_template(opts(None, namespace=None), "i", {})


def test_dates_stay_strings(tmp_path):
    spec = render(write(tmp_path, VALID_DOCKER_HOST + "  date: 2024-01-02\n"))[0]["spec"]
    assert spec["date"] == "2024-01-02"


# --- environment metadata --------------------------------------------------------------------------------


def test_add_environment_metadata_like_preevy():
    objects = render(None)
    created = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc)
    env_id = "shop-" + "x" * 80
    result = template.add_environment_metadata(
        objects, profile_id="p", env_id=env_id, instance="p-e-abcde", created_at=created
    )
    assert result is not objects and "preevy.dev/env-id" not in objects[0]["metadata"].get("labels", {})
    expected_hash = naming.template_hash(objects)
    for index, obj in enumerate(result):
        labels, annotations = obj["metadata"]["labels"], obj["metadata"]["annotations"]
        assert labels["preevy.dev/profile-id"] == "p" and labels["app.kubernetes.io/part-of"] == "p"
        assert (
            labels["preevy.dev/env-id"]
            == labels["app.kubernetes.io/name"]
            == naming.sanitize_label_value(env_id)
        )
        assert len(labels["preevy.dev/env-id"]) == 63
        assert labels["preevy.dev/instance"] == labels["app.kubernetes.io/instance"] == "p-e-abcde"
        assert labels["app.kubernetes.io/managed-by"] == "kubectl-preevy"
        assert labels["internal.config.kubernetes.io/index"] == str(index)
        assert annotations["preevy.dev/env-id"] == env_id  # annotations are not sanitized
        assert annotations["preevy.dev/created-at"] == "2024-05-06T07:08:09.123Z"
        assert annotations["preevy.dev/template-hash"] == expected_hash
        assert annotations["preevy.dev/kubernetes-kind"] == obj["kind"]
        assert ("preevy.dev/all-types" in annotations) == template.is_docker_host(obj)
    statefulset = template.docker_host_statefulset(result)
    assert statefulset["metadata"]["labels"]["app.kubernetes.io/component"] == "docker-host"
    assert json.loads(statefulset["metadata"]["annotations"]["preevy.dev/all-types"]) == [
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim"},
        {"apiVersion": "v1", "kind": "ServiceAccount"},
        {"apiVersion": "v1", "kind": "ConfigMap"},
        {"apiVersion": "apps/v1", "kind": "StatefulSet"},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role"},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding"},
    ]


def test_template_hash_changes_with_the_template_and_options_but_not_with_metadata():
    base = render(None)
    assert naming.template_hash(base) == naming.template_hash(render(None))
    assert naming.template_hash(base) != naming.template_hash(render(None, storage_size=6.0))
    with_metadata = template.add_environment_metadata(
        base, profile_id="p", env_id="e", instance="p-e-abcde", created_at="2024-01-01T00:00:00.000Z"
    )
    assert with_metadata[0]["metadata"]["annotations"]["preevy.dev/template-hash"] == naming.template_hash(
        base
    )


def test_manifest_yaml_quotes_what_kubectl_would_read_as_booleans():
    import yaml

    from kubectl_preevy.template import manifest_yaml

    labels = {"short-yes": "y", "short-no": "N", "word": "on", "plain": "x"}
    text = manifest_yaml([{"metadata": {"labels": labels}}])
    assert "'y'" in text and "'N'" in text and "plain: x" in text
    assert yaml.safe_load(text)["metadata"]["labels"] == labels


@pytest.mark.parametrize(
    "expression",
    [
        "cycler.__init__.__globals__.os.system('touch {marker}')",
        "lipsum.__globals__['os'].system('touch {marker}')",
        "''.__class__.__mro__[1].__subclasses__()",
        "namespace.__init__.__globals__",
        "self._TemplateReference__context",
        "labels.update({{'x': 'y'}})",
        "joiner.__init__.__globals__['__builtins__']['open']('{marker}', 'w')",
    ],
)
def test_a_template_reaching_python_is_refused_and_runs_nothing(tmp_path, expression):
    marker = tmp_path / "pwned"
    path = write(tmp_path, VALID_DOCKER_HOST + "data:\n  x: {{ " + expression.format(marker=marker) + " }}\n")
    with pytest.raises(PreevyError) as caught:
        render(path)
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.message.startswith(f"template {path}: line 12: refused: "), caught.value.message
    assert "\n" not in caught.value.message
    assert not marker.exists()


def test_the_sandbox_keeps_what_preevy_templates_use(tmp_path):
    text = (
        VALID_DOCKER_HOST + "data:\n"
        '  loop: "{% for i in range(2) %}{{ i }}{% endfor %}"\n'
        "  upper: \"{{ id | upper }}-{{ labels | length }}-{{ namespace ~ 'x' }}\"\n"
        '  {% set n = 3 %}count: "{{ n * 2 }}"\n'
    )
    data = render(write(tmp_path, text))[0]["data"]
    assert data == {"loop": "01", "upper": "P-E-ABCDE-2-previewsx", "count": "6"}
