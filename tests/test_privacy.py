"""careops.privacy without a lab: certificates, tokens and scopes, sealed fields and rotation, the sign-off gate.

Each part is shown both ways: what a careful configuration allows, and what a broken one lets through or refuses.
The live service (TLS on the wire, the capture, the store in its container) is in tests/test_privacy_stack.py.
"""
from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from careops.audit import AuditLog
from careops.grading.references import reference_file
from careops.hl7 import MllpClient, MllpConnectionError, build_adt
from careops.hl7.mllp import MllpDecoder, frame
from careops.privacy import (
    AccessPolicy,
    AtRestError,
    Change,
    CourseCA,
    FieldCipher,
    Gate,
    Issuer,
    Keyring,
    PatientStore,
    PkiError,
    Scope,
    SignoffError,
    TokenError,
    authorize,
    handshake,
    pki,
    rotate,
    signoff,
    tokens,
)
from careops.privacy.atrest import cleartext_found, is_sealed
from careops.privacy.service import parse_adt

KEY = b"0123456789abcdef0123456789abcdef"
POLICY = AccessPolicy.from_yaml("""
roles:
  ward-nurse: {scopes: [user/Patient.read], wards: own, break_glass: true}
  ward-clerk: {scopes: [user/Patient.read], wards: own}
  patient-app: {scopes: [patient/Patient.read], wards: all}
  records-auditor: {scopes: [user/AuditEvent.read], wards: all}
""")


# -- certificates and TLS -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def ca() -> CourseCA:
    return CourseCA.create()


