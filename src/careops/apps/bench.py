"""`careops bench` (make bench): speed figures as ratios against references measured in the same run.

Benchmarks, never timed tests: a slow machine changes the seconds, not the
verdict of the test suite. Each row prints the measured value, its reference
and their ratio, so figures from different machines can be compared.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from careops import engine, paths
from careops.images.catalog import LAB_IMAGE


@dataclass
class BenchRow:
    name: str
    measured: float
    reference: float
    unit: str
    reference_name: str
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.measured / self.reference if self.reference else float("nan")


def _median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_lab_start(repeat: int = 10) -> BenchRow:
    """Lab.run (labels, limits, private network, wait for running) vs a plain SDK docker run."""
    from careops.lab import Lab

    cl = engine.client()
    started: list = []

    def plain() -> None:
        c = cl.containers.run(LAB_IMAGE, ["sleep", "30"], detach=True, labels={"org.careops.bench": "1"})
        while c.status != "running":
            c.reload()
        started.append(c)

    reference = _median_seconds(plain, repeat)
    for c in started:
        c.remove(force=True)
    with Lab("bench", learner="bench") as lab:
        counter = iter(range(repeat))
        measured = _median_seconds(lambda: lab.run(LAB_IMAGE, name=f"c{next(counter)}", command=["sleep", "30"]), repeat)
    return BenchRow("lab container start (median of %d)" % repeat, measured, reference, "s",
                    "docker SDK run, no limits/labels")


def bench_make_lab_prepare() -> list[BenchRow]:
    """`make prepare` (everything `make lab` does before JupyterLab) in a fresh clone: first run vs second."""
    root = paths.repo_root()
    with tempfile.TemporaryDirectory(prefix="careops-bench-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "CAREOPS_HOME", "VIRTUAL_ENV"))}
        env["CAREOPS_LEARNER"] = "bench"

        def prepare() -> None:
            subprocess.run(["make", "-s", "prepare"], cwd=clone, env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        first = _median_seconds(prepare, 1)
        second = _median_seconds(prepare, 1)
        shutil.rmtree(clone, ignore_errors=True)
    return [BenchRow("second `make lab` preparation", second, first, "s",
                     "first preparation in a fresh clone",
                     note="first includes the .venv; images already on the engine are reused when their inputs match")]


def _mllp_rate(image: str, messages: int, connections: int) -> float:
    """ADT messages per second (each ACKed after a durable write in v2) against ``image`` in a Lab."""
    import threading
    import urllib.request

    from careops.checks import eventually
    from careops.hl7 import MllpClient, build_adt
    from careops.lab import Lab

    with Lab("bench-mllp", learner="bench") as lab:
        c = lab.run(image, name="adt", ports=[2575, 8081], volumes={"adt-data": "/data"})
        eventually(lambda: urllib.request.urlopen(f"http://127.0.0.1:{c.port(8081)}/health", timeout=2).status,
                   timeout=30, what=f"{image} to answer /health")
        port = c.port(2575)
        per = messages // connections
        batches = [[build_adt("A08", control_id=f"BENCH-{k}-{i}", mrn=f"SYN-{i % 50:04d}", family="Benchmark",
                              given="Alex", birth_date="19800101", sex="F") for i in range(per)]
                   for k in range(connections)]
        failures: list[str] = []

        def sender(batch: list[str]) -> None:
            with MllpClient("127.0.0.1", port, timeout=30) as client:
                for msg in batch:
                    ack = client.send(msg)
                    if not ack.ok:
                        failures.append(ack.text)

        threads = [threading.Thread(target=sender, args=(b,)) for b in batches]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.perf_counter() - t
        if failures:
            raise RuntimeError(f"{len(failures)} messages were not accepted by {image}, e.g. {failures[0]}")
    return per * connections / elapsed


def bench_mllp(messages: int = 2000) -> list[BenchRow]:
    """MLLP round trips per second against the service in a container: v2 (commit, then ACK) vs v1."""
    rows = []
    for conns in (1, 4):
        v1 = _mllp_rate("careops/legacy-adt:v1", messages, conns)
        v2 = _mllp_rate("careops/legacy-adt:v2", messages, conns)
        rows.append(BenchRow(f"MLLP ADT msg/s, v2, {conns} connection(s)", v2, v1, " msg/s",
                             "v1 (ACK before commit) in the same run",
                             note="goal: >= 500 msg/s with durable writes (WAL, synchronous=FULL)"))
    return rows


def bench_pipeline_overhead(repeat: int = 5) -> BenchRow:
    """One CI job through `careops pipeline run` vs `docker run` of the same steps with the same limits."""
    from careops.pipeline import bench_overhead

    r = bench_overhead(repeat)
    return BenchRow(f"pipeline job, {r.steps} steps (median of {r.repeats})", r.runner_seconds,
                    r.docker_run_seconds, "s", "docker run, same steps and limits", note="target ratio <= 1.5")


def bench_synth(patients: int = 1000) -> list[BenchRow]:
    """Synthetic cohort generation (plain vs the edge-case preset) and FHIR validation vs building the bundles."""
    from careops.synth import Anomalies, generate
    from careops.synth.fhir import patient_bundles, validate_bundle

    plain = _median_seconds(lambda: generate(patients, seed=1), 3)
    edgy = _median_seconds(lambda: generate(patients, seed=1, anomalies=Anomalies.edge_cases()), 3)
    cohort = generate(200, seed=1)
    t = time.perf_counter()
    bundles = list(patient_bundles(cohort))
    build = time.perf_counter() - t
    t = time.perf_counter()
    for b in bundles:
        validate_bundle(b)
    check = time.perf_counter() - t
    return [BenchRow(f"generate {patients} patients, edge cases on", edgy, plain, "s", "the same, plain"),
            BenchRow("validate 200 FHIR bundles (R4B + value sets)", check, build, "s", "building the 200 bundles")]


def bench_learner_dockerfile() -> list[BenchRow]:
    """Module 2: a learner's Dockerfile built with a warm cache vs a cold one; the live check per submission."""
    from careops.containerize.grade import build_seconds_warm_vs_cold, live_check_seconds, solution_artifacts

    builds = build_seconds_warm_vs_cold(*solution_artifacts())
    live = live_check_seconds(*solution_artifacts())
    return [BenchRow("learner image build, warm cache", builds["warm"], builds["cold"], "s", "the same build, no cache",
                     note=f"{builds['warm_cached_steps']} steps came from the cache"),
            BenchRow("live Dockerfile check per submission", live, builds["cold"], "s", "its cold build alone",
                     note="build + run in a Lab + MLLP, restart and SIGTERM checks + clean-up")]


