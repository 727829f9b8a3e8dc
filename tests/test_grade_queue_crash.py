"""No grade lost, none doubled: kill -9 a worker mid-task, kill -9 the coordinator mid-batch, start again; a task
past its hard time limit is stopped and reported.

Real Redis, two workers on two Docker engines (conftest ``queue_redis``, ``second_engine``), the coordinator as
``careops grade --queue`` in a process of its own. After the kills every submission has exactly one grade in
nbgrader's gradebook, one journal line, and the grades.csv local grading gives.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)

from careops.grading.autograder import Journal, grading_dir
from careops.grading.course import COURSE_ID, generate_assignment, make_temp_course
from careops.grading.queue.hosts import WorkerProcess
from careops.grading.queue.worker import reclaim_leftovers

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "00-orientation"
SOURCE = REPO / "notebooks" / ASSIGNMENT / "orientation.ipynb"
#: the number of the cell the bad hand-ins add after is_synthetic (the grader's reasons name it)
ADDED = B.number_after(SOURCE, "is_synthetic")
LEARNERS = ["a-correct", "a-loop", "b-partial", "c-blank", "d-spec", "e-notjson"]
EXPECTED_CSV = (
    "learner,status,score,max_score,test_is_synthetic,test_triage_probe_spec,test_triage_probe_running,"
    "test_leaked_names,reason\n"
    "a-correct,graded,8,8,2,2,2,2,\n"
    f"a-loop,incomplete,6,8,0,2,2,2,cell {ADDED} did not finish within 6 s (interrupted); is_synthetic(...) did not "
    "finish within 6 s (interrupted)\n"
    "b-partial,graded,4,8,2,0,0,2,\n"
    "c-blank,graded,0,8,0,0,0,0,\n"
    "d-spec,graded,4,8,0,2,2,0,\n"
    "e-notjson,rejected,0,8,0,0,0,0,e-notjson.ipynb is not a notebook: it is not valid JSON "
    "(Expecting value: line 1 column 1 (char 0))\n"
)
RUN = """
import sys
from pathlib import Path
from careops.apps.grade import main
sys.exit(main(assignment={assignment!r}, submissions=Path({subs!r}), course_dir=Path({course!r}), queue={queue!r},
              cell_timeout=6, wall_time=60, feedback=False, progress=False))
