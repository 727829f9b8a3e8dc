"""Realistic faults for exercises: e.g. a kernel that dies with its lab open."""
from __future__ import annotations

from careops.images.catalog import LAB_IMAGE

import subprocess
import sys
import textwrap

from careops.lab import labels as L
from careops.lab.resources import Resource, find


def simulate_crash(lab: str = "night-shift", *, learner: str | None = None, image: str = LAB_IMAGE) -> list[Resource]:
    """Open ``lab`` in another Python process, start a container and a volume, then kill that process.

    What is left is exactly what a crashed Jupyter kernel leaves: resources whose
    creator is gone. Returns them.
    """
    who = learner or L.learner_id()
    code = textwrap.dedent(f"""
        import os
        from careops.lab import Lab
        lab = Lab({lab!r}, learner={who!r})
        lab.volume("ward-db")
        lab.run({image!r}, name="infusion-pump-sim", command=["sleep", "infinity"], memory="32m", pids=16,
                volumes={{"ward-db": "/data"}})
        os._exit(137)  # no close(), no atexit: the kernel 'crashed'
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if proc.returncode != 137:
        raise RuntimeError(f"the crash drill could not set up its lab: {proc.stderr[-1500:]}")
    return find(lab, who)
