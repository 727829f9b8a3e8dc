#!/usr/bin/env python3
"""ADT service v2: the legacy v1 service with its operational faults fixed.

Same wire behaviour as v1 (HL7 v2 ADT over MLLP in, ACK out; the same NAKs for
bad input; idempotent on MSH-10), so senders cannot tell the difference, plus:

- configuration from the environment (ADT_*), flags override it, an INI file
  is optional; defaults are writable by a non-root user; logs go to stdout;
- no PHI in the log: control id, event and outcome only;
- commit, then ACK: an AA means the record is on disk (WAL, synchronous=FULL);
- a database connection per MLLP connection (no global lock), closed when it
  ends; HTTP reads share a small pool of connections (a thread per request
  must not open, and keep, one connection each); argparse, lazy logging;
- graceful SIGTERM: stop accepting, finish the messages already received,
  close the database, exit 0 -- every ACKed message is stored;
- ACKs end with a ``ZSV|<release>`` Z-segment and HTTP replies carry
  ``X-Service-Version``, so traffic can be attributed to a release;
- ``GET /patients/<MRN>`` for read traffic.

The **v2-faulty** release is this code with the ``ADT_FEATURE_WRITE_BEHIND``
flag on (its image sets it): an "optimisation" that passes the smoke test and
the health check but fails under real traffic (see README.md). Standard
library only.
"""
from __future__ import annotations

