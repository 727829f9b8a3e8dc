"""Module 3's rollouts: an Argo-Rollouts-shaped spec (``parse_rollout``) and careops' controller that
executes it against the router and the ADT service under traffic (``RolloutController``)."""
from __future__ import annotations

from careops.rollout.controller import (COLOURS, REPLICA_PREFIX, SERVICE_VOLUME, RolloutController, RolloutResult,
                                        audit_log)
from careops.rollout.spec import (API_VERSION, Analysis, BlueGreen, Canary, HealthCheck, RollbackPolicy, RollingUpdate,
                                  RolloutSpec, Step, parse_rollout)

__all__ = ["RolloutController", "RolloutResult", "COLOURS", "SERVICE_VOLUME", "audit_log", "parse_rollout",
           "RolloutSpec", "BlueGreen", "Canary", "Step", "Analysis", "HealthCheck", "RollbackPolicy", "API_VERSION",
           "RollingUpdate", "REPLICA_PREFIX"]
