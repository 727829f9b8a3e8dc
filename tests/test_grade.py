"""The sandboxed autograder (careops.grading.autograder, careops.apps.grade) end to end, and its parts.

The end-to-end test grades ONE batch that mixes correct, partial, blank and
adversarial submissions of the orientation notebook (built at test time by
tests/fixtures/submissions/builders.py) and asserts the exact CSV: each
adversarial submission's score and reason, and that the others in the same
batch are graded correctly. The unit tests below it need no engine.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import uuid
from contextlib import redirect_stdout
from pathlib import Path

import pytest

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)

from careops.grading import intake
from careops.grading.autograder import Journal, grading_dir
from careops.grading.restore import restore, source_text, stub
from careops.grading.trusted import (
    _MISSING,
    Opaque,
    decode,
    run_test_source,
    trusted_prelude,
)

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
                   "hint: table[(table.lab == lab) & table.leaked].name, sorted"),
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


# -- units (no engine) --------------------------------------------------------
@pytest.fixture(scope="module")
def release_nb(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from careops.grading.course import generate_assignment, make_temp_course

    course = make_temp_course(tmp_path_factory.mktemp("rel"), ASSIGNMENT)
    return B.load(generate_assignment(ASSIGNMENT, course.root) / "orientation.ipynb")


def test_restore_keeps_answers_and_extra_cells_and_undoes_tampering(release_nb: dict) -> None:
    source = B.load(SOURCE)
    nb = B.answered(release_nb, source, "is_synthetic")
    B.add_after(nb, "is_synthetic", "helper = 42\n")
    restored = restore(source, nb)
    assert restored.notes == []
    ids = [(c["metadata"].get("nbgrader") or {}).get("grade_id") for c in restored.notebook["cells"]]
    assert ids.index("is_synthetic") + 1 == ids.index(None) and restored.notebook["cells"][ids.index(None)]["source"] == "helper = 42\n"
    test = restored.notebook["cells"][ids.index("test_is_synthetic")]
    assert "### BEGIN HIDDEN TESTS" in test["source"]  # the instructor's test, hidden part included
    assert restored.notebook["cells"][ids.index("is_synthetic")]["source"] == source_text(B.cell(source, "is_synthetic"))
    tampered = restore(source, B.tampered(release_nb, source))
    assert tampered.tampered and len(tampered.notes) == 7
    cells = tampered.notebook["cells"]
    assert [(c["metadata"].get("nbgrader") or {}).get("grade_id") for c in cells] == [
        (c["metadata"].get("nbgrader") or {}).get("grade_id") for c in source["cells"]]
    assert all(c["source"] == source_text(s) for c, s in zip(cells, source["cells"])
               if (s["metadata"].get("nbgrader") or {}).get("locked"))


def test_restore_of_a_deleted_answer_is_the_released_stub() -> None:
    source = B.load(SOURCE)
    nb = json.loads(json.dumps(source))
    del nb["cells"][B.index_of(nb, "leaked_names")]
    restored = restore(source, nb)
    assert restored.notes == ["missing answer leaked_names (graded as unanswered)"]
    text = B.cell(restored.notebook, "leaked_names")["source"]
    assert "raise NotImplementedError()" in text and "table[" not in text
    assert stub(B.cell(source, "triage_probe_spec")).startswith("%%artifact triage_probe_spec\n")


def test_intake_rejects_with_a_reason(tmp_path: Path, release_nb: dict) -> None:
    source = B.load(SOURCE)
    good = B.save(release_nb, tmp_path / "ok.ipynb")
    assert intake.check_notebook(good, ASSIGNMENT, source)[1] is None
    cases = {
        "empty": ("", "is empty"),
        "blank-json": ('{"cells": [], "nbformat": 4, "metadata": {}}', "is empty (0 cells)"),
        "text": ("hello", "not valid JSON"),
        "v3": ('{"worksheets": [], "nbformat": 3}', "not a Jupyter notebook"),
        "badcell": ('{"cells": [{"cell_type": "code", "source": 5}], "nbformat": 4}', "cell 0 is malformed"),
    }
    for name, (text, reason) in cases.items():
        (tmp_path / f"{name}.ipynb").write_text(text)
        nb, problem = intake.check_notebook(tmp_path / f"{name}.ipynb", ASSIGNMENT, source)
        assert nb is None and reason in problem, (name, problem)
    B.save(B.wrong_assignment(release_nb), tmp_path / "wrong.ipynb")
    assert "not of 00-orientation" in intake.check_notebook(tmp_path / "wrong.ipynb", ASSIGNMENT, source)[1]
    foreign = json.loads(json.dumps(release_nb))
    foreign["metadata"].pop("careops", None)
    for c in foreign["cells"]:
        c["metadata"].pop("nbgrader", None)
    B.save(foreign, tmp_path / "foreign.ipynb")
    assert "none of the cells" in intake.check_notebook(tmp_path / "foreign.ipynb", ASSIGNMENT, source)[1]
    B.write_huge(tmp_path / "huge.ipynb", 40 * 1024**2)
    assert "too large: 40 MiB" in intake.check_notebook(tmp_path / "huge.ipynb", ASSIGNMENT, source)[1]


def test_collect_a_folder_and_an_nbgrader_exchange(tmp_path: Path) -> None:
    folder = tmp_path / "lms"
    folder.mkdir()
    (folder / "ana.ipynb").write_text("{}")
    (folder / "bo-2").mkdir()
    (folder / "bo-2" / "orientation.ipynb").write_text("{}")
    subs = intake.collect(folder, ASSIGNMENT, ["orientation"])
    assert [(s.learner, list(s.files)) for s in subs] == [("ana", ["orientation"]), ("bo-2", ["orientation"])]
    digest = subs[0].digest
    (folder / "ana.ipynb").write_text("{ }")
    assert intake.collect(folder, ASSIGNMENT, ["orientation"])[0].digest != digest
    (folder / "bad name!.ipynb").write_text("{}")
    with pytest.raises(intake.SubmissionError, match="cannot use 'bad name!' as a learner id"):
        intake.collect(folder, ASSIGNMENT, ["orientation"])
    inbound = tmp_path / "exchange" / "careops-labs" / "inbound"
    for folder_name in ("ana+00-orientation+2026-01-01 10:00:00.000000 UTC",
                        "ana+00-orientation+2026-01-02 10:00:00.000000 UTC",
                        "bo+01-ci-pipeline+2026-01-01 10:00:00.000000 UTC"):
        (inbound / folder_name).mkdir(parents=True)
        (inbound / folder_name / "orientation.ipynb").write_text(json.dumps({"when": folder_name}))
    subs = intake.collect(tmp_path / "exchange", ASSIGNMENT, ["orientation"])
    assert [s.learner for s in subs] == ["ana"]
    assert "2026-01-02" in subs[0].files["orientation"].parent.name
    with pytest.raises(intake.SubmissionError, match="no submissions folder"):
        intake.collect(tmp_path / "nowhere", ASSIGNMENT, ["orientation"])


def test_journal_survives_a_torn_last_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.append({"learner": "ana", "key": "1", "status": "graded"})
    journal.append({"learner": "ana", "key": "2", "status": "graded"})
    with open(journal.path, "a") as fh:
        fh.write('{"learner": "bo", "key"')  # killed mid-write
    assert {k: v["key"] for k, v in journal.entries().items()} == {"ana": "2"}


def test_values_from_the_sandbox_are_parsed_strictly() -> None:
    assert decode({"__tuple__": [1, {"__set__": ["a"]}]}) == (1, {"a"})
    assert decode({"__float__": "nan"}) != decode({"__float__": "nan"})  # nan stays nan
    for bad in ({"__class__": "os.system"}, {"a": 1, "b": 2}, {"__float__": "1e999999"}, {"__tuple__": 5}):
        with pytest.raises(ValueError):
            decode(bad)
    with pytest.raises(TypeError, match="cannot use 'probe'"):
        Opaque("probe", "LabContainer") == 1  # noqa: B015


def test_test_cells_run_in_trusted_code_whatever_the_learner_patched() -> None:
    source = B.load(SOURCE)
    prelude = trusted_prelude(source)
    assert prelude["check"].__name__ == "careops.checks.orientation"
    test = source_text(B.cell(source, "test_is_synthetic"))
    fetched: list[str] = []

    def learner(is_synthetic):  # what a sandbox fetch returns for the learner's names (a fake for this unit)
        def fetch(name, outputs):
            fetched.append(name)
            return is_synthetic if name == "is_synthetic" else _MISSING
        return fetch

    right = B.load(SOURCE)
    ns: dict = {}
    exec(source_text(B.cell(right, "is_synthetic")), ns)  # noqa: S102 - the instructor's solution
    ok, _ = run_test_source(test, "t", dict(prelude), learner(ns["is_synthetic"]))
    assert ok.passed and "is_synthetic" in fetched
    wrong, _ = run_test_source(test, "t", dict(prelude), learner(lambda kind, value: True))
    assert not wrong.passed and wrong.reason.startswith("CheckFailed: Exercise 1")
    # as in the learner's kernel: the report once (with its hints), then one line, no traceback through the check
    assert [o["output_type"] for o in wrong.outputs] == ["display_data", "error"]
    assert "hint:" in wrong.outputs[0]["data"]["text/plain"] and "hint" in wrong.outputs[0]["data"]["text/html"]
    assert len(wrong.outputs[1]["traceback"]) == 1 and "careops/checks" not in wrong.outputs[1]["traceback"][0]
    missing, _ = run_test_source(test, "t", dict(prelude), lambda name, outputs: _MISSING)
    assert not missing.passed and missing.reason.startswith("NameError")


def test_grade_app_explains_a_missing_submissions_folder(tmp_path: Path) -> None:
    from careops.apps.grade import main
    from careops.errors import CareOpsError
    from careops.grading.course import make_temp_course

    course = make_temp_course(tmp_path / "c", ASSIGNMENT)
    with pytest.raises(CareOpsError, match="no submissions found for 00-orientation"):
        main(assignment=ASSIGNMENT, course_dir=course.root)
    shutil.rmtree(course.root)


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
    assert "stubborn</td><td>incomplete</td>" in page


def test_tables_numbers_and_cohorts_cross_the_sandbox_as_data() -> None:
    """DataFrames travel as pandas' JSON table format, numpy values as Python ones, a cohort as its recipe."""
    import numpy as np
    import pandas as pd

    from careops.grading.agent import encode
    from careops.synth import Anomalies, generate

    def wire(value):  # what the agent sends, as JSON, read back strictly on the host
        return decode(json.loads(json.dumps(encode(value))))

    frame = pd.DataFrame({"at": pd.to_datetime(["2026-11-02T09:01:30Z", "2026-11-03T10:00:00Z"], utc=True),
                          "who": ["Dana Reyes", "Sam Okoye"], "share": [0.6, 0.1 + 0.2], "n": [3, 4],
                          "ok": [True, False]})
    back = wire(frame)
    assert list(back.columns) == list(frame.columns)
    assert list(back["share"]) == [0.6, 0.1 + 0.2] and list(back["n"]) == [3, 4] and list(back["ok"]) == [True, False]
    assert list(back["at"]) == list(frame["at"]) and list(back["who"]) == ["Dana Reyes", "Sam Okoye"]
    assert list(wire(pd.Series([1.5, 2.0], name="x"))) == [1.5, 2.0] and list(wire(pd.Series([0.1 + 0.2]))) == [0.1 + 0.2]
    assert wire(np.int64(7)) == 7 and type(wire(np.float64(0.5))) is float and wire(np.arange(3)) == [0, 1, 2]
    cohort = generate(30, seed=5, anomalies=Anomalies(duplicate_patients=0.1))
    again = wire(cohort)
    assert all(again.tables()[name].equals(table) for name, table in cohort.tables().items())
    with pytest.raises(ValueError, match="cannot read"):
        decode({"__dataframe__": {"table": "{not json", "floats": {}}})
    recipe = encode(cohort)["__cohort__"]
    with pytest.raises(ValueError, match="at most 20,000"):
        decode({"__cohort__": {**recipe, "patients": 10**7}})
    with pytest.raises(ValueError, match="unexpected fields"):
        decode({"__cohort__": {**recipe, "extra": 1}})
