"""The sandboxed autograder (careops.grading.autograder, careops.apps.grade) end to end, on one adversarial batch.

The batch mixes correct, partial, blank and adversarial submissions of the
orientation notebook (built at test time by
tests/fixtures/submissions/builders.py) and is graded ONCE; the tests assert
the exact CSV (each adversarial submission's score and reason, and that the
others in the same batch are graded correctly), the sandbox's walls, the
feedback, re-runs and the summary. The grader's parts have their own tests in
tests/test_grading_<module>.py.
"""
from __future__ import annotations

import io
import json
import os
import re
import uuid
from contextlib import redirect_stdout
from pathlib import Path

import pytest

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)

from careops.grading.autograder import Journal, grading_dir

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "00-orientation"
SOURCE = REPO / "notebooks" / ASSIGNMENT / "orientation.ipynb"

CELL_TIMEOUT = 6
HEADER = "learner,status,score,max_score,test_is_synthetic,test_triage_probe_spec,test_triage_probe_running,test_leaked_names,reason"
EXPECTED = {
    "blank": "blank,graded,0,8,0,0,0,0,",
    "cheat": "cheat,graded,0,8,0,0,0,0,",
    "correct": "correct,graded,8,8,2,2,2,2,",
    "empty": "empty,rejected,0,8,0,0,0,0,empty.ipynb is empty (0 cells): hand in the saved notebook",
    "flood": "flood,graded,8,8,2,2,2,2,",
    "forkbomb": "forkbomb,{status},6,8,2,2,2,0,{reason}",
    "huge": "huge,rejected,0,8,0,0,0,0,huge.ipynb is too large: 500 MiB (the limit is 16 MiB; "
            "clear the outputs and hand it in again)",
    "killkernel": "killkernel,incomplete,2,8,0,0,2,0,\"the notebook's process ended while it was running "
                  "(exit code 137): sys.exit/os._exit, a killed kernel or a crash\"",
    "loop": f"loop,incomplete,6,8,0,2,2,2,cell 11 did not finish within {CELL_TIMEOUT} s (interrupted); "
            f"is_synthetic(...) did not finish within {CELL_TIMEOUT} s (interrupted)",
    "memory": "memory,incomplete,2,8,0,0,2,0,the notebook ran out of memory (512 MiB) while it was running",
    "notjson": "notjson,rejected,0,8,0,0,0,0,notjson.ipynb is not a notebook: it is not valid JSON "
               "(Expecting value: line 1 column 1 (char 0))",
    "osexit": "osexit,incomplete,2,8,0,0,2,0,\"the notebook's process ended while it was running (exit code 0): "
              "sys.exit/os._exit, a killed kernel or a crash\"",
    "partial": "partial,graded,4,8,2,0,0,2,",
    "protoflood": "protoflood,incomplete,6,8,2,2,2,0,the notebook sent an answer larger than 4 MiB",
    "snoop": "snoop,graded,2,8,2,0,0,0,",
    "stubborn": f"stubborn,incomplete,2,8,0,0,2,0,cell 11 did not finish within {CELL_TIMEOUT} s "
                "and the sandbox was stopped",
    "sysexit": "sysexit,graded,2,8,2,0,0,0,",
    "tamper": "tamper,graded,2,8,2,0,0,0,edited test cell test_is_synthetic (restored); duplicated cell "
              "test_is_synthetic (the copy was ignored); edited test cell test_triage_probe_spec (restored); "
              "changed nbgrader metadata of test_triage_probe_spec (restored); changed nbgrader metadata of "
              "test_triage_probe_running (restored); deleted cell test_leaked_names (restored); "
              "reordered cells (the instructor's order was used)",
    "wrongassign": "wrongassign,rejected,0,8,0,0,0,0,\"wrongassign.ipynb is a notebook of 01-ci-pipeline, "
                   "not of 00-orientation\"",
}


