#!/usr/bin/env python3
"""Legacy ADT service v1: HL7 v2 over MLLP into SQLite, plus a status port.

This is the course's case-study "legacy" system. It is robust against bad
input but carries deliberate operational faults that later labs fix; each is
marked ``LEGACY FAULT`` here and listed in README.md (instructor note).
Standard library only, so it runs in a plain Debian python3 image.
"""
import configparser
import json
import logging
import optparse  # LEGACY FAULT (idiom): optparse instead of argparse
import os
import signal
import socket
import socketserver
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "v1"
START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
SUPPORTED_EVENTS = ("A01", "A03", "A08")

# LEGACY FAULT (idiom): one global connection and one global lock shared by
# every thread, instead of a connection per worker or a proper pool.
DB = None
DB_LOCK = threading.Lock()
CONFIG = {}
log = logging.getLogger("legacy-adt")

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


class Nak(Exception):
    """A message we must refuse: code is AE (content error) or AR (rejected)."""

    def __init__(self, code, reason, control_id=""):
        Exception.__init__(self, reason)
        self.code = code
        self.reason = reason
        self.control_id = control_id


def now_ts():
    return time.strftime("%Y%m%d%H%M%S", time.gmtime())


def clean(value):
    """Strip HL7 delimiters so echoed text cannot break the ACK's structure."""
    for ch in "|^~\\&\r\n":
        value = value.replace(ch, " ")
    return value[:200]


