"""Every course notebook, proven both ways with real nbgrader.

For each .ipynb under notebooks/ (new ones are picked up automatically):
  * the source is committed without outputs,
  * it has at least one autograded test cell,
  * `nbgrader generate_assignment` accepts it,
  * its SOLUTION (the source, submitted as is) gets full marks on every
    autograded cell, and
  * its LEARNER version (as released, unchanged) gets zero on every one.
Each notebook runs in its own throwaway course (tmp dir, own gradebook), so
build/ is never touched; careops.grading.harness explains the details.

The harness self-tests at the bottom run the same checks on the fixtures in
tests/fixtures/harness/ and expect them to FAIL where the fixture is broken:
a harness that cannot fail proves nothing.
"""
from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

import pytest

from careops.errors import CareOpsError
from careops.grading import harness as H
from careops.grading.course import COURSE_ID, Course, make_temp_course

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "notebooks"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "harness"

NOTEBOOKS = sorted(
    p for p in SOURCE.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
) if SOURCE.is_dir() else []


def _id(path: Path) -> str:
    return path.relative_to(SOURCE).as_posix()


def _fail(problems: list[str], what: str) -> None:
    if problems:
        pytest.fail(f"{what}:\n  - " + "\n  - ".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def harnesses() -> dict[Path, H.NotebookHarness]:
    """One harness per notebook for the whole session, so its runs are shared by the tests."""
    return {}


def require_assignment_notebook(notebook: Path) -> None:
    """nbgrader only sees notebooks/<assignment>/<name>.ipynb; say so for any other place."""
    if len(notebook.relative_to(SOURCE).parts) != 2:
        pytest.fail(
            f"{_id(notebook)} is not at the top of an assignment folder (expected "
            "notebooks/<assignment>/<name>.ipynb): nbgrader would neither release nor grade it; "
            "move it up, or rename it away from .ipynb if it is a data file",
            pytrace=False,
        )


def harness_for(
    notebook: Path, cache: dict[Path, H.NotebookHarness], tmp_path_factory: pytest.TempPathFactory
) -> H.NotebookHarness:
    if notebook not in cache:
        require_assignment_notebook(notebook)
        cache[notebook] = H.NotebookHarness(
            notebook=notebook,
            assignment=notebook.parent.name,
            workdir=tmp_path_factory.mktemp(f"nb-{notebook.stem}"),
            from_course=REPO,
        )
    return cache[notebook]


# --- every course notebook -------------------------------------------------------

@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_id)
def test_outputs_are_stripped(notebook: Path) -> None:
    _fail(H.check_stripped(notebook), f"{_id(notebook)} has cells with outputs")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_id)
def test_has_an_autograded_test(notebook: Path) -> None:
    require_assignment_notebook(notebook)
    _fail(H.check_has_autograded_test(notebook), f"{_id(notebook)} grades nothing")


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_id)
def test_generate_assignment_succeeds(notebook: Path, harnesses, tmp_path_factory) -> None:
    released = harness_for(notebook, harnesses, tmp_path_factory).released_notebook()
    assert released.is_file()


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_id)
def test_solution_gets_full_marks(notebook: Path, harnesses, tmp_path_factory) -> None:
    run = harness_for(notebook, harnesses, tmp_path_factory).solution_run()
    _fail(
        H.check_solution_full_marks(run.result) + H.check_solution_runs_cleanly(run.result)
        + H.check_cleanup(run.cleanup),
        f"the solution of {_id(notebook)} does not get full marks "
        f"({run.result.score:g}/{run.result.max_score:g}, autograded as {run.learner_id})",
    )


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_id)
def test_learner_version_gets_zero(notebook: Path, harnesses, tmp_path_factory) -> None:
    run = harness_for(notebook, harnesses, tmp_path_factory).learner_run()
    _fail(
        H.check_learner_zero(run.result) + H.check_cleanup(run.cleanup),
        f"the unchanged learner version of {_id(notebook)} scores "
        f"{run.result.score:g}/{run.result.max_score:g} (expected 0; autograded as {run.learner_id})",
    )


