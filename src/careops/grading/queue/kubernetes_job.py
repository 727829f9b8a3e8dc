"""Grading in Kubernetes: each notebook's sandbox is a Job's pod instead of a container on a Docker engine.

When a class outgrows a few Docker hosts (see the README, "Grading past one machine"), the workers keep the
trusted side (restoring the notebook, the test cells, scoring) and the cluster runs the untrusted side. A worker
started with ``careops worker --kubernetes NAMESPACE`` grades exactly as today, but :class:`JobSandboxFactory`
hands out :class:`JobSandbox` objects: one Job per notebook of a submission (``backoffLimit: 0``, so a failed pod
is never retried behind the grader's back), whose single pod runs the same agent from the grader image with the
same seals as the Docker sandbox (non-root, no privilege escalation, every capability dropped, read-only root,
memory-backed ``emptyDir`` for /tmp and the home folder, memory, CPU and ephemeral-storage limits, no service
account token, no service links) and, with :func:`deny_all_network_policy`, no network at all. The worker talks
to the agent over the pod's attach stream (stdin/stdout, JSON lines, the same caps), interrupts a cell with
SIGINT through exec, and deletes the Job when the notebook is done (``ttlSecondsAfterFinished`` removes what a
dead worker left). Kubernetes has no per-pod process limit (the kubelet's ``podPidsLimit`` sets it per node).

The manifests are plain dicts from the official client's models; the tests validate them against the vendored
JSON schemas of Kubernetes 1.30 (tests/fixtures/kubernetes/). No cluster runs on the course machine: what needs
one (create, attach, delete) is written against the client's API and checked up to the HTTP request it sends.
"""
from __future__ import annotations

import hashlib
import queue
import threading
import time
import uuid
from typing import Any

from careops.errors import CareOpsError
from careops.grading.sandbox import (
    AGENT_SOURCE,
    GRADER_LEARNER,
    WORKDIR,
    Sandbox,
    SandboxError,
    SandboxPolicy,
    lab_name,
)
from careops.grading.sandbox import (
    _Stream as _AttachStream,  # the line cutting and caps of a sandbox stream
)
from careops.lab import labels as L

NAMESPACE = "careops-grading"
SANDBOX_LABELS = {"app.kubernetes.io/name": "careops-grader", "app.kubernetes.io/component": "sandbox"}
#: seconds a finished Job (and its pod) stays for inspection before Kubernetes removes it
KEEP_FINISHED = 300
KUBERNETES_FIX = ("check the worker's kubeconfig (KUBECONFIG or ~/.kube/config, or in-cluster credentials) and that "
                  "it may create Jobs and attach to pods in the namespace; kubectl auth can-i create jobs -n NAMESPACE")


class KubernetesError(CareOpsError):
    """The cluster refused or did not answer: a Job could not be created, watched, attached to or deleted."""


def _quantity(size: str) -> str:
    """Docker's "64m" as Kubernetes' "64Mi"."""
    units = {"k": "Ki", "m": "Mi", "g": "Gi"}
    return size[:-1] + units[size[-1].lower()] if size and size[-1].lower() in units else size


def job_name(assignment: str, session: str) -> str:
    """A DNS-1123 name of at most 63 characters, unique per sandbox."""
    digest = hashlib.sha256(f"{assignment}:{session}".encode()).hexdigest()[:10]
    return f"careops-sandbox-{digest}-{uuid.uuid4().hex[:8]}"


