"""careops.grading.lms: Moodle and Canvas downloads read with nbgrader's zip_collect plugins.

Names here are synthetic (no real person, no real LMS). Grading a mixed download end to end, in the real
sandbox, is in tests/test_grade_adversarial_batch.py.
"""
from __future__ import annotations

import os
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)

from careops.grading import intake, lms

ASSIGNMENT = "00-orientation"
MOODLE_FOLDER = "Amara Okafor_1234_assignsubmission_file_"
CANVAS_FILE = "okaforamara_1234_56789_orientation.ipynb"


def test_moodle_and_canvas_names_are_recognised_and_others_are_not() -> None:
    moodle = lms.recognise(MOODLE_FOLDER, True)
    assert moodle == {"lms": "moodle", "participant": "1234", "first_name": "Amara", "last_name": "Okafor",
                      "file_id": "", "student_id": "amara-okafor"}
    flat = lms.recognise("Ngozi Ada Eze_77_assignsubmission_file_orientation.ipynb", False)
    assert flat and flat["first_name"] == "Ngozi Ada" and flat["file_id"] == "orientation.ipynb"
    canvas = lms.recognise(CANVAS_FILE, False)
    assert canvas == {"lms": "canvas", "lms_user_id": "1234", "login": "okaforamara", "late": "",
                      "file_id": "orientation.ipynb", "student_id": "okaforamara"}
    assert lms.recognise("okaforamara_late_1234_56790_orientation-1.ipynb", False)["late"] == "yes"
    for other in ("ana.ipynb", "notes.pdf", "Amara Okafor.ipynb", "submissions"):
        assert lms.recognise(other, other == "submissions") is None, other
    assert lms.slug("Zoë Ng-Adeyemi") == "zoe-ng-adeyemi"


def test_an_imported_roster_maps_lms_names_and_ids_to_the_courses_learner_ids() -> None:
    roster = {"s-017": {"first_name": "Amara", "last_name": "Okafor", "lms_user_id": "1234"}}
    assert lms.learner_for(lms.recognise(MOODLE_FOLDER, True), roster) == "s-017"
    assert lms.learner_for(lms.recognise(CANVAS_FILE, False), roster) == "s-017"
    assert lms.learner_for(lms.recognise(CANVAS_FILE, False), {}) == "okaforamara"


def _zip(path: Path, entries: dict[str, str], when: tuple[int, ...] = (2026, 3, 2, 16, 30, 0)) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in entries.items():
            info = zipfile.ZipInfo(name, date_time=when)
            zf.writestr(info, text)
    return path


def test_a_download_zip_is_unpacked_by_nbgraders_extractor_keeping_the_hand_in_time(tmp_path: Path,
                                                                                    orientation_release: dict
                                                                                    ) -> None:
    text = B.save(orientation_release, tmp_path / "nb.ipynb").read_text()
    archive = _zip(tmp_path / "download.zip", {f"{MOODLE_FOLDER}/orientation.ipynb": text,
                                              "Bo Lind_88_assignsubmission_file_/orientation.ipynb": text})
    folder, problem = lms.unpack(archive, tmp_path / "out")
    assert problem is None
    unpacked = folder / MOODLE_FOLDER / "orientation.ipynb"
    assert datetime.utcfromtimestamp(unpacked.stat().st_mtime) == datetime(2026, 3, 2, 16, 30)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 this is not really a zip")
    _folder, problem = lms.unpack(broken, tmp_path / "out2")
    assert problem is not None and problem.startswith("the archive cannot be unpacked")


def test_collect_reads_a_mixed_download_and_sets_aside_each_odd_file(tmp_path: Path,
                                                                    orientation_release: dict) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    text = B.save(orientation_release, tmp_path / "nb.ipynb").read_text()
    (subs / MOODLE_FOLDER).mkdir()
    (subs / MOODLE_FOLDER / "orientation.ipynb").write_text(text)
    (subs / MOODLE_FOLDER / "screenshot.png").write_bytes(b"\x89PNG")
    (subs / "Cy Dube_9_assignsubmission_onlinetext_").mkdir()
    (subs / "Cy Dube_9_assignsubmission_onlinetext_" / "onlinetext.html").write_text("<p>see attached</p>")
    (subs / "dubecy_4321_1_orientation-2.ipynb").write_text(text)
    _zip(subs / "canvas.zip", {"lindbo_late_55_66_orientation.ipynb": text})
    (subs / "broken.zip").write_bytes(b"not a zip at all")
    os.utime(subs / "dubecy_4321_1_orientation-2.ipynb", (1_800_000_000, 1_800_000_000))
    found = intake.collect(subs, ASSIGNMENT, ["orientation"], work=tmp_path / "work")
    by: dict[str, Any] = {s.learner: s for s in found.submissions}
    assert sorted(by) == ["amara-okafor", "dubecy", "lindbo"]
    assert by["amara-okafor"].profile == {"lms": "moodle", "participant": "1234", "first_name": "Amara",
                                          "last_name": "Okafor", "student_id": "amara-okafor"}
    assert by["dubecy"].files == {"orientation": subs / "dubecy_4321_1_orientation-2.ipynb"}  # a resubmission
    assert by["dubecy"].handed_in_from == lms.TIME_SOURCE["canvas"]
    assert by["dubecy"].handed_in == datetime.utcfromtimestamp(1_800_000_000)
    assert by["lindbo"].profile["late"] == "yes" and by["lindbo"].handed_in == datetime(2026, 3, 2, 16, 30)
    reasons = {nc.path: nc.reason for nc in found.not_collected}
    assert sorted(reasons) == sorted([f"{MOODLE_FOLDER}/screenshot.png", "broken.zip",
                                      "Cy Dube_9_assignsubmission_onlinetext_/onlinetext.html"])
    assert reasons["broken.zip"].startswith("the archive cannot be unpacked")
    assert reasons[f"{MOODLE_FOLDER}/screenshot.png"] == "not a notebook (.png): only .ipynb files are graded"


def test_nbgraders_own_zip_collect_runs_with_the_courses_collector(orientation_course: Any, tmp_path: Path,
                                                                  orientation_release: dict) -> None:
    """`nbgrader zip_collect --collector=careops.grading.lms.CanvasCollector`, by hand, files the download."""
    from careops.grading.course import run_nbgrader

    archive = orientation_course.root / "downloaded" / ASSIGNMENT / "archive"
    archive.mkdir(parents=True)
    B.save(orientation_release, archive / "zipcollectcanvas_901_902_orientation.ipynb")
    run_nbgrader(["zip_collect", ASSIGNMENT, "--collector=careops.grading.lms.CanvasCollector", "--force"],
                 orientation_course.root, what="nbgrader zip_collect")
    assert (orientation_course.submitted("zipcollectcanvas", ASSIGNMENT) / "orientation.ipynb").is_file()
