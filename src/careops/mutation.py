"""Mutation testing: do a learner's tests notice when the code is wrong?

A green test suite proves little if it would stay green on broken code. Each
``Mutant`` plants one realistic bug (an off-by-one field index, a wrong ACK
code, a dropped segment) in a copy of the service by replacing one exact
snippet; the learner's tests must pass on the real code and fail on the
mutant ("kill" it). Module 1 grades its "tests first" exercise this way; the
graded mutants live in hidden test cells, so learners cannot write tests
against them.

The learner's tests are learner code, so they never run on the host: one
sealed container from the CI runner image (no network, read-only root,
non-root, memory, pids and CPU limits, a killing time limit) runs every
version, each in its own folder and ``python -m pytest`` process with its own
time limit, and reports back one JSON line that careops parses strictly. The
same code runs for the learner's visible check and in the grader.

Limit: like any mutation tester, this can be gamed by a test that inspects
the code under test (e.g. hashes the module's source) instead of its
behaviour; hidden mutants make that a deliberate act, not an accident.
"""
from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from careops.errors import CareOpsError
from careops.images.catalog import CI_RUNNER_IMAGE
from careops.report import theme

#: Module name the learner's tests import (``import adt_service``).
MODULE = "adt_service"
TEST_FILE = "test_adt_service.py"


class MutantError(CareOpsError):
    """A mutant does not apply to the source (its snippet is missing or ambiguous)."""


@dataclass(frozen=True)
class Mutant:
    """One planted bug: replace ``old`` (which must occur exactly once) with ``new``."""

    id: str
    description: str
    old: str
    new: str

    def apply(self, source: str) -> str:
        count = source.count(self.old)
        if count != 1:
            raise MutantError(
                f"mutant {self.id} does not apply: expected its snippet exactly once in the source, found it {count} times",
                fix="the service source changed; update the mutant's 'old' text to match it")
        return source.replace(self.old, self.new)


@dataclass(frozen=True)
class FailedTest:
    """One test that failed: its name and what pytest said (the assertion's message first)."""

    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.name}: {self.message}" if self.message else self.name


#: Characters of a failed test's message kept (its first lines of pytest's ``E`` output).
FAILURE_WIDTH = 300


def failed_tests(output: str) -> list[FailedTest]:
    """The failed tests in pytest's output, each with the first lines of its error (``E   ...``).

    Reads the failure sections (``____ test_name ____``); when they were cut off,
    the short summary (``FAILED file::test_name - message``).
    """
    sections: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        head = re.match(r"^_{3,} (.+?) _{3,}$", line)
        if head:
            current = head.group(1).strip()
            sections.setdefault(current, [])
        elif line.startswith("="):
            current = None
        elif current is not None and line.startswith("E ") and line[1:].strip():
            sections[current].append(line[1:].strip())
    if sections:
        return [FailedTest(name, "; ".join(lines[:2])[:FAILURE_WIDTH]) for name, lines in sections.items()]
    found = re.findall(r"^(?:FAILED|ERROR) (?:\S+::)?(\S+)(?: - (.*))?$", output, re.M)
    return [FailedTest(name, message.strip()[:FAILURE_WIDTH]) for name, message in found]


@dataclass
class TestRun:
    """One pytest run of the learner's tests against one version of the code."""

    target: str  # "original" or a mutant id
    exit_code: int | None  # None: killed at the time limit
    output: str

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None

    @property
    def collected_nothing(self) -> bool:
        return self.exit_code == 5  # pytest: no tests were collected

    @property
    def failures(self) -> list[FailedTest]:
        """The tests that failed in this run, with their messages (empty when it passed or timed out)."""
        return [] if self.passed or self.timed_out else failed_tests(self.output)

    def summary(self) -> str:
        """pytest's last line (e.g. '3 passed, 1 failed in 0.05s'), or what went wrong."""
        if self.timed_out:
            return "timed out"
        lines = [ln for ln in self.output.strip().splitlines() if ln.strip()]
        return lines[-1].strip("= ") if lines else f"exit code {self.exit_code}"