import argparse
import configparser
import json
import logging
import os
import queue
import signal
import socket
import socketserver
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
SUPPORTED_EVENTS = ("A01", "A03", "A08")
DEFAULTS = {
    "db_path": "data/adt.db",
    "log_path": "-",
    "mllp_host": "0.0.0.0",
    "mllp_port": "2575",
    "http_host": "0.0.0.0",
    "http_port": "8081",
    "frame_timeout": "5",
    "max_message": str(1024 * 1024),
    "log_level": "INFO",
}
ENV = {  # configuration key -> environment variable
    "db_path": "ADT_DB", "log_path": "ADT_LOG", "mllp_host": "ADT_HOST", "mllp_port": "ADT_MLLP_PORT",
    "http_host": "ADT_HTTP_HOST", "http_port": "ADT_HTTP_PORT", "frame_timeout": "ADT_FRAME_TIMEOUT",
    "max_message": "ADT_MAX_MESSAGE", "log_level": "ADT_LOG_LEVEL",
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS patients (
    mrn TEXT PRIMARY KEY,
    family TEXT, given TEXT, birth_date TEXT, sex TEXT, phone TEXT,
    updated_at TEXT
);
CREATE TABLE IF NOT EXISTS visits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    visit_number TEXT NOT NULL,
    mrn TEXT NOT NULL REFERENCES patients(mrn),
    ward TEXT,
    status TEXT NOT NULL,
    admitted_at TEXT, discharged_at TEXT
);
CREATE TABLE IF NOT EXISTS processed_messages (
    control_id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    received_at TEXT NOT NULL
);
"""

log = logging.getLogger("adt")


class Nak(Exception):
    """A message we must refuse: code is AE (content error) or AR (rejected)."""

    def __init__(self, code: str, reason: str, control_id: str = "") -> None:
        super().__init__(reason)
        self.code, self.reason, self.control_id = code, reason, control_id


class Service:
    """The running service's state: config, per-thread connections, counters."""

    def __init__(self, conf: dict[str, str]) -> None:
        self.conf = conf
        self.write_behind = os.environ.get("ADT_FEATURE_WRITE_BEHIND", "") == "1"
        self.version = "v2-faulty" if self.write_behind else "v2"
        self.stopping = threading.Event()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._readers: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self.accepted = 0  # messages handled since start (v2-faulty's trigger)

    # --- storage -----------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.conf["db_path"], timeout=30, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")  # an AA means the data is on disk
        con.execute("PRAGMA busy_timeout=30000")
        with self._lock:
            self._all.append(con)
        return con

    def db(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections are not shared); :meth:`release` closes it."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self._connect()
        return con

    def release(self) -> None:
        """Close this thread's connection (its MLLP connection ended): threads come and go, connections
        must not pile up (each holds file descriptors and cache memory)."""
        con = getattr(self._local, "con", None)
        if con is None:
            return
        self._local.con = None
        with self._lock:
            if con in self._all:
                self._all.remove(con)
        try:
            con.close()
        except sqlite3.Error:
            pass

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A connection for one HTTP read, from a pool (opened only when all are busy, kept for the next)."""
        try:
            con = self._readers.get_nowait()
        except queue.Empty:
            con = self._connect()
        try:
            yield con
        finally:
            self._readers.put(con)

    def close(self) -> None:
        with self._lock:
            for con in self._all:
                try:
                    con.close()
                except sqlite3.Error:
                    pass
            self._all.clear()

    def stats(self) -> dict[str, int]:
        out = {}
        with self.reader() as con:
            for key, sql in (("patients", "SELECT COUNT(*) FROM patients"),
                             ("visits", "SELECT COUNT(*) FROM visits"),
                             ("open_visits", "SELECT COUNT(*) FROM visits WHERE status = 'open'"),
                             ("messages", "SELECT COUNT(*) FROM processed_messages")):
                out[key] = con.execute(sql).fetchone()[0]
        return out

    def patient(self, mrn: str) -> dict[str, str] | None:
        with self.reader() as con:
            row = con.execute(
                "SELECT mrn, family, given, birth_date, sex FROM patients WHERE mrn = ?", (mrn,)).fetchone()
        return None if row is None else dict(zip(("mrn", "family", "given", "birth_date", "sex"), row))

    # --- the v2-faulty regression -----------------------------------------
    def write_behind_fault(self) -> str | None:
        """ADT_FEATURE_WRITE_BEHIND: after a warm-up that smoke tests pass, every
        fourth request hits a full queue (and all of them get slower)."""
        if not self.write_behind:
            return None
        with self._lock:
            self.accepted += 1
            n = self.accepted
        if n <= 20:
            return None
        time.sleep(0.05)
        return "write-behind queue full" if n % 4 == 0 else None

    # --- messages ------------------------------------------------------------
    def handle_message(self, payload: bytes) -> str:
        """Process one payload and return the ACK text. Never raises."""
        msh: list[str] | None = None
        control_id = ""
        started = time.perf_counter()
        try:
            text = decode_payload(payload)
            msh, control_id, event, segs = parse(text)
            fault = self.write_behind_fault()
            if fault:
                raise RuntimeError(fault)
            con = self.db()
            con.execute("BEGIN IMMEDIATE")  # the duplicate check and the write are one transaction
            try:
                if con.execute("SELECT 1 FROM processed_messages WHERE control_id = ?",
                               (control_id,)).fetchone() is not None:
                    con.execute("ROLLBACK")
                    log.info("duplicate control_id=%s event=%s: not stored again", control_id, event)
                    return self.ack("AA", control_id, "duplicate of an already processed message; not stored again", msh)
                store(con, event, control_id, segs)
                con.execute("COMMIT")  # durable before we say AA
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
            log.info("stored ADT^%s control_id=%s in %.1f ms", event, control_id,
                     (time.perf_counter() - started) * 1000)
            return self.ack("AA", control_id, "", msh)
        except Nak as nak:
            log.warning("NAK %s control_id=%s: %s", nak.code, nak.control_id or control_id, nak.reason)
            return self.ack(nak.code, nak.control_id or control_id, nak.reason, msh)
        except Exception as exc:  # one message never kills the connection
            log.error("internal error on control_id=%s: %s: %s", control_id, type(exc).__name__, exc)
            return self.ack("AE", control_id, "internal error: %s: %s; the message was not stored"
                            % (type(exc).__name__, exc), msh)

    def ack(self, code: str, control_id: str, text: str = "", msh: list[str] | None = None) -> str:
        return build_ack(code, control_id, text, msh) + "\rZSV|" + self.version


def now_ts() -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime())


def clean(value: str) -> str:
    """Strip HL7 delimiters so echoed text cannot break the ACK's structure."""
    for ch in "|^~\\&\r\n":
        value = value.replace(ch, " ")
    return value[:200]


