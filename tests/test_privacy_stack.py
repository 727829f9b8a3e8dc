"""careops.privacy.stack on the real engine: the patient-data service as a careful and as a careless deployment says.

Careless (plain MLLP and HTTP open, no access policy, the key in an environment variable): a passive capture on
the service's network sees the synthetic names and MRNs, anyone reads any patient, the key shows in the container's
configuration. Careful (TLS only with client certificates, scoped tokens, the key from a mounted secret): the
capture sees none of them, reads answer 401/403/200 by role and ward, break-glass works and is audited, a rotation
keeps every record readable after the old key is gone, and the database file holds no name or MRN.
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest

from careops.hl7 import build_adt
from careops.lab import Lab
from careops.privacy.atrest import cleartext_found
from careops.privacy.stack import (
    Deployment,
    DeploymentError,
    PatientDataStack,
    expired_and_wrong_host,
)
from careops.privacy.tokens import AccessPolicy

POLICY = AccessPolicy.from_yaml("""
roles:
  ward-nurse: {scopes: [user/Patient.read], wards: own, break_glass: true}
  patient-app: {scopes: [patient/Patient.read], wards: all}
""")
CAREFUL = Deployment.from_yaml("""
mllp: {plain: false, tls: true, client_certificates: required}
fhir: {http: false, https: true}
sender: {verify: true, check_hostname: true}
store: {key: secret}
""")
CARELESS = Deployment.from_yaml("""
mllp: {plain: true, tls: true}
fhir: {http: true, https: false}
sender: {verify: false}
store: {key: env}
""")
MESSAGES = [build_adt("A01", control_id=f"C{i}", mrn=f"SYN-{i:06d}", family=f"Quixfam{i}", given="Zed",
                      birth_date="19500101", sex="F", ward="4B^1^A" if i % 2 else "5A^1^A") for i in range(12)]
MARKERS = ["Quixfam3", "SYN-000003", "Quixfam10"]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab("privacy-test", workdir=tempfile.mkdtemp(prefix="careops-privacy-test-")) as lab:
        yield lab


def test_a_careless_deployment_leaks_on_the_wire_at_rest_and_to_anyone(lab: Lab) -> None:
    stack = PatientDataStack(lab, CARELESS).start()
    assert stack.listening_ports() == {2575, 2576, 8080}
    seen = stack.capture(lambda: stack.send(MESSAGES, tls=False))
    assert cleartext_found(seen, MARKERS) == MARKERS
    assert cleartext_found(stack.database(), MARKERS) == []  # sealed, but with a key anyone may read:
    assert stack.key_exposed() == ["the container's environment (docker inspect shows it)"]
    assert stack.read_patient(stack.patient_id("SYN-000003")) == 200  # no token needed
    # a sender that does not verify connects to a server with an expired or wrong-host certificate
    assert all(stack.sender_accepts(cert) for cert in expired_and_wrong_host(stack.ca).values())


def test_a_store_without_a_key_keeps_patients_in_clear(lab: Lab) -> None:
    stack = PatientDataStack(lab, Deployment()).start()
    stack.send(MESSAGES)
    assert cleartext_found(stack.database(), MARKERS) == MARKERS


def test_a_careful_deployment_protects_in_transit_at_rest_and_by_role(lab: Lab) -> None:
    stack = PatientDataStack(lab, CAREFUL, access=POLICY).start()
    seen = stack.capture(lambda: stack.send(MESSAGES))
    assert len(seen) > 2000 and cleartext_found(seen, MARKERS) == []
    assert stack.handshake() and not stack.handshake(ca_pem=None)
    assert not stack.handshake(server_hostname="adt-elsewhere.example.org")
    assert not stack.handshake(with_certificate=False)
    assert stack.listening_ports() == {2576, 8443}  # no plain port, published or not
    assert {name: stack.sender_accepts(cert) for name, cert in expired_and_wrong_host(stack.ca).items()} == \
        {"expired": False, "wrong host": False}

    on_4b, on_5a = stack.patient_id("SYN-000003"), stack.patient_id("SYN-000004")
    nurse = stack.token("n.ward4b", "ward-nurse", ward="4B")
    app = stack.token("portal", "patient-app", patient=on_5a)
    porter = stack.token("p.porter", "porter", scopes=["user/Patient.read"])
    got = {"no token": stack.read_patient(on_4b), "forged": stack.read_patient(on_4b, nurse[:-4] + "AAAA"),
           "nurse own ward": stack.read_patient(on_4b, nurse), "nurse other ward": stack.read_patient(on_5a, nurse),
           "break-glass": stack.read_patient(on_5a, nurse, break_glass="cardiac arrest, bed 12"),
           "app own record": stack.read_patient(on_5a, app), "app other record": stack.read_patient(on_4b, app),
           "unknown role": stack.read_patient(on_4b, porter)}
    assert got == {"no token": 401, "forged": 401, "nurse own ward": 200, "nurse other ward": 403,
                   "break-glass": 200, "app own record": 200, "app other record": 403, "unknown role": 403}

    log = stack.audit_log()
    assert log.verify().ok
    frame = log.to_dataframe()
    glass = frame[frame["purpose"] == "break-glass"]
    assert list(glass["actor"]) == ["n.ward4b"] and list(glass["outcome"]) == ["200"]
    assert glass["details"].iloc[0]["patient_ward"] == "5A"
    assert not frame["resource"].str.contains("SYN-").any()

    assert cleartext_found(stack.database(), MARKERS) == []
    assert stack.key_exposed(["SYN-000003", "SYN-000010"]) == []  # neither the key nor a patient in the image or its configuration
    # the scan does read every layer: a text the image holds (the service's own source) is found
    assert stack.key_exposed(["def authorize("]) == ["the image careops/patient-data:latest: 1 of the patients' identifiers"]
    assert stack.rotate_key() == {"resealed": 12, "keys": {"k2": 12}}
    stack.retire_old_keys()
    assert stack.read_patient(on_4b, nurse) == 200
    stack.start()  # a restart reads the store with the new key only
    assert [stack.read_patient(stack.patient_id(f"SYN-{i:06d}"), stack.token("a", "ward-nurse",
                                                                              ward="5A" if i % 2 == 0 else "4B"))
            for i in range(12)] == [200] * 12


def test_a_deployment_is_read_with_its_mistakes_named() -> None:
    assert Deployment.from_yaml("") == Deployment()
    for text, words in (("mllp: [1", "not valid YAML"), ("tls: true", "unknown keys"),
                        ("store: {key: image}", "secret | env | none"), ("- 1", "mapping")):
        with pytest.raises(DeploymentError, match=words):
            Deployment.from_yaml(text)
