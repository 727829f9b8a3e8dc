"""The grader is crash-safe: SIGKILL it mid-batch, run it again, and nothing is lost or counted twice."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)

from careops.grading.autograder import Journal, grading_dir
from careops.grading.course import COURSE_ID, generate_assignment, make_temp_course

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "00-orientation"
SOURCE = REPO / "notebooks" / ASSIGNMENT / "orientation.ipynb"

pytestmark = [pytest.mark.docker, pytest.mark.slow]

RUN = """
import sys
from pathlib import Path
from careops.apps.grade import main
sys.exit(main(assignment={assignment!r}, submissions=Path({subs!r}), course_dir=Path({course!r}), jobs=1,
              cell_timeout=6, wall_time=60, progress=False))
"""
EXPECTED_CSV = (
    "learner,status,score,max_score,test_is_synthetic,test_triage_probe_spec,test_triage_probe_running,"
    "test_leaked_names,reason\n"
    "a-correct,graded,8,8,2,2,2,2,\n"
    "b-partial,graded,4,8,2,0,0,2,\n"
    "c-blank,graded,0,8,0,0,0,0,\n"
    "d-spec,graded,4,8,0,2,2,0,\n"
    "e-notjson,rejected,0,8,0,0,0,0,e-notjson.ipynb is not a notebook: it is not valid JSON "
    "(Expecting value: line 1 column 1 (char 0))\n"
)


def grades(course: object) -> str:
    return B.grade_columns(grading_dir(course, ASSIGNMENT) / "grades.csv", EXPECTED_CSV)


def start(course: Path, subs: Path) -> subprocess.Popen:
    code = RUN.format(assignment=ASSIGNMENT, subs=str(subs), course=str(course))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def test_killing_the_grader_mid_batch_loses_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    from nbgrader.api import Gradebook

    course = make_temp_course(tmp_path / "course", ASSIGNMENT)
    release = B.load(generate_assignment(ASSIGNMENT, course.root) / "orientation.ipynb")
    source = B.load(SOURCE)
    subs = tmp_path / "subs"
    subs.mkdir()
    B.save(source, subs / "a-correct.ipynb")
    B.save(B.answered(release, source, "is_synthetic", "leaked_names"), subs / "b-partial.ipynb")
    B.save(release, subs / "c-blank.ipynb")
    B.save(B.answered(release, source, "triage_probe_spec"), subs / "d-spec.ipynb")
    (subs / "e-notjson.ipynb").write_text("not json", encoding="utf-8")
    journal = Journal(grading_dir(course, ASSIGNMENT) / "journal.jsonl")

    proc = start(course.root, subs)
    deadline = time.monotonic() + 180
    try:
        # kill it once some submissions are recorded and others are still in a sandbox
        while len(journal.entries()) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, f"the grader finished before it could be killed:\n{proc.stdout.read()}"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    recorded = journal.entries()
    assert 2 <= len(recorded) < 5
    assert not (grading_dir(course, ASSIGNMENT) / "grades.csv").exists()

    again = start(course.root, subs)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    assert f"{5 - len(recorded)} graded now, {len(recorded)} unchanged" in out
    assert grades(course) == EXPECTED_CSV
    with Gradebook(course.db_url, COURSE_ID) as gb:
        subs_in_db = gb.assignment_submissions(ASSIGNMENT)
        assert sorted(s.student.id for s in subs_in_db) == ["a-correct", "b-partial", "c-blank", "d-spec", "e-notjson"]
        assert {s.student.id: s.score for s in subs_in_db}["a-correct"] == 8
    lines = [json.loads(ln) for ln in journal.path.read_text().splitlines() if ln.strip()]
    assert sorted(e["learner"] for e in lines) == ["a-correct", "b-partial", "c-blank", "d-spec", "e-notjson"]
    # --regrade grades everything again and still counts nothing twice
    from careops.apps.grade import main

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(assignment=ASSIGNMENT, submissions=subs, course_dir=course.root, regrade=True, jobs=2,
                    cell_timeout=6, wall_time=60, feedback=False, progress=False) == 0
    assert "5 graded now, 0 unchanged" in buf.getvalue()
    assert grades(course) == EXPECTED_CSV
    with Gradebook(course.db_url, COURSE_ID) as gb:
        assert len(gb.assignment_submissions(ASSIGNMENT)) == 5
    # the killed run's sandboxes were reclaimed by the next run (other graders on the engine are not ours)
    from careops.grading.sandbox import GRADER_LEARNER, lab_name
    from careops.lab import resources

    assert [r for r in resources.find(lab_name(ASSIGNMENT), GRADER_LEARNER) if r.leaked] == []


SLOW_CELL = "import time\ntime.sleep(15)\n"  # keeps each submission in its sandbox while the grader is stopped


def test_sigterm_stops_careops_grade_and_removes_its_sandboxes_at_once(tmp_path: Path) -> None:
    """`kill <pid>` of a `careops grade` run mid-batch: the sandboxes it was using and the spare it had started
    are removed before it exits (not only by the next run), it exits promptly with 143, and nothing is
    recorded for a submission it did not finish."""
    import docker

    from careops import engine
    from careops.lab import labels as L

    course = make_temp_course(tmp_path / "course", ASSIGNMENT)
    release = B.load(generate_assignment(ASSIGNMENT, course.root) / "orientation.ipynb")
    subs = tmp_path / "subs"
    subs.mkdir()
    for k in range(6):
        B.save(B.add_after(B.load(SOURCE) if k % 2 else release, "is_synthetic", SLOW_CELL), subs / f"s{k}.ipynb")
    env = {**os.environ, "CAREOPS_HOME": str(course.root)}
    proc = subprocess.Popen([sys.executable, "-c", "from careops.cli import cli; cli()", "grade", ASSIGNMENT,
                             "--submissions", str(subs), "--jobs", "2", "--no-feedback"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    client = engine.client()

    def ours() -> list[docker.models.containers.Container]:
        mine = [f"{L.MANAGED}=true", f"{L.CREATOR_PID}={proc.pid}", f"{L.CREATOR_HOST}={os.uname().nodename}"]
        return client.containers.list(all=True, filters={"label": mine}, ignore_removed=True)

    try:
        deadline = time.monotonic() + 180
        while len([c for c in ours() if c.status == "running"]) < 3 and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.2)  # two sandboxes at work and the pre-started spare
        assert proc.poll() is None, f"the grader finished before it could be stopped:\n{proc.stdout.read()}"
        assert len(ours()) >= 3
        os.kill(proc.pid, signal.SIGTERM)  # the grader process only, as `kill <pid>` or a stopping service does
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        left = ours()
        for c in left:
            c.remove(force=True, v=True)
    assert left == [], f"the stopped grader left {[c.name for c in left]}\n{out}"
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "stopped by SIGTERM" in out
    assert Journal(grading_dir(course, ASSIGNMENT) / "journal.jsonl").entries() == {}
