"""The one check report and the one check contract (careops.report.check).

A check returns its report; as a notebook cell's value a passing report shows
once (display_data, never an execute_result nbgrader would try to read a score
from); a failing check shows the report once and raises CheckFailed, which
renders as one line, not a traceback through the check's source.
"""
from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from careops.report import CheckFailed, CheckReport, learner_check, theme


def test_a_report_lists_every_criterion_and_raises_with_hints():
    report = CheckReport("Exercise 9")
    report.check(True, "the file exists")
    report.check(False, "memory is limited", hint="limits: {memory: 128m}", expected="<= 128 MiB", got="none")
    with pytest.raises(CheckFailed) as err:
        report.raise_for_failures()
    text = str(err.value)
    assert "Exercise 9: 1/2 criteria passed" in text
    assert "[PASS] the file exists" in text
    assert "[FAIL] memory is limited (expected '<= 128 MiB', got 'none')" in text and "hint: limits: {memory: 128m}" in text
    assert isinstance(err.value, AssertionError), "nbgrader must count a failed check as a failed test"
    assert err.value.report is report
    html = report._repr_html_()
    assert theme.FAIL_MARK in html and theme.PASS_MARK in html and "limits: {memory: 128m}" in html


def test_an_empty_report_does_not_pass():
    with pytest.raises(CheckFailed, match="nothing was checked"):
        CheckReport("empty").raise_for_failures()


def test_only_known_parts_of_expected_and_got_are_shown():
    report = CheckReport("x")
    report.check(False, "only got", got=3)
    report.check(False, "neither")
    assert "(got 3)" in str(report) and "expected None" not in str(report)
    assert "[FAIL] neither\n" in str(report) + "\n"


def test_evidence_is_shown_inside_the_report():
    class Evidence:
        def _repr_html_(self) -> str:
            return "<i>3 of 4 mutants killed</i>"

        def __str__(self) -> str:
            return "3 of 4 mutants killed"

    report = CheckReport("with evidence")
    report.check(True, "ok")
    report.attach(Evidence())
    report.attach(None)
    assert len(report.details) == 1
    assert "<i>3 of 4 mutants killed</i>" in report._repr_html_()
    assert str(report).endswith("3 of 4 mutants killed")


@learner_check
def _doubled(fn, *, title: str = "doubling") -> CheckReport:  # noqa: ANN001 - the learner's function
    report = CheckReport(title)
    report.data["got"] = fn(2)
    report.check(fn(2) == 4, "doubles 2", expected=4, got=fn(2), hint="return 2 * x")
    return report


def test_a_learner_check_returns_its_report_or_raises():
    assert _doubled(lambda x: 2 * x).passed
    with pytest.raises(CheckFailed) as err:
        _doubled(lambda x: x)
    assert err.value.report.data == {"got": 2}
    # .report: the same criteria without raising (hidden tests, the grader, unit tests)
    report = _doubled.report(lambda x: x, title="hidden")
    assert not report.passed and report.title == "hidden"
    assert _doubled.is_learner_check and _doubled.__name__ == "_doubled"


def test_a_check_that_returns_no_report_is_the_authors_mistake():
    @learner_check
    def broken(x):  # noqa: ANN001, ANN202
        return x == 1

    with pytest.raises(TypeError, match="returned bool, expected a CheckReport"):
        broken(1)


CELL_PRELUDE = '''
from careops.report import CheckReport, learner_check

@learner_check
def doubled(fn):
    report = CheckReport("Exercise 1: doubling")
    report.check(fn(2) == 4, "doubles 2", expected=4, got=fn(2), hint="return 2 * x")
    return report
'''


