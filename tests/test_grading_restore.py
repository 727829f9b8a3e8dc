"""careops.grading.restore: a submission rebuilt on the instructor's skeleton, whatever the learner changed."""
from __future__ import annotations

import json

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)

from careops.grading.restore import restore, source_text, stub


def test_restore_keeps_answers_and_extra_cells_and_undoes_tampering(orientation_release: dict, orientation_source: dict) -> None:
    source = orientation_source
    nb = B.answered(orientation_release, source, "is_synthetic")
    B.add_after(nb, "is_synthetic", "helper = 42\n")
    restored = restore(source, nb)
    assert restored.notes == []
    ids = [(c["metadata"].get("nbgrader") or {}).get("grade_id") for c in restored.notebook["cells"]]
    assert ids.index("is_synthetic") + 1 == ids.index(None) and restored.notebook["cells"][ids.index(None)]["source"] == "helper = 42\n"
    test = restored.notebook["cells"][ids.index("test_is_synthetic")]
    assert "### BEGIN HIDDEN TESTS" in test["source"]  # the instructor's test, hidden part included
    assert restored.notebook["cells"][ids.index("is_synthetic")]["source"] == source_text(B.cell(source, "is_synthetic"))
    tampered = restore(source, B.tampered(orientation_release, source))
    assert tampered.tampered and len(tampered.notes) == 7
    cells = tampered.notebook["cells"]
    assert [(c["metadata"].get("nbgrader") or {}).get("grade_id") for c in cells] == [
        (c["metadata"].get("nbgrader") or {}).get("grade_id") for c in source["cells"]]
    assert all(c["source"] == source_text(s) for c, s in zip(cells, source["cells"])
               if (s["metadata"].get("nbgrader") or {}).get("locked"))


def test_restore_of_a_deleted_answer_is_the_released_stub(orientation_source: dict) -> None:
    source = orientation_source
    nb = json.loads(json.dumps(source))
    del nb["cells"][B.index_of(nb, "leaked_names")]
    restored = restore(source, nb)
    assert restored.notes == ["missing answer leaked_names (graded as unanswered)"]
    text = B.cell(restored.notebook, "leaked_names")["source"]
    assert "raise NotImplementedError()" in text and "table[" not in text
    assert stub(B.cell(source, "triage_probe_spec")).startswith("%%artifact triage_probe_spec\n")
