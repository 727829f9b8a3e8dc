"""Recorded series for ``promtool test rules``, and the tests built from them.

A series file (``labs/monitoring/series/<name>.yml``) holds what Prometheus
scraped from the ADT service, in promtool's ``input_series`` notation, plus
when its incident started and ended. Most are recorded from live drills
(:func:`record_live`); a few span hours and are constructed from per-second
counts (:func:`constructed`), because a drill cannot last six hours.

A :class:`SeriesCase` names a series and what the learner's rules must do on
it -- an alert fires at least once within a window, or never fires within it;
a recording rule's value lies in a range at a time -- and becomes one promtool
test file (:func:`promtool_test`). promtool compares samples exactly, so every
expectation is asked as an aggregate that is ``{} 1`` when it holds and empty
when it does not, whatever labels the learner's rules keep.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from careops.errors import MonitoringError
from careops.paths import lab_asset

#: buckets of adt_message_age_seconds (labs/legacy-adt/v2/adt_service.py AGE_BUCKETS)
AGE_BUCKETS = ("0.1", "0.25", "0.5", "1", "2", "5", "10", "30", "60", "+Inf")
SERIES_DIR = "monitoring/series"


# -- expectations --------------------------------------------------------------------------

def _seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def clock(seconds: int) -> str:
    """Seconds into a series as a reader says them: 20 s, 1:00:00, 6:01:40."""
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}


def seconds_of(text: str) -> float:
    """A Prometheus duration as promtool prints it (``6h30m45s``, ``1d``, ``500ms``) in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|y|w|d|h|m|s)", text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def duration(seconds: int) -> str:
    """Seconds in promtool's notation: 90 -> 90s, 120 -> 2m, 7200 -> 2h."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Fires:
    """``alert`` fires at least once between ``start`` and ``end`` seconds (``fires=False``: never does)."""

    alert: str
    start: int
    end: int
    fires: bool = True

    @property
    def eval_at(self) -> int:
        return self.end

    def expr(self) -> str:
        return (f'max(max_over_time(ALERTS{{alertname="{self.alert}",alertstate="firing"}}'
                f'[{duration(self.end - self.start + 1)}]))')

    def describe(self, series: "SeriesFile") -> str:
        when = f"between {clock(self.start)} and {clock(self.end)}"
        if self.fires:
            return f"{self.alert} fires {when}"
        return f"{self.alert} stays silent {when}"


@dataclass(frozen=True)
class RecordValue:
    """The recording rule ``record`` is between ``low`` and ``high`` at ``at`` seconds."""

    record: str
    at: int
    low: float
    high: float

    def expr(self) -> str:
        return f"count(({self.record} >= {self.low:g}) <= {self.high:g})"

    def describe(self, series: "SeriesFile") -> str:
        return f"{self.record} is between {self.low:g} and {self.high:g} at {clock(self.at)}"

    @property
    def eval_at(self) -> int:
        return self.at

    fires = True


Expectation = Fires | RecordValue


@dataclass(frozen=True)
class SeriesCase:
    """A series and what the rules must do on it."""

    name: str
    series: str
    expect: tuple[Expectation, ...]


@dataclass(frozen=True)
class SeriesFile:
    """A series file as read: its title, step, incident window and promtool input_series."""

    name: str
    title: str
    interval: str
    incident: dict[str, int]
    input_series: list[dict[str, str]]
    note: str = ""

    @property
    def seconds(self) -> int:
        return _seconds(self.interval) * max(len(s["values"].split()) for s in self.input_series)


def load_series(name: str) -> SeriesFile:
    """A series file of labs/monitoring/series by name (``disk-full``)."""
    path = lab_asset(f"{SERIES_DIR}/{name}.yml")
    data = yaml.safe_load(path.read_text())
    return SeriesFile(name, str(data["title"]), str(data["interval"]), dict(data.get("incident") or {}),
                      list(data["input_series"]), str(data.get("note", "")))


def promtool_test(case: SeriesCase, rules_file: str = "rules.yml") -> str:
    """The promtool test file of one case: its series, and one promql_expr_test per expectation."""
    series = load_series(case.series)
    step = _seconds(series.interval)
    tests = []
    for e in case.expect:
        tests.append({"expr": e.expr(), "eval_time": duration(e.eval_at),
                      "exp_samples": [{"labels": "{}", "value": 1}] if e.fires else []})
    doc = {"rule_files": [rules_file], "evaluation_interval": duration(step),
           "tests": [{"name": case.name, "interval": series.interval, "input_series": series.input_series,
                      "promql_expr_test": tests}]}
    return yaml.safe_dump(doc, sort_keys=False, width=10_000)


def case_file(index: int) -> str:
    return f"case-{index:02d}.yml"


# -- the series' notation ---------------------------------------------------------------------

def _fmt(v: float) -> str:
    return f"{round(v, 4):g}"


def compress(values: list[float | None]) -> str:
    """Values in promtool's expanding notation: runs of equal steps as ``a+bxn``, gaps as ``_``."""
    out: list[str] = []
    i = 0
    while i < len(values):
        v = values[i]
        if v is None:
            j = i
            while j < len(values) and values[j] is None:
                j += 1
            out.append("_" if j - i == 1 else f"_x{j - i}")
            i = j
            continue
        j = i + 1
        step = None
        while j < len(values) and values[j] is not None:
            d = round(float(values[j]) - float(values[j - 1]), 6)  # type: ignore[arg-type]
            if step is None:
                step = d
            elif d != step:
                break
            j += 1
        run = j - i
        if run >= 3 and step is not None:
            sign = "+" if step >= 0 else "-"
            out.append(f"{_fmt(v)}{sign}{_fmt(abs(step))}x{run - 1}")
            i = j
        else:
            out.append(_fmt(v))
            i += 1
    return " ".join(out)


