"""careops.grading.queue.kubernetes_job: the Job and NetworkPolicy it would create are valid Kubernetes 1.30 objects
(checked offline against the vendored strict JSON schemas) with the Docker sandbox's seals, and the client sends
exactly them. No cluster runs here: the API server below is a local HTTP listener that records what it is sent."""
from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from careops.grading.queue.kubernetes_job import (
    NAMESPACE,
    KubernetesError,
    KubernetesJobs,
    deny_all_network_policy,
    job_name,
    sandbox_job,
)
from careops.grading.sandbox import AGENT_SOURCE, SandboxPolicy

SCHEMAS = Path(__file__).resolve().parent / "fixtures" / "kubernetes" / "v1.30.10-standalone-strict"


def validator(name: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads((SCHEMAS / name).read_text(encoding="utf-8")))


def job(**policy: Any) -> dict[str, Any]:
    return sandbox_job(SandboxPolicy(**policy), name=job_name("00-orientation", "s1"), assignment="00-orientation",
                       session="s1")


def test_the_sandbox_job_is_a_valid_batch_v1_job() -> None:
    errors = sorted(validator("job-batch-v1.json").iter_errors(job()), key=str)
    assert errors == []


def test_the_strict_schema_would_catch_a_mistake() -> None:
    broken = copy.deepcopy(job())
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privilegedd"] = False
    broken["spec"]["backoffLimit"] = "none"
    found = list(validator("job-batch-v1.json").iter_errors(broken))
    assert len(found) == 2


def test_the_pod_has_the_docker_sandboxs_seals() -> None:
    policy = SandboxPolicy(cell_timeout=6, wall_time=60)
    manifest = job(cell_timeout=6, wall_time=60)
    spec = manifest["spec"]
    pod = spec["template"]["spec"]
    (box,) = pod["containers"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == int(policy.start_timeout + 60)
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False and pod["securityContext"]["runAsNonRoot"] is True
    sc = box["securityContext"]
    assert sc == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "privileged": False,
                  "readOnlyRootFilesystem": True, "runAsGroup": 1000, "runAsNonRoot": True, "runAsUser": 1000,
                  "seccompProfile": {"type": "RuntimeDefault"}}
    assert box["resources"]["limits"] == {"memory": "512Mi", "cpu": "1", "ephemeral-storage": "64Mi"}
    assert {v["name"]: v["emptyDir"] for v in pod["volumes"]} == {
        "tmp": {"medium": "Memory", "sizeLimit": "64Mi"}, "home": {"medium": "Memory", "sizeLimit": "64Mi"}}
    assert box["command"] == ["python", "-c", AGENT_SOURCE.read_text(encoding="utf-8")]
    assert box["stdin"] is True and box["tty"] is False and box["image"] == policy.image
    env = {e["name"]: e["value"] for e in box["env"]}
    docker_env = policy.create_kwargs(name="x", labels={})["environment"]
    assert env == docker_env  # the agent sees what it sees in a Docker sandbox
    assert len(manifest["metadata"]["name"]) <= 63 and manifest["metadata"]["namespace"] == NAMESPACE


def test_the_network_policy_denies_all_traffic_of_the_sandboxes_and_is_valid() -> None:
    policy = deny_all_network_policy()
    assert list(validator("networkpolicy-networking-v1.json").iter_errors(policy)) == []
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"] == [] and policy["spec"]["egress"] == []
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= job()["spec"]["template"]["metadata"]["labels"].items()


class _ApiServer:
    """A local HTTP listener standing in for the API server: records each request, answers ``status``."""

    def __init__(self, status: int) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                recorder.requests.append(("POST", self.path, body))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(body if status < 300 else {"kind": "Status", "code": status}).encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def client(self) -> Any:
        from kubernetes import client as k

        config = k.Configuration()
        config.host = f"http://127.0.0.1:{self.server.server_port}"
        return k.ApiClient(config)

    def close(self) -> None:
        self.server.shutdown()


def test_creating_a_job_sends_exactly_the_validated_manifest_to_the_namespaces_jobs() -> None:
    api = _ApiServer(201)
    try:
        manifest = job()
        KubernetesJobs(api.client()).create(manifest)
        KubernetesJobs(api.client()).ensure_no_network()
    finally:
        api.close()
    (method, path, body), (_, policy_path, policy) = api.requests
    assert (method, path) == ("POST", f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs")
    assert body == manifest
    assert policy_path == f"/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/networkpolicies"
    assert policy == deny_all_network_policy()


def test_a_refusal_or_no_answer_is_an_error_with_the_fix() -> None:
    api = _ApiServer(403)
    try:
        with pytest.raises(KubernetesError, match="refused to create Job .*403") as err:
            KubernetesJobs(api.client()).create(job())
    finally:
        api.close()
    assert "kubectl auth can-i" in (err.value.fix or "")
    from careops.grading.queue.hosts import free_port
    from kubernetes import client as k

    config = k.Configuration()
    config.host = f"http://127.0.0.1:{free_port()}"
    config.retries = 0
    with pytest.raises(KubernetesError, match="did not answer"):
        KubernetesJobs(k.ApiClient(config)).create(job())
