"""Grading on the queue gives exactly the grades of local grading: real Redis, two workers on two Docker engines.

The second engine is a dockerd this test session starts (conftest ``second_engine``); one worker grades on the
machine's engine, the other on that one. The same mixed batch (correct, partial, blank and adversarial hand-ins
of the orientation notebook, tests/fixtures/submissions/builders.py) is graded locally and through the queue, into
two courses: the two grades.csv are byte for byte the same, and both engines graded some of it.
"""
from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)

from careops.grading.autograder import grading_dir
from careops.grading.course import generate_assignment, make_temp_course
from careops.grading.queue import QueueGraders
from careops.grading.queue.hosts import WorkerProcess

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "00-orientation"
SOURCE = REPO / "notebooks" / ASSIGNMENT / "orientation.ipynb"
LIMITS = {"cell_timeout": 6, "wall_time": 60}


def mixed_batch(dest: Path, release: dict, source: dict) -> Path:
    """Honest, partial, blank and adversarial hand-ins, one file per learner."""
    a = B.answered
    dest.mkdir(parents=True)
    everything = B.ANSWERS
    B.save(source, dest / "correct.ipynb")
    B.save(a(release, source, *everything), dest / "honest.ipynb")
    B.save(a(release, source, "is_synthetic", "leaked_names"), dest / "partial.ipynb")
    B.save(a(release, source, "triage_probe_spec"), dest / "spec.ipynb")
    B.save(release, dest / "blank.ipynb")
    nb = a(release, source)
    B.set_source(nb, "is_synthetic", B.CHEAT)
    B.save(B.set_source(nb, "leaked_names", B.WRONG_LEAKED), dest / "cheat.ipynb")
    B.save(B.tampered(release, source), dest / "tamper.ipynb")
    nb = a(release, source, "triage_probe_spec", "leaked_names")
    B.set_source(nb, "is_synthetic", B.LOOP_FUNCTION)
    B.save(B.add_after(nb, "is_synthetic", B.LOOP_CELL), dest / "loop.ipynb")
    B.save(B.add_after(a(release, source, "is_synthetic"), "is_synthetic", "import sys\nsys.exit(0)\n"),
           dest / "sysexit.ipynb")
    B.save(B.add_after(a(release, source, "is_synthetic", "triage_probe_spec"), "is_synthetic",
                       "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"), dest / "killkernel.ipynb")
    B.save(B.add_after(a(release, source, "is_synthetic", "triage_probe_spec", "leaked_names"), "is_synthetic",
                       B.MEMORY), dest / "memory.ipynb")
    (dest / "notjson.ipynb").write_text("this is not a notebook {", encoding="utf-8")
    (dest / "empty.ipynb").write_text("", encoding="utf-8")
    B.save(B.wrong_assignment(release), dest / "wrongassign.ipynb")
    return dest


def grade(course_root: Path, subs: Path, **kwargs: object) -> str:
    from careops.apps.grade import main

    out = io.StringIO()
    with redirect_stdout(out):
        code = main(assignment=ASSIGNMENT, submissions=subs, course_dir=course_root, jobs=2, progress=False,
                    **LIMITS, **kwargs)
    assert code == 0, out.getvalue()
    return out.getvalue()


def test_two_workers_on_two_engines_grade_a_mixed_batch_exactly_as_local_grading(
        tmp_path: Path, queue_redis, second_engine) -> None:
    from careops.grading.autograder import grade_batch
    from careops.grading.sandbox import SandboxPolicy

    local = make_temp_course(tmp_path / "local", ASSIGNMENT)
    release = B.load(generate_assignment(ASSIGNMENT, local.root) / "orientation.ipynb")
    subs = mixed_batch(tmp_path / "subs", release, B.load(SOURCE))
    queued = make_temp_course(tmp_path / "queued", ASSIGNMENT)
    generate_assignment(ASSIGNMENT, queued.root)
    url = queue_redis.database(1)
    workers = [
        WorkerProcess(url, engine_url=second_engine.images_from, name="first@engine1", log=tmp_path / "w1.log"),
        WorkerProcess(url, engine_url=second_engine.url, name="second@engine2", log=tmp_path / "w2.log",
                      images_from=second_engine.images_from),
    ]
    for w in workers:
        w.start()
    try:
        grade(local.root, subs)  # meanwhile the workers prepare their engines
        for w in workers:
            w.wait_ready()
        graders = QueueGraders(url)
        summary = grade_batch(queued.root, ASSIGNMENT, subs, policy=SandboxPolicy(**LIMITS), progress=False,
                              graders=graders)
    finally:
        for w in workers:
            w.stop()
    local_csv = (grading_dir(local, ASSIGNMENT) / "grades.csv").read_text(encoding="utf-8")
    queued_csv = (grading_dir(queued, ASSIGNMENT) / "grades.csv").read_text(encoding="utf-8")
    assert queued_csv == local_csv
    assert "correct,graded,8,8,2,2,2,2," in local_csv and "loop,incomplete,6,8" in local_csv
    assert len(summary.graded_now) == 14 and not [r for r in summary.rows if r.status == "error"]
    engines = {by.rsplit(" on ", 1)[1] for by in graders.graded_by.values()}
    assert engines == {second_engine.images_from, second_engine.url}, graders.graded_by
    assert len(graders.graded_by) == 11  # the three rejected hand-ins never reach a worker
    # a second run finds everything unchanged in the journal: nothing is sent
    again = grade(queued.root, subs, queue=url)
    assert "0 graded now, 14 unchanged" in again
