"""The incident drill: an incident under traffic, the learner's alerts and runbook, and what it cost.

``run_drill(lab, rules, runbook, incident="disk-full")`` starts a fresh
monitoring stack with the learner's rules loaded in Prometheus, sends the
ward's admissions, lets them settle, injects the incident, and watches
Prometheus' alerts. When one of the learner's alerts fires, careops runs the
action the learner's runbook names for it. Afterwards it measures, from the
ward's own record of every message (not from Prometheus):

* **time to detect**: from the injection to the first alert that fired after it;
* **time to recover**: from the injection to the moment the last admission the
  incident hurt was answered (hurt: refused, unanswered, or stored more than 1 s
  after the ward created it, when it normally takes milliseconds), with only
  healthy admissions after it -- for a noisy sender, to the moment it was blocked;
* **messages**: sent, stored in time, stored late, refused (AE/AR: the sender
  knows), and lost (ACKed AA but not in the database: the sender will never
  resend them -- must be 0).

An alert already firing when the incident starts is a false alarm. An incident
the runbook does not end within the recovery budget is ended by careops (so the
lab is healthy again) and says so.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from careops.errors import MonitoringError
from careops.lab import Lab
from careops.monitoring.incidents import ACTIONS, Incident, incident as find_incident
from careops.monitoring.promtool import read_rules
from careops.monitoring.runbook import Runbook, parse_runbook
from careops.monitoring.stack import MonitoringStack
from careops.report import theme
from careops.traffic import ReconcileReport, TrafficResult, reconcile

#: seconds of healthy traffic before the incident (the rules' windows fill, nothing may fire)
BASELINE_SECONDS = 12.0
#: how long the ward sends in a drill
DRILL_SECONDS = 40.0
#: the drill's budgets: detect within this many seconds of the injection, recover within that many
DETECT_BUDGET, RECOVER_BUDGET = 20.0, 30.0
#: an admission is "in time" when stored (AA) at most this long after the ward created it (the SLO's threshold)
IN_TIME_SECONDS = 2.0
#: recovered means back to normal: stored within this long (healthy admissions take milliseconds)
HEALTHY_SECONDS = 1.0
#: after recovery the drill needs this many seconds of good admissions to call it recovered
STEADY_SECONDS = 3.0
POLL_SECONDS = 0.5


@dataclass
class ActionTaken:
    at: float
    alert: str
    action: str
    seconds: float
    error: str = ""


class AlertWatch:
    """Polls Prometheus' alerts in a thread: every (time, alert, state) seen, and when each first fired."""

    def __init__(self, stack: MonitoringStack) -> None:
        self.stack = stack
        self.rows: list[dict[str, Any]] = []
        self.first_firing: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="alert-watch", daemon=True)
        self.error = ""

    def __enter__(self) -> "AlertWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            try:
                alerts = self.stack.prometheus.alerts()
            except MonitoringError as exc:
                self.error = exc.message
                alerts = []
            for a in alerts:
                self.rows.append({"t": now, "alert": a.name, "state": a.state})
                if a.state == "firing":
                    self.first_firing.setdefault(a.name, now)
            self._stop.wait(POLL_SECONDS)

    def firing(self, since: float | None = None) -> dict[str, float]:
        """Alerts firing now (seen in the last poll), with when they were first seen firing."""
        if not self.rows:
            return {}
        last = max(r["t"] for r in self.rows[-50:])
        now = {r["alert"] for r in self.rows if r["t"] == last and r["state"] == "firing"}
        return {a: self.first_firing[a] for a in now if since is None or self.first_firing[a] >= since}

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["t", "alert", "state"])


