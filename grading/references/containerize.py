"""Module 2's reference answers (trusted: read on the instructor's host only, never shipped to learners).

The reference Dockerfile and .dockerignore of exercise 2 (the notebook's solution cells hold the same text), and
the answer key of exercise 1, whose visible check keeps only digests of it
(``careops.checks.containerize.FAULT_DIGESTS``). Loaded with ``careops.grading.references.load("containerize")``.
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).with_name("containerize")

#: Exercise 1: which fault each excerpt of v1 shows.
FAULTS = {"A": "hard-coded-path", "B": "phi-in-log", "C": "ack-before-commit", "D": "config-in-file",
          "E": "runs-as-root"}


def solution_artifacts() -> tuple[str, str]:
    """The reference Dockerfile and .dockerignore, e.g. for the bench and the toolkit's tests."""
    return ((HERE / "Dockerfile").read_text(encoding="utf-8"), (HERE / ".dockerignore").read_text(encoding="utf-8"))
