"""Module 5's monitoring lab: Prometheus on the ADT service, promtool, SLOs, incidents and the drill.

* :mod:`.prometheus` -- Prometheus in a lab, read through its HTTP API;
* :mod:`.promtool` -- ``promtool check rules`` / ``test rules``, their errors told with the line;
* :mod:`.series` -- recorded series and the promtool tests built from them;
* :mod:`.slo` -- SLIs, error budgets and burn rates on recorded data (pandas);
* :mod:`.stack` -- the service on its own disk, scraped by Prometheus, a ward sending;
* :mod:`.incidents` -- incidents that are not a deployment, and the runbook actions;
* :mod:`.runbook` -- a learner's runbook (alert -> action);
* :mod:`.drill` -- an incident under traffic: time to detect, time to recover, messages lost;
* :mod:`.plots` -- the drill's timeline, a burn rate.
"""
from __future__ import annotations

from careops.monitoring.drill import DrillRun, run_drill
from careops.monitoring.incidents import ACTIONS, INCIDENTS, incident
from careops.monitoring.prometheus import Prometheus
from careops.monitoring.promtool import Promtool, RuleProblem, check_rules, read_rules, validate_rules
from careops.monitoring.runbook import Runbook, parse_runbook
from careops.monitoring.stack import MonitoringStack, open_lab

__all__ = ["ACTIONS", "DrillRun", "INCIDENTS", "MonitoringStack", "Prometheus", "Promtool", "RuleProblem",
           "Runbook", "check_rules", "incident", "open_lab", "parse_runbook", "read_rules", "run_drill",
           "validate_rules"]
