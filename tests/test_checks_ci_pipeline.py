"""Module 1's learner checks: the practice mutants apply to the real legacy
service, and the tests-first check passes good tests and fails weak ones,
each with its own message."""
from __future__ import annotations

import pytest

from careops.checks import ci_pipeline
from careops.checks.ci_pipeline import PRACTICE_MUTANTS, count_tests, service_source, unit_tests
from careops.grading.references import load as load_reference

pytestmark = pytest.mark.docker

WEAK = '''
import adt_service as svc

def test_one():
    assert svc.parse("MSH|^~\\\\&|A|B|C|D|20260101||ADT^A01|X|P|2.5\\rPID|1||SYN-1")[1] == "X"
'''


def test_practice_mutants_apply_to_the_service() -> None:
    src = service_source()
    for m in PRACTICE_MUTANTS:
        assert m.apply(src) != src


def test_count_tests() -> None:
    assert count_tests("def test_a(): pass\nclass TestB:\n    def test_c(self): pass\ndef helper(): pass") == 2
    assert count_tests("def (") == -1


def test_syntax_error_and_empty_file_fail_early() -> None:
    report = unit_tests.report("def test_x(:\n")
    assert not report.passed and "mutation" not in report.data
    assert report.failures[0].message == "the test file is valid Python"
    report = unit_tests.report("")
    assert not report.passed and "mutation" not in report.data


def test_weak_tests_fail_on_count_and_on_mutants() -> None:
    report = unit_tests.report(WEAK)
    result = report.data["mutation"]
    assert report.details == [result], "the mutation report is shown inside the check's report"
    failed = [c.message for c in report.failures]
    assert "at least 5 test functions (def test_...)" in failed
    assert any("planted bugs" in m for m in failed)
    assert result is not None and result.passes_on_original and result.survived
    assert "unsupported message type gets AE" in report.failures[-1].hint


def test_tests_that_fail_on_real_code_are_reported() -> None:
    report = unit_tests.report(WEAK.replace('== "X"', '== "Y", "the control id is MSH-10"'))
    failed = next(c for c in report.failures if c.message == "your tests pass on the real legacy service")
    # the learner reads which test failed and its own assertion message, not only "1 failed"
    assert "test_one: AssertionError: the control id is MSH-10" in failed.got and "1 failed" in failed.got
    page = report._repr_html_()
    assert "test_one" in page and "the control id is MSH-10" in page and "0/0" not in page


# --- exercise 5: the change record (pandas only) ------------------------------------------------------

def test_the_practice_change_record_is_the_references_answer_computed_ahead() -> None:
    """The toolkit ships the practice log's answer as data; the reference implementation stays with the grader."""
    reference = load_reference("ci_pipeline")
    want = reference.change_record(ci_pipeline.sample_audit_frame()).astype(str).to_dict("records")
    assert ci_pipeline.PRACTICE_CHANGE_RECORD == want
    assert not hasattr(ci_pipeline, "_reference_change_record")


def test_change_record_check_on_the_practice_log_and_the_hidden_logs() -> None:
    reference = load_reference("ci_pipeline")
    right = ci_pipeline.change_record.report(reference.change_record)
    assert right.passed, str(right)
    hidden = ci_pipeline.change_record.report(reference.change_record, cases=reference.hidden_change_record_cases())
    assert hidden.passed and len(hidden.criteria) == 2 * 5, str(hidden)

    def approved_only(frame):
        return reference.change_record(frame[frame["outcome"] == "approved"])

    wrong = ci_pipeline.change_record.report(approved_only)
    assert [c.message for c in wrong.failures] == ["one row per approval decision, denied ones included"]
