"""careops.grading.intake: collecting submissions, and turning away what cannot be graded before a container starts."""
from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)

from careops.grading import intake

ASSIGNMENT = "00-orientation"


def test_intake_rejects_with_a_reason(tmp_path: Path, orientation_release: dict, orientation_source: dict) -> None:
    source = orientation_source
    good = B.save(orientation_release, tmp_path / "ok.ipynb")
    assert intake.check_notebook(good, ASSIGNMENT, source)[1] is None
    cases = {
        "empty": ("", "is empty"),
        "blank-json": ('{"cells": [], "nbformat": 4, "metadata": {}}', "is empty (0 cells)"),
        "text": ("hello", "not valid JSON"),
        "v3": ('{"worksheets": [], "nbformat": 3}', "not a Jupyter notebook"),
        "badcell": ('{"cells": [{"cell_type": "code", "source": 5}], "nbformat": 4}', "cell 0 is malformed"),
    }
    for name, (text, reason) in cases.items():
        (tmp_path / f"{name}.ipynb").write_text(text)
        nb, problem = intake.check_notebook(tmp_path / f"{name}.ipynb", ASSIGNMENT, source)
        assert nb is None and reason in problem, (name, problem)
    B.save(B.wrong_assignment(orientation_release), tmp_path / "wrong.ipynb")
    assert "not of 00-orientation" in intake.check_notebook(tmp_path / "wrong.ipynb", ASSIGNMENT, source)[1]
    foreign = json.loads(json.dumps(orientation_release))
    foreign["metadata"].pop("careops", None)
    for c in foreign["cells"]:
        c["metadata"].pop("nbgrader", None)
    B.save(foreign, tmp_path / "foreign.ipynb")
    assert "none of the cells" in intake.check_notebook(tmp_path / "foreign.ipynb", ASSIGNMENT, source)[1]
    B.write_huge(tmp_path / "huge.ipynb", 40 * 1024**2)
    assert "too large: 40 MiB" in intake.check_notebook(tmp_path / "huge.ipynb", ASSIGNMENT, source)[1]


def test_collect_a_folder_and_an_nbgrader_exchange(tmp_path: Path) -> None:
    folder = tmp_path / "lms"
    folder.mkdir()
    (folder / "ana.ipynb").write_text("{}")
    (folder / "bo-2").mkdir()
    (folder / "bo-2" / "orientation.ipynb").write_text("{}")
    found = intake.collect(folder, ASSIGNMENT, ["orientation"])
    subs = found.submissions
    assert [(s.learner, list(s.files)) for s in subs] == [("ana", ["orientation"]), ("bo-2", ["orientation"])]
    assert {s.handed_in_from for s in subs} == {intake.FILE_TIME} and all(s.handed_in for s in subs)
    digest = subs[0].digest
    (folder / "ana.ipynb").write_text("{ }")
    assert intake.collect(folder, ASSIGNMENT, ["orientation"]).submissions[0].digest != digest
    inbound = tmp_path / "exchange" / "careops-labs" / "inbound"
    for folder_name in ("ana+00-orientation+2026-01-01 10:00:00.000000 UTC",
                        "ana+00-orientation+2026-01-02 10:00:00.000000 UTC",
                        "bo+01-ci-pipeline+2026-01-01 10:00:00.000000 UTC"):
        (inbound / folder_name).mkdir(parents=True)
        (inbound / folder_name / "orientation.ipynb").write_text(json.dumps({"when": folder_name}))
    (inbound / "ana+00-orientation+2026-01-02 10:00:00.000000 UTC" / "submission_secret.txt").write_text("s3cret")
    found = intake.collect(tmp_path / "exchange", ASSIGNMENT, ["orientation"])
    assert [s.learner for s in found.submissions] == ["ana"] and found.not_collected == []
    ana = found.submissions[0]
    assert "2026-01-02" in ana.files["orientation"].parent.name
    assert ana.handed_in == datetime(2026, 1, 2, 10, 0) and ana.handed_in_from == intake.EXCHANGE_TIME
    assert ana.secret is not None and ana.secret.read_text() == "s3cret"
    with pytest.raises(intake.SubmissionError, match="no submissions folder"):
        intake.collect(tmp_path / "nowhere", ASSIGNMENT, ["orientation"])


def test_odd_names_and_files_are_set_aside_with_their_reason_and_the_rest_collected(tmp_path: Path) -> None:
    """One odd name never stops the batch (it used to end the run with a rename hint)."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "ana.ipynb").write_text("{}")
    (folder / "bad name!.ipynb").write_text("{}")
    (folder / "notes.pdf").write_text("%PDF")
    (folder / "Some Folder").mkdir()
    (folder / "Some Folder" / "x.ipynb").write_text("{}")
    (folder / "ana").mkdir()
    older = folder / "ana" / "orientation.ipynb"
    older.write_text("{}")
    os.utime(older, (1_700_000_000, 1_700_000_000))
    (folder / ".DS_Store").write_text("")
    found = intake.collect(folder, ASSIGNMENT, ["orientation"])
    assert [s.learner for s in found.submissions] == ["ana"]
    assert found.submissions[0].origin == "ana.ipynb"  # the newer of the two hand-ins of ana
    reasons = {nc.path: nc.reason for nc in found.not_collected}
    assert sorted(reasons) == ["Some Folder/", "ana/", "bad name!.ipynb", "notes.pdf"]
    assert reasons["bad name!.ipynb"].startswith("cannot tell whose hand-in this is: the file name 'bad name!'")
    assert reasons["notes.pdf"] == "not a notebook (.pdf): only .ipynb files are graded"
    assert reasons["ana/"] == "another hand-in of ana (ana.ipynb) is newer: that one is graded"


def test_nbgrader_timestamps_read_as_utc() -> None:
    assert intake.parse_time("2026-01-02 10:00:00.000000 UTC") == datetime(2026, 1, 2, 10, 0)
    assert intake.parse_time("2026-01-02T11:00:00+01:00") == datetime(2026, 1, 2, 10, 0)
    assert intake.parse_time("2026-01-02 10:00:00") == datetime(2026, 1, 2, 10, 0)
    assert intake.parse_time("soon") is None