def sandbox_job(policy: SandboxPolicy, *, name: str, namespace: str = NAMESPACE, assignment: str,
                session: str) -> dict[str, Any]:
    """The Job manifest of one grading sandbox (see the module doc), as the API server takes it."""
    from kubernetes import client as k

    policy.limits.validate()
    docker_kwargs = policy.create_kwargs(name=name, labels={})
    labels = {**SANDBOX_LABELS, L.LAB: lab_name(assignment), L.LEARNER: GRADER_LEARNER, L.SESSION: session}
    labels = {key.replace("org.careops.", "careops.org/"): value for key, value in labels.items()}
    memory = f"{policy.limits.memory // 1024**2}Mi"
    volumes = [k.V1Volume(name=v, empty_dir=k.V1EmptyDirVolumeSource(medium="Memory",
                                                                     size_limit=_quantity(policy.tmpfs_size)))
               for v in ("tmp", "home")]
    container = k.V1Container(
        name="sandbox", image=policy.image, image_pull_policy="IfNotPresent",
        command=["python", "-c", AGENT_SOURCE.read_text(encoding="utf-8")],
        stdin=True, stdin_once=True, tty=False, working_dir=WORKDIR,
        env=[k.V1EnvVar(name=key, value=value) for key, value in sorted(docker_kwargs["environment"].items())],
        resources=k.V1ResourceRequirements(
            limits={"memory": memory, "cpu": f"{policy.limits.cpus:g}", "ephemeral-storage": "64Mi"},
            requests={"memory": memory, "cpu": f"{min(policy.limits.cpus, 0.25):g}"}),
        security_context=k.V1SecurityContext(
            run_as_non_root=True, run_as_user=1000, run_as_group=1000, privileged=False,
            allow_privilege_escalation=False, read_only_root_filesystem=True,
            capabilities=k.V1Capabilities(drop=["ALL"]), seccomp_profile=k.V1SeccompProfile(type="RuntimeDefault")),
        volume_mounts=[k.V1VolumeMount(name="tmp", mount_path="/tmp"),
                       k.V1VolumeMount(name="home", mount_path="/home/grader")])
    pod = k.V1PodSpec(
        restart_policy="Never", automount_service_account_token=False, enable_service_links=False,
        host_network=False, host_pid=False, host_ipc=False, termination_grace_period_seconds=0,
        security_context=k.V1PodSecurityContext(run_as_non_root=True, run_as_user=1000, run_as_group=1000,
                                                fs_group=1000,
                                                seccomp_profile=k.V1SeccompProfile(type="RuntimeDefault")),
        containers=[container], volumes=volumes)
    job = k.V1Job(
        api_version="batch/v1", kind="Job",
        metadata=k.V1ObjectMeta(name=name, namespace=namespace, labels=labels),
        spec=k.V1JobSpec(backoff_limit=0, ttl_seconds_after_finished=KEEP_FINISHED,
                         active_deadline_seconds=int(policy.start_timeout + policy.wall_time),
                         template=k.V1PodTemplateSpec(metadata=k.V1ObjectMeta(labels=labels), spec=pod)))
    return k.ApiClient().sanitize_for_serialization(job)


def deny_all_network_policy(namespace: str = NAMESPACE) -> dict[str, Any]:
    """A NetworkPolicy that gives the sandbox pods no traffic in or out (apply it once per namespace)."""
    from kubernetes import client as k

    policy = k.V1NetworkPolicy(
        api_version="networking.k8s.io/v1", kind="NetworkPolicy",
        metadata=k.V1ObjectMeta(name="careops-sandbox-no-network", namespace=namespace),
        spec=k.V1NetworkPolicySpec(pod_selector=k.V1LabelSelector(match_labels=SANDBOX_LABELS),
                                   policy_types=["Ingress", "Egress"], ingress=[], egress=[]))
    return k.ApiClient().sanitize_for_serialization(policy)


class KubernetesJobs:
    """The few calls the Job path makes, through the official client (``api_client`` from a kubeconfig)."""

    def __init__(self, api_client: Any = None, *, namespace: str = NAMESPACE) -> None:
        from kubernetes import client as k
        from kubernetes import config

        if api_client is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                try:
                    config.load_kube_config()
                except (config.ConfigException, OSError, TypeError) as exc:
                    raise KubernetesError(f"no Kubernetes credentials: {exc}", fix=KUBERNETES_FIX) from None
            api_client = k.ApiClient()
        self.api_client = api_client
        self.namespace = namespace
        self.batch = k.BatchV1Api(api_client)
        self.core = k.CoreV1Api(api_client)
        self.networking = k.NetworkingV1Api(api_client)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            raise KubernetesError(f"Kubernetes refused to {what}: {exc.status} {exc.reason}",
                                  fix=KUBERNETES_FIX) from None
        except (HTTPError, OSError) as exc:
            raise KubernetesError(f"Kubernetes did not answer when asked to {what}: {type(exc).__name__}",
                                  fix=KUBERNETES_FIX) from None

    def ensure_no_network(self) -> None:
        """Apply :func:`deny_all_network_policy` to the namespace (an existing one is kept)."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.networking.create_namespaced_network_policy(self.namespace, deny_all_network_policy(self.namespace),
                                                             _request_timeout=30)
        except ApiException as exc:
            if exc.status != 409:  # 409: it exists already
                raise KubernetesError(f"Kubernetes refused the sandboxes' NetworkPolicy: {exc.status} {exc.reason}",
                                      fix=KUBERNETES_FIX) from None
        except Exception as exc:  # noqa: BLE001 - urllib3's and the socket's errors alike
            raise KubernetesError(f"Kubernetes did not answer: {type(exc).__name__}", fix=KUBERNETES_FIX) from None

    def create(self, manifest: dict[str, Any]) -> None:
        self._call(f"create Job {manifest['metadata']['name']}", self.batch.create_namespaced_job,
                   self.namespace, manifest, _request_timeout=30)

    def pod_of(self, job: str, *, timeout: float) -> dict[str, Any]:
        """The Job's pod once it runs (or has ended): its name and status as a dict."""
        deadline = time.monotonic() + timeout
        while True:
            pods = self._call(f"list the pods of Job {job}", self.core.list_namespaced_pod, self.namespace,
                              label_selector=f"job-name={job}", _request_timeout=30)
            for pod in pods.items:
                if pod.status.phase in ("Running", "Succeeded", "Failed"):
                    return self.api_client.sanitize_for_serialization(pod)
            if time.monotonic() > deadline:
                raise KubernetesError(f"the pod of Job {job} did not start within {timeout:.0f} s",
                                      fix="kubectl describe job -n NAMESPACE: is the grader image on the nodes?")
            time.sleep(0.5)

    def attach(self, pod: str) -> Any:
        from kubernetes.stream import stream

        return self._call(f"attach to pod {pod}", stream, self.core.connect_get_namespaced_pod_attach, pod,
                          self.namespace, container="sandbox", stdin=True, stdout=True, stderr=True, tty=False,
                          _preload_content=False)

    def interrupt(self, pod: str) -> None:
        from kubernetes.stream import stream

        self._call(f"interrupt pod {pod}", stream, self.core.connect_get_namespaced_pod_exec, pod, self.namespace,
                   container="sandbox", command=["python", "-c", "import os, signal; os.kill(1, signal.SIGINT)"],
                   stdin=False, stdout=True, stderr=True, tty=False)

    def delete(self, job: str) -> None:
        self._call(f"delete Job {job}", self.batch.delete_namespaced_job, job, self.namespace,
                   propagation_policy="Background", grace_period_seconds=0, _request_timeout=30)


