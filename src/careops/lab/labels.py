"""Labels and names that tie every lab resource to its lab and learner.

Labels are how `careops labs ls/reset` find resources after the kernel that
made them is gone; names are unique per learner so that two learners on one
engine never collide.
"""
from __future__ import annotations

import getpass
import hashlib
import os
import re
import socket

PREFIX = "org.careops"
MANAGED = f"{PREFIX}.managed"
LAB = f"{PREFIX}.lab"
LEARNER = f"{PREFIX}.learner"
SESSION = f"{PREFIX}.session"
CREATOR_HOST = f"{PREFIX}.creator-host"
CREATOR_PID = f"{PREFIX}.creator-pid"
ROLE = f"{PREFIX}.role"
#: Container ports a lab asked for, on a lab whose network publishes none on the host (through the broker)
PORTS = f"{PREFIX}.ports"
#: A lab container's memory limit in bytes, on a shared host (the broker's quota adds them up)
MEMORY = f"{PREFIX}.memory"
#: An image a learner's Dockerfile built (careops.containerize.build): its build id
LEARNER_BUILD = f"{PREFIX}.learner-build"

_NAME_OK = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def slug(text: str, *, what: str = "name") -> str:
    """A name part safe for Docker: lowercase letters, digits and dashes.

    A text that had to be changed gets a short hash of the original, so
    "Ana.M" and "ana-m" stay two different learners.
    """
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:32] or what
    if cleaned != text:
        cleaned = f"{cleaned}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"
    if not _NAME_OK.match(cleaned):
        raise ValueError(f"cannot make a {what} from {text!r}")
    return cleaned


LEARNER_ENV = "CAREOPS_LEARNER"


def learner_name() -> str:
    """Who the labs belong to, as typed: $CAREOPS_LEARNER, else the login name."""
    name = os.environ.get(LEARNER_ENV)
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid{os.getuid()}" if hasattr(os, "getuid") else "learner"


def learner_id() -> str:
    """The learner's name made safe for resource names and labels."""
    return slug(learner_name(), what="learner id")


def lab_labels(lab: str, learner: str, session: str, *, host: str | None = None,
               pid: str | None = None) -> dict[str, str]:
    """The labels every resource of one lab session carries (creator: this process unless told)."""
    return {
        MANAGED: "true",
        LAB: lab,
        LEARNER: learner,
        SESSION: session,
        CREATOR_HOST: host or socket.gethostname(),
        CREATOR_PID: pid or str(os.getpid()),
    }


def resource_name(learner: str, lab: str, name: str | None = None) -> str:
    """careops-<learner>-<lab>[-<name>]: readable in `docker ps`, unique per learner."""
    parts = ["careops", learner, lab] + ([name] if name else [])
    return "-".join(parts)
