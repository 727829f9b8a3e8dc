"""A metric of the learner's own: a counter the ADT service keeps, declared as YAML, scraped live.

The learner declares it (module 5, exercise 1)::

    name: adt_discharges_by_ward_total
    help: Discharges stored (ACK AA), by the ward in PV1-3
    events: [A03]
    outcome: accepted
    labels:
      ward: PV1-3

careops checks the declaration (Prometheus' naming rules, ``_total`` for a
counter, help text, labels from MSH, EVN or PV1 only -- a label read from PID
would put patients' data on every dashboard), then starts the service with it
(``ADT_CUSTOM_METRICS``) beside Prometheus, sends a known set of synthetic
messages and compares what Prometheus scraped with what the declaration says
the counter must be.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

import pandas as pd

from careops.errors import MonitoringError
from careops.hl7 import MllpClient, build_adt
from careops.lab import Lab
from careops.monitoring.stack import MonitoringStack
from careops.report import theme
from careops.router.yamlpos import load_located, require_mapping

KEYS = {"name": "the metric's name, e.g. adt_discharges_by_ward_total",
        "help": "one sentence: what is counted",
        "events": "the events counted: a list of A01, A03, A08",
        "outcome": "accepted (ACK AA), refused (AE or AR) or any",
        "labels": "label name -> message field (MSH-3, PV1-3, PV1-3.2 ...)"}
#: the service's own metrics: a new one must not reuse a name
BUILTIN = ("adt_messages_received_total", "adt_acks_total", "adt_processing_seconds", "adt_message_age_seconds",
           "adt_queue_depth", "adt_db_write_errors_total", "adt_last_success_timestamp_seconds", "adt_build_info")
LABEL_SEGMENTS = ("MSH", "EVN", "PV1")
PATIENT_SEGMENTS = ("PID", "PD1", "NK1", "GT1", "IN1", "IN2", "ROL", "DG1", "AL1", "OBX")
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_FIELD = re.compile(r"^([A-Z][A-Z0-9]{2})-(\d+)(?:\.(\d+))?$")


@dataclass(frozen=True)
class MetricDefinition:
    name: str
    help: str
    events: tuple[str, ...]
    outcome: str
    labels: dict[str, str]

    def as_json(self) -> str:
        """What the service reads from ADT_CUSTOM_METRICS."""
        return json.dumps([{"name": self.name, "help": self.help, "events": list(self.events),
                            "outcome": self.outcome, "labels": self.labels}])

    def counts(self, messages: list[tuple[str, str]]) -> dict[tuple[tuple[str, str], ...], int]:
        """What the counter must hold after ``messages`` ((text, ACK code) pairs): count per label values."""
        out: dict[tuple[tuple[str, str], ...], int] = {}
        for text, code in messages:
            segments = {s[:3]: s.split("|") for s in reversed(text.split("\r")) if s[:3]}
            kind = segments.get("MSH", [""] * 9)[8].split("^")
            event = kind[1] if kind[0] == "ADT" and len(kind) > 1 else "other"
            if event not in self.events or (self.outcome == "accepted" and code != "AA") or \
                    (self.outcome == "refused" and code == "AA"):
                continue
            key = tuple(sorted((label, field_value(segments, path)) for label, path in self.labels.items()))
            out[key] = out.get(key, 0) + 1
        return out


def field_value(segments: dict[str, list[str]], path: str) -> str:
    """A field's first component (``PV1-3``) or a component (``PV1-3.2``), first repetition, as the service
    reads it (MSH-1 is the separator itself, so MSH-n is the n-1th item of the split)."""
    m = _FIELD.match(path)
    if m is None:
        return ""
    seg, n, comp = m.group(1), int(m.group(2)), int(m.group(3) or 1) - 1
    fields = segments.get(seg)
    index = n - 1 if seg == "MSH" else n
    raw = fields[index] if fields is not None and len(fields) > index else ""
    parts = raw.split("~")[0].split("^")
    return (parts[comp] if len(parts) > comp else "")[:40]


def parse_metric_definition(text: str) -> MetricDefinition:
    """The learner's declaration, checked; MonitoringError naming the line and the rule otherwise."""
    doc = load_located(text, what="your metric", error=MonitoringError)
    data = require_mapping(doc, doc.data, (), KEYS)
    for key in ("name", "help", "labels"):
        if key not in data:
            raise doc.fail((), f"{key} is missing", fix=f"{key}: {KEYS[key]}")
    name = str(data["name"])
    if not _NAME.match(name):
        raise doc.fail(("name",), f"{name!r} is not a Prometheus metric name",
                       fix="letters, digits and underscores, starting with a letter: adt_discharges_by_ward_total")
    if not name.startswith("adt_"):
        raise doc.fail(("name",), f"{name!r} does not start with the service's prefix adt_",
                       fix="every metric of the service starts with adt_, so dashboards find them together")
    if not name.endswith("_total"):
        raise doc.fail(("name",), f"{name!r} is a counter and must end in _total",
                       fix=f"{name}_total (a counter only goes up; _total tells every reader so)")
    if name in BUILTIN or any(name == b + "_total" for b in BUILTIN):
        raise doc.fail(("name",), f"{name!r} is one of the service's own metrics", fix="choose a new name")
    help_text = " ".join(str(data["help"]).split())
    if len(help_text) < 10:
        raise doc.fail(("help",), "the help text says too little", fix="one sentence: what is counted, by what")
    events = data.get("events", ["A01", "A03", "A08"])
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list) or not events or not set(map(str, events)) <= {"A01", "A03", "A08"}:
        raise doc.fail(("events",), f"events must be a list of A01, A03, A08, got {events!r}", fix="events: [A01]")
    outcome = str(data.get("outcome", "any"))
    if outcome not in ("accepted", "refused", "any"):
        raise doc.fail(("outcome",), f"unknown outcome {outcome!r}", fix="accepted, refused or any")
    labels = data["labels"]
    if not isinstance(labels, dict) or not 1 <= len(labels) <= 3:
        raise doc.fail(("labels",), "expected one to three labels (name: field)", fix="labels:\n  ward: PV1-3")
    for label, path in labels.items():
        where = ("labels", label)
        if not _LABEL.match(str(label)) or str(label).startswith("__") or label in ("le", "event", "code",
                                                                                   "job", "instance"):
            raise doc.fail(where, f"{label!r} is not a label name you may use",
                           fix="a new lower-case word: ward, sending_system, patient_class")
        m = _FIELD.match(str(path))
        if m is None:
            raise doc.fail(where, f"{path!r} is not a field path", fix="SEGMENT-field, e.g. PV1-3, or PV1-3.2")
        if m.group(1) in PATIENT_SEGMENTS or m.group(1) not in LABEL_SEGMENTS:
            raise doc.fail(where, f"{path} would put {'patient data' if m.group(1) in PATIENT_SEGMENTS else 'a field'}"
                           f" on every dashboard: labels may read MSH, EVN or PV1 only",
                           fix="count by where (PV1-3 ward, PV1-2 patient class) or who sent it (MSH-3), "
                               "never by who the patient is")
    return MetricDefinition(name, help_text, tuple(map(str, events)), outcome,
                            {str(k): str(v) for k, v in labels.items()})


