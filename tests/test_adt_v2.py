"""What v2 of the ADT service adds over v1 (the shared wire behaviour is proven
for both in tests/test_legacy_adt.py): configuration from the environment, a
graceful SIGTERM that keeps every ACKed message, release attribution, and the
v2-faulty release that passes a smoke test but fails under traffic."""
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from careops.hl7 import MllpClient, build_adt
from careops.hl7.mllp import Hl7Error

V2 = Path(__file__).resolve().parent.parent / "labs" / "legacy-adt" / "v2" / "adt_service.py"
PATIENT = dict(family="Testperson", given="Alex", birth_date="19800101", sex="F")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    def __init__(self, proc: subprocess.Popen[bytes], mllp: int, http: int, db: Path) -> None:
        self.proc, self.mllp, self.http, self.db = proc, mllp, http, db

    def get(self, path: str) -> tuple[int, dict[str, object], str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=3) as r:
                return r.status, json.loads(r.read()), r.headers["X-Service-Version"]
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read()), e.headers["X-Service-Version"]

    def client(self) -> MllpClient:
        return MllpClient("127.0.0.1", self.mllp, timeout=5)

    def stored(self) -> set[str]:
        with sqlite3.connect(self.db) as con:
            return {r[0] for r in con.execute("SELECT control_id FROM processed_messages")}