def _labels(metric: dict[str, str]) -> str:
    name = metric["__name__"]
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest else name


def write_series(path: Path, *, title: str, interval: str, incident: dict[str, int],
                 series: dict[str, list[float | None]], note: str) -> None:
    """Write a series file (series: promtool series selector -> one value per step, None for a gap)."""
    doc: dict[str, Any] = {"title": title, "note": note, "interval": interval, "incident": incident,
                           "input_series": [{"series": k, "values": compress(v)} for k, v in sorted(series.items())]}
    path.write_text(f"# {title} -- {note}\n" + yaml.safe_dump(doc, sort_keys=False, width=10_000))


def record_live(lab: Any, kind: str | None, path: Path, *, seconds: int = 60, starts: int = 20, ends: int = 35) -> None:
    """Record a live stack's series (the service's metrics and ``up``) for ``seconds`` at 1 s steps, with
    ``kind`` injected at ``starts`` and ended (its runbook action) at ``ends``; None: a healthy minute."""
    from careops.monitoring.incidents import incident
    from careops.monitoring.stack import MonitoringStack

    stack = MonitoringStack.start(lab, {})
    traffic = stack.start_admissions(seconds + 5)
    t0 = traffic.started + 1.0
    what = incident(kind) if kind else None
    if what is not None:
        time.sleep(max(0.0, t0 + starts - time.time()))
        what.inject(stack)
        time.sleep(max(0.0, t0 + ends - time.time()))
        what.mitigate(stack)
    time.sleep(max(0.0, t0 + seconds + 1 - time.time()))
    frame = stack.prometheus.query_range('{job="adt",__name__=~"adt_.*|up"}', t0, t0 + seconds - 1, 1.0)
    traffic.wait(progress=False)
    series: dict[str, list[float | None]] = {}
    steps = [round(t0 + i, 3) for i in range(seconds)]
    for labels, group in frame.groupby([c for c in frame.columns if c not in ("t", "value")], dropna=False):
        keys = [c for c in frame.columns if c not in ("t", "value")]
        metric = {k: str(v) for k, v in zip(keys, labels if isinstance(labels, tuple) else (labels,))
                  if isinstance(v, str) and v}
        if metric.get("__name__") == "adt_last_success_timestamp_seconds":  # promtool's clock starts at 0
            by_t = {round(t, 3): (v - t0 if v else 0.0) for t, v in zip(group["t"], group["value"])}
        else:
            by_t = {round(t, 3): v for t, v in zip(group["t"], group["value"])}
        series[_labels(metric)] = [by_t.get(t) for t in steps]
    note = (f"recorded from a live careops monitoring stack; incident {kind} from {starts} s to {ends} s"
            if kind else "recorded from a live careops monitoring stack; healthy")
    write_series(path, title=what.title if what else "a healthy minute", interval="1s",
                 incident={"starts": starts, "ends": ends} if kind else {}, series=series,
                 note=note + "; timestamps in seconds since the series started")


@dataclass(frozen=True)
class Phase:
    """Per second for ``seconds``: admissions stored in time, stored late (about 3 s), refused (AE, a database
    error each), and other messages rejected (AR)."""

    seconds: int
    in_time: float
    late: float = 0.0
    refused: float = 0.0
    rejected: float = 0.0


