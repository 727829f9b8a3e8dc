"""The hand-in service and the dashboard as HTTP services, with JupyterHub's own HubOAuth, outside the hub.

Only the hub's answer to "whose token is this?" is stood in for (``user_for_token``: a table of tokens, as the
hub's /user would answer, scopes included); everything after it (scope checks, the routes, the store, the
activity log) is the services' own code. The real services behind the real hub, with learners in Chromium:
tests/test_workshop_hub.py.
"""
from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jupyterhub.services.auth import HubOAuth
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from careops.handins import Assignments, HandInStore
from careops.workshop import dashboard, handin_service
from careops.workshop.activity import ActivityLog

NOTEBOOK = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    {"cell_type": "markdown", "source": "# Orientation", "metadata": {}}]})
HANDIN = "access:services!service=hand-in"
DASHBOARD = "access:services!service=dashboard"
TOKENS = {  # what the hub's /user answers for each token
    "ana-server": {"kind": "user", "name": "ana", "scopes": [HANDIN]},
    "ben-server": {"kind": "user", "name": "ben", "scopes": [HANDIN]},
    "lee": {"kind": "user", "name": "dr-lee", "scopes": [HANDIN, DASHBOARD]},
    "stranger": {"kind": "user", "name": "mallory", "scopes": []},
    "a-service": {"kind": "service", "name": "idle-culler", "scopes": [HANDIN, DASHBOARD]},
}
MESSAGE = {"check": "careops.checks.orientation.synthetic_markers", "title": "Exercise 1: synthetic or real-looking?",
           "passed": False, "not_written": False, "summary": "4/5 criteria passed",
           "criteria": [{"message": "phone: synthetic values are recognised", "passed": False}],
           "notebook": "00-orientation/orientation.ipynb", "ran_at": "2020-01-01T00:00:00+00:00"}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(_NoRedirect)


class TokenTable(HubOAuth):
    """HubOAuth whose question to the hub is answered from TOKENS."""

    def user_for_token(self, token: str, use_cache: bool = True, session_id: str = "", *, sync: bool = True) -> Any:
        async def answer() -> dict | None:
            return TOKENS.get(token)

        return answer()


