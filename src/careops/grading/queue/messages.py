"""What travels through the queue: a grade request out, an outcome (or a failure) back, as checked JSON.

A request carries one learner's parsed notebooks, the key the coordinator's journal will record, the version of
the assignment and grader it was checked against, and the sandbox limits. A worker answers with JSON text, never
an object: the coordinator checks its size before parsing it and its shape after (the learner, the key and the
notebook names must be the ones it asked about; statuses, reasons and notebooks have the types nbgrader needs).
Workers are the instructor's own machines (they run the trusted test cells), so this guards against corrupt,
truncated, oversized or misrouted results, not against a hostile worker.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any

from careops.grading.autograder import Outcome
from careops.grading.course import GradingError
from careops.grading.sandbox import SandboxPolicy
from careops.grading.trusted import TestOutcome
from careops.lab.policy import Limits

FORMAT = 1
#: a request: the notebooks as handed in (intake allows 16 MiB each), with room for a few
MAX_REQUEST_BYTES = 64 * 1024**2
#: a result: executed notebooks whose outputs the sandbox already capped (64 KiB per cell)
MAX_RESULT_BYTES = 32 * 1024**2
MAX_TEXT = 8000  # one reason or note
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_KEY = re.compile(r"^[0-9a-f]{8,64}$")
_POLICY_FIELDS = ("cell_timeout", "wall_time", "output_cap", "answer_cap", "total_cap", "start_timeout",
                  "tmpfs_size")
#: what a hard time limit adds to the sandbox's own budgets (start, wall time per notebook)
TIME_LIMIT_MARGIN = 60.0


def _bad(what: str, expected: str, got: object) -> GradingError:
    shown = repr(got)
    return GradingError(f"a queue message is not valid: {what}: expected {expected}, got {shown[:120]}",
                        fix="the worker and the coordinator must run the same careops version; update both")


def _text(value: object, what: str, *, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise _bad(what, f"a string of at most {limit} characters", value)
    return value


def _texts(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or len(value) > 200:
        raise _bad(what, "a list of at most 200 strings", value)
    return [_text(v, what) for v in value]


def _parse(text: object, limit: int, what: str) -> dict[str, Any]:
    if not isinstance(text, str):
        raise _bad(what, "JSON text", type(text).__name__)
    if len(text) > limit:
        raise GradingError(f"the {what} is {len(text) / 1024**2:.1f} MiB, over the queue's {limit // 1024**2} MiB",
                           fix="the sandbox caps outputs; if a notebook really needs more, grade it locally")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise _bad(what, "JSON", text[:60]) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _bad(f"{what} format", f"an object with format {FORMAT}", data if not isinstance(data, dict)
                   else data.get("format"))
    return data


def check_notebook(nb: object, what: str) -> dict[str, Any]:
    """A notebook's shape as nbgrader needs it (nbformat 4, typed cells), or GradingError."""
    if not isinstance(nb, dict) or nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
        raise _bad(what, "an nbformat 4 notebook", type(nb).__name__)
    for i, cell in enumerate(nb["cells"]):
        src = cell.get("source") if isinstance(cell, dict) else None
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw") or not (
                isinstance(src, str) or (isinstance(src, list) and all(isinstance(s, str) for s in src))):
            raise _bad(f"{what} cell {i}", "a code, markdown or raw cell with its source", cell)
        outputs = cell.get("outputs", [])
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            raise _bad(f"{what} cell {i} outputs", "a list of outputs", outputs)
    return nb


def policy_fields(policy: SandboxPolicy) -> dict[str, Any]:
    """The sandbox limits a worker must grade with, as JSON values."""
    fields = {name: getattr(policy, name) for name in _POLICY_FIELDS}
    fields["image"] = policy.image
    fields["limits"] = dataclasses.asdict(policy.limits)
    return fields


def policy_from(fields: object) -> SandboxPolicy:
    """The SandboxPolicy a request names (only the known fields, type-checked; the limits validated)."""
    if not isinstance(fields, dict) or set(fields) - {*_POLICY_FIELDS, "image", "limits"}:
        raise _bad("policy", f"an object of {', '.join(_POLICY_FIELDS)}, image, limits", fields)
    base = SandboxPolicy()
    kwargs: dict[str, Any] = {}
    for name in _POLICY_FIELDS:
        if name in fields:
            value, default = fields[name], getattr(base, name)
            if type(value) is not type(default) and not (isinstance(default, float) and isinstance(value, int)):
                raise _bad(f"policy {name}", type(default).__name__, value)
            kwargs[name] = type(default)(value)
    if "image" in fields:
        kwargs["image"] = _text(fields["image"], "policy image", limit=200)
    if "limits" in fields:
        lim = fields["limits"]
        if not isinstance(lim, dict) or set(lim) != {"memory", "cpus", "pids"}:
            raise _bad("policy limits", "memory, cpus and pids", lim)
        kwargs["limits"] = Limits(memory=int(lim["memory"]), cpus=float(lim["cpus"]), pids=int(lim["pids"]))
        kwargs["limits"].validate()
    return SandboxPolicy(**kwargs)


def hard_time_limit(policy: SandboxPolicy, notebooks: int) -> float:
    """Seconds after which a worker kills the task: every notebook's sandbox start and wall time, and a margin."""
    return (policy.start_timeout + policy.wall_time) * max(1, notebooks) + TIME_LIMIT_MARGIN