def constructed(path: Path, *, title: str, interval: int, phases: list[Phase], note: str,
                incident: dict[str, int] | None = None) -> None:
    """Write a series file of the service's counters for ``phases`` (constructed, not recorded)."""
    counters = {"received_a01": 0.0, "received_other": 0.0, "aa": 0.0, "ae": 0.0, "ar": 0.0, "late": 0.0,
                "db": 0.0, "age_sum_aa": 0.0, "age_sum_ae": 0.0, "last_success": 0.0}
    rows: list[dict[str, float]] = []
    for phase in phases:
        for _ in range(phase.seconds // interval):
            rows.append(dict(counters))
            n = interval
            if phase.in_time + phase.late > 0:
                counters["last_success"] = float(len(rows) * interval)
            counters["received_a01"] += n * (phase.in_time + phase.late + phase.refused)
            counters["received_other"] += n * phase.rejected
            counters["aa"] += n * (phase.in_time + phase.late)
            counters["late"] += n * phase.late
            counters["ae"] += n * phase.refused
            counters["ar"] += n * phase.rejected
            counters["db"] += n * phase.refused
            counters["age_sum_aa"] += n * (phase.in_time * 0.05 + phase.late * 3.0)
            counters["age_sum_ae"] += n * phase.refused * 0.05
    job = 'instance="adt:8081",job="adt"'
    series: dict[str, list[float | None]] = {
        f'up{{{job}}}': [1.0] * len(rows),
        f'adt_messages_received_total{{event="A01",{job}}}': [r["received_a01"] for r in rows],
        f'adt_messages_received_total{{event="other",{job}}}': [r["received_other"] for r in rows],
        f'adt_acks_total{{code="AA",event="A01",{job}}}': [r["aa"] for r in rows],
        f'adt_acks_total{{code="AE",event="A01",{job}}}': [r["ae"] for r in rows],
        f'adt_acks_total{{code="AR",event="other",{job}}}': [r["ar"] for r in rows],
        f'adt_db_write_errors_total{{{job},reason="disk_full"}}': [r["db"] for r in rows],
        f'adt_queue_depth{{{job}}}': [0.0] * len(rows),
        f'adt_last_success_timestamp_seconds{{{job}}}': [r["last_success"] for r in rows],
    }
    for code, total in (("AA", "aa"), ("AE", "ae")):  # in time: 0.05 s old; late: 3 s old
        for le in AGE_BUCKETS:
            bound = float("inf") if le == "+Inf" else float(le)
            values = [(r[total] - r["late"]) if code == "AA" and bound < 3.0 else r[total] for r in rows]
            series[f'adt_message_age_seconds_bucket{{code="{code}",event="A01",{job},le="{le}"}}'] = values
        series[f'adt_message_age_seconds_count{{code="{code}",event="A01",{job}}}'] = [r[total] for r in rows]
        series[f'adt_message_age_seconds_sum{{code="{code}",event="A01",{job}}}'] = \
            [r["age_sum_aa" if code == "AA" else "age_sum_ae"] for r in rows]
    write_series(path, title=title, interval=duration(interval), incident=incident or {}, series=series, note=note)


#: the constructed series: hours long, from per-second counts
CONSTRUCTED: dict[str, dict[str, Any]] = {
    "blip": {"title": "a one-minute outage after a quiet morning", "interval": 15,
             "phases": [Phase(21600, 10.0), Phase(60, 0.0, refused=10.0), Phase(1800, 10.0)],
             "incident": {"starts": 21600, "ends": 21660},
             "note": "constructed: 10 admissions/s for 6 h; then for one minute every admission is refused (AE)"},
    "slow-leak": {"title": "5 % of admissions stored late for two hours", "interval": 15,
                  "phases": [Phase(3600, 10.0), Phase(7200, 9.5, late=0.5)],
                  "incident": {"starts": 3600, "ends": 10800},
                  "note": "constructed: 10 admissions/s; from 1 h on, 5 % are stored 3 s after they were created"},
    "quiet-night": {"title": "a quiet night: one admission every five seconds", "interval": 1,
                    "phases": [Phase(600, 0.2)], "incident": {},
                    "note": "constructed: 0.2 admissions/s for ten minutes, all stored in time"},
}
#: the recorded series: a live stack, healthy or with an incident from 20 s to 35 s
RECORDED: dict[str, str | None] = {"healthy": None, "disk-full": "disk-full", "slowdown": "slowdown",
                                   "feed-stops": "feed-stops", "noisy-sender": "noisy-sender"}


def regenerate(out: Path | None = None, *, recorded: bool = False, lab: Any = None) -> list[Path]:
    """Write the constructed series files (and, with ``recorded``, record the live ones in ``lab``) into ``out``
    (default: the checkout's labs/monitoring/series). For course maintainers; the files are committed."""
    from careops.paths import repo_root

    folder = out or repo_root() / "labs" / SERIES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, spec in CONSTRUCTED.items():
        constructed(folder / f"{name}.yml", **spec)
        written.append(folder / f"{name}.yml")
    if recorded:
        if lab is None:
            raise MonitoringError("recording series needs a lab", fix="regenerate(recorded=True, lab=Lab('series'))")
        for name, kind in RECORDED.items():
            record_live(lab, kind, folder / f"{name}.yml")
            written.append(folder / f"{name}.yml")
    return written


__all__ = ["CONSTRUCTED", "RECORDED", "Fires", "Phase", "RecordValue", "SeriesCase", "SeriesFile", "case_file",
           "clock", "compress", "constructed", "duration", "load_series", "promtool_test", "record_live", "regenerate",
           "seconds_of", "write_series"]
