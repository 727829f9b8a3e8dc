"""careops.grading.feedback: what the learner is told (not answered, undone, hidden tests never shown) and how the
feedback goes back (a folder per learner, a Moodle zip, nbgrader's exchange with its own hashes).

The rendered pages of a real graded batch are opened in headless Chromium, offline, in
tests/test_grade_adversarial_batch.py.
"""
from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path
from typing import Any

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)
import nbformat

from careops.grading import feedback as F
from careops.grading.course import Course, make_temp_course
from careops.grading.journal import Journal
from careops.grading.restore import restore

ASSIGNMENT = "00-orientation"


def test_each_answer_is_named_by_its_exercise(orientation_source: dict) -> None:
    assert F.exercise_labels(orientation_source) == {
        "is_synthetic": "exercise 1 (is_synthetic)", "triage_probe_spec": "exercise 2 (triage_probe_spec)",
        "leaked_names": "exercise 3 (leaked_names)", "cleanup": "exercise 3 (cleanup)"}


def test_tests_of_unanswered_exercises_say_so_in_plain_words(orientation_source: dict,
                                                             orientation_release: dict) -> None:
    nb = restore(orientation_source, B.answered(orientation_release, orientation_source, "is_synthetic")).notebook
    assert F.unanswered(orientation_source, nb) == ["triage_probe_spec", "leaked_names", "cleanup"]
    assert F.unanswered_tests(orientation_source, nb) == {
        "test_triage_probe_spec": "not answered: exercise 2 (triage_probe_spec)",
        "test_triage_probe_running": "not answered: exercise 2 (triage_probe_spec)",  # a live check of the artifact
        "test_leaked_names": "not answered: exercise 3 (leaked_names)"}
    full = restore(orientation_source, orientation_source).notebook
    assert F.unanswered_tests(orientation_source, full) == {}


def _graded_notebook(source: dict) -> Any:
    """The source notebook as the grader leaves it: a hidden failure, a not-answered test, notes for the learner."""
    nb = copy.deepcopy(source)
    for cell in nb["cells"]:
        gid = ((cell.get("metadata") or {}).get("nbgrader") or {}).get("grade_id")
        if gid == "test_is_synthetic":
            cell["outputs"] = [{"output_type": "error", "ename": "AssertionError",
                                "evalue": "is_synthetic('ssn', '999-00-0001') should be True",
                                "traceback": ["AssertionError: is_synthetic('ssn', '999-00-0001') should be True"]}]
        if gid == "test_leaked_names":
            cell["outputs"] = [F.not_answered_output("not answered: exercise 3 (leaked_names)")]
    F.grading_notes(nb, F.GradingNotes(undone=["edited test cell test_is_synthetic (restored)"],
                                       not_answered={"test_leaked_names": "not answered: exercise 3 (leaked_names)"},
                                       hidden_failed=["test_is_synthetic"]))
    return nbformat.reads(json.dumps(nb), as_version=4)


def test_the_learner_never_sees_hidden_tests_or_why_they_failed(orientation_source: dict) -> None:
    nb, _ = F.LearnerFeedback().preprocess(_graded_notebook(orientation_source), {})
    text = json.dumps(nb)
    hidden = B.hidden_test_lines(orientation_source)
    assert hidden and not [ln for ln in hidden if json.dumps(ln)[1:-1] in text]
    assert "999-00-0001" not in text and "BEGIN HIDDEN TESTS" not in text
    summary = nb.cells[0].source
    assert "not answered: exercise 3 (leaked_names)" in summary
    assert "Undone before grading (the instructor&#x27;s version was used): edited test cell test_is_synthetic" \
        in summary
    assert F.NOTES_KEY not in nb.metadata
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_is_synthetic")
    assert [o["output_type"] for o in test.outputs] == ["display_data"]
    assert "hidden tests" in test.outputs[0]["data"]["text/html"]


def test_a_learners_own_marker_text_does_not_break_the_feedback(orientation_source: dict) -> None:
    nb = copy.deepcopy(orientation_source)
    B.set_source(nb, "is_synthetic", "# ### BEGIN HIDDEN TESTS (my notes)\ndef is_synthetic(k, v):\n    return False\n")
    out, _ = F.LearnerFeedback().preprocess(nbformat.reads(json.dumps(nb), as_version=4), {})
    assert "my notes" in json.dumps(out)  # the learner's cell is theirs: left as written


def _feedback_course(root: Path) -> Course:
    course = make_temp_course(root, ASSIGNMENT)
    journal = Journal.of(course, ASSIGNMENT)
    for learner, profile in (("ana", {}), ("amara-okafor", {"lms": "moodle", "participant": "1234",
                                                            "first_name": "Amara", "last_name": "Okafor"})):
        folder = course.root / "build/course/feedback" / learner / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / "orientation.html").write_text(f"<html><body>feedback of {learner}</body></html>")
        journal.append({"learner": learner, "key": "k", "status": "graded", "profile": profile})
    journal.append({"learner": "cy", "key": "k", "status": "graded", "profile": {}})  # graded, no page yet
    return course


def test_feedback_goes_back_in_a_folder_per_learner_and_a_moodle_zip(tmp_path: Path) -> None:
    course = _feedback_course(tmp_path / "course")
    done = F.return_feedback(course, ASSIGNMENT, dest=tmp_path / "back")
    assert done.learners == ["amara-okafor", "ana"] and done.missing == ["cy"]
    assert (tmp_path / "back/ana/00-orientation/orientation.html").read_text().endswith("feedback of ana</body></html>")
    assert done.moodle_zip is not None
    with zipfile.ZipFile(done.moodle_zip) as zf:
        assert zf.namelist() == [
            "Amara Okafor_1234_assignsubmission_file_/00-orientation-orientation.html"]
    assert "upload" in str(done) and "cy: no feedback page yet" in str(done)


def test_feedback_goes_back_through_nbgraders_exchange_with_its_own_hashes(tmp_path: Path) -> None:
    from nbgrader.utils import notebook_hash

    course = _feedback_course(tmp_path / "course")
    folder = course.root / "build/course/feedback/ana" / ASSIGNMENT
    (folder / "timestamp.txt").write_text("2026-03-02 16:05:00")
    (folder / "submission_secret.txt").write_text("a-secret-from-nbgrader-submit")
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    done = F.return_feedback(course, ASSIGNMENT, dest=tmp_path / "back", exchange=exchange)
    assert done.exchange == ["ana"]
    released = exchange / "careops-labs" / "feedback" / (
        notebook_hash(secret="a-secret-from-nbgrader-submit", notebook_id="orientation") + ".html")
    assert released.read_text().endswith("feedback of ana</body></html>")


def test_the_template_is_nbgraders_feedback_without_the_cdn() -> None:
    folder = Path(F.template_dirs()[0]) / F.TEMPLATE
    assert json.loads((folder / "conf.json").read_text())["base_template"] == "feedback"
    assert "http" not in (folder / "mathjax.html.j2").read_text().split("-#}")[1]
    assert all(Path(p).is_dir() for p in F.template_paths())
