"""Use the course as a learner does: `make lab`, open the orientation notebook, run its first cells.

The server is started exactly as a learner starts it -- ``make lab NO_BROWSER=1
PORT=<free port>`` from the repo root -- so the preparation (venv, engine,
images, release, workspace sync) is part of what is tested. On a cold machine
that preparation takes minutes, hence the long timeouts.

Development switch: ``CAREOPS_BROWSER_LAUNCH=direct`` skips the preparation and
runs ``.venv/bin/careops jupyter --no-browser --port N`` on a temporary
CAREOPS_HOME whose workspace holds the orientation notebook (the learner version
from build/release when present, else the source). Use it while `make lab`
cannot run yet, or to iterate on the browser steps quickly.

Screenshots (full page PNGs) go to build/test-output/browser/.
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
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Locator

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "build" / "test-output" / "browser"
NOTEBOOK = "00-orientation/orientation.ipynb"
#: The first code cells: load careops (prints that it is ready), then the preflight.
FIRST_CODE_CELLS = 2
#: `make lab` on a cold machine installs the engine and builds images first.
START_TIMEOUT = 15 * 60
#: The preflight starts a real container and tries its limits.
CELL_TIMEOUT_MS = 5 * 60 * 1000
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # without these Chromium floods the closed network
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(START_TIMEOUT + 10 * 60)]


@dataclass
class LabServer:
    base_url: str
    token: str
    workspace: Path
    log: Path


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


def _direct_home(tmp: Path) -> Path:
    """A CAREOPS_HOME with only a workspace holding the orientation notebook."""
    learner = REPO / "build" / "release" / NOTEBOOK
    source = learner if learner.is_file() else REPO / "notebooks" / NOTEBOOK
    if not source.is_file():
        pytest.fail(f"no orientation notebook: expected {learner} or {REPO / 'notebooks' / NOTEBOOK}")
    dest = tmp / "workspace" / NOTEBOOK
    dest.parent.mkdir(parents=True)
    shutil.copy(source, dest)
    return tmp


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabServer]:
    """JupyterLab started as `make lab` starts it; always stopped afterwards."""
    OUT.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = dict(os.environ)
    if os.environ.get("CAREOPS_BROWSER_LAUNCH") == "direct":
        home = _direct_home(tmp_path)
        env.update(CAREOPS_HOME=str(home), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
        cmd = [str(REPO / ".venv" / "bin" / "careops"), "jupyter", "--no-browser", "--port", str(port)]
    else:
        home = REPO
        # As a learner types it: no CAREOPS_HOME, and no flags of an outer `make test`.
        for var in ("CAREOPS_HOME", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
            env.pop(var, None)
        cmd = ["make", "lab", "NO_BROWSER=1", f"PORT={port}"]
    state_file = home / "build" / "jupyter.json"
    log = OUT / "lab.log"
    notebook = home / "workspace" / NOTEBOOK
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
        yield LabServer(str(state["base_url"]), str(state["token"]), home / "workspace", log)
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


def _cell_summary(cell: Locator) -> str:
    return cell.evaluate(
        "c => c.querySelector('.jp-InputArea-editor')?.innerText.slice(0, 120) ?? ''"
    )


def test_orientation_first_cells_run_in_the_browser(lab: LabServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert (lab.workspace / NOTEBOOK).is_file(), f"`make lab` did not put {NOTEBOOK} into workspace/"
    started = time.monotonic()
    console: list[str] = []
    with tempfile.TemporaryDirectory(prefix="careops-chromium-") as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            page = ctx.new_page()
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
            # `reset` ignores any layout saved from an earlier session.
            page.goto(f"{lab.base_url}lab/tree/{NOTEBOOK}?reset&token={lab.token}", timeout=120_000)

            panel = page.locator(".jp-NotebookPanel:visible").first
            expect(panel).to_be_visible(timeout=120_000)
            # The kernel is up when the toolbar's indicator and the status bar both say idle.
            expect(panel.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
                "data-status", "idle", timeout=120_000
            )
            expect(page.locator("#jp-main-statusbar")).to_contain_text("Idle", timeout=120_000)
            # Our kernel spec: this environment's Python, which can import careops.
            expect(panel.locator(".jp-KernelName")).to_contain_text("CareOps Labs")
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
                    page.screenshot(path=str(OUT / f"{2 + code.index(i):02d}-code-cell-{code.index(i) + 1}.png"), full_page=True)

            problems, texts = [], []
            for n, i in enumerate(code, start=1):
                outputs = cells.nth(i).locator(".jp-OutputArea-output")
                text = "\n".join(outputs.all_inner_texts())
                texts.append(text)
                # Errors render as stderr text with a traceback; warnings are stderr without one.
                stderr = "\n".join(
                    cells.nth(i).locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
                )
                if "Traceback" in stderr or re.search(r"^\w*(Error|Exception)\b", stderr, re.M):
                    problems.append(f"code cell {n} ({_cell_summary(cells.nth(i))!r}) failed:\n{stderr[-2000:]}")
                elif stderr.strip():
                    warnings.warn(f"code cell {n} wrote to stderr (learners see it in red):\n{stderr[-500:]}")
            assert not problems, "\n\n".join(problems)
            assert texts[0].strip(), "the first code cell printed nothing (expected 'careops ... is ready')"
            assert "careops" in texts[0].lower(), f"unexpected first output: {texts[0]!r}"
            assert all(t.strip() for t in texts), f"a run cell showed no output: {texts!r}"
        finally:
            ctx.close()
    (OUT / "console-errors.txt").write_text("\n".join(console))
    print(f"browser part took {time.monotonic() - started:.1f} s; screenshots in {OUT}", file=sys.stderr)