def test_in_a_notebook_each_report_shows_once_and_a_failure_is_one_line():
    """What a learner sees, from a real kernel: one output per report, no traceback, no execute_result."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(CELL_PRELUDE),
        nbformat.v4.new_code_cell("doubled(lambda x: 2 * x)"),
        nbformat.v4.new_code_cell("doubled(lambda x: x)"),
    ])
    client = NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True)
    client.execute()
    passed, failed = nb.cells[1].outputs, nb.cells[2].outputs
    assert [o.output_type for o in passed] == ["display_data"], passed
    assert "Exercise 1: doubling" in passed[0].data["text/html"] and "1/1 criteria passed" in passed[0].data["text/plain"]
    assert [o.output_type for o in failed] == ["display_data", "error"], failed
    assert "return 2 * x" in failed[0].data["text/html"]
    error = failed[1]
    assert error.ename == "CheckFailed"
    assert len(error.traceback) == 1 and "1 of 1 criteria not met yet" in error.traceback[0]
    assert "def doubled" not in "".join(error.traceback), "the check's source never shows"


def test_nbgrader_counts_a_failed_check_as_a_failed_cell():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL_PRELUDE + "\ndoubled(lambda x: x)")])
    with pytest.raises(CellExecutionError):
        NotebookClient(nb, timeout=60, kernel_name="python3").execute()


def test_a_stub_reads_not_written_yet_and_other_errors_keep_their_name():
    from careops.report import NOT_WRITTEN, call_learner, learner_error

    def stub(x):  # noqa: ANN001, ANN202
        raise NotImplementedError

    assert call_learner(stub, 1) == (None, NOT_WRITTEN)
    assert call_learner(lambda x: {}[x], "mrn") == (None, "KeyError: 'mrn'")
    assert call_learner(lambda x: x * 2, 2) == (4, None)
    assert learner_error(ValueError()) == "ValueError"

    class CrossedTheSandbox(Exception):  # what the grader's RemoteError carries
        def __init__(self, ename: str, evalue: str) -> None:
            super().__init__(f"{ename}: {evalue}")
            self.ename, self.evalue = ename, evalue

    assert learner_error(CrossedTheSandbox("NotImplementedError", "")) == NOT_WRITTEN
    assert learner_error(CrossedTheSandbox("ZeroDivisionError", "division by zero")) == "ZeroDivisionError: division by zero"


def test_parsed_is_the_first_criterion_of_an_artifact_check():
    class Unreadable(ValueError):
        fix = "indent with spaces"

    def parse(text: str) -> dict:
        if "\t" in text:
            raise Unreadable("line 2: a tab")
        return {"ok": text}

    report = CheckReport("spec")
    assert report.parsed(parse, "name: x", "the spec is valid", errors=Unreadable) == {"ok": "name: x"}
    assert [(c.message, c.passed) for c in report.criteria] == [("the spec is valid", True)]
    bad = CheckReport("spec")
    assert bad.parsed(parse, "a:\n\tb", "the spec is valid", errors=Unreadable) is None
    (failed,) = bad.criteria
    assert failed.message == "the spec is valid: line 2: a tab" and failed.hint == "indent with spaces"
    quiet = CheckReport("spec")
    quiet.parsed(parse, "x", "the spec is valid", errors=Unreadable, record_pass=False)
    assert quiet.criteria == []
    with pytest.raises(KeyError):  # only the named errors are the learner's; anything else is a bug to see
        CheckReport("x").parsed(lambda t: {}[t], "k", "m", errors=Unreadable)


def test_a_stub_is_reported_once_not_once_per_criterion():
    from careops.report import NOT_WRITTEN, call_learner

    def stub(x):  # noqa: ANN001, ANN202
        raise NotImplementedError()

    report = CheckReport("Exercise 1")
    for value in (1, 2, 3):
        got, err = call_learner(stub, value)
        report.check(err is None and got == value, f"it keeps {value}", got=err or got)
    assert report.not_written and not report.passed
    assert CheckFailed(report)._render_traceback_() == ["\x1b[1;31mExercise 1: not written yet (see the report above)\x1b[0m"]
    assert str(report).count(NOT_WRITTEN) == 1 and report._repr_html_().count(NOT_WRITTEN.split(":")[0]) == 2
    report.check(False, "a real failure")
    assert not report.not_written and str(report).count(NOT_WRITTEN) == 3