def build_submissions(dest: Path, release: dict, source: dict, *, host_file: Path, gradebook: Path,
                      secret: str) -> None:
    """One file per learner, as an LMS export gives them."""
    a = B.answered
    dest.mkdir(parents=True, exist_ok=True)
    everything = ("is_synthetic", "triage_probe_spec", "leaked_names", "cleanup")
    B.save(source, dest / "correct.ipynb")
    B.save(a(release, source, "is_synthetic", "leaked_names"), dest / "partial.ipynb")
    B.save(release, dest / "blank.ipynb")
    nb = a(release, source, "triage_probe_spec", "leaked_names")
    B.set_source(nb, "is_synthetic", B.LOOP_FUNCTION)
    B.save(B.add_after(nb, "is_synthetic", B.LOOP_CELL), dest / "loop.ipynb")
    B.save(B.add_after(a(release, source, "is_synthetic", "triage_probe_spec"), "is_synthetic", B.STUBBORN),
           dest / "stubborn.ipynb")
    nb = a(release, source, "is_synthetic", "triage_probe_spec")
    B.set_source(nb, "leaked_names", B.WRONG_LEAKED)
    B.save(B.set_source(nb, "cleanup", B.FORK_BOMB), dest / "forkbomb.ipynb")
    B.save(B.add_after(a(release, source, "is_synthetic", "triage_probe_spec", "leaked_names"), "is_synthetic",
                       B.MEMORY), dest / "memory.ipynb")
    B.save(B.add_after(a(release, source, *everything), "is_synthetic", B.FLOOD), dest / "flood.ipynb")
    B.save(B.add_after(a(release, source, *everything), "leaked_names", B.PROTO_FLOOD), dest / "protoflood.ipynb")
    B.save(B.add_after(a(release, source, "is_synthetic"), "is_synthetic", "import sys\nsys.exit(0)\n"),
           dest / "sysexit.ipynb")
    B.save(B.add_after(a(release, source, "is_synthetic", "triage_probe_spec"), "is_synthetic",
                       "import os\nos._exit(0)\n"), dest / "osexit.ipynb")
    B.save(B.add_after(a(release, source, "is_synthetic", "triage_probe_spec"), "is_synthetic",
                       "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"), dest / "killkernel.ipynb")
    snoop = B.SNOOP.format(host_file=str(host_file), gradebook=str(gradebook), solution=str(SOURCE), secret=secret)
    B.save(B.add_after(a(release, source, "is_synthetic"), "is_synthetic", snoop), dest / "snoop.ipynb")
    nb = a(release, source)
    B.set_source(nb, "is_synthetic", B.CHEAT)
    B.save(B.set_source(nb, "leaked_names", B.WRONG_LEAKED), dest / "cheat.ipynb")
    B.save(B.tampered(release, source), dest / "tamper.ipynb")
    (dest / "notjson.ipynb").write_text("this is not a notebook {", encoding="utf-8")
    (dest / "empty.ipynb").write_text("", encoding="utf-8")
    B.write_huge(dest / "huge.ipynb")
    B.save(B.wrong_assignment(release), dest / "wrongassign.ipynb")


class Batch:
    def __init__(self, root: Path) -> None:
        from careops.grading.course import generate_assignment, make_temp_course

        self.course = make_temp_course(root / "course", ASSIGNMENT)
        release = B.load(generate_assignment(ASSIGNMENT, self.course.root) / "orientation.ipynb")
        self.secret = f"careops-secret-{uuid.uuid4().hex}"
        self.host_file = root / "host-secret.txt"
        self.host_file.write_text(self.secret, encoding="utf-8")
        self.submissions = root / "submissions"
        build_submissions(self.submissions, release, B.load(SOURCE), host_file=self.host_file,
                          gradebook=self.course.gradebook, secret=self.secret)
        self.csv = grading_dir(self.course, ASSIGNMENT) / "grades.csv"

    def grade(self, **kwargs: object) -> tuple[int, str]:
        from careops.apps.grade import main

        out = io.StringIO()
        with redirect_stdout(out):
            code = main(assignment=ASSIGNMENT, submissions=self.submissions, course_dir=self.course.root,
                        jobs=2, cell_timeout=CELL_TIMEOUT, wall_time=60, progress=False, **kwargs)
        return code, out.getvalue()

    def rows(self) -> dict[str, str]:
        lines = self.csv.read_text(encoding="utf-8").splitlines()
        assert lines[0] == HEADER
        return {ln.split(",", 1)[0]: ln for ln in lines[1:]}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    os.environ["CAREOPS_TEST_SECRET"] = "unused"  # a host variable the sandbox must not see
    b = Batch(tmp_path_factory.mktemp("grade"))
    os.environ["CAREOPS_TEST_SECRET"] = b.secret
    b.code, b.output = b.grade()
    return b


@pytest.mark.docker
@pytest.mark.slow
def test_batch_of_correct_partial_blank_and_adversarial_submissions(batch: Batch) -> None:
    assert batch.code == 0, batch.output
    rows = batch.rows()
    assert sorted(rows) == sorted(EXPECTED)
    fork = rows.pop("forkbomb")
    # a fork bomb hits the pids limit; its copies of the kernel may then exhaust the memory limit
    assert fork in (EXPECTED["forkbomb"].format(status="graded", reason=""),
                    EXPECTED["forkbomb"].format(status="incomplete", reason="the notebook ran out of memory "
                                                "(512 MiB) while it was running")), fork
    for learner, line in rows.items():
        assert line == EXPECTED[learner], f"{learner}:\n  got      {line}\n  expected {EXPECTED[learner]}"
    # the summary printed names every submission that was not graded fully, with its reason
    for learner in ("empty", "huge", "notjson", "wrongassign", "loop", "memory", "osexit", "stubborn"):
        assert f"! {learner} (" in batch.output
    assert "test_is_synthetic: " in batch.output and "% full marks" in batch.output
    # no sandbox is left behind
    from careops.grading.sandbox import GRADER_LEARNER, lab_name
    from careops.lab import resources

    assert resources.find(lab_name(ASSIGNMENT), GRADER_LEARNER) == []


