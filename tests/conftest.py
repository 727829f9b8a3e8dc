"""Shared fixtures: where the repo is; the grader tests' submission builders."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# tests/fixtures/submissions/builders.py (submissions made at test time) is imported as `builders`
sys.path.insert(0, str(REPO_ROOT / "tests" / "fixtures" / "submissions"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