@contextmanager
def service(tmp: Path, **env: str) -> Iterator[Running]:
    """v2 configured only through ADT_* variables (no flags, no INI)."""
    mllp, http = _free_port(), _free_port()
    environ = {**os.environ, "ADT_DB": str(tmp / "data" / "adt.db"), "ADT_LOG": "-", "ADT_HOST": "127.0.0.1",
               "ADT_HTTP_HOST": "127.0.0.1", "ADT_MLLP_PORT": str(mllp), "ADT_HTTP_PORT": str(http), **env}
    proc = subprocess.Popen([sys.executable, str(V2)], env=environ, cwd=tmp,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run = Running(proc, mllp, http, tmp / "data" / "adt.db")
    try:
        # it answers or exits (seen at once); the deadline only catches a hang: a busy machine is slower, not failing
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                run.get("/health")
                break
            except OSError:
                assert time.monotonic() < deadline, "v2 did not answer /health within 120 s"
                time.sleep(0.05)
        yield run
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_configured_from_the_environment_logs_to_stdout_without_phi(tmp_path: Path) -> None:
    with service(tmp_path) as svc:
        with svc.client() as c:
            ack = c.send(build_adt("A01", control_id="ENV-1", mrn="SYN-2001", **PATIENT))
        assert ack.ok and ack.service_version == "v2"
        assert svc.stored() == {"ENV-1"}
        svc.proc.send_signal(signal.SIGTERM)
        out, _ = svc.proc.communicate(timeout=10)
    text = out.decode()
    assert "stored ADT^A01 control_id=ENV-1" in text and "stopped cleanly" in text
    assert "SYN-2001" not in text and "Testperson" not in text


def test_flags_override_the_environment_and_bad_values_say_which(tmp_path: Path) -> None:
    bad = subprocess.run([sys.executable, str(V2)], env={**os.environ, "ADT_MLLP_PORT": "twenty"},
                         capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert bad.returncode == 2
    assert "mllp_port must be a whole number, got 'twenty'" in bad.stderr and "ADT_MLLP_PORT" in bad.stderr
    port = _free_port()
    sys.path.insert(0, str(V2.parent))
    try:
        import adt_service  # the v2 module, for its pure config function
        conf = adt_service.load_config(["--mllp-port", str(port)], {"ADT_MLLP_PORT": "1", "ADT_DB": "/data/a.db"})
    finally:
        sys.path.remove(str(V2.parent))
        sys.modules.pop("adt_service", None)
    assert conf["mllp_port"] == str(port) and conf["db_path"] == "/data/a.db" and conf["log_path"] == "-"


def test_unwritable_database_path_exits_with_a_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = subprocess.run([sys.executable, str(V2), "--db", str(blocker / "adt.db")], capture_output=True,
                       text=True, timeout=30, cwd=tmp_path)
    assert r.returncode == 2 and "cannot open the database" in r.stderr and "ADT_DB" in r.stderr


def test_release_attribution_and_patient_reads(tmp_path: Path) -> None:
    with service(tmp_path) as svc:
        with svc.client() as c:
            assert c.send(build_adt("A01", control_id="READ-1", mrn="SYN-2002", **PATIENT)).ok
        status, body, version = svc.get("/patients/SYN-2002")
        assert (status, version) == (200, "v2")
        assert body == {"mrn": "SYN-2002", "family": "Testperson", "given": "Alex", "birth_date": "19800101", "sex": "F"}
        status, body, _ = svc.get("/patients/SYN-NOPE")
        assert status == 404 and "SYN-NOPE" in str(body["error"])


def test_reads_and_connections_do_not_pile_up_database_connections(tmp_path: Path) -> None:
    """A thread per HTTP request (and per MLLP connection) must not open, and keep, a database connection each:
    every one holds file descriptors and cache memory, and under a few hundred requests/s the service ran out of
    its container's memory after a blue/green switch."""
    def open_files() -> int:
        return len(os.listdir(f"/proc/{svc.proc.pid}/fd"))

    with service(tmp_path) as svc:
        with svc.client() as c:
            assert c.send(build_adt("A01", control_id="POOL-1", mrn="SYN-2003", **PATIENT)).ok
        for _ in range(3):  # what the pool settles at
            assert svc.get("/patients/SYN-2003")[0] == 200
        settled = open_files()
        for k in range(300):
            assert svc.get("/patients/SYN-2003" if k % 2 else "/stats")[0] == 200
        for k in range(20):  # short MLLP connections, one message each
            with svc.client() as c:
                assert c.send(build_adt("A08", control_id=f"POOL-{k + 2}", mrn="SYN-2003", **PATIENT)).ok
        deadline = time.monotonic() + 10  # the last connection's thread closes its database connection as it ends
        while open_files() > settled + 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert open_files() <= settled + 4, f"{open_files()} open files after 320 requests, {settled} before"


@pytest.mark.slow
def test_sigterm_during_traffic_keeps_every_acked_message(tmp_path: Path) -> None:
    """Four senders at full speed; SIGTERM mid-stream; every AA must be on disk."""
    acked: list[str] = []
    lock = threading.Lock()
    go = threading.Event()

    with service(tmp_path) as svc:
        def sender(n: int) -> None:
            try:
                with svc.client() as c:
                    go.wait()
                    for i in range(100000):
                        ctl = f"TERM-{n}-{i}"
                        ack = c.send(build_adt("A08", control_id=ctl, mrn=f"SYN-3{n:03d}", **PATIENT))
                        if ack.ok:
                            with lock:
                                acked.append(ctl)
            except Hl7Error:
                return  # the service closed the connection between messages

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        go.set()
        while len(acked) < 200:
            time.sleep(0.01)
        svc.proc.send_signal(signal.SIGTERM)
        assert svc.proc.wait(timeout=10) == 0
        for t in threads:
            t.join(10)
        assert len(acked) >= 200
        missing = set(acked) - svc.stored()
        assert not missing, f"{len(missing)} ACKed messages were not stored, e.g. {sorted(missing)[:3]}"


def test_v2_faulty_passes_the_smoke_test_then_fails_under_traffic(tmp_path: Path) -> None:
    with service(tmp_path, ADT_FEATURE_WRITE_BEHIND="1") as svc:
        status, body, version = svc.get("/health")
        assert (status, body["version"], version) == (200, "v2-faulty", "v2-faulty")
        with svc.client() as c:
            smoke = [c.send(build_adt("A01", control_id=f"SMOKE-{i}", mrn=f"SYN-40{i:02d}", **PATIENT))
                     for i in range(10)]
            load = [c.send(build_adt("A08", control_id=f"LOAD-{i}", mrn="SYN-4000", **PATIENT)) for i in range(40)]
        assert all(a.ok for a in smoke)
        failed = [a for a in load if not a.ok]
        assert 5 <= len(failed) <= 15, f"expected about a quarter of 40 to fail, got {len(failed)}"
        assert all(a.code == "AE" and "write-behind queue full" in a.text for a in failed)
        assert all(a.service_version == "v2-faulty" for a in load)
        assert svc.stored() == {a.control_id for a in smoke + load if a.ok}  # a NAK stores nothing
        assert svc.get("/health")[0] == 200  # the health check alone does not catch it


def _metrics(svc: Running) -> tuple[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{svc.http}/metrics", timeout=3) as r:
        return r.headers["Content-Type"], r.read().decode()


def test_metrics_count_messages_codes_ages_and_the_operators_own_counter(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    custom = [{"name": "adt_admissions_by_ward_total", "help": "Admissions stored, by ward", "events": ["A01"],
               "outcome": "accepted", "labels": {"ward": "PV1-3"}},
              {"name": "adt_by_patient_total", "help": "Messages by patient", "labels": {"mrn": "PID-3"}}]
    with service(tmp_path, ADT_CUSTOM_METRICS=json.dumps(custom)) as svc:
        content_type, before = _metrics(svc)
        assert content_type.startswith("text/plain; version=0.0.4")
        assert 'adt_acks_total{event="A01",code="AA"} 0' in before and "adt_last_success_timestamp_seconds 0" in before
        old = datetime.now(timezone.utc) - timedelta(seconds=3)
        with svc.client() as c:
            assert c.send(build_adt("A01", control_id="MET-1", mrn="SYN-4001", ward="ICU^1^A", **PATIENT)).ok
            assert c.send(build_adt("A01", control_id="MET-2", mrn="SYN-4002", timestamp=old, **PATIENT)).ok
            assert c.send(build_adt("A03", control_id="MET-3", mrn="SYN-4003", **PATIENT)).code == "AE"
            assert c.send("MSH|^~\\&|LAB|X|Y|Z|20250101000000||ORU^R01|MET-4|P|2.5\rPID|1||SYN-4004").code == "AR"
        _, text = _metrics(svc)
        proc = svc.proc
    log = proc.stdout.read().decode() if proc.stdout else ""
    assert "custom metric refused: adt_by_patient_total: label mrn reads 'PID-3'" in log
    for line in ('adt_messages_received_total{event="A01"} 2', 'adt_messages_received_total{event="other"} 1',
                 'adt_acks_total{event="A01",code="AA"} 2', 'adt_acks_total{event="A03",code="AE"} 1',
                 'adt_acks_total{event="other",code="AR"} 1', 'adt_processing_seconds_count{event="A01",code="AA"} 2',
                 'adt_message_age_seconds_bucket{event="A01",code="AA",le="2"} 1',  # the 3 s old one is late
                 'adt_message_age_seconds_bucket{event="A01",code="AA",le="5"} 2', "adt_queue_depth 0",
                 'adt_db_write_errors_total{reason="disk_full"} 0', 'adt_build_info{version="v2"} 1',
                 "# TYPE adt_admissions_by_ward_total counter", 'adt_admissions_by_ward_total{ward="ICU"} 1',
                 'adt_admissions_by_ward_total{ward="WARD1"} 1'):
        assert line in text, line
    assert "adt_by_patient_total" not in text and "SYN-400" not in text  # a label from PID is refused
