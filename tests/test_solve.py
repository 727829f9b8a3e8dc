"""careops solve: a stuck learner's solution, shown after a confirmation from a trusted place only, recorded, and
scored 0 for its exercise while the rest of the notebook is graded as usual (the grading test runs the real
sandboxed grader; the kernel test a real kernel; the hub test a real HTTP round trip)."""
from __future__ import annotations

import csv
import io
import json
import shutil
import threading
from contextlib import redirect_stdout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner
from nbclient import NotebookClient

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)
from careops.cli import cli
from careops.errors import SolveError
from careops.outline import outline
from careops.solve import CheckoutSolutions, HubSolutions, SolveJournal, solved_answers, trusted_source, zeroed_tests
from careops.solve.marks import MARK, answer_cells, mark
from careops.solve.service import answer

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*/*.ipynb"))


# -- where solutions come from -----------------------------------------------------------------------------

@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_every_answer_cell_has_a_marked_solution_from_the_checkout(notebook: Path) -> None:
    source = CheckoutSolutions(REPO)
    module = notebook.parent.name
    for ex in source.exercises(module):
        for name in ex.answers:
            solution = source.solution(module, name)
            first, _, rest = solution.text.partition("\n")
            mark_line = rest.partition("\n")[0] if first.startswith("%%artifact") else first
            assert mark_line == MARK.format(name=name), solution.text[:200]
            assert "### BEGIN SOLUTION" not in solution.text and "### END SOLUTION" not in solution.text
            assert (solution.exercise, solution.points, solution.tests) == (ex.label, ex.points, ex.tests)


def test_an_exercise_is_its_answers_and_the_tests_up_to_the_next_answer() -> None:
    source = CheckoutSolutions(REPO)
    dockerfile = source.solution("2", "adt_dockerignore")
    assert dockerfile.others == ("adt_dockerfile",) and "test_live_data" in dockerfile.tests
    assert "test_policy_rule" not in dockerfile.tests and "test_facade" not in dockerfile.tests
    assert source.solution("03-safe-deployments", "canary_rollout").tests == ()  # 3b is not graded
    assert source.solution("safe-deployments", "rollback_rollout").tests == ("test_rollback",)
    with pytest.raises(SolveError, match="no exercise 'nothing'"):
        source.solution("0", "nothing")
    with pytest.raises(SolveError, match="no module 'pharmacy'"):
        source.solution("pharmacy", "is_synthetic")


def test_a_learners_copy_has_no_solution_and_says_how_to_ask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "careops-labs"
    shutil.copytree(REPO / "notebooks", copy / "notebooks")  # even with notebooks, a learner's copy says so
    (copy / "LEARNER-COPY.md").write_text("# Your copy of CareOps Labs\n")
    monkeypatch.setenv("CAREOPS_HOME", str(copy))
    monkeypatch.delenv("CAREOPS_SOLVE_URL", raising=False)
    assert trusted_source() is None
    result = CliRunner().invoke(cli, ["solve", "is_synthetic", "--module", "00-orientation", "--yes"])
    assert result.exit_code == 1 and "not in your copy of the course" in result.output, result.output
    assert "careops solve is_synthetic --module 00-orientation" in result.output  # what to ask the instructor


# -- recorded, and what it costs -----------------------------------------------------------------------------

def test_a_marked_answer_zeroes_its_exercise_and_nothing_else() -> None:
    nb = json.loads((REPO / "notebooks/02-containerize-legacy/containerize-legacy.ipynb").read_text())
    layout = outline(nb)
    assert zeroed_tests(nb) == {}
    cell = answer_cells(nb)["adt_dockerignore"]
    cell["source"] = mark("".join(cell["source"]), "adt_dockerignore")
    assert solved_answers(nb) == {"adt_dockerignore"}
    zero = zeroed_tests(nb, layout=layout)
    assert set(zero) == {"test_dockerfile_rebuild", "test_dockerfile_root", "test_dockerfile_hang",
                         "test_dockerfile_patients", "test_dockerfile_leaks", "test_live_service", "test_live_data",
                         "test_security"}
    assert all("Exercise 2" in why and "points are 0" in why for why in zero.values())
    assert mark(cell["source"], "adt_dockerignore") == cell["source"]  # never marked twice


def test_the_cli_applies_a_solution_to_the_learners_notebook_and_records_it(
        tmp_path: Path, orientation_release: dict[str, Any]) -> None:
    folder = tmp_path / "workspace" / "00-orientation"
    folder.mkdir(parents=True)
    notebook = B.save(orientation_release, folder / "orientation.ipynb")
    refused = CliRunner().invoke(cli, ["solve", "is_synthetic", "--notebook", str(notebook), "--apply"])
    assert refused.exit_code == 2 and "refusing without confirmation" in refused.output  # no tty, no --yes
    done = CliRunner().invoke(cli, ["solve", "is_synthetic", "--notebook", str(notebook), "--apply", "--yes"])
    assert done.exit_code == 0, done.output
    nb = B.load(notebook)
    text = "".join(B.cell(nb, "is_synthetic")["source"])
    assert text.startswith(MARK.format(name="is_synthetic")) and "def is_synthetic" in text
    assert B.cell(nb, "is_synthetic")["metadata"]["nbgrader"]["solution"] is True  # the same answer cell
    assert "raise NotImplementedError" in "".join(B.cell(nb, "leaked_names")["source"])  # the others untouched
    [entry] = SolveJournal(tmp_path / "workspace" / ".careops" / "solved.jsonl").entries()
    assert (entry.module, entry.answer, entry.points, entry.via) == ("00-orientation", "is_synthetic", 2.0, "checkout")
    assert set(zeroed_tests(nb)) == {"test_is_synthetic"}


# -- in a notebook: confirm, then the solution runs and the next exercise works ------------------------------

def test_solve_in_a_kernel_asks_first_then_applies_records_and_the_next_cell_works(
        tmp_path: Path, orientation_release: dict[str, Any]) -> None:
    folder = tmp_path / "workspace" / "00-orientation"
    folder.mkdir(parents=True)
    B.save(orientation_release, folder / "orientation.ipynb")
    cells = ['from careops.solve import solve\nsolve("is_synthetic")',
             'from careops.solve import solve\nsolve("is_synthetic", confirm=True)',
             'is_synthetic("ssn", "999-12-3456"), is_synthetic("ssn", "999-123-456")']
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    texts = ["\n".join(json.dumps(o.get("data", {})) + o.get("text", "") for o in c.outputs) for c in nb.cells]
    assert "confirm to go on" in texts[0] and "scores 0" in texts[0] and "Exercise 1" in texts[0], texts[0]
    assert "solved" in texts[1] and "is_synthetic" in texts[1], texts[1]
    assert "(True, False)" in texts[2], texts[2]
    [entry] = SolveJournal(tmp_path / "workspace" / ".careops" / "solved.jsonl").entries()
    assert entry.answer == "is_synthetic"


# -- workshop mode: the hub's solve service ------------------------------------------------------------------

class _Service(BaseHTTPRequestHandler):
    """The hub's side as a tiny HTTP service: the token names the learner, answer() does the rest."""

    tokens = {"token-ana": "ana"}
    journal: SolveJournal
    source = CheckoutSolutions(REPO)

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        learner = self.tokens.get(self.headers.get("Authorization", "").removeprefix("token "))
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status, reply = (403, {"message": "not a learner of this workshop", "fix": "log in again"}) if learner is None \
            else answer(body, learner=learner, source=self.source, journal=self.journal,
                        allowed_modules={"00-orientation"})
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def test_in_workshop_mode_the_hub_answers_records_and_can_refuse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    _Service.journal = SolveJournal(tmp_path / "hub" / "solved.jsonl")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/services/careops-solve/"
    try:
        monkeypatch.setenv("CAREOPS_SOLVE_URL", url)
        monkeypatch.setenv("CAREOPS_SOLVE_TOKEN", "token-ana")
        hub = trusted_source()
        assert isinstance(hub, HubSolutions)
        solution = hub.solution("00-orientation", "leaked_names")
        assert solution.via == "hub" and solution.text.startswith(MARK.format(name="leaked_names"))
        [entry] = _Service.journal.entries(learner="ana")
        assert (entry.answer, entry.via) == ("leaked_names", "hub")
        with pytest.raises(SolveError, match="not open for 01-ci-pipeline"):
            hub.solution("01-ci-pipeline", "to_synthetic")
        with pytest.raises(SolveError, match="not a learner of this workshop"):
            HubSolutions(url, "stolen").solution("00-orientation", "leaked_names")
        assert answer({"module": "0", "answer": "x"}, learner="ana", source=_Service.source,
                      journal=_Service.journal)[0] == 400  # not confirmed
    finally:
        server.shutdown()


# -- graded: the solved exercise scores 0, the rest as usual ---------------------------------------------------

@pytest.mark.docker
@pytest.mark.slow
def test_a_solved_exercise_scores_zero_and_the_others_count(tmp_path: Path, orientation_course: Any,
                                                            orientation_release: dict[str, Any],
                                                            orientation_source: dict[str, Any]) -> None:
    from careops.apps.grade import main
    from careops.grading.autograder import grading_dir

    answers = [c["metadata"]["nbgrader"]["grade_id"] for c in orientation_source["cells"]
               if c["metadata"].get("nbgrader", {}).get("solution")]
    subs = tmp_path / "submissions"
    subs.mkdir()
    notebook = B.save(B.answered(orientation_release, orientation_source, *answers), subs / "h-solved.ipynb")
    result = CliRunner().invoke(cli, ["solve", "is_synthetic", "--notebook", str(notebook), "--module",
                                      "00-orientation", "--learner", "h-solved", "--apply", "--yes"])
    assert result.exit_code == 0, result.output
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(assignment="00-orientation", submissions=subs, course_dir=orientation_course.root, jobs=1,
                    feedback=False, progress=False)
    assert code == 0, out.getvalue()
    rows = {r["learner"]: r for r in csv.DictReader((grading_dir(orientation_course, "00-orientation")
                                                     / "grades.csv").open())}
    row = rows["h-solved"]
    assert row["status"] == "graded", row
    assert float(row["test_is_synthetic"]) == 0, row
    assert float(row["test_triage_probe_spec"]) == 2 and float(row["test_triage_probe_running"]) == 2, row
    assert float(row["test_leaked_names"]) == 2 and float(row["score"]) == 6, row
    assert "careops solve" in row["reason"] and "is_synthetic" in row["reason"], row
