"""careops.grading.cleanup: removing a graded run's labs never raises and says what it did.

(Removing real resources, by `careops labs reset` and by the SDK, and refusing a pattern for an id:
tests/test_notebooks.py, beside the harness that calls it.)
"""
from __future__ import annotations

from pathlib import Path

import pytest

from careops.grading.cleanup import remove_learner_labs


@pytest.fixture
def no_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """DOCKER_HOST names a socket where no engine answers (nothing can have been started there either)."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    return str(tmp_path / "no-engine.sock")


def test_without_an_engine_there_is_nothing_to_remove_and_no_problem(no_engine: str) -> None:
    report = remove_learner_labs("harness-cleanup-unit", prefer_cli=False)
    assert report.method.startswith("nothing to do: no container engine answered")
    assert report.removed == [] and report.problems == [] and report.notes == []


def test_a_failing_labs_reset_falls_back_to_the_sdk_and_notes_why(no_engine: str) -> None:
    report = remove_learner_labs("harness-cleanup-unit")  # the real `careops labs reset`, which finds no engine
    [note] = report.notes
    assert note.startswith("careops labs reset exited ") and note != "careops labs reset exited 0"
    assert report.method.startswith("nothing to do: no container engine answered") and report.problems == []
