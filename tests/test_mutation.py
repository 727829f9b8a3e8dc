"""careops.mutation: mutants apply exactly once, weak tests let mutants survive,
tests that fail on the real code score zero, a hanging test is cut off, and the
learner's tests run sealed in a container (no network, no host files) that is
always removed."""
from __future__ import annotations

import pytest

from careops.mutation import FailedTest, Mutant, MutantError, failed_tests, run_mutation

pytestmark = pytest.mark.docker

SOURCE = '''
def add(a, b):
    return a + b


def is_adult(age):
    return age >= 18
'''
MUTANTS = [
    Mutant("plus-minus", "add subtracts", "return a + b", "return a - b"),
    Mutant("boundary", "18 is not adult", "return age >= 18", "return age > 18"),
]
STRONG = '''
import adt_service as m

def test_add():
    assert m.add(2, 3) == 5

def test_boundary():
    assert m.is_adult(18) and not m.is_adult(17)
'''
WEAK = '''
import adt_service as m

def test_add():
    assert m.add(2, 3) == 5

def test_adult():
    assert m.is_adult(40)
'''


PYTEST_FAILED = """\
.F
=================================== FAILURES ===================================
________________________ test_ack_code_for_missing_pid _________________________

    def test_ack_code_for_missing_pid():
>       assert code == "AE", "a message without PID must be refused with AE"
E       AssertionError: a message without PID must be refused with AE
E       assert 'AA' == 'AE'
E         - AE

test_x.py:6: AssertionError
=========================== short test summary info ============================
FAILED test_x.py::test_ack_code_for_missing_pid - AssertionError: a message w...
1 failed, 1 passed in 1.27s
"""


def test_failed_tests_name_the_test_and_its_message() -> None:
    assert failed_tests(PYTEST_FAILED) == [FailedTest(
        "test_ack_code_for_missing_pid",
        "AssertionError: a message without PID must be refused with AE; assert 'AA' == 'AE'")]
    cut = PYTEST_FAILED[PYTEST_FAILED.index("=====" + "=" * 20 + " short"):]  # the sections were cut off
    assert failed_tests(cut) == [FailedTest("test_ack_code_for_missing_pid", "AssertionError: a message w...")]
    assert failed_tests("3 passed in 0.1s") == []


def test_mutant_applies_once_or_says_why() -> None:
    assert "a - b" in MUTANTS[0].apply(SOURCE)
    with pytest.raises(MutantError, match="found it 0 times"):
        Mutant("x", "x", "not there", "y").apply(SOURCE)
    with pytest.raises(MutantError, match="found it 2 times"):
        Mutant("x", "x", "return", "yield").apply(SOURCE)


def test_strong_tests_kill_every_mutant() -> None:
    report = run_mutation(STRONG, MUTANTS, source=SOURCE)
    assert report.passes_on_original and report.score == 1.0
    assert "2/2 killed" in report._repr_html_()


def test_weak_tests_let_the_boundary_mutant_survive() -> None:
    report = run_mutation(WEAK, MUTANTS, source=SOURCE)
    assert [m.id for m in report.survived] == ["boundary"]
    assert report.score == 0.5
    assert "SURVIVED boundary" in str(report)


def test_tests_red_on_the_real_code_score_zero_and_run_no_mutant() -> None:
    report = run_mutation(STRONG.replace("== 5", "== 6"), MUTANTS, source=SOURCE)
    assert not report.passes_on_original and report.runs == [] and report.score == 0.0
    assert "failed" in report.original.summary()
    assert [f.name for f in report.original.failures] == ["test_add"]
    assert "assert 5 == 6" in report.original.failures[0].message
    assert "FAILED test_add: " in str(report) and "0/0" not in str(report) + report._repr_html_()


def test_a_hanging_test_is_cut_off() -> None:
    report = run_mutation("def test_hang():\n    while True:\n        pass\n", MUTANTS, source=SOURCE, timeout=3)
    assert report.original.timed_out and report.original.summary() == "timed out"
    assert report.score == 0.0


def test_empty_tests_are_refused() -> None:
    with pytest.raises(Exception, match="no tests to run"):
        run_mutation("  ", MUTANTS, source=SOURCE)


def test_the_tests_run_sealed_and_leave_nothing_behind() -> None:
    from careops import engine

    probe = """
import os, socket

def test_no_network():
    try:
        socket.create_connection(("192.0.2.1", 80), timeout=2)
    except OSError:
        return
    raise AssertionError("network reachable")

def test_no_host_files_and_read_only_root():
    assert not os.path.exists("/work/main") and not os.path.exists("/var/run/docker.sock")
    assert os.getuid() == 1000
    try:
        open("/etc/owned", "w")
    except OSError:
        return
    raise AssertionError("root filesystem writable")
"""
    report = run_mutation(probe, [], source=SOURCE)
    assert report.passes_on_original, report.original.output
    left = engine.client().containers.list(all=True, filters={"label": "org.careops.lab=mutation"})
    assert left == []


def test_a_large_service_and_test_file_still_fit_into_the_container() -> None:
    """Linux limits one environment string to 128 KiB: the job is split into chunks."""
    padding = "# " + "x" * 98 + "\n"
    big_source = SOURCE + padding * 1500  # about 150 KB
    report = run_mutation(STRONG + padding * 1200, MUTANTS, source=big_source)
    assert report.passes_on_original and report.score == 1.0
