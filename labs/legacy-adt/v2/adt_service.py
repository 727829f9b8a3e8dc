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
- ``GET /patients/<MRN>`` for read traffic;
- ``GET /metrics`` in the Prometheus text format (see ``Metrics``): messages
  received, ACK codes, processing time and message age histograms, queue
  depth, database write errors, the time of the last stored message, and the
  operator's own counters (``ADT_CUSTOM_METRICS``).

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
import re
import signal
import socket
import socketserver
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
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
#: JSON list of the operator's own counters (see CustomCounter); not a flag: it is a deployment's setting
CUSTOM_METRICS_ENV = "ADT_CUSTOM_METRICS"

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


# --- metrics (Prometheus text format 0.0.4) -------------------------------------

PROCESSING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
AGE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
EVENTS = (*SUPPORTED_EVENTS, "other")
CODES = ("AA", "AE", "AR")
DB_ERROR_REASONS = ("disk_full", "locked", "other")
#: segments a custom metric may read a label from: message routing and the visit, never the patient (PID, NK1 ...)
LABEL_SEGMENTS = ("MSH", "EVN", "PV1")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
FIELD_PATH = re.compile(r"^([A-Z][A-Z0-9]{2})-(\d+)(?:\.(\d+))?$")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) or abs(value) > 2**53 else str(int(value))