@pytest.mark.docker
@pytest.mark.slow
def test_the_sandbox_hid_the_host_network_gradebook_and_secrets(batch: Batch) -> None:
    nb = json.loads(batch.course.autograded("snoop", ASSIGNMENT).joinpath("orientation.ipynb").read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
                   for o in c["outputs"] if o.get("output_type") == "stream")
    for probe in ("network", "dns", "engine socket", "host file", "gradebook read", "gradebook write",
                  "solution", "write /etc", "write toolkit", "write /", "find gradebook"):
        assert f"{probe}: denied (" in text, f"{probe} was not denied:\n{text}"
    assert "ALLOWED" not in text and "secret in env: no" in text and "uid: 1000" in text
    outputs = json.dumps([c.get("outputs") for c in nb["cells"]])
    assert batch.secret not in outputs  # (the cell's source holds it, to look for it)
    assert batch.host_file.read_text() == batch.secret and batch.course.gradebook.stat().st_size > 0


@pytest.mark.docker
@pytest.mark.slow
def test_feedback_html_in_headless_chromium_shows_each_failed_check(batch: Batch) -> None:
    from playwright.sync_api import sync_playwright

    feedback = batch.course.root / "build/course/feedback/{}" / ASSIGNMENT / "orientation.html"
    rejected = batch.course.root / "build/course/feedback/notjson" / ASSIGNMENT / "not-graded.html"
    shown = {
        # the cheat patched the checks, AssertionError and IPython in its kernel: the host's checks still speak
        "cheat": ("orientation (Score: 0.0 / 8.0)", "Exercise 1: synthetic or real-looking?",
                  "\u2718 ssn: synthetic values are recognised", "\u2718 an unknown kind of value is treated as real",
                  "hint: synthetic SSNs start with 999-", "NameError: name 'triage_probe_spec' is not defined",
                  "ArtifactError: artifact triage_probe_spec (cell 12) is not written yet",
                  "NameError: name 'leaked_names' is not defined"),
        "tamper": ("orientation (Score: 2.0 / 8.0)", "Exercise 3: leaked resources",
                   "\u2718 every leaked resource of night-shift is listed",
                   "hint: both the container and the volume of the lab leaked"),
    }
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                     args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            for learner, messages in shown.items():
                page.goto(Path(str(feedback).format(learner)).as_uri())
                body = page.inner_text("body")
                for message in messages:  # every failed criterion, with its hint, as the learner sees it
                    assert message in body, f"{message!r} not shown in the feedback of {learner}"
            page.goto(rejected.as_uri())
            assert "not valid JSON" in page.inner_text("body")
        finally:
            browser.close()


@pytest.mark.docker
@pytest.mark.slow
def test_rerun_grades_only_what_changed(batch: Batch) -> None:
    before = batch.csv.read_text()
    code, out = batch.grade()
    assert code == 0 and "0 graded now, 19 unchanged" in out
    assert batch.csv.read_text() == before
    # the blank learner hands in a better notebook: only that one is graded again
    release = B.load(batch.course.release / ASSIGNMENT / "orientation.ipynb")
    B.save(B.answered(release, B.load(SOURCE), "leaked_names"), batch.submissions / "blank.ipynb")
    code, out = batch.grade()
    assert code == 0 and "1 graded now, 18 unchanged" in out
    assert batch.rows()["blank"] == "blank,graded,2,8,0,0,0,2,"
    lines = Journal(grading_dir(batch.course, ASSIGNMENT) / "journal.jsonl").path.read_text().splitlines()
    assert len(lines) == 20
    code, out = batch.grade(regrade=False, feedback=False)
    assert "0 graded now" in out


@pytest.mark.docker
@pytest.mark.slow
def test_summary_shows_distribution_pass_rates_and_problems(batch: Batch) -> None:
    from careops.grading.autograder import grade_batch

    summary = grade_batch(batch.course.root, ASSIGNMENT, batch.submissions, jobs=1, progress=False)
    assert summary.graded_now == [] and len(summary.rows) == 19
    assert summary.plot_path is not None and summary.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rates = summary.pass_rates()
    assert list(rates) == ["test_is_synthetic", "test_triage_probe_spec", "test_triage_probe_running",
                           "test_leaked_names"]
    full = {t: sum(r.cells[t] == 2 for r in summary.rows) for t in rates}
    assert rates == {t: n / 19 for t, n in full.items()} and 0 < rates["test_triage_probe_running"] < 1
    page = summary._repr_html_()
    assert "data:image/png;base64," in page and "test_leaked_names" in page
    assert {r.learner for r in summary.problems} >= {"empty", "huge", "notjson", "wrongassign", "loop", "memory"}
    assert re.search(r"stubborn</td><td[^>]*><span[^>]*>incomplete</span></td>", page)


