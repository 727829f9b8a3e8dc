"""Guard: no tracked file in the repository may contain real-looking PHI.

Why: the course promises that it never holds real PHI.  Only the
high-precision kinds (SSN, phone, e-mail, MRN, IP) are checked here so the
guard stays quiet on ordinary code; names, dates and ZIPs are left to
explicit scans of data, where context makes them meaningful.
"""
from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from careops.phi import ALLOW_MARKER, HIGH_PRECISION_KINDS, scan_paths


# Findings accepted as a baseline, keyed by (path, kind, masked value) so no
# PHI-like value is stored here. Empty: deliberate negative examples carry
# "# phi-scan: allow -- <reason>" on their line instead. The test fails when
# an entry goes stale, so a baseline can only shrink.
KNOWN_FINDINGS: frozenset[tuple[str, str, str]] = frozenset()


def _tracked_files(repo_root: Path) -> list[Path]:
    """Files git tracks (notebooks included: scan_file reads their cell sources)."""
    if shutil.which("git") is None or not (repo_root / ".git").exists():
        pytest.skip(f"{repo_root} is not a git checkout (or git is missing): nothing to guard")
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=repo_root, capture_output=True, check=True
    ).stdout.decode()
    return [repo_root / name for name in out.split("\0") if name and (repo_root / name).is_file()]


def test_repository_has_no_phi(repo_root: Path) -> None:
    files = _tracked_files(repo_root)
    assert files, f"expected git ls-files in {repo_root} to list files, got none"
    report = scan_paths(files, kinds=HIGH_PRECISION_KINDS)
    seen: set[tuple[str, str, str]] = set()
    problems: list[str] = []
    for f in report.phi:
        rel = Path(f.source).relative_to(repo_root).as_posix()
        key = (rel, f.kind, f.masked)
        if key in KNOWN_FINDINGS:
            seen.add(key)
            warnings.warn(f"known PHI-like value (baseline): {rel}:{f.line}: {f.kind} {f.masked}", stacklevel=1)
            continue
        problems.append(f"  {rel}:{f.line}: {f.kind} {f.masked}")
    assert not problems, (
        f"PHI guard: expected no real-looking identifiers in {len(files)} tracked files, "
        f"got {len(problems)}:\n" + "\n".join(problems)
        + f"\n  fix: use synthetic markers (SSN 999-xx-xxxx, phone 555-0100..555-0199, "
        f"@example.org, MRN SYN-..., IPs 192.0.2.x) or add '# {ALLOW_MARKER}' with a reason"
    )
    stale = sorted(KNOWN_FINDINGS - seen)
    assert not stale, (
        f"PHI guard baseline: expected every KNOWN_FINDINGS entry to still occur, got {len(stale)} "
        f"fixed: {stale}\n  fix: delete those entries from KNOWN_FINDINGS in {Path(__file__).name}"
    )
