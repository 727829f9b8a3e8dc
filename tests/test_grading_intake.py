"""careops.grading.intake: collecting submissions, and turning away what cannot be graded before a container starts."""
from __future__ import annotations

import json
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
    subs = intake.collect(folder, ASSIGNMENT, ["orientation"])
    assert [(s.learner, list(s.files)) for s in subs] == [("ana", ["orientation"]), ("bo-2", ["orientation"])]
    digest = subs[0].digest
    (folder / "ana.ipynb").write_text("{ }")
    assert intake.collect(folder, ASSIGNMENT, ["orientation"])[0].digest != digest
    (folder / "bad name!.ipynb").write_text("{}")
    with pytest.raises(intake.SubmissionError, match="cannot use 'bad name!' as a learner id"):
        intake.collect(folder, ASSIGNMENT, ["orientation"])
    inbound = tmp_path / "exchange" / "careops-labs" / "inbound"
    for folder_name in ("ana+00-orientation+2026-01-01 10:00:00.000000 UTC",
                        "ana+00-orientation+2026-01-02 10:00:00.000000 UTC",
                        "bo+01-ci-pipeline+2026-01-01 10:00:00.000000 UTC"):
        (inbound / folder_name).mkdir(parents=True)
        (inbound / folder_name / "orientation.ipynb").write_text(json.dumps({"when": folder_name}))
    subs = intake.collect(tmp_path / "exchange", ASSIGNMENT, ["orientation"])
    assert [s.learner for s in subs] == ["ana"]
    assert "2026-01-02" in subs[0].files["orientation"].parent.name
    with pytest.raises(intake.SubmissionError, match="no submissions folder"):
        intake.collect(tmp_path / "nowhere", ASSIGNMENT, ["orientation"])