def test_nbgrader_kernel_is_this_python() -> None:
    """The python3 kernel nbgrader starts must be the course's Python, or `import careops` fails."""
    import subprocess
    import sys

    from careops.grading.course import nbgrader_env

    probe = (
        "import sys; from jupyter_client.kernelspec import KernelSpecManager as K; "
        "from jupyter_client.manager import KernelManager as M; "
        "km = M(kernel_name='python3'); "
        "print(km.format_kernel_cmd()[0])"
    )
    out = subprocess.run([sys.executable, "-c", probe], env=nbgrader_env(), capture_output=True,
                         text=True, check=True).stdout.strip()
    assert Path(out) == Path(sys.executable), (
        f"the python3 kernel runs {out}, expected {sys.executable}: "
        "a python3 kernel spec of another Python shadows the course's (jupyter kernelspec list)"
    )


# --- harness self-tests on fixtures -------------------------------------------------

def fixture_harness(name: str, tmp_path: Path) -> H.NotebookHarness:
    return H.NotebookHarness(
        notebook=FIXTURES / name / "triage.ipynb",
        assignment=name,
        workdir=tmp_path,
        from_course=REPO,
    )


def _edit(notebook: Path, edit) -> None:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    edit(nb["cells"])
    notebook.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def _cell(cells: list[dict], grade_id: str) -> dict:
    return next(c for c in cells if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)


@pytest.mark.parametrize("name", ["good", "weak-test", "broken-solution"])
def test_fixtures_are_clean_sources(name: str) -> None:
    nb = FIXTURES / name / "triage.ipynb"
    assert H.check_stripped(nb) == []
    assert H.check_has_autograded_test(nb) == []