class Histogram:
    """Cumulative buckets, sum and count per label set (the Prometheus histogram type)."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.series: dict[tuple[tuple[str, str], ...], list[float]] = {}  # labels -> [b1..bn, +Inf, sum]

    def observe(self, labels: tuple[tuple[str, str], ...], value: float) -> None:
        row = self.series.setdefault(labels, [0.0] * (len(self.buckets) + 2))
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                row[i] += 1
        row[-2] += 1
        row[-1] += value

    def lines(self, name: str) -> list[str]:
        out = []
        for labels, row in sorted(self.series.items()):
            for bound, n in zip(self.buckets + (float("inf"),), row[:-1]):
                le = "+Inf" if bound == float("inf") else f"{bound:g}"  # le="2", as Prometheus' own clients write it
                out.append(f"{name}_bucket{_labels(labels + (('le', le),))} {_number(n)}")
            out.append(f"{name}_sum{_labels(labels)} {repr(row[-1])}")
            out.append(f"{name}_count{_labels(labels)} {_number(row[-2])}")
        return out


class CustomCounter:
    """An operator's own counter: messages of some events (and outcome) counted by fields of the message.

    Declared in ADT_CUSTOM_METRICS as JSON: ``{"name": "adt_admissions_by_ward_total", "help": "...",
    "events": ["A01"], "outcome": "accepted" | "refused" | "any", "labels": {"ward": "PV1-3"}}``. A label
    reads a field (``SEG-n``, first component) or a component (``SEG-n.c``) of MSH, EVN or PV1 only: a
    metric is seen by everyone who sees the dashboards, so it never carries a patient's data.
    """

    def __init__(self, spec: dict[str, object], builtin: set[str]) -> None:
        name = str(spec.get("name", ""))
        if not METRIC_NAME.match(name) or not name.endswith("_total") or name in builtin:
            raise ValueError(f"name {name!r} must be a new metric name (letters, digits, _) ending in _total")
        self.name, self.help = name, " ".join(str(spec.get("help", "")).split())
        if not self.help:
            raise ValueError(f"{name}: help must say what is counted")
        events = spec.get("events") or ["A01", "A03", "A08"]
        self.events = {str(e) for e in events} if isinstance(events, list) else set()
        if not self.events or not self.events <= set(SUPPORTED_EVENTS):
            raise ValueError(f"{name}: events must be a list of A01, A03, A08, got {events!r}")
        self.outcome = str(spec.get("outcome", "any"))
        if self.outcome not in ("accepted", "refused", "any"):
            raise ValueError(f"{name}: outcome must be accepted, refused or any, got {self.outcome!r}")
        labels = spec.get("labels") or {}
        if not isinstance(labels, dict) or len(labels) > 3:
            raise ValueError(f"{name}: labels must map at most 3 label names to message fields")
        self.fields: list[tuple[str, str, int, int]] = []
        for label, path in labels.items():
            m = FIELD_PATH.match(str(path))
            if not LABEL_NAME.match(str(label)) or str(label).startswith("__") or label in ("le", "event", "code"):
                raise ValueError(f"{name}: {label!r} is not a label name you may use")
            if m is None or m.group(1) not in LABEL_SEGMENTS:
                raise ValueError(f"{name}: label {label} reads {path!r}; only fields of {', '.join(LABEL_SEGMENTS)} "
                                 "(such as PV1-3) may become labels, never patient data")
            self.fields.append((str(label), m.group(1), int(m.group(2)), int(m.group(3) or 1) - 1))
        self.counts: dict[tuple[tuple[str, str], ...], float] = {}

    def count(self, event: str, code: str, segments: dict[str, list[str]]) -> None:
        if event not in self.events or (self.outcome == "accepted" and code != "AA") or \
                (self.outcome == "refused" and code == "AA"):
            return
        values = []
        for label, seg, n, comp in self.fields:
            fields = segments.get(seg)
            # MSH-1 is the separator itself, so MSH-n is fields[n - 1]; other segments' field n is fields[n]
            index = n - 1 if seg == "MSH" else n
            raw = fields[index] if fields is not None and len(fields) > index else ""
            parts = raw.split("~")[0].split("^")
            values.append((label, (parts[comp] if len(parts) > comp else "")[:40]))
        key = tuple(values)
        self.counts[key] = self.counts.get(key, 0.0) + 1

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        out += [f"{self.name}{_labels(k)} {_number(v)}" for k, v in sorted(self.counts.items())]
        return out


class Metrics:
    """What the service counts for Prometheus; ``render()`` is the body of GET /metrics."""

    def __init__(self, version: str, custom: list[dict[str, object]] | None = None) -> None:
        self._lock = threading.Lock()
        self.version = version
        self.started = time.time()
        self.received = {e: 0.0 for e in EVENTS}  # every known label value from the start: rate() sees a 0
        self.acks = {(e, c): 0.0 for e in EVENTS for c in CODES}
        self.processing = Histogram(PROCESSING_BUCKETS)
        self.age = Histogram(AGE_BUCKETS)
        self.queue_depth = 0
        self.db_errors = {r: 0.0 for r in DB_ERROR_REASONS}
        self.last_success = 0.0
        self.custom: list[CustomCounter] = []
        builtin = {"adt_messages_received_total", "adt_acks_total", "adt_db_write_errors_total"}
        for spec in custom or []:
            try:
                self.custom.append(CustomCounter(spec, builtin | {c.name for c in self.custom}))
            except (ValueError, TypeError, AttributeError) as exc:
                log.error("custom metric refused: %s", exc)

    def message_in(self) -> None:
        with self._lock:
            self.queue_depth += 1

    def message_out(self, event: str, code: str, seconds: float, sent_at: float | None,
                    segments: dict[str, list[str]]) -> None:
        """One message answered: its event (``other`` when unreadable), ACK code, time taken, MSH-7 time."""
        now = time.time()
        event = event if event in EVENTS else "other"
        labels = (("event", event), ("code", code))
        with self._lock:
            self.queue_depth -= 1
            self.received[event] = self.received.get(event, 0.0) + 1
            self.acks[(event, code)] = self.acks.get((event, code), 0.0) + 1
            self.processing.observe(labels, seconds)
            if sent_at is not None:
                self.age.observe(labels, max(0.0, now - sent_at))
            if code == "AA":
                self.last_success = now
            for counter in self.custom:
                counter.count(event, code, segments)

    def db_error(self, exc: BaseException) -> None:
        text = str(exc).lower()
        reason = "disk_full" if "full" in text else "locked" if "locked" in text or "busy" in text else "other"
        with self._lock:
            self.db_errors[reason] += 1

    def render(self) -> str:
        with self._lock:
            out = [
                "# HELP adt_build_info The running release of the ADT service.", "# TYPE adt_build_info gauge",
                f'adt_build_info{{version="{self.version}"}} 1',
                "# HELP process_start_time_seconds Start time of the process since the Unix epoch in seconds.",
                "# TYPE process_start_time_seconds gauge", f"process_start_time_seconds {self.started:.3f}",
                "# HELP adt_messages_received_total HL7 messages received over MLLP (counted when answered), by event "
                "(other: unreadable or not ADT A01/A03/A08).",
                "# TYPE adt_messages_received_total counter",
                *(f'adt_messages_received_total{{event="{e}"}} {_number(n)}' for e, n in sorted(self.received.items())),
                "# HELP adt_acks_total ACKs sent, by event and ACK code (AA accepted and stored, AE error, "
                "AR rejected).",
                "# TYPE adt_acks_total counter",
                *(f'adt_acks_total{{event="{e}",code="{c}"}} {_number(n)}' for (e, c), n in sorted(self.acks.items())),
                "# HELP adt_processing_seconds Seconds from a complete MLLP frame to its ACK, by event and ACK code.",
                "# TYPE adt_processing_seconds histogram", *self.processing.lines("adt_processing_seconds"),
                "# HELP adt_message_age_seconds Seconds from the message's creation (MSH-7) to its ACK, by event and "
                "ACK code: how late the ward's data is.",
                "# TYPE adt_message_age_seconds histogram", *self.age.lines("adt_message_age_seconds"),
                "# HELP adt_queue_depth Messages received and not yet acknowledged.", "# TYPE adt_queue_depth gauge",
                f"adt_queue_depth {self.queue_depth}",
                "# HELP adt_db_write_errors_total Database writes that failed, by reason (disk_full, locked, other).",
                "# TYPE adt_db_write_errors_total counter",
                *(f'adt_db_write_errors_total{{reason="{r}"}} {_number(n)}' for r, n in sorted(self.db_errors.items())),
                "# HELP adt_last_success_timestamp_seconds Unix time of the last message stored and ACKed AA "
                "(0: none since start).",
                "# TYPE adt_last_success_timestamp_seconds gauge",
                f"adt_last_success_timestamp_seconds {self.last_success:.3f}",
            ]
            for counter in self.custom:
                out += counter.lines()
        return "\n".join(out) + "\n"


def message_time(msh: list[str] | None) -> float | None:
    """MSH-7 (YYYYMMDDHHMMSS[.S...][+/-ZZZZ], UTC when no offset) as Unix time; None when absent or unreadable."""
    raw = msh[6] if msh and len(msh) > 6 else ""
    m = re.match(r"^(\d{14})(\.\d{1,6})?([+-]\d{4})?$", raw.strip())
    if m is None:
        return None
    try:
        when = datetime.strptime(m.group(1), "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    if m.group(3):
        sign = 1 if m.group(3)[0] == "+" else -1
        when -= sign * timedelta(hours=int(m.group(3)[1:3]), minutes=int(m.group(3)[3:5]))
    return when.timestamp() + (float(m.group(2)) if m.group(2) else 0.0)


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
        self.metrics = Metrics(self.version, custom_metrics(os.environ))

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
        """Process one payload and return the ACK text. Never raises. Counted in ``metrics``."""
        started = time.perf_counter()
        seen: dict[str, object] = {"event": "other", "msh": None, "segs": {}}
        self.metrics.message_in()
        code = "AE"
        try:
            code, ack = self._process(payload, seen, started)
            return ack
        finally:
            msh = seen["msh"]
            segs = dict(seen["segs"])  # type: ignore[call-overload]
            if msh is not None:
                segs["MSH"] = msh
            self.metrics.message_out(str(seen["event"]), code, time.perf_counter() - started,
                                     message_time(msh), segs)  # type: ignore[arg-type]

    def _process(self, payload: bytes, seen: dict[str, object], started: float) -> tuple[str, str]:
        """(ACK code, ACK text) for one payload; ``seen`` gets the event, MSH and segments once parsed."""
        msh: list[str] | None = None
        control_id = ""
        try:
            text = decode_payload(payload)
            msh, control_id, event, segs = parse(text, seen)
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
                    return "AA", self.ack("AA", control_id, "duplicate of an already processed message; not stored "
                                                            "again", msh)
                store(con, event, control_id, segs)
                con.execute("COMMIT")  # durable before we say AA
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
            log.info("stored ADT^%s control_id=%s in %.1f ms", event, control_id,
                     (time.perf_counter() - started) * 1000)
            return "AA", self.ack("AA", control_id, "", msh)
        except Nak as nak:
            log.warning("NAK %s control_id=%s: %s", nak.code, nak.control_id or control_id, nak.reason)
            return nak.code, self.ack(nak.code, nak.control_id or control_id, nak.reason, msh)
        except Exception as exc:  # one message never kills the connection
            if isinstance(exc, sqlite3.Error):
                self.metrics.db_error(exc)
            log.error("internal error on control_id=%s: %s: %s", control_id, type(exc).__name__, exc)
            return "AE", self.ack("AE", control_id, "internal error: %s: %s; the message was not stored"
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


def parse(text: str, seen: dict[str, object] | None = None) -> tuple[list[str], str, str, dict[str, list[str]]]:
    """Split into segments; enforce MSH first and read what we need (``seen``: gets MSH, event and segments
    as soon as they are known, for the metrics of a message that is refused later)."""
    segments = [s for s in text.replace("\n", "\r").split("\r") if s.strip()]
    if not segments[0].startswith("MSH|"):
        if any(s.startswith("MSH|") for s in segments):
            raise Nak("AR", f"wrong segment order: expected MSH as the first segment, got {clean(segments[0][:3])} first")
        raise Nak("AR", f"missing MSH segment: expected the message to start with MSH|, got {clean(segments[0][:10])!r}")
    msh = segments[0].split("|")
    seen = {} if seen is None else seen
    seen["msh"] = msh
    control_id = msh[9] if len(msh) > 9 else ""  # MSH-1 is the separator itself, so MSH-n is msh[n-1]
    if not control_id:
        raise Nak("AR", "MSH-10 (message control id) is empty: expected an id to acknowledge")
    msg_type = (msh[8] if len(msh) > 8 else "").split("^")
    if msg_type[0] != "ADT" or len(msg_type) < 2 or msg_type[1] not in SUPPORTED_EVENTS:
        raise Nak("AR", "unsupported message type: expected ADT^A01, ADT^A03 or ADT^A08, got "
                  + (clean("^".join(msg_type)) or "nothing"), control_id)
    seen["event"] = msg_type[1]
    segs: dict[str, list[str]] = {}
    seen["segs"] = segs
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
    """GET /health, /stats and /patients/<MRN> as JSON; GET /metrics for Prometheus."""

    server: ThreadingHTTPServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        svc: Service = self.server.service  # type: ignore[attr-defined]
        code, body = 200, None
        if self.path == "/metrics":
            self.reply(200, svc.metrics.render().encode(), "text/plain; version=0.0.4; charset=utf-8", svc.version)
            return
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
            code, body = 404, {"error": f"not found: expected /health, /stats, /metrics or /patients/<MRN>, "
                                        f"got {self.path}"}
        self.reply(code, json.dumps(body).encode(), "application/json", svc.version)

    def reply(self, code: int, data: bytes, content_type: str, version: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Service-Version", version)
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


def custom_metrics(environ: dict[str, str] | os._Environ[str]) -> list[dict[str, object]]:
    """The operator's own counters from ADT_CUSTOM_METRICS (a JSON list); an unreadable value is logged."""
    raw = environ.get(CUSTOM_METRICS_ENV, "").strip()
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError as exc:
        log.error("%s is not JSON (%s): no custom metrics", CUSTOM_METRICS_ENV, exc)
        return []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        log.error("%s must be a JSON list of metric objects: no custom metrics", CUSTOM_METRICS_ENV)
        return []
    return value


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
