"""A runbook as the drill executes it: for an alert, the action the on-call engineer takes.

The learner writes it as YAML (module 5, exercise 4)::

    runbook:
      - alert: <the name of an alert in your rules>
        action: <one of the actions>
        note: <why this action ends what the alert sees>

``action`` is one of :data:`careops.monitoring.incidents.ACTIONS`; careops runs it when the alert fires
(a declarative runbook: careops' code acts, never the learner's). Every error names the line.
"""
from __future__ import annotations

from dataclasses import dataclass

from careops.errors import MonitoringError
from careops.monitoring.incidents import ACTIONS
from careops.report import theme
from careops.router.yamlpos import load_located, require_mapping

STEP_KEYS = {"alert": "the alert name, as in your rules", "action": f"one of {', '.join(ACTIONS)}",
             "note": "what the engineer checks first (free text, optional)"}


@dataclass(frozen=True)
class RunbookStep:
    alert: str
    action: str
    note: str = ""
    line: int | None = None


@dataclass(frozen=True)
class Runbook:
    """The steps by alert name."""

    steps: tuple[RunbookStep, ...]

    def step_for(self, alert: str) -> RunbookStep | None:
        return next((s for s in self.steps if s.alert == alert), None)

    @property
    def alerts(self) -> list[str]:
        return [s.alert for s in self.steps]

    def _repr_html_(self) -> str:
        rows = [(s.alert, s.action, ACTIONS[s.action].does, s.note) for s in self.steps]
        return theme.card("runbook", theme.table(rows, ["when this alert fires", "action", "which does", "note"]))


def parse_runbook(text: str, *, alerts: list[str] | None = None) -> Runbook:
    """Read the learner's runbook; ``alerts`` (the rule file's alert names) are the ones it may name."""
    doc = load_located(text, what="the runbook", error=MonitoringError)
    top = require_mapping(doc, doc.data, (), {"runbook": "the list of steps"})
    entries = top.get("runbook")
    if not isinstance(entries, list) or not entries:
        raise doc.fail(("runbook",), "expected a list of steps (- alert: ..., action: ...)",
                       fix="runbook:\n  - alert: <an alert of your rules>\n    action: <an action, e.g. page>")
    steps: list[RunbookStep] = []
    for i, entry in enumerate(entries):
        path = ("runbook", i)
        require_mapping(doc, entry, path, STEP_KEYS)
        for key in ("alert", "action"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise doc.fail(path, f"step {i + 1} has no {key}", fix=f"{key}: {STEP_KEYS[key]}")
        alert, action = entry["alert"].strip(), entry["action"].strip()
        if action not in ACTIONS:
            raise doc.fail(path + ("action",), f"unknown action {action!r}",
                           fix="one of: " + "; ".join(f"{a.name} ({a.does})" for a in ACTIONS.values()))
        if alerts is not None and alert not in alerts:
            raise doc.fail(path + ("alert",), f"no alert {alert!r} in your rules",
                           fix=f"name one of your alerts: {', '.join(alerts) or '(your rules have none)'}")
        if any(s.alert == alert for s in steps):
            raise doc.fail(path + ("alert",), f"alert {alert!r} has two steps", fix="keep one step per alert")
        steps.append(RunbookStep(alert, action, str(entry.get("note") or "").strip(), doc.lines.get(path)))
    return Runbook(tuple(steps))


__all__ = ["Runbook", "RunbookStep", "parse_runbook"]
