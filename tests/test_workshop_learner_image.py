"""careops/learner holds what a learner may see and nothing else: no solution, no hidden test, no labs/*/solution.

The image's whole file system is read through ``docker export`` (every layer's
result, as a learner's server would see it) and searched for:

* the source notebooks' ``### BEGIN SOLUTION`` and ``### BEGIN HIDDEN TESTS``
  blocks: every distinctive hidden-test line anywhere; every solution block
  (and every file of labs/*/solution*) copied into one file, even in part;
* the files of labs/*/solution* by content (renamed copies too) and any path
  named like them;
* any notebook other than the released ones, and nbgrader's markers in notebooks.

"Distinctive": at least 20 characters, not an import, and not in the released
notebooks (lines the learner is given on purpose, such as a function's
signature). Single shared lines are not a copy of a solution: the toolkit
legitimately contains e.g. ``strategy:`` or an age computation; a reference
implementation in other words is issue 21's (answers out of the learner's reach).
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from careops import engine
from careops.images import ensure_images
from careops.images.catalog import LEARNER_ASSETS, LEARNER_IMAGE

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[1]
MARKERS = {"### BEGIN SOLUTION": "solution", "### BEGIN HIDDEN TESTS": "hidden tests"}
MIN_LINE = 20
#: A file holding this share of a solution block's distinctive lines (and at least two) holds a copy of it.
COPY_SHARE = 0.5
MAX_FILE = 4 * 1024 * 1024


def _cells(nb_path: Path) -> list[str]:
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in json.loads(nb_path.read_text())["cells"]]


def _released_lines() -> set[str]:
    return {line.strip() for nb in (REPO / "build" / "release").glob("*/*.ipynb") for src in _cells(nb)
            for line in src.splitlines()}


def _distinctive(line: str, given: set[str]) -> bool:
    s = line.strip()
    return len(s) >= MIN_LINE and s not in given and not re.match(r"^(from\s+\S+\s+)?import\s", s)


def secret_blocks() -> list[tuple[str, str, list[str]]]:
    """(where, kind, distinctive lines) of every solution / hidden-test block and every labs/*/solution* file."""
    given = _released_lines()
    blocks = []
    for nb in sorted((REPO / "notebooks").glob("*/*.ipynb")):
        for n, src in enumerate(_cells(nb)):
            kind, lines = None, []
            for line in src.splitlines():
                s = line.strip()
                if s in MARKERS:
                    kind, lines = MARKERS[s], []
                elif s.startswith("### END") and kind:
                    blocks.append((f"{nb.relative_to(REPO)} cell {n}", kind, [x for x in lines if _distinctive(x, given)]))
                    kind = None
                elif kind:
                    lines.append(s)
    for f in solution_files():
        text = f.read_text(errors="replace")
        blocks.append((str(f.relative_to(REPO)), "solution file",
                       [x.strip() for x in text.splitlines() if _distinctive(x, given)]))
    return [b for b in blocks if b[2]]


def solution_files() -> list[Path]:
    """Every answer file: the grader's references (grading/references/, where labs/*/solution* moved) and any
    labs/*/solution* that comes back."""
    found = [f for f in sorted((REPO / "grading" / "references").rglob("*")) if f.is_file() and f.name != "README.md"]
    for p in sorted((REPO / "labs").glob("*/solution*")):
        found += [p] if p.is_file() else [f for f in sorted(p.rglob("*")) if f.is_file()]
    return found


@pytest.fixture(scope="module")
def image_files(image_filesystem: Any) -> dict[str, bytes]:
    """Every regular file of the learner image up to MAX_FILE bytes, by path (no leading slash)."""
    from careops.apps import release

    release.main(assignments=None)  # the learner image copies build/release; unchanged assignments are skipped
    ensure_images(["learner"], progress=False)
    files = image_filesystem(LEARNER_IMAGE, MAX_FILE)
    assert any(p.endswith("careops/__init__.py") for p in files), "the export holds no careops toolkit: not the image"
    return files


def _text(data: bytes) -> str | None:
    return None if b"\0" in data[:8192] else data.decode("utf-8", errors="replace")


def answers_in(files: dict[str, bytes], blocks: list[tuple[str, str, list[str]]]) -> list[str]:
    """Where ``files`` hold a hidden-test line or (a large part of) a solution block."""
    found = []
    for path, data in files.items():
        text = _text(data)
        if text is None:
            continue
        lines = {x.strip() for x in text.splitlines()}
        for where, kind, secret in blocks:
            hits = [x for x in secret if x in lines]
            if kind == "hidden tests" and hits:
                found.append(f"/{path} holds hidden-test line(s) of {where}: {hits[:3]}")
            elif hits and len(hits) >= 2 and len(hits) >= COPY_SHARE * len(secret):
                found.append(f"/{path} holds {len(hits)}/{len(secret)} lines of the {kind} in {where}: {hits[:3]}")
    return found


