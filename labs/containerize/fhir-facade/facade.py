#!/usr/bin/env python3
"""FHIR façade for ADT-Legacy: HL7 v2 ADT over MLLP in, FHIR R4 Patient/Encounter out over HTTP.

The strangler pattern: registration systems send their ADT messages to the
façade instead of the legacy service. The façade forwards each message
unchanged to the legacy service (``FACADE_UPSTREAM``, host:port) and answers
with the legacy service's own ACK, so senders see no difference. Only when the
legacy service accepted a message (AA) does the façade map it to FHIR R4
Patient and Encounter resources, validate them with fhir.resources (R4B
models, the R4-compatible release) and serve them read-only:

    GET /health                         {"status": "ok", "upstream": "..."}
    GET /fhir/Patient/<id>              a Patient (id = the MRN)
    GET /fhir/Encounter/<id>            an Encounter (id = the visit number)
    GET /fhir/Patient?identifier=<mrn>  a searchset Bundle
    GET /stats                          counts, and messages that failed to map

Configuration (environment): FACADE_MLLP_PORT (2575), FACADE_HTTP_PORT (8080),
FACADE_UPSTREAM (adt:2575). Logs go to stdout, without patient data. SIGTERM
stops it cleanly. The resources live in memory: the legacy database remains
the system of record, as it should during a strangler migration.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import adt_fhir
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.patient import Patient

START, END = b"\x0b", b"\x1c\x0d"
MAX_MESSAGE = 1024 * 1024
log = logging.getLogger("fhir-facade")


class Store:
    """Validated FHIR resources by id, thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.patients: dict[str, dict] = {}
        self.encounters: dict[str, dict] = {}
        self.forwarded = 0
        self.mapped = 0
        self.failed: list[str] = []

    def add(self, message: str) -> None:
        pat = Patient.model_validate(adt_fhir.patient(message))
        enc_raw = adt_fhir.encounter(message)
        enc = Encounter.model_validate(enc_raw) if enc_raw else None
        with self.lock:
            self.patients[pat.id] = json.loads(pat.model_dump_json())
            if enc is not None:
                self.encounters[enc.id] = json.loads(enc.model_dump_json())
            self.mapped += 1


def control_id(message: str) -> str:
    msh = adt_fhir.segments(message).get("MSH") or []
    return msh[10] if len(msh) > 10 else ""


def nak(message: str, text: str) -> bytes:
    cid = control_id(message)
    return (f"MSH|^~\\&|FHIR-FACADE|SYNTH-HOSP|||{''}||ACK|{cid}-FACADE|P|2.5\rMSA|AE|{cid}|{text}\r").encode()


def resolve(host: str, port: int, timeout: float = 3.0) -> tuple[str, int]:
    """The upstream's address, or OSError within ``timeout`` (a missing name can stall DNS for long)."""
    found: list[tuple[str, int]] = []

    def lookup() -> None:
        try:
            info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found.append(info[0][4][:2])
        except OSError:
            pass

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(timeout)
    if not found:
        raise OSError(f"cannot resolve the upstream {host}")
    return found[0]


def forward(upstream: tuple[str, int], payload: bytes, timeout: float = 10.0) -> bytes:
    """Send one framed message upstream and return the upstream's reply payload."""
    with socket.create_connection(resolve(*upstream), timeout=timeout) as conn:
        conn.sendall(START + payload + END)
        buf = b""
        while END not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                raise ConnectionError("upstream closed the connection before its ACK")
            buf += chunk
            if len(buf) > MAX_MESSAGE:
                raise ConnectionError("upstream reply too large")
    start = buf.find(START)
    return buf[start + 1:buf.find(END)]


class MllpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        buf = b""
        self.request.settimeout(1.0)
        while not server.stopping.is_set():  # type: ignore[attr-defined]
            try:
                chunk = self.request.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while END in buf:
                start = buf.find(START)
                end = buf.find(END)
                payload = buf[start + 1:end] if 0 <= start < end else b""
                buf = buf[end + 2:]
                self.request.sendall(START + self.process(payload) + END)
            if len(buf) > MAX_MESSAGE:
                buf = b""

    def process(self, payload: bytes) -> bytes:
        server = self.server
        message = payload.decode("utf-8", "replace")
        try:
            reply = forward(server.upstream, payload)  # type: ignore[attr-defined]
        except OSError as exc:
            log.warning("upstream unavailable for control id %s: %s", control_id(message), type(exc).__name__)
            return nak(message, "legacy ADT service unavailable; resend later")
        store: Store = server.store  # type: ignore[attr-defined]
        with store.lock:
            store.forwarded += 1
        text = reply.decode("utf-8", "replace")
        msa = next((s.split("|") for s in text.replace("\n", "\r").split("\r") if s.startswith("MSA|")), [])
        if len(msa) > 1 and msa[1] in ("AA", "CA"):
            try:
                store.add(message)
                log.info("mapped control id %s (%s)", control_id(message), adt_fhir.event_of(message))
            except Exception as exc:  # noqa: BLE001 - the legacy service accepted it: keep its ACK
                with store.lock:
                    store.failed.append(f"{control_id(message)}: {type(exc).__name__}")
                log.warning("control id %s accepted upstream but not mappable: %s", control_id(message),
                            type(exc).__name__)
        return reply


class MllpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class HttpHandler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def log_message(self, fmt: str, *args: object) -> None:  # request lines hold ids: keep them out of the log
        return

    def _send(self, code: int, body: object, ctype: str = "application/fhir+json") -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _outcome(self, code: int, text: str) -> None:
        self._send(code, {"resourceType": "OperationOutcome",
                          "issue": [{"severity": "error", "code": "not-found" if code == 404 else "invalid",
                                     "diagnostics": text}]})

    def do_GET(self) -> None:
        store: Store = self.server.store  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        if url.path == "/health":
            return self._send(200, {"status": "ok", "upstream": "{}:{}".format(*self.server.upstream)},  # type: ignore[attr-defined]
                              "application/json")
        if url.path == "/stats":
            with store.lock:
                return self._send(200, {"forwarded": store.forwarded, "mapped": store.mapped,
                                        "patients": len(store.patients), "encounters": len(store.encounters),
                                        "failed": list(store.failed)}, "application/json")
        if len(parts) == 3 and parts[0] == "fhir" and parts[1] in ("Patient", "Encounter"):
            pool = store.patients if parts[1] == "Patient" else store.encounters
            with store.lock:
                found = pool.get(parts[2])
            return self._send(200, found) if found else self._outcome(404, f"{parts[1]}/{parts[2]} not found")
        if len(parts) == 2 and parts[0] == "fhir" and parts[1] == "Patient":
            wanted = parse_qs(url.query).get("identifier", [""])[0].split("|")[-1]
            with store.lock:
                hits = [p for p in store.patients.values() if any(i.get("value") == wanted for i in p["identifier"])]
            return self._send(200, {"resourceType": "Bundle", "type": "searchset", "total": len(hits),
                                    "entry": [{"fullUrl": f"Patient/{p['id']}", "resource": p} for p in hits]})
        return self._outcome(404, "expected /health, /stats, /fhir/Patient/<id>, /fhir/Encounter/<id> "
                                  "or /fhir/Patient?identifier=<mrn>")


def main() -> int:
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    host, _, port = os.environ.get("FACADE_UPSTREAM", "adt:2575").rpartition(":")
    store = Store()
    stopping = threading.Event()
    mllp = MllpServer(("0.0.0.0", int(os.environ.get("FACADE_MLLP_PORT", "2575"))), MllpHandler)
    http = ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("FACADE_HTTP_PORT", "8080"))), HttpHandler)
    for srv in (mllp, http):
        srv.store, srv.upstream, srv.stopping = store, (host, int(port)), stopping  # type: ignore[attr-defined]
    threads = [threading.Thread(target=srv.serve_forever, daemon=True) for srv in (mllp, http)]
    for t in threads:
        t.start()
    log.info("FHIR façade up: MLLP %d, HTTP %d, upstream %s:%s", mllp.server_address[1], http.server_address[1],
             host, port)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    stopping.set()
    mllp.shutdown()
    http.shutdown()
    log.info("FHIR façade stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
