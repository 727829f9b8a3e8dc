"""Mutation testing: do a learner's tests notice when the code is wrong?

A green test suite proves little if it would stay green on broken code. Each
``Mutant`` plants one realistic bug (an off-by-one field index, a wrong ACK
code, a dropped segment) in a copy of the service by replacing one exact
snippet; the learner's tests must pass on the real code and fail on the
mutant ("kill" it). Module 1 grades its "tests first" exercise this way; the
graded mutants live in hidden test cells, so learners cannot write tests
against them.

Every run is a separate ``python -m pytest`` process in a fresh temporary
folder with a time limit: the learner's tests are learner code, so in the
grader this runs inside the sandboxed grading container, never on the host.
"""
from __future__ import annotations

import html
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from careops.errors import CareOpsError

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
        for m, r in self.runs:
            lines.append(f"  {'killed  ' if not r.passed else 'SURVIVED'} {m.id}: {m.description}")
        lines.append(f"mutation score: {len(self.killed)}/{len(self.runs)} killed")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        ok = self.passes_on_original
        head = (f"<b>Your tests on the real code</b>: <span style='color:{'#2e7d32' if ok else '#c62828'}'>"
                f"{html.escape(self.original.summary())}</span>")
        rows = "".join(
            f"<tr><td><code>{html.escape(m.id)}</code></td><td>{html.escape(m.description)}</td>"
            f"<td style='color:{'#2e7d32' if not r.passed else '#c62828'}'>"
            f"{'killed' if not r.passed else 'survived'}</td></tr>" for m, r in self.runs)
        table = (f"<table><tr><th>mutant</th><th>planted bug</th><th>your tests</th></tr>{rows}</table>"
                 if self.runs else "")
        return f"<div>{head}<br>{table}<b>mutation score</b>: {len(self.killed)}/{len(self.runs)} killed</div>"


def _run_pytest(source: str, tests: str, target: str, timeout: float) -> TestRun:
    with tempfile.TemporaryDirectory(prefix="careops-mutation-") as tmp:
        Path(tmp, f"{MODULE}.py").write_text(source, encoding="utf-8")
        Path(tmp, TEST_FILE).write_text(tests, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
        env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0")
        cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:randomly",
               "--rootdir", tmp, "-o", "addopts=", TEST_FILE]
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            return TestRun(target, None, out[-4000:])
        return TestRun(target, proc.returncode, (proc.stdout + proc.stderr)[-4000:])


def run_mutation(tests: str, mutants: list[Mutant], *, source: str | Path,
                 timeout: float = 60.0, workers: int = 2) -> MutationReport:
    """Run ``tests`` (pytest source importing ``adt_service``) on ``source`` and on each mutant of it.

    ``source`` is the service's code or a path to it. Mutants run only when the
    tests pass on the original: a suite that is red on correct code proves nothing.
    """
    if not isinstance(tests, str) or not tests.strip():
        raise CareOpsError("no tests to run: expected the text of a pytest file, got an empty value",
                           fix="write your tests in the %%artifact cell and run it")
    code = Path(source).read_text(encoding="utf-8") if isinstance(source, Path) else source
    variants = [(m, m.apply(code)) for m in mutants]  # fail fast if a mutant no longer applies
    original = _run_pytest(code, tests, "original", timeout)
    report = MutationReport(original)
    if not original.passed:
        return report
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        runs = list(pool.map(lambda mv: _run_pytest(mv[1], tests, mv[0].id, timeout), variants))
    report.runs = [(m, r) for (m, _), r in zip(variants, runs)]
    return report
