"""`careops bench` (make bench): speed figures as ratios against references measured in the same run.

Benchmarks, never timed tests: a slow machine changes the seconds, not the
verdict of the test suite. Each row prints the measured value, its reference
and their ratio, so figures from different machines can be compared.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from careops import engine, paths
from careops import legacy_adt as adt
from careops.images.catalog import ADT_V1, ADT_V2, LAB_IMAGE


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
                    "docker SDK run, no limits/labels",
                    note="goal: ratio <= 1.2; the lab's work: its labels, limits, network alias, the learner's lock")


@contextlib.contextmanager
def _fresh_clone() -> Iterator[tuple[Path, dict[str, str]]]:
    """A fresh clone of this checkout in a temporary folder, and an environment without the calling make's or
    checkout's variables (as a person would type the command there); removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="careops-bench-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(paths.repo_root()), str(clone)], check=True)
        try:
            yield clone, {k: v for k, v in os.environ.items()
                          if not k.startswith(("MAKE", "CAREOPS_HOME", "VIRTUAL_ENV"))}
        finally:
            shutil.rmtree(clone, ignore_errors=True)  # its .venv and build/ first, whatever the folder's cleanup can do


def bench_make_lab_prepare() -> list[BenchRow]:
    """`make prepare` (everything `make lab` does before JupyterLab) in a fresh clone: first run vs second."""
    with _fresh_clone() as (clone, env):
        env["CAREOPS_LEARNER"] = "bench"

        def prepare() -> None:
            subprocess.run(["make", "-s", "prepare"], cwd=clone, env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        first = _median_seconds(prepare, 1)
        second = _median_seconds(prepare, 1)
    return [BenchRow("second `make lab` preparation", second, first, "s",
                     "first preparation in a fresh clone",
                     note="first includes the .venv; images already on the engine are reused when their inputs match")]


#: The suite's goal on this course's reference machine (2 cores): `make test` in a fresh clone, setup included.
SUITE_GOAL_SECONDS = 20 * 60


def bench_make_test() -> BenchRow:
    """`make test` (setup included, every test, none skipped) in a fresh clone of this checkout, against its goal."""
    with _fresh_clone() as (clone, env):
        log = clone.parent / "make-test.log"
        t = time.perf_counter()
        with open(log, "wb") as out:
            done = subprocess.run(["make", "test"], cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - t
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
    if done.returncode != 0:
        raise RuntimeError(f"`make test` failed in a fresh clone (exit {done.returncode}): {tail[0]}")
    return BenchRow("`make test` in a fresh clone", seconds, SUITE_GOAL_SECONDS, "s", "the 20-minute goal",
                    note=f"setup included, every test run; pytest said: {tail[0].strip('= ')}")


def _mllp_rate(image: str, messages: int, connections: int) -> float:
    """ADT messages per second (each ACKed after a durable write in v2) against ``image`` in a Lab."""
    import urllib.request

    from careops.polling import eventually
    from careops.hl7 import build_adt, send_batches
    from careops.lab import Lab

    with Lab("bench-mllp", learner="bench") as lab:
        c = lab.run(image, name=adt.CONTAINER, ports=[adt.MLLP_PORT, adt.HTTP_PORT], volumes={adt.VOLUME: "/data"})
        health = f"http://127.0.0.1:{c.port(adt.HTTP_PORT)}{adt.HEALTH_PATH}"
        eventually(lambda: urllib.request.urlopen(health, timeout=2).status,
                   timeout=30, what=f"{image} to answer {adt.HEALTH_PATH}")
        port = c.port(adt.MLLP_PORT)
        per = messages // connections
        batches = [[build_adt("A08", control_id=f"BENCH-{k}-{i}", mrn=f"SYN-{i % 50:04d}", family="Benchmark",
                              given="Alex", birth_date="19800101", sex="F") for i in range(per)]
                   for k in range(connections)]
        elapsed, failures = send_batches("127.0.0.1", port, batches)
        if failures:
            raise RuntimeError(f"{len(failures)} messages were not accepted by {image}, e.g. {failures[0]}")
    return per * connections / elapsed


def bench_mllp(messages: int = 2000) -> list[BenchRow]:
    """MLLP round trips per second against the service in a container: v2 (commit, then ACK) vs v1."""
    rows = []
    for conns in (1, 4):
        v1 = _mllp_rate(ADT_V1, messages, conns)
        v2 = _mllp_rate(ADT_V2, messages, conns)
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
            BenchRow("validate 200 FHIR bundles (R4B + value sets)", check, build, "s", "building the 200 bundles",
                     note="goal: ratio <= 3; nearly all of it is fhir.resources building one pydantic model per "
                          "element (about 370 per bundle), the course's value-set check is about 2 % of it")]


def bench_learner_dockerfile() -> list[BenchRow]:
    """Module 2: a learner's Dockerfile built with a warm cache vs a cold one; the live check per submission."""
    from careops.containerize.grade import build_seconds_warm_vs_cold, live_check_seconds
    from careops.grading.references import load

    solution = load("containerize").solution_artifacts()  # the instructor's reference (a full checkout)
    builds = build_seconds_warm_vs_cold(*solution)
    live = live_check_seconds(*solution)
    return [BenchRow("learner image build, warm cache", builds["warm"], builds["cold"], "s", "the same build, no cache",
                     note=f"{builds['warm_cached_steps']} steps came from the cache"),
            BenchRow("live Dockerfile check per submission", live, builds["cold"], "s", "its cold build alone",
                     note="goal <= 5 s; build + run in a Lab until the image's HEALTHCHECK says healthy + MLLP, "
                          "restart and SIGTERM checks (restarts wait for the service's answer) + clean-up; the layer "
                          "scan runs meanwhile")]


def bench_router_switch(switches: int = 10) -> BenchRow:
    """Module 3: a validated, graceful router switch (nginx -t, reload, old workers gone) vs the bare reload signal."""
    from careops.lab import Lab
    from careops.rollout import HealthCheck, RolloutController
    from careops.router import Router, RouterConfig

    with Lab("bench-router", learner="bench") as lab:
        ctl = RolloutController(lab, None)
        blue, green = adt.COLOURS
        for image, host in ((ADT_V1, blue), (ADT_V2, green)):
            ctl.start_service(image, host)
        router = Router.start(lab, RouterConfig.single(blue))
        ctl.router = router
        for host in (blue, green):
            ctl.wait_healthy(host, HealthCheck())
        switch = statistics.median(router.apply(RouterConfig.single(h)).seconds
                                   for h in [green, blue] * (switches // 2))
        bare = _median_seconds(lambda: router.container.exec(
            ["sh", "-c", "nginx -e stderr -c /etc/careops-router/nginx.conf -s reload"]), switches)
    return BenchRow(f"router switch (median of {switches})", switch, bare, "s", "the bare `nginx -s reload` signal",
                    note="includes nginx -t and waiting until no old worker accepts connections")


# -- grading throughput ----------------------------------------------------------------------------

_GRADED = "00-orientation"


def _submission_builders() -> Any:
    """The grader tests' submission builders (tests/fixtures/submissions/builders.py), so the bench grades batches
    made exactly as the tests make them (a reference: the bench runs from the instructor's checkout)."""
    import importlib.util

    path = paths.repo_root() / "tests" / "fixtures" / "submissions" / "builders.py"
    spec = importlib.util.spec_from_file_location("careops_bench_builders", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load the submission builders from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _honest_batch(dest: Path, release: dict[str, Any], source: dict[str, Any], n: int) -> list[Path]:
    """``n`` honest hand-ins of the orientation notebook: correct, partial, one answer and none, in turn; each
    answers the clean-up cell (unanswered, it leaves lab night-shift behind and the next notebook's clean-up
    check waits its 30 s for it, in the unsandboxed reference)."""
    b = _submission_builders()
    a = b.answered
    kinds = [lambda: source, lambda: a(release, source, "is_synthetic", "leaked_names", "cleanup"),
             lambda: a(release, source, "cleanup"), lambda: a(release, source, "triage_probe_spec", "cleanup")]
    dest.mkdir(parents=True)
    return [b.save(kinds[i % len(kinds)](), dest / f"h{i:03d}.ipynb") for i in range(n)]


def _hostile_batch(dest: Path, release: dict[str, Any], source: dict[str, Any], n: int) -> None:
    """``n`` hand-ins mixing honest ones with the adversarial batch's time-outs, crashes and floods."""
    b = _submission_builders()
    a = b.answered
    everything = ("is_synthetic", "triage_probe_spec", "leaked_names", "cleanup")
    kinds = [
        lambda: source, lambda: release,
        lambda: b.add_after(a(release, source, "is_synthetic"), "is_synthetic", b.LOOP_CELL),  # interrupted
        lambda: b.add_after(a(release, source, "is_synthetic"), "is_synthetic", b.STUBBORN),  # killed
        lambda: b.set_source(a(release, source, "is_synthetic"), "cleanup", b.FORK_BOMB),
        lambda: b.add_after(a(release, source, "is_synthetic"), "is_synthetic", b.MEMORY),
        lambda: b.add_after(a(release, source, *everything), "is_synthetic", b.FLOOD),
        lambda: b.add_after(a(release, source, "is_synthetic"), "is_synthetic", "import os\nos._exit(0)\n"),
    ]
    dest.mkdir(parents=True)
    for i in range(n):
        b.save(kinds[i % len(kinds)](), dest / f"x{i:03d}.ipynb")


def _plain_nbgrader_seconds(course: Any, notebooks: list[Path]) -> float:
    """Every hand-in into nbgrader's submitted/ folder, then one `nbgrader autograde` of them all, unsandboxed
    (the notebooks run with the engine: their labs are removed afterwards)."""
    import uuid

    from careops.grading import remove_learner_labs, run_nbgrader

    learner = f"bench-plain-{uuid.uuid4().hex[:6]}"
    for nb in notebooks:
        folder = course.submitted(nb.stem, _GRADED)
        folder.mkdir(parents=True)
        shutil.copy2(nb, folder / "orientation.ipynb")
    t = time.perf_counter()
    try:
        run_nbgrader(["autograde", _GRADED, "--force"], course.root, env={"CAREOPS_LEARNER": learner},
                     what=f"plain nbgrader autograde of {len(notebooks)} hand-ins")
        return time.perf_counter() - t
    finally:
        remove_learner_labs(learner, prefer_cli=False)


def _careops_grade_seconds(course: Any, submissions: Path, **policy: float) -> float:
    """`careops grade` of the folder (sandboxes, two at a time on this machine's default), feedback off as in
    the plain reference."""
    import contextlib
    import io

    from careops.apps.grade import main

    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        main(assignment=_GRADED, submissions=submissions, course_dir=course.root, regrade=True,
             feedback=False, progress=False, **policy)
    return time.perf_counter() - t


def bench_grading(n: int = 40, repeat: int = 2, hostile: int = 24) -> list[BenchRow]:
    """`careops grade` of ``n`` honest orientation hand-ins vs plain unsandboxed `nbgrader autograde` of the
    same hand-ins, seconds per submission (runs alternate, best of ``repeat`` each); then a hostile mixed batch
    (time-outs, crashes, floods) vs the honest one, both sandboxed (hostile code never runs unsandboxed)."""
    from careops.grading.course import generate_assignment, make_temp_course

    b = _submission_builders()
    source = b.load(paths.repo_root() / "notebooks" / _GRADED / "orientation.ipynb")
    sandboxed, plain, hostile_s = [], [], []
    with tempfile.TemporaryDirectory(prefix="careops-bench-grade-") as tmp:
        root = Path(tmp)
        template = make_temp_course(root / "template", _GRADED)
        release = b.load(generate_assignment(_GRADED, template.root) / "orientation.ipynb")
        honest = _honest_batch(root / "honest", release, source, n)
        _hostile_batch(root / "hostile", release, source, hostile)
        for k in range(repeat):  # alternate: a busy moment of the machine falls on both sides
            course = make_temp_course(root / f"sandboxed-{k}", _GRADED)
            generate_assignment(_GRADED, course.root)
            sandboxed.append(_careops_grade_seconds(course, root / "honest") / n)
            course = make_temp_course(root / f"plain-{k}", _GRADED)
            generate_assignment(_GRADED, course.root)
            plain.append(_plain_nbgrader_seconds(course, honest) / n)
        course = make_temp_course(root / "hostile-course", _GRADED)
        generate_assignment(_GRADED, course.root)
        hostile_s.append(_careops_grade_seconds(course, root / "hostile", cell_timeout=6, wall_time=60) / hostile)
    runs = ", ".join(f"{s:.2f}/{p:.2f}" for s, p in zip(sandboxed, plain))
    return [BenchRow(f"careops grade, s per hand-in ({n} honest)", min(sandboxed), min(plain), "s",
                     "plain nbgrader autograde, unsandboxed",
                     note=f"goal: ratio <= 0.25 (one sandbox per hand-in, two at a time, the next one pre-started); "
                          f"runs sandboxed/plain {runs} s"),
            BenchRow(f"careops grade, s per hand-in ({hostile} hostile)", min(hostile_s), min(sandboxed), "s",
                     "the honest batch, sandboxed",
                     note="time-outs (cell limit 6 s: an interrupted loop, a loop that ignores SIGINT and is killed), "
                          "a fork bomb, a memory hog, an output flood and os._exit, mixed with honest hand-ins")]


# -- module 3: safe deployments under traffic ---------------------------------------------------

#: the notebook's rollback solution (grading/references/safe-deployments/rollback.yaml) with a tight budget (3, not 40):
#: v2-faulty fails ~3 requests/s at 25 %, so the budget check, not the analysis after the 4 s pause, is what stops
#: it (the mechanism this bench times)
_ROLLBACK_BUDGET = 3


def _solution(name: str) -> str:
    """The notebook's solution artifact, so the bench deploys what a learner is expected to write (a reference:
    the bench runs from the instructor's checkout)."""
    from careops.grading.references import load

    return load("safe_deployments").solution_artifact(name)


def _rollback_spec() -> str:
    spec = _solution("rollback")
    tight = spec.replace('careops.io/max-failed-requests: "40"', f'careops.io/max-failed-requests: "{_ROLLBACK_BUDGET}"')
    if tight == spec:
        raise RuntimeError('rollback.yaml no longer has careops.io/max-failed-requests: "40"; update the rollback bench')
    return tight


@dataclass
class _Deployment:
    """One deployment under traffic, as the module 3 benches read it."""

    result: Any
    traffic: Any
    lost: int
    duplicated: int

    def summary(self) -> dict[str, Any]:
        return self.traffic.summary()

    def failed(self) -> int:
        """Failed HTTP requests plus MLLP messages whose final answer was not an ACK (the course's count)."""
        s = self.summary()
        return s["http_failed"] + s["mllp_nak"] + s["mllp_unanswered"]

    def not_sent(self) -> int:
        """HTTP requests the generator itself gave up on (no free connection for 5 s): client saturation."""
        http = self.traffic.http
        return int((http["status"] == "timeout").sum())

    def failure_kinds(self) -> str:
        """Failed HTTP requests by status (504: nginx could not connect to a release within 2 s; error: no answer
        within the client's 5 s), e.g. "504 x53, error x24"."""
        http = self.traffic.http
        counts = http[~http["ok"]]["status"].value_counts()
        return ", ".join(f"{k} x{v}" for k, v in counts.items()) or "none"

    def failed_by_phase(self) -> str:
        """Failed HTTP requests before the rollout, while the new release starts (start -> switch), while the old
        one drains and stops (switch -> end) and after: shows whether the cutover itself or the load failed them."""
        marks = [(label, t) for label, t in self.result.events if label in ("start", "switch", "end")]
        if len(marks) != 3:
            return "n/a"
        http = self.traffic.http
        t = http[~http["ok"]]["t_send"]
        (_, start), (_, switch), (_, end) = marks
        parts = {"before": (t < start).sum(), "starting": ((t >= start) & (t < switch)).sum(),
                 "draining": ((t >= switch) & (t < end)).sum(), "after": (t >= end).sum()}
        return ", ".join(f"{k} {int(v)}" for k, v in parts.items())


def _deploy(lab: Any, deploy: Callable[[Any], Any], *, http_rate: float, seconds: float,
            lead: float = 3.0) -> _Deployment:
    """Traffic through the lab's router (set up by the caller) at ``http_rate`` HTTP + 10 MLLP/s, ``deploy(traffic)``
    after ``lead`` seconds,
    then every message reconciled with the database (like careops.rollout.drills.deploy_under_traffic, whose
    HTTP rate is fixed at the course's 110/s)."""
    from careops.errors import CareOpsError
    from careops.rollout import SERVICE_VOLUME
    from careops.traffic import (
        TrafficPlan,
        reconcile,
        start_traffic,
        stored_control_ids,
    )

    workers = max(32, int(http_rate // 4))  # a connection per request: keep the pool from limiting the rate
    plan = TrafficPlan(duration=seconds, http_rate=http_rate, mllp_rate=10.0, http_workers=workers)
    traffic = start_traffic(lab, plan, name="traffic")
    try:
        time.sleep(lead)
        result = deploy(traffic)
    except BaseException:
        try:
            traffic.wait(progress=False)
        except CareOpsError:
            pass
        raise
    record = traffic.wait(progress=False)
    report = reconcile(record.frame, stored_control_ids(lab, SERVICE_VOLUME, plan.prefix))
    return _Deployment(result, record, len(report.lost), len(report.duplicated))


def bench_blue_green_cutover(rates: tuple[float, ...] = (100.0, 200.0, 400.0, 800.0),
                             seconds: float = 16.0) -> list[BenchRow]:
    """Module 3: failed requests across a blue/green cutover (goal: zero) vs a naive stop-and-replace, per rate;
    a last row gives the highest rate the generator reached with no failed request.

    A third run per rate sends the same traffic with no deployment at all: failures there are the stack's
    capacity on this machine, not the cutover's doing (the note says so when there are any)."""
    from careops.errors import CareOpsError, RolloutError
    from careops.lab import Lab
    from careops.rollout import parse_rollout
    from careops.rollout.drills import V2, fresh_stack

    spec = parse_rollout(_solution("blue-green"))
    rows = []
    clean: list[float] = []  # rates reached with no failed request
    with Lab("bench-cutover", learner="bench") as lab:
        for rate in rates:
            print(f"  {rate:g} req/s: no deployment, naive stop-and-replace, blue/green ({seconds:g} s each)",
                  flush=True)
            fresh_stack(lab, _solution("router"))
            steady = _deploy(lab, lambda t: None, http_rate=rate, seconds=seconds)
            ctl = fresh_stack(lab, _solution("router"))
            try:  # the reference may overload this machine's generator at high rates: report, do not stop
                naive: _Deployment | None = _deploy(lab, lambda t, c=ctl: c.naive_replace(V2), http_rate=rate,
                                                    seconds=seconds)
                naive_note = ""
            except CareOpsError as exc:
                naive, naive_note = None, f"naive reference not measured: {exc.message}"
            ctl = fresh_stack(lab, _solution("router"))
            bg = _deploy(lab, lambda t, c=ctl: c.run(spec), http_rate=rate, seconds=seconds)
            r = bg.result
            if r.outcome != "promoted":
                raise RolloutError(f"the blue/green bench at {rate:g} req/s did not promote v2: expected promoted, "
                                   f"got {r.outcome} ({r.reason})",
                                   fix="run `careops bench --only cutover` again; if it repeats, run the module 3 "
                                       "tests (tests/test_checks_safe_deployments.py)")
            s, frame = bg.summary(), bg.traffic.frame
            switch = r.at("switch")
            covered = switch is not None and frame["t_send"].min() + 1 < switch < frame["t_send"].max() - 1
            got = s["http_rate"]
            name = f"blue/green failed @ {rate:g}/s (got {got:.0f})"
            note = (f"goal 0; HTTP {got:g} req/s achieved of {rate:g} + MLLP 10 msg/s; HTTP failed {s['http_failed']}"
                    f" (not sent {bg.not_sent()}), MLLP NAK {s['mllp_nak']} / unanswered {s['mllp_unanswered']}, "
                    f"lost {bg.lost}, duplicated {bg.duplicated}; by status: {bg.failure_kinds()}; by phase: "
                    f"{bg.failed_by_phase()}; with no deployment at all: {steady.failed()} failed "
                    f"({steady.failure_kinds()}); ")
            if naive is None:
                note += naive_note
            else:
                ns = naive.summary()
                note += (f"naive: HTTP failed {ns['http_failed']}, MLLP NAK/unanswered "
                         f"{ns['mllp_nak'] + ns['mllp_unanswered']}, resends {ns['mllp_resends']}, "
                         f"at {ns['http_rate']:g} req/s")
            if steady.failed():
                note += ("; failures without any deployment mean this rate is over the stack's capacity on this "
                         "machine (504: nginx could not connect to the release within 2 s); compare the two counts")
            if got < 0.95 * rate:
                note += f"; the generator reached only {got:g} req/s on this machine"
            if not covered:
                note += "; WARNING: the switch was not inside the traffic window"
            rows.append(BenchRow(name, float(bg.failed()), float(naive.failed()) if naive else float("nan"), " req",
                                 "naive stop-and-replace, same rate", note=note))
            if not bg.failed() and got >= 0.95 * rate:
                clean.append(rate)
    best = max(clean, default=0.0)
    rows.append(BenchRow("blue/green: highest rate, 0 failed", best, 400.0, " req/s", "the 400 req/s goal",
                         note=f"rates with no failed request (reached within 5 %): "
                              f"{', '.join(f'{r:g}' for r in clean) or 'none'} of {', '.join(f'{r:g}' for r in rates)}"))
    return rows


def bench_rollback_detection(repeat: int = 3, seconds: float = 16.0) -> BenchRow:
    """Module 3: seconds from v2-faulty's first failed request to all traffic back on v1 (goal: under 5 s)."""
    from careops.errors import RolloutError
    from careops.lab import Lab
    from careops.rollout import parse_rollout
    from careops.rollout.drills import HTTP_RATE, fresh_stack

    spec = parse_rollout(_rollback_spec())
    measured, ideal, controller_lag, failed, reasons = [], [], [], [], []
    with Lab("bench-rollback", learner="bench") as lab:
        for _ in range(repeat):
            ctl = fresh_stack(lab, _solution("router"))
            run = _deploy(lab, lambda t, c=ctl: c.run(spec, traffic=t), http_rate=HTTP_RATE, seconds=seconds)
            r, frame = run.result, run.traffic.frame
            healthy, back = r.at("healthy"), r.at("rollback")
            if not r.rolled_back or healthy is None or back is None:
                raise RolloutError(f"the canary of v2-faulty was not rolled back: expected rolled-back, got "
                                   f"{r.outcome} ({r.reason})",
                                   fix="run `careops bench --only rollback` again; check the v2-faulty image")
            bad = frame[~frame["ok"] & (frame["t_send"] >= healthy)]  # v1 fails nothing: these are the canary's
            if not len(bad):
                raise RolloutError(f"rolled back, but the traffic record shows no failed request after the canary "
                                   f"became healthy ({r.reason})",
                                   fix="run `careops bench --only rollback` again; check the v2-faulty image")
            first = float(bad["t_send"].iloc[0])
            measured.append(back - first)
            if len(bad) > _ROLLBACK_BUDGET:
                # the earliest any budget check could know: the answer to the first request over the budget
                over = bad.iloc[_ROLLBACK_BUDGET]
                over_known = float(over["t_send"] + over["latency_ms"] / 1000)
                ideal.append(over_known - first)
                controller_lag.append(back - over_known)
            failed.append(run.failed())
            reasons.append("analysis" if r.reason.startswith("analysis") else
                           "budget" if "budget" in r.reason else r.reason.split(";")[0])
    m = statistics.median(measured)
    ref = statistics.median(ideal) if ideal else float("nan")
    lag = f"{statistics.median(controller_lag):.2f} s" if controller_lag else "n/a"
    note = (f"goal < 5 s; runs {', '.join(f'{x:.2f}' for x in measured)} s; budget exceeded -> rollback done {lag} "
            f"(budget check once a second + snapshot + router switch; {len(ideal)}/{repeat} runs exceeded the "
            f"budget); failed requests+messages per run {failed}; max-failed-requests {_ROLLBACK_BUDGET}, setWeight 25 "
            f"at {HTTP_RATE:g} req/s; stopped by: {', '.join(reasons)}")
    return BenchRow(f"rollback detection (median of {repeat})", m, ref, "s",
                    f"first failure -> budget ({_ROLLBACK_BUDGET}) exceeded", note=note)

def _fhir_reads_per_second(stack: Any, ids: list[str], token: str | None, reads: int) -> float:
    """FHIR Patient reads per second over one HTTPS keep-alive connection, every answer checked to be 200."""
    import http.client

    from careops.privacy.pki import client_context

    conn = http.client.HTTPSConnection("localhost", stack.port(8443), timeout=30,
                                       context=client_context(stack.ca.cert_pem))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    t = time.perf_counter()
    for i in range(reads):
        conn.request("GET", f"/fhir/Patient/{ids[i % len(ids)]}", headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"a FHIR read answered {resp.status}, expected 200")
    elapsed = time.perf_counter() - t
    conn.close()
    return reads / elapsed


def bench_privacy(messages: int = 1000, reads: int = 1000, rounds: int = 3) -> list[BenchRow]:
    """Module 6's protections, each against the same service without it in the same run: MLLP over TLS (mutual)
    vs plain MLLP; FHIR reads with bearer-token checks (and their audit entries) vs without (both over HTTPS)."""
    from careops.checks import patient_data as pd_check
    from careops.hl7 import build_adt
    from careops.lab import Lab
    from careops.privacy.stack import Deployment, PatientDataStack
    from careops.privacy.tokens import AccessPolicy

    both = Deployment(mllp_plain=True, mllp_tls=True, client_certificates="required", http_plain=False, https=True,
                      key="secret")
    policy = AccessPolicy.from_data({"roles": {"ward-nurse": {"scopes": ["user/Patient.read"], "wards": "all"}}})
    batch = [build_adt("A08", control_id=f"BENCH-{i}", mrn=f"SYN-{i % 50:06d}", family="Benchmark", given="Alex",
                       birth_date="19800101", sex="F") for i in range(messages)]
    tls_rates, plain_rates, checked, open_reads = [], [], [], []
    with Lab("bench-privacy", learner="bench", workdir=pd_check.lab_workdir()) as lab:
        guarded = PatientDataStack(lab, both, access=policy, name="guarded").start()
        unguarded = PatientDataStack(lab, both, name="unguarded").start()
        for stack in (guarded, unguarded):
            stack.send(batch[:50], tls=True)
        ids = {stack.name: [stack.patient_id(f"SYN-{i:06d}") for i in range(50)] for stack in (guarded, unguarded)}
        token = guarded.token("bench", "ward-nurse", ward="4B", ttl=3600)
        for r in range(rounds):
            order = [(True, tls_rates), (False, plain_rates)]
            for tls, out in order if r % 2 == 0 else order[::-1]:
                t = time.perf_counter()
                codes = guarded.send(batch, tls=tls)
                out.append(len(batch) / (time.perf_counter() - t))
                if set(codes) != {"AA"}:
                    raise RuntimeError(f"MLLP answers other than AA: {sorted(set(codes))}")
            pairs = [(guarded, token, checked), (unguarded, None, open_reads)]
            for stack, tok, out in pairs if r % 2 == 0 else pairs[::-1]:
                out.append(_fhir_reads_per_second(stack, ids[stack.name], tok, reads))
    return [BenchRow("MLLP over mutual TLS msg/s (1 conn)", statistics.median(tls_rates),
                     statistics.median(plain_rates), " msg/s", "plain MLLP, same service and run",
                     note=f"median of {rounds} rounds of {messages} messages, sealed store"),
            BenchRow("FHIR reads/s with token checks", statistics.median(checked), statistics.median(open_reads),
                     " r/s", "no access control, same HTTPS, same run",
                     note=f"median of {rounds} rounds of {reads} reads on one keep-alive connection; "
                          "both services write an audit entry per read")]


# -- grading on the queue: workers on two engines ------------------------------------------------

def _orientation_batch(course: Any, dest: Path, n: int) -> Path:
    """``n`` hand-ins of module 0, a mix of full, half-done and blank ones (one file per learner)."""
    import copy
    import json

    from careops.grading.course import generate_assignment
    from careops.grading.restore import grade_id

    release = json.loads((generate_assignment("00-orientation", course.root) / "orientation.ipynb").read_text())
    source = json.loads((paths.repo_root() / "notebooks" / "00-orientation" / "orientation.ipynb").read_text())
    answers = {grade_id(c): c["source"] for c in source["cells"] if grade_id(c)}
    kinds = [(), ("is_synthetic",), ("is_synthetic", "leaked_names"), tuple(answers)]
    dest.mkdir(parents=True)
    for i in range(n):
        nb = copy.deepcopy(release)
        for cell in nb["cells"]:
            if grade_id(cell) in kinds[i % len(kinds)] and not (cell.get("metadata") or {}).get("nbgrader", {}).get(
                    "locked"):
                cell["source"] = answers[grade_id(cell)]
        (dest / f"learner-{i:03d}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    return dest


def bench_grading_queue(submissions: int = 40) -> list[BenchRow]:
    """The grading queue on N hand-ins: grading throughput with 1 worker vs 2 workers (each on its own Docker
    engine), the queue's overhead vs local grading, and whole runs of `careops grade` (grading and recording).

    "Grading" is the sandboxes' part (what workers add capacity for): the batch's submissions handed to the graders
    and every answer back, checked, not yet recorded. Recording into nbgrader's gradebook is the coordinator's,
    serial by design (one writer), and is timed in the whole runs."""
    from careops.grading import intake
    from careops.grading.autograder import (
        AssignmentContext,
        LocalGraders,
        check_submission,
        grade_batch,
        submission_key,
    )
    from careops.grading.course import make_temp_course
    from careops.grading.queue import QueueGraders
    from careops.grading.queue.hosts import DockerEngine, RedisServer, WorkerProcess, default_engine_url
    from careops.grading.sandbox import SandboxPolicy

    policy = SandboxPolicy(cell_timeout=20, wall_time=120)
    with tempfile.TemporaryDirectory(prefix="careops-bench-queue-") as tmp:
        root = Path(tmp)
        course = make_temp_course(root / "course", "00-orientation")
        subs = _orientation_batch(course, root / "subs", submissions)
        ctx = AssignmentContext.load(course, "00-orientation")
        work = [(s, submission_key(s, ctx)) for s in
                (check_submission(s, ctx) for s in intake.collect(subs, "00-orientation", list(ctx.sources)))]
        first = default_engine_url()

        each: dict[str, float] = {}  # median seconds one hand-in took in its sandbox, per measurement
        one = two = ""  # the queues of 1 and of 2 workers

        def grading(graders: Any) -> float:
            t = time.perf_counter()
            with graders.grading(ctx, policy, work) as got:
                results = list(got)
            seconds = time.perf_counter() - t
            bad = [f"{sub.learner}: {out}" if isinstance(out, Exception) else f"{sub.learner}: {out.reason}"
                   for sub, out in results if isinstance(out, Exception) or out.status != "graded"]
            if bad:
                raise RuntimeError(f"the bench batch was not graded fully ({len(bad)}), e.g. {bad[0]}")
            kind = "local" if isinstance(graders, LocalGraders) else ("one" if graders.url == one else "two")
            each[f"{kind}{len(each)}"] = statistics.median(out.seconds for _, out in results)
            return seconds

        def whole_run(graders: Any = None, jobs: int = 1) -> float:
            t = time.perf_counter()
            grade_batch(course.root, "00-orientation", subs, regrade=True, jobs=jobs, policy=policy, feedback=False,
                        progress=False, graders=graders)
            return time.perf_counter() - t

        with RedisServer(root / "redis") as redis, DockerEngine(paths.repo_root() / "build" / "test-engines"
                                                                / "engine2") as second:
            second.load_images(first)
            # one worker on queue 1; two workers, one per engine, on queue 2 (an idle worker costs nothing)
            one, two = redis.database(1), redis.database(2)
            workers = [WorkerProcess(url, engine_url=eng, images_from=src, name=name, log=root / f"{name}.log",
                                     course_dir=course.root)
                       for url, eng, src, name in ((one, first, None, "alone"), (two, first, None, "first"),
                                                   (two, second.url, first, "second"))]
            try:
                for w in workers:
                    w.start()
                for w in workers:
                    w.wait_ready()
                print(f"  {submissions} hand-ins, twice each, alternating (the faster of two is kept: other work "
                      "on this machine only slows a run down): grading locally (1 sandbox at a time), on 1 worker, "
                      "on 2 workers on 2 engines; then whole runs (recording too), locally and on 2 workers",
                      flush=True)
                whole_run()  # warm-up: nbgrader's imports, the first sandboxes, the learners in the gradebook
                local1 = queue1 = queue2 = float("inf")
                for _ in range(2):
                    local1 = min(local1, grading(LocalGraders(1)))
                    queue1 = min(queue1, grading(QueueGraders(one, reuse_results=False, poll=0.05)))
                    queue2 = min(queue2, grading(QueueGraders(two, reuse_results=False, poll=0.05)))
                run_local2 = whole_run(jobs=2)
                run_queue2 = whole_run(QueueGraders(two, reuse_results=False, poll=0.05))
            finally:
                for w in workers:
                    w.stop()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    cores = os.cpu_count() or 1
    n = submissions
    local_each, one_each, two_each = (min(v for k, v in each.items() if k.startswith(kind))
                                      for kind in ("local", "one", "two"))
    return [
        BenchRow(f"grading, 2 workers on 2 engines ({n} hand-ins)", n / queue2, n / queue1, " sub/s",
                 "1 worker on 1 engine, same batch",
                 note=f"goal >= 1.6x; one hand-in at a time per worker; {cores} cores here, load average {load} "
                      f"(both workers and both engines share these cores; workers on their own hosts add theirs). "
                      f"Median seconds one hand-in took in its sandbox: {one_each:.2f} s with 1 worker, "
                      f"{two_each:.2f} s with 2 (local: {local_each:.2f} s): when it grows with the workers, the "
                      "cores, not the queue, are the limit"),
        BenchRow(f"grading on the queue, 1 worker ({n} hand-ins)", queue1, local1, "s",
                 "local grading, 1 sandbox at a time",
                 note="the queue's overhead: JSON through Redis both ways and checks on both sides (each starts "
                      "the next sandbox while one grades)"),
        BenchRow(f"careops grade --queue, 2 workers ({n} hand-ins)", run_queue2, run_local2, "s",
                 "careops grade --jobs 2 (local)",
                 note="whole runs: recording into the gradebook is the coordinator's alone (one writer), after "
                      "each answer; it and the graders share this machine's cores"),
    ]


def bench_drill(repeat: int = 3) -> list[BenchRow]:
    """Module 5: the solution's rules and runbook in the graded drill (disk full): time to detect and recover."""
    from careops.monitoring.bench import drill_times

    from careops.grading.references import reference_file

    d = drill_times(reference_file("monitoring/rules.yml").read_text(),
                    reference_file("monitoring/runbook.yml").read_text(), repeat)
    detect, recover = statistics.median(d.detect), statistics.median(d.recover)
    runs = f"runs: detect {', '.join(f'{x:g}' for x in d.detect)} s, recover {', '.join(f'{x:g}' for x in d.recover)} s"
    return [BenchRow(f"drill {d.incident}: time to detect (median of {repeat})", detect, 2.0, "s",
                     "one scrape + one evaluation interval (the longest a change waits to be seen, lab time)",
                     note=f"budget 20 s; first alert: {', '.join(sorted(set(d.detected_by)))}; {runs}"),
            BenchRow(f"drill {d.incident}: time to recover (median of {repeat})", recover, detect, "s",
                     "time to detect, same runs",
                     note=f"budget 30 s; ACKed admissions lost per run {d.lost} (must be 0)")]


def bench_scrape_overhead(messages: int = 8000, rounds: int = 3) -> list[BenchRow]:
    """Module 5: the ADT service's MLLP throughput while Prometheus scrapes it, against no scraping, same run."""
    from careops.monitoring.bench import scrape_overhead

    o = scrape_overhead(messages=messages, rounds=rounds)
    base = o.median("without")
    note = (f"{rounds} alternating rounds of {messages} ADT messages on 4 connections, database on a tmpfs disk "
            f"(CPU-bound, where a scrape costs most); msg/s without {[round(x) for x in o.without]}, ")
    return [BenchRow("ADT msg/s while scraped every 1 s", o.median("lab_rate"), base, " msg/s",
                     "no Prometheus, same run", note=note + f"1 s {[round(x) for x in o.lab_rate]}"),
            BenchRow("ADT msg/s while scraped every 0.1 s", o.median("ten_times"), base, " msg/s",
                     "no Prometheus, same run", note=f"0.1 s {[round(x) for x in o.ten_times]}; "
                                                     f"{o.scrapes} scrapes seen in all")]


@contextlib.contextmanager
def _bench_workshop(name: str, learner: str) -> Iterator[tuple[Any, dict[str, str]]]:
    """A workshop of the bench's own (a roster of one learner, a free port), up for the block and then taken down
    with its volumes: (its settings, the handouts' initial passwords)."""
    import socket

    from careops.apps import release
    from careops.apps import workshop as workshop_app
    from careops.images import ensure_images
    from careops.workshop import hub
    from careops.workshop.settings import WorkshopSettings

    release.main(assignments=None)
    ensure_images(["learner", "hub"], progress=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    settings = WorkshopSettings(name=name, port=port)
    with tempfile.TemporaryDirectory(prefix="careops-bench-") as tmp:
        roster = Path(tmp) / "class.csv"
        roster.write_text(f"username,role,name\n{learner},learner,Bench Learner\n")
        try:
            workshop_app.up_main(name=settings.name, roster_file=str(roster), port=port, build=False)
            settings = WorkshopSettings.load(name)
            passwords = {}
            for handout in settings.handouts_dir.glob("passwords-*.csv"):
                for line in handout.read_text().splitlines()[1:]:
                    user, _role, _name, password = line.split(",")[:4]
                    passwords[user] = password
            yield settings, passwords
        finally:
            hub.down(settings, remove_volumes=True)
            shutil.rmtree(settings.state_dir, ignore_errors=True)


def bench_broker_overhead(repeat: int = 5) -> BenchRow:
    """Lab.run through the workshop's lab broker (in a learner's server) vs straight to the engine (here).

    Brings up a workshop of its own (one learner, a free port), starts the learner's server, times, takes it down.
    """
    from careops.workshop.api import HubAPI
    from careops.workshop.probe import broker_overhead, start_server

    with _bench_workshop("bench-broker", "bench") as (settings, _):
        start_server(HubAPI.for_workshop(settings), "bench")
        figures = broker_overhead(settings, "bench", repeat)
    note = (f"goal <= 1.3x; through the broker {figures['broker_runs']} s, direct {figures['direct_runs']} s "
            f"(a lab container of the lab image, 32 MiB, started and running); the broker itself adds "
            f"{figures['added_ms']} ms per start (HTTP, the token, the checks), the rest is the engine's")
    return BenchRow(f"Lab.run through the lab broker (median of {repeat})", float(figures["broker_median_s"]),
                    float(figures["direct_median_s"]), "s", "Lab.run on this host's engine", note=note)


#: In the learner's server: a kernel, as opening module 0 starts one, and module 0's orientation lab (exercise 2's
#: triage probe, the notebook's own spec) left running, through the broker.
_ORIENTATION_LAB = """
import json, os, urllib.request
from careops.lab import Lab, parse_spec
base = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
req = urllib.request.Request("http://127.0.0.1:8888" + base + "api/kernels", data=b"{}", method="POST",
                             headers={"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]})
kernel = json.loads(urllib.request.urlopen(req, timeout=60).read())["id"]
lab = Lab("orientation")
probe = lab.run_spec(parse_spec(
    "name: triage-probe\\nimage: careops/lab-runtime:latest\\ncommand: [sleep, infinity]\\nuser: '1000'\\n"
    "read_only: true\\nlimits: {memory: 128m, cpus: 0.5, pids: 64}\\n"))
print(json.dumps({"kernel": kernel, "probe": probe.name}))
os._exit(0)  # leave the lab running, as a kernel in the middle of the exercise would
"""


def bench_learners_per_host(repeat: int = 5) -> list[BenchRow]:
    """What one learner costs a workshop host: the memory of an idle learner server with module 0 open (a kernel)
    and its orientation lab running, and the time from login to a ready JupyterLab (median of ``repeat`` fresh
    servers). Brings up a workshop of its own, one learner; how many fit is the host's memory over that."""
    from careops.lab import labels as L
    from careops.workshop.api import HubAPI, HubAPIError
    from careops.workshop.hub import server_containers
    from careops.workshop.probe import in_server, login_to_ready, memory_mib, server_of

    user = "bench"
    with _bench_workshop("bench-learners", user) as (settings, passwords):
        api, seconds = HubAPI.for_workshop(settings), []
        for n in range(repeat):
            if n:  # a fresh server each time: stop the last one and wait until it is gone
                api.delete(f"/users/{user}/server")
                deadline = time.monotonic() + 120
                while (api.get(f"/users/{user}").get("servers") or server_containers(settings)) \
                        and time.monotonic() < deadline:
                    time.sleep(0.5)
            seconds.append(login_to_ready(settings, user, passwords[user]))
        time.sleep(10)  # settled: JupyterLab's first requests answered
        server = server_of(settings, user)
        idle = memory_mib(server)
        in_server(settings, user, _ORIENTATION_LAB)
        time.sleep(10)
        cl = engine.client()
        lab = [c for c in cl.containers.list(filters={"label": [f"{L.LAB}=orientation", f"{L.LEARNER}={user}"]})]
        lab_mib = sum(memory_mib(c) for c in lab)
        with_kernel = memory_mib(server)
        with contextlib.suppress(HubAPIError):
            api.delete(f"/users/{user}/server")
    per_learner = with_kernel + lab_mib
    host_mib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    limit_mib = _size_mib(settings.mem_limit)
    note = (f"server idle {idle:.0f} MiB, with module 0's kernel {with_kernel:.0f} MiB, orientation lab "
            f"{lab_mib:.0f} MiB ({len(lab)} container(s)); this host ({host_mib / 1024:.1f} GiB, {os.cpu_count()} "
            f"cores) holds ~{int(host_mib * 0.8 // per_learner)} such learners in 80% of its memory, "
            f"{int(host_mib * 0.8 // limit_mib)} at the server's limit ({settings.mem_limit}, labs apart)")
    return [BenchRow("memory per learner (idle server + orientation lab)", per_learner, limit_mib, " MiB",
                     f"a learner server's memory limit ({settings.mem_limit})", note=note),
            BenchRow(f"login to a ready JupyterLab (median of {repeat})", statistics.median(seconds),
                     float(settings.start_timeout), "s", "the hub's spawn timeout",
                     note=f"fresh servers, each run {[round(x, 1) for x in seconds]} s; login form to the lab page "
                          "and its workspace listing (what a browser's first load asks)")]


def _size_mib(size: str) -> float:
    """'1G', '512m' -> MiB."""
    units = {"k": 1 / 1024, "m": 1, "g": 1024}
    return float(size[:-1]) * units[size[-1].lower()] if size[-1].lower() in units else float(size) / 2**20


BENCHES: dict[str, Callable[[], BenchRow | list[BenchRow]]] = {
    "lab-start": bench_lab_start,
    "mllp": bench_mllp,
    "pipeline-overhead": bench_pipeline_overhead,
    "synth": bench_synth,
    "dockerfile": bench_learner_dockerfile,
    "router": bench_router_switch,
    "make-lab": bench_make_lab_prepare,
    "grading": bench_grading,
    "cutover": bench_blue_green_cutover,
    "rollback": bench_rollback_detection,
    "grading-queue": bench_grading_queue,
    "drill": bench_drill,
    "scrape": bench_scrape_overhead,
    "broker": bench_broker_overhead,
    "learners-per-host": bench_learners_per_host,
    "privacy": bench_privacy,
    "make-test": bench_make_test,
}


def main(*, only: Sequence[str] | None = ()) -> int:
    """Run the benchmarks (default, or none named: all of BENCHES) and print measured / reference / ratio."""
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
