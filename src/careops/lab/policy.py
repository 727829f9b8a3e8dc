"""The sandbox rules every lab container follows, and their limits.

A lab must never be able to starve the machine (memory, CPU, pids), reach
the host (no privileged mode, no host mounts beyond the lab's work folder, no
engine socket), or gain privileges it was not given (capabilities dropped,
no-new-privileges). The same rules apply in the learner's lab and the grader.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from careops.errors import PolicyViolation, QuotaExceeded
from careops.lab import labels as L

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}

#: Capabilities a lab container may ask for back; everything else stays dropped.
ALLOWED_CAPABILITIES = frozenset(
    {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "NET_BIND_SERVICE", "KILL"}
)
#: Paths that must never be mounted into a lab container, whatever the work folder.
FORBIDDEN_MOUNTS = ("/var/run/docker.sock", "/run/docker.sock", "/run/podman", "/proc", "/sys", "/dev")


def parse_bytes(value: str | int) -> int:
    """'128m' -> 134217728; plain numbers are bytes (Docker's own convention)."""
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmg]?)i?b?\s*", str(value).lower())
    if not m:
        raise PolicyViolation(
            f"memory limit {value!r} is not a size", fix="write it like 128m, 512m or 1g"
        )
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def format_bytes(n: int) -> str:
    """134217728 -> '128 MiB', 1572864 -> '1.5 MiB', a measured 125520896 -> '119.7 MiB' (never '122579 KiB')."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            value = n / size
            return f"{value:g} {unit}" if (value * 100).is_integer() else f"{value:.1f} {unit}"
    return f"{n} B"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one lab container."""

    memory: int = 256 * 1024**2
    cpus: float = 1.0
    pids: int = 128

    @classmethod
    def from_values(
        cls, memory: str | int | None = None, cpus: float | None = None, pids: int | None = None
    ) -> "Limits":
        base = cls()
        lim = cls(
            memory=parse_bytes(memory) if memory is not None else base.memory,
            cpus=float(cpus) if cpus is not None else base.cpus,
            pids=int(pids) if pids is not None else base.pids,
        )
        lim.validate()
        return lim

    def validate(self) -> None:
        """Refuse limits that are missing or too large for a shared laptop or workshop host."""
        if not 6 * 1024**2 <= self.memory <= MAX.memory:
            raise PolicyViolation(
                f"memory limit {format_bytes(self.memory)} is outside 6 MiB .. {format_bytes(MAX.memory)}",
                fix="choose a memory limit such as 128m or 512m",
            )
        if not 0.01 <= self.cpus <= MAX.cpus:
            raise PolicyViolation(
                f"CPU limit {self.cpus} is outside 0.01 .. {MAX.cpus}", fix="choose e.g. cpus: 0.5"
            )
        if not 8 <= self.pids <= MAX.pids:
            raise PolicyViolation(
                f"pids limit {self.pids} is outside 8 .. {MAX.pids}", fix="choose e.g. pids: 64"
            )

    def host_config(self) -> dict[str, object]:
        """The docker SDK keyword arguments that enforce these limits."""
        return {
            "mem_limit": self.memory,
            "memswap_limit": self.memory,  # no swap on top: the limit is the limit
            "nano_cpus": int(self.cpus * 1e9),
            "pids_limit": self.pids,
        }

    def as_row(self) -> dict[str, str]:
        return {"memory": format_bytes(self.memory), "cpus": f"{self.cpus:g}", "pids": str(self.pids)}


MAX = Limits(memory=2 * 1024**3, cpus=2.0, pids=1024)


def check_capabilities(cap_add: list[str] | tuple[str, ...]) -> list[str]:
    """Return the capabilities to add back, refusing any outside the allowlist."""
    caps = [c.upper().removeprefix("CAP_") for c in cap_add]
    bad = sorted(set(caps) - ALLOWED_CAPABILITIES)
    if bad:
        raise PolicyViolation(
            f"capabilities {', '.join(bad)} are not allowed in a lab container",
            fix=f"ask only for {', '.join(sorted(ALLOWED_CAPABILITIES))}",
        )
    return caps


