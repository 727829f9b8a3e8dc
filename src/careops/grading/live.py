"""Live lab checks for the grader: trusted code runs a learner's artifacts in throwaway labs.

A test cell that needs the engine (a running container, a pipeline, a
router) carries cell metadata ``careops: {live_check: NAME, artifacts: [...]}``.
In the learner's kernel it runs as written; in the grader the learner's code
never sees an engine, so the grader

1. extracts the named artifacts from the submitted notebook *without running
   it* (:func:`careops.artifacts.extract`),
2. opens a fresh :class:`~careops.lab.Lab` of its own and calls the setup
   registered here under NAME, which turns the artifact text into the objects
   the test cell expects (declarative specs only, executed by careops' code),
3. runs the instructor's test cell on the host with those objects bound,
4. closes the lab.

A module adds its live checks with ``@careops.checks.live_check("module.what")``
beside its checks; the setup returns the names the test cell uses.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from careops.artifacts import extract
from careops.checks import live_checks
from careops.errors import ArtifactError, CareOpsError
from careops.grading.restore import nbgrader_meta, source_text
from careops.grading.trusted import TestOutcome, failed, run_test_source


def live_meta(cell: dict[str, Any]) -> dict[str, Any] | None:
    """The cell's live-check metadata, or None for an ordinary test cell."""
    meta = cell.get("metadata") or {}
    care = meta.get("careops") if isinstance(meta, dict) else None
    if isinstance(care, dict) and care.get("live_check"):
        return care
    return None


def run_live_check(cell: dict[str, Any], notebook: dict[str, Any], prelude: dict[str, Any], *,
                   learner: str, fetch: Callable[[str, list[dict[str, Any]]], Any] | None = None) -> TestOutcome:
    """Run one live-check test cell in trusted code against a throwaway lab.

    Names the setup does not provide are fetched with ``fetch`` (the learner's
    sandbox, while it is alive), as for any test cell.
    """
    from careops.lab import Lab

    gid = str(nbgrader_meta(cell).get("grade_id", "?"))
    care = live_meta(cell) or {}
    name = str(care.get("live_check"))
    known = live_checks()
    setup = known.get(name)
    if setup is None:
        return failed(gid, f"the grader has no live check {name!r} (known: {', '.join(sorted(known))})")
    try:
        artifacts = extract(notebook)
    except ArtifactError as exc:
        return failed(gid, f"{exc.message} ({exc.fix})" if exc.fix else exc.message, "ArtifactError")
    wanted = [str(a) for a in care.get("artifacts") or []]
    missing = [a for a in wanted if a not in artifacts]
    if missing:
        return failed(gid, f"artifact {', '.join(missing)} is missing from the notebook", "ArtifactError")
    try:
        with Lab(f"grade-{uuid.uuid4().hex[:6]}", learner=f"g-{learner}"[:30], reclaim=False) as lab:
            try:
                objects = setup(lab, artifacts)
            except CareOpsError as exc:
                return failed(gid, f"the lab could not run your artifact: {exc.message}", "LabError")
            ns = {**prelude, **objects}
            outcome, _ = run_test_source(source_text(cell), gid, ns, fetch)
            return outcome
    except CareOpsError as exc:
        return failed(gid, f"the live check could not run: {exc.message}")
