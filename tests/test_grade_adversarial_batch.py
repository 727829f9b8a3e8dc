"""The sandboxed autograder (careops.grading.autograder, careops.apps.grade) end to end, on one adversarial batch.

The batch mixes correct, partial, blank and adversarial submissions of the
orientation notebook (built at test time by
tests/fixtures/submissions/builders.py), in a folder that is also a Moodle and
Canvas download (with odd and broken files beside them), under a due date with
one late hand-in and one excused by an extension, and is graded ONCE; the tests
assert the exact CSV (each adversarial submission's score and reason, and that
the others in the same batch are graded correctly), the files set aside, the
sandbox's walls, the exports, the feedback (offline, in Chromium, without a
hidden test line), re-runs, re-grading one learner and the summary. The
grader's parts have their own tests in tests/test_grading_<module>.py.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import uuid
from contextlib import redirect_stdout
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)

from careops.grading.autograder import Journal, grading_dir

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "00-orientation"
SOURCE = REPO / "notebooks" / ASSIGNMENT / "orientation.ipynb"

CELL_TIMEOUT = 6
#: the number of the cell the bad hand-ins add after is_synthetic (the grader's reasons name it)
ADDED = B.number_after(SOURCE, "is_synthetic")
#: the columns the rows below are written in (grades.csv has more: raw_score ... due, checked on their own)
HEADER = "learner,status,score,max_score,test_is_synthetic,test_triage_probe_spec,test_triage_probe_running,test_leaked_names,reason"
#: the due date of the batch (grading/deadlines.yaml of its course); every file is handed in an hour before,
#: but for LATE and EXCUSED, handed in a day and a half after (EXCUSED has a 3-day extension)
DUE = datetime(2026, 3, 2, 17, 0)
LATE, EXCUSED = "late", "excused"
MOODLE_GOOD, MOODLE_PARTIAL = "Amara Okafor_1234_assignsubmission_file_", "Ngozi Eze_1235_assignsubmission_file_"
CANVAS_GOOD = "lindbo_5678_90001_orientation.ipynb"
DEADLINES = f"""timezone: UTC
late_policy: {{penalty: per_day, per_day: 0.25, max: 0.5}}
assignments:
  {ASSIGNMENT}:
    due: {DUE:%Y-%m-%d %H:%M}
    extensions:
      {EXCUSED}: 3 days