def build_ack(code: str, control_id: str, text: str = "", msh: list[str] | None = None) -> str:
    """MSH + MSA (+ ERR on errors); MSA-2 echoes the sender's MSH-10."""
    msh = msh or []

    def get(i: int) -> str:
        return clean(msh[i]) if len(msh) > i else ""

    msg_type = msh[8].split("^") if len(msh) > 8 else []
    trigger = clean(msg_type[1]) if len(msg_type) > 1 else ""
    segs = [
        f"MSH|^~\\&|LEGACY-ADT|SYNTH-HOSP|{get(2)}|{get(3)}|{now_ts()}||ACK^{trigger}^ACK|"
        f"ACK-{clean(control_id) or 'NONE'}-{int(time.time() * 1000)}|P|2.5",
        f"MSA|{code}|{clean(control_id)}|{clean(text)}",
    ]
    if code != "AA":
        if text.startswith("unsupported"):
            err_code = "200^Unsupported message type^HL70357"
        elif "segment" in text:
            err_code = "100^Segment sequence error^HL70357"
        elif "missing" in text or "empty" in text:
            err_code = "101^Required field missing^HL70357"
        else:
            err_code = "207^Application internal error^HL70357"
        segs.append(f"ERR|||{err_code}|E||||{clean(text)}")
    return "\r".join(segs)