@dataclass
class MutationReport:
    """The learner's tests on the original code and on every mutant."""

    original: TestRun
    runs: list[tuple[Mutant, TestRun]] = field(default_factory=list)

    @property
    def passes_on_original(self) -> bool:
        return self.original.passed

    @property
    def killed(self) -> list[Mutant]:
        """Mutants whose run failed (a test noticed the bug; a time-out counts as noticed, as in mutmut)."""
        return [m for m, r in self.runs if not r.passed]

    @property
    def survived(self) -> list[Mutant]:
        return [m for m, r in self.runs if r.passed]

    @property
    def score(self) -> float:
        """Fraction of mutants killed (0 when the tests do not pass on the real code)."""
        if not self.passes_on_original or not self.runs:
            return 0.0
        return len(self.killed) / len(self.runs)

    def __str__(self) -> str:
        lines = [f"original code: {self.original.summary()}"]
        lines += [f"  FAILED {f}" for f in self.original.failures]
        if not self.passes_on_original:
            lines.append("mutants not run: your tests must pass on the real code first")
            return "\n".join(lines)
        for m, r in self.runs:
            lines.append(f"  {'killed  ' if not r.passed else 'SURVIVED'} {m.id}: {m.description}")
        lines.append(f"mutation score: {len(self.killed)}/{len(self.runs)} killed")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        ok = self.passes_on_original
        head = theme.para(theme.join([theme.bold("Your tests on the real code: "),
                                      theme.state("passed" if ok else "failed", self.original.summary())]))
        if not ok:
            failed = theme.items((False, theme.join([theme.code(f.name), f": {f.message}" if f.message else ""]))
                                 for f in self.original.failures)
            return theme.card("Mutation testing", head + failed + theme.hint(
                "mutants run only when your tests pass on the real code: fix the failing test first"),
                status=theme.verdict(False, "", "your tests fail on the real code"), ok=False)
        rows = ([theme.code(m.id), m.description, theme.state("killed" if not r.passed else "survived")]
                for m, r in self.runs)
        table = theme.table(rows, header=["mutant", "planted bug", "your tests"]) if self.runs else ""
        killed = f"{len(self.killed)}/{len(self.runs)} killed"
        return theme.card("Mutation score", head + table, status=theme.verdict(not self.survived, killed, killed),
                          ok=not self.survived)


RESULT_MARK = "CAREOPS-MUTATION-RESULT "
MAX_TESTS = 256 * 1024

# Runs inside the container: every version in its own folder and pytest process.
_DRIVER = r"""
import base64, json, os, subprocess, sys
chunks = sorted((k for k in os.environ if k.startswith("CAREOPS_MUTATION_")), key=lambda k: int(k.rsplit("_", 1)[1]))
job = json.loads(base64.b64decode("".join(os.environ[k] for k in chunks)))
versions = [("original", job["source"])] + [(m, job["source"].replace(old, new, 1)) for m, old, new in job["mutants"]]
results = []
for i, (target, source) in enumerate(versions):
    d = "/work/v%d" % i
    os.makedirs(d)
    open(os.path.join(d, job["module"] + ".py"), "w").write(source)
    open(os.path.join(d, job["test_file"]), "w").write(job["tests"])
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--rootdir", d, "-o", "addopts=",
           job["test_file"]]
    try:
        p = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=job["timeout"],
                           env={"PATH": os.environ["PATH"], "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1",
                                "PYTHONHASHSEED": "0"})
        code, out = p.returncode, (p.stdout + p.stderr)[-4000:]
    except subprocess.TimeoutExpired as e:
        code, out = None, ((e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""))[-4000:]
    results.append([target, code, out])
    if i == 0 and code != 0:
        break  # mutants only count when the tests pass on the real code
print("CAREOPS-MUTATION-RESULT " + json.dumps(results), flush=True)
"""


def _parse_results(logs: str, targets: list[str]) -> list[TestRun]:
    """The driver's one JSON line, read strictly: [target, exit code or null, output] per version, in order."""
    line = next((ln for ln in reversed(logs.splitlines()) if ln.startswith(RESULT_MARK)), None)
    if line is None:
        raise CareOpsError("the test container ended without a result: " + (logs.strip().splitlines() or ["no output"])[-1][:300],
                           fix="run your tests on their own first; a test must not end the Python process (sys.exit)")
    data = json.loads(line[len(RESULT_MARK):])
    runs = []
    for i, item in enumerate(data if type(data) is list else []):
        if not (type(item) is list and len(item) == 3 and i < len(targets) and item[0] == targets[i]
                and (item[1] is None or type(item[1]) is int) and type(item[2]) is str):
            raise CareOpsError("the test container sent a malformed result", fix="run the check again")
        runs.append(TestRun(targets[i], item[1], item[2][-4000:]))
    if not runs:
        raise CareOpsError("the test container sent no result", fix="run the check again")
    return runs


