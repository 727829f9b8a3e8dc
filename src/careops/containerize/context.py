"""The build context a learner's Dockerfile is built in: the service, plus the clutter a real folder has.

Why: a real service folder holds more than the code -- an admin password file,
a production extract someone copied for debugging, a local database, .git.
The lab puts realistic decoys next to ``adt_service.py`` so that a missing
``.dockerignore`` (or ``COPY . .``) really ships them, and the layer scan
really finds them. The decoys are generated at build time (nothing secret or
PHI-like is tracked in the repository); the "extract" uses the SSA's voided
advertising SSN and a fictional phone number, never a person's.
"""
from __future__ import annotations

import secrets
import sqlite3
import tempfile
from pathlib import Path

from docker.utils.build import exclude_paths

from careops import paths

SERVICE_ASSET = "legacy-adt/v2/adt_service.py"


def _extract_lines() -> str:
    # Built from parts: the repository's PHI guard must not see a real-looking SSN in a tracked file.
    ssn = "-".join(["078", "05", "1120"])  # noqa: FLY002 - built from parts on purpose
    phone = "-".join(["312", "555", "2368"])  # noqa: FLY002 - built from parts on purpose
    mrn = "".join(["MRN", "-", "0042"])  # noqa: FLY002 - built from parts on purpose
    return ("MSH|^~\\&|ADT|RIVERSIDE|||20240101000000||ADT^A01|PROD-0001|P|2.5\r"
            f"PID|1||{mrn}^^^RIVERSIDE^MR||Doe^Jane||19700101|F|||1 Main St^^Springfield^IL^62701||{phone}|||||"
            f"V-0042|{ssn}\r")


def write_service_context(folder: str | Path, *, dockerfile: str, dockerignore: str | None) -> Path:
    """Fill ``folder`` with the service, the learner's Dockerfile and .dockerignore, and the decoys."""
    root = Path(folder)
    (root / "secrets").mkdir(parents=True, exist_ok=True)
    (root / "test-data").mkdir(exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / ".git").mkdir(exist_ok=True)
    (root / "__pycache__").mkdir(exist_ok=True)
    (root / "adt_service.py").write_bytes(paths.lab_asset(SERVICE_ASSET).read_bytes())
    (root / "README.md").write_text("# ADT service v2\nRun: python3 adt_service.py (configuration: ADT_* variables)\n")
    (root / "Dockerfile").write_text(dockerfile)
    if dockerignore is not None:
        (root / ".dockerignore").write_text(dockerignore)
    # a fresh random value per build: what the layer scan must find, never a real credential
    (root / "secrets" / "adt-admin.env").write_text(f"ADT_ADMIN_PASSWORD={secrets.token_urlsafe(18)}\n")
    (root / "test-data" / "admissions-extract.hl7").write_text(_extract_lines())
    with sqlite3.connect(root / "data" / "adt.db") as db:
        db.execute("CREATE TABLE IF NOT EXISTS patients (mrn TEXT PRIMARY KEY, family TEXT)")
    (root / ".git" / "config").write_text("[core]\n\trepositoryformatversion = 0\n")
    (root / "__pycache__" / "adt_service.cpython-311.pyc").write_bytes(b"\x00" * 16)
    return root


def context_entries(root: Path, dockerignore: str | None) -> dict[str, Path]:
    """The files the builder receives: what .dockerignore leaves in (Docker's own matching rules)."""
    patterns = [ln.strip() for ln in (dockerignore or "").splitlines() if ln.strip() and not ln.strip().startswith("#")]
    kept = exclude_paths(str(root), patterns, dockerfile="Dockerfile")
    entries = {}
    for rel in sorted(kept):
        full = root / rel
        if full.is_file():
            entries[rel] = full
    entries["Dockerfile"] = root / "Dockerfile"
    return entries


def temp_context() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="careops-learner-build-")
