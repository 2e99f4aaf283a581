"""Preevy's template hash, exactly: `sha1:` + base64(sha1(JSON.stringify of the rendered documents with sorted
keys)), over the documents as rendered and parsed, before a namespace or any metadata is filled in.

The golden values were computed from those rules, independently of our code: the parsed documents as
JSON, re-serialized by node (`Object.keys(v).sort()`, `JSON.stringify`, no spaces, 5 not 5.0) and hashed
with node's crypto (`createHash('sha1').update(s).digest('base64')`).
"""

from kubectl_preevy import naming, resources, template
from kubectl_preevy.options import Options
from tests.unit.test_template import opts

INSTANCE = "default-shop-main-ab1cd"
# Preevy's default template, id default-shop-main-ab1cd, namespace default, storageSize 5, no storage class
PREEVY_DEFAULT_HASH = "sha1:vwaa2zBieD0iWLPvESkXv9fk5k8="
# Preevy's default template without its `namespace:` lines, same arguments: no metadata.namespace is hashed
NO_NAMESPACE_HASH = "sha1:OmueexRRZlQoJ3z3j/6CnW6sh9M="
NO_NAMESPACE_TEMPLATE = resources.template_text("preevy.yaml.njk").replace(
    "  namespace: {{ namespace }}\n", ""
)


def options(template_path=None, storage_size: float = 5.0) -> Options:
    return opts(template_path, namespace="default", storage_size=storage_size)


def render(given: Options, variant: str = "default") -> template.TemplateObjects:
    return template.render_template(
        given, INSTANCE, template.template_labels("default", INSTANCE), variant=variant
    )


def test_preevy_variant_has_preevys_hash():
    objects = render(options(), variant=resources.PREEVY_VARIANT)
    assert objects.template_hash == PREEVY_DEFAULT_HASH
    assert naming.template_hash(objects) == PREEVY_DEFAULT_HASH  # every object names its namespace


def test_a_size_of_5_0_renders_and_hashes_as_javascripts_5():
    for size in (5, 5.0):
        objects = render(options(storage_size=size), variant="preevy")
        claim = template.docker_host_statefulset(objects)["spec"]["volumeClaimTemplates"][0]
        assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
        assert objects.template_hash == PREEVY_DEFAULT_HASH


def test_our_default_differs_from_preevys_only_by_its_probe_and_requests():
    ours, preevys = render(options()), render(options(), variant="preevy")
    assert ours.template_hash != PREEVY_DEFAULT_HASH
    container = template.docker_host_statefulset(ours)["spec"]["template"]["spec"]["containers"][0]
    del container["readinessProbe"], container["resources"]
    assert naming.template_hash(ours) == PREEVY_DEFAULT_HASH
    assert ours == preevys


def test_the_hash_is_of_the_documents_before_the_namespace_is_filled_in(tmp_path):
    path = tmp_path / "t.yaml.njk"
    path.write_text(NO_NAMESPACE_TEMPLATE)
    objects = render(options(path))
    assert all(obj["metadata"]["namespace"] == "default" for obj in objects)  # filled in for applying
    assert objects.template_hash == NO_NAMESPACE_HASH
    assert naming.template_hash(objects) != NO_NAMESPACE_HASH
    annotated = template.add_environment_metadata(
        objects,
        profile_id="default",
        env_id="shop-main",
        instance=INSTANCE,
        created_at="2026-01-01T00:00:00.000Z",
    )
    assert {obj["metadata"]["annotations"][naming.ANNOTATION_TEMPLATE_HASH] for obj in annotated} == {
        NO_NAMESPACE_HASH
    }


def test_empty_documents_count_as_null_like_preevys_parser(tmp_path):
    path = tmp_path / "t.yaml.njk"
    path.write_text(NO_NAMESPACE_TEMPLATE + "---\n")
    assert render(options(path)).template_hash != NO_NAMESPACE_HASH