def bench_router_switch(switches: int = 10) -> BenchRow:
    """Module 3: a validated, graceful router switch (nginx -t, reload, old workers gone) vs the bare reload signal."""
    from careops.lab import Lab
    from careops.rollout import HealthCheck, RolloutController
    from careops.router import Router, RouterConfig

    with Lab("bench-router", learner="bench") as lab:
        ctl = RolloutController(lab, None)
        for image, host in (("careops/legacy-adt:v1", "adt-blue"), ("careops/legacy-adt:v2", "adt-green")):
            ctl.start_service(image, host)
        router = Router.start(lab, RouterConfig.single("adt-blue"))
        ctl.router = router
        for host in ("adt-blue", "adt-green"):
            ctl.wait_healthy(host, HealthCheck())
        switch = statistics.median(router.apply(RouterConfig.single(h)).seconds
                                   for h in ["adt-green", "adt-blue"] * (switches // 2))
        bare = _median_seconds(lambda: router.container.exec(
            ["sh", "-c", "nginx -e stderr -c /etc/careops-router/nginx.conf -s reload"]), switches)
    return BenchRow(f"router switch (median of {switches})", switch, bare, "s", "the bare `nginx -s reload` signal",
                    note="includes nginx -t and waiting until no old worker accepts connections")


BENCHES: dict[str, Callable[[], BenchRow | list[BenchRow]]] = {
    "lab-start": bench_lab_start,
    "mllp": bench_mllp,
    "pipeline-overhead": bench_pipeline_overhead,
    "synth": bench_synth,
    "dockerfile": bench_learner_dockerfile,
    "router": bench_router_switch,
    "make-lab": bench_make_lab_prepare,
}


def main(*, only: list[str] | None = None) -> int:
    rows: list[BenchRow] = []
    for name, fn in BENCHES.items():
        if only and name not in only:
            continue
        print(f"running {name} ...", flush=True)
        out = fn()
        rows.extend(out if isinstance(out, list) else [out])
    print()
    print(f"{'benchmark':<40} {'measured':>10} {'reference':>10} {'ratio':>7}  reference is")
    for r in rows:
        print(f"{r.name:<40} {r.measured:>9.3f}{r.unit} {r.reference:>9.3f}{r.unit} {r.ratio:>7.2f}  {r.reference_name}")
        if r.note:
            print(f"{'':<40} note: {r.note}")
    return 0