"""
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
    "loop": f"loop,incomplete,6,8,0,2,2,2,cell {ADDED} did not finish within {CELL_TIMEOUT} s (interrupted); "
            f"is_synthetic(...) did not finish within {CELL_TIMEOUT} s (interrupted)",
    "memory": "memory,incomplete,2,8,0,0,2,0,the notebook ran out of memory (512 MiB) while it was running",
    "notjson": "notjson,rejected,0,8,0,0,0,0,notjson.ipynb is not a notebook: it is not valid JSON "
               "(Expecting value: line 1 column 1 (char 0))",
    "osexit": "osexit,incomplete,2,8,0,0,2,0,\"the notebook's process ended while it was running (exit code 0): "
              "sys.exit/os._exit, a killed kernel or a crash\"",
    "partial": "partial,graded,4,8,2,0,0,2,",
    "protoflood": "protoflood,incomplete,6,8,2,2,2,0,the notebook sent an answer larger than 4 MiB",
    "stubborn": f"stubborn,incomplete,2,8,0,0,2,0,cell {ADDED} did not finish within {CELL_TIMEOUT} s "
                "and the sandbox was stopped",
    "sysexit": "sysexit,graded,2,8,2,0,0,0,",
    "tamper": "tamper,graded,2,8,2,0,0,0,edited test cell test_is_synthetic (restored); duplicated cell "
              "test_is_synthetic (the copy was ignored); edited test cell test_triage_probe_spec (restored); "
              "changed nbgrader metadata of test_triage_probe_spec (restored); changed nbgrader metadata of "
              "test_triage_probe_running (restored); deleted cell test_leaked_names (restored); "
              "reordered cells (the instructor's order was used)",
    "wrongassign": "wrongassign,rejected,0,8,0,0,0,0,\"wrongassign.ipynb is a notebook of 01-ci-pipeline, "
                   "not of 00-orientation\"",
    # a hand-in that imports the grader's references: that exercise scores 0, with the reason
    "refimport": "refimport,graded,6,8,2,2,2,0,test_leaked_names scored 0: cell leaked_names uses the course's "
                 "reference answers (import careops.grading.references)",
    # one that reads the instructor's source notebook: the exercise the read sits in, and the one relying on it
    "refread": f"refread,graded,4,8,0,2,2,0,test_is_synthetic scored 0: cell {ADDED} uses the course's reference "
               "answers (reads '../../notebooks/00-orientation/orientation.ipynb'); test_leaked_names scored 0: "
               f"cell {ADDED} uses the course's reference answers (reads "
               "'../../notebooks/00-orientation/orientation.ipynb')",
    # a Moodle download's folders and a Canvas download's file, beside everything else
    "amara-okafor": "amara-okafor,graded,8,8,2,2,2,2,",
    "ngozi-eze": "ngozi-eze,graded,2,8,2,0,0,0,",
    "lindbo": "lindbo,graded,8,8,2,2,2,2,",
    # full marks a day and a half after the due date: 2 started days late at 25 % each; excused by 3 days
    LATE: f"{LATE},graded,4,8,2,2,2,2,",
    EXCUSED: f"{EXCUSED},graded,8,8,2,2,2,2,",
}
#: files of the download that are nobody's gradable hand-in, and why
NOT_COLLECTED = {
    "Odd Name (copy).ipynb": "cannot tell whose hand-in this is: the file name 'Odd Name (copy)' is not a learner "
                             "id (letters, digits, '.', '_' or '-'), nor a Moodle or Canvas download name; rename it "
                             "to <learner-id>.ipynb",
    "broken-download.zip": "the archive cannot be unpacked",
    f"{MOODLE_GOOD}/screenshot.png": "not a notebook (.png): only .ipynb files are graded",
    "notes.pdf": "not a notebook (.pdf): only .ipynb files are graded",
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
    nb = a(release, source, *everything)
    B.set_source(nb, "leaked_names", "import careops.grading.references as _r\n"
                                     "leaked_names = _r.load('orientation').leaked_names\n")
    B.save(nb, dest / "refimport.ipynb")
    nb = a(release, source, *everything)
    B.add_after(nb, "is_synthetic", "answers = open('../../notebooks/00-orientation/orientation.ipynb').read()\n")
    B.set_source(nb, "leaked_names", "def leaked_names(table, lab):\n    return sorted(answers.split()[:2])\n")
    B.save(nb, dest / "refread.ipynb")
    # a Moodle download (folders) and a Canvas download (a file), with what such downloads bring along
    for folder, answers in ((MOODLE_GOOD, everything), (MOODLE_PARTIAL, ("is_synthetic",))):
        (dest / folder).mkdir()
        B.save(a(release, source, *answers), dest / folder / "orientation.ipynb")
    (dest / MOODLE_GOOD / "screenshot.png").write_bytes(b"\x89PNG\r\n")
    B.save(a(release, source, *everything), dest / CANVAS_GOOD)
    (dest / "broken-download.zip").write_bytes(b"PK\x03\x04 cut off in the middle of the download")
    B.save(release, dest / "Odd Name (copy).ipynb")
    (dest / "notes.pdf").write_bytes(b"%PDF-1.4 handed in instead of the notebook")
    for learner in (LATE, EXCUSED):
        B.save(a(release, source, *everything), dest / f"{learner}.ipynb")
    # hand-in times: the files' modification times (a plain folder; Moodle's and Canvas's downloads keep them)
    on_time, late = (DUE - timedelta(hours=1)), (DUE + timedelta(hours=36))
    for path in dest.rglob("*"):
        when = late if path.stem in (LATE, EXCUSED) else on_time
        stamp = when.replace(tzinfo=timezone.utc).timestamp()
        os.utime(path, (stamp, stamp))


class Batch:
    def __init__(self, root: Path) -> None:
        from careops.grading.course import generate_assignment, make_temp_course

        self.course = make_temp_course(root / "course", ASSIGNMENT)
        (self.course.root / "grading" / "deadlines.yaml").write_text(DEADLINES, encoding="utf-8")
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

    def table(self) -> dict[str, dict[str, str]]:
        """grades.csv, every column, by learner."""
        with self.csv.open(encoding="utf-8") as fh:
            return {r["learner"]: r for r in csv.DictReader(fh)}

    def rows(self) -> dict[str, str]:
        """grades.csv by learner, as lines of the HEADER's columns."""
        columns = HEADER.split(",")
        out = {}
        for learner, row in self.table().items():
            buf = io.StringIO()
            csv.writer(buf, lineterminator="").writerow([row[c] for c in columns])
            out[learner] = buf.getvalue()
        return out


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    os.environ["CAREOPS_TEST_SECRET"] = "unused"  # a host variable the sandbox must not see
    b = Batch(tmp_path_factory.mktemp("grade"))
    os.environ["CAREOPS_TEST_SECRET"] = b.secret
    b.code, b.output = b.grade()
    return b


