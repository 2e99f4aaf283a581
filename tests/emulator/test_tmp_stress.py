import pytest
from tests.emulator.test_api import test_wait_for_ready_and_delete as _t

@pytest.mark.parametrize("i", range(25))
def test_stress(kubesim, namespace, i):
    _t(kubesim, namespace)
