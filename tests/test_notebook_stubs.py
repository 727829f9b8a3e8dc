"""Every function a learner writes is released with its signature: the ``def`` line (and its docstring) stays outside
the solution region, so the learner starts from the name and parameters the checks call, and an unanswered exercise
says 'not written yet' instead of a NameError. (A property test the learner decorates is the answer itself.)"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from careops.grading.restore import stub
from careops.outline import is_answer, source_text

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*/*.ipynb"))
_DEF = re.compile(r"^def (\w+)\(", re.MULTILINE)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_function_answers_keep_their_signature_in_the_released_version(notebook: Path) -> None:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    missing = []
    for cell in nb["cells"]:
        text = source_text(cell)
        if cell["cell_type"] != "code" or not is_answer(cell) or text.startswith("%%"):
            continue
        wanted = {name for name in _DEF.findall(text) if not name.startswith("test_")}
        released = set(_DEF.findall(stub(cell)))
        missing += [f"{cell['metadata']['nbgrader']['grade_id']}: def {name}(...)" for name in sorted(wanted - released)]
    assert not missing, f"{notebook.parent.name} releases these functions without their signature: {missing}"