N = len(EXPECTED) + 1  # + snoop, whose reason names the batch's temporary paths


@pytest.mark.docker
@pytest.mark.slow
def test_batch_of_correct_partial_blank_and_adversarial_submissions(batch: Batch) -> None:
    assert batch.code == 0, batch.output
    rows = batch.rows()
    assert sorted(rows) == sorted([*EXPECTED, "snoop"])
    fork = rows.pop("forkbomb")
    # a fork bomb hits the pids limit; its copies of the kernel may then exhaust the memory limit
    assert fork in (EXPECTED["forkbomb"].format(status="graded", reason=""),
                    EXPECTED["forkbomb"].format(status="incomplete", reason="the notebook ran out of memory "
                                                "(512 MiB) while it was running")), fork
    # the snoop's probes read the source notebook and the gradebook: the exercise they sit in scores 0
    snoop = rows.pop("snoop")
    assert snoop.startswith(f"snoop,graded,0,8,0,0,0,0,test_is_synthetic scored 0: cell {ADDED} uses the course's "
                            "reference answers (reads "), snoop
    assert "test_triage_probe_running" not in snoop  # a live check's names come from its setup, not the learner
    for learner, line in rows.items():
        assert line == EXPECTED[learner], f"{learner}:\n  got      {line}\n  expected {EXPECTED[learner]}"
    # the summary printed names every submission that was not graded fully, with its reason
    for learner in ("empty", "huge", "notjson", "wrongassign", "loop", "memory", "osexit", "stubborn"):
        assert f"! {learner} (" in batch.output
    assert "test_is_synthetic: " in batch.output and "% full marks" in batch.output
    # no sandbox of this grader is left behind (other graders on the engine are not ours to count)
    from careops import engine
    from careops.grading.sandbox import lab_name
    from careops.lab import labels as L

    mine = engine.client().containers.list(all=True, filters={"label": [
        f"{L.LAB}={lab_name(ASSIGNMENT)}", f"{L.CREATOR_PID}={os.getpid()}"]})
    assert mine == []


@pytest.mark.docker
@pytest.mark.slow
def test_a_mixed_download_grades_every_good_hand_in_and_names_every_odd_file(batch: Batch) -> None:
    """Moodle folders, a Canvas file, a broken zip, an odd name, a PDF: the good ones graded, the rest named."""
    for path, reason in NOT_COLLECTED.items():
        assert f"  not collected: {path}: {reason}" in batch.output, f"{path} not named:\n{batch.output}"
    table = batch.table()
    assert table["amara-okafor"]["handed_in_from"] == "file time in the Moodle download"
    assert table["lindbo"]["handed_in_from"] == "file time in the Canvas download"
    assert table["correct"]["handed_in_from"] == "file modification time"


@pytest.mark.docker
@pytest.mark.slow
def test_a_late_hand_in_is_penalised_and_an_extension_excuses_it(batch: Batch) -> None:
    table = batch.table()
    late, excused, on_time = table[LATE], table[EXCUSED], table["correct"]
    assert (late["raw_score"], late["late_penalty"], late["score"]) == ("8", "4", "4")
    assert late["handed_in"] == f"{DUE + timedelta(hours=36):%Y-%m-%d %H:%M:%S}" and late["due"] == f"{DUE:%Y-%m-%d %H:%M:%S}"
    assert (excused["late_penalty"], excused["score"]) == ("0", "8")
    assert excused["due"] == f"{DUE + timedelta(days=3):%Y-%m-%d %H:%M:%S}"
    assert on_time["late_penalty"] == "0" and on_time["handed_in"] == f"{DUE - timedelta(hours=1):%Y-%m-%d %H:%M:%S}"
    assert f"  late: {LATE} by 1 d 12 h (penalty 4)" in batch.output