class _PodStream(_AttachStream):
    """The pod's attach stream as the sandbox reads it: stdout cut into lines on a queue, capped like Docker's."""

    def __init__(self, ws: Any, policy: SandboxPolicy) -> None:  # no socket here: not _AttachStream's __init__
        self.ws = ws
        self.raw = self  # Sandbox._send writes through raw.sendall
        self.policy = policy
        self.lines: queue.Queue[bytes | None | SandboxError] = queue.Queue()
        self.total = 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def sendall(self, data: bytes) -> None:
        self.ws.write_stdin(data.decode("ascii"))

    def _read(self) -> None:
        try:
            while self.ws.is_open():
                self.ws.update(timeout=1)
                if self.ws.peek_stdout() and not self._take(self.ws.read_stdout(timeout=0).encode()):
                    return
        except Exception:  # noqa: BLE001, S110 - the stream ended: the sandbox reads None as "died"
            pass
        self.lines.put(None)

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001, S110 - already closed
            pass


class JobSandbox(Sandbox):
    """A grading sandbox that is a Kubernetes Job's pod; asked and answered like the Docker one."""

    def __init__(self, jobs: KubernetesJobs, policy: SandboxPolicy, *, assignment: str, session: str) -> None:
        self.client = None
        self.jobs = jobs
        self.policy = policy
        self.labels = {}
        self.name = job_name(assignment, session)
        self._next_id = 0
        self.started = time.monotonic()
        self.dead: SandboxError | None = None
        self.learner: str | None = None
        self.incidents: list[str] = []
        self.pod = ""
        jobs.create(sandbox_job(policy, name=self.name, namespace=jobs.namespace, assignment=assignment,
                                session=session))
        try:
            self.pod = jobs.pod_of(self.name, timeout=policy.start_timeout)["metadata"]["name"]
            self.stream = _PodStream(jobs.attach(self.pod), policy)
        except Exception:
            self.remove()
            raise

    def _died(self, when: str) -> SandboxError:
        if self.dead is not None:
            return self.dead
        terminated: dict[str, Any] = {}
        try:
            pod = self.jobs.pod_of(self.name, timeout=5)
            statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
            terminated = ((statuses[0].get("state") or {}).get("terminated")) or {}
        except CareOpsError:
            pass
        if terminated.get("reason") == "OOMKilled":
            err = SandboxError(f"the notebook ran out of memory ({self.policy.limits.memory // 1024**2} MiB) {when}",
                               reason="memory")
        else:
            err = SandboxError(f"the notebook's process ended {when} (exit code {terminated.get('exitCode')}): "
                               "sys.exit/os._exit, a killed kernel or a crash", reason="crashed")
        self.dead = err
        return err

    def interrupt(self) -> None:
        try:
            self.jobs.interrupt(self.pod)
        except CareOpsError:
            pass

    def kill(self) -> None:
        try:
            self.jobs.delete(self.name)
        except CareOpsError:
            pass

    def remove(self) -> None:
        stream = getattr(self, "stream", None)
        if stream is not None:
            stream.close()
        self.kill()


class JobSandboxFactory:
    """Hands out a fresh Job sandbox per notebook (the interface of careops.grading.sandbox.SandboxFactory)."""

    def __init__(self, policy: SandboxPolicy, *, assignment: str, session: str, jobs: KubernetesJobs) -> None:
        self.policy, self.assignment, self.session, self.jobs = policy, assignment, session, jobs

    def take(self) -> JobSandbox:
        return JobSandbox(self.jobs, self.policy, assignment=self.assignment, session=self.session)

    def close(self) -> None:
        pass
