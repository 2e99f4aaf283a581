"""Lifetime annotations and what they say: state, expiry, idleness, the ls columns."""

import datetime

from kubectl_preevy import lifetime, options

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


def statefulset(annotations: dict[str, str], replicas: int = 1, labels: dict[str, str] | None = None) -> dict:
    return {"metadata": {"annotations": annotations, "labels": labels or {}}, "spec": {"replicas": replicas}}


def test_up_annotations_renew_expiry_and_record_the_deploy():
    written = lifetime.up_annotations(NOW, 3600, 60, "hello")
    assert written == {
        "preevy.dev/last-deploy-at": "2026-01-02T03:04:05Z",
        "preevy.dev/compose-project": "hello",
        "preevy.dev/expires-at": "2026-01-02T04:04:05Z",
        "preevy.dev/sleep-after": "60s",
    }
    assert "preevy.dev/expires-at" not in lifetime.up_annotations(NOW, None, None, "hello")


def test_expired_idle_keep_and_states():
    facts = lifetime.of(statefulset(lifetime.up_annotations(NOW, 10, 20, "p")))
    assert facts.state == "running"
    assert not facts.expired(NOW) and facts.expired(NOW + datetime.timedelta(seconds=10))
    assert not facts.idle(NOW + datetime.timedelta(seconds=19)) and facts.idle(
        NOW + datetime.timedelta(seconds=20)
    )
    woken = lifetime.up_annotations(NOW, None, 20, "p") | {"preevy.dev/woken-at": "2026-01-02T03:05:05Z"}
    assert not lifetime.of(statefulset(woken)).idle(NOW + datetime.timedelta(seconds=30))
    kept = lifetime.of(statefulset(lifetime.up_annotations(NOW, 10, 20, "p") | {"preevy.dev/keep": "true"}))
    assert not kept.expired(NOW + datetime.timedelta(days=9)) and not kept.idle(
        NOW + datetime.timedelta(days=9)
    )
    assert lifetime.of(statefulset({}, replicas=0)).state == "sleeping"
    assert not lifetime.of(statefulset(lifetime.up_annotations(NOW, None, 1, "p"), replicas=0)).idle(
        NOW + datetime.timedelta(days=1)
    )
    assert lifetime.of(statefulset({}, labels={"preevy.dev/deleted": "true"})).state == "deleting"
    assert lifetime.of(statefulset({"preevy.dev/expires-at": "garbled"})).expires_at is None


def test_columns():
    assert [lifetime.short_duration(s) for s in (5, 61, 7199, 7200, 3 * 86400)] == [
        "5s",
        "1m",
        "119m",
        "2h",
        "3d",
    ]
    facts = lifetime.of(statefulset(lifetime.up_annotations(NOW, 7200, None, "p")))
    assert lifetime.expires(facts, NOW) == "in 2h"
    assert lifetime.expires(facts, NOW + datetime.timedelta(hours=3)) == "expired"
    assert lifetime.expires(lifetime.of(statefulset({})), NOW) == "never"


def test_duration_options():
    assert [options.duration_seconds(t, days=True) for t in ("72h", "3d", "1h30m", "90", "0s", "x", "")] == [
        259200,
        259200,
        5400,
        90,
        None,
        None,
        None,
    ]
    assert options.parse_option("ttl", 3600, "profile 'p'") == 3600
    assert options.parse_option("sleep-after", "8h", "flag --sleep-after") == 28800
