"""careops.grading.export: the class's grades from nbgrader's gradebook (a real one), in the course's layout and as
Canvas and Moodle imports that read back with pandas; the score plot counts whole learners."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import pytest

from careops.grading.export import (CANVAS_COLUMNS, MOODLE_COLUMNS, CanvasExportPlugin, class_table, duration,
                                    export_class, plot_scores)
from careops.grading.journal import Journal

ASSIGNMENT = "00-orientation"
TESTS = ["test_is_synthetic", "test_triage_probe_spec", "test_triage_probe_running", "test_leaked_names"]
WHEN = datetime(2026, 3, 2, 16, 5)


@pytest.fixture(scope="module")
def graded(orientation_course: Any) -> Any:
    """Two learners of the session's course: one with full marks from Moodle, one with zero from Canvas."""
    import json

    from careops.grading.score import Scorer

    source = json.loads((orientation_course.root / "notebooks" / ASSIGNMENT / "orientation.ipynb").read_text())
    scorer = Scorer(orientation_course)
    journal = Journal.of(orientation_course, ASSIGNMENT)
    moodle = {"lms": "moodle", "participant": "1234", "first_name": "Amara", "last_name": "Okafor"}
    canvas = {"lms": "canvas", "lms_user_id": "5678", "login": "lindbo", "first_name": "Bo", "last_name": "Lind"}
    scorer.record(ASSIGNMENT, "export-amara", {"orientation": source}, handed_in=WHEN, profile=moodle)
    scorer.record_zero(ASSIGNMENT, "export-bo", "export-bo.ipynb is empty (0 cells)", handed_in=WHEN,
                       profile=canvas)
    journal.append({"learner": "export-amara", "key": "k", "status": "graded", "reason": "",
                    "handed_in_from": "file time in the Moodle download", "profile": moodle})
    journal.append({"learner": "export-bo", "key": "k", "status": "rejected",
                    "reason": "export-bo.ipynb is empty (0 cells)", "handed_in_from": "file time in the Canvas download",
                    "profile": canvas})
    return export_class(orientation_course, ASSIGNMENT)


def test_the_class_table_comes_from_the_gradebook_with_the_journals_notes(graded: Any) -> None:
    rows = {r.learner: r for r in graded.table.rows}
    amara, bo = rows["export-amara"], rows["export-bo"]
    assert (amara.status, amara.score, amara.max_score, amara.handed_in) == ("graded", 8.0, 8.0, WHEN)
    assert amara.cells == dict.fromkeys(TESTS, 2.0) and amara.full_name == "Amara Okafor"
    assert (bo.status, bo.score, bo.reason) == ("rejected", 0.0, "export-bo.ipynb is empty (0 cells)")
    assert bo.lms_user_id == "5678"  # from the LMS download into the gradebook's student


def test_grades_canvas_and_moodle_csvs_round_trip_through_pandas(graded: Any) -> None:
    grades = pd.read_csv(graded.grades_csv, keep_default_na=False, dtype=str).set_index("learner")
    assert list(grades.columns) == ["status", "score", "max_score", *TESTS, "raw_score", "late_penalty", "handed_in",
                                    "handed_in_from", "due", "reason"]
    assert grades.loc["export-amara", "handed_in"] == "2026-03-02 16:05:00"
    assert grades.loc["export-amara", "handed_in_from"] == "file time in the Moodle download"
    canvas = pd.read_csv(graded.canvas_csv, keep_default_na=False, dtype=str)
    assert list(canvas.columns) == CANVAS_COLUMNS + [ASSIGNMENT]
    bo = canvas[canvas["ID"] == "5678"].iloc[0]
    assert bo["Student"] == "Lind, Bo" and bo[ASSIGNMENT] == "0"
    assert canvas[canvas["Student"] == "Okafor, Amara"].iloc[0][ASSIGNMENT] == "8"
    moodle = pd.read_csv(graded.moodle_csv, keep_default_na=False, dtype=str)
    assert list(moodle.columns) == MOODLE_COLUMNS
    amara = moodle[moodle["Identifier"] == "Participant 1234"].iloc[0]
    assert (amara["Full name"], amara["Grade"], amara["Maximum Grade"]) == ("Amara Okafor", "8", "8")
    assert amara["Last modified (submission)"] == "Monday, 2 March 2026, 4:05 PM"
    assert amara["Status"] == "Submitted for grading" and amara["Feedback comments"].startswith("Autograded: 8 of 8")


def test_a_canvas_assignment_id_from_the_config_names_the_column(orientation_course: Any, graded: Any,
                                                                 tmp_path: Any) -> None:
    from nbgrader.api import Gradebook

    plugin = CanvasExportPlugin(to=str(tmp_path / "c.csv"), assignment=[ASSIGNMENT],
                                canvas_assignment_ids={ASSIGNMENT: "4242"}, course_root=str(orientation_course.root))
    with Gradebook(orientation_course.db_url, "careops-labs") as gb:
        plugin.export(gb)
    assert pd.read_csv(tmp_path / "c.csv").columns[-1] == f"{ASSIGNMENT} (4242)"


def test_the_score_plot_counts_whole_learners(tmp_path: Any, graded: Any) -> None:
    from PIL import Image

    rows = [r for r in graded.table.rows if r.learner.startswith("export-")]
    path = plot_scores(rows, tmp_path / "scores.png", ASSIGNMENT)
    assert path is not None and Image.open(path).size[0] > 100
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure()
    ax = fig.add_subplot()
    ax.hist([0.0, 8.0])
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.canvas.draw()
    assert all(float(t).is_integer() for t in ax.get_yticks())


def test_durations_read_plainly() -> None:
    from datetime import timedelta

    assert duration(timedelta(minutes=125)) == "2 h 5 min"
    assert duration(timedelta(days=1, seconds=30)) == "1 d 1 min"
    assert duration(timedelta(hours=3)) == "3 h"


def test_a_missing_learner_is_in_the_table_with_zero(orientation_course: Any, graded: Any) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(orientation_course.db_url, "careops-labs") as gb:
        gb.update_or_create_student("export-roster-only", first_name="Cy", last_name="Dube", email="cy@example.org")
        table = class_table(gb, orientation_course, ASSIGNMENT, learners=["export-roster-only"])
    (row,) = table.rows
    assert (row.status, row.score, row.max_score, row.email) == ("missing", 0.0, 8.0, "cy@example.org")
