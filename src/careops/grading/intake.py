"""Collect submissions and turn away the ones that cannot be graded, before any container starts.

Understood layouts (they may be mixed in one folder):

* a folder of files, one per learner: ``<learner>.ipynb`` (the learner id is the file name), or a folder
  ``<learner>/`` holding the assignment's notebooks;
* an LMS download, unpacked or as its archive (:mod:`careops.grading.lms`, on nbgrader's zip_collect plugins):
  Moodle's ``Amara Okafor_1234_assignsubmission_file_/orientation.ipynb`` and Canvas's
  ``okaforamara_1234_56789_orientation.ipynb`` (``okaforamara_late_1234_...`` when late);
* nbgrader's exchange: ``<exchange>/<course>/inbound/<learner>+<assignment>+<timestamp>[+...]/`` (the newest
  submission of each learner wins);
* the workshop hub's hand-in store (:mod:`careops.handins`), the same layout with the hand-in service's record in
  each folder: the learner is the hub user the service stored it for and the time is the service's clock
  (``handed_in_from`` "hand-in service clock"); a folder whose record does not match it is set aside.

Every file that cannot be attributed to a learner (an odd name, not a notebook, an archive that does not unpack,
an older duplicate) is set aside with its reason (:class:`NotCollected`) while the rest are graded. A collected
submission is rejected, with its reason, when a notebook is empty, too large, not JSON, not a Jupyter notebook,
or belongs to another assignment. Each records when it was handed in and where that time comes from
(``handed_in_from``): the exchange's timestamp, the time stored in the LMS archive, or the file's modification
time in a plain folder.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from careops import handins
from careops.errors import CareOpsError
from careops.grading.restore import grade_id

MAX_NOTEBOOK_BYTES = handins.MAX_NOTEBOOK_BYTES
_LEARNER_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ARCHIVES = (".zip", ".tar.gz", ".tgz")
#: where a hand-in time comes from
FILE_TIME = "file modification time"
EXCHANGE_TIME = "exchange timestamp"
#: files an unpacked download brings along that are nobody's hand-in
_JUNK = {".DS_Store", "Thumbs.db", "__MACOSX", "desktop.ini"}


class SubmissionError(CareOpsError):
    """The submissions cannot be collected at all (the folder is missing)."""


@dataclass
class Submission:
    """One learner's hand-in: notebook name -> file, with a digest of everything handed in."""

    learner: str
    files: dict[str, Path]
    digest: str = ""
    notebooks: dict[str, dict[str, Any]] = field(default_factory=dict)  # parsed, once accepted
    problem: str | None = None  # why it cannot be graded (None: accepted)
    handed_in: datetime | None = None  # UTC, naive (as nbgrader stores it)
    handed_in_from: str = ""  # FILE_TIME, EXCHANGE_TIME, or the LMS archive's time
    origin: str = ""  # what it was found as (a file or folder name of the download)
    #: what the LMS says about the learner: first_name, last_name, email, lms_user_id, lms ("moodle"/"canvas"),
    #: participant (Moodle's per-assignment id), late (Canvas's flag)
    profile: dict[str, str] = field(default_factory=dict)
    secret: Path | None = None  # nbgrader's submission_secret.txt (exchange): feedback goes back through it


