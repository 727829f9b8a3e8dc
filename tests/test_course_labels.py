"""A check names its exercise as the notebook does: every ``Exercise <label>:`` title in a module's checks is a label
of an exercise heading in that module's notebook (so a renumbered notebook cannot leave its checks behind)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from careops.outline import outline, source_text

REPO = Path(__file__).resolve().parents[1]
CHECKS = REPO / "src" / "careops" / "checks"
NOTEBOOKS = sorted((REPO / "notebooks").glob("*/*.ipynb"))


def _check_sources(nb: dict) -> list[Path]:
    names = {m for cell in nb["cells"] for m in re.findall(r"from careops\.checks import (\w+) as check",
                                                           source_text(cell))}
    found = []
    for name in names:
        found += [p for p in (CHECKS / f"{name}.py", CHECKS / name) if p.exists()]
    return [f for p in found for f in ([p] if p.is_file() else sorted(p.glob("*.py")))]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_the_checks_name_the_notebooks_exercises(notebook: Path) -> None:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    sources = _check_sources(nb)
    assert sources, f"{notebook.parent.name} imports no check module as `check`"
    labels = {h.label for h in outline(nb).headings}
    wrong = sorted({f"{p.name}: Exercise {label}" for p in sources
                    for label in re.findall(r"Exercise (\d+[a-z]?)\b", p.read_text(encoding="utf-8"))
                    if label not in labels})
    assert not wrong, f"these checks name exercises {notebook.parent.name} does not have (it has {sorted(labels)}): {wrong}"
