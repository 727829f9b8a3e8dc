"""The workshop's hand-in store (careops.handins) and the grader's intake of it (careops.grading.intake).

The store takes a hand-in for the learner the hub named, at the server's time, as
``<hub user>+<assignment>+<server time>/`` with a record; it refuses what the course does not have or what is no
notebook; the grader reads it as an exchange, with the learner and time from the record, and sets aside a folder
that changed after it was handed in. Feedback keys are nbgrader's. The hub test (tests/test_workshop_classroom.py)
runs the whole path through the real service.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from careops import handins
from careops.grading import intake
from careops.handins import Assignments, HandInRefused, HandInStore

COURSE = Assignments({"00-orientation": ("orientation",), "01-ci-pipeline": ("ci-pipeline",)})
WHEN = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=timezone.utc)


def notebook(module: str = "00-orientation", cells: int = 2) -> bytes:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {"careops": {"module": module}},
                       "cells": [{"cell_type": "code", "source": f"x = {i}", "metadata": {}, "outputs": [],
                                  "execution_count": None} for i in range(cells)]}).encode()


def test_a_hand_in_is_stored_under_the_hub_user_and_the_servers_time(tmp_path: Path) -> None:
    store = HandInStore(tmp_path)
    h = store.receive("ana", "00-orientation", "orientation", notebook(), COURSE, now=WHEN)
    assert h.folder == tmp_path / "careops-labs" / "inbound" / "ana+00-orientation+2026-03-02T093015.123456Z"
    assert h.path.read_bytes() == notebook() and h.received_at == WHEN and h.learner == "ana"
    record = json.loads((h.folder / handins.RECORD).read_text())
    assert record["learner"] == "ana" and record["received_at"] == WHEN.isoformat() and record["size"] == len(notebook())
    assert (h.folder / "timestamp.txt").read_text() == "2026-03-02 09:30:15.123456 UTC"  # nbgrader's own format
    assert len((h.folder / "submission_secret.txt").read_text()) == 64
    assert [x.folder for x in store.hand_ins("ana")] == [h.folder] and store.hand_ins("ben") == []
    again = store.receive("ana", "00-orientation", "orientation", notebook(cells=3), COURSE, now=WHEN)
    assert again.folder != h.folder and again.received_at > h.received_at  # same microsecond: the next one
    assert store.latest()[("ana", "00-orientation")].folder == again.folder
    arrivals = [json.loads(line) for line in store.arrivals.read_text().splitlines()]
    assert [a["folder"] for a in arrivals] == [h.folder.name, again.folder.name]


@pytest.mark.parametrize(("assignment", "name", "content", "status", "words"), [
    ("99-nope", "orientation", notebook(), 400, "there is no assignment '99-nope'"),
    ("00-orientation", "orientation-Copy1", notebook(), 400, "00-orientation has no notebook 'orientation-Copy1'"),
    ("00-orientation", "orientation", b"{not json", 400, "not valid JSON"),
    ("00-orientation", "orientation", b'{"cells": []}', 400, "not a Jupyter notebook"),
    ("00-orientation", "orientation", notebook(cells=0), 400, "is empty"),
    ("00-orientation", "orientation", notebook("01-ci-pipeline"), 400, "a notebook of 01-ci-pipeline, not of"),
    ("00-orientation", "orientation", b" " * (handins.MAX_NOTEBOOK_BYTES + 1), 413, "too large"),
])
def test_the_store_refuses_what_cannot_be_a_hand_in(tmp_path: Path, assignment: str, name: str, content: bytes,
                                                    status: int, words: str) -> None:
    store = HandInStore(tmp_path)
    with pytest.raises(HandInRefused) as err:
        store.receive("ana", assignment, name, content, COURSE, now=WHEN)
    assert err.value.status == status and words in err.value.message and err.value.fix
    assert store.hand_ins() == [] and not (store.inbound.is_dir() and list(store.inbound.iterdir()))  # nothing left


def test_a_learner_has_a_cap_on_hand_ins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handins, "MAX_HANDINS_PER_LEARNER", 2)
    store = HandInStore(tmp_path)
    for _ in range(2):
        store.receive("ana", "00-orientation", "orientation", notebook(), COURSE)
    with pytest.raises(HandInRefused) as err:
        store.receive("ana", "00-orientation", "orientation", notebook(), COURSE)
    assert err.value.status == 429
    store.receive("ben", "00-orientation", "orientation", notebook(), COURSE)  # others are not affected


def test_a_folder_that_changed_after_hand_in_is_not_a_hand_in_and_the_grader_sets_it_aside(tmp_path: Path) -> None:
    store = HandInStore(tmp_path)
    kept = store.receive("ana", "00-orientation", "orientation", notebook(), COURSE, now=WHEN)
    edited = store.receive("ben", "00-orientation", "orientation", notebook(), COURSE, now=WHEN)
    edited.path.write_bytes(notebook(cells=5))  # changed in the store after the hand-in
    renamed = store.receive("cara", "00-orientation", "orientation", notebook(), COURSE, now=WHEN)
    renamed.folder.rename(renamed.folder.with_name(renamed.folder.name.replace("cara", "dan")))  # someone else's now
    assert [h.learner for h in store.hand_ins()] == ["ana"]
    found = intake.collect(tmp_path, "00-orientation", ["orientation"])
    assert [(s.learner, s.handed_in, s.handed_in_from) for s in found.submissions] == [
        ("ana", WHEN.replace(tzinfo=None), handins.SERVER_TIME)]
    sub = found.submissions[0]
    assert sub.files == {"orientation": kept.path} and sub.secret == kept.folder / "submission_secret.txt"
    assert sub.digest  # finished like every intake
    assert sorted((n.path, n.reason) for n in found.not_collected) == [
        (edited.folder.name, intake.TAMPERED), (renamed.folder.name.replace("cara", "dan"), intake.TAMPERED)]


def test_the_grader_takes_each_learners_newest_hand_in(tmp_path: Path) -> None:
    store = HandInStore(tmp_path)
    store.receive("ana", "00-orientation", "orientation", notebook(), COURSE, now=WHEN)
    newer = store.receive("ana", "00-orientation", "orientation", notebook(cells=3), COURSE,
                          now=WHEN.replace(minute=45))
    store.receive("ana", "01-ci-pipeline", "ci-pipeline", notebook("01-ci-pipeline"), COURSE, now=WHEN)
    found = intake.collect(tmp_path, "00-orientation", ["orientation"])
    assert [s.files["orientation"] for s in found.submissions] == [newer.path]
    assert found.not_collected == []  # like nbgrader's exchange: older hand-ins are kept, only the newest counts


def test_feedback_is_found_by_the_learners_own_secrets_with_nbgraders_key(tmp_path: Path) -> None:
    from nbgrader.utils import notebook_hash

    store = HandInStore(tmp_path)
    ana = store.receive("ana", "00-orientation", "orientation", notebook(), COURSE, now=WHEN)
    ben = store.receive("ben", "00-orientation", "orientation", notebook(), COURSE, now=WHEN)
    key = handins.feedback_key(ana.secret(), "orientation")
    assert key == notebook_hash(secret=ana.secret(), notebook_id="orientation")
    store.feedback.mkdir(parents=True)
    (store.feedback / f"{key}.html").write_text("<p>ana's feedback</p>")
    pages = store.feedback_pages("ana")
    assert list(pages) == [("00-orientation", "orientation")] and pages[("00-orientation", "orientation")][0] == ana
    assert store.feedback_pages("ben") == {} and ben.secret() != ana.secret()


def test_grades_are_written_for_the_dashboard_and_read_back(tmp_path: Path) -> None:
    store = HandInStore(tmp_path)
    assert store.grades() == {}
    store.write_grades("00-orientation", [{"learner": "ana", "status": "graded", "score": 6.0, "max_score": 8.0}])
    assert store.grades()["00-orientation"]["ana"]["score"] == 6.0


def test_assignments_come_from_the_release_and_round_trip(tmp_path: Path) -> None:
    for module, name in (("00-orientation", "orientation"), ("01-ci-pipeline", "ci-pipeline")):
        (tmp_path / "release" / module).mkdir(parents=True)
        (tmp_path / "release" / module / f"{name}.ipynb").write_bytes(notebook(module))
    (tmp_path / "release" / "empty").mkdir()
    found = Assignments.from_release(tmp_path / "release")
    assert found == COURSE
    assert Assignments.load(found.save(tmp_path / "config" / "assignments.json")) == COURSE
    assert not handins.is_store(tmp_path)
    HandInStore(tmp_path / "store").receive("ana", "00-orientation", "orientation", notebook(), COURSE)
    assert handins.is_store(tmp_path / "store")
