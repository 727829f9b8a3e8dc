"""End-to-end tests for labs/legacy-adt, v1 and v2 alike (v2 must stay wire
compatible): the service runs as a subprocess on free loopback ports with a
tmp database, and every bad input must get a NAK with a reason while the same
connection keeps working. v2-only behaviour: tests/test_adt_v2.py."""
from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from careops.hl7 import MllpClient, build_adt, frame, parse_ack

SERVICE = Path(__file__).resolve().parent.parent / "labs" / "legacy-adt"
SCRIPTS = {"v1": SERVICE / "adt_service.py", "v2": SERVICE / "v2" / "adt_service.py"}
PATIENT = dict(mrn="SYN-1001", family="Testperson", given="Alex", birth_date="19800101", sex="F")
FRAME_TIMEOUT = 1.0


@dataclass
class Adt:
    version: str
    proc: subprocess.Popen[bytes]
    mllp_port: int
    http_port: int
    db: Path
    log: Path

    def get(self, path: str) -> dict[str, object]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=3) as r:
            assert r.status == 200
            return json.loads(r.read())

    def client(self) -> MllpClient:
        return MllpClient("127.0.0.1", self.mllp_port, timeout=FRAME_TIMEOUT + 4)

    def rows(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        self.get("/stats")  # takes the service's lock, so the pending commit is done
        with sqlite3.connect(self.db) as con:
            return con.execute(sql, args).fetchall()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", params=["v1", "v2"])
def adt(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Adt]:
    version = request.param
    tmp = tmp_path_factory.mktemp(f"legacy-adt-{version}")
    mllp_port, http_port = _free_port(), _free_port()
    cmd = [sys.executable, str(SCRIPTS[version]), "--config", str(SERVICE / "adt.ini"),
           "--db", str(tmp / "data" / "adt.db"), "--log", str(tmp / "adt.log"),
           "--host", "127.0.0.1", "--http-host", "127.0.0.1",
           "--mllp-port", str(mllp_port), "--http-port", str(http_port),
           "--frame-timeout", str(FRAME_TIMEOUT)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    svc = Adt(version, proc, mllp_port, http_port, tmp / "data" / "adt.db", tmp / "adt.log")
    try:
        # it answers or exits (seen at once); the deadline only catches a hang: a busy machine is slower, not failing
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"legacy-adt exited with {proc.returncode}: {proc.stderr.read().decode()}")
            try:
                svc.get("/health")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("legacy-adt did not answer /health within 120 s; see its stderr")
                time.sleep(0.05)
        yield svc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_health(adt: Adt) -> None:
    assert adt.get("/health") == {"status": "ok", "version": adt.version}


def test_admit_update_discharge_round_trip(adt: Adt) -> None:
    before = adt.get("/stats")
    with adt.client() as c:
        a01 = c.send(build_adt("A01", control_id="RT-1", **PATIENT))
        assert (a01.code, a01.control_id) == ("AA", "RT-1")
        assert adt.rows("SELECT status FROM visits WHERE mrn = ?", "SYN-1001") == [("open",)]
        a08 = c.send(build_adt("A08", control_id="RT-2", **{**PATIENT, "family": "Renamed"}))
        assert a08.ok
        a03 = c.send(build_adt("A03", control_id="RT-3", **PATIENT))
        assert a03.ok, a03.text
    after = adt.get("/stats")
    assert after["patients"] == before["patients"] + 1
    assert after["visits"] == before["visits"] + 1
    assert after["messages"] == before["messages"] + 3
    assert adt.rows("SELECT family, given, birth_date, sex FROM patients WHERE mrn = ?", "SYN-1001") == [
        ("Renamed", "Alex", "19800101", "F")]  # A08 updated it; A03 only closes the visit
    assert adt.rows("SELECT status, discharged_at IS NOT NULL FROM visits WHERE mrn = ?", "SYN-1001") == [
        ("closed", 1)]


def test_a08_updates_demographics(adt: Adt) -> None:
    with adt.client() as c:
        assert c.send(build_adt("A01", control_id="UP-1", **{**PATIENT, "mrn": "SYN-1002"})).ok
        assert c.send(build_adt("A08", control_id="UP-2",
                                **{**PATIENT, "mrn": "SYN-1002", "family": "Newname", "sex": "M"})).ok
    assert adt.rows("SELECT family, sex FROM patients WHERE mrn = 'SYN-1002'") == [("Newname", "M")]


def test_duplicate_control_id_is_stored_once(adt: Adt) -> None:
    msg = build_adt("A01", control_id="DUP-1", **{**PATIENT, "mrn": "SYN-1003"})
    with adt.client() as c:
        first, second = c.send(msg), c.send(msg)
    assert first.code == second.code == "AA"
    assert "duplicate" in second.text
    assert adt.rows("SELECT COUNT(*) FROM visits WHERE mrn = 'SYN-1003'") == [(1,)]
    assert adt.rows("SELECT COUNT(*) FROM processed_messages WHERE control_id = 'DUP-1'") == [(1,)]


def test_sql_injection_field_is_stored_literally(adt: Adt) -> None:
    evil = "Robert'); DROP TABLE patients;--"
    with adt.client() as c:
        ack = c.send(build_adt("A01", control_id="SQLI-1", **{**PATIENT, "mrn": "SYN-1004", "family": evil}))
    assert ack.ok, ack.text
    assert adt.rows("SELECT family FROM patients WHERE mrn = 'SYN-1004'") == [(evil,)]
    tables = {r[0] for r in adt.rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"patients", "visits", "processed_messages"} <= tables


def _valid(ctl: str) -> str:
    return build_adt("A01", control_id=ctl, **{**PATIENT, "mrn": "SYN-1099"})


MSH = "MSH|^~\\&|CAREOPS|SYNTH-HOSP|LEGACY-ADT|SYNTH-HOSP|20260101120000||"
BAD_INPUTS = {
    "missing MSH": (frame("EVN|A01\rPID|1||SYN-1100"), "AR", "missing MSH segment"),
    "PID before MSH": (frame("PID|1||SYN-1101\r" + MSH + "ADT^A01|BAD-2|P|2.5"), "AR", "wrong segment order"),
    "unknown event": (frame(MSH + "ADT^A99|BAD-3|P|2.5\rPID|1||SYN-1102"), "AR", "unsupported message type"),
    "ORU not ADT": (frame(MSH + "ORU^R01|BAD-4|P|2.5\rPID|1||SYN-1103"), "AR", "unsupported message type"),
    "binary garbage": (frame(bytes(range(256)) * 4), "AR", "binary data"),
    "missing PID-3": (frame(MSH + "ADT^A01|BAD-6|P|2.5\rEVN|A01\rPID|1||\rPV1|1|I"), "AE", "PID-3"),
    "missing PID": (frame(MSH + "ADT^A01|BAD-7|P|2.5\rEVN|A01"), "AE", "missing PID segment"),
    "empty MSH-10": (frame(MSH + "ADT^A01||P|2.5\rPID|1||SYN-1104"), "AR", "MSH-10"),
    "discharge unknown visit": (frame(build_adt("A03", control_id="BAD-9", **{**PATIENT, "mrn": "SYN-1105"})),
                                "AE", "no open visit"),
    "huge message": (frame(MSH + "ADT^A01|BAD-10|P|2.5\rPID|1||SYN-1106|" + "X" * (1024 * 1024 + 10)),
                     "AR", "message too large"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_gets_nak_and_connection_survives(adt: Adt, name: str) -> None:
    data, code, reason = BAD_INPUTS[name]
    before = adt.get("/stats")
    with adt.client() as c:
        ack = parse_ack(c.send_raw(data).decode())
        assert ack.code == code, f"{name}: expected {code}, got {ack.code} ({ack.text})"
        assert reason in ack.text
        follow = c.send(_valid(f"AFTER-{name}"))
        assert follow.ok, f"connection unusable after {name}: {follow.text}"
    after = adt.get("/stats")
    assert after["messages"] == before["messages"] + 1  # only the valid follow-up
    assert adt.rows("SELECT COUNT(*) FROM patients WHERE mrn LIKE 'SYN-11%'") == [(0,)]


def test_truncated_frame_is_dropped_after_timeout(adt: Adt) -> None:
    with adt.client() as c:
        started = time.monotonic()
        ack = parse_ack(c.send_raw(b"\x0b" + MSH.encode() + b"ADT^A01|TRUNC-1|P|2.5\rPID|1||SYN-1200").decode())
        assert ack.code == "AR" and "incomplete frame" in ack.text
        assert time.monotonic() - started >= FRAME_TIMEOUT * 0.9
        assert c.send(_valid("AFTER-TRUNC")).ok
    assert adt.rows("SELECT COUNT(*) FROM patients WHERE mrn = 'SYN-1200'") == [(0,)]


def test_garbage_between_frames_is_ignored(adt: Adt) -> None:
    with adt.client() as c:
        ack = parse_ack(c.send_raw(b"\xff\x00junk" + frame(_valid("AFTER-JUNK"))).decode())
        assert ack.ok and ack.control_id == "AFTER-JUNK"


def test_phi_in_the_log_is_a_v1_fault_fixed_in_v2(adt: Adt) -> None:
    """v1 logs whole PID segments on purpose; v2 logs control ids only."""
    text = adt.log.read_text()
    assert "control_id=RT-1" in text  # the log is written at all
    if adt.version == "v1":
        assert "PID|1||SYN-1001" in text
    else:
        assert "SYN-1001" not in text and "Testperson" not in text and "19800101" not in text


def test_concurrent_connections_are_served(adt: Adt) -> None:
    """Threaded server: an idle open connection must not block another sender."""
    with adt.client() as idle, adt.client() as busy:
        idle.connect()
        acks = [busy.send(build_adt("A08", control_id=f"CONC-{i}", **{**PATIENT, "mrn": "SYN-1300"}))
                for i in range(5)]
        assert all(a.ok for a in acks)
        assert idle.send(build_adt("A08", control_id="CONC-idle", **{**PATIENT, "mrn": "SYN-1300"})).ok


def test_service_still_alive_at_end(adt: Adt) -> None:
    assert adt.proc.poll() is None
    assert adt.get("/health")["status"] == "ok"
