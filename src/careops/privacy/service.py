"""Module 6's patient-data service: ADT over MLLP in, FHIR Patient reads out -- as safe as its configuration.

Runs in the lab (``python -m careops.privacy.service``, image ``careops/patient-data``); careops writes its
configuration from the learner's answers, so the same service is open or protected depending on them:

* MLLP on a plain port and/or over TLS (``mllp_port`` / ``mllps_port``; ``mllp_client_ca``: senders must present a
  certificate from the course CA);
* the FHIR reads on plain HTTP and/or HTTPS (``http_port`` / ``https_port``);
* ``access``: the access policy (roles and scopes); with none, every read is answered (the "before");
* ``keyring_file``: the patient store's keys from a mounted secret; ``key_env``: a key from an environment
  variable (visible in the container's configuration: the broken way); neither: a clear-text store.

Every read, allowed or not, goes to the hash-chained audit log ``/data/audit.jsonl`` with who, role, which
patient (internal id), outcome and whether break-glass opened it. Logs on stdout carry no patient data.

    GET /health                  {"status": "ok"} (no token)
    GET /fhir/Patient/<id>       a FHIR Patient, if the token allows
    GET /stats                   counts only
    python -m careops.privacy.service rotate   re-seal every row with the keyring file's current key
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import signal
import socketserver
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from careops.audit import AuditLog
from careops.hl7.mllp import MllpDecoder, frame
from careops.privacy.atrest import (
    AtRestError,
    FieldCipher,
    Keyring,
    PatientStore,
    rotate,
)
from careops.privacy.tokens import BREAK_GLASS_HEADER, AccessPolicy, authorize

CONFIG = Path(os.environ.get("PD_CONFIG", "/run/config/service.json"))
log = logging.getLogger("patient-data")


def load_config(path: Path = CONFIG) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _secret(path: str) -> bytes:
    return Path(path).read_bytes().strip()


def open_store(cfg: dict[str, Any]) -> PatientStore:
    data = Path(cfg.get("data", "/data"))
    cipher = None
    if cfg.get("keyring_file"):
        cipher = FieldCipher(Keyring.from_file(cfg["keyring_file"]))
    elif cfg.get("key_env"):
        cipher = FieldCipher(Keyring.from_json(os.environ[cfg["key_env"]]))
    return PatientStore(data / "patients.db", cipher)


def _fields(segment: str) -> list[str]:
    return segment.split("|")


def parse_adt(message: str) -> dict[str, str]:
    """The patient of an ADT message: MRN, name, birth date, sex, ward (PV1-3's point of care)."""
    segs = {s[:3]: _fields(s) for s in message.replace("\n", "\r").split("\r") if s}
    pid, pv1, msh = segs.get("PID") or [], segs.get("PV1") or [], segs.get("MSH") or []

    def at(seg: list[str], i: int) -> str:
        return seg[i] if len(seg) > i else ""

    name = at(pid, 5).split("^")
    return {"control_id": at(msh, 9), "mrn": at(pid, 3).split("^")[0], "family": name[0],
            "given": name[1] if len(name) > 1 else "", "birth_date": at(pid, 7), "gender": at(pid, 8),
            "ward": at(pv1, 3).split("^")[0]}


def ack(control_id: str, code: str, text: str = "") -> bytes:
    return frame(f"MSH|^~\\&|PATIENT-DATA|SYNTH-HOSP|||||ACK|{control_id}-ACK|P|2.5\rMSA|{code}|{control_id}|{text}\r")


class Service:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.lock = threading.Lock()
        self.store = open_store(cfg)
        self.keyring_mtime = self._keyring_mtime()
        data = Path(cfg.get("data", "/data"))
        self.audit_key = _secret(cfg["audit_key_file"])
        self.audit = AuditLog(data / "audit.jsonl", key=self.audit_key)
        self.access = AccessPolicy.from_data(cfg["access"]) if cfg.get("access") is not None else None
        self.token_key = _secret(cfg["token_key_file"]) if cfg.get("token_key_file") else b""
        self.stored = 0
        self.reads = {"200": 0, "401": 0, "403": 0, "404": 0}

    def _keyring_mtime(self) -> float:
        f = self.cfg.get("keyring_file")
        return Path(f).stat().st_mtime if f else 0.0

    def _refresh_keys(self) -> None:
        """A rotated keyring file (a new mounted secret) is read before the next use."""
        if self.cfg.get("keyring_file") and self._keyring_mtime() != self.keyring_mtime:
            self.store.cipher = FieldCipher(Keyring.from_file(self.cfg["keyring_file"]))
            self.keyring_mtime = self._keyring_mtime()

    def patient_id(self, mrn: str) -> str:
        """An internal id for the MRN (keyed hash: not the MRN, and not reversible without the key)."""
        return "pt-" + hmac.new(self.audit_key, mrn.encode(), hashlib.sha256).hexdigest()[:16]

    def admit(self, message: str) -> bytes:
        row = parse_adt(message)
        if not row["mrn"]:
            return ack(row["control_id"], "AE", "PID-3 (MRN) is empty")
        with self.lock:
            self._refresh_keys()
            self.store.put({**row, "id": self.patient_id(row["mrn"])})
            self.stored += 1
        return ack(row["control_id"], "AA")

    def rotate(self) -> int:
        if not self.cfg.get("keyring_file"):
            raise AtRestError("this service has no mounted keyring to rotate to",
                              fix="mount the key as a secret file (store: {key: secret})")
        with self.lock:
            n = rotate(self.store, Keyring.from_file(self.cfg["keyring_file"]))
            self.keyring_mtime = self._keyring_mtime()
            return n

    def read_patient(self, pid: str, headers: Any) -> tuple[int, dict[str, Any]]:
        try:
            with self.lock:
                self._refresh_keys()
                row = self.store.get(pid)
        except AtRestError as exc:  # a key is missing: the record exists but nobody can read it
            self.audit.append(actor="patient-data", role="service", action="read", resource=f"Patient/{pid}",
                              outcome="500", source="fhir", details={"reason": exc.message[:200]})
            self.reads["500"] = self.reads.get("500", 0) + 1
            return 500, {"resourceType": "OperationOutcome", "issue": [
                {"severity": "fatal", "code": "exception", "diagnostics": "the record cannot be opened"}]}
        ward = row["ward"] if row else ""
        if self.access is None:
            decision = None
            status = 200 if row else 404
            who = {"actor": "anonymous", "role": "none", "purpose": "no access control"}
        else:
            decision = authorize(self.access, self.token_key, headers.get("Authorization"), resource="Patient",
                                 patient_id=pid, patient_ward=ward, break_glass=headers.get(BREAK_GLASS_HEADER, ""))
            status = decision.status if decision.status != 200 or row else 404
            who = {"actor": decision.sub or "unknown", "role": decision.role or "none",
                   "purpose": "break-glass" if decision.break_glass else "treatment"}
        self.audit.append(action="read", resource=f"Patient/{pid}", outcome=str(status), source="fhir",
                          details={"patient_ward": ward, "reason": decision.reason if decision else "",
                                   "break_glass": bool(decision and decision.break_glass)}, **who)
        self.reads[str(status)] = self.reads.get(str(status), 0) + 1
        if status != 200:
            return status, {"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "forbidden" if status == 403 else "login" if status == 401
                 else "not-found", "diagnostics": decision.reason if decision else "not found"}]}
        assert row is not None
        return 200, {"resourceType": "Patient", "id": pid,
                     "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": row["mrn"]}],
                     "name": [{"family": row["family"], "given": [row["given"]]}],
                     "gender": {"F": "female", "M": "male"}.get(row["gender"], "unknown"),
                     "birthDate": f"{row['birth_date'][:4]}-{row['birth_date'][4:6]}-{row['birth_date'][6:8]}"
                     if len(row["birth_date"]) == 8 else row["birth_date"],
                     "extension": [{"url": "urn:careops:ward", "valueString": ward}]}