@dataclass
class Running:
    url: str
    store: HandInStore
    activity: ActivityLog

    def call(self, method: str, path: str, token: str | None, body: Any = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"token {token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with OPENER.open(req, timeout=10) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode()


def _serve(make_app: Any) -> Iterator[int]:
    ready, holder = threading.Event(), {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(make_app())
        server.add_sockets(sockets)
        holder.update(loop=loop, port=sockets[0].getsockname()[1], server=server)
        ready.set()
        loop.run_forever()
        server.stop()
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield holder["port"]
    finally:
        holder["loop"].call_soon_threadsafe(holder["loop"].stop)
        thread.join(10)


def _auth(service: str, scope: str) -> TokenTable:
    return TokenTable(api_token="service-token", api_url="http://127.0.0.1:9/hub/api", access_scopes={scope},
                      cache_max_age=0, base_url=f"/services/{service}/", hub_prefix="/hub/",
                      oauth_client_id=f"service-{service}")


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[Running, Running]]:
    Assignments({"00-orientation": ("orientation",)}).save(tmp_path / "assignments.json")
    store, activity = HandInStore(tmp_path / "store"), ActivityLog(tmp_path / "activity.sqlite")
    hand_in = handin_service.HandInService(store, tmp_path / "assignments.json", activity)
    board = dashboard.Dashboard(store, activity)
    handin_ports = _serve(lambda: handin_service.make_app(hand_in, _auth("hand-in", HANDIN)))
    board_ports = _serve(lambda: dashboard.make_app(board, _auth("dashboard", DASHBOARD)))
    a, b = next(handin_ports), next(board_ports)
    try:
        yield (Running(f"http://127.0.0.1:{a}/services/hand-in/", store, activity),
               Running(f"http://127.0.0.1:{b}/services/dashboard/", store, activity))
    finally:
        for gen in (handin_ports, board_ports):
            gen.close()


def _hand_in(**extra: Any) -> dict:
    return {"assignment": "00-orientation", "notebook": "orientation", "content": NOTEBOOK, **extra}


def test_a_hand_in_is_stored_under_the_tokens_hub_user_at_the_services_time(services) -> None:
    hand_in, _ = services
    status, answer = hand_in.call("POST", "api/hand-ins", "ana-server", _hand_in())
    assert status == 201 and answer["learner"] == "ana", answer
    (stored,) = hand_in.store.hand_ins()
    assert (stored.learner, stored.assignment, stored.notebook) == ("ana", "00-orientation", "orientation")
    assert stored.folder.name.startswith("ana+00-orientation+")
    # who and when are the hub's and the service's to say, never the request's
    status, answer = hand_in.call("POST", "api/hand-ins", "ana-server", _hand_in(learner="ben"))
    assert status == 403 and "the hub says this request comes from ana" in answer["message"], answer
    status, answer = hand_in.call("POST", "api/hand-ins", "ana-server", _hand_in(received_at="2020-01-01"))
    assert status == 400 and "the server's clock" in answer["message"], answer
    status, answer = hand_in.call("POST", "api/hand-ins", "ana-server", _hand_in(assignment="99-nothing"))
    assert status == 400 and "99-nothing" in answer["message"] and answer["fix"], answer
    assert len(hand_in.store.hand_ins()) == 1


def test_without_a_token_or_the_services_scope_nothing_gets_in(services) -> None:
    hand_in, board = services
    for token, status in ((None, 401), ("not-a-token", 401), ("stranger", 403), ("a-service", 403)):
        got, answer = hand_in.call("POST", "api/hand-ins", token, _hand_in())
        assert got == status, (token, got, answer)
        assert board.call("GET", "data.json", token)[0] in (status, 302), token
    assert hand_in.store.hand_ins() == []


def test_a_learner_sees_only_their_own_hand_ins_and_never_the_dashboard(services) -> None:
    hand_in, board = services
    for token in ("ana-server", "ben-server"):
        assert hand_in.call("POST", "api/hand-ins", token, _hand_in())[0] == 201
    status, answer = hand_in.call("GET", "api/hand-ins", "ana-server")
    assert status == 200 and [h["learner"] for h in answer["hand_ins"]] == ["ana"], answer
    status, answer = hand_in.call("GET", "api/hand-ins?learner=ben", "ana-server")
    assert status == 403 and "only your own" in answer["message"], answer
    for path in ("", "view", "data.json", "export.csv"):
        status, answer = board.call("GET", path, "ana-server")
        assert status == 403 and "ben" not in json.dumps(answer), (path, status, answer)


def test_a_checks_report_reaches_the_dashboard_of_the_instructor(services) -> None:
    hand_in, board = services
    assert hand_in.call("POST", "api/checks", "ben-server", MESSAGE)[0] == 204
    status, answer = hand_in.call("POST", "api/checks", "ben-server", {**MESSAGE, "learner": "ana"})
    assert status == 400 and "unknown field(s) learner" in answer["message"], answer
    assert [r.learner for r in hand_in.activity.reports()] == ["ben"]
    assert hand_in.call("POST", "api/hand-ins", "ben-server", _hand_in())[0] == 201
    status, answer = board.call("GET", "data.json", "lee")
    assert status == 200, answer
    (row,) = answer["rows"]
    assert (row["learner"], row["latest"], row["message"], row["hand_ins"]) == (
        "ben", "failed", "phone: synthetic values are recognised", 1), row
    status, page = board.call("GET", "", "lee")
    assert status == 200 and "Workshop dashboard" in page and "<svg" in page
    status, csv_text = board.call("GET", "export.csv?stuck_minutes=0", "lee")
    assert status == 200 and csv_text.splitlines()[1].startswith("ben,00-orientation,"), csv_text
    assert ",True," in csv_text.splitlines()[1]  # stuck right away with a limit of 0 minutes