@dataclass(frozen=True)
class NotCollected:
    """A file or folder of the submissions that is nobody's gradable hand-in, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class Intake:
    """What was found at a submissions folder."""

    submissions: list[Submission] = field(default_factory=list)
    not_collected: list[NotCollected] = field(default_factory=list)


def learner_id(stem: str) -> str:
    """A learner id from a file name; refuse names nbgrader cannot store safely."""
    stem = stem.strip()
    if not _LEARNER_OK.match(stem):
        raise SubmissionError(
            f"cannot use {stem!r} as a learner id: expected letters, digits, '.', '_' or '-' (at most 64)",
            fix="rename the file to <learner-id>.ipynb",
        )
    return stem


def utc_from_timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).replace(tzinfo=None)


def _file_time(paths: list[Path]) -> datetime | None:
    times = []
    for p in paths:
        try:
            times.append(p.stat().st_mtime)
        except OSError:
            continue
    return utc_from_timestamp(max(times)) if times else None


def collect(source: Path, assignment: str, notebook_names: list[str], *, course_id: str = "careops-labs",
            work: Path | None = None, roster: dict[str, dict[str, str]] | None = None) -> Intake:
    """Every learner's submission found at ``source``, and everything set aside with its reason.

    ``work`` is where LMS archives are unpacked (default: beside the archive, in ``.careops-unpacked/``);
    ``roster`` (gradebook students by id, with first_name, last_name, email, lms_user_id) lets LMS names map to
    the course's learner ids.
    """
    source = Path(source)
    if not source.is_dir():
        raise SubmissionError(f"no submissions folder at {source}", fix="pass the folder your LMS export unpacked to")
    inbound = source / course_id / "inbound"
    if inbound.is_dir():
        return _choose_newest(_collect_exchange(inbound, assignment, notebook_names))
    from careops.grading import lms

    intake = Intake()
    roots = [source]
    for archive in sorted(p for p in source.iterdir() if p.is_file() and p.name.endswith(ARCHIVES)):
        unpacked, problem = lms.unpack(archive, (work or source / ".careops-unpacked") / _archive_stem(archive))
        if problem:
            intake.not_collected.append(NotCollected(archive.name, problem))
        else:
            roots.append(unpacked)
    for root in roots:
        _collect_folder(root, root, assignment, notebook_names, intake, roster or {})
    return _choose_newest(intake)


def _archive_stem(path: Path) -> str:
    name = path.name
    for ext in ARCHIVES:
        if name.endswith(ext):
            return name[: -len(ext)]
    return path.stem


def _collect_folder(root: Path, folder: Path, assignment: str, notebook_names: list[str], intake: Intake,
                    roster: dict[str, dict[str, str]]) -> None:
    from careops.grading import lms

    for entry in sorted(folder.iterdir()):
        rel = entry.relative_to(root).as_posix()
        if entry.name.startswith(".") or entry.name in _JUNK:
            continue
        if entry.is_file() and entry.name.endswith(ARCHIVES) and folder == root:
            continue  # unpacked on its own (a top-level archive)
        found = lms.recognise(rel, entry.is_dir())
        if found is not None:
            if entry.is_dir():
                notebooks = sorted(p for p in entry.rglob("*.ipynb") if not _junk(p, entry))
                others = sorted(p for p in entry.rglob("*") if p.is_file() and p.suffix != ".ipynb"
                                and not _junk(p, entry))
                for other in others:
                    intake.not_collected.append(NotCollected(
                        other.relative_to(root).as_posix(), f"not a notebook ({other.suffix or 'no extension'}): "
                        f"only .ipynb files are graded"))
                if not notebooks:
                    if not others:
                        intake.not_collected.append(NotCollected(rel, "an empty submission folder"))
                    continue
            else:
                if entry.suffix != ".ipynb":
                    intake.not_collected.append(NotCollected(
                        rel, f"not a notebook ({entry.suffix or 'no extension'}): only .ipynb files are graded"))
                    continue
                notebooks = [entry]
            learner = lms.learner_for(found, roster)
            files, unknown = _match_notebooks(notebooks, notebook_names, found.get("file_id"))
            sub = Submission(learner, files, handed_in=_file_time(notebooks),
                             handed_in_from=lms.TIME_SOURCE[found["lms"]], origin=rel,
                             profile={k: v for k, v in found.items() if k != "file_id" and v})
            if unknown and not files:
                sub.files = {p.stem: p for p in unknown}  # graded as "no notebook of the assignment" with the names
            intake.submissions.append(sub)
            continue
        if entry.is_dir():
            if _LEARNER_OK.match(entry.name):
                notebooks = sorted(entry.glob("*.ipynb"))
                if not notebooks and any(lms.recognise(p.relative_to(root).as_posix(), p.is_dir())
                                         for p in entry.iterdir()):
                    _collect_folder(root, entry, assignment, notebook_names, intake, roster)  # an unpacked download
                    continue
                files, _unknown = _match_notebooks(notebooks, notebook_names, None)
                intake.submissions.append(Submission(
                    entry.name, files or {p.stem: p for p in notebooks}, handed_in=_file_time(notebooks),
                    handed_in_from=FILE_TIME, origin=rel + "/"))
            elif any(lms.recognise(p.relative_to(root).as_posix(), p.is_dir()) for p in entry.iterdir()):
                _collect_folder(root, entry, assignment, notebook_names, intake, roster)  # e.g. "Download all ..."
            else:
                intake.not_collected.append(NotCollected(rel + "/", _odd_name(entry.name, folder=True)))
            continue
        if entry.suffix != ".ipynb":
            intake.not_collected.append(NotCollected(
                rel, f"not a notebook ({entry.suffix or 'no extension'}): only .ipynb files are graded"))
            continue
        if not _LEARNER_OK.match(entry.stem):
            intake.not_collected.append(NotCollected(rel, _odd_name(entry.stem, folder=False)))
            continue
        if len(notebook_names) != 1:
            intake.not_collected.append(NotCollected(
                rel, f"{assignment} has {len(notebook_names)} notebooks, so each learner needs a folder "
                     f"<learner>/ holding {', '.join(n + '.ipynb' for n in notebook_names)}"))
            continue
        intake.submissions.append(Submission(entry.stem, {notebook_names[0]: entry}, handed_in=_file_time([entry]),
                                             handed_in_from=FILE_TIME, origin=rel))


def _junk(path: Path, base: Path) -> bool:
    return any(part.startswith(".") or part in _JUNK for part in path.relative_to(base).parts)


def _odd_name(name: str, *, folder: bool) -> str:
    what = "folder" if folder else "file"
    return (f"cannot tell whose hand-in this is: the {what} name {name!r} is not a learner id (letters, digits, "
            "'.', '_' or '-'), nor a Moodle or Canvas download name; rename it to <learner-id>"
            + ("/" if folder else ".ipynb"))


def _match_notebooks(paths: list[Path], notebook_names: list[str], file_id: str | None
                     ) -> tuple[dict[str, Path], list[Path]]:
    """Handed-in files -> the assignment's notebook names. An LMS may rename a file (orientation-1.ipynb,
    "orientation (1).ipynb"); with a one-notebook assignment the one notebook handed in is it."""
    files: dict[str, Path] = {}
    unknown: list[Path] = []
    for p in paths:
        stem = re.sub(r"(?:-\d+| \(\d+\))$", "", Path(file_id).stem if file_id and len(paths) == 1 else p.stem)
        if stem in notebook_names and stem not in files:
            files[stem] = p
        else:
            unknown.append(p)
    if not files and len(paths) == 1 and len(notebook_names) == 1:
        return {notebook_names[0]: paths[0]}, []
    return files, unknown


def _collect_exchange(inbound: Path, assignment: str, notebook_names: list[str]) -> Intake:
    intake = Intake()
    store = handins.HandInStore(inbound.parents[1], inbound.parent.name)
    for folder in sorted(inbound.iterdir()):
        parts = folder.name.split("+")
        if not folder.is_dir() or len(parts) < 3 or parts[1] != assignment:
            continue
        if (folder / handins.RECORD).is_file():
            sub = _hub_hand_in(store, folder, notebook_names)
            if sub is None:
                intake.not_collected.append(NotCollected(folder.name, TAMPERED))
            else:
                intake.submissions.append(sub)
            continue
        student, stamp = parts[0], parts[2]
        if not _LEARNER_OK.match(student):
            intake.not_collected.append(NotCollected(folder.name, _odd_name(student, folder=True)))
            continue
        stamp_file = folder / "timestamp.txt"
        text = stamp_file.read_text(encoding="utf-8").strip() if stamp_file.is_file() else stamp
        secret = folder / "submission_secret.txt"
        notebooks = sorted(folder.glob("*.ipynb"))
        files, _unknown = _match_notebooks(notebooks, notebook_names, None)
        intake.submissions.append(Submission(
            student, files or {p.stem: p for p in notebooks}, handed_in=parse_time(text),
            handed_in_from=EXCHANGE_TIME, origin=folder.name, secret=secret if secret.is_file() else None))
    return intake


#: why a folder of the hub's hand-in store is not graded
TAMPERED = ("the hand-in service's record does not match this folder (its name, or the notebook's size or SHA-256): "
            "it changed after it was handed in, so it is not graded; the learner's earlier hand-ins still count")


def _hub_hand_in(store: handins.HandInStore, folder: Path, notebook_names: list[str]) -> Submission | None:
    """A hand-in of the workshop hub's store: learner and time from the service's record, checked against it."""
    handin = store.read(folder)
    if handin is None:
        return None
    files, _unknown = _match_notebooks([handin.path], notebook_names, None)
    secret = folder / "submission_secret.txt"
    return Submission(handin.learner, files or {handin.notebook: handin.path},
                      handed_in=handin.received_at.replace(tzinfo=None), handed_in_from=handins.SERVER_TIME,
                      origin=folder.name, secret=secret if secret.is_file() else None)


def parse_time(text: str) -> datetime | None:
    """nbgrader's timestamp text (``2026-01-02 10:00:00.000000 UTC``, ISO, with or without a zone) as naive UTC."""
    text = text.strip()
    if not text:
        return None
    text = re.sub(r"\s+UTC$", "+00:00", text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when


def _choose_newest(intake: Intake) -> Intake:
    """One submission per learner: the newest hand-in; older ones are set aside with the reason."""
    by_learner: dict[str, list[Submission]] = {}
    for sub in intake.submissions:
        by_learner.setdefault(sub.learner, []).append(sub)
    chosen: list[Submission] = []
    for learner, subs in sorted(by_learner.items()):
        subs.sort(key=lambda s: (s.handed_in or datetime.min, s.origin))
        newest = subs[-1]
        for older in subs[:-1]:
            if newest.handed_in_from in (EXCHANGE_TIME, handins.SERVER_TIME):
                continue  # an exchange (and the hub's store) keeps every hand-in: only the newest counts (nbgrader's)
            intake.not_collected.append(NotCollected(
                older.origin, f"another hand-in of {learner} ({newest.origin}) is newer: that one is graded"))
        chosen.append(newest)
    intake.submissions = [finish(s) for s in chosen]
    return intake


def finish(sub: Submission, notebook_names: list[str] | None = None) -> Submission:
    """Compute the digest of a submission (file names, sizes and contents)."""
    h = hashlib.sha256()
    for name in sorted(sub.files):
        path = sub.files[name]
        h.update(name.encode() + b"\0")
        try:
            size = path.stat().st_size
        except OSError:
            size = -1
        h.update(str(size).encode() + b"\0")
        if 0 <= size <= MAX_NOTEBOOK_BYTES:
            h.update(hashlib.sha256(path.read_bytes()).digest())
    sub.digest = h.hexdigest()
    return sub


def check_notebook(path: Path, assignment: str, source_nb: dict[str, Any],
                   *, max_bytes: int = MAX_NOTEBOOK_BYTES) -> tuple[dict[str, Any] | None, str | None]:
    """(parsed notebook, None) or (None, why it cannot be graded). Never runs anything."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        return None, f"{path.name} cannot be read: {exc.strerror}"
    if size > max_bytes:
        return None, (f"{path.name} is too large: {size / 1024**2:.0f} MiB "
                      f"(the limit is {max_bytes / 1024**2:.0f} MiB; clear the outputs and hand it in again)")
    nb, problem = handins.parse_notebook(path.read_bytes(), path.name)
    if nb is None:
        return None, problem
    claimed = handins.claimed_module(nb)
    ours = ((source_nb.get("metadata") or {}).get("careops") or {}).get("module")
    if claimed and ours and claimed != ours:
        return None, f"{path.name} is a notebook of {claimed}, not of {assignment}"
    source_ids = {gid for c in source_nb.get("cells", []) if (gid := grade_id(c))}
    theirs = {gid for c in nb["cells"] if isinstance(c, dict) and (gid := grade_id(c))}
    if source_ids and not (source_ids & theirs):
        return None, f"{path.name} has none of the cells of {assignment}: a notebook of another assignment?"
    return nb, None