def check_forbidden_mount(source: str | Path) -> Path:
    """Refuse the paths that hand over the host (the engine socket, /proc, /sys, /dev); the path, resolved."""
    src = Path(source).expanduser().resolve()
    for forbidden in FORBIDDEN_MOUNTS:
        if src == Path(forbidden) or str(src).startswith(forbidden.rstrip("/") + "/"):
            raise PolicyViolation(
                f"{src} may never be mounted into a lab container (it would hand over the host)",
                fix="labs reach the engine only through careops' own code, never a mounted socket",
            )
    return src


def check_bind_mount(source: str | Path, workdir: Path | None) -> Path:
    """Allow a host folder only inside the lab's explicit work folder."""
    src = check_forbidden_mount(source)
    if workdir is None:
        raise PolicyViolation(
            f"host folder {src} cannot be mounted: this lab has no work folder",
            fix="open the lab with Lab(..., workdir='path/to/folder') and mount folders inside it",
        )
    root = workdir.resolve()
    if src != root and root not in src.parents:
        raise PolicyViolation(
            f"host folder {src} is outside the lab's work folder {root}",
            fix=f"put what the container needs under {root}",
        )
    return src


@dataclass(frozen=True)
class LabQuota:
    """One learner's share of a shared host (workshop mode): containers at once, and their memory limits in total.

    Every container of the learner counts, in every lab, running or not (a stopped one can be started again);
    a container that a request replaces (same name) does not.
    """

    containers: int = 8
    memory: int = 2 * 1024**3
    #: labs open at once (each is a network: the engine has a limited pool of their address ranges)
    labs: int = 6
    volumes: int = 16

    def check(self, existing: dict[str, int], new_name: str, new_memory: int) -> None:
        """``existing``: the learner's containers (name -> memory limit). Raise QuotaExceeded if ``new`` does not fit."""
        others = {n: m for n, m in existing.items() if n != new_name}
        if len(others) + 1 > self.containers:
            raise QuotaExceeded(
                f"starting {new_name} would make {len(others) + 1} lab containers; your share of this "
                f"workshop host is {self.containers} at once (you have {len(others)}: {', '.join(sorted(others))})",
                fix="remove containers you no longer need (container.remove(), lab.close(), or careops labs "
                    "reset LAB --yes), then run the cell again")
        total = sum(others.values()) + new_memory
        if total > self.memory:
            raise QuotaExceeded(
                f"starting {new_name} with {format_bytes(new_memory)} would bring your lab containers to "
                f"{format_bytes(total)} of memory limits; your share of this workshop host is "
                f"{format_bytes(self.memory)} (in use: {format_bytes(sum(others.values()))})",
                fix="give the container a smaller memory limit, or remove containers you no longer need "
                    "(lab.close() or careops labs reset LAB --yes)")

    def check_count(self, kind: str, existing: list[str], new_name: str) -> None:
        """``kind`` is 'labs' or 'volumes'; ``existing``: the learner's names. Raise QuotaExceeded if one more is too many."""
        limit = getattr(self, kind)
        others = [n for n in existing if n != new_name]
        if len(others) + 1 > limit:
            raise QuotaExceeded(
                f"{new_name} would make {len(others) + 1} {kind} of yours; your share of this workshop host is "
                f"{limit} at once (you have: {', '.join(sorted(others))})",
                fix="close labs you no longer need (lab.close(), or careops labs reset LAB --yes), then try again")

    def as_row(self) -> dict[str, str]:
        return {"containers": str(self.containers), "memory": format_bytes(self.memory), "labs": str(self.labs),
                "volumes": str(self.volumes)}


def check_lab_image(image: str, *, learner: str, course_images: tuple[str, ...], build_repo: str,
                    image_labels: dict[str, str] | None) -> None:
    """On a shared host, a lab runs only the course's images and the learner's own builds (by tag and label)."""
    if image in course_images:
        return
    own_prefix = f"{build_repo}:{learner}-"
    if image.startswith(own_prefix) and (image_labels or {}).get(L.LEARNER) == learner \
            and (image_labels or {}).get(L.LEARNER_BUILD):
        return
    raise PolicyViolation(
        f"image {image} is not one of the course's images (expected one of {', '.join(course_images)}, "
        f"or an image you built yourself, {own_prefix}...)",
        fix="use a course image such as careops/lab-runtime:latest, or build yours with the module's build cell")
