"""The case-study service's release images (careops/legacy-adt:v1, :v2,
:v2-faulty) run in a real Lab: reachable over MLLP and HTTP on published
ports, v2 durable across a restart (its volume) and stopped cleanly by SIGTERM."""
from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from careops.polling import eventually
from careops.hl7 import MllpClient, build_adt
from careops.lab import Lab
from careops.lab.container import LabContainer

pytestmark = pytest.mark.docker
PATIENT = dict(family="Testperson", given="Alex", birth_date="19800101", sex="F")


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab("adt-images", learner="pytest") as lab:
        yield lab


def _health(c: LabContainer) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{c.port(8081)}/health", timeout=2) as r:
        return json.loads(r.read())


def _up(c: LabContainer) -> dict[str, object]:
    return eventually(lambda: _health(c), timeout=20, what=f"{c.name} to answer /health")


def _send(c: LabContainer, control_id: str, mrn: str, event: str = "A01"):  # noqa: ANN202 - an Ack
    with MllpClient("127.0.0.1", c.port(2575), timeout=10) as client:
        return client.send(build_adt(event, control_id=control_id, mrn=mrn, **PATIENT))


def test_v2_keeps_patients_across_a_restart_and_stops_cleanly(lab: Lab) -> None:
    adt = lab.run("careops/legacy-adt:v2", name="adt", ports=[2575, 8081], volumes={"adt-data": "/data"},
                  read_only=True)
    assert _up(adt) == {"status": "ok", "version": "v2"}
    ack = _send(adt, "IMG-1", "SYN-5001")
    assert ack.ok and ack.service_version == "v2"
    assert adt.exec(["id", "-u"]).output.strip() == "10001"
    eventually(lambda: adt.reload().health == "healthy" or None, timeout=30, what="the HEALTHCHECK to pass")

    adt.restart(timeout=10)
    adt.reload()
    _up(adt)
    assert _send(adt, "IMG-1", "SYN-5001").text.startswith("duplicate")  # still remembered: the volume kept it
    adt.stop(timeout=10)
    state = adt.state()
    assert state.exit_code == 0, f"v2 should exit 0 on SIGTERM, got {state.exit_code}"
    logs = adt.logs()
    assert "stopped cleanly" in logs and "SYN-5001" not in logs


def test_v1_is_the_legacy_build_root_and_phi_in_its_log_file(lab: Lab) -> None:
    adt = lab.run("careops/legacy-adt:v1", name="adt", ports=[2575, 8081])
    assert _up(adt) == {"status": "ok", "version": "v1"}
    assert _send(adt, "IMG-V1", "SYN-5002").ok
    assert adt.exec(["id", "-u"]).output.strip() == "0"
    assert "SYN-5002" in adt.exec(["cat", "/var/log/legacy-adt/adt.log"]).output


def test_v2_faulty_is_healthy_but_names_itself(lab: Lab) -> None:
    adt = lab.run("careops/legacy-adt:v2-faulty", name="adt", ports=[2575, 8081], volumes={"adt-data": "/data"})
    assert _up(adt)["version"] == "v2-faulty"
    acks = [_send(adt, f"F-{i}", f"SYN-51{i:02d}") for i in range(40)]
    assert any(not a.ok and "write-behind" in a.text for a in acks)