def build_ack(code, control_id, text="", msh=None):
    """MSH + MSA (+ ERR on errors); MSA-2 echoes the sender's MSH-10."""
    msh = msh or []
    get = lambda i: clean(msh[i]) if len(msh) > i else ""  # noqa: E731
    msg_type = msh[8].split("^") if len(msh) > 8 else []
    trigger = clean(msg_type[1]) if len(msg_type) > 1 else ""
    segs = [
        "MSH|^~\\&|LEGACY-ADT|SYNTH-HOSP|%s|%s|%s||ACK^%s^ACK|ACK-%s-%s|P|2.5"
        % (get(2), get(3), now_ts(), trigger, clean(control_id) or "NONE", int(time.time() * 1000)),
        "MSA|%s|%s|%s" % (code, clean(control_id), clean(text)),
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
        segs.append("ERR|||%s|E||||%s" % (err_code, clean(text)))
    return "\r".join(segs)


def decode_payload(payload):
    """Bytes -> text; binary garbage (control characters) is rejected."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = payload.decode("latin-1")
    bad = [c for c in text if ord(c) < 0x20 and c not in "\r\n\t"]
    if bad or not text.strip():
        raise Nak("AR", "not an HL7 message: expected text segments, got %s"
                  % ("binary data" if bad else "an empty frame"))
    return text


def parse(text):
    """Split into segments; enforce MSH first and read what we need."""
    segments = [s for s in text.replace("\n", "\r").split("\r") if s.strip()]
    if not segments[0].startswith("MSH|"):
        if any(s.startswith("MSH|") for s in segments):
            raise Nak("AR", "wrong segment order: expected MSH as the first segment, got %s first"
                      % clean(segments[0][:3]))
        raise Nak("AR", "missing MSH segment: expected the message to start with MSH|, got %r"
                  % clean(segments[0][:10]))
    msh = segments[0].split("|")
    # MSH-1 is the field separator itself, so MSH-n is msh[n-1]
    control_id = msh[9] if len(msh) > 9 else ""
    if not control_id:
        raise Nak("AR", "MSH-10 (message control id) is empty: expected an id to acknowledge")
    msg_type = (msh[8] if len(msh) > 8 else "").split("^")
    if msg_type[0] != "ADT" or len(msg_type) < 2 or msg_type[1] not in SUPPORTED_EVENTS:
        raise Nak("AR", "unsupported message type: expected ADT^A01, ADT^A03 or ADT^A08, got %s"
                  % (clean("^".join(msg_type)) or "nothing"), control_id)
    segs = {}
    for s in segments[1:]:
        name = s[:3]
        if name == "MSH":
            raise Nak("AR", "more than one MSH segment: send one message per frame", control_id)
        segs.setdefault(name, s.split("|"))
    if "PID" not in segs:
        raise Nak("AE", "missing PID segment: expected MSH, EVN, PID, PV1", control_id)
    return msh, control_id, msg_type[1], segs


def field(seg, n, comp=0):
    """Field n (1-based, non-MSH segment), component comp (0-based)."""
    if seg is None or len(seg) <= n:
        return ""
    parts = seg[n].split("~")[0].split("^")
    return parts[comp] if len(parts) > comp else ""


def store(cur, event, control_id, segs):
    """Apply one message to the database (caller owns the transaction)."""
    pid, pv1 = segs["PID"], segs.get("PV1")
    mrn = field(pid, 3).strip()
    if not mrn:
        raise Nak("AE", "PID-3 (patient MRN) is missing: expected an identifier such as SYN-0001", control_id)
    demo = (field(pid, 5, 0), field(pid, 5, 1), field(pid, 7), field(pid, 8), field(pid, 13))
    visit = field(pv1, 19) or field(pid, 18) or "V-" + mrn
    ts = now_ts()
    if event in ("A01", "A08"):
        cur.execute(
            "INSERT INTO patients (mrn, family, given, birth_date, sex, phone, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(mrn) DO UPDATE SET family=excluded.family, "
            "given=excluded.given, birth_date=excluded.birth_date, sex=excluded.sex, "
            "phone=excluded.phone, updated_at=excluded.updated_at",
            (mrn,) + demo + (ts,))
    if event == "A01":
        cur.execute("SELECT id FROM visits WHERE visit_number = ? AND status = 'open'", (visit,))
        if cur.fetchone() is None:
            cur.execute("INSERT INTO visits (visit_number, mrn, ward, status, admitted_at) "
                        "VALUES (?, ?, ?, 'open', ?)", (visit, mrn, field(pv1, 3), ts))
    elif event == "A03":
        cur.execute("UPDATE visits SET status = 'closed', discharged_at = ? "
                    "WHERE mrn = ? AND visit_number = ? AND status = 'open'", (ts, mrn, visit))
        if cur.rowcount == 0:
            raise Nak("AE", "no open visit %s for patient %s: expected an A01 before this A03"
                      % (clean(visit), clean(mrn)), control_id)
    cur.execute("INSERT INTO processed_messages (control_id, event, received_at) VALUES (?, ?, ?)",
                (control_id, event, ts))


def handle_message(payload, reply):
    """Process one payload and call reply(ack_text). Never raises."""
    msh, control_id = None, ""
    try:
        text = decode_payload(payload)
        msh, control_id, event, segs = parse(text)
        # LEGACY FAULT (PHI in logs): the whole PID segment goes to the log.
        log.info("received ADT^%s control_id=%s PID=%s" % (event, control_id, "|".join(segs["PID"])))
        with DB_LOCK:
            cur = DB.cursor()
            cur.execute("SELECT 1 FROM processed_messages WHERE control_id = ?", (control_id,))
            if cur.fetchone() is not None:
                log.info("duplicate control_id=%s, not stored again" % control_id)
                reply(build_ack("AA", control_id, "duplicate of an already processed message; not stored again", msh))
                return
            try:
                cur.execute("BEGIN")
                store(cur, event, control_id, segs)
            except BaseException:
                DB.rollback()
                raise
            # LEGACY FAULT (ACK before durable write): we answer AA first and
            # commit afterwards; a crash in between loses an ACKed message.
            try:
                reply(build_ack("AA", control_id, "", msh))
            finally:
                DB.commit()
    except Nak as nak:
        log.warning("NAK %s control_id=%s: %s" % (nak.code, nak.control_id or control_id, nak.reason))
        reply(build_ack(nak.code, nak.control_id or control_id, nak.reason, msh))
    except Exception as exc:  # never let one message kill the connection
        log.exception("internal error on control_id=%s" % control_id)
        reply(build_ack("AE", control_id, "internal error: %s; the message was not stored" % type(exc).__name__, msh))


class MllpHandler(socketserver.BaseRequestHandler):
    """One TCP connection, many framed messages."""

    def handle(self):
        sock = self.request
        frame_timeout = float(CONFIG["frame_timeout"])
        max_message = int(CONFIG["max_message"])
        buf = bytearray()
        in_frame = skipping = False
        partial_since = None

        def reply(text):
            try:
                sock.sendall(START_BLOCK + text.encode("utf-8") + END_BLOCK)
            except OSError as exc:
                log.warning("could not send ACK to %s: %s" % (self.client_address, exc))

        sock.settimeout(0.5)
        while True:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                if in_frame and partial_since and time.time() - partial_since > frame_timeout:
                    log.warning("incomplete frame from %s dropped after %ss without data" % (self.client_address, frame_timeout))
                    buf.clear()
                    in_frame = False
                    partial_since = None
                    reply(build_ack("AR", "", "incomplete frame: no end block (0x1C 0x0D) and no data for %ss; frame dropped, resend it"
                                    % frame_timeout))
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            if in_frame:
                partial_since = time.time()  # the timeout counts from the last data
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
                        log.warning("message too large from %s" % (self.client_address,))
                        reply(build_ack("AR", "", "message too large: limit %d bytes, got more; not stored" % max_message))
                        in_frame, skipping, partial_since = False, True, None
                        del buf[:max(len(buf) - 1, 0)]
                    break
                payload = bytes(buf[:end])
                del buf[:end + 2]
                in_frame, partial_since = False, None
                if len(payload) > max_message:
                    reply(build_ack("AR", "", "message too large: limit %d bytes, got %d; not stored" % (max_message, len(payload))))
                    continue
                handle_message(payload, reply)


class HttpServer(ThreadingHTTPServer):
    # Python's default listen queue (5) refuses connections when a few hundred requests/s arrive through a router
    request_queue_size = 128


class MllpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def stats():
    with DB_LOCK:
        cur = DB.cursor()
        out = {}
        for key, sql in (("patients", "SELECT COUNT(*) FROM patients"),
                         ("visits", "SELECT COUNT(*) FROM visits"),
                         ("open_visits", "SELECT COUNT(*) FROM visits WHERE status = 'open'"),
                         ("messages", "SELECT COUNT(*) FROM processed_messages")):
            cur.execute(sql)
            out[key] = cur.fetchone()[0]
    return out


class StatusHandler(BaseHTTPRequestHandler):
    """GET /health and GET /stats as JSON."""

    def do_GET(self):
        if self.path == "/health":
            code, body = 200, {"status": "ok", "version": VERSION}
        elif self.path == "/stats":
            code, body = 200, stats()
        else:
            code, body = 404, {"error": "not found: expected /health or /stats, got %s" % self.path}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        log.debug("http " + fmt % args)


def load_config(argv):
    parser = optparse.OptionParser(usage="%prog --config adt.ini [overrides]")
    parser.add_option("--config", default="/etc/legacy-adt/adt.ini")
    parser.add_option("--db", dest="db_path")
    parser.add_option("--log", dest="log_path")
    parser.add_option("--host", dest="mllp_host")
    parser.add_option("--mllp-port", dest="mllp_port")
    parser.add_option("--http-host", dest="http_host")
    parser.add_option("--http-port", dest="http_port")
    parser.add_option("--frame-timeout", dest="frame_timeout")
    parser.add_option("--max-message", dest="max_message")
    opts, _ = parser.parse_args(argv)
    ini = configparser.ConfigParser()
    if not ini.read(opts.config):
        sys.stderr.write("legacy-adt: config file %s not found; pass --config PATH\n" % opts.config)
        sys.exit(2)
    conf = dict(ini["service"]) if ini.has_section("service") else {}
    for key in ("db_path", "log_path", "mllp_host", "mllp_port", "http_host", "http_port",
                "frame_timeout", "max_message"):
        if getattr(opts, key) is not None:
            conf[key] = getattr(opts, key)
    conf.setdefault("frame_timeout", "5")
    conf.setdefault("max_message", str(1024 * 1024))
    return conf


def main(argv=None):
    global DB, CONFIG
    CONFIG = load_config(sys.argv[1:] if argv is None else argv)
    # LEGACY FAULT (runs as root): no user switch; the default paths below
    # /var/lib and /var/log are only writable by root.
    try:
        for key in ("db_path", "log_path"):
            d = os.path.dirname(os.path.abspath(CONFIG[key]))
            if not os.path.isdir(d):
                os.makedirs(d)
        logging.basicConfig(filename=CONFIG["log_path"], level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(message)s")
        DB = sqlite3.connect(CONFIG["db_path"], check_same_thread=False, isolation_level=None)
        DB.executescript(SCHEMA)
    except (OSError, sqlite3.Error) as exc:
        sys.stderr.write("legacy-adt: cannot open %s / %s: %s\n  fix: run as root (as v1 expects) "
                         "or pass --db and --log with writable paths\n" % (CONFIG["db_path"], CONFIG["log_path"], exc))
        return 2
    mllp = MllpServer((CONFIG["mllp_host"], int(CONFIG["mllp_port"])), MllpHandler)
    http = HttpServer((CONFIG["http_host"], int(CONFIG["http_port"])), StatusHandler)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    log.info("legacy-adt %s listening: mllp %s:%s http %s:%s db %s" % (
        VERSION, CONFIG["mllp_host"], CONFIG["mllp_port"], CONFIG["http_host"], CONFIG["http_port"], CONFIG["db_path"]))
    sys.stdout.write("legacy-adt %s ready: mllp port %s, http port %s\n" % (VERSION, CONFIG["mllp_port"], CONFIG["http_port"]))
    sys.stdout.flush()
    try:
        mllp.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        mllp.server_close()
        http.shutdown()
        with DB_LOCK:
            DB.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
