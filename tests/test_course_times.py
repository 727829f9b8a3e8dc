"""Every notebook states its time one way: header, metadata, exercise headings, its own table, the README's module
table and the instructor guide's schedule agree (careops.outline.time_problems reads a notebook; new modules under
notebooks/*/ are picked up by themselves)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from careops.outline import parse_duration, short_duration, short_track_minutes, time_problems, total_minutes

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*/*.ipynb"))
#: a module long enough to need a short track (minutes)
LONG_MODULE = 150
_TABLE_DURATION = re.compile(r"\|\s*(\d+ h \d\d|\d+ min)\s*\|")


def _nb(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_header_metadata_headings_and_table_agree(notebook: Path) -> None:
    assert time_problems(_nb(notebook), notebook.parent.name) == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_a_long_module_has_a_short_track(notebook: Path) -> None:
    nb = _nb(notebook)
    total = total_minutes(nb)
    assert total is not None
    if total >= LONG_MODULE:
        assert short_track_minutes(nb), f"{notebook.parent.name} takes {total} minutes: give it a short track"


def _rows(text: str, module: str) -> list[str]:
    """Table rows that name a module's folder (README) or 'Module N' (the guide)."""
    number = int(module[:2])
    return [line for line in text.splitlines() if line.startswith("|") and
            (f"`notebooks/{module}`" in line or re.search(rf"\bModule {number}\b", line))]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_the_readme_and_the_instructor_guide_state_the_same_times(notebook: Path) -> None:
    nb, module = _nb(notebook), notebook.parent.name
    allowed = {total_minutes(nb), short_track_minutes(nb)} - {None}
    readme = [r for r in _rows((REPO / "README.md").read_text(encoding="utf-8"), module)]
    assert readme, f"README's module table has no row for notebooks/{module}"
    stated = [parse_duration(m) for r in readme for m in _TABLE_DURATION.findall(r)]
    assert stated and stated[0] == total_minutes(nb), (
        f"README says {readme[0]!r}; the notebook takes {short_duration(total_minutes(nb) or 0)}")
    for guide in sorted((REPO / "instructors").glob("*.md")):
        for row in _rows(guide.read_text(encoding="utf-8"), module):
            for found in _TABLE_DURATION.findall(row):
                assert parse_duration(found) in allowed, (
                    f"{guide.name}: {row!r} gives {module} {found}; the notebook says "
                    + " or ".join(short_duration(m) for m in sorted(allowed)))


def test_the_readme_total_is_the_sum_of_the_modules() -> None:
    total = sum(total_minutes(_nb(p)) or 0 for p in NOTEBOOKS)
    text = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"about (\d+ h \d\d) of work in all", text)
    assert m and parse_duration(m.group(1)) == total, f"README should say about {short_duration(total)} of work in all"


def test_the_checker_finds_each_kind_of_disagreement() -> None:
    nb = _nb(REPO / "notebooks" / "01-ci-pipeline" / "ci-pipeline.ipynb")
    assert time_problems(nb) == []

    def broken(edit) -> list[str]:
        copy = json.loads(json.dumps(nb))
        edit(copy)
        return time_problems(copy)

    def header(old: str, new: str):
        def edit(copy: dict) -> None:
            copy["cells"][0]["source"] = "".join(copy["cells"][0]["source"]).replace(old, new, 1)
        return edit

    assert any("metadata" in p for p in broken(lambda c: c["metadata"]["careops"]["minutes"].update(teaching=99)))
    assert any("total" in p for p in broken(header("2 hours 40 minutes", "2 hours")))
    assert any("table says exercise 2" in p for p in broken(header("| 2. The pipeline as code | 3 | 30 |",
                                                                    "| 2. The pipeline as code | 3 | 20 |")))
    assert any("short track" in p for p in broken(lambda c: c["metadata"]["careops"]["tracks"]["short"].update(
        minutes=100)))

    def heading(copy: dict) -> None:
        for cell in copy["cells"]:
            text = "".join(cell["source"])
            if text.startswith("## Exercise 3 "):
                cell["source"] = text.replace("(3 points, ~30 min)", "(3 points, ~20 min)")
    assert any("add up to" in p for p in broken(heading))
