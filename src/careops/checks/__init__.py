"""Learner checks: one message per criterion, each with a hint.

The contract every module's checks follow (module authors: read this first)
--------------------------------------------------------------------------
* A check is a noun named after what it checks (``check.container_spec``,
  ``check.blue_green``), decorated with :func:`careops.report.learner_check`,
  and lives in ``careops/checks/<module>.py`` (or the package ``careops/checks/<module>/``, with the
  recorded data its hidden tests use in a submodule). Its body records one criterion per
  property in a :class:`~careops.report.CheckReport` (each criterion fails exactly
  when its own property fails, with a hint that says what to do) and returns it.
* Called in a visible test cell, ``check.thing(answer)`` returns the report when
  every criterion passed (it shows itself once, as the cell's value), and
  otherwise shows it and raises :class:`CheckFailed` (nbgrader scores the cell
  0; the learner sees the report and one line, no traceback).
* Hidden tests, the grader and unit tests use ``check.thing.report(answer, ...)``:
  the same criteria, never raising.
* What a check measured besides its verdict goes in ``report.data``; evidence the
  learner should see with the verdict (a mutation report, a run) is attached with
  ``report.attach(obj)`` and shown inside the report, never as a second output.
* The learner's own functions are called through :func:`careops.report.call_learner`:
  an exception is a failed criterion in plain words (a stub reads "not written
  yet"), never a crashed check.
* A test cell that needs the engine is a live check: its setup (which turns the
  learner's declarative artifacts into lab objects, executed by careops' own code)
  is registered with ``@live_check("module.what")`` beside the module's checks;
  the grader imports every module listed in :data:`MODULES` to find them.

``eventually`` polls lab state that settles over time instead of failing on the first look.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from careops.polling import eventually
from careops.report import CheckFailed, CheckReport, Criterion, learner_check

#: The modules whose checks (and live-check setups) make up the course, in course order.
MODULES: tuple[str, ...] = (
    "careops.checks.orientation",
    "careops.checks.ci_pipeline",
    "careops.checks.containerize",
    "careops.checks.safe_deployments",
    "careops.checks.synthetic",
    "careops.checks.monitoring",
)

LiveSetup = Callable[[Any, dict[str, str]], dict[str, Any]]
#: Live-check setups by name: ``fn(lab, artifacts) -> names the test cell uses``.
LIVE_CHECKS: dict[str, LiveSetup] = {}


def live_check(name: str) -> Callable[[LiveSetup], LiveSetup]:
    """Register the setup of a live check: ``fn(lab, artifacts) -> names for the test cell``."""

    def register(fn: LiveSetup) -> LiveSetup:
        if LIVE_CHECKS.get(name, fn) is not fn:
            raise ValueError(f"two live checks are registered as {name!r}: {LIVE_CHECKS[name].__qualname__} "
                             f"and {fn.__qualname__}")
        LIVE_CHECKS[name] = fn
        return fn

    return register


def live_checks() -> dict[str, LiveSetup]:
    """Every module's live-check setups (importing the modules registers them)."""
    import importlib

    for module in MODULES:
        importlib.import_module(module)
    return LIVE_CHECKS


__all__ = ["CheckReport", "CheckFailed", "Criterion", "learner_check", "live_check", "live_checks", "LIVE_CHECKS",
           "MODULES", "eventually"]
