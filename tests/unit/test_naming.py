"""Preevy's naming rules (labels.test.ts, metadata.test.ts, strings.test.ts of Preevy v0.0.67), reproduced.

Expected values marked "reference" were computed by running Preevy's TypeScript functions under node.
"""

import re

import pytest

from kubectl_preevy import naming

# --- sanitize_label_value: Preevy's labels.test.ts --------------------------------------------------


def test_label_accepted_characters_are_kept():
    assert naming.sanitize_label_value("1aBCde") == "1aBCde"


def test_label_banned_characters_are_replaced_and_ends_made_alphanumeric():
    assert naming.sanitize_label_value("-aBCd!e-") == "a-aBCd-e-z"


def test_label_too_long_is_truncated_with_a_stable_hash():
    value = "!bLa-" + "a" * 100
    label = naming.sanitize_label_value(value)
    assert len(label) == 63
    assert re.fullmatch(r"a-bLa-a+-[a-zA-Z0-9]{4}", label)
    assert label == naming.sanitize_label_value(value)
    assert label == "a-bLa-" + "a" * 52 + "-eRyz"  # reference


def test_label_of_exactly_63_characters_is_kept():
    assert naming.sanitize_label_value("a" * 63) == "a" * 63


def test_truncate_with_hash_matches_preevy_strings_test():
    assert naming.truncate_with_hash("abc", 3) == "abc"
    assert naming.truncate_with_hash("a" * 10, 9) == "aaaa-4JyA"


def test_truncate_prefix_matches_preevy_strings_test():
    assert naming.truncate_prefix("prefix", "suffix", 13) == "prefix-suffix"
    assert naming.truncate_prefix("prefix", "suffix", 12) == "prefi-suffix"


# (input, sanitizeLabel, truncatePrefix(sanitizeName(input), "xxxxx", 48), normalize): reference values
REFERENCE = [
    ("-aBCd!e-", "a-aBCd-e-z", "a-abcd-e-z-xxxxx", "a-abcd-e-"),
    ("1aBCde", "1aBCde", "a1abcde-xxxxx", "a1abcde"),
    (
        "feature/\u00dcn\u00efcode-\U0001f600-branch",
        "feature--n-code----branch",
        "feature--n-code----branch-xxxxx",
        "feature--n-code----branch",
    ),
    ("a\U0001f600b", "a--b", "a--b-xxxxx", "a--b"),
    (
        "1myprofile!13-1myenv_12",
        "1myprofile-13-1myenv_12",
        "a1myprofile-13-1myenv-12-xxxxx",
        "a1myprofile-13-1myenv_12",
    ),
    ("x_", "x_z", "x-z-xxxxx", "x_"),
    (
        "Feature/JIRA-123_fix.it",
        "Feature-JIRA-123_fix.it",
        "feature-jira-123-fix-it-xxxxx",
        "feature-jira-123_fix-it",
    ),
    ("\u0130stanbul", "a-stanbul", "i-stanbul-xxxxx", "i-stanbul"),
    ("a" * 78 + "\U0001f600" * 36, "a" * 58 + "-PUs4", "a" * 42 + "-xxxxx", "a" * 78 + "-" * 72),
    ("", "", "-xxxxx", ""),
]


@pytest.mark.parametrize("value,label,name,normalized", REFERENCE)
def test_rules_match_preevy_reference(value, label, name, normalized):
    assert naming.sanitize_label_value(value) == label
    assert naming.truncate_prefix(naming.sanitize_name(value), "xxxxx", 48) == name
    assert naming.normalize_env_id(value) == normalized


# --- instance_name: Preevy's metadata.test.ts (envRandomName) ---------------------------------------


def test_instance_name_of_accepted_characters():
    assert re.fullmatch(r"myprofile13-myenv12-[a-z0-9]{5}", naming.instance_name("myprofile13", "myenv12"))


