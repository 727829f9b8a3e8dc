"""The learner check API: one message per criterion, hints, polling."""
from __future__ import annotations

import time

import pytest

from careops.checks import CheckFailed, CheckReport, eventually


def test_a_report_lists_every_criterion_and_raises_with_hints():
    report = CheckReport("Exercise 9")
    report.check(True, "the file exists")
    report.check(False, "memory is limited", hint="limits: {memory: 128m}", expected="<= 128 MiB", got="none")
    with pytest.raises(CheckFailed) as err:
        report.assert_passed()
    text = str(err.value)
    assert "Exercise 9: 1/2 criteria passed" in text
    assert "[PASS] the file exists" in text
    assert "[FAIL] memory is limited (expected '<= 128 MiB', got 'none')" in text and "hint: limits: {memory: 128m}" in text
    assert isinstance(err.value, AssertionError), "nbgrader must count a failed check as a failed test"
    assert "&#10008;" in report._repr_html_() and "limits: {memory: 128m}" in report._repr_html_()


def test_an_empty_report_does_not_pass():
    with pytest.raises(CheckFailed, match="nothing was checked"):
        CheckReport("empty").assert_passed()


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
    import pytest

    from careops.checks import eventually
    from careops.errors import EngineUnavailable

    calls = []

    def probe():
        calls.append(1)
        raise EngineUnavailable("no engine", fix="start one")

    with pytest.raises(EngineUnavailable):
        eventually(probe, timeout=30, interval=0.01)
    assert len(calls) == 1  # raised at once, not polled until the timeout
