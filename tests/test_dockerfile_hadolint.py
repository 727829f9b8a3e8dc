"""careops.dockerfile.hadolint: the real hadolint binary, its JSON read back."""
from __future__ import annotations

from pathlib import Path

from careops.dockerfile.hadolint import run_hadolint

SOLUTION = (Path(__file__).resolve().parents[1] / "grading" / "references" / "containerize" / "Dockerfile").read_text()


def test_solution_is_clean() -> None:
    result = run_hadolint(SOLUTION)
    assert result.ok and result.findings == [] and result.version[0].isdigit()


def test_findings_have_code_level_and_line() -> None:
    result = run_hadolint("FROM careops/base:latest\nRUN sudo apt-get install curl\nCMD python3 app.py\n")
    codes = {(f.code, f.line) for f in result.findings}
    assert {("DL3007", 1), ("DL3004", 2), ("DL3025", 3)} <= codes
    assert not result.ok and all(f.level in ("error", "warning", "info", "style") for f in result.findings)
    assert "DL3007" in result._repr_html_()


def test_ignore() -> None:
    assert "DL3007" not in {f.code for f in run_hadolint("FROM x:latest\n", ignore=("DL3007",)).findings}