def test_instance_name_has_a_new_random_suffix_each_time():
    names = {naming.instance_name("myprofile13", "myenv12") for _ in range(5)}
    assert len(names) > 1


def test_instance_name_replaces_or_prefixes_banned_characters():
    assert re.fullmatch(
        r"a1myprofile-13-1myenv-12-[a-z0-9]{5}", naming.instance_name("1myprofile!13", "1myenv_12")
    )


def test_instance_name_is_cut_to_48_characters():
    name = naming.instance_name("1myprofile", "a" * 100)
    assert len(name) == 48
    assert re.fullmatch(r"a1myprofile-a+-[a-z0-9]{5}", name)


def test_instance_name_with_a_given_suffix_is_deterministic():
    assert naming.instance_name("ci-ab12c", "shop-main", suffix="zz9zz") == "ci-ab12c-shop-main-zz9zz"


# --- env ids, DNS names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,normalized",
    [
        ("shop-main", "shop-main"),
        ("Shop-Feature/X", "shop-feature-x"),
        ("123", "a123"),
        ("_x", "a_x"),
        ("my_env", "my_env"),
    ],
)
def test_normalize_env_id(value, normalized):
    assert naming.normalize_env_id(value) == normalized


@pytest.mark.parametrize(
    "value,valid",
    [
        ("abc-123", True),
        ("123-abc", True),
        ("a" * 63, True),
        ("A", False),
        ("a@", False),
        ("-a", False),
        ("a-", False),
        ("", False),
        ("a" * 64, False),
        ("a.b", False),
    ],
)
def test_rfc1123_label(value, valid):
    assert naming.is_rfc1123_label(value) is valid


@pytest.mark.parametrize(
    "value,valid",
    [
        ("fast", True),
        ("ebs.csi.aws.com", True),
        ("gp3-encrypted", True),
        ("Fast", False),
        ("a..b", False),
        (".a", False),
        ("a_b", False),
        ("", False),
        ("a" * 254, False),
    ],
)
def test_rfc1123_subdomain(value, valid):
    assert naming.is_rfc1123_subdomain(value) is valid


# --- selectors, hash ----------------------------------------------------------------------------------


def test_env_selector_sanitizes_like_preevy():
    assert (
        naming.env_selector("p-1", "-env-")
        == "preevy.dev/profile-id=p-1,preevy.dev/env-id=a-env-z,preevy.dev/deleted!=true"
    )
    assert (
        naming.env_selector("p", "e", deleted=None, docker_host=True)
        == "preevy.dev/profile-id=p,preevy.dev/env-id=e,app.kubernetes.io/component=docker-host"
    )
    assert naming.env_selector("p", "e", deleted=True).endswith("preevy.dev/deleted=true")


def test_stable_json_sorts_keys_like_javascript_and_prints_numbers_like_it():
    assert (
        naming.stable_json({"b": 1, "a": [True, None, 2.0, 12.5], "B": "x\n\u00e9"})
        == '{"B":"x\\n\u00e9","a":[true,null,2,12.5],"b":1}'
    )
    assert naming.stable_json({"a": {"z": 1, "y": 2}}) == naming.stable_json({"a": {"y": 2, "z": 1}})


@pytest.mark.parametrize(
    "number,text",
    [
        (5, "5"),
        (5.0, "5"),
        (12.5, "12.5"),
        (1e-07, "1e-7"),
        (1e21, "1e+21"),
        (0.1, "0.1"),
        (float("nan"), "null"),
    ],
)
def test_js_number(number, text):
    assert naming.js_number(number) == text


def test_template_hash_of_known_specs():
    # reference: `sha1:${createHash('sha1').update(stableStringify(specs)).digest('base64')}`
    specs = [{"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x"}}]
    assert naming.stable_json(specs) == '[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}]'
    import base64
    import hashlib

    assert (
        naming.template_hash(specs)
        == "sha1:"
        + base64.b64encode(
            hashlib.sha1(b'[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}]').digest()
        ).decode()
    )
