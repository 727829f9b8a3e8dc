"""careops.grading.references: the answers load only where they live, and a hand-in that reaches for them is found.

The end-to-end proof (a hand-in importing a reference scores 0 in the real sandbox, with its reason) is in
tests/test_grade_adversarial_batch.py and tests/test_grade_modules.py; the search of the toolkit wheel, the grader
image and the learner copy for answer lines is at the bottom of this file.
"""
from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any

import pytest

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)

from careops.errors import CareOpsError
from careops.grading import references as R
from careops.grading.restore import restore


def uses(code: str) -> list[str]:
    return R.find_uses(ast.parse(code))


def test_imports_names_and_paths_of_references_are_found() -> None:
    assert uses("from careops.checks.ci_pipeline import _reference_change_record as change_record") == [
        "from careops.checks.ci_pipeline import _reference_change_record"]
    assert uses("import careops.grading.references as r\nx = r.load('ci_pipeline')") == [
        "import careops.grading.references"]
    assert uses("from careops.checks import safe_deployments as c\nrows = c.recorded.GRADED_ROWS") == [".GRADED_ROWS"]
    assert uses("text = open('../../notebooks/00-orientation/orientation.ipynb').read()")[0].startswith("reads ")
    assert uses("get_ipython().system('cat /work/grading/references/ci_pipeline.py')")[0].startswith("reads ")
    assert uses("import importlib\nm = importlib.import_module('careops.grading.references')")[0].startswith("the string")
    assert uses("y = open('build/gradebook.db', 'rb').read()")[0].startswith("reads ")
    # honest code names none of them
    assert uses("import pandas as pd\ndef change_record(frame):\n    return frame[frame.action == 'x']") == []
    assert uses("from careops.checks import ci_pipeline as check\ncheck.change_record(f)") == []
    assert uses("path = 'workspace/00-orientation/notes.txt'") == []


def _answer(nb: dict[str, Any], grade_id: str, text: str) -> dict[str, Any]:
    B.set_source(nb, grade_id, text)
    return nb


def test_the_exercise_that_relies_on_a_reference_scores_zero_and_only_that_one(orientation_source: dict,
                                                                               orientation_release: dict) -> None:
    source = orientation_source
    nb = B.answered(orientation_release, source, "is_synthetic", "triage_probe_spec", "leaked_names")
    _answer(nb, "leaked_names", "import careops.grading.references as _r\nleaked_names = _r.load('orientation')")
    zero = R.exercises_using_references(restore(source, nb).notebook)
    assert list(zero) == ["test_leaked_names"]
    assert zero["test_leaked_names"].startswith("cell leaked_names uses the course's reference answers "
                                                "(import careops.grading.references")


def test_taint_follows_names_through_cells_and_an_honest_redefinition_clears_it(orientation_source: dict,
                                                                                orientation_release: dict) -> None:
    source = orientation_source
    nb = B.answered(orientation_release, source, "is_synthetic", "triage_probe_spec", "leaked_names")
    cheat = "answers = open('../../notebooks/00-orientation/orientation.ipynb').read()\n"
    B.add_after(nb, "is_synthetic", cheat)  # an extra cell binds `answers` from the source notebook
    uses_it = "def leaked_names(table, lab):\n    return sorted(answers.split()[:2])\n"
    zero = R.exercises_using_references(restore(source, _answer(copy.deepcopy(nb), "leaked_names", uses_it)).notebook)
    # the exercise the read sits in (the next test) and the exercise whose answer relies on what it read
    assert list(zero) == ["test_is_synthetic", "test_leaked_names"]
    assert "reads '../../notebooks/00-orientation" in zero["test_leaked_names"]
    # the same extra cell, but every answer does its own work: only the exercise the read sits in pays
    zero = R.exercises_using_references(restore(source, nb).notebook)
    assert list(zero) == ["test_is_synthetic"]
    honest = "answers = None\n"  # redefined honestly before the answer uses it: the taint is gone
    B.add_after(nb, "triage_probe_spec", honest)
    zero = R.exercises_using_references(restore(source, _answer(nb, "leaked_names", uses_it)).notebook)
    assert list(zero) == ["test_is_synthetic"]