@dataclass(frozen=True)
class GradeRequest:
    """One submission to grade: what the coordinator sends and the worker checks."""

    assignment: str
    learner: str
    key: str  # the coordinator's journal key (files handed in + grader version)
    version: str  # the assignment's and grader's version the coordinator checked against
    notebooks: dict[str, dict[str, Any]]
    policy: dict[str, Any]

    @property
    def task_id(self) -> str:
        """The same submission always gets the same id: a restarted coordinator finds its result."""
        return f"careops-grade-{self.assignment}-{self.learner}-{self.key}"

    def to_json(self) -> str:
        text = json.dumps({"format": FORMAT, **dataclasses.asdict(self)}, separators=(",", ":"))
        if len(text) > MAX_REQUEST_BYTES:
            raise GradingError(f"{self.learner}'s submission is {len(text) / 1024**2:.0f} MiB as a queue message, "
                               f"over the {MAX_REQUEST_BYTES // 1024**2} MiB limit",
                               fix="clear the notebook's outputs and hand it in again, or grade it locally")
        return text

    @classmethod
    def from_json(cls, text: object) -> GradeRequest:
        data = _parse(text, MAX_REQUEST_BYTES, "grade request")
        for name in ("assignment", "learner"):
            if not isinstance(data.get(name), str) or not _ID.match(data[name]):
                raise _bad(f"request {name}", "a short id of letters, digits, '.', '_' or '-'", data.get(name))
        for name in ("key", "version"):
            if not isinstance(data.get(name), str) or not _KEY.match(data[name]):
                raise _bad(f"request {name}", "a hex digest", data.get(name))
        nbs = data.get("notebooks")
        if not isinstance(nbs, dict) or not nbs or not all(isinstance(k, str) and _ID.match(k) for k in nbs):
            raise _bad("request notebooks", "notebook name -> notebook", nbs)
        notebooks = {name: check_notebook(nb, f"notebook {name}") for name, nb in nbs.items()}
        policy_from(data.get("policy"))
        return cls(data["assignment"], data["learner"], data["key"], data["version"], notebooks, data["policy"])


def outcome_to_json(out: Outcome, *, worker: str = "") -> str:
    """The worker's answer: the Outcome as JSON (tests without their outputs: those are in the notebooks)."""
    data = {"format": FORMAT, "learner": out.learner, "key": out.key, "status": out.status,
            "reasons": out.reasons, "notes": out.notes, "notebooks": out.notebooks,
            "tests": {gid: {"passed": t.passed, "reason": t.reason} for gid, t in out.tests.items()},
            "seconds": round(out.seconds, 3), "worker": worker}
    text = json.dumps(data, separators=(",", ":"))
    if len(text) > MAX_RESULT_BYTES:
        return failure_to_json(out.learner, out.key, f"the graded notebooks are {len(text) / 1024**2:.0f} MiB, over "
                               f"the queue's {MAX_RESULT_BYTES // 1024**2} MiB", worker=worker)
    return text


def failure_to_json(learner: str, key: str, reason: str, *, worker: str = "") -> str:
    """The worker's answer when it could not grade (a grader problem: the coordinator grades it again next run)."""
    return json.dumps({"format": FORMAT, "learner": learner, "key": key, "error": reason[:MAX_TEXT],
                       "worker": worker})


@dataclass(frozen=True)
class WorkerAnswer:
    """A checked answer: the Outcome, or the worker's reason it could not grade; and which worker it was."""

    outcome: Outcome | None
    error: str
    worker: str


def answer_from_json(text: object, request: GradeRequest) -> WorkerAnswer:
    """Check a worker's answer against the request it answers; GradingError when it is not valid."""
    data = _parse(text, MAX_RESULT_BYTES, "worker's answer")
    if data.get("learner") != request.learner or data.get("key") != request.key:
        raise _bad("answer", f"the answer for {request.learner} ({request.key})",
                   f"{data.get('learner')} ({data.get('key')})")
    worker = _text(data.get("worker", ""), "worker", limit=300)
    if "error" in data:
        return WorkerAnswer(None, _text(data["error"], "error"), worker)
    status = data.get("status")
    if status not in ("graded", "incomplete"):
        raise _bad("status", "graded or incomplete", status)
    nbs = data.get("notebooks")
    if not isinstance(nbs, dict) or not set(nbs) <= set(request.notebooks):
        raise _bad("notebooks", f"some of {', '.join(request.notebooks)}", list(nbs) if isinstance(nbs, dict) else nbs)
    tests = data.get("tests")
    if not isinstance(tests, dict):
        raise _bad("tests", "grade id -> result", tests)
    outcomes = {}
    for gid, t in tests.items():
        if not isinstance(t, dict) or not isinstance(t.get("passed"), bool):
            raise _bad(f"test {gid}", "passed and reason", t)
        outcomes[_text(gid, "grade id", limit=200)] = TestOutcome(gid, t["passed"], reason=_text(t.get("reason", ""),
                                                                                                   "test reason"))
    seconds = data.get("seconds")
    if not isinstance(seconds, (int, float)) or seconds < 0:
        raise _bad("seconds", "a duration", seconds)
    out = Outcome(request.learner, request.key, status, reasons=_texts(data.get("reasons"), "reasons"),
                  notes=_texts(data.get("notes"), "notes"),
                  notebooks={name: check_notebook(nb, f"graded notebook {name}") for name, nb in nbs.items()},
                  tests=outcomes, seconds=float(seconds))
    return WorkerAnswer(out, "", worker)
