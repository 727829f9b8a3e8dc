"""careops.grading.trusted: test cells run on the host in trusted code; the learner's values come in as data."""
from __future__ import annotations

import pytest

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)

from careops.grading.restore import source_text
from careops.grading.trusted import _MISSING, Opaque, decode, run_test_source, trusted_prelude


def test_values_from_the_sandbox_are_parsed_strictly() -> None:
    assert decode({"__tuple__": [1, {"__set__": ["a"]}]}) == (1, {"a"})
    assert decode({"__float__": "nan"}) != decode({"__float__": "nan"})  # nan stays nan
    for bad in ({"__class__": "os.system"}, {"a": 1, "b": 2}, {"__float__": "1e999999"}, {"__tuple__": 5}):
        with pytest.raises(ValueError):
            decode(bad)
    with pytest.raises(TypeError, match="cannot use 'probe'"):
        Opaque("probe", "LabContainer") == 1  # noqa: B015


def test_test_cells_run_in_trusted_code_whatever_the_learner_patched(orientation_source: dict) -> None:
    source = orientation_source
    prelude = trusted_prelude(source)
    assert prelude["check"].__name__ == "careops.checks.orientation"
    test = source_text(B.cell(source, "test_is_synthetic"))
    fetched: list[str] = []

    def learner(is_synthetic):  # what a sandbox fetch returns for the learner's names (a fake for this unit)
        def fetch(name, outputs):
            fetched.append(name)
            return is_synthetic if name == "is_synthetic" else _MISSING
        return fetch

    ns: dict = {}
    exec(source_text(B.cell(source, "is_synthetic")), ns)  # noqa: S102 - the instructor's solution
    ok, _ = run_test_source(test, "t", dict(prelude), learner(ns["is_synthetic"]))
    assert ok.passed and "is_synthetic" in fetched
    wrong, _ = run_test_source(test, "t", dict(prelude), learner(lambda kind, value: True))
    assert not wrong.passed and wrong.reason.startswith("CheckFailed: Exercise 1")
    # as in the learner's kernel: the report once (with its hints), then one line, no traceback through the check
    assert [o["output_type"] for o in wrong.outputs] == ["display_data", "error"]
    assert "hint:" in wrong.outputs[0]["data"]["text/plain"] and "hint" in wrong.outputs[0]["data"]["text/html"]
    assert len(wrong.outputs[1]["traceback"]) == 1 and "careops/checks" not in wrong.outputs[1]["traceback"][0]
    missing, _ = run_test_source(test, "t", dict(prelude), lambda name, outputs: _MISSING)
    assert not missing.passed and missing.reason.startswith("NameError")


def test_the_prelude_runs_only_the_imports_of_locked_instructor_cells() -> None:
    def code(source: str, **nbgrader: object) -> dict:
        return {"cell_type": "code", "source": source, "metadata": {"nbgrader": nbgrader} if nbgrader else {}}

    notebook = {"cells": [
        code("import json\nraise SystemExit('statements other than imports never run')\n", locked=True),
        code("import csv\n", solution=True, locked=False),  # the learner's answer
        code("import html\n"),  # not locked: the learner may have changed it
        code("import a_lab_module_on_the_path_at_run_time\nfrom os import path\n", locked=True),
    ]}
    names = set(trusted_prelude(notebook))
    assert {"json", "path"} <= names and not names & {"csv", "html", "a_lab_module_on_the_path_at_run_time"}
