"""careops.workshop.probe's notebook helpers (the hub tests run what they make in a learner's server)."""
from __future__ import annotations

import json

import pytest

from careops.workshop.probe import solved_notebook


def _ids(text: str) -> list[str]:
    return [(c["metadata"].get("nbgrader") or {}).get("grade_id") for c in json.loads(text)["cells"]]


def test_a_solved_notebook_keeps_the_answers_and_drops_every_hidden_test() -> None:
    text = solved_notebook("03-safe-deployments")
    assert "### BEGIN HIDDEN TESTS" not in text and "### BEGIN SOLUTION" in text
    assert _ids(text)[-1] == "close" and "test_rolling_update" in _ids(text)


def test_a_solved_notebook_through_a_cell_stops_there_and_still_cleans_up() -> None:
    ids = _ids(solved_notebook("03-safe-deployments", through="test_blue_green"))
    assert ids[-2:] == ["test_blue_green", "close"]
    assert "bg-run" in ids and "canary-run" not in ids and "rolling-run" not in ids
    with pytest.raises(ValueError, match="no cell with grade id 'test_nothing'"):
        solved_notebook("03-safe-deployments", through="test_nothing")