@pytest.mark.docker
@pytest.mark.slow
def test_canvas_and_moodle_exports_round_trip_through_pandas(batch: Batch) -> None:
    import pandas as pd

    from careops.grading.export import CANVAS_COLUMNS, MOODLE_COLUMNS

    out = grading_dir(batch.course, ASSIGNMENT)
    canvas = pd.read_csv(out / "canvas.csv", dtype=str, keep_default_na=False)
    assert list(canvas.columns) == CANVAS_COLUMNS + [ASSIGNMENT] and len(canvas) == N
    lindbo = canvas[canvas["ID"] == "5678"].iloc[0]
    assert lindbo[ASSIGNMENT] == "8"
    assert canvas.set_index("Student").loc[LATE, ASSIGNMENT] == "4"  # the score after the late penalty
    moodle = pd.read_csv(out / "moodle.csv", dtype=str, keep_default_na=False)
    assert list(moodle.columns) == MOODLE_COLUMNS and len(moodle) == N
    by_id = moodle.set_index("Identifier")
    assert by_id.loc["Participant 1234", ["Full name", "Grade", "Maximum Grade"]].tolist() == ["Amara Okafor", "8", "8"]
    assert by_id.loc["Participant 1235", "Grade"] == "2"
    assert by_id.loc["Participant 1234", "Last modified (submission)"] == "Monday, 2 March 2026, 4:00 PM"


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
@pytest.mark.browser
def test_feedback_html_in_headless_chromium_offline_shows_each_check_and_no_hidden_test(batch: Batch, chromium) -> None:

    feedback = batch.course.root / "build/course/feedback/{}" / ASSIGNMENT / "orientation.html"
    rejected = batch.course.root / "build/course/feedback/notjson" / ASSIGNMENT / "not-graded.html"
    shown = {
        # the cheat patched the checks, AssertionError and IPython in its kernel: the host's checks still speak
        "cheat": ("orientation (Score: 0.0 / 8.0)", "Exercise 1: synthetic or real-looking?",
                  "\u2718 ssn: synthetic values are recognised", "\u2718 an unknown kind of value is treated as real",
                  "hint: a synthetic SSN is the whole value 999-NN-NNNN", "not answered: exercise 2 (triage_probe_spec)"),
        "blank": ("not answered: exercise 1 (is_synthetic)", "not answered: exercise 2 (triage_probe_spec)",
                  "not answered: exercise 3 (leaked_names)"),
        "tamper": ("orientation (Score: 2.0 / 8.0)", "Exercise 3: leaked resources",
                   "\u2718 every leaked resource of night-shift is listed",
                   "hint: both the container and the volume of the lab leaked",
                   "Undone before grading (the instructor's version was used): edited test cell test_is_synthetic "
                   "(restored)", "Undone before grading (the instructor's version was used): deleted cell "
                   "test_leaked_names (restored)"),
        "refimport": ("Scored 0 on test_leaked_names: cell leaked_names uses the course's reference answers "
                      "(import careops.grading.references)",),
        "correct": ("\u2714 every exercise was graded as you handed it in", "Exercise 1: synthetic or real-looking?",
                    "Exercise 3: leaked resources", f"Due {DUE:%Y-%m-%d %H:%M} UTC"),
        LATE: ("Late by 1 d 12 h: late penalty 4 points",),
        EXCUSED: (f"Due {DUE + timedelta(days=3):%Y-%m-%d %H:%M} UTC (with your extension)",),
    }
    hidden = B.hidden_test_lines(B.load(SOURCE))
    requested: list[str] = []

    def offline(route: object) -> None:  # the network is off: anything that is not a local file is refused
        url = route.request.url  # type: ignore[attr-defined]
        if url.startswith("file:"):
            route.continue_()  # type: ignore[attr-defined]
        else:
            requested.append(url)
            route.abort()  # type: ignore[attr-defined]

    page = chromium.new_page()
    try:
        page.route("**/*", offline)
        for learner, messages in shown.items():
            page.goto(Path(str(feedback).format(learner)).as_uri(), wait_until="load")
            body = page.inner_text("body")
            for message in messages:  # every failed criterion, with its hint, as the learner sees it
                assert message in body, f"{message!r} not shown in the feedback of {learner}"
            if learner != "cheat":  # (the cheat's kernel tricks left it a NameError: that is what ran)
                assert "NameError" not in body, learner  # an unanswered exercise is named, not a NameError
        for page_file in sorted((batch.course.root / "build/course/feedback").glob(f"*/{ASSIGNMENT}/*.html")):
            page.goto(page_file.as_uri(), wait_until="load")
            body, html = page.inner_text("body"), page.content()
            leaked = [line for line in hidden if line in body or line in html]
            assert not leaked, f"{page_file.parent.parent.name}'s feedback shows hidden test lines: {leaked[:3]}"
            assert "HIDDEN TESTS" not in html
        page.goto(rejected.as_uri())
        assert "not valid JSON" in page.inner_text("body")
        page.screenshot(path=str(batch.course.root / "feedback-correct.png"), full_page=False)
    finally:
        page.close()
    assert requested == [], f"the feedback asked the network for {requested}"


