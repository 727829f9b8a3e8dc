"""A learner check reports its verdict live (careops.report.reporting) without ever slowing or failing the check.

A real HTTP endpoint on this host stands in for the hub's hand-in service (tests/test_workshop_classroom.py runs
the real one); the check runs as a learner runs it (a ``learner_check`` called with their answer).
"""
from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from careops.report import CheckFailed, CheckReport, learner_check, reporting


@learner_check
def sorted_names(fn) -> CheckReport:
    report = CheckReport("Exercise 7: sorted names")
    got = fn(["b", "a"])
    report.check(got == ["a", "b"], "the names come back sorted", expected=["a", "b"], got=got,
                 hint="SECRET-HINT sorted(...)")
    return report


class Endpoint:
    def __init__(self, delay: float = 0.0, status: int = 204) -> None:
        self.received: list[tuple[dict, str]] = []
        self.delay, self.status = delay, status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(outer.delay)
                outer.received.append((json.loads(body), self.headers.get("Authorization", "")))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/hand-in/api/checks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.02)


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    ep = Endpoint()
    monkeypatch.setenv(reporting.REPORTS_URL_ENV, ep.url)
    monkeypatch.setenv(reporting.TOKEN_ENV, "server-token-of-ana")
    monkeypatch.setenv(reporting.NOTEBOOK_ENV, "/home/jovyan/workspace/00-orientation/orientation.ipynb")
    yield ep
    ep.server.shutdown()


def _wait_idle() -> None:
    deadline = time.monotonic() + 10
    while reporting.COUNTS.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)


def test_each_run_of_a_check_is_reported_with_its_verdict_and_no_hint_value_or_code(endpoint: Endpoint) -> None:
    with pytest.raises(CheckFailed):
        sorted_names(lambda names: names)
    assert sorted_names(sorted).passed
    endpoint.wait(2)
    # each run posts from a thread of its own: the two posts may arrive in either order
    (first, auth), (second, _) = sorted(endpoint.received, key=lambda post: post[0]["passed"])
    assert auth == "token server-token-of-ana"
    assert first["check"] == f"{__name__}.sorted_names" and first["title"] == "Exercise 7: sorted names"
    assert (first["passed"], second["passed"]) == (False, True)
    assert first["criteria"] == [{"message": "the names come back sorted", "passed": False}]
    assert first["notebook"] == "00-orientation/orientation.ipynb" and first["summary"].endswith("0/1 criteria passed")
    sent = json.dumps(first)
    assert "SECRET-HINT" not in sent and "['b', 'a']" not in sent and '"b"' not in sent  # no hint, no values
    assert set(first) == {"check", "title", "passed", "not_written", "summary", "criteria", "notebook", "ran_at"}
    # .report (hidden tests, the grader) runs the criteria without reporting
    sorted_names.report(sorted)
    time.sleep(0.3)
    assert len(endpoint.received) == 2


def test_a_slow_or_absent_endpoint_never_slows_or_fails_the_check(monkeypatch: pytest.MonkeyPatch,
                                                                  endpoint: Endpoint) -> None:
    _wait_idle()
    failed = reporting.COUNTS.failed
    endpoint.delay = 5.0  # longer than the post's timeout
    start = time.monotonic()
    assert sorted_names(sorted).passed
    assert time.monotonic() - start < 0.5
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv(reporting.REPORTS_URL_ENV, f"http://127.0.0.1:{closed}/x")
    start = time.monotonic()
    with pytest.raises(CheckFailed):  # the check's own verdict, not a reporting error
        sorted_names(lambda names: names)
    assert time.monotonic() - start < 0.5
    _wait_idle()
    assert reporting.COUNTS.failed >= failed + 2  # the slow one timed out, the closed port refused: counted
    assert "Error" in reporting.COUNTS.last_error or "timed out" in reporting.COUNTS.last_error


def test_at_most_a_few_posts_are_in_flight_the_rest_are_dropped_and_counted(endpoint: Endpoint) -> None:
    endpoint.delay = 1.0
    _wait_idle()
    dropped = reporting.COUNTS.dropped
    for _ in range(reporting.MAX_IN_FLIGHT + 3):
        sorted_names(sorted)
    assert reporting.COUNTS.dropped == dropped + 3
    _wait_idle()


def test_without_a_dashboard_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(reporting.REPORTS_URL_ENV, raising=False)
    report = CheckReport("x")
    report.check(True, "ok")
    assert reporting.report_check("a.b", report) is None
    assert sorted_names(sorted).passed
