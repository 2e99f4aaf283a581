"""The environment lock's name and expiry rules (its behaviour against a cluster: tests/e2e/test_lock.py)."""

import datetime

import pytest

from kubectl_preevy import lock, naming

NOW = datetime.datetime(2025, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def test_lock_name_is_a_valid_object_name_per_profile_and_environment():
    assert lock.lock_name("default", "hello_main") == "preevy-lock-default-hello-main"
    assert lock.lock_name("ci-ab12c", "hello_main") != lock.lock_name("default", "hello_main")
    long = lock.lock_name("default", "x" * 100)
    assert len(long) == 63 and naming.is_rfc1123_label(long)
    assert long != lock.lock_name("default", "x" * 101)


@pytest.mark.parametrize(
    "expires_at, expired",
    [
        ("2025-03-01T12:00:01Z", False),
        ("2025-03-01T12:00:00Z", True),
        ("2025-03-01T11:59:00Z", True),
        (None, True),  # no expiry: made by hand, or by something else
        ("soon", True),
    ],
)
def test_a_lock_may_be_broken_once_its_expiry_has_passed(expires_at, expired):
    assert lock.has_expired(expires_at, NOW) is expired


def test_expiry_is_written_in_utc_as_has_expired_reads_it():
    text = lock.expiry_text(NOW + datetime.timedelta(seconds=lock.LEASE_SECONDS))
    assert text == "2025-03-01T12:01:00Z"
    assert not lock.has_expired(text, NOW)


def test_holder_names_the_command_the_machine_and_the_process():
    holder = lock.holder_description("up")
    assert holder.startswith("`kubectl preevy up` on ") and "(pid " in holder