class EchoTlsServer:
    """A local MLLP/TLS echo-ACK server in a thread, with the given certificate (and client CA for mTLS)."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.ctx = ctx
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
            decoder = MllpDecoder()
            while chunk := tls.recv(65536):
                for msg in decoder.feed(chunk):
                    cid = parse_adt(msg.decode())["control_id"]
                    tls.sendall(frame(f"MSH|^~\\&|T|T|||||ACK|{cid}|P|2.5\rMSA|AA|{cid}\r"))
        except (ssl.SSLError, OSError):
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def tls_server(ca: CourseCA) -> Iterator[EchoTlsServer]:
    server = EchoTlsServer(pki.server_context(ca.issue("mllp", hosts=["localhost", "127.0.0.1"]),
                                              client_ca_pem=ca.cert_pem))
    yield server
    server.close()


def test_a_server_certificate_names_its_hosts_and_chains_to_the_ca(ca: CourseCA) -> None:
    issued = ca.issue("mllp", hosts=["mllp", "127.0.0.1"], days=2)
    cert = issued.certificate
    assert cert.issuer == ca.certificate.subject
    sans = [str(n.value) for n in cert.extensions.get_extension_for_class(pki.x509.SubjectAlternativeName).value]
    assert sans == ["mllp", "127.0.0.1"]
    assert not issued.expired() and issued.expired(datetime.now(timezone.utc) + timedelta(days=3))
    with pytest.raises(PkiError, match="names no host"):
        ca.issue("nameless")
    with pytest.raises(PkiError, match="before it starts"):
        ca.issue("x", hosts=["x"], not_before=datetime.now(timezone.utc), not_after=datetime.now(timezone.utc)
                 - timedelta(days=1))


def test_mllp_over_tls_carries_messages_for_a_trusting_sender_with_a_certificate(ca: CourseCA,
                                                                              tls_server: EchoTlsServer) -> None:
    ctx = pki.client_context(ca.cert_pem, client=ca.issue("sender", client=True))
    msg = build_adt("A01", control_id="C1", mrn="SYN-000001", family="Testfam", given="Ann", birth_date="19800101",
                    sex="F")
    with MllpClient("127.0.0.1", tls_server.port, tls=ctx, server_hostname="localhost") as client:
        assert client.send(msg).code == "AA"


def test_a_sender_refuses_an_unknown_ca_a_wrong_host_and_the_server_a_sender_without_certificate(
        ca: CourseCA, tls_server: EchoTlsServer) -> None:
    sender = ca.issue("sender", client=True)
    ok = handshake("127.0.0.1", tls_server.port, ca_pem=ca.cert_pem, server_hostname="localhost", client=sender)
    assert ok and ok.version.startswith("TLS")
    other = CourseCA.create("another CA")
    refused = [
        handshake("127.0.0.1", tls_server.port, ca_pem=other.cert_pem, server_hostname="localhost", client=sender),
        handshake("127.0.0.1", tls_server.port, ca_pem=ca.cert_pem, server_hostname="adt.example.org", client=sender),
        handshake("127.0.0.1", tls_server.port, ca_pem=ca.cert_pem, server_hostname="localhost"),
    ]
    assert [r.ok for r in refused] == [False, False, False]
    assert "not accepted" in refused[0].detail and "mismatch" in refused[1].detail.lower()
    with pytest.raises(MllpConnectionError, match="refused"):
        MllpClient("127.0.0.1", tls_server.port, tls=pki.client_context(other.cert_pem),
                   server_hostname="localhost").connect()


def test_an_expired_certificate_is_refused(ca: CourseCA) -> None:
    now = datetime.now(timezone.utc)
    expired = ca.issue("mllp", hosts=["localhost"], not_before=now - timedelta(days=10),
                       not_after=now - timedelta(days=1))
    server = EchoTlsServer(pki.server_context(expired))
    try:
        result = handshake("127.0.0.1", server.port, ca_pem=ca.cert_pem, server_hostname="localhost")
        assert not result and "expired" in result.detail
    finally:
        server.close()


# -- scoped tokens --------------------------------------------------------------------------------
def test_scopes_parse_smart_style_and_refuse_anything_else() -> None:
    assert Scope.parse("patient/Patient.read").allows("Patient", "read")
    assert not Scope.parse("patient/Patient.read").allows("Patient", "write")
    assert Scope.parse("user/*.read").wildcard and Scope.parse("system/Patient.*").wildcard
    for bad in ("Patient.read", "admin/Patient.read", "user/Patient", "user/patient.read"):
        with pytest.raises(TokenError):
            Scope.parse(bad)
    wide = AccessPolicy.from_yaml("roles: {ward-nurse: {scopes: ['user/*.*']}, clerk: {scopes: [user/Patient.read]}}")
    assert wide.wildcards() == ["ward-nurse: user/*.*"] and POLICY.wildcards() == []


@pytest.mark.parametrize(("role", "kw", "request_kw", "status"), [
    (None, {}, {}, 401),                                                        # no token
    ("ward-nurse", {"ward": "4B"}, {"patient_ward": "4B"}, 200),
    ("ward-nurse", {"ward": "4B"}, {"patient_ward": "5A"}, 403),                # another ward
    ("ward-nurse", {"ward": "4B"}, {"patient_ward": "5A", "break_glass": "code blue"}, 200),
    ("ward-clerk", {"ward": "4B"}, {"patient_ward": "5A", "break_glass": "code blue"}, 403),  # no break-glass
    ("ward-nurse", {"ward": "4B"}, {"patient_ward": "4B", "resource": "Encounter"}, 403),    # no scope
    ("patient-app", {"patient": "p1"}, {"patient_ward": "5A"}, 200),            # its own record
    ("patient-app", {"patient": "p2"}, {"patient_ward": "5A"}, 403),            # someone else's
    ("records-auditor", {"ward": "4B"}, {"patient_ward": "4B"}, 403),
    ("porter", {"ward": "4B"}, {"patient_ward": "4B"}, 403),                    # not in the policy: deny
])
def test_role_by_resource_decisions(role: str | None, kw: dict[str, str], request_kw: dict[str, str],
                                    status: int) -> None:
    issuer = Issuer(KEY, POLICY)
    header = None if role is None else "Bearer " + issuer.token("u1", role, scopes=None if role != "porter"
                                                                 else ["user/Patient.read"], **kw)
    request = {"resource": "Patient", "patient_id": "p1", **request_kw}
    decision = authorize(POLICY, KEY, header, **request)
    assert decision.status == status, decision.reason
    assert decision.break_glass == bool(status == 200 and request_kw.get("break_glass"))


def test_forged_expired_and_scope_stuffed_tokens_are_refused() -> None:
    issuer = Issuer(KEY, POLICY)
    good = issuer.token("u1", "ward-nurse", ward="4B")
    assert authorize(POLICY, KEY, "Bearer " + good, resource="Patient", patient_ward="4B").status == 200
    assert authorize(POLICY, b"another key", "Bearer " + good, resource="Patient", patient_ward="4B").status == 401
    expired = issuer.token("u1", "ward-nurse", ward="4B", ttl=-1)
    assert "expired" in authorize(POLICY, KEY, "Bearer " + expired, resource="Patient").reason
    body = good.split(".")[1]
    none_alg = tokens._b64(b'{"alg":"none"}') + "." + body + "."
    assert authorize(POLICY, KEY, "Bearer " + none_alg, resource="Patient", patient_ward="4B").status == 401
    # a token that claims a scope its role does not have gets only what the role allows
    stuffed = issuer.token("u1", "ward-nurse", ward="4B", scopes=["user/Patient.read", "user/Encounter.read"])
    assert authorize(POLICY, KEY, "Bearer " + stuffed, resource="Encounter", patient_ward="4B").status == 403
    assert authorize(POLICY, KEY, "Basic dTpw", resource="Patient").status == 401


def test_a_wildcard_policy_lets_a_nurse_read_another_ward() -> None:
    wide = AccessPolicy.from_yaml("roles: {ward-nurse: {scopes: ['user/*.read'], wards: all}}")
    token = Issuer(KEY, wide).token("u1", "ward-nurse", ward="4B")
    assert authorize(wide, KEY, "Bearer " + token, resource="Patient", patient_ward="5A").status == 200
    assert authorize(POLICY, KEY, "Bearer " + Issuer(KEY, POLICY).token("u1", "ward-nurse", ward="4B"),
                     resource="Patient", patient_ward="5A").status == 403


# -- sealed fields ----------------------------------------------------------------------------------
ROWS = [{"id": f"pt-{i}", "ward": "4B", "mrn": f"SYN-{i:06d}", "family": f"Quixfam{i}", "given": "Zed",
         "birth_date": "19500101", "gender": "F"} for i in range(30)]


def test_sealed_fields_keep_no_cleartext_in_the_file_and_open_only_where_they_belong(tmp_path: Path) -> None:
    cipher = FieldCipher(Keyring.generate())
    store = PatientStore(tmp_path / "p.db", cipher)
    for row in ROWS:
        store.put(row)
    assert store.get("pt-3") == ROWS[3] and len(store) == 30
    store.close()
    assert cleartext_found((tmp_path / "p.db").read_bytes(), ["Quixfam3", "SYN-000003"]) == []
    sealed = cipher.seal("Quixfam3", record="pt-3", name="family")
    assert is_sealed(sealed) and cipher.open(sealed, record="pt-3", name="family") == "Quixfam3"
    with pytest.raises(AtRestError, match="moved from another"):
        cipher.open(sealed, record="pt-4", name="family")
    with pytest.raises(AtRestError, match="stored in clear"):
        cipher.open("Quixfam3", record="pt-3", name="family")


def test_a_clear_store_shows_its_patients_in_the_file(tmp_path: Path) -> None:
    store = PatientStore(tmp_path / "p.db", None)
    store.put(ROWS[3])
    store.close()
    assert cleartext_found((tmp_path / "p.db").read_bytes(), ["Quixfam3", "SYN-000003"]) == ["Quixfam3", "SYN-000003"]


def test_rotation_keeps_every_record_readable_and_the_old_key_can_go(tmp_path: Path) -> None:
    k1 = Keyring.generate()
    store = PatientStore(tmp_path / "p.db", FieldCipher(k1))
    for row in ROWS:
        store.put(row)
    k2 = k1.rotated()
    assert rotate(store, k2) == 30 and store.key_ids() == {"k2": 30}
    store.cipher = FieldCipher(k2.without("k1"))
    assert list(store.rows()) == sorted(ROWS, key=lambda r: r["id"])
    # retiring a key before re-sealing loses data: the store says which key is missing, and rotate writes nothing
    store2 = PatientStore(tmp_path / "q.db", FieldCipher(k1))
    store2.put(ROWS[0])
    with pytest.raises(AtRestError, match="no longer has"):
        rotate(store2, Keyring("k9", {"k9": bytes(32)}))
    store2.cipher = FieldCipher(k1)
    assert store2.get("pt-0") == ROWS[0]


def test_a_clear_store_is_sealed_by_its_first_rotation(tmp_path: Path) -> None:
    store = PatientStore(tmp_path / "p.db", None)
    for row in ROWS[:5]:
        store.put(row)
    assert store.key_ids() == {"clear": 5}
    assert rotate(store, Keyring.generate()) == 5 and store.key_ids() == {"k1": 5}
    store.close()
    assert cleartext_found((tmp_path / "p.db").read_bytes(), ["Quixfam1"]) == []


def test_a_keyring_secret_readable_by_everyone_or_missing_is_refused(tmp_path: Path) -> None:
    ring = Keyring.generate()
    path = ring.write(tmp_path / "patient-key")
    assert Keyring.from_file(path).keys == ring.keys
    path.chmod(0o644)
    with pytest.raises(AtRestError, match="readable by every user"):
        Keyring.from_file(path)
    with pytest.raises(AtRestError, match="no keyring"):
        Keyring.from_file(tmp_path / "absent")
    with pytest.raises(AtRestError, match="current key"):
        Keyring("k2", {"k1": bytes(32)})
    with pytest.raises(AtRestError, match="retire the current"):
        ring.without("k1")


# -- separation of duties ----------------------------------------------------------------------------
@pytest.fixture
def solution_policy() -> str:
    return reference_file("patient-data/signoff.rego").read_text()


def test_the_gate_signs_for_an_approver_who_is_not_the_author_and_records_the_signature(
        tmp_path: Path, solution_policy: str) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", key=b"k")
    gate = Gate(solution_policy, ["j.rivera", "m.ito"], log)
    change = Change("CHG-1042", "a.khan", "TLS for the ADT feed")
    at = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)
    sig = gate.sign(change, "j.rivera", "approval", name="J. Rivera", now=at)
    assert (sig.signer, sig.name, sig.meaning, sig.at) == ("j.rivera", "J. Rivera", "approval",
                                                           "2026-12-01T09:30:00+00:00")
    for who in ("a.khan", "x.outsider"):
        with pytest.raises(SignoffError):
            gate.sign(Change("CHG-1043", "a.khan"), who, name=who)
    with pytest.raises(SignoffError, match="meaning"):
        gate.sign(change, "m.ito", "because", name="M. Ito")
    rows = signoff.signatures(log)
    assert [(r["signer"], r["outcome"]) for r in rows] == [("j.rivera", "signed"), ("a.khan", "refused"),
                                                          ("x.outsider", "refused"), ("m.ito", "refused")]
    assert rows[0]["printed_name"] == "J. Rivera" and rows[0]["signed_at"] == "2026-12-01T09:30:00+00:00"
    assert log.verify().ok and len(gate.refusals) == 3


STARTER = """package careops.signoff

