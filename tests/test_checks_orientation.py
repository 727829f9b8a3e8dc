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


def test_leaked_names_check_catches_a_filter_that_forgets_the_lab():
    def all_leaked(table, lab):
        return sorted(table[table.leaked].name.tolist())

    def keeps_active(table, lab):
        return sorted(table[table.lab == lab].name.tolist() + ["careops-ana-orientation-probe"])

    check.leaked_names(lambda t, lab: sorted(t[(t.lab == lab) & t.leaked].name.tolist()))
    with pytest.raises(CheckFailed, match="resources of your active lab are kept"):
        check.leaked_names(keeps_active)
    # all_leaked happens to be right on the visible table: the hidden tests catch it.
    check.leaked_names(all_leaked)