#: what careops sends to prove a metric live: (event, control id, ward, sending app, visit); all synthetic
PROBE_MESSAGES = (
    ("A01", "OWN-01", "WARD1^101^A", "REG-DESK", "V-OWN-1"), ("A01", "OWN-02", "WARD1^102^B", "REG-DESK", "V-OWN-2"),
    ("A01", "OWN-03", "ICU^7^A", "ED-SYSTEM", "V-OWN-3"), ("A01", "OWN-04", "MATERNITY^3^A", "REG-DESK", "V-OWN-4"),
    ("A08", "OWN-05", "WARD1^101^A", "REG-DESK", "V-OWN-1"), ("A03", "OWN-06", "WARD1^102^B", "REG-DESK", "V-OWN-2"),
    ("A03", "OWN-07", "ICU^7^A", "ED-SYSTEM", "V-OWN-9"),  # no open visit V-OWN-9: refused (AE)
    ("A01", "OWN-08", "ICU^8^B", "ED-SYSTEM", "V-OWN-8"), ("A08", "OWN-09", "ICU^8^B", "ED-SYSTEM", "V-OWN-8"),
)


@dataclass(repr=False)
class OwnMetricRun:
    """The learner's metric, live: what the service did with it and what Prometheus scraped."""

    definition: MetricDefinition | None
    problem: str = ""
    refused: str = ""
    sent: list[tuple[str, str]] = field(default_factory=list)
    expected: dict[tuple[tuple[str, str], ...], int] = field(default_factory=dict)
    scraped: pd.DataFrame = field(default_factory=pd.DataFrame)
    metrics_text: str = ""

    def __repr__(self) -> str:
        if self.definition is None:
            return f"<your metric: {self.problem}>"
        return f"<your metric {self.definition.name}: expected {self.expected}, scraped {self.scraped_counts()}>"

    def scraped_counts(self) -> dict[tuple[tuple[str, str], ...], int]:
        if self.definition is None or not len(self.scraped):
            return {}
        labels = list(self.definition.labels)
        out = {}
        for _, row in self.scraped.iterrows():
            key = tuple(sorted((label, str(row.get(label, "")) if pd.notna(row.get(label, "")) else "")
                               for label in labels))
            out[key] = int(round(float(row["value"])))
        return out

    def _repr_html_(self) -> str:
        if self.definition is None:
            return theme.card("your metric", theme.esc(self.problem), status=theme.verdict(False), ok=False)
        rows = []
        got = self.scraped_counts()
        for key in sorted(set(self.expected) | set(got)):
            rows.append((", ".join(f"{k}={v}" for k, v in key) or "(no labels)", self.expected.get(key, 0),
                         got.get(key, 0)))
        body = theme.table(rows, ["label values", "expected", "scraped by Prometheus"])
        if self.refused:
            body += f"<div>the service refused it: {theme.esc(self.refused)}</div>"
        return theme.card(f"your metric {self.definition.name}", body)