def test_a_reference_module_loads_on_the_instructors_host_and_nowhere_else(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    module = R.load("ci_pipeline")
    assert callable(module.change_record) and R.load("ci_pipeline") is module
    assert R.reference_file("safe-deployments/blue-green.yaml").read_text().startswith("apiVersion")
    monkeypatch.setenv(R.REFERENCES_ENV, str(tmp_path / "none"))
    with pytest.raises(CareOpsError, match="live only on the instructor's host"):
        R.load("ci_pipeline")
    with pytest.raises(CareOpsError, match="the reference file"):
        R.reference_file("safe-deployments/blue-green.yaml")
    with pytest.raises(CareOpsError, match="no reference module"):
        R.load("../ci_pipeline")


# -- no answer where a learner or the sandbox can reach it ------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
#: lines of the answers that are also somewhere a learner may see, on purpose, each with its reason
PUBLIC_ON_PURPOSE = {
    '"p95_ms": 10.0, "side_by_side_seconds": 0.05},': "the same numbers are a practice row's answer (blue/green)",
    '"p95_ms": 10.0, "side_by_side_seconds": 0.0},': "the same numbers are a practice row's answer (stop-and-replace)",
    "apiVersion: argoproj.io/v1alpha1": "the rollout spec's format, documented by careops.rollout.spec",
    "image: careops/legacy-adt:v2": "the release the notebook tells learners to deploy",
    "autoPromotionEnabled: true": "the rollout spec's format, documented by careops.rollout.spec",
    "prePromotionAnalysis:": "the rollout spec's format, documented by careops.rollout.spec",
    "activeService: router": "the rollout spec's format, documented by careops.rollout.spec",
    '"resourceType": "Patient",': "FHIR's own field (careops.synth's FHIR writer, fhir.resources)",
    "before_birthday = (b.dt.month > as_of.month) | ((b.dt.month == as_of.month) & (b.dt.day > as_of.day))":
        "careops.synth's own age rule (completed years), which exercise 2b's task states in words",
    "age = as_of.year - b.dt.year - before_birthday.astype(int)":
        "careops.synth's own age rule (completed years), which exercise 2b's task states in words",
    'ENTRYPOINT ["tini", "--"]': "every course image starts this way",
    "PYTHONUNBUFFERED=1 \\": "every course image sets it",
    "ack = client.send(message)": "the MLLP client's own use (careops.hl7.send_batches)",
    "with MllpClient(host, port, timeout=10) as client:": "the MLLP client's own use (careops.monitoring's probe)",
}
#: the v2 release module 3 deploys is built from labs/legacy-adt/v2/Dockerfile, a working Dockerfile of the service
#: module 2 containerizes; the image's own history shows it too. Its lines are public on purpose (README: known).
V2_DOCKERFILE = REPO / "labs" / "legacy-adt" / "v2" / "Dockerfile"
#: the starter workflow of module 1 is the learner's starting point: what it shares with the reference is given
STARTER_WORKFLOW = REPO / "labs" / "ci-pipeline" / "starter-ci.yml"
#: the template repo of module 1 ships a Dockerfile the pipeline builds (not module 2's exercise)
TEMPLATE_DOCKERFILE = REPO / "labs" / "ci-pipeline" / "repo-template" / "Dockerfile"
#: the course's own Dockerfile policy is given to learners (module 2 checks their work against it); the Rego rule
#: they write shares its idioms (``some i in input.instructions``), not its rules
COURSE_POLICY = REPO / "labs" / "containerize" / "policy" / "dockerfile.rego"


def _solution_lines(nb: dict[str, Any]) -> list[str]:
    out, inside = [], False
    for cell in nb["cells"]:
        for line in "".join(cell["source"]).splitlines():
            if "### BEGIN SOLUTION" in line:
                inside = True
            elif "### END SOLUTION" in line:
                inside = False
            elif inside:
                out.append(line.strip())
    return out


def answer_lines(release: Path, min_length: int = 24) -> dict[str, str]:
    """line -> where it comes from: the source notebooks' hidden tests and solutions and every file of
    grading/references, stripped, at least ``min_length`` long; import lines (they name no answer) and lines the
    learner versions in ``release`` show anyway (the given part of an artifact cell) left out."""
    import json

    found: dict[str, str] = {}

    def add(line: str, where: str) -> None:
        if len(line) >= min_length and not line.startswith(("import ", "from ")):
            found.setdefault(line, where)

    for path in sorted(REPO.glob("notebooks/*/*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for line in B.hidden_test_lines(nb, min_length):
            add(line, f"a hidden test of {path.parent.name}")
        for line in _solution_lines(nb):
            add(line, f"the solution of {path.parent.name}")
    for path in sorted((REPO / R.REFERENCES_DIR).rglob("*")):
        if path.is_file() and path.name != "README.md":
            for line in path.read_text(encoding="utf-8").splitlines():
                add(line.strip(), f"{path.relative_to(REPO)}")
    public = set(PUBLIC_ON_PURPOSE)
    for path in (V2_DOCKERFILE, STARTER_WORKFLOW, TEMPLATE_DOCKERFILE, COURSE_POLICY):
        public |= {ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()}
    for path in sorted(release.glob("*/*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        public |= {ln.strip() for c in nb["cells"] for ln in "".join(c["source"]).splitlines()}
    return {line: where for line, where in found.items() if line not in public}


def _leaks(files: Any, needles: dict[str, str]) -> list[str]:
    """``files`` yields (name, bytes); the answer lines found in them, each with the file and where it is from."""
    import json

    leaks = []
    for name, data in files:
        if b"\0" in data[:1024]:
            continue  # binary
        text = data.decode("utf-8", "replace")
        lines = text.splitlines()
        if name.endswith(".ipynb"):
            try:
                nb = json.loads(text)
                lines = [ln for c in nb.get("cells", []) for ln in "".join(c.get("source", "")).splitlines()]
            except ValueError:
                pass
        for line in lines:
            if line.strip() in needles:
                leaks.append(f"{name}: {line.strip()[:90]!r} ({needles[line.strip()]})")
    return leaks


def test_the_answer_lines_are_many_and_reach_every_module(released_course: Any) -> None:
    needles = answer_lines(released_course.release)
    assert len(needles) > 300
    modules = {p.parent.name for p in REPO.glob("notebooks/*/*.ipynb")}
    assert len(modules) >= 6
    assert {w.split(" of ")[-1] for w in needles.values() if " of 0" in w} == modules


def test_the_installed_toolkit_wheel_holds_no_answer(released_course: Any) -> None:
    """The wheel the grader image and a learner's environment install (built as the images build it)."""
    import zipfile

    from careops.images.wheelhouse import build_local_wheel

    wheel, _sha = build_local_wheel(REPO, progress=False)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert not [n for n in names if "solution" in n or n.startswith("grading/") or "/references/" in n]
        leaks = _leaks(((n, zf.read(n)) for n in names if not n.endswith("/")), answer_lines(released_course.release))
    assert leaks == [], "\n".join(leaks)


@pytest.mark.slow
def test_the_learner_copy_holds_no_answer(learner_tree: Any, released_course: Any) -> None:
    root = learner_tree.folder
    files = ((p.relative_to(root).as_posix(), p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file())
    leaks = _leaks(files, answer_lines(released_course.release))
    assert leaks == [], "\n".join(leaks)


@pytest.mark.docker
@pytest.mark.slow
def test_the_grader_sandbox_image_holds_no_answer(released_course: Any, image_filesystem: Any) -> None:
    """Every file of careops/grader (built from this checkout): no answer line, no reference or solution file."""
    from careops.images import GRADER_IMAGE, ensure_images

    ensure_images(["grader"], progress=False)
    image = image_filesystem(GRADER_IMAGE)
    assert not [p for p in image if "grading/references/" in p or ("/solution" in p and "careops" in p)]
    assert not [p for p in image if p.startswith("opt/careops-assets/") and "solution" in p]
    files = [(p, d) for p, d in sorted(image.items()) if p.startswith(("opt/", "home/")) or "careops" in p]
    leaks = _leaks(files, answer_lines(released_course.release))
    assert leaks == [], "\n".join(leaks)
