"""careops.grading.references: the answers load only where they live, and a hand-in that reaches for them is found.

The end-to-end proof (a hand-in importing a reference scores 0 in the real sandbox, with its reason) is in
tests/test_grade_adversarial_batch.py and tests/test_grade_modules.py; the search of the toolkit wheel, the grader
image and the learner copy for answer lines is at the bottom of this file.
"""
from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any

import pytest

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)

from careops.errors import CareOpsError
from careops.grading import references as R
from careops.grading.restore import restore


def uses(code: str) -> list[str]:
    return R.find_uses(ast.parse(code))


def test_imports_names_and_paths_of_references_are_found() -> None:
    assert uses("from careops.checks.ci_pipeline import _reference_change_record as change_record") == [
        "from careops.checks.ci_pipeline import _reference_change_record"]
    assert uses("import careops.grading.references as r\nx = r.load('ci_pipeline')") == [
        "import careops.grading.references"]
    assert uses("from careops.checks import safe_deployments as c\nrows = c.recorded.GRADED_ROWS") == [".GRADED_ROWS"]
    assert uses("text = open('../../notebooks/00-orientation/orientation.ipynb').read()")[0].startswith("reads ")
    assert uses("get_ipython().system('cat /work/grading/references/ci_pipeline.py')")[0].startswith("reads ")
    assert uses("import importlib\nm = importlib.import_module('careops.grading.references')")[0].startswith("the string")
    assert uses("y = open('build/gradebook.db', 'rb').read()")[0].startswith("reads ")
    # honest code names none of them
    assert uses("import pandas as pd\ndef change_record(frame):\n    return frame[frame.action == 'x']") == []
    assert uses("from careops.checks import ci_pipeline as check\ncheck.change_record(f)") == []
    assert uses("path = 'workspace/00-orientation/notes.txt'") == []


def _answer(nb: dict[str, Any], grade_id: str, text: str) -> dict[str, Any]:
    B.set_source(nb, grade_id, text)
    return nb


def test_the_exercise_that_relies_on_a_reference_scores_zero_and_only_that_one(orientation_source: dict,
                                                                               orientation_release: dict) -> None:
    source = orientation_source
    nb = B.answered(orientation_release, source, "is_synthetic", "triage_probe_spec", "leaked_names")
    _answer(nb, "leaked_names", "import careops.grading.references as _r\nleaked_names = _r.load('orientation')")
    zero = R.exercises_using_references(restore(source, nb).notebook)
    assert list(zero) == ["test_leaked_names"]
    assert zero["test_leaked_names"].startswith("cell leaked_names uses the course's reference answers "
                                                "(import careops.grading.references")


def test_taint_follows_names_through_cells_and_an_honest_redefinition_clears_it(orientation_source: dict,
                                                                                orientation_release: dict) -> None:
    source = orientation_source
    nb = B.answered(orientation_release, source, "is_synthetic", "triage_probe_spec", "leaked_names")
    cheat = "answers = open('../../notebooks/00-orientation/orientation.ipynb').read()\n"
    B.add_after(nb, "is_synthetic", cheat)  # an extra cell binds `answers` from the source notebook
    uses_it = "def leaked_names(table, lab):\n    return sorted(answers.split()[:2])\n"
    zero = R.exercises_using_references(restore(source, _answer(copy.deepcopy(nb), "leaked_names", uses_it)).notebook)
    # the exercise the read sits in (the next test) and the exercise whose answer relies on what it read
    assert list(zero) == ["test_is_synthetic", "test_leaked_names"]
    assert "reads '../../notebooks/00-orientation" in zero["test_leaked_names"]
    # the same extra cell, but every answer does its own work: only the exercise the read sits in pays
    zero = R.exercises_using_references(restore(source, nb).notebook)
    assert list(zero) == ["test_is_synthetic"]
    honest = "answers = None\n"  # redefined honestly before the answer uses it: the taint is gone
    B.add_after(nb, "triage_probe_spec", honest)
    zero = R.exercises_using_references(restore(source, _answer(nb, "leaked_names", uses_it)).notebook)
    assert list(zero) == ["test_is_synthetic"]


def test_a_reference_module_loads_on_the_instructors_host_and_nowhere_else(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    module = R.load("ci_pipeline")
    assert callable(module.change_record) and R.load("ci_pipeline") is module
    assert R.reference_file("safe-deployments/blue-green.yaml").read_text().startswith("apiVersion")
    monkeypatch.setenv(R.REFERENCES_ENV, str(tmp_path / "none"))
    with pytest.raises(CareOpsError, match="live only on the instructor's host"):
        R.load("ci_pipeline")
    with pytest.raises(CareOpsError, match="the reference file"):
        R.reference_file("safe-deployments/blue-green.yaml")
    with pytest.raises(CareOpsError, match="no reference module"):
        R.load("../ci_pipeline")