def _tls_server(cfg: dict[str, Any], *, client_ca: bool) -> ssl.SSLContext:
    tls = Path(cfg.get("tls_dir", "/run/secrets/tls"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(tls / "server.crt", tls / "server.key")
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(tls / "ca.crt")
    return ctx


def serve_mllp(service: Service, port: int, ctx: ssl.SSLContext | None) -> socketserver.ThreadingTCPServer:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            sock = self.request
            if ctx is not None:
                try:
                    sock = ctx.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    log.info("MLLP TLS handshake refused: %s", getattr(exc, "reason", exc))
                    return
            decoder = MllpDecoder()
            while True:
                try:
                    chunk = sock.recv(65536)
                except (ssl.SSLError, OSError):
                    return
                if not chunk:
                    return
                for payload in decoder.feed(chunk):
                    sock.sendall(service.admit(payload.decode("utf-8", errors="replace")))

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    return Server(("0.0.0.0", port), Handler)


def serve_http(service: Service, port: int, ctx: ssl.SSLContext | None) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body leave as two writes: no 40 ms wait for an ACK

        def log_message(self, *args: Any) -> None:  # no paths (patient ids) in the container's log
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(raw)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="patient-data"')
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/health":
                return self._send(200, {"status": "ok"})
            if path == "/stats":
                return self._send(200, {"stored": service.stored, "reads": service.reads,
                                        "keys": service.store.key_ids()})
            if path.startswith("/fhir/Patient/"):
                return self._send(*service.read_patient(path.removeprefix("/fhir/Patient/"), self.headers))
            return self._send(404, {"resourceType": "OperationOutcome", "issue": [{"code": "not-found"}]})

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True
    if ctx is not None:
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    return server


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = load_config()
    if argv[:1] == ["rotate"]:
        try:
            service = Service(cfg)
            print(json.dumps({"resealed": service.rotate(), "keys": service.store.key_ids()}))
        except AtRestError as exc:
            print(json.dumps({"error": exc.message}))
            return 1
        return 0
    service = Service(cfg)
    servers: list[Any] = []
    if cfg.get("mllp_port"):
        servers.append(serve_mllp(service, int(cfg["mllp_port"]), None))
    if cfg.get("mllps_port"):
        servers.append(serve_mllp(service, int(cfg["mllps_port"]),
                                  _tls_server(cfg, client_ca=bool(cfg.get("mllp_client_ca")))))
    if cfg.get("http_port"):
        servers.append(serve_http(service, int(cfg["http_port"]), None))
    if cfg.get("https_port"):
        servers.append(serve_http(service, int(cfg["https_port"]), _tls_server(cfg, client_ca=False)))
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    log.info("patient-data listening: %s", ", ".join(f"{k}={cfg.get(k)}" for k in
                                                    ("mllp_port", "mllps_port", "http_port", "https_port")))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for s in servers:
        s.shutdown()
    service.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
