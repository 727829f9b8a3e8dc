"""Module 0's checks fail on wrong answers with the right message (the notebook harness proves the solution)."""
from __future__ import annotations

import pytest

from careops.checks import CheckFailed
from careops.checks import orientation as check


def test_is_synthetic_check_names_the_kind_that_is_wrong():
    def only_ssn(kind, value):
        return kind == "ssn" and value.startswith("999-")

    with pytest.raises(CheckFailed) as err:
        check.synthetic_markers(only_ssn)
    text = str(err.value)
    assert "[PASS] ssn" in text and "[FAIL] phone" in text and "555-0142" in text


def test_is_synthetic_check_survives_a_function_that_raises():
    def broken(kind, value):
        raise KeyError(kind)

    with pytest.raises(CheckFailed, match="KeyError"):
        check.synthetic_markers(broken)


@pytest.mark.parametrize("spec, failing", [
    ("name: triage-probe\nuser: '0'\nread_only: true\nlimits: {memory: 128m, cpus: 0.5, pids: 64}\n"
     "labels: {hospital.owner: it, hospital.data: synthetic}", "non-root"),
    ("name: triage-probe\nuser: '1000'\nread_only: true\nlimits: {memory: 256m, cpus: 0.5, pids: 64}\n"
     "labels: {hospital.owner: it, hospital.data: synthetic}", "memory is at most 128 MiB"),
    ("name: triage-probe\nuser: '1000'\nlimits: {memory: 128m, cpus: 0.5, pids: 64}\n"
     "labels: {hospital.owner: it, hospital.data: synthetic}", "read-only"),
    ("name: triage-probe\nuser: '1000'\nread_only: true\nlimits: {memory: 128m, cpus: 0.5, pids: 64}\n"
     "labels: {hospital.owner: it, hospital.data: real}", "hospital.data: synthetic"),
    ("name: triage-probe\nprivileged: true", "'privileged' is refused"),
])
def test_container_spec_check_fails_each_rule_on_its_own(spec, failing):
    with pytest.raises(CheckFailed) as err:
        check.container_spec(spec)
    failed = [line for line in str(err.value).splitlines() if "[FAIL]" in line]
    assert len(failed) == 1 and failing in failed[0], str(err.value)


def failed_criteria(fn) -> list[str]:  # noqa: ANN001
    return [c.message for c in check.leaked_names.report(fn).failures]


def test_leaked_names_each_criterion_fails_exactly_when_its_property_does():
    right = lambda t, lab: sorted(t[(t.lab == lab) & t.leaked].name.tolist())  # noqa: E731
    assert check.leaked_names(right).passed
    # forgets the lab filter: another lab's leaked container is swept up (was passed by the visible check)
    assert failed_criteria(lambda t, lab: sorted(t[t.leaked].name.tolist())) == [
        "leaked resources of other labs are left alone (only night-shift)"]
    # forgets the leaked filter: the lab's in-use resources would go too
    assert failed_criteria(lambda t, lab: sorted(t[t.lab == lab].name.tolist() + ["careops-ana-orientation-probe"])) == [
        "resources still in use are kept"]
    # right rows, table order: only the sorting criterion fails
    assert failed_criteria(lambda t, lab: t[(t.lab == lab) & t.leaked].name.tolist()) == ["the names are sorted"]
    assert failed_criteria(lambda t, lab: ["careops-ana-night-shift-db"]) == ["every leaked resource of night-shift is listed"]
    with pytest.raises(CheckFailed, match="4/6 criteria passed"):
        check.leaked_names(lambda t, lab: t[t.leaked].name.tolist())


@pytest.mark.docker
def test_lab_is_clean_fails_at_once_on_what_nobody_removes_and_passes_after_the_reset(monkeypatch):
    import time
    import uuid

    from careops.lab import reset
    from careops.lab.drills import simulate_crash

    learner = f"t-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CAREOPS_LEARNER", learner)
    try:
        simulate_crash("night-shift", learner=learner)
        started = time.monotonic()
        report = check.clean_up_report("night-shift", timeout=30, hint="reset it")
        waited = time.monotonic() - started
        assert not report.passed and "no container, network or volume of night-shift is left" in str(report)
        # nothing was being removed: the check answers after its grace, not after the 30 s timeout
        assert check.CLEAN_UP_GRACE_SECONDS <= waited < 15, waited
        reset("night-shift", learner)
        assert check.clean_up_report("night-shift", timeout=30, hint="reset it").passed
    finally:
        reset(None, learner)