def test_check_stripped_names_cells_with_outputs(tmp_path: Path) -> None:
    nb = tmp_path / "triage.ipynb"
    shutil.copy(FIXTURES / "good" / "triage.ipynb", nb)

    def dirty(cells: list[dict]) -> None:
        setup = _cell(cells, "setup")
        setup["execution_count"] = 3
        setup["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["careops ready\n"]}]
        _cell(cells, "test_triage_colours")["execution_count"] = 4

    _edit(nb, dirty)
    problems = H.check_stripped(nb)
    assert len(problems) == 2, problems
    assert "cell 2 (setup): outputs and execution_count 3" in problems[0]
    assert "cell 4 (test_triage_colours): execution_count 4" in problems[1]


def test_check_has_autograded_test_reports_ungraded_notebook(tmp_path: Path) -> None:
    nb = tmp_path / "triage.ipynb"
    shutil.copy(FIXTURES / "good" / "triage.ipynb", nb)

    def ungrade(cells: list[dict]) -> None:
        for c in cells:
            meta = c["metadata"].get("nbgrader", {})
            if meta.get("grade"):
                meta["grade"] = False
                meta.pop("points", None)

    _edit(nb, ungrade)
    [problem] = H.check_has_autograded_test(nb)
    assert "triage.ipynb has no autograded test cell" in problem


@pytest.mark.slow
def test_harness_passes_a_sound_notebook_that_imports_careops(tmp_path: Path) -> None:
    """Both ways green, and the kernel nbgrader starts is the course's Python (it imports careops)."""
    h = fixture_harness("good", tmp_path)
    solution, learner = h.solution_run(), h.learner_run()
    assert H.check_solution_full_marks(solution.result) == []
    assert H.check_solution_runs_cleanly(solution.result) == []
    assert H.check_learner_zero(learner.result) == []
    assert solution.result.score == solution.result.max_score == 3
    assert learner.result.score == 0
    assert [c.grade_id for c in solution.result.cells] == [
        "test_triage_colours", "test_triage_rejects_sensor_faults",
    ]
    # no cell of the solution run raised, the `import careops` setup cell included
    graded = json.loads(solution.result.autograded_notebook("triage").read_text())
    errors = [o for c in graded["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    assert solution.learner_id != learner.learner_id
    assert solution.learner_id.startswith("harness-") and solution.cleanup is not None


@pytest.mark.slow
def test_harness_reports_a_test_that_cannot_fail(tmp_path: Path) -> None:
    learner = fixture_harness("weak-test", tmp_path).learner_run()
    problems = H.check_learner_zero(learner.result)
    assert len(problems) == 1, problems
    assert problems[0].startswith("triage:test_triage_level_defined scored 1/1 on the UNCHANGED learner version")
    assert "(expected 0)" in problems[0]


@pytest.mark.slow
def test_harness_reports_a_failing_solution_with_its_traceback(tmp_path: Path) -> None:
    solution = fixture_harness("broken-solution", tmp_path).solution_run()
    problems = H.check_solution_full_marks(solution.result)
    assert len(problems) == 1, problems
    assert problems[0].startswith("triage:test_triage_colours scored 0/2 on the SOLUTION (expected 2/2)")
    assert "AssertionError" in problems[0]
    assert 'assert triage_level(115, 97) == "amber"' in problems[0]
    raised = H.check_solution_runs_cleanly(solution.result)
    assert raised and all("raised in the SOLUTION run (expected no error)" in p for p in raised), raised


@pytest.mark.slow
def test_generate_failure_is_a_careops_error_with_nbgraders_reason(tmp_path: Path) -> None:
    h = fixture_harness("good", tmp_path)
    _edit(h.course.source / "good" / "triage.ipynb",
          lambda cells: _cell(cells, "test_triage_rejects_sensor_faults")["metadata"]["nbgrader"]
          .update(grade_id="test_triage_colours"))
    with pytest.raises(CareOpsError) as err:
        h.released_notebook()
    assert "Duplicate grade id: test_triage_colours" in err.value.message
    assert "notebooks/good/triage.ipynb" in err.value.message
    assert "grade_id" in (err.value.fix or "")
    with pytest.raises(CareOpsError):  # kept, not re-run
        h.released_notebook()


# --- careops release ------------------------------------------------------------------

def _release(course: Course, capsys, *names: str) -> str:
    from careops.apps import release

    assert release.main(assignments=list(names) or None, course_dir=course.root) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_release_generates_registers_and_then_skips_unchanged(tmp_path: Path, capsys) -> None:
    course = make_temp_course(tmp_path, "good", notebooks=[FIXTURES / "good" / "triage.ipynb"])
    (course.source / "empty-module").mkdir()

    out = _release(course, capsys)
    assert "good: released 1 notebook (triage), 2 graded cells (2 autograded), 3 points" in out
    assert "empty-module: no notebooks yet" in out
    released = course.release / "good" / "triage.ipynb"
    text = released.read_text()
    assert "raise NotImplementedError()" in text and "BEGIN SOLUTION" not in text
    assert "HIDDEN TESTS" not in text and "triage_level(140, 99)" not in text

    # nbgrader used the course config: course id, gradebook location, assignment registered
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, COURSE_ID) as gb:
        assignment = gb.find_assignment("good")
        assert assignment.course_id == COURSE_ID
        assert [nb.name for nb in assignment.notebooks] == ["triage"]
        assert assignment.max_score == 3

    start = time.monotonic()
    out = _release(course, capsys)
    assert time.monotonic() - start < 2
    assert "good: unchanged, 1 notebook (triage), 2 graded cells (2 autograded), 3 points" in out

    _edit(course.source / "good" / "triage.ipynb",
          lambda cells: cells[0]["source"].append("\n\nNew: the thresholds follow NEWS2."))
    out = _release(course, capsys, "good")
    assert "good: released" in out
    assert "NEWS2" in released.read_text()

    shutil.rmtree(course.release / "good")  # a lost release is regenerated even if sources did not change
    assert "good: released" in _release(course, capsys)


@pytest.mark.slow
def test_release_explains_nbgrader_failures(tmp_path: Path, capsys) -> None:
    from careops.apps import release

    course = make_temp_course(tmp_path, "good", notebooks=[FIXTURES / "good" / "triage.ipynb"])
    nb = course.source / "good" / "triage.ipynb"

    def unclosed(cells: list[dict]) -> None:
        answer = _cell(cells, "triage_level_answer")
        answer["source"] = "".join(answer["source"]).replace("    ### END SOLUTION", "")

    _edit(nb, unclosed)
    with pytest.raises(CareOpsError) as err:
        release.main(assignments=["good"], course_dir=course.root)
    assert "nbgrader generate_assignment of good failed" in err.value.message
    assert "no end solution" in err.value.message.lower()
    assert "END SOLUTION" in (err.value.fix or "")
    assert "good: FAILED" in capsys.readouterr().out
    assert not (course.release / "good").exists()


def test_release_rejects_a_solution_that_is_not_python(tmp_path: Path) -> None:
    from careops.apps import release

    course = make_temp_course(tmp_path, "good", notebooks=[FIXTURES / "good" / "triage.ipynb"])

    def typo(cells: list[dict]) -> None:
        answer = _cell(cells, "triage_level_answer")
        answer["source"] = "".join(answer["source"]).replace('return "amber"', 'return "amber')

    _edit(course.source / "good" / "triage.ipynb", typo)
    with pytest.raises(CareOpsError) as err:
        release.main(assignments=None, course_dir=course.root)
    msg = err.value.message
    assert "expected every solution cell to be valid Python" in msg
    assert "notebooks/good/triage.ipynb cell 3 (triage_level_answer) line 12: unterminated string" in msg


def test_release_names_unknown_assignments(tmp_path: Path) -> None:
    from careops.apps import release

    course = make_temp_course(tmp_path, "good", notebooks=[FIXTURES / "good" / "triage.ipynb"])
    with pytest.raises(CareOpsError, match=r"unknown assignment 01-ci: expected folders .*\(there are: good\)"):
        release.main(assignments=["01-ci"], course_dir=course.root)


# --- lab cleanup after a graded run -------------------------------------------------

@pytest.mark.docker
@pytest.mark.parametrize("prefer_cli", [True, False], ids=["careops-labs-reset", "docker-sdk"])
def test_cleanup_removes_the_graded_runs_lab_resources(prefer_cli: bool) -> None:
    import docker

    from careops.grading.cleanup import LEARNER_LABEL, remove_learner_labs

    learner = H.new_learner_id("harness-selftest")
    other = H.new_learner_id("harness-selftest")
    client = docker.from_env()

    def labels(who: str) -> dict[str, str]:
        return {"org.careops.managed": "true", "org.careops.lab": "selftest", LEARNER_LABEL: who}

    made = [
        client.networks.create(f"careops-{learner}-net", labels=labels(learner)),
        client.volumes.create(f"careops-{learner}-vol", labels=labels(learner)),
    ]
    keep = client.volumes.create(f"careops-{other}-vol", labels=labels(other))
    try:
        report = remove_learner_labs(learner, prefer_cli=prefer_cli)
        assert report.problems == []
        assert report.method == ("careops labs reset" if prefer_cli else "docker SDK")
        flt = {"label": f"{LEARNER_LABEL}={learner}"}
        assert client.networks.list(filters=flt) == [] and client.volumes.list(filters=flt) == []
        keep.reload()  # another learner's resources stay
    finally:
        for r in [*made, keep]:
            try:
                r.remove()
            except docker.errors.NotFound:
                pass
        client.close()


def test_cleanup_refuses_a_pattern_for_a_learner_id() -> None:
    from careops.grading.cleanup import remove_learner_labs

    with pytest.raises(ValueError, match="expected one exact id"):
        remove_learner_labs("")
    with pytest.raises(ValueError):
        remove_learner_labs(f"harness-{uuid.uuid4().hex[:4]}*")
