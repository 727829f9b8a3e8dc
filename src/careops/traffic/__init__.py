"""Traffic for module 3: a generator on the lab network, its record as a DataFrame, reconciliation, plots.

``start_traffic(lab, TrafficPlan(...))`` sends HTTP GETs and MLLP ADT messages
through the router at set rates from a container on the lab network; ``.wait()``
returns a ``TrafficResult`` whose ``frame`` has one row per attempt (send time,
latency, status or ACK code, the release that answered). ``reconcile`` proves
every ACKed message is stored exactly once; ``plot_rollout`` draws it.
"""
from __future__ import annotations

from careops.traffic.plots import per_second, plot_rollout
from careops.traffic.reconcile import ReconcileReport, reconcile, stored_control_ids
from careops.traffic.run import TrafficPlan, TrafficResult, TrafficRun, read_frame, run_traffic, start_traffic

__all__ = ["TrafficPlan", "TrafficResult", "TrafficRun", "start_traffic", "run_traffic", "read_frame",
           "ReconcileReport", "reconcile", "stored_control_ids", "per_second", "plot_rollout"]