import rego.v1

deny contains msg if {
	false
	msg := "not written yet"
}
"""


def test_a_policy_without_the_rules_lets_the_author_approve_their_own_change(tmp_path: Path,
                                                                           solution_policy: str) -> None:
    cases = [("self-approval", {"change": {"id": "C", "author": "a"}, "signer": {"id": "a", "name": "A",
                                                                                "meaning": "approval"},
                                "approvers": ["a", "b"], "meanings": list(signoff.MEANINGS)}, False),
             ("approver", {"change": {"id": "C", "author": "a"}, "signer": {"id": "b", "name": "B",
                                                                          "meaning": "approval"},
                           "approvers": ["a", "b"], "meanings": list(signoff.MEANINGS)}, True)]
    assert signoff.cases_failed(solution_policy, cases) == []
    assert signoff.cases_failed(STARTER, cases) == ["self-approval: expected refuse, the policy signs"]
    gate = Gate(STARTER, ["a.khan"], AuditLog(tmp_path / "a.jsonl", key=b"k"))
    assert gate.sign(Change("CHG-1", "a.khan"), "a.khan").signer == "a.khan"


def test_a_policy_that_does_not_compile_closes_the_gate(tmp_path: Path) -> None:
    gate = Gate("package careops.signoff\ndeny contains", ["b"], AuditLog(tmp_path / "a.jsonl", key=b"k"))
    with pytest.raises(SignoffError, match="could not be evaluated"):
        gate.sign(Change("CHG-1", "a"), "b")
    with pytest.raises(SignoffError, match="could not be evaluated"):
        signoff.evaluate("package careops.signoff\nimport rego.v1\n", {})


def test_the_service_reads_the_patient_and_ward_of_an_adt_message() -> None:
    msg = build_adt("A01", control_id="C7", mrn="SYN-000007", family="Quixfam", given="Zed", birth_date="19500101",
                    sex="F", ward="4B^12^A")
    assert parse_adt(msg) == {"control_id": "C7", "mrn": "SYN-000007", "family": "Quixfam", "given": "Zed",
                              "birth_date": "19500101", "gender": "F", "ward": "4B"}


def test_tokens_are_short_lived(monkeypatch: pytest.MonkeyPatch) -> None:
    token = Issuer(KEY, POLICY, ttl=60).token("u1", "ward-nurse", ward="4B")
    claims = tokens.verify(token, KEY)
    assert 59 <= claims.exp - time.time() <= 60
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(token, KEY, now=time.time() + 61)
