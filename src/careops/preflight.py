"""Prove the sandbox on this machine: run a real container and test its limits.

Used by the orientation notebook and `careops doctor`: a learner sees with
their own eyes that the limits hold (a memory hog is stopped, a process flood
is capped, the root filesystem is read-only, the user is not root).
"""
from __future__ import annotations

from careops.images.catalog import LAB_IMAGE

import time
from dataclasses import dataclass, field

from careops.lab import Lab
from careops.lab.policy import format_bytes
from careops.report import theme


_PROCESS_FLOOD = """
import subprocess
procs = []
try:
    for _ in range(60):
        procs.append(subprocess.Popen(["sleep", "5"]))
    print(f"all {len(procs)} started")
except OSError:
    print(f"refused after {len(procs)}")
finally:
    for p in procs:
        p.kill()
"""


@dataclass
class PreflightRow:
    what: str
    expected: str
    observed: str
    ok: bool


@dataclass
class PreflightReport:
    """What the preflight container showed, one row per limit."""

    engine: str
    seconds: float
    rows: list[PreflightRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def __str__(self) -> str:
        lines = [f"Preflight on {self.engine} ({self.seconds:.1f} s): {'all limits hold' if self.ok else 'PROBLEMS'}"]
        lines += [f"  [{'ok' if r.ok else 'FAIL'}] {r.what}: expected {r.expected}, observed {r.observed}" for r in self.rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = ([theme.mark(r.ok), r.what, r.expected, r.observed] for r in self.rows)
        status = theme.join([theme.verdict(self.ok, "all limits hold", "some limits do not hold"), " ",
                             theme.muted(f"({self.seconds:.1f} s)")])
        table = theme.table(rows, header=["", "check", "expected", "observed"])
        return theme.card(f"Preflight on {self.engine}", table, status=status, ok=self.ok)


def preflight(image: str = LAB_IMAGE, *, learner: str | None = None) -> PreflightReport:
    """Start one sandboxed container and try to break each of its limits."""
    started = time.monotonic()
    with Lab("preflight", learner=learner) as lab:
        engine = lab.engine()
        c = lab.run(image, name="probe", command=["sleep", "300"], memory="64m", cpus=0.5, pids=32,
                    user="1000", read_only=True)
        lim = c.limits()
        rows = [PreflightRow("a container starts", "running", c.status, c.status == "running")]
        uid = c.exec(["id", "-u"], check=False).output.strip()
        rows.append(PreflightRow("runs as non-root", "uid != 0", f"uid {uid}", uid not in ("0", "")))
        wrote = c.exec(["sh", "-c", "touch /etc/probe"], check=False)
        rows.append(PreflightRow("root filesystem is read-only", "write refused",
                                 "write refused" if not wrote.ok else "write allowed", not wrote.ok))
        hog = c.exec(["python3", "-c", "b = bytearray(256 * 2**20); print('allocated')"], check=False, timeout=30)
        rows.append(PreflightRow(f"memory limit {format_bytes(int(lim['memory']))}", "a 256 MiB allocation is stopped",
                                 "stopped" if not hog.ok else "allocated", not hog.ok))
        flood = c.exec(["python3", "-c", _PROCESS_FLOOD], check=False, timeout=30).output.strip()
        capped = flood.startswith("refused")
        rows.append(PreflightRow(f"pids limit {lim['pids']}", "60 extra processes are refused",
                                 flood or "no answer", capped))
        rows.append(PreflightRow("capabilities", "all dropped", ", ".join(lim["cap_drop"]) or "none dropped",
                                 lim["cap_drop"] == ["ALL"]))
        rows.append(PreflightRow("engine socket", "not mounted", ", ".join(m for m in lim["mounts"] if m) or "no mounts",
                                 not any("docker.sock" in (m or "") for m in lim["mounts"])))
    return PreflightReport(engine, time.monotonic() - started, rows)