@pytest.mark.docker
@pytest.mark.slow
def test_rerun_grades_only_what_changed_and_one_learner_is_graded_again_alone(batch: Batch) -> None:
    before = batch.csv.read_text()
    code, out = batch.grade()
    assert code == 0 and f"0 graded now, {N} unchanged" in out
    assert batch.csv.read_text() == before
    # the blank learner hands in a better notebook: only that one is graded again
    release = B.load(batch.course.release / ASSIGNMENT / "orientation.ipynb")
    better = B.save(B.answered(release, B.load(SOURCE), "leaked_names"), batch.submissions / "blank.ipynb")
    stamp = (DUE - timedelta(minutes=30)).replace(tzinfo=timezone.utc).timestamp()
    os.utime(better, (stamp, stamp))  # handed in again before the due date
    code, out = batch.grade()
    assert code == 0 and f"1 graded now, {N - 1} unchanged" in out
    assert batch.rows()["blank"] == "blank,graded,2,8,0,0,0,2,"
    lines = Journal(grading_dir(batch.course, ASSIGNMENT) / "journal.jsonl").path.read_text().splitlines()
    assert len(lines) == N + 1
    code, out = batch.grade(regrade=False, feedback=False)
    assert "0 graded now" in out
    # the instructor re-grades one learner (their hand-in unchanged): every other row stays as it was
    others = {k: v for k, v in batch.table().items() if k != "partial"}
    code, out = batch.grade(learners=("partial",))
    assert code == 0 and "1 graded now, 0 unchanged" in out
    table = batch.table()
    assert {k: v for k, v in table.items() if k != "partial"} == others
    assert batch.rows()["partial"] == EXPECTED["partial"]
    from careops.errors import CareOpsError

    with pytest.raises(CareOpsError, match="no submission of nobody-here"):
        batch.grade(learners=("nobody-here",))


@pytest.mark.docker
@pytest.mark.slow
def test_summary_shows_distribution_pass_rates_and_problems(batch: Batch) -> None:
    from careops.grading.autograder import grade_batch

    summary = grade_batch(batch.course.root, ASSIGNMENT, batch.submissions, jobs=1, progress=False)
    assert summary.graded_now == [] and len(summary.rows) == N
    assert summary.plot_path is not None and summary.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rates = summary.pass_rates()
    assert list(rates) == ["test_is_synthetic", "test_triage_probe_spec", "test_triage_probe_running",
                           "test_leaked_names"]
    full = {t: sum(r.cells[t] == 2 for r in summary.rows) for t in rates}
    assert rates == {t: n / N for t, n in full.items()} and 0 < rates["test_triage_probe_running"] < 1
    page = summary._repr_html_()
    assert "data:image/png;base64," in page and "test_leaked_names" in page
    assert {r.learner for r in summary.problems} >= {"empty", "huge", "notjson", "wrongassign", "loop", "memory"}
    assert re.search(r"stubborn</td><td[^>]*><span[^>]*>incomplete</span></td>", page)
    assert "broken-download.zip" in page and {nc.path for nc in summary.not_collected} == set(NOT_COLLECTED)
