"""Every module goes through the sandboxed grader: for each assignment, the
solution handed in as a learner would (the released notebook with every
answer cell filled in) gets full marks, and the released notebook as it is
gets zero -- with learner cells sealed in the grading container, test cells in
trusted code and live checks against throwaway labs.

tests/test_notebooks.py proves the same both ways with plain nbgrader on the
host; this proves the graded exercises survive the sandbox's rules (values
crossing as data, no engine inside, lab assets from the grading image).
"""
from __future__ import annotations

import csv
import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)

REPO = Path(__file__).resolve().parents[1]

MODULES = sorted(p.parent.name for p in (REPO / "notebooks").glob("*/*.ipynb") if p.parent.name != "00-orientation")


def _answer_ids(source: dict) -> list[str]:
    return [c["metadata"]["nbgrader"]["grade_id"] for c in source["cells"]
            if (c.get("metadata") or {}).get("nbgrader", {}).get("solution")]


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("assignment", MODULES)
def test_solution_full_marks_and_release_zero_in_the_sandbox(assignment: str, tmp_path: Path) -> None:
    from careops.apps.grade import main
    from careops.grading.autograder import grading_dir
    from careops.grading.course import generate_assignment, make_temp_course

    notebook = next((REPO / "notebooks" / assignment).glob("*.ipynb"))
    course = make_temp_course(tmp_path / "course", assignment)
    release = B.load(generate_assignment(assignment, course.root) / notebook.name)
    source = B.load(notebook)
    subs = tmp_path / "submissions"
    subs.mkdir()
    B.save(B.answered(release, source, *_answer_ids(source)), subs / "solution.ipynb")
    B.save(release, subs / "blank.ipynb")
    if assignment == "01-ci-pipeline":  # the hand-in: the toolkit's old reference answer as the answer
        B.save(B.set_source(B.answered(release, source), "change_record",
                            "from careops.checks.ci_pipeline import _reference_change_record as change_record\n"),
               subs / "refcheat.ipynb")
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(assignment=assignment, submissions=subs, course_dir=course.root, jobs=2, feedback=False,
                    progress=False)
    rows = {r["learner"]: r for r in csv.DictReader((grading_dir(course, assignment) / "grades.csv").open())}
    solution, blank = rows["solution"], rows["blank"]
    assert code == 0, out.getvalue()
    assert solution["status"] == "graded" and solution["score"] == solution["max_score"], (solution, out.getvalue())
    assert float(blank["score"]) == 0, blank
    if assignment == "01-ci-pipeline":
        cheat = rows["refcheat"]
        assert cheat["test_change_record"] == "0" and float(cheat["score"]) == 0, cheat
        assert ("test_change_record scored 0: cell change_record uses the course's reference answers "
                "(from careops.checks.ci_pipeline import _reference_change_record)") in cheat["reason"], cheat
