"""Module 3's rollout specs are valid Argo Rollouts ``Rollout`` resources: the notebook's solution specs pass the
vendored CRD schema (as Argo publishes it, and strictly, unknown keys refused), careops still runs them, and an
invalid key is a clear error naming the key and its line."""
from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest
import yaml

from careops.errors import RolloutError
from careops.grading.references import reference_file
from careops.rollout import BlueGreen, Canary, RollingUpdate, parse_rollout
from careops.rollout.argo import ARGO_ROLLOUTS_VERSION, schema, schema_problems

SPECS = {name: reference_file(f"safe-deployments/{name}.yaml").read_text()
         for name in ("blue-green", "canary", "rollback", "rolling")}


def test_the_vendored_schema_is_argo_rollouts_rollout_with_its_licence_note() -> None:
    s = schema()
    assert ARGO_ROLLOUTS_VERSION in s["$comment"] and "Apache License 2.0" in s["$comment"]
    assert set(s["properties"]) == {"apiVersion", "kind", "metadata", "spec"}  # status is left out
    strategy = s["properties"]["spec"]["properties"]["strategy"]["properties"]
    assert set(strategy) == {"blueGreen", "canary"} and strategy["blueGreen"]["required"] == ["activeService"]
    assert '"description":' not in json.dumps(s)
    notice = resources.files("careops.rollout.argo").joinpath("NOTICE.md").read_text()
    assert "Apache License, Version 2.0" in notice and "The Argo Authors" in notice and ARGO_ROLLOUTS_VERSION in notice


@pytest.mark.parametrize("name", SPECS)
def test_every_solution_spec_is_a_valid_argo_rollout(name: str) -> None:
    document = yaml.safe_load(SPECS[name])
    assert (document["apiVersion"], document["kind"]) == ("argoproj.io/v1alpha1", "Rollout")
    as_published = {k: v for k, v in schema().items() if k != "$comment"}
    jsonschema.Draft7Validator(as_published).validate(document)  # what the API server checks
    assert schema_problems(document) == []  # and strictly: no key the API server would drop
    for value in document["metadata"].get("annotations", {}).values():
        assert isinstance(value, str)  # Kubernetes annotations are strings
    assert document["spec"]["selector"]["matchLabels"].items() <= \
        document["spec"]["template"]["metadata"]["labels"].items()


def test_careops_runs_what_the_argo_fields_say() -> None:
    bg, canary, rollback, rolling = (parse_rollout(SPECS[n]) for n in ("blue-green", "canary", "rollback", "rolling"))
    assert isinstance(bg.strategy, BlueGreen) and bg.strategy.scale_down_delay_seconds == 3
    assert (bg.strategy.health_check.successes, bg.strategy.health_check.interval_seconds) == (3, 1)  # readinessProbe
    assert bg.rollback.on_failure == "abort"  # a failed blue/green never switches
    assert isinstance(canary.strategy, Canary) and canary.strategy.active_service == "router"  # nginx stableIngress
    analysis = [s.analysis for s in canary.strategy.steps if s.analysis][0]
    assert (analysis.window_seconds, analysis.min_sample, analysis.max_error_rate) == (6, 20, 0.01)  # its args
    assert (rollback.rollback.on_failure, rollback.rollback.max_failed_requests) == ("rollback", 40)  # annotations
    assert isinstance(rolling.strategy, RollingUpdate) and rolling.kind == "rollingUpdate"  # a canary without steps
    assert (rolling.replicas, rolling.strategy.max_surge, rolling.strategy.max_unavailable) == (3, 1, 0)
    assert rolling.strategy.drain_seconds == 2  # lifecycle.preStop.sleep.seconds


def test_an_invalid_key_is_named_with_its_line_and_a_suggestion() -> None:
    text = SPECS["blue-green"].replace("      previewService: adt-green", "      previewServce: adt-green")
    line = text.splitlines().index("      previewServce: adt-green") + 1
    with pytest.raises(RolloutError) as info:
        parse_rollout(text)
    message = info.value.message
    assert f"spec.strategy.blueGreen.previewServce (line {line})" in message, message
    assert "unknown key 'previewServce'" in message and "Argo Rollouts" in message
    assert "did you mean previewService?" in (info.value.fix or "")


def test_the_earlier_careops_shape_says_where_its_meaning_went() -> None:
    old = SPECS["rollback"].replace("  strategy:\n", "  rollback: {onFailure: rollback, maxFailedRequests: 40}\n"
                                                  "  strategy:\n")
    with pytest.raises(RolloutError) as info:
        parse_rollout(old)
    assert "spec.rollback" in info.value.message and "careops.io/max-failed-requests" in (info.value.fix or "")


def test_valid_argo_that_careops_cannot_run_is_refused_by_name() -> None:
    text = SPECS["blue-green"].replace("      autoPromotionEnabled: true\n",
                                       "      autoPromotionEnabled: true\n      previewReplicaCount: 1\n")
    assert schema_problems(yaml.safe_load(text)) == []  # Argo would take it ...
    with pytest.raises(RolloutError, match="previewReplicaCount.*valid in Argo Rollouts, but careops cannot run it"):
        parse_rollout(text)  # ... careops says it cannot run it, instead of ignoring it