@dataclass(repr=False)
class DrillRun:
    """One incident drill: what happened when, what the ward's record says, and the measurements."""

    incident: Incident
    t0: float
    injected_at: float
    detected_at: float | None
    detected_by: str | None
    actions: list[ActionTaken]
    recovered_at: float | None
    false_alarms: list[str]
    alerts: pd.DataFrame
    traffic: TrafficResult
    reconcile: ReconcileReport
    #: messages the service rejected (AR) per second, as Prometheus saw them: columns t, value
    rejected: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["t", "value"]))
    #: messages the service rejected (AR) in all, by its own count
    rejected_total: int = 0
    #: when careops ended an incident the runbook did not end (None: the runbook did)
    ended_by_careops_at: float | None = None
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return (f"<incident drill {self.incident.kind}: detected {_in(self.time_to_detect)}, recovered "
                f"{_in(self.time_to_recover)}, {len(self.reconcile.lost)} ACKed message(s) lost>")

    @property
    def ended_by_careops(self) -> bool:
        return self.ended_by_careops_at is not None

    # -- measurements ------------------------------------------------------------------
    @property
    def time_to_detect(self) -> float | None:
        return None if self.detected_at is None else round(self.detected_at - self.injected_at, 1)

    @property
    def time_to_recover(self) -> float | None:
        return None if self.recovered_at is None else round(self.recovered_at - self.injected_at, 1)

    def messages(self) -> pd.DataFrame:
        """The ward's admissions, one row per message: created (t_sched), answered, final code, age, in time."""
        return admissions(self.traffic.frame)

    def measurements(self) -> dict[str, Any]:
        """The drill's numbers, as a postmortem quotes them."""
        m = self.messages()
        during = m[m["created"] >= self.injected_at - IN_TIME_SECONDS]
        refused = int((~m["code"].isin(["AA", "CA", "error"])).sum())
        return {
            "incident": self.incident.kind,
            "time_to_detect_s": self.time_to_detect,
            "detected_by": self.detected_by,
            "time_to_recover_s": self.time_to_recover,
            "actions": ", ".join(f"{a.action} (on {a.alert})" for a in self.actions) or "none",
            "admissions_sent": int(len(m)),
            "admissions_stored_late": int(((m["code"] == "AA") & ~m["in_time"]).sum()),
            "admissions_refused": refused,
            "admissions_unanswered": int((m["code"] == "error").sum()),
            "admissions_affected": int((~during["in_time"]).sum()),
            "acked_messages_lost": len(self.reconcile.lost),
            "messages_rejected_by_service": self.rejected_total,
            "false_alarms": ", ".join(self.false_alarms) or "none",
            "ended_by_careops": self.ended_by_careops,
        }

    def timeline(self) -> pd.DataFrame:
        """The drill's events in order, seconds after the ward's traffic started: what a postmortem's timeline
        lists."""
        events = [(self.injected_at, f"incident starts: {self.incident.title}")]
        for name, when in sorted(_first_states(self.alerts, "firing").items(), key=lambda kv: kv[1]):
            events.append((when, f"alert {name} fires"))
        for a in self.actions:
            events.append((a.at, f"runbook: {a.action} (alert {a.alert})" + (f" failed: {a.error}" if a.error else "")))
        if self.ended_by_careops_at is not None:
            events.append((self.ended_by_careops_at, f"careops ends the incident ({self.incident.fix}): the "
                                                     "runbook did not"))
        if self.recovered_at is not None:
            events.append((self.recovered_at, "recovered: from here on every admission stored at once"
                           if self.incident.kind != "noisy-sender" else "recovered: the flood stopped"))
        rows = sorted(events)
        return pd.DataFrame([{"t_s": round(t - self.t0, 1), "what": what} for t, what in rows])

    def plot(self):
        from careops.monitoring.plots import plot_drill

        return plot_drill(self)

    def _repr_html_(self) -> str:
        m = self.measurements()
        ok = self.time_to_detect is not None and self.time_to_recover is not None and not self.reconcile.lost
        status = theme.verdict(ok, "detected and recovered", "not detected or not recovered")
        body = theme.fields({k.replace("_", " "): ("-" if v is None else v) for k, v in m.items()})
        body += theme.table(self.timeline().itertuples(index=False), ["t (s)", "what"])
        body += "".join(f"<div>{theme.esc(n)}</div>" for n in self.notes)
        return theme.card(f"incident drill: {self.incident.title}", body, status=status, ok=ok)


def _in(seconds: float | None) -> str:
    return "never" if seconds is None else f"after {seconds:g} s"


def _first_states(alerts: pd.DataFrame, state: str) -> dict[str, float]:
    seen = alerts[alerts["state"] == state] if len(alerts) else alerts
    return {str(k): float(v) for k, v in seen.groupby("alert")["t"].min().items()} if len(seen) else {}