def scrape_own_metric(lab: Lab, text: str) -> OwnMetricRun:
    """Start the service with the learner's metric beside Prometheus, send PROBE_MESSAGES and read back what
    Prometheus scraped."""
    try:
        definition = parse_metric_definition(text)
    except MonitoringError as exc:
        return OwnMetricRun(None, problem=f"{exc.message} ({exc.fix})" if exc.fix else exc.message)
    stack = MonitoringStack.start(lab, {}, env={"ADT_CUSTOM_METRICS": definition.as_json()})
    sent: list[tuple[str, str]] = []
    host, port = stack.mllp_address
    with MllpClient(host, port, timeout=10) as client:
        for event, control_id, ward, app, visit in PROBE_MESSAGES:
            text_msg = build_adt(event, control_id=control_id, mrn=f"SYN-{visit[2:]}", family="Testperson",
                                 given="Robin", birth_date="19700101", sex="U", ward=ward, sending_app=app,
                                 visit_number=visit)
            sent.append((text_msg, client.send(text_msg).code))
    refused = "\n".join(line for line in stack.adt.logs(50).splitlines() if "custom metric refused" in line)
    expected = definition.counts(sent)
    scraped = pd.DataFrame()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the next scrapes (every second) bring the new counts
        scraped = stack.prometheus.query(definition.name)
        if len(scraped) and int(round(scraped["value"].sum())) >= sum(expected.values()):
            break
        time.sleep(0.5)
    return OwnMetricRun(definition, refused=refused, sent=sent, expected=expected, scraped=scraped,
                        metrics_text=stack.metrics_text())


__all__ = ["MetricDefinition", "OwnMetricRun", "PROBE_MESSAGES", "field_value", "parse_metric_definition",
           "scrape_own_metric"]