def decode_payload(payload: bytes) -> str:
    """Bytes -> text; binary garbage (control characters) is rejected."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = payload.decode("latin-1")
    bad = [c for c in text if ord(c) < 0x20 and c not in "\r\n\t"]
    if bad or not text.strip():
        raise Nak("AR", "not an HL7 message: expected text segments, got "
                  + ("binary data" if bad else "an empty frame"))
    return text


def parse(text: str) -> tuple[list[str], str, str, dict[str, list[str]]]:
    """Split into segments; enforce MSH first and read what we need."""
    segments = [s for s in text.replace("\n", "\r").split("\r") if s.strip()]
    if not segments[0].startswith("MSH|"):
        if any(s.startswith("MSH|") for s in segments):
            raise Nak("AR", f"wrong segment order: expected MSH as the first segment, got {clean(segments[0][:3])} first")
        raise Nak("AR", f"missing MSH segment: expected the message to start with MSH|, got {clean(segments[0][:10])!r}")
    msh = segments[0].split("|")
    control_id = msh[9] if len(msh) > 9 else ""  # MSH-1 is the separator itself, so MSH-n is msh[n-1]
    if not control_id:
        raise Nak("AR", "MSH-10 (message control id) is empty: expected an id to acknowledge")
    msg_type = (msh[8] if len(msh) > 8 else "").split("^")
    if msg_type[0] != "ADT" or len(msg_type) < 2 or msg_type[1] not in SUPPORTED_EVENTS:
        raise Nak("AR", "unsupported message type: expected ADT^A01, ADT^A03 or ADT^A08, got "
                  + (clean("^".join(msg_type)) or "nothing"), control_id)
    segs: dict[str, list[str]] = {}
    for s in segments[1:]:
        name = s[:3]
        if name == "MSH":
            raise Nak("AR", "more than one MSH segment: send one message per frame", control_id)
        segs.setdefault(name, s.split("|"))
    if "PID" not in segs:
        raise Nak("AE", "missing PID segment: expected MSH, EVN, PID, PV1", control_id)
    return msh, control_id, msg_type[1], segs


def field(seg: list[str] | None, n: int, comp: int = 0) -> str:
    """Field n (1-based, non-MSH segment), component comp (0-based)."""
    if seg is None or len(seg) <= n:
        return ""
    parts = seg[n].split("~")[0].split("^")
    return parts[comp] if len(parts) > comp else ""


def store(con: sqlite3.Connection, event: str, control_id: str, segs: dict[str, list[str]]) -> None:
    """Apply one message to the database (caller owns the transaction)."""
    pid, pv1 = segs["PID"], segs.get("PV1")
    mrn = field(pid, 3).strip()
    if not mrn:
        raise Nak("AE", "PID-3 (patient MRN) is missing: expected an identifier such as SYN-0001", control_id)
    demo = (field(pid, 5, 0), field(pid, 5, 1), field(pid, 7), field(pid, 8), field(pid, 13))
    visit = field(pv1, 19) or field(pid, 18) or "V-" + mrn
    ts = now_ts()
    if event in ("A01", "A08"):
        con.execute(
            "INSERT INTO patients (mrn, family, given, birth_date, sex, phone, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(mrn) DO UPDATE SET family=excluded.family, "
            "given=excluded.given, birth_date=excluded.birth_date, sex=excluded.sex, "
            "phone=excluded.phone, updated_at=excluded.updated_at",
            (mrn, *demo, ts))
    if event == "A01":
        if con.execute("SELECT id FROM visits WHERE visit_number = ? AND status = 'open'", (visit,)).fetchone() is None:
            con.execute("INSERT INTO visits (visit_number, mrn, ward, status, admitted_at) "
                        "VALUES (?, ?, ?, 'open', ?)", (visit, mrn, field(pv1, 3), ts))
    elif event == "A03":
        cur = con.execute("UPDATE visits SET status = 'closed', discharged_at = ? "
                          "WHERE mrn = ? AND visit_number = ? AND status = 'open'", (ts, mrn, visit))
        if cur.rowcount == 0:
            raise Nak("AE", f"no open visit {clean(visit)} for patient {clean(mrn)}: expected an A01 before this A03",
                      control_id)
    con.execute("INSERT INTO processed_messages (control_id, event, received_at) VALUES (?, ?, ?)",
                (control_id, event, ts))


class MllpHandler(socketserver.BaseRequestHandler):
    """One TCP connection, many framed messages; ends between messages on SIGTERM."""

    server: MllpServer

    def handle(self) -> None:
        svc = self.server.service
        sock = self.request
        frame_timeout = float(svc.conf["frame_timeout"])
        max_message = int(svc.conf["max_message"])
        buf = bytearray()
        in_frame = skipping = False
        partial_since: float | None = None

        def reply(text: str) -> None:
            try:
                sock.sendall(START_BLOCK + text.encode("utf-8") + END_BLOCK)
            except OSError as exc:
                log.warning("could not send ACK to %s: %s", self.client_address, exc)

        sock.settimeout(0.25)
        while True:
            if svc.stopping.is_set() and not in_frame:
                return  # between messages: nothing received is left unanswered
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                if in_frame and partial_since and time.time() - partial_since > frame_timeout:
                    log.warning("incomplete frame from %s dropped after %ss without data", self.client_address, frame_timeout)
                    buf.clear()
                    in_frame, partial_since = False, None
                    reply(svc.ack("AR", "", "incomplete frame: no end block (0x1C 0x0D) and no data for %ss; "
                                  "frame dropped, resend it" % frame_timeout))
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            if in_frame:
                partial_since = time.time()
            while buf:
                if skipping:
                    end = buf.find(END_BLOCK)
                    if end < 0:
                        del buf[:max(len(buf) - 1, 0)]
                        break
                    del buf[:end + 2]
                    skipping = False
                    continue
                if not in_frame:
                    start = buf.find(START_BLOCK)
                    if start < 0:
                        buf.clear()  # garbage between frames is ignored
                        break
                    del buf[:start + 1]
                    in_frame, partial_since = True, time.time()
                    continue
                end = buf.find(END_BLOCK)
                if end < 0:
                    if len(buf) > max_message + 1:
                        log.warning("message too large from %s", self.client_address)
                        reply(svc.ack("AR", "", "message too large: limit %d bytes, got more; not stored" % max_message))
                        in_frame, skipping, partial_since = False, True, None
                        del buf[:max(len(buf) - 1, 0)]
                    break
                payload = bytes(buf[:end])
                del buf[:end + 2]
                in_frame, partial_since = False, None
                if len(payload) > max_message:
                    reply(svc.ack("AR", "", "message too large: limit %d bytes, got %d; not stored"
                                  % (max_message, len(payload))))
                    continue
                reply(svc.handle_message(payload))


class HttpServer(ThreadingHTTPServer):
    # Python's default listen queue (5) refuses connections when a few hundred requests/s arrive through a router
    request_queue_size = 128


class MllpServer(socketserver.ThreadingTCPServer):
    daemon_threads = False  # server_close() waits for connections to finish their message
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], service: Service) -> None:
        self.service = service
        super().__init__(address, MllpHandler)

    def process_request_thread(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.service.release()  # the connection's thread ends: so does its database connection


class StatusHandler(BaseHTTPRequestHandler):
    """GET /health, /stats and /patients/<MRN> as JSON."""

    server: ThreadingHTTPServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        svc: Service = self.server.service  # type: ignore[attr-defined]
        code, body = 200, None
        if self.path == "/health":
            body = {"status": "stopping" if svc.stopping.is_set() else "ok", "version": svc.version}
            code = 503 if svc.stopping.is_set() else 200
        elif self.path == "/stats":
            body = svc.stats()
        elif self.path.startswith("/patients/"):
            fault = svc.write_behind_fault()
            mrn = unquote(self.path[len("/patients/"):])
            found = None if fault else svc.patient(mrn)
            if fault:
                code, body = 503, {"error": fault}
            elif found is None:
                code, body = 404, {"error": f"no patient with MRN {mrn!r}"}
            else:
                body = found
        else:
            code, body = 404, {"error": f"not found: expected /health, /stats or /patients/<MRN>, got {self.path}"}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Service-Version", svc.version)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt: str, *args: object) -> None:
        log.debug("http " + fmt, *args)


def load_config(argv: list[str], environ: dict[str, str] | None = None) -> dict[str, str]:
    """Defaults < INI file (optional) < environment (ADT_*) < flags."""
    environ = dict(os.environ if environ is None else environ)
    parser = argparse.ArgumentParser(description="ADT service v2 (HL7 v2 over MLLP into SQLite)")
    parser.add_argument("--config", default=environ.get("ADT_CONFIG"), help="optional INI file ([service] section)")
    for flag, key in (("--db", "db_path"), ("--log", "log_path"), ("--host", "mllp_host"),
                      ("--mllp-port", "mllp_port"), ("--http-host", "http_host"), ("--http-port", "http_port"),
                      ("--frame-timeout", "frame_timeout"), ("--max-message", "max_message"),
                      ("--log-level", "log_level")):
        parser.add_argument(flag, dest=key, help=f"overrides ${ENV[key]}")
    opts = parser.parse_args(argv)
    conf = dict(DEFAULTS)
    if opts.config:
        ini = configparser.ConfigParser()
        if not ini.read(opts.config):
            parser.error(f"config file {opts.config} not found: pass --config PATH, set ADT_CONFIG, or use ADT_* variables")
        if ini.has_section("service"):
            conf.update({k: v for k, v in ini["service"].items() if k in DEFAULTS})
    conf.update({key: environ[var] for key, var in ENV.items() if environ.get(var)})
    conf.update({key: getattr(opts, key) for key in DEFAULTS if getattr(opts, key) is not None})
    for key in ("mllp_port", "http_port", "max_message"):
        if not conf[key].isdigit():
            parser.error(f"{key} must be a whole number, got {conf[key]!r} (flag or ${ENV[key]})")
    return conf


def setup_logging(conf: dict[str, str]) -> None:
    handler: logging.Handler
    if conf["log_path"] == "-":
        handler = logging.StreamHandler(sys.stdout)
    else:
        os.makedirs(os.path.dirname(os.path.abspath(conf["log_path"])), exist_ok=True)
        handler = logging.FileHandler(conf["log_path"])
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(conf["log_level"].upper())


def main(argv: list[str] | None = None) -> int:
    conf = load_config(sys.argv[1:] if argv is None else argv)
    setup_logging(conf)
    svc = Service(conf)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(conf["db_path"])), exist_ok=True)
        svc.db().executescript(SCHEMA)
    except (OSError, sqlite3.Error) as exc:
        sys.stderr.write(f"adt: cannot open the database {conf['db_path']}: {exc}\n"
                         "  fix: set ADT_DB (or --db) to a writable path, e.g. on a volume mounted at /data\n")
        return 2
    try:
        mllp = MllpServer((conf["mllp_host"], int(conf["mllp_port"])), svc)
        http = HttpServer((conf["http_host"], int(conf["http_port"])), StatusHandler)
    except OSError as exc:
        sys.stderr.write(f"adt: cannot listen on MLLP port {conf['mllp_port']} / HTTP port {conf['http_port']}: "
                         f"{exc}\n  fix: choose free ports with ADT_MLLP_PORT / ADT_HTTP_PORT\n")
        return 2
    http.service = svc  # type: ignore[attr-defined]
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, name="http", daemon=True).start()

    def stop(signum: int, frame: object) -> None:
        if not svc.stopping.is_set():
            log.info("signal %d: draining connections, then stopping", signum)
            svc.stopping.set()
            threading.Thread(target=mllp.shutdown, name="shutdown", daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("adt %s listening: mllp %s:%s http %s:%s", svc.version, conf["mllp_host"], conf["mllp_port"],
             conf["http_host"], conf["http_port"])
    print(f"adt {svc.version} ready: mllp port {conf['mllp_port']}, http port {conf['http_port']}", flush=True)
    try:
        mllp.serve_forever(poll_interval=0.2)
    finally:
        mllp.server_close()  # waits for every connection to finish its current message
        http.shutdown()
        http.server_close()
        svc.close()
        log.info("adt %s stopped cleanly", svc.version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
