"""The workshop's hand-in store: each hand-in attributed by hub identity and timed by the server, read like an exchange.

In workshop mode learners hand in through the hub's ``hand-in`` service (careops.workshop.handin_service): the
service learns who is asking from the hub (their server's token), never from the request, and stores the notebook
here. The grader reads the same folder as it reads nbgrader's exchange (careops.grading.intake), and
``careops feedback return --exchange`` releases feedback into it with nbgrader's own code, which the service then
hands back to each learner, and only to them. The layout is nbgrader's exchange, plus a record per hand-in::

    <root>/<course>/inbound/<hub user>+<assignment>+<server time>/
        <notebook>.ipynb          the notebook, byte for byte as handed in
        timestamp.txt             the server's time, in nbgrader's format
        submission_secret.txt     made by the server: the key of the learner's feedback (nbgrader's scheme)
        careops-handin.json       the record: who (from the hub), what, when (server), size and SHA-256
    <root>/<course>/feedback/<md5(secret + notebook)>.html     nbgrader release_feedback
    <root>/<course>/grades/<assignment>.json                  careops grade, from the gradebook
    <root>/<course>/arrivals.jsonl                            one line per hand-in (grading on arrival)

Nothing a client sends decides the folder's name, the time or the learner: a folder whose record disagrees with
its name or whose notebook no longer matches the record's digest is not a hand-in (:meth:`HandInStore.hand_ins`).

Standard library only: the hub's services and the grader both use it (floor 1).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from careops.errors import CareOpsError

COURSE_ID = "careops-labs"
RECORD = "careops-handin.json"
#: the largest notebook a learner may hand in (the grader's own limit: careops.grading.intake)
MAX_NOTEBOOK_BYTES = 16 * 1024**2
#: hand-ins one learner may have in the store (every hand-in is kept, as nbgrader's exchange keeps them)
MAX_HANDINS_PER_LEARNER = 200
#: where a hand-in's time comes from, as grades.csv says it (careops.grading.intake)
SERVER_TIME = "hand-in service clock"
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_STAMP_FORMAT = "%Y-%m-%dT%H%M%S.%fZ"


class HandInRefused(CareOpsError):
    """A hand-in the store does not take; ``status`` is the HTTP status the service answers with."""

    def __init__(self, message: str, *, status: int = 400, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.status = status


def parse_notebook(raw: bytes, name: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the notebook, None), or (None, why it is no notebook that can be graded); never runs anything."""
    if not raw.strip():
        return None, f"{name} is empty (0 cells): hand in the saved notebook"
    try:
        nb = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"{name} is not a notebook: it is not valid JSON ({str(exc)[:80]})"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list) or nb.get("nbformat") != 4:
        return None, f"{name} is not a Jupyter notebook (expected nbformat 4 with a list of cells)"
    if not nb["cells"]:
        return None, f"{name} is empty (0 cells): hand in the saved notebook"
    for i, cell in enumerate(nb["cells"]):
        src = cell.get("source") if isinstance(cell, dict) else None
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw") or not (
                isinstance(src, str) or (isinstance(src, list) and all(isinstance(s, str) for s in src))):
            return None, f"{name} is not a valid notebook: cell {i} is malformed"
    return nb, None


def claimed_module(nb: dict[str, Any]) -> str | None:
    """The module a notebook says it belongs to (metadata careops.module), if it says so."""
    meta = nb.get("metadata")
    careops = meta.get("careops") if isinstance(meta, dict) else None
    claimed = careops.get("module") if isinstance(careops, dict) else None
    return str(claimed) if claimed else None


def feedback_key(secret: str, notebook: str) -> str:
    """The file name stem nbgrader's release_feedback gives a notebook's feedback (nbgrader.utils.notebook_hash)."""
    return hashlib.md5(secret.encode("utf-8") + notebook.encode("utf-8"), usedforsecurity=False).hexdigest()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Assignments:
    """What can be handed in: each assignment's notebook names (written at ``careops workshop up`` from the release)."""

    notebooks: dict[str, tuple[str, ...]]

    @classmethod
    def from_release(cls, release: Path) -> Assignments:
        return cls({d.name: tuple(sorted(p.stem for p in d.glob("*.ipynb")))
                    for d in sorted(Path(release).iterdir()) if d.is_dir() and any(d.glob("*.ipynb"))})

    @classmethod
    def load(cls, path: Path) -> Assignments:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls({str(a): tuple(str(n) for n in names) for a, names in data["assignments"].items()})
        except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
            raise CareOpsError(f"cannot read the course's assignments from {path}: {exc}",
                               fix="careops workshop up writes it from build/release (run careops release first)") \
                from None

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"assignments": {a: list(n) for a, n in sorted(self.notebooks.items())}},
                                  indent=1) + "\n", encoding="utf-8")
        tmp.chmod(0o644)
        tmp.replace(path)
        return path

    def check(self, assignment: str, notebook: str) -> None:
        """Refuse an assignment or notebook the course does not have."""
        if assignment not in self.notebooks:
            raise HandInRefused(f"there is no assignment {assignment!r} to hand in (the course has: "
                                f"{', '.join(sorted(self.notebooks)) or 'none'})",
                                fix="hand in a notebook of one of the course's module folders, as released")
        if notebook not in self.notebooks[assignment]:
            raise HandInRefused(f"{assignment} has no notebook {notebook!r} (expected "
                                f"{', '.join(n + '.ipynb' for n in self.notebooks[assignment])})",
                                fix=f"hand in {assignment}'s own notebook, under its released name")


