"""careops.traffic: the generator really sends >= 100 HTTP requests/s plus MLLP ADT messages through the router
from a container on the lab network, records every attempt, and reconcile() catches a lost and a duplicated
message (on made-up records and on a real run's)."""
from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd
import pytest
from matplotlib.figure import Figure

from careops import engine
from careops.images import ensure_images
from careops.images.build import existing_image
from careops.lab import Lab
from careops.router import ROUTER_IMAGE, Router, RouterConfig
from careops.traffic import (TrafficPlan, per_second, plot_rollout, read_frame, reconcile, start_traffic,
                             stored_control_ids)


def _row(kind: str, ident: str, attempt: int, status: str, t: float, version: str = "v2") -> dict:
    ok = status in ("AA", "200", "404")
    return {"kind": kind, "seq": 0, "id": ident, "attempt": attempt, "t_sched": 1000.0, "t_send": 1000.0 + t,
            "latency_ms": 5.0 + t, "status": status, "ok": ok, "version": version if ok else "", "error": ""}


@pytest.fixture
def record() -> pd.DataFrame:
    rows = [_row("mllp", "M-1", 1, "AA", 0.1, "v1"), _row("mllp", "M-2", 1, "error", 0.2),
            _row("mllp", "M-2", 2, "AA", 0.4), _row("mllp", "M-3", 1, "AE", 0.5),
            _row("mllp", "M-4", 1, "error", 0.6), _row("http", "/health", 1, "200", 0.7, "v1"),
            _row("http", "/health", 1, "502", 1.2)]
    return read_frame("\n".join(json.dumps(r) for r in rows))


def test_read_frame_sorts_and_adds_seconds(record: pd.DataFrame) -> None:
    assert list(record["t"].round(1)) == [0.1, 0.2, 0.4, 0.5, 0.6, 0.7, 1.2]
    assert record["ok"].dtype == bool
    assert read_frame("").empty


def test_reconcile_sorts_every_message_into_its_outcome(record: pd.DataFrame) -> None:
    report = reconcile(record, ["M-1", "M-2"])
    assert (report.sent, report.acked, report.stored) == (4, 2, 2)
    assert report.lost == [] and report.duplicated == []
    assert report.nacked == ["M-3"] and report.unanswered == ["M-4"]
    assert not report.ok and "1 nacked: M-3" in str(report)


def test_reconcile_detects_a_lost_and_a_duplicated_message(record: pd.DataFrame) -> None:
    fine = record[record["id"].isin(["M-1", "M-2", "/health"])]
    assert reconcile(fine, ["M-1", "M-2"]).ok
    lost = reconcile(fine, ["M-2"])
    assert lost.lost == ["M-1"] and not lost.ok
    twice = reconcile(fine, pd.DataFrame({"control_id": ["M-1", "M-2", "M-2"]}))  # e.g. blue's db + green's db
    assert twice.duplicated == ["M-2"] and not twice.ok
    stray = reconcile(fine, [("M-1",), ("M-2",), ("M-9",)])
    assert stray.unexpected == ["M-9"] and not stray.ok
    assert "NOT reconciled" in twice._repr_html_()


def test_per_second_and_plot(record: pd.DataFrame) -> None:
    table = per_second(record)
    assert table.loc[table["second"] == 1, "failed"].item() == 1
    assert int(table.loc[table["second"] == 0, "v1"].item()) == 2
    fig = plot_rollout(record, [("switch", 1000.5)])
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert any(line.get_xdata()[0] == pytest.approx(0.5) for line in fig.axes[1].get_lines())


def test_the_driver_ends_when_the_service_never_answers(tmp_path) -> None:
    """A service that accepts MLLP connections and never ACKs (a naive replace at a high rate): messages still
    behind schedule after the run's end and its grace are recorded as unanswered without being sent, so the
    generator finishes instead of spending an ACK time-out on each of them."""
    import socket
    import threading

    from careops.traffic import driver

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                pass

    threading.Thread(target=accept, daemon=True).start()
    messages = [(f"SILENT-{i}", f"MSH|^~\\&|T|T|T|T|20260101||ADT^A01|SILENT-{i}|P|2.5") for i in range(10)]
    plan = {"out": str(tmp_path / "rec.jsonl"), "duration": 1.0,
            "mllp": {"host": "127.0.0.1", "port": silent.getsockname()[1], "rate": 10.0, "messages": messages,
                     "grace": 0.5, "ack_timeout": 0.5}}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    try:
        assert driver.main(["driver", str(tmp_path / "plan.json")]) == 0
    finally:
        stop.set()
        for s in held:
            s.close()
        silent.close()
    frame = read_frame(tmp_path / "rec.jsonl")
    final = frame.groupby("id").tail(1)
    assert sorted(final["id"]) == sorted(m[0] for m in messages)
    assert (final["status"] == "error").all()
    not_sent = frame[frame["error"].str.startswith("not sent")]
    assert len(not_sent) >= 1 and (not_sent["attempt"] == 1).all()


def test_plan_messages_are_synthetic_and_unique() -> None:
    plan = TrafficPlan(duration=3, mllp_rate=5, prefix="TR-ABC123")
    msgs = plan.messages()
    assert len(msgs) == 15 and len({c for c, _ in msgs}) == 15
    assert all("|SYN-ABC123" in text and c in text for c, text in msgs)


def _have_router_image() -> None:
    """Build the router image only when it is missing: ensure_images waits for the machine-wide build lock,
    which another build may hold for minutes (test_router.py checks that the image is up to date)."""
    if existing_image(engine.client(), ROUTER_IMAGE) is None:
        ensure_images(["router"], progress=False)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    _have_router_image()
    with Lab("traffic-test", learner="pytest") as lab:
        lab.run("careops/legacy-adt:v2", name="adt-blue", volumes={"adt-data": "/data"}).wait_until("healthy", timeout=30)
        yield lab


@pytest.mark.docker
def test_100_requests_per_second_through_the_router_all_recorded_and_reconciled(lab: Lab) -> None:
    Router.start(lab, RouterConfig.single("adt-blue"))
    plan = TrafficPlan(duration=8, http_rate=120, mllp_rate=10)
    result = start_traffic(lab, plan).wait(progress=False)
    s = result.summary()
    assert s["http_requests"] == 960 and s["http_failed"] == 0
    assert s["http_rate"] >= 100, s
    assert s["mllp_messages"] == 80 and s["mllp_acked"] == 80
    assert s["versions"] == {"v2": 1040}
    assert set(result.http["status"]) <= {"200", "404"}  # patients not admitted yet are 404s, not failures
    stored = stored_control_ids(lab, "adt-data", plan.prefix)
    report = reconcile(result.frame, stored)
    assert report.ok, str(report)
    # the same real record fails reconciliation when the database lost one message or holds one twice
    assert reconcile(result.frame, stored[1:]).lost == [stored[0]]
    assert reconcile(result.frame, stored + stored[:1]).duplicated == [stored[0]]
