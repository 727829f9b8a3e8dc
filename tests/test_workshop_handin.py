"""Handing in from a learner's server (careops.workshop.handin_client, ``careops submit``) and grading the store
(``careops grade --workshop``), without the hub.

The hand-in service here is a stand-in on a local port that records what it was sent; the real service behind the
real hub, with learners in Chromium, is tests/test_workshop_hub.py.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from careops.cli import cli
from careops.handins import Assignments, HandInStore
from careops.workshop import handin_client
from careops.workshop.handin_client import HandInFailed, HandInReceipt, hand_in
from careops.workshop.labels import HANDIN_URL_ENV

NOTEBOOK = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    {"cell_type": "markdown", "source": "# Orientation", "metadata": {}}]}


class StandIn(BaseHTTPRequestHandler):
    """Answers like the hand-in service: 201 with the record, or the refusal it is told to give."""

    seen: list[dict] = []
    refuse: tuple[int, dict] | None = None

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        StandIn.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        status, answer = StandIn.refuse or (201, {
            "learner": "ana", "assignment": body["assignment"], "notebook": body["notebook"],
            "received_at": "2026-03-02T09:30:15+00:00", "size": len(body["content"]), "sha256": "ab" * 32})
        raw = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    StandIn.seen, StandIn.refuse = [], None
    url = f"http://127.0.0.1:{server.server_address[1]}/services/hand-in/"
    monkeypatch.setenv(HANDIN_URL_ENV, url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token-of-ana")
    monkeypatch.setenv("JUPYTERHUB_BASE_URL", "/")
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "workspace" / "00-orientation"
    folder.mkdir(parents=True)
    (folder / "orientation.ipynb").write_text(json.dumps(NOTEBOOK))
    monkeypatch.chdir(folder)  # a kernel runs in its notebook's folder
    return folder


def test_outside_the_hub_there_is_nowhere_to_hand_in_and_the_error_says_what_to_do(
        monkeypatch: pytest.MonkeyPatch, workspace: Path) -> None:
    monkeypatch.delenv(HANDIN_URL_ENV, raising=False)
    with pytest.raises(HandInFailed, match="nowhere to hand in") as err:
        hand_in("orientation.ipynb")
    assert "Hand in button" in (err.value.fix or "")
    result = CliRunner().invoke(cli, ["submit", "orientation.ipynb"])
    assert result.exit_code == 1 and "nowhere to hand in" in result.output and "fix:" in result.output


def test_a_hand_in_sends_only_the_notebook_with_the_servers_token(service: str, workspace: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JPY_SESSION_NAME", "00-orientation/orientation.ipynb")  # what the server tells a kernel
    monkeypatch.chdir(workspace.parent)
    receipt = hand_in()
    assert isinstance(receipt, HandInReceipt) and receipt.learner == "ana"  # the service's answer, not ours
    (sent,) = StandIn.seen
    assert sent["path"] == "/services/hand-in/api/hand-ins" and sent["auth"] == "token server-token-of-ana"
    assert sorted(sent["body"]) == ["assignment", "content", "notebook"]  # no name, no time
    assert (sent["body"]["assignment"], sent["body"]["notebook"]) == ("00-orientation", "orientation")
    assert json.loads(sent["body"]["content"]) == NOTEBOOK
    assert "handed in 00-orientation/orientation.ipynb as ana" in str(receipt)
    assert "Handed in" in receipt._repr_html_() and "/services/hand-in/feedback/" in receipt._repr_html_()
    # the command a notebook cell runs (!careops submit), with the same result
    result = CliRunner().invoke(cli, ["submit", "--json", "00-orientation/orientation.ipynb"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["assignment"] == "00-orientation" and len(StandIn.seen) == 2


def test_a_refusal_comes_back_with_the_services_message_and_fix(service: str, workspace: Path) -> None:
    StandIn.refuse = (413, {"error": 413, "message": "refused: the notebook is 20 MiB", "fix": "clear the outputs"})
    with pytest.raises(HandInFailed, match="20 MiB") as err:
        hand_in("orientation.ipynb")
    assert (err.value.status, err.value.fix) == (413, "clear the outputs")
    (workspace / "notes.txt").write_text("x")
    with pytest.raises(HandInFailed, match="only .ipynb files"):
        hand_in("notes.txt")


def test_the_service_not_answering_is_said_plainly(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HANDIN_URL_ENV, "http://127.0.0.1:9/services/hand-in/")
    monkeypatch.setattr(handin_client, "TIMEOUT", 3.0)
    with pytest.raises(HandInFailed, match="did not answer") as err:
        hand_in("orientation.ipynb")
    assert err.value.status == 0 and "try again" in (err.value.fix or "")


def test_grading_a_store_writes_the_grades_back_for_the_dashboard(tmp_path: Path) -> None:
    from careops.apps.grade import store_grades
    from careops.grading.autograder import GradeSummary
    from careops.grading.export import ClassRow

    store = HandInStore(tmp_path / "store")
    course = Assignments({"00-orientation": ("orientation",)})
    store.receive("ana", "00-orientation", "orientation", json.dumps(NOTEBOOK).encode(), course,
                  now=datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc))
    summary = GradeSummary("00-orientation", [ClassRow("ana", "graded", 6.0, 8.0, {}),
                                              ClassRow("ben", "missing", 0.0, 8.0, {})],
                           [], {}, tmp_path / "grades.csv", None, ["ana"], [], 1.0)
    assert store_grades(tmp_path / "elsewhere", summary) is None  # an ordinary folder gets nothing
    assert store_grades(store.root, summary) is not None
    assert store.grades() == {"00-orientation": {"ana": {"learner": "ana", "status": "graded", "score": 6.0,
                                                         "max_score": 8.0, "reason": ""}}}


def test_the_careops_command_runs_without_the_graders_packages() -> None:
    """A learner's server has no nbgrader and no Celery: careops submit (and the CLI around it) must still load."""
    import subprocess
    import sys

    script = ("import sys\n"
              "for name in ('nbgrader', 'celery', 'kombu', 'redis', 'flower', 'kubernetes'):\n"
              "    sys.modules[name] = None  # importing it fails, as in the learner image\n"
              "from click.testing import CliRunner\n"
              "from careops.cli import cli\n"
              "result = CliRunner().invoke(cli, ['submit', '--help'])\n"
              "print(result.exit_code, result.output.splitlines()[0])\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.startswith("0 Usage:"), done.stderr[-2000:]


@pytest.mark.docker
def test_autograde_grades_each_new_hand_in_once_and_its_grade_reaches_the_dashboard(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`careops workshop autograde` follows the store's arrivals: a new hand-in is graded (in the sandbox, as careops
    grade --workshop grades it) and its grade written back for the dashboard; a pass with nothing new grades
    nothing; what arrives later is the next pass's."""
    import os
    import shutil

    from careops import paths
    from careops.apps import workshop as app
    from careops.grading.course import make_temp_course
    from careops.workshop.settings import WorkshopSettings

    settings = WorkshopSettings(name=f"autograde{os.getpid() % 100000}")
    settings.save()
    try:
        store, course = HandInStore(settings.handin_store), Assignments.from_release(paths.release_dir())
        released = (paths.release_dir() / "00-orientation" / "orientation.ipynb").read_bytes()
        store.receive("ana", "00-orientation", "orientation", released, course)
        gradebook = make_temp_course(tmp_path / "course", "00-orientation")
        assert app.autograde_main(name=settings.name, once=True, course_dir=gradebook.root, jobs=1) in (0, 2)
        assert "autograde 00-orientation: new hand-in(s) of ana" in capsys.readouterr().out
        graded = store.grades()["00-orientation"]["ana"]
        assert graded["status"] == "graded" and graded["max_score"] > 0, graded
        assert app.autograde_main(name=settings.name, once=True, course_dir=gradebook.root) == 0
        assert "autograde" not in capsys.readouterr().out
        store.receive("ben", "00-orientation", "orientation", released, course)
        arrived, _mark = app.new_arrivals(settings.handin_store)
        assert [a["learner"] for a in arrived] == ["ben"]
    finally:
        shutil.rmtree(settings.state_dir, ignore_errors=True)
