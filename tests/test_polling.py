"""careops.polling.eventually: lab state that settles over time."""
from __future__ import annotations

import time

import pytest

from careops.errors import EngineUnavailable
from careops.polling import eventually


def test_eventually_polls_until_the_state_settles():
    start = time.monotonic()
    assert eventually(lambda: time.monotonic() - start > 0.3, timeout=5, interval=0.05) is True


def test_eventually_returns_the_last_value_when_time_runs_out():
    assert eventually(lambda: [1], until=lambda v: not v, timeout=0.2, interval=0.05) == [1]


def test_eventually_reports_the_last_error():
    def probe():
        raise ConnectionRefusedError("port 2575 closed")

    with pytest.raises(TimeoutError, match="port 2575 closed"):
        eventually(probe, timeout=0.2, interval=0.05, what="the MLLP listener")


def test_eventually_does_not_wait_for_a_missing_engine():
    calls = []

    def probe():
        calls.append(1)
        raise EngineUnavailable("no engine", fix="start one")

    with pytest.raises(EngineUnavailable):
        eventually(probe, timeout=30, interval=0.01)
    assert len(calls) == 1  # raised at once, not polled until the timeout


def test_the_checks_namespace_still_offers_eventually_to_notebooks():
    import careops.checks

    assert careops.checks.eventually is eventually
