"""Use the course as a learner does: `make lab`, then every module in JupyterLab in Chromium.

One JupyterLab serves every test of this file (a session fixture). It is started
exactly as a learner starts it -- ``make lab NO_BROWSER=1 PORT=<free port>`` from
the repo root -- so the preparation (venv, engine, images, release, workspace
sync) is part of what is tested. On a cold machine that takes minutes, hence
the long timeouts.

Development switch: ``CAREOPS_BROWSER_LAUNCH=direct`` skips the venv and the
engine: it runs this Python's ``careops release``, ``careops images build``,
``careops workspace sync`` and ``careops jupyter --no-browser --port N`` (use it
in a worktree without a .venv of its own, or to iterate on the browser steps).

The orientation test runs the first cells of workspace/00-orientation (the
learner's own copy, restored afterwards). Each module test opens a fresh copy
of the module's learner version (workspace/browser-test-<id>/, removed at the
end), runs an exercise with a wrong answer and then the right one, the
module's pipeline, build or deployment cells and its plot cells, and asserts in
the page what a learner must see:

* a check cell shows its report exactly once, with no ``Traceback`` and no
  ``careops/checks`` path;
* every plot cell shows an ``<img>``;
* pipeline, build and deployment cells write nothing to stderr (no red boxes).

Screenshots of every module go to build/screenshots/ (the orientation test's
to build/test-output/browser/).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "build" / "test-output" / "browser"
SCREENSHOTS = REPO / "build" / "screenshots"
NOTEBOOK = "00-orientation/orientation.ipynb"
#: The first code cells: load careops (prints that it is ready), then the preflight.
FIRST_CODE_CELLS = 2
#: `make lab` on a cold machine installs the engine and builds images first.
START_TIMEOUT = 15 * 60
#: The preflight starts a real container and tries its limits; a deployment runs 20 s of traffic.
CELL_TIMEOUT_MS = 5 * 60 * 1000
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402 - the one Chromium and its flags
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(START_TIMEOUT + 10 * 60)]


@dataclass
class LabServer:
    base_url: str
    token: str
    workspace: Path
    log: Path
    release: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _launch_command(port: int) -> list[str]:
    if os.environ.get("CAREOPS_BROWSER_LAUNCH") == "direct":
        careops = shlex_join([str(Path(sys.executable).parent / "careops")])
        return ["bash", "-c", f"{careops} release && {careops} images build && {careops} workspace sync && "
                              f"exec {careops} jupyter --no-browser --port {port}"]
    return ["make", "lab", "NO_BROWSER=1", f"PORT={port}"]


def shlex_join(parts: list[str]) -> str:
    import shlex

    return shlex.join(parts)


@pytest.fixture(scope="session")
def lab() -> Iterator[LabServer]:
    """JupyterLab started as `make lab` starts it, once for every test here; always stopped afterwards."""
    OUT.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = dict(os.environ)
    if os.environ.get("CAREOPS_BROWSER_LAUNCH") == "direct":
        env["CAREOPS_HOME"] = str(REPO)
    else:
        # As a learner types it: no CAREOPS_HOME, and no flags of an outer `make test`.
        for var in ("CAREOPS_HOME", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
            env.pop(var, None)
    cmd = _launch_command(port)
    state_file = REPO / "build" / "jupyter.json"
    log = OUT / "lab.log"
    notebook = REPO / "workspace" / NOTEBOOK
    before = notebook.read_bytes() if notebook.is_file() else None

    with log.open("w") as log_fh:
        log_fh.write(f"$ {' '.join(cmd)}   (cwd {REPO})\n")
        log_fh.flush()
        # Own session: the whole group (make, careops, jupyter, kernels' parent) is stopped together.
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True)
    state: dict[str, object] = {}
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"`{' '.join(cmd)}` exited with {proc.returncode} before JupyterLab was up:\n{_tail(log)}")
            try:
                state = json.loads(state_file.read_text())
            except (OSError, ValueError):
                state = {}
            if state.get("port") == port:
                break
            time.sleep(1)
        else:
            pytest.fail(f"JupyterLab not up after {START_TIMEOUT} s ({state_file} missing):\n{_tail(log)}")
        assert "CareOps Labs is running" in log.read_text(), "the learner must be told the URL"
        yield LabServer(str(state["base_url"]), str(state["token"]), REPO / "workspace", log,
                        REPO / "build" / "release")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        server_pid = state.get("pid")
        if isinstance(server_pid, int):
            try:
                os.kill(server_pid, signal.SIGKILL)  # only if it somehow survived its group
            except ProcessLookupError:
                pass
        # Running cells may have autosaved the notebook: leave the workspace as we found it.
        if before is not None and notebook.is_file() and notebook.read_bytes() != before:
            notebook.write_bytes(before)
    assert _port_free(port), f"JupyterLab still holds port {port} after the test"


@pytest.fixture(scope="session")
def browser(playwright_session: Any) -> Iterator[Any]:
    """One headless Chromium (Debian's) with its own profile for every test of the course's JupyterLab."""
    with tempfile.TemporaryDirectory(prefix="careops-chromium-") as profile:
        ctx = playwright_session.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        try:
            yield ctx
        finally:
            ctx.close()


def _cell_summary(cell: Locator) -> str:
    return cell.evaluate(
        "c => c.querySelector('.jp-InputArea-editor')?.innerText.slice(0, 120) ?? ''"
    )


def _open(page: Page, lab: LabServer, path: str) -> Locator:
    """Open a notebook (ignoring any saved layout) and wait for its kernel; returns the notebook panel."""
    from playwright.sync_api import expect

    page.goto(f"{lab.base_url}lab/tree/{path}?reset&token={lab.token}", timeout=120_000)
    panel = page.locator(".jp-NotebookPanel:visible").first
    expect(panel).to_be_visible(timeout=120_000)
    # The kernel is up when the toolbar's indicator and the status bar both say idle.
    expect(panel.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute("data-status", "idle", timeout=120_000)
    expect(page.locator("#jp-main-statusbar")).to_contain_text("Idle", timeout=120_000)
    # Our kernel spec: this environment's Python, which can import careops.
    expect(panel.locator(".jp-KernelName")).to_contain_text("CareOps Labs")
    return panel


def test_orientation_first_cells_run_in_the_browser(lab: LabServer, browser: Any) -> None:
    from playwright.sync_api import expect

    assert (lab.workspace / NOTEBOOK).is_file(), f"`make lab` did not put {NOTEBOOK} into workspace/"
    started = time.monotonic()
    console: list[str] = []
    page = browser.new_page()
    try:
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        panel = _open(page, lab, NOTEBOOK)
        page.screenshot(path=str(OUT / "01-opened.png"), full_page=True)

        cells = panel.locator(".jp-Notebook .jp-Cell")
        classes = [cells.nth(i).get_attribute("class") or "" for i in range(cells.count())]
        code = [i for i, c in enumerate(classes) if "jp-CodeCell" in c][:FIRST_CODE_CELLS]
        assert len(code) == FIRST_CODE_CELLS, f"expected {FIRST_CODE_CELLS} code cells in {NOTEBOOK}, got {len(code)}"

        # Like a learner: click the first cell, then Shift+Enter down to the last code cell we want.
        cells.first.locator(".jp-InputPrompt").click()
        for i in range(code[-1] + 1):
            expect(cells.nth(i)).to_have_class(re.compile(r"\bjp-mod-active\b"))
            page.keyboard.press("Shift+Enter")
            if i in code:
                prompt = cells.nth(i).locator(".jp-InputArea-prompt")
                expect(prompt).to_have_text(re.compile(r"^\[\d+\]:$"), timeout=CELL_TIMEOUT_MS)
                cells.nth(i).evaluate("c => c.scrollIntoView({block: 'start'})")
                page.wait_for_timeout(300)
                shot = OUT / f"{2 + code.index(i):02d}-code-cell-{code.index(i) + 1}.png"
                page.screenshot(path=str(shot), full_page=True)

        problems, texts = [], []
        for n, i in enumerate(code, start=1):
            outputs = cells.nth(i).locator(".jp-OutputArea-output")
            text = "\n".join(outputs.all_inner_texts())
            texts.append(text)
            # Errors render as stderr text with a traceback; warnings are stderr without one.
            stderr = "\n".join(cells.nth(i).locator(STDERR).all_inner_texts())
            if "Traceback" in stderr or re.search(r"^\w*(Error|Exception)\b", stderr, re.M):
                problems.append(f"code cell {n} ({_cell_summary(cells.nth(i))!r}) failed:\n{stderr[-2000:]}")
            elif stderr.strip():
                warnings.warn(f"code cell {n} wrote to stderr (learners see it in red):\n{stderr[-500:]}")
        assert not problems, "\n\n".join(problems)
        assert texts[0].strip(), "the first code cell printed nothing (expected 'careops ... is ready')"
        assert "careops" in texts[0].lower(), f"unexpected first output: {texts[0]!r}"
        assert all(t.strip() for t in texts), f"a run cell showed no output: {texts!r}"
    finally:
        _shutdown_kernels(lab, NOTEBOOK)
        page.close()
    (OUT / "console-errors.txt").write_text("\n".join(console))
    print(f"browser part took {time.monotonic() - started:.1f} s; screenshots in {OUT}", file=sys.stderr)


# -- every module, as a learner works through it -----------------------------------------------

def _api(lab: LabServer, method: str, path: str) -> Any:
    req = urllib.request.Request(f"{lab.base_url}{path}", method=method,
                                 headers={"Authorization": f"token {lab.token}"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = resp.read()
    return json.loads(body) if body else None


def _shutdown_kernels(lab: LabServer, path_part: str) -> None:
    """Shut the kernels of notebooks under ``path_part`` down: a kernel that exits closes its labs (atexit)."""
    for session in _api(lab, "GET", "api/sessions") or []:
        if path_part in str(session.get("path", "")):
            _api(lab, "DELETE", f"api/sessions/{session['id']}")


@dataclass
class Learner:
    """Works through one notebook in JupyterLab with the keyboard, as a learner does."""

    page: Page
    panel: Locator
    grade_ids: list[str]
    module: str
    #: the kernel's execution count after the last cell run here
    count: int = 0
    at: int = 0
    shots: int = 0
    seen: dict[str, list[str]] = field(default_factory=dict)

    @property
    def cell(self) -> Locator:
        return self.panel.locator(".jp-Notebook .jp-Cell.jp-mod-active")

    def go(self, grade_id: str) -> Locator:
        """Select the cell ``grade_id`` (command mode, arrow keys: cells far away are rendered on the way)."""
        from playwright.sync_api import expect

        target = self.grade_ids.index(grade_id)
        self.page.keyboard.press("Escape")
        key = "ArrowDown" if target > self.at else "ArrowUp"
        for _ in range(abs(target - self.at)):
            self.page.keyboard.press(key)
        self.at = target
        expect(self.cell).to_have_count(1)
        return self.cell

    def write(self, grade_id: str, source: str) -> None:
        """Replace the cell's text, as typing it would (no auto-indent, no auto-closed brackets)."""
        self.go(grade_id)
        self.page.keyboard.press("Enter")  # edit mode
        self.page.keyboard.press("Control+a")
        self.page.keyboard.press("Delete")
        self.page.keyboard.insert_text(source)
        first = self.cell.locator(".jp-InputArea-editor .cm-line").first.inner_text()
        assert first.strip() == source.splitlines()[0].strip(), f"{grade_id} holds {first!r} after typing"
        self.page.keyboard.press("Escape")

    def run(self, grade_id: str, *, timeout_ms: int = CELL_TIMEOUT_MS) -> Locator:
        """Run the cell (Ctrl+Enter) and wait until it finished; returns it."""
        from playwright.sync_api import expect

        cell = self.go(grade_id)
        self.page.keyboard.press("Control+Enter")
        self.count += 1
        expect(cell.locator(".jp-InputArea-prompt")).to_have_text(f"[{self.count}]:", timeout=timeout_ms)
        expect(self.panel.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute("data-status", "idle",
                                                                                        timeout=timeout_ms)
        return cell

    def shot(self, name: str) -> None:
        """A screenshot of the page with the current cell at the top of the notebook."""
        self.cell.evaluate("c => c.scrollIntoView({block: 'start'})")
        self.page.wait_for_timeout(400)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        self.page.screenshot(path=str(SCREENSHOTS / f"{self.module}-{self.shots}-{name}.png"))

    def wrong_then_right(self, answer: str, check: str, right: str, *, wrong: str | None = None,
                         label: str) -> list[str]:
        """The exercise ``answer`` as released (or ``wrong``): its check fails; then ``right``: it passes.
        Returns the criteria that failed (a screenshot of them is taken)."""
        if wrong is not None:
            self.write(answer, wrong)
        self.run(answer)
        report = self.check_shown(self.run(check), f"{label}, wrong", passed=False)
        failed = [li.inner_text() for li in report.locator("li").all() if "\u2718" in li.inner_text()]
        self.shot(f"{label}-wrong")
        self.write(answer, right)
        self.run(answer)
        self.check_shown(self.run(check), f"{label}, right", passed=True)
        return failed

    # -- what the page must show --------------------------------------------------------------
    def outputs_text(self, cell: Locator) -> str:
        return "\n".join(cell.locator(".jp-OutputArea-output").all_inner_texts())

    def check_shown(self, cell: Locator, label: str, *, passed: bool) -> Locator:
        """The report once, no traceback, no check source; a failed check ends with its one line."""
        reports = cell.locator(".jp-OutputArea-output:has(.careops-result)")
        text = self.outputs_text(cell)
        assert reports.count() == 1, f"{label}: expected the report once, got {reports.count()}:\n{text[:1500]}"
        assert "Traceback" not in text and "careops/checks" not in text, f"{label}: a traceback:\n{text[:1500]}"
        assert "expected None" not in text, f"{label}: a criterion without an expected value says 'expected None'"
        assert not re.search("[\U0001F000-\U0001FAFF]", text), f"{label}: an emoji (an empty box without an emoji font)"
        failed_line = "criteria not met yet" in text or "not written yet (see the report above)" in text
        assert failed_line != passed, f"{label}: expected it to {'pass' if passed else 'fail'}:\n{text[:1500]}"
        return reports.first

    def plot_shown(self, cell: Locator, label: str) -> None:
        images = cell.locator(".jp-OutputArea-output img")
        assert images.count() >= 1, f"{label}: the figure is not an image:\n{self.outputs_text(cell)[:500]}"
        assert "<Figure size" not in self.outputs_text(cell)

    def no_stderr(self, cell: Locator, label: str) -> None:
        boxes = cell.locator(STDERR)
        said = "\n".join(boxes.all_inner_texts())
        assert boxes.count() == 0, f"{label}: writes to stderr (red boxes):\n{said[:800]}"


def _sources(notebook: Path) -> tuple[list[str], dict[str, str]]:
    """Grade ids of every cell (in order, '' for cells without one) and the source of each."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    ids = [str(c["metadata"].get("nbgrader", {}).get("grade_id", "")) for c in nb["cells"]]
    texts = {i: "".join(c["source"]) for i, c in zip(ids, nb["cells"]) if i}
    return ids, texts


@pytest.fixture
def learner(request: pytest.FixtureRequest, lab: LabServer, browser: Any) -> Iterator[Any]:
    """Open a fresh copy of a module's learner version; ``learner(module)`` returns a Learner and the solutions."""
    folder = f"browser-test-{uuid.uuid4().hex[:8]}"
    pages: list[Any] = []

    def start(module: str) -> tuple[Learner, dict[str, str]]:
        release = next((lab.release / module).glob("*.ipynb"))
        copy = lab.workspace / folder / module / release.name
        copy.parent.mkdir(parents=True)
        shutil.copy(release, copy)
        ids, _ = _sources(copy)
        _, solutions = _sources(REPO / "notebooks" / module / release.name)
        page = browser.new_page()
        pages.append(page)
        panel = _open(page, lab, f"{folder}/{module}/{release.name}")
        page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputPrompt").click()
        return Learner(page, panel, ids, module), solutions

    try:
        yield start
    finally:
        try:
            _shutdown_kernels(lab, folder)
        finally:
            for page in pages:
                page.close()
            shutil.rmtree(lab.workspace / folder, ignore_errors=True)


def test_module_0_orientation(learner: Any) -> None:
    me, solution = learner("00-orientation")
    me.run("setup")
    me.no_stderr(me.run("preflight"), "the preflight")
    me.wrong_then_right("is_synthetic", "test_is_synthetic", solution["is_synthetic"], label="exercise-1")
    # A lenient answer (every lab, unsorted) fails exactly the criteria it breaks, nothing else.
    lenient = 'def leaked_names(table, lab):\n    return table[table["leaked"]]["name"].tolist()\n'
    failed = me.wrong_then_right("leaked_names", "test_leaked_names", solution["leaked_names"], wrong=lenient,
                                 label="exercise-3-lenient")
    assert any("other labs are left alone" in f for f in failed) and any("sorted" in f for f in failed), failed
    assert not any("every leaked resource" in f or "still in use" in f for f in failed), failed


FAILING_TEST = '''%%artifact unit_tests
import adt_service as svc


def test_control_id_is_read():
    msg = "MSH|^~\\\\&|A|B|C|D|20260101||ADT^A01|CTRL-7|P|2.5\\rPID|1||SYN-1"
    assert svc.parse(msg)[1] == "CTRL-8", "parse() returns MSH-10, the control id"
'''


def test_module_1_ci_pipeline(learner: Any) -> None:
    me, solution = learner("01-ci-pipeline")
    me.run("setup")
    # Exercise 1 with a test that fails on the real service: the check names the test and its message.
    me.write("unit_tests", FAILING_TEST)
    me.run("unit_tests")
    cell = me.run("test_unit_tests")
    me.check_shown(cell, "exercise 1 with a failing test", passed=False)
    text = me.outputs_text(cell)
    assert "test_control_id_is_read" in text and "parse() returns MSH-10, the control id" in text, text[:1500]
    assert "0/0" not in text
    me.shot("exercise-1-failing-test")
    for gid in ("unit_tests", "ci_workflow"):
        me.write(gid, solution[gid])
        me.run(gid)
    me.run("ex1-save")
    cell = me.run("run1")  # the pipeline: stops at the PHI gate
    me.no_stderr(cell, "the first pipeline run")
    text = me.outputs_text(cell)
    assert "phi-scan: allow" not in text and text.count("do not weaken the gate") == 1, text[-1500:]
    me.shot("pipeline-stopped-at-the-phi-gate")
    me.wrong_then_right("to_synthetic", "test_to_synthetic", solution["to_synthetic"], label="exercise-3")
    me.no_stderr(me.run("run2"), "the second pipeline run")
    me.write("approve", solution["approve"])
    me.no_stderr(me.run("approve"), "the approval")
    me.shot("pipeline-approved")
    cell = me.run("history")
    me.plot_shown(cell, "the job durations")
    me.shot("history-plot")


def test_module_2_containerize(learner: Any) -> None:
    me, solution = learner("02-containerize-legacy")
    me.run("setup")
    # the dict to fill in, unchanged: every answer empty
    me.wrong_then_right("faults", "test_faults", solution["faults"], label="exercise-1")
    for gid in ("adt_dockerfile", "adt_dockerignore"):
        me.write(gid, solution[gid])
        me.run(gid)
    for question in ("rebuild", "root", "hang", "patients", "leaks"):  # one point each
        me.check_shown(me.run(f"test_dockerfile_{question}"), f"exercise 2 answered ({question})", passed=True)
    cell = me.run("build")  # the image build: one progress line, no red boxes
    me.no_stderr(cell, "the image build")
    me.shot("image-built")
    me.run("close")


def test_module_3_safe_deployments(learner: Any) -> None:
    me, solution = learner("03-safe-deployments")
    me.run("setup")
    me.run("lab")
    me.write("router_config", solution["router_config"])
    me.run("router_config")
    me.check_shown(me.run("test_router_config"), "exercise 1 answered", passed=True)
    cell = me.run("naive")  # a deployment under 20 s of traffic
    me.no_stderr(cell, "the stop-and-replace deployment")
    me.plot_shown(cell, "the deployment's plot")
    me.shot("naive-deployment")
    me.wrong_then_right("canary_analysis", "test_canary_analysis", solution["canary_analysis"], label="exercise-3")
    me.run("close")


def test_module_4_synthetic_data(learner: Any) -> None:
    me, solution = learner("04-synthetic-data-testing")
    me.run("setup")
    me.write("cohort", solution["cohort"])
    me.run("cohort")
    me.wrong_then_right("fidelity", "test_fidelity", solution["fidelity"], label="exercise-1b")
    me.run("ex2b-run")
    cell = me.run("plots")
    me.plot_shown(cell, "the comparison figure")
    me.shot("plots")


def test_module_5_monitoring(learner: Any) -> None:
    me, solution = learner("05-monitoring")
    me.run("setup")
    me.write("error_budget", solution["error_budget"])
    me.run("error_budget")
    me.wrong_then_right("burn_rate", "test_burn_rate", solution["burn_rate"], label="exercise-2b")
    cell = me.run("burn-plot")
    me.plot_shown(cell, "the burn-rate figure")
    me.shot("burn-plot")


def test_module_6_patient_data(learner: Any) -> None:
    me, solution = learner("06-patient-data")
    me.run("setup")
    me.wrong_then_right("review", "test_review", solution["review"], label="exercise-5")
    me.shot("review")


SOLVE = 'from careops.solve import solve\nsolve("cohort")'


def test_solve_one_exercise_then_the_next_one_works(learner: Any) -> None:
    """A stuck learner solves exercise 1a in its answer cell: the first run asks, the cell turns into the
    confirmation, the second run puts the solution in the same cell and runs it; exercise 1b then works on it."""
    from playwright.sync_api import expect

    me, solution = learner("04-synthetic-data-testing")
    me.run("setup")
    me.write("cohort", SOLVE)
    cell = me.run("cohort")
    text = me.outputs_text(cell)
    assert "confirm to go on" in text and "scores 0" in text and "Exercise 1a" in text, text[:1500]
    editor = cell.locator(".jp-InputArea-editor")
    expect(editor).to_contain_text('solve("cohort", confirm=True)')  # the confirmation, in the same cell
    me.shot("solve-asks-first")
    cell = me.run("cohort")
    me.no_stderr(cell, "the confirmed solve")
    assert "solved" in me.outputs_text(cell), me.outputs_text(cell)[:1500]
    expect(editor).to_contain_text("# careops solve: cohort")  # the solution, marked, in the answer cell
    expect(editor).to_contain_text("generate(")
    me.shot("solve-applied")
    me.check_shown(me.run("test_cohort"), "exercise 1a solved", passed=True)
    me.wrong_then_right("fidelity", "test_fidelity", solution["fidelity"], label="after-solve-exercise-1b")