def test_the_search_finds_a_planted_solution_and_hidden_test_but_not_the_released_notebooks() -> None:
    """The detector itself (no engine): what the image test relies on."""
    blocks = secret_blocks()
    solution = next(b for b in blocks if b[1] == "solution" and len(b[2]) >= 4)
    hidden = next(b for b in blocks if b[1] == "hidden tests")
    planted = {"opt/x/helper.py": ("def f():\n    " + "\n    ".join(solution[2][: len(solution[2]) // 2 + 1])).encode(),
               "opt/x/check.py": ("    " + hidden[2][0] + "\n").encode()}
    released = {f"opt/careops-course/release/{p.parent.name}/{p.name}": p.read_bytes()
                for p in (REPO / "build" / "release").glob("*/*.ipynb")}
    assert released, "expected build/release (careops release)"
    found = answers_in(planted | released, blocks)
    assert any(f.startswith("/opt/x/helper.py") and solution[0] in f for f in found), found
    assert any(f.startswith("/opt/x/check.py") and "hidden-test" in f for f in found), found
    assert not any("careops-course/release" in f for f in found), found


def test_no_hidden_test_line_and_no_copy_of_a_solution_anywhere_in_the_image(image_files: dict[str, bytes]) -> None:
    blocks = secret_blocks()
    assert sum(1 for b in blocks if b[1] == "hidden tests") >= 5, "expected the notebooks' hidden tests to search for"
    assert sum(1 for b in blocks if b[1] == "solution") >= 20, "expected the notebooks' solutions to search for"
    found = answers_in(image_files, blocks)
    assert not found, "the learner image holds answers:\n" + "\n".join(found)


def test_no_labs_solution_file_by_name_or_content(image_files: dict[str, bytes]) -> None:
    shas = {hashlib.sha256(f.read_bytes()).hexdigest(): f for f in solution_files()}
    assert shas, "expected labs/*/solution* files to look for"
    by_content = [f"/{p} is {shas[h].relative_to(REPO)}" for p, d in image_files.items()
                  if (h := hashlib.sha256(d).hexdigest()) in shas and len(d) > 64]
    course = ("opt/careops-assets/", "opt/careops-course/", "home/")
    by_name = [f"/{p}" for p in image_files if p.startswith(course) and re.search(r"(^|/)solution", p)]
    assert not by_content and not by_name, "labs solutions in the learner image:\n" + "\n".join(by_content + by_name)


def test_the_only_notebooks_are_the_released_ones_without_nbgrader_markers(image_files: dict[str, bytes]) -> None:
    release = REPO / "build" / "release"
    released = {f"opt/careops-course/release/{p.relative_to(release).as_posix()}": p.read_bytes()
                for p in release.glob("*/*.ipynb")}
    notebooks = {p: d for p, d in image_files.items() if p.endswith(".ipynb") and "/site-packages/" not in p}
    assert set(notebooks) == set(released), "notebooks other than the released ones: " + ", ".join(
        sorted(set(notebooks) ^ set(released)))
    assert all(notebooks[p] == released[p] for p in released), "the image's notebooks differ from build/release"
    marked = [p for p, d in image_files.items() if p.endswith(".ipynb") and any(m.encode() in d for m in MARKERS)]
    assert not marked, f"notebooks with nbgrader's solution/hidden-test markers: {marked}"
    assert not any(p.startswith(("opt/careops-course/notebooks", "home/jovyan/notebooks")) for p in image_files)


def test_the_lab_assets_are_exactly_the_allowed_list(image_files: dict[str, bytes]) -> None:
    assets = sorted(p[len("opt/careops-assets/"):] for p in image_files if p.startswith("opt/careops-assets/"))
    expected = sorted(
        str(f.relative_to(REPO / "labs")) for rel in LEARNER_ASSETS
        for f in ([REPO / "labs" / rel] if (REPO / "labs" / rel).is_file() else sorted((REPO / "labs" / rel).rglob("*")))
        if f.is_file() and "__pycache__" not in f.parts)
    assert assets == expected
    assert not any("solution" in a for a in LEARNER_ASSETS)


def test_singleuser_matches_the_hubs_jupyterhub_and_the_learner_is_uid_1000() -> None:
    import jupyterhub

    cl = engine.client()
    out = cl.containers.run(LEARNER_IMAGE, ["sh", "-c", "jupyterhub-singleuser --version; id -u; echo $HOME"],
                            entrypoint=[], network_mode="none", remove=True).decode().split()
    assert out == [jupyterhub.__version__, "1000", "/home/jovyan"]
    inspect = cl.api.inspect_image(LEARNER_IMAGE)
    assert inspect["Config"]["User"] == "1000:1000"
    assert not any("docker.sock" in str(v) for v in (inspect["Config"].get("Volumes") or {}))


def test_without_a_release_the_build_fails_with_the_step_to_run() -> None:
    """No build/release: the learner image is not built without notebooks; the error names `careops release`."""
    import dataclasses

    from careops.errors import ImageBuildError
    from careops.images.build import ensure_spec
    from careops.images.catalog import find

    spec = dataclasses.replace(find("learner"), extra_context=(("build/no-such-release", "release"),))
    with pytest.raises(ImageBuildError) as err:
        ensure_spec(engine.client(), spec, parents={"workshop-base": None}, root=REPO, progress=False)
    assert "build/no-such-release" in err.value.message and "careops release" in (err.value.fix or "")
