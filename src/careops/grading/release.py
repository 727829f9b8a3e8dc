"""Learner versions of the course's assignments, regenerated only when their sources change.

``make lab`` releases on every start, so an assignment whose inputs (its
folder under notebooks/, the nbgrader config, nbgrader's version) hash the
same as at its last release is skipped: the stamp in
build/course/release-stamps/<assignment>.json records that hash and the
summary to print again.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from careops.errors import CareOpsError
from careops.grading import notebooks as nbs
from careops.grading.course import COURSE_BUILD_DIR, IGNORED, Course, generate_assignment

STAMP_FORMAT = 1


@dataclass
class ReleaseResult:
    """What releasing one assignment did."""

    assignment: str
    status: str  # "released", "unchanged" or "empty"
    notebooks: list[nbs.NotebookSummary] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def graded_cells(self) -> int:
        return sum(n.graded_cells for n in self.notebooks)

    @property
    def autograded_tests(self) -> int:
        return sum(n.autograded_tests for n in self.notebooks)

    @property
    def points(self) -> float:
        return sum(n.points for n in self.notebooks)

    def summary(self) -> str:
        """One line for the terminal."""
        if self.status == "empty":
            return f"{self.assignment}: no notebooks yet, nothing to release"
        n = len(self.notebooks)
        names = ", ".join(nb.name for nb in self.notebooks)
        counts = (
            f"{n} notebook{'s' if n != 1 else ''} ({names}), "
            f"{self.graded_cells} graded cell{'s' if self.graded_cells != 1 else ''} "
            f"({self.autograded_tests} autograded), {self.points:g} points"
        )
        if self.status == "unchanged":
            return f"{self.assignment}: unchanged, {counts}"
        return f"{self.assignment}: released {counts} in {self.seconds:.1f} s"


def stamp_path(course: Course, assignment: str) -> Path:
    return course.root / COURSE_BUILD_DIR / "release-stamps" / f"{assignment}.json"


def _ignored(rel: Path) -> bool:
    return any(fnmatch.fnmatch(part, pat) for part in rel.parts for pat in IGNORED)


def input_hash(course: Course, assignment: str) -> str:
    """sha256 over everything that shapes the learner version of ``assignment``."""
    h = hashlib.sha256()
    try:
        nbgrader_version = version("nbgrader")
    except PackageNotFoundError:  # pragma: no cover - nbgrader is a course dependency
        nbgrader_version = "?"
    h.update(f"careops-release {STAMP_FORMAT} nbgrader {nbgrader_version}\n".encode())
    h.update(course.config.read_bytes())
    folder = course.source / assignment
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if _ignored(rel):
            continue
        h.update(f"\0{rel.as_posix()}\0".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _read_stamp(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == STAMP_FORMAT else None


def _up_to_date(course: Course, assignment: str, digest: str, stamp: dict | None) -> bool:
    if not stamp or stamp.get("hash") != digest or not course.gradebook.is_file():
        return False
    released = course.release / assignment
    return all((released / f"{nb['name']}.ipynb").is_file() for nb in stamp.get("notebooks", []))


def _validate_sources(course: Course, assignment: str, notebooks: list[Path]) -> None:
    """Catch what nbgrader would let through: a solution that is not valid Python."""
    problems = []
    for nb in notebooks:
        for p in nbs.solution_syntax_errors(nb):
            problems.append(f"{nb.relative_to(course.root)} {p}")
    if problems:
        raise CareOpsError(
            f"cannot release {assignment}: expected every solution cell to be valid Python, got "
            f"{len(problems)} syntax error{'s' if len(problems) != 1 else ''}: " + "; ".join(problems),
            fix="fix the solution cell(s) named above in JupyterLab, then run `make release` again",
        )


def release_assignment(course_dir: Path, assignment: str, *, force: bool = False) -> ReleaseResult:
    """Generate the learner version of one assignment unless its inputs did not change."""
    course = Course(Path(course_dir).resolve())
    notebooks = course.notebooks(assignment)
    stamp_file = stamp_path(course, assignment)
    if not notebooks:
        # A module folder without notebooks yet: make sure no old release lingers.
        shutil.rmtree(course.release / assignment, ignore_errors=True)
        stamp_file.unlink(missing_ok=True)
        return ReleaseResult(assignment, "empty")
    digest = input_hash(course, assignment)
    stamp = _read_stamp(stamp_file)
    if not force and _up_to_date(course, assignment, digest, stamp):
        assert stamp is not None
        return ReleaseResult(
            assignment, "unchanged", [nbs.NotebookSummary(**nb) for nb in stamp["notebooks"]]
        )
    start = time.monotonic()
    stamp_file.unlink(missing_ok=True)
    summaries = [nbs.summarize(nb) for nb in notebooks]  # also proves each file is a notebook
    _validate_sources(course, assignment, notebooks)
    released = generate_assignment(assignment, course.root)
    missing = [s.name for s in summaries if not (released / f"{s.name}.ipynb").is_file()]
    if missing:
        raise CareOpsError(
            f"nbgrader generate_assignment of {assignment} succeeded but wrote no learner version of "
            f"{', '.join(missing)} (expected them in {released})",
            fix="run `make release` again; if it persists, run nbgrader by hand in grading/ to see its log",
        )
    stamp_file.parent.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(
        json.dumps(
            {"format": STAMP_FORMAT, "hash": digest, "notebooks": [asdict(s) for s in summaries]},
            indent=1,
        ),
        encoding="utf-8",
    )
    return ReleaseResult(assignment, "released", summaries, time.monotonic() - start)


def remove_stale_releases(course_dir: Path) -> list[str]:
    """Remove released assignments whose source folder is gone; return their names."""
    course = Course(Path(course_dir).resolve())
    if not course.release.is_dir():
        return []
    known = set(course.assignments())
    stale = sorted(p.name for p in course.release.iterdir() if p.is_dir() and p.name not in known)
    for name in stale:
        shutil.rmtree(course.release / name, ignore_errors=True)
        stamp_path(course, name).unlink(missing_ok=True)
    return stale
