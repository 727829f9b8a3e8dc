"""Test files mirror modules: each module of careops.grading has tests/test_grading_<module>.py (a module of a
subpackage: test_grading_<subpackage>_<module>.py), and no such file names a module that does not exist, so a new
module cannot land without its tests and a rename leaves no orphan.

Tests that cross modules live in files named for what they prove (test_grade_adversarial_batch.py,
test_grade_crash.py, test_grade_modules.py), never under a module's name.
"""
from __future__ import annotations

from pathlib import Path

import careops.grading

TESTS = Path(__file__).resolve().parent
PACKAGE = Path(careops.grading.__file__).resolve().parent


def test_every_grading_module_has_its_test_file_and_every_test_file_its_module() -> None:
    modules = {"_".join(p.relative_to(PACKAGE).with_suffix("").parts) for p in PACKAGE.rglob("*.py")
               if p.stem != "__init__"}
    test_files = {p.stem.removeprefix("test_grading_") for p in TESTS.glob("test_grading_*.py")}
    assert sorted(modules - test_files) == [], "add tests/test_grading_<module>.py for these modules"
    assert sorted(test_files - modules) == [], "these test files name no module of careops.grading"