def admissions(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per MLLP message of a traffic record (its final attempt): control id, created (its scheduled
    time, = MSH-7), answered (when its final answer came), code, age (answered - created), in time."""
    mllp = frame[frame["kind"] == "mllp"]
    if not len(mllp):
        return pd.DataFrame(columns=["id", "created", "answered", "code", "attempts", "age", "in_time"])
    final = mllp.groupby("id", sort=False).tail(1)
    attempts = mllp.groupby("id", sort=False).size()
    out = pd.DataFrame({
        "id": final["id"].to_numpy(),
        "created": final["t_sched"].astype(float).to_numpy(),
        "answered": (final["t_send"].astype(float) + final["latency_ms"].astype(float) / 1000).to_numpy(),
        "code": final["status"].astype(str).to_numpy(),
        "attempts": attempts.reindex(final["id"]).to_numpy(),
    })
    out["age"] = out["answered"] - out["created"]
    out["in_time"] = (out["code"] == "AA") & (out["age"] <= IN_TIME_SECONDS)
    return out.sort_values("created", kind="stable").reset_index(drop=True)


def recovered_at(messages: pd.DataFrame, injected_at: float, *, steady: float = STEADY_SECONDS) -> float | None:
    """When the last admission the incident hurt (refused, unanswered, or stored more than HEALTHY_SECONDS after
    it was created) was answered, if at least ``steady`` seconds of healthy admissions follow; None when the
    admissions never got back to normal."""
    after = messages[messages["created"] >= injected_at - IN_TIME_SECONDS]
    healthy = (after["code"] == "AA") & (after["age"] <= HEALTHY_SECONDS)
    hurt = after[~healthy]
    if not len(hurt):
        return injected_at  # nothing was hurt
    last = float(hurt["answered"].max())
    later = after[after["answered"] > last]
    if not len(later) or float(later["answered"].max()) - last < steady:
        return None
    return last


def run_drill(lab: Lab, rules: str, runbook: str, *, incident: str = "disk-full", seconds: float = DRILL_SECONDS,
              baseline: float = BASELINE_SECONDS, extra_rules: dict[str, str] | None = None,
              progress: bool = True) -> DrillRun:
    """Start a fresh stack with ``rules``, send admissions, inject ``incident`` after ``baseline`` seconds, run
    ``runbook``'s actions as the alerts fire, and measure (see the module's docstring)."""
    kind = find_incident(incident)
    rule_file = read_rules(rules)
    book = parse_runbook(runbook, alerts=rule_file.alerts)
    stack = MonitoringStack.start(lab, {"learner.yml": rules, **(extra_rules or {})})
    traffic = stack.start_admissions(seconds)
    t0 = traffic.started
    with AlertWatch(stack) as watch:
        _sleep_until(t0 + baseline + 0.5)
        false_alarms = sorted(watch.firing())
        kind.inject(stack)
        injected_at = time.time()
        if progress:
            print(f"incident injected at +{injected_at - t0:.1f} s: {kind.title}", flush=True)
        actions, ended_at = _respond(stack, watch, book, kind, injected_at, t0 + seconds)
        detected = {a: t for a, t in watch.first_firing.items() if t >= injected_at and a not in false_alarms}
    record = traffic.wait(progress=progress)
    stack.stop_noise()
    report = reconcile(record.frame, stack.stored_ids(record.plan.prefix))
    first = min(detected.items(), key=lambda kv: kv[1]) if detected else None
    if kind.kind == "noisy-sender":  # the ward's admissions are not hurt: recovered when the flood stopped
        blocked = next((a.at + a.seconds for a in actions if a.action == kind.fix and not a.error), None)
        recovered = blocked if blocked is not None else ended_at
    else:
        recovered = recovered_at(admissions(record.frame), injected_at)
    prom = stack.prometheus
    rejected = prom.query_range('sum(rate(adt_acks_total{code="AR"}[3s]))', t0, time.time(), 1.0)
    total = prom.value('sum(adt_acks_total{code="AR"})', 0.0) or 0.0
    notes = [f"Prometheus could not be asked for alerts at times: {watch.error}"] if watch.error else []
    return DrillRun(kind, t0, injected_at, first[1] if first else None, first[0] if first else None, actions,
                    recovered, false_alarms, watch.frame(), record, report, rejected[["t", "value"]] if len(rejected)
                    else pd.DataFrame(columns=["t", "value"]), int(total), ended_at, notes)


def _respond(stack: MonitoringStack, watch: AlertWatch, book: Runbook, kind: Incident, injected_at: float,
             end: float) -> tuple[list[ActionTaken], float | None]:
    """Run the runbook's action for every alert that fires after the injection (once each) until the traffic
    ends; end the incident as careops (returning when) once the recovery budget passed without the right action."""
    actions: list[ActionTaken] = []
    done: set[str] = set()
    fixed = False
    ended: float | None = None
    while time.time() < end - 1:
        for alert in sorted(watch.firing(since=injected_at), key=lambda a: watch.first_firing[a]):
            step = book.step_for(alert)
            if alert in done or step is None:
                continue
            done.add(alert)
            started = time.time()
            error = ""
            try:
                ACTIONS[step.action].run(stack)
            except MonitoringError as exc:
                error = exc.message
            actions.append(ActionTaken(started, alert, step.action, time.time() - started, error))
            fixed = fixed or (step.action == kind.fix and not error)
        if not fixed and ended is None and time.time() > injected_at + RECOVER_BUDGET:
            ended = time.time()
            kind.mitigate(stack)
        time.sleep(POLL_SECONDS / 2)
    if not fixed and ended is None:
        ended = time.time()
        kind.mitigate(stack)
    return actions, ended


def _sleep_until(t: float) -> None:
    delay = t - time.time()
    if delay > 0:
        time.sleep(delay)


__all__ = ["BASELINE_SECONDS", "DETECT_BUDGET", "DRILL_SECONDS", "DrillRun", "HEALTHY_SECONDS", "IN_TIME_SECONDS",
           "RECOVER_BUDGET", "admissions", "recovered_at", "run_drill"]