"""
RECEIVED = re.compile(r"Task careops\.grade_submission\[(?P<id>[^\]]+)\] received")


class Batch:
    def __init__(self, root: Path, queue: str) -> None:
        self.course = make_temp_course(root / "course", ASSIGNMENT)
        release = B.load(generate_assignment(ASSIGNMENT, self.course.root) / "orientation.ipynb")
        source = B.load(SOURCE)
        self.subs = root / "subs"
        self.subs.mkdir()
        self.queue = queue
        B.save(source, self.subs / "a-correct.ipynb")
        nb = B.answered(release, source, "triage_probe_spec", "leaked_names")
        B.set_source(nb, "is_synthetic", B.LOOP_FUNCTION)
        B.save(B.add_after(nb, "is_synthetic", B.LOOP_CELL), self.subs / "a-loop.ipynb")  # about 15 s of grading
        B.save(B.answered(release, source, "is_synthetic", "leaked_names"), self.subs / "b-partial.ipynb")
        B.save(release, self.subs / "c-blank.ipynb")
        B.save(B.answered(release, source, "triage_probe_spec"), self.subs / "d-spec.ipynb")
        (self.subs / "e-notjson.ipynb").write_text("not json", encoding="utf-8")
        self.journal = Journal(grading_dir(self.course, ASSIGNMENT) / "journal.jsonl")

    def coordinator(self) -> subprocess.Popen:
        code = RUN.format(assignment=ASSIGNMENT, subs=str(self.subs), course=str(self.course.root), queue=self.queue)
        return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)

    def check_exactly_one_grade_each(self) -> None:
        from nbgrader.api import Gradebook

        assert B.grade_columns(grading_dir(self.course, ASSIGNMENT) / "grades.csv", EXPECTED_CSV) == EXPECTED_CSV
        with Gradebook(self.course.db_url, COURSE_ID) as gb:
            found = [s.student.id for s in gb.assignment_submissions(ASSIGNMENT)]
        assert sorted(found) == LEARNERS
        lines = [json.loads(ln) for ln in self.journal.path.read_text().splitlines() if ln.strip()]
        assert sorted(e["learner"] for e in lines) == LEARNERS, "a submission was recorded twice or not at all"


def received(log: Path) -> list[str]:
    return RECEIVED.findall(log.read_text(errors="replace")) if log.is_file() else []


def wait_for(what: str, condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def cleanup_engines(second_engine):
    yield
    import docker

    for url in (second_engine.images_from, second_engine.url):  # the sandboxes of the killed graders
        client = docker.DockerClient(base_url=url)
        reclaim_leftovers(client)
        client.close()


def test_a_worker_killed_mid_task_loses_no_submission_and_grades_none_twice(
        tmp_path: Path, queue_redis, second_engine, cleanup_engines) -> None:
    url = queue_redis.database(2)
    batch = Batch(tmp_path, url)
    doomed = WorkerProcess(url, engine_url=second_engine.images_from, name="doomed@engine1",
                           log=tmp_path / "doomed.log", redeliver_after=20).start()
    survivor = WorkerProcess(url, engine_url=second_engine.url, name="survivor@engine2", log=tmp_path / "survivor.log",
                             images_from=second_engine.images_from, redeliver_after=20).start()
    coordinator = None
    try:
        doomed.wait_ready()
        survivor.wait_ready()
        coordinator = batch.coordinator()
        # the whole worker dies (main process and pool) while it grades: its host went down
        wait_for("the doomed worker to take a task", lambda: received(doomed.log))
        time.sleep(0.3)
        doomed.kill()
        lost = received(doomed.log)
        assert lost and "succeeded" not in doomed.log.read_text(), "the task finished before the kill: not mid-task"
        # the survivor's grading process dies mid-task too (out of memory, kill -9): reject on worker lost
        wait_for("the survivor to take a task", lambda: received(survivor.log))
        time.sleep(0.3)
        children = survivor.children()
        assert children, "the survivor has no pool process"
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        out, _ = coordinator.communicate(timeout=240)
        assert coordinator.returncode == 0, out
    finally:
        if coordinator and coordinator.poll() is None:
            os.killpg(coordinator.pid, signal.SIGKILL)
        doomed.kill()
        survivor.stop()
    batch.check_exactly_one_grade_each()
    log = survivor.log.read_text(errors="replace")
    assert "WorkerLostError" in log  # the pool process's task was put back at once, not failed
    assert all(task in received(survivor.log) for task in lost), "the dead worker's task was not handed out again"


def test_a_coordinator_killed_mid_batch_picks_up_where_it_was(
        tmp_path: Path, queue_redis, second_engine, cleanup_engines) -> None:
    url = queue_redis.database(3)
    batch = Batch(tmp_path, url)
    workers = [WorkerProcess(url, engine_url=second_engine.images_from, name="one@engine1", log=tmp_path / "w1.log"),
               WorkerProcess(url, engine_url=second_engine.url, name="two@engine2", log=tmp_path / "w2.log",
                             images_from=second_engine.images_from)]
    first = again = None
    try:
        for w in workers:
            w.start().wait_ready()
        first = batch.coordinator()
        wait_for("two recorded submissions", lambda: len(batch.journal.entries()) >= 2 or first.poll() is not None)
        assert first.poll() is None, f"the coordinator finished before it could be killed:\n{first.stdout.read()}"
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        recorded = len(batch.journal.entries())
        assert 2 <= recorded < len(LEARNERS)
        again = batch.coordinator()
        out, _ = again.communicate(timeout=240)
        assert again.returncode == 0, out
    finally:
        for proc in (first, again):
            if proc and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        for w in workers:
            w.stop()
    assert f"{len(LEARNERS) - recorded} graded now, {recorded} unchanged" in out
    batch.check_exactly_one_grade_each()
    tasks = received(workers[0].log) + received(workers[1].log)
    assert len(tasks) == len(set(tasks)) == len(LEARNERS) - 1, "the restarted coordinator sent a task again"


def test_a_task_past_its_hard_time_limit_is_stopped_and_recorded_as_a_grader_problem(
        tmp_path: Path, queue_redis, second_engine, cleanup_engines) -> None:
    from careops.grading.autograder import grade_batch
    from careops.grading.queue import QueueGraders
    from careops.grading.sandbox import SandboxPolicy

    url = queue_redis.database(4)
    batch = Batch(tmp_path, url)
    for path in batch.subs.iterdir():
        if path.name != "a-loop.ipynb":  # about 15 s of grading, past a hard limit of 5 s
            path.unlink()
    worker = WorkerProcess(url, engine_url=second_engine.images_from, name="limited@engine1",
                           log=tmp_path / "limited.log", redeliver_after=6).start()
    try:
        worker.wait_ready()
        summary = grade_batch(batch.course.root, ASSIGNMENT, batch.subs, policy=SandboxPolicy(cell_timeout=6,
                              wall_time=60), progress=False, feedback=False,
                              graders=QueueGraders(url, redeliver_after=6))
    finally:
        worker.stop()
    (row,) = summary.rows
    assert row.status == "error" and "TimeLimitExceeded" in row.reason, row.reason
    # recorded as a grader problem without a key: the next run grades it again
    assert {k: (e["status"], e["key"]) for k, e in batch.journal.entries().items()} == {"a-loop": ("error", "")}
