"""Shared pytest fixtures: the kubesim emulator (tests/kubesim/fixture.py)."""

import pytest

from tests.kubesim.fixture import kubesim, namespace  # noqa: F401  (pytest fixtures)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failing test that used the emulator, attach the tail of its log to the report."""
    outcome = yield
    report = outcome.get_result()
    sim = item.funcargs.get("kubesim") if hasattr(item, "funcargs") else None
    if report.failed and sim is not None:
        report.sections.append(("kubesim log (tail)", "\n".join(sim.log().splitlines()[-150:])))
