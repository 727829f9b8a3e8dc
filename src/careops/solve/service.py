"""The hub's side of solve in workshop mode: answer one learner's request and keep the class's journal.

The workshop hub runs this behind a JupyterHub service (its URL reaches the
learners' servers as ``$CAREOPS_SOLVE_URL``): the service authenticates the
request's hub token, which names the learner, and calls :func:`answer` with
the instructor's checkout as the source. The learner's server never holds a
solution before it asks, and the hub's journal records every solution shown,
out of the learner's reach. :class:`careops.solve.sources.HubSolutions` is the
client.

The request is JSON ``{"module": "02-containerize-legacy", "answer": "adt_dockerfile", "confirm": true}``;
the answer is a :class:`~careops.solve.sources.Solution` as JSON (status 200),
or ``{"message", "fix"}`` with 400 (a bad request), 403 (solve is switched off
for this module) or 404 (no such module or exercise).
"""
from __future__ import annotations

from collections.abc import Collection
from typing import Any

from careops.errors import SolveError
from careops.solve.journal import SolveEntry, SolveJournal
from careops.solve.sources import CheckoutSolutions


def answer(request: Any, *, learner: str, source: CheckoutSolutions, journal: SolveJournal,
           allowed_modules: Collection[str] | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for one learner's solve request; a solution shown is in the journal first."""
    if not isinstance(request, dict) or not all(isinstance(request.get(k), str) and request.get(k)
                                                for k in ("module", "answer")):
        return 400, {"message": "a solve request is JSON with the strings module and answer",
                     "fix": "e.g. {\"module\": \"00-orientation\", \"answer\": \"is_synthetic\", \"confirm\": true}"}
    if request.get("confirm") is not True:
        return 400, {"message": "a solve request must be confirmed: the exercise then scores 0",
                     "fix": "send confirm: true once the learner agreed"}
    try:
        module = source.module(request["module"])
        if allowed_modules is not None and module not in allowed_modules:
            return 403, {"message": f"solve is not open for {module} in this workshop",
                         "fix": "ask your instructor: they open it when the class moves on"}
        solution = source.solution(module, request["answer"], learner=learner)
    except SolveError as exc:
        return 404, {"message": exc.message, "fix": exc.fix or ""}
    journal.append(SolveEntry(learner, solution.module, solution.answer, solution.exercise, solution.points, "hub"))
    body = solution.as_json()
    body["via"] = "hub"
    return 200, body


__all__ = ["answer"]