@dataclass(frozen=True)
class HandIn:
    """One stored hand-in, as its record says (and its folder agrees)."""

    learner: str
    assignment: str
    notebook: str
    received_at: datetime  # UTC, aware: the service's clock
    size: int
    sha256: str
    folder: Path

    @property
    def path(self) -> Path:
        return self.folder / f"{self.notebook}.ipynb"

    def secret(self) -> str:
        return (self.folder / "submission_secret.txt").read_text(encoding="utf-8")

    def as_row(self) -> dict[str, Any]:
        return {"learner": self.learner, "assignment": self.assignment, "notebook": self.notebook,
                "received_at": self.received_at.isoformat(), "size": self.size, "sha256": self.sha256}


def _stamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime(_STAMP_FORMAT)


def _nbgrader_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


class HandInStore:
    """The folder the hand-in service writes and the grader reads (see the module's docstring)."""

    def __init__(self, root: Path, course_id: str = COURSE_ID) -> None:
        self.root = Path(root)
        self.course_id = course_id

    @property
    def inbound(self) -> Path:
        return self.root / self.course_id / "inbound"

    @property
    def feedback(self) -> Path:
        return self.root / self.course_id / "feedback"

    @property
    def grades_dir(self) -> Path:
        return self.root / self.course_id / "grades"

    @property
    def arrivals(self) -> Path:
        return self.root / self.course_id / "arrivals.jsonl"

    # -- writing: only the hand-in service ------------------------------------------------------------------
    def receive(self, learner: str, assignment: str, notebook: str, content: bytes, assignments: Assignments,
                *, now: datetime | None = None) -> HandIn:
        """Check and store one hand-in of ``learner`` (the hub's name for whoever asked); returns its record."""
        if not _NAME_OK.match(learner):
            raise HandInRefused(f"cannot store hand-ins of the hub user {learner!r}: not a learner id", status=403)
        assignments.check(assignment, notebook)
        if len(content) > MAX_NOTEBOOK_BYTES:
            raise HandInRefused(f"{notebook}.ipynb is too large: {len(content) / 1024**2:.1f} MiB (the limit is "
                                f"{MAX_NOTEBOOK_BYTES // 1024**2} MiB)", status=413,
                                fix="clear the outputs (Edit > Clear Outputs of All Cells), save, and hand in again")
        nb, problem = parse_notebook(content, f"{notebook}.ipynb")
        if problem:
            raise HandInRefused(problem, fix="hand in the notebook as JupyterLab saved it")
        claimed = claimed_module(nb or {})
        if claimed and claimed != assignment:
            raise HandInRefused(f"{notebook}.ipynb is a notebook of {claimed}, not of {assignment}",
                                fix=f"hand it in as {claimed}, or open {assignment}'s own notebook")
        if len(self.hand_ins(learner)) >= MAX_HANDINS_PER_LEARNER:
            raise HandInRefused(f"{learner} has handed in {MAX_HANDINS_PER_LEARNER} times already, the most the "
                                "store keeps per learner", status=429, fix="ask the instructor")
        when = now or utc_now()
        self.inbound.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".receiving-", dir=self.inbound))
        try:
            (work / f"{notebook}.ipynb").write_bytes(content)
            (work / "submission_secret.txt").write_text(secrets.token_hex(32), encoding="utf-8")
            while True:  # two hand-ins of one learner in one microsecond: the second takes the next one
                self._write_record(work, learner, assignment, notebook, content, when)
                folder = self.inbound / f"{learner}+{assignment}+{_stamp(when)}"
                try:
                    os.rename(work, folder)  # atomic: a reader sees the whole hand-in or none of it
                    break
                except OSError:
                    if not folder.exists():
                        raise
                    when = when.replace(microsecond=when.microsecond + 1) if when.microsecond < 999_999 else \
                        when.replace(microsecond=0) + timedelta(seconds=1)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        handin = self.read(folder)
        assert handin is not None, folder
        with open(self.arrivals, "a", encoding="utf-8") as log:
            log.write(json.dumps({**handin.as_row(), "folder": folder.name}) + "\n")
        return handin

    @staticmethod
    def _write_record(work: Path, learner: str, assignment: str, notebook: str, content: bytes,
                      when: datetime) -> None:
        record = {"learner": learner, "assignment": assignment, "notebook": notebook,
                  "received_at": when.isoformat(), "size": len(content),
                  "sha256": hashlib.sha256(content).hexdigest(), "identity": "hub user of the request's token"}
        (work / "timestamp.txt").write_text(_nbgrader_time(when), encoding="utf-8")
        (work / RECORD).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        for p in work.iterdir():
            p.chmod(0o640)
        work.chmod(0o750)

    # -- reading: the service, the dashboard and the grader ---------------------------------------------------
    def read(self, folder: Path) -> HandIn | None:
        """The hand-in in ``folder``, or None when it is not one the service stored intact."""
        parts = folder.name.split("+")
        try:
            record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
            handin = HandIn(str(record["learner"]), str(record["assignment"]), str(record["notebook"]),
                            datetime.fromisoformat(record["received_at"]).astimezone(timezone.utc),
                            int(record["size"]), str(record["sha256"]), folder)
            data = handin.path.read_bytes()
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if (len(parts) != 3 or parts[0] != handin.learner or parts[1] != handin.assignment
                or parts[2] != _stamp(handin.received_at)):
            return None
        if len(data) != handin.size or hashlib.sha256(data).hexdigest() != handin.sha256:
            return None
        return handin

    def hand_ins(self, learner: str | None = None, assignment: str | None = None) -> list[HandIn]:
        """Intact hand-ins, oldest first (of ``learner`` / ``assignment`` when given)."""
        if not self.inbound.is_dir():
            return []
        found = []
        for folder in self.inbound.iterdir():
            parts = folder.name.split("+")
            if len(parts) != 3 or (learner and parts[0] != learner) or (assignment and parts[1] != assignment):
                continue
            handin = self.read(folder)
            if handin is not None:
                found.append(handin)
        return sorted(found, key=lambda h: (h.received_at, h.learner))

    def latest(self) -> dict[tuple[str, str], HandIn]:
        """Each learner's newest hand-in per assignment, by (learner, assignment)."""
        return {(h.learner, h.assignment): h for h in self.hand_ins()}

    def feedback_pages(self, learner: str) -> dict[tuple[str, str], tuple[HandIn, Path]]:
        """``learner``'s released feedback: (assignment, notebook) -> (the hand-in it is about, its page).

        A page is found by the secret of each of the learner's own hand-ins (nbgrader's scheme), so nobody reaches
        another learner's page by its name; the newest hand-in with a page wins."""
        pages: dict[tuple[str, str], tuple[HandIn, Path]] = {}
        for handin in self.hand_ins(learner):
            try:
                page = self.feedback / f"{feedback_key(handin.secret(), handin.notebook)}.html"
            except OSError:
                continue
            if page.is_file():
                pages[(handin.assignment, handin.notebook)] = (handin, page)
        return pages

    # -- grades: written by the grader from the gradebook, read by the dashboard ------------------------------
    def write_grades(self, assignment: str, rows: list[dict[str, Any]]) -> Path:
        """The class's grades of ``assignment`` (learner, status, score, max_score, ...) for the dashboard."""
        self.grades_dir.mkdir(parents=True, exist_ok=True)
        path = self.grades_dir / f"{assignment}.json"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({"assignment": assignment, "written_at": utc_now().isoformat(), "rows": rows},
                                  indent=1) + "\n", encoding="utf-8")
        tmp.chmod(0o644)
        tmp.replace(path)
        return path

    def grades(self) -> dict[str, dict[str, dict[str, Any]]]:
        """assignment -> learner -> their grade row (what the grader last wrote)."""
        found: dict[str, dict[str, dict[str, Any]]] = {}
        if not self.grades_dir.is_dir():
            return found
        for path in sorted(self.grades_dir.glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                found[str(data["assignment"])] = {str(r["learner"]): r for r in data["rows"]}
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return found


def is_store(root: Path, course_id: str = COURSE_ID) -> bool:
    """Whether ``root`` is a hand-in store (some hand-in in it carries the service's record)."""
    inbound = Path(root) / course_id / "inbound"
    return inbound.is_dir() and any((d / RECORD).is_file() for d in inbound.iterdir())


__all__ = ["Assignments", "COURSE_ID", "HandIn", "HandInRefused", "HandInStore", "MAX_NOTEBOOK_BYTES", "RECORD",
           "SERVER_TIME", "claimed_module", "feedback_key", "is_store", "parse_notebook"]
