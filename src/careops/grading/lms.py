"""Moodle and Canvas submission downloads, read with nbgrader's own zip_collect plugin API.

Used by :mod:`careops.grading.intake`, and by ``nbgrader zip_collect`` by hand (their grade imports are written
by :mod:`careops.grading.export`):

* :class:`CourseExtractor` is nbgrader's ``ExtractorPlugin`` (``nbgrader.utils.unzip``) that also keeps each
  file's time from the archive, since that is the hand-in time an LMS download carries;
* :class:`MoodleCollector` and :class:`CanvasCollector` are nbgrader ``FileNameCollectorPlugin`` s for the
  names Moodle's "Download all submissions" (``Amara Okafor_1234_assignsubmission_file_/orientation.ipynb``;
  1234 is the participant id of that assignment) and Canvas's "Download submissions"
  (``okaforamara_1234_56789_orientation.ipynb``, ``okaforamara_late_1234_...`` when late; 1234 is the
  Canvas user id) give files.

A learner's course id comes from the gradebook's students when it knows them (``nbgrader db student import``
with ``lms_user_id`` for Canvas, first and last name for Moodle), else from the LMS name (``amara-okafor``,
``okaforamara``).
"""
from __future__ import annotations

import os
import re
import unicodedata
import zipfile
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from nbgrader.plugins import ExtractorPlugin, FileNameCollectorPlugin
from traitlets import Unicode

MOODLE, CANVAS = "moodle", "canvas"
#: where an LMS hand-in's time comes from (the download keeps each file's submission time)
TIME_SOURCE = {MOODLE: "file time in the Moodle download", CANVAS: "file time in the Canvas download"}

MOODLE_NAME = (r"^(?:(?P<first_name>.+) )?(?P<last_name>[^ _/]+)_(?P<student_id>\d+)"
               r"_assignsubmission_(?:file|onlinetext)_(?P<file_id>[^/]*)$")
CANVAS_NAME = r"^(?P<login>[^\W_]+?)(?P<late>_late)?_(?P<student_id>\d+)_(?P<submission>\d+)_(?P<file_id>[^/]+)$"


def slug(text: str) -> str:
    """A learner id from a person's name: ``Zoë Ng-Adeyemi`` -> ``zoe-ng-adeyemi``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:64]


class MoodleCollector(FileNameCollectorPlugin):
    """Moodle's download names; ``student_id`` is the learner id, ``participant`` Moodle's id for the assignment."""

    named_regexp = Unicode(MOODLE_NAME).tag(config=True)

    def match(self, name: str) -> dict[str, str] | None:
        m = re.match(self.named_regexp, name)
        if not m:
            return None
        found = {k: v or "" for k, v in m.groupdict().items()}
        full = f"{found['first_name']} {found['last_name']}".strip()
        return {"lms": MOODLE, "participant": found["student_id"], "first_name": found["first_name"],
                "last_name": found["last_name"], "file_id": found["file_id"],
                "student_id": slug(full) or f"moodle-{found['student_id']}"}

    def collect(self, submitted_file: str) -> dict[str, str] | None:  # nbgrader zip_collect's entry point
        found = self.match(Path(submitted_file).parent.name + "/" + Path(submitted_file).name) or \
            self.match(Path(submitted_file).name)
        if found is None or Path(submitted_file).suffix not in self.valid_ext:
            return None
        return {"student_id": found["student_id"], "file_id": found["file_id"] or Path(submitted_file).name,
                "first_name": found["first_name"], "last_name": found["last_name"]}


class CanvasCollector(FileNameCollectorPlugin):
    """Canvas's download names; ``lms_user_id`` is the Canvas user id (the same in every assignment)."""

    named_regexp = Unicode(CANVAS_NAME).tag(config=True)

    def match(self, name: str) -> dict[str, str] | None:
        m = re.match(self.named_regexp, name)
        if not m:
            return None
        found = m.groupdict()
        return {"lms": CANVAS, "lms_user_id": found["student_id"], "login": found["login"],
                "late": "yes" if found["late"] else "", "file_id": found["file_id"],
                "student_id": slug(found["login"]) or f"canvas-{found['student_id']}"}

    def collect(self, submitted_file: str) -> dict[str, str] | None:  # nbgrader zip_collect's entry point
        found = self.match(Path(submitted_file).name)
        if found is None or Path(submitted_file).suffix not in self.valid_ext:
            return None
        return {"student_id": found["student_id"], "file_id": found["file_id"]}


def recognise(rel: str, is_dir: bool) -> dict[str, str] | None:
    """What an LMS download's entry name says (its lms, ids, names, file), or None for any other name."""
    name = rel.rstrip("/").rsplit("/", 1)[-1]
    moodle = MoodleCollector().match(name)
    if moodle is not None and (is_dir or moodle["file_id"]):
        return moodle
    if not is_dir:
        return CanvasCollector().match(name)
    return None


def learner_for(found: dict[str, str], roster: dict[str, dict[str, str]]) -> str:
    """The course's learner id for an LMS entry: the gradebook's student when it knows them, else from the name."""
    if found["lms"] == CANVAS:
        for sid, st in sorted(roster.items()):
            if st.get("lms_user_id") == found["lms_user_id"]:
                return sid
    else:
        full = f"{found.get('first_name', '')} {found.get('last_name', '')}".strip().casefold()
        for sid, st in sorted(roster.items()):
            if f"{st.get('first_name') or ''} {st.get('last_name') or ''}".strip().casefold() == full and full:
                return sid
    return found["student_id"]


class CourseExtractor(ExtractorPlugin):
    """nbgrader's extractor, keeping each file's time from the archive (the LMS's hand-in time)."""

    def extract_archive(self, archive: Path, dest: Path, *, zone: tzinfo | None = None) -> Path:
        from nbgrader.utils import unzip

        dest.mkdir(parents=True, exist_ok=True)
        unzip(str(archive), str(dest), zip_ext=[".zip", ".gz", ".tgz"], create_own_folder=False, tree=True)
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    target = dest / info.filename
                    if target.is_file() and target.resolve().is_relative_to(dest.resolve()):
                        stamp = datetime(*info.date_time, tzinfo=zone or timezone.utc).timestamp()
                        os.utime(target, (stamp, stamp))
        return dest


def unpack(archive: Path, dest: Path, *, zone: tzinfo | None = None) -> tuple[Path, str | None]:
    """Unpack an LMS download into ``dest`` (replacing an earlier unpacking): (folder, None) or (dest, why not)."""
    import shutil

    if dest.exists():
        shutil.rmtree(dest)
    try:
        return CourseExtractor().extract_archive(archive, dest, zone=zone), None
    except Exception as exc:  # noqa: BLE001 - any archive problem is a reason to set it aside, not to stop
        shutil.rmtree(dest, ignore_errors=True)
        return dest, f"the archive cannot be unpacked ({type(exc).__name__}: {str(exc)[:120]})"


__all__ = ["CANVAS", "MOODLE", "CanvasCollector", "CourseExtractor", "MoodleCollector", "learner_for", "recognise",
           "slug", "unpack"]
