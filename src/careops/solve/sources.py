"""Where a solution comes from: only a trusted place, never the learner's own toolkit or image.

* :class:`CheckoutSolutions` -- the instructor's full checkout of the course
  (``notebooks/``: the source notebooks with their solution cells). A self-paced
  learner who runs the course from a full checkout uses it directly; an
  instructor uses it to hand a solution to a learner (``careops solve NAME
  --module M``).
* :class:`HubSolutions` -- workshop mode: the hub's solve service answers for
  the learner its token names and keeps the class's journal
  (:func:`careops.solve.service.answer` is the service's side).

A learner's copy of the course (``careops release``) and the workshop's
learner image hold neither the source notebooks nor ``grading/references/``:
there :func:`trusted_source` finds nothing and ``solve`` says how to ask the
instructor (:data:`ASK_INSTRUCTOR`).
"""
from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from careops import paths
from careops.errors import SolveError
from careops.outline import Exercise, outline, source_text
from careops.solve.marks import answer_cells, mark, solution_text

#: workshop mode: the hub's solve service (``http://hub:8081/services/careops-solve/``) and its token
SOLVE_URL_ENV = "CAREOPS_SOLVE_URL"
SOLVE_TOKEN_ENV = "CAREOPS_SOLVE_TOKEN"
HUB_TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
#: the file that marks a learner's copy of the course (written by ``careops release``)
LEARNER_COPY_MARKER = "LEARNER-COPY.md"
ASK_INSTRUCTOR = ("ask your instructor: in a workshop they can show you the solution or unlock solve for the class; "
                  "self-paced, they run `careops solve {name} --module {module}` in their full checkout and send you "
                  "the cell. Paste it over your answer cell: its first line records that you used it (that exercise "
                  "scores 0, the others are graded as usual)")


@dataclass(frozen=True)
class Solution:
    """The solution of one answer cell, marked, and what it costs."""

    module: str
    answer: str  # the answer cell's grade id
    text: str  # the cell's full text, starting with the solve mark (after %%artifact)
    exercise: str  # the exercise's label
    points: float  # the exercise's points, which it then loses
    tests: tuple[str, ...]  # the exercise's autograded tests
    others: tuple[str, ...]  # the exercise's other answer cells (solved one by one)
    via: str = "checkout"

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["tests"], out["others"] = list(self.tests), list(self.others)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], *, via: str) -> "Solution":
        try:
            return cls(str(data["module"]), str(data["answer"]), str(data["text"]), str(data["exercise"]),
                       float(data["points"]), tuple(map(str, data.get("tests") or ())),
                       tuple(map(str, data.get("others") or ())), via)
        except (KeyError, TypeError, ValueError) as exc:
            raise SolveError(f"the solve service's answer is not a solution: missing or bad {exc}",
                             fix="tell your instructor: the hub's solve service answered something else") from None


class SolutionSource(Protocol):
    via: str

    def solution(self, module: str, name: str, *, learner: str) -> Solution: ...


class CheckoutSolutions:
    """Solutions from the source notebooks of a full checkout (``<root>/notebooks/<module>/*.ipynb``)."""

    via = "checkout"

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or paths.repo_root()).resolve()

    @property
    def folder(self) -> Path:
        return self.root / "notebooks"

    def available(self) -> bool:
        return not (self.root / LEARNER_COPY_MARKER).exists() and any(self.folder.glob("*/*.ipynb"))

    def modules(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir() if p.is_dir() and any(p.glob("*.ipynb"))) \
            if self.folder.is_dir() else []

    def module(self, name: str) -> str:
        """``00-orientation`` from ``00-orientation``, ``0``, ``00`` or ``orientation``."""
        known = self.modules()
        key = name.strip().lower()
        for m in known:
            number, _, words = m.partition("-")
            if key in (m, words) or (key.isdigit() and int(key) == int(number)):
                return m
        raise SolveError(f"no module {name!r} in this course: expected one of {', '.join(known) or '(none)'}",
                         fix="name the module by its folder, e.g. --module 01-ci-pipeline")

    def notebook(self, module: str) -> dict[str, Any]:
        found = sorted((self.folder / module).glob("*.ipynb"))
        if not found:
            raise SolveError(f"module {module} has no notebook in {self.folder}", fix="check the checkout")
        return json.loads(found[0].read_text(encoding="utf-8"))

    def solution(self, module: str, name: str, *, learner: str = "") -> Solution:
        module = self.module(module)
        nb = self.notebook(module)
        layout = outline(nb, module)
        ex = layout.exercise(name)
        if ex is None:
            names = ", ".join(a for e in layout.exercises for a in e.answers)
            raise SolveError(f"{module} has no exercise {name!r}: expected an answer cell's name ({names})",
                             fix="use the name of the function, variable or artifact the exercise asks for")
        answer = name if name in ex.answers else ex.answers[0]
        text = mark(solution_text(source_text(answer_cells(nb)[answer])), answer)
        return Solution(module, answer, text, ex.label, ex.points, ex.tests,
                        tuple(a for a in ex.answers if a != answer), self.via)

    def exercises(self, module: str) -> list[Exercise]:
        module = self.module(module)
        return outline(self.notebook(module), module).exercises


class HubSolutions:
    """Workshop mode: ask the hub's solve service, which answers for the learner its token names."""

    via = "hub"

    def __init__(self, url: str, token: str, *, timeout: float = 20.0) -> None:
        self.url, self.token, self.timeout = url, token, timeout

    def solution(self, module: str, name: str, *, learner: str = "") -> Solution:
        body = json.dumps({"module": module, "answer": name, "confirm": True}).encode()
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return Solution.from_json(json.loads(resp.read()), via=self.via)
        except urllib.error.HTTPError as exc:
            try:
                err = json.loads(exc.read())
            except ValueError:
                err = {}
            raise SolveError(str(err.get("message") or f"the hub's solve service refused (HTTP {exc.code})"),
                             fix=err.get("fix") or "ask your instructor") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SolveError(f"the hub's solve service at {self.url} did not answer: {getattr(exc, 'reason', exc)}",
                             fix="ask your instructor; your work is not affected") from None


def trusted_source() -> SolutionSource | None:
    """The hub's solve service in workshop mode, else a full checkout, else None (a learner's copy or image)."""
    url = os.environ.get(SOLVE_URL_ENV)
    if url:
        token = os.environ.get(SOLVE_TOKEN_ENV) or os.environ.get(HUB_TOKEN_ENV) or ""
        return HubSolutions(url, token)
    checkout = CheckoutSolutions()
    return checkout if checkout.available() else None


def no_source_error(name: str, module: str) -> SolveError:
    return SolveError("the solutions are not in your copy of the course: they stay with your instructor, so that no "
                      "hand-in can reach them", fix=ASK_INSTRUCTOR.format(name=name, module=module))


def module_of_folder(folder: Path) -> str | None:
    """``03-safe-deployments`` for a notebook's folder named like a module (``workspace/03-safe-deployments``)."""
    return folder.name if re.fullmatch(r"\d\d-[a-z0-9-]+", folder.name) else None


__all__ = ["ASK_INSTRUCTOR", "CheckoutSolutions", "HubSolutions", "Solution", "SolutionSource",
           "module_of_folder", "no_source_error", "trusted_source"]
