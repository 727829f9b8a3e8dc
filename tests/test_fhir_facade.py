"""labs/containerize/fhir-facade: the mapping (validated by fhir.resources R4B) and the real façade container."""
from __future__ import annotations

import importlib.util
import json
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pydantic
import pytest
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.patient import Patient

from careops.hl7 import MllpClient, build_adt

FACADE = Path(__file__).resolve().parents[1] / "labs" / "containerize" / "fhir-facade"
SOLUTION = Path(__file__).resolve().parents[1] / "grading" / "references" / "containerize"
IMAGE = "careops/fhir-facade:latest"


def _load():
    spec = importlib.util.spec_from_file_location("adt_fhir", FACADE / "adt_fhir.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["adt_fhir"] = module
    spec.loader.exec_module(module)
    return module


adt_fhir = _load()


def msg(event: str = "A01", **kw) -> str:
    args = {"control_id": f"C-{uuid.uuid4().hex[:6]}", "mrn": "SYN-0001", "family": "Testperson", "given": "Alex",
            "birth_date": "19800101", "sex": "F", "ssn": "999-12-3456"}
    args.update(kw)
    return build_adt(event, **args)


def test_a01_maps_to_a_valid_patient_and_open_encounter() -> None:
    m = msg()
    patient = Patient.model_validate(adt_fhir.patient(m))
    assert patient.id == "SYN-0001" and patient.identifier[0].value == "SYN-0001"
    assert patient.name[0].family == "Testperson" and patient.name[0].given == ["Alex"]
    assert str(patient.birthDate) == "1980-01-01" and patient.gender == "female"
    assert patient.telecom[0].value == "555-0100" and patient.address[0].city == "Synthville"
    assert "999-12-3456" not in json.dumps(adt_fhir.patient(m))  # minimum necessary: no SSN
    enc = Encounter.model_validate(adt_fhir.encounter(m))
    assert enc.status == "in-progress" and enc.subject.reference == "Patient/SYN-0001" and enc.id == "V-SYN-0001"


def test_a03_finishes_the_encounter_and_a08_has_none() -> None:
    assert adt_fhir.encounter(msg("A03"))["status"] == "finished"
    assert adt_fhir.encounter(msg("A08")) is None
    assert adt_fhir.patient(msg("A08", sex="U"))["gender"] == "unknown"


def test_ids_are_made_fhir_safe_and_bad_messages_are_refused() -> None:
    assert adt_fhir.fhir_id("SYN 00/01") == "SYN-00-01"
    with pytest.raises(adt_fhir.MappingError, match="no PID segment"):
        adt_fhir.patient("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X|P|2.5")
    with pytest.raises(adt_fhir.MappingError, match="PID-3"):
        adt_fhir.patient(msg().replace("SYN-0001^^^SYNTH-HOSP^MR", ""))
    with pytest.raises(pydantic.ValidationError):
        Patient.model_validate({**adt_fhir.patient(msg()), "birthDate": "1980-13-45"})  # the validator is real


def _get(port: int, path: str):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.docker
@pytest.mark.slow
def test_the_facade_container_forwards_to_the_legacy_service_and_serves_fhir() -> None:
    from careops.containerize.build import build_learner_image
    from careops.containerize.live import run_service, stored
    from careops.lab import Lab

    learner = f"t-{uuid.uuid4().hex[:8]}"
    with build_learner_image((SOLUTION / "Dockerfile").read_text(), (SOLUTION / ".dockerignore").read_text(),
                             learner=learner, progress=False) as image, Lab("facade-test", learner=learner) as lab:
        assert image.ok, image.reason
        facade = lab.run(IMAGE, name="fhir-facade", ports=[2575, 8080], env={"FACADE_UPSTREAM": "adt:2575"})
        facade.wait_until("healthy", timeout=30)
        # the legacy service is not there yet: the façade says so with an AE, and maps nothing
        with MllpClient("127.0.0.1", facade.port(2575), timeout=30) as c:
            ack = c.send(msg(mrn="SYN-0100"))
        assert ack.code == "AE" and "unavailable" in ack.text
        adt = run_service(lab, image.tag)
        adt.wait_until("healthy", timeout=30)
        with MllpClient("127.0.0.1", facade.port(2575), timeout=10) as c:
            acks = [c.send(msg(mrn="SYN-0101")), c.send(msg("A03", mrn="SYN-0101")),
                    c.send(msg("A03", mrn="SYN-0102"))]
        assert [a.code for a in acks] == ["AA", "AA", "AE"]  # the legacy service's own ACKs, passed through
        assert stored(adt, ["SYN-0101"]) == ["SYN-0101"]
        port = facade.port(8080)
        status, patient = _get(port, "/fhir/Patient/SYN-0101")
        assert status == 200 and Patient.model_validate(patient).identifier[0].value == "SYN-0101"
        status, enc = _get(port, "/fhir/Encounter/V-SYN-0101")
        assert status == 200 and Encounter.model_validate(enc).status == "finished"
        status, bundle = _get(port, "/fhir/Patient?identifier=SYN-0101")
        assert bundle["resourceType"] == "Bundle" and bundle["total"] == 1
        status, outcome = _get(port, "/fhir/Patient/SYN-0102")
        assert status == 404 and outcome["resourceType"] == "OperationOutcome"
        assert _get(port, "/stats")[1]["patients"] == 1
        logs = facade.logs()
        assert "SYN-0101" not in logs and "Testperson" not in logs and "mapped control id" in logs
        facade.stop(timeout=10)
        assert facade.exit_code == 0