ENV_CHUNK = 96 * 1024  # below Linux's 128 KiB limit for one environment string


def _run_in_container(source: str, mutants: list[Mutant], tests: str, timeout: float, image: str) -> list[TestRun]:
    import docker

    from careops import engine
    from careops.dockerops import tracked_container
    from careops.lab import labels as L

    cl = engine.client()
    try:
        cl.images.get(image)
    except docker.errors.ImageNotFound:
        raise CareOpsError(f"image {image} is not on this engine", fix="build the course images: make images") from None
    job = {"source": source, "mutants": [[m.id, m.old, m.new] for m in mutants], "tests": tests, "timeout": timeout,
           "module": MODULE, "test_file": TEST_FILE}
    payload = base64.b64encode(json.dumps(job).encode()).decode()
    env = {f"CAREOPS_MUTATION_{i}": payload[at:at + ENV_CHUNK] for i, at in enumerate(range(0, len(payload), ENV_CHUNK))}
    targets = ["original"] + [m.id for m in mutants]
    learner = L.learner_id()
    labels = L.lab_labels("mutation", learner, uuid.uuid4().hex[:12])
    with tracked_container(
        cl, image, ["python", "-c", _DRIVER], environment=env,
        name=L.resource_name(learner, "mutation", uuid.uuid4().hex[:8]), labels=labels,
        network_mode="none", read_only=True, user="1000:1000", working_dir="/work",
        tmpfs={"/work": "rw,nosuid,nodev,size=64m,uid=1000,gid=1000", "/tmp": "rw,nosuid,nodev,size=32m"},
        mem_limit="512m", memswap_limit="512m", pids_limit=128, nano_cpus=1_000_000_000,
        cap_drop=["ALL"], security_opt=["no-new-privileges"]) as container:
        container.start()
        budget = timeout * len(targets) + 30
        try:
            status = container.wait(timeout=budget)
        except Exception:  # noqa: BLE001 - the engine's read timeout: the whole run took too long
            container.kill()
            raise CareOpsError(f"the tests did not finish within {budget:.0f} s in all",
                               fix="look for a test that waits or loops; each version has "
                                   f"{timeout:.0f} s") from None
        logs = container.logs(stdout=True, stderr=True, tail=200).decode(errors="replace")
        if status.get("StatusCode") == 137:
            raise CareOpsError("the test container was killed (out of memory: 512 MiB)",
                               fix="a test must not build huge data")
        return _parse_results(logs, targets)


def run_mutation(tests: str, mutants: list[Mutant], *, source: str | Path,
                 timeout: float = 60.0, image: str = CI_RUNNER_IMAGE) -> MutationReport:
    """Run ``tests`` (pytest source importing ``adt_service``) on ``source`` and on each mutant of it.

    ``source`` is the service's code or a path to it. Mutants count only when
    the tests pass on the original: a suite that is red on correct code proves
    nothing. Everything runs in one sealed container of ``image`` (the ci-runner: Python and pytest,
    built offline by `make images`; see the module's docstring).
    """
    if not isinstance(tests, str) or not tests.strip():
        raise CareOpsError("no tests to run: expected the text of a pytest file, got an empty value",
                           fix="write your tests in the %%artifact cell and run it")
    if len(tests) > MAX_TESTS:
        raise CareOpsError(f"the tests are {len(tests)} characters long: the limit is {MAX_TESTS}",
                           fix="keep the test file to hand-written tests")
    code = Path(source).read_text(encoding="utf-8") if isinstance(source, Path) else source
    for m in mutants:
        m.apply(code)  # fail fast if one no longer applies (exactly one place to change)
    runs = _run_in_container(code, mutants, tests, timeout, image)
    report = MutationReport(runs[0])
    if runs[0].passed:
        report.runs = list(zip(mutants, runs[1:]))
    return report
