"""How careops results show themselves: the one check report type and the one theme.

The bottom floor of the package house: it imports nothing else of careops, so
every package (labs, pipelines, Dockerfile rules, checks, grading) can return a
:class:`CheckReport` and render with :mod:`careops.report.theme` without an
upward import.
"""
from __future__ import annotations

from careops.report import theme
from careops.report.check import (NOT_WRITTEN, CheckFailed, CheckReport, Criterion, call_learner, learner_check,
                                  learner_error, show)

__all__ = ["CheckFailed", "CheckReport", "Criterion", "NOT_WRITTEN", "call_learner", "learner_check", "learner_error",
           "show", "theme"]
