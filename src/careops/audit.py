"""Append-only, hash-chained audit log: one JSON line per event.

Why: HIPAA's audit-control and integrity safeguards (45 CFR 164.312) ask that
we can tell *who* did *what* to *which* resource, *when*, *from where*, with
what *outcome* and *purpose* -- and notice if somebody later edits the record.
Each line stores the hash of the previous line (``prev``), a SHA-256 ``hash``
of its own content and an HMAC ``mac`` over that hash, so :meth:`AuditLog.verify`
finds edited, removed, reordered, inserted, forged or garbled lines.  Removing
lines at the *end* leaves a valid shorter chain, so store :meth:`AuditLog.head`
somewhere else (a CI summary, a ticket) and pass it back as ``expected_head``.

Never put PHI in an entry: ``resource`` is an internal id (``pipeline/42``,
``patient-internal/7f3a``), not a name, MRN, date of birth or address.

The course teaches practice; it does not certify legal compliance.
"""
from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from careops.errors import CareOpsError
from careops.report import theme

if TYPE_CHECKING:  # pandas is imported only when a dataframe is asked for
    import pandas as pd

GENESIS = "0" * 64
KEY_ENV = "CAREOPS_AUDIT_KEY"
REQUIRED_FIELDS = (
    "seq", "at", "actor", "role", "action", "resource", "outcome",
    "purpose", "source", "details", "prev", "hash", "mac",
)
_HTML_ROWS = 20


class AuditError(CareOpsError):
    """The audit log could not be written or read as asked."""


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same entry always hashes the same."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def entry_hash(content: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of an entry without ``hash``/``mac``."""
    body = {k: v for k, v in content.items() if k not in ("hash", "mac")}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def entry_mac(key: bytes, hash_hex: str) -> str:
    """HMAC-SHA256 over the hash: without the key nobody can re-seal an edit."""
    return hmac.new(key, hash_hex.encode("ascii"), hashlib.sha256).hexdigest()


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class AuditEntry:
    """One event as stored on one line of the log."""

    seq: int
    at: str
    actor: str
    role: str
    action: str
    resource: str
    outcome: str
    purpose: str
    source: str
    details: dict[str, Any]
    prev: str
    hash: str
    mac: str

    def to_dict(self) -> dict[str, Any]:
        """The entry as the dict written to disk."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditEntry:
        """Build from a parsed line; extra keys are ignored."""
        return cls(**{name: data[name] for name in REQUIRED_FIELDS})


@dataclass
class VerifyReport:
    """Verdict of :meth:`AuditLog.verify`; ``problems`` name the line and the fault."""

    ok: bool
    entries: int
    problems: list[str] = field(default_factory=list)
    head: str = GENESIS
    path: str = ""

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        where = f" {self.path}" if self.path else ""
        if self.ok:
            return f"audit log{where}: OK, {self.entries} entries, head {self.head[:16]}"
        lines = [
            f"audit log{where}: TAMPERED or damaged, {self.entries} entries, "
            f"{len(self.problems)} problem(s):"
        ]
        lines += [f"  - {p}" for p in self.problems]
        lines.append("  next step: keep this copy as evidence, compare it with a backup "
                     "and report it to the security officer; do not 'fix' the file.")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        status = theme.verdict(self.ok, "OK", "FAILED")
        body = theme.join([theme.esc(f"{self.entries} entries, head "), theme.code(self.head[:16])])
        body += theme.items((False, theme.esc(p)) for p in self.problems)
        return theme.card("Audit verification", body, status=status, ok=self.ok)


class AuditLog:
    """An append-only JSON-lines audit log with a hash chain and HMAC seals.

    Key: ``key`` if given, else env ``CAREOPS_AUDIT_KEY``, else ``<log>.key``
    beside the log (created with mode 0600 on first append).  ``clock`` is for
    tests; it must return timezone-aware datetimes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        key: bytes | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.path = Path(path)
        self.key_path = self.path.with_name(self.path.name + ".key")
        self._explicit_key = key
        self._clock = clock or _utc_now
        if key is not None and (not isinstance(key, bytes) or not key):
            raise AuditError(
                f"audit key must be non-empty bytes, got {type(key).__name__} of "
                f"length {len(key) if hasattr(key, '__len__') else '?'}",
                fix="pass key=b'...' (e.g. secrets.token_bytes(32)) or leave it out "
                f"to use {KEY_ENV} or the key file",
            )

    # -- key ---------------------------------------------------------------
    def _key(self, *, create: bool) -> bytes | None:
        """Resolve the HMAC key; ``None`` only when no key exists and create=False."""
        if self._explicit_key is not None:
            return self._explicit_key
        env = os.environ.get(KEY_ENV)
        if env:
            return env.encode("utf-8")
        try:
            return self._read_key_file()
        except FileNotFoundError:
            if not create:
                return None
        return self._create_key_file()

    def _read_key_file(self) -> bytes:
        st = self.key_path.stat()
        if st.st_mode & 0o077:
            raise AuditError(
                f"audit key file {self.key_path} is readable by others: mode "
                f"{oct(st.st_mode & 0o777)}, expected 0o600",
                fix=f"chmod 600 {self.key_path} (and rotate the key if others read it)",
            )
        data = self.key_path.read_bytes().strip()
        if not data:
            raise AuditError(
                f"audit key file {self.key_path} is empty, expected a hex key",
                fix="restore the key file from backup; a new key cannot verify old lines",
            )
        return data

    def _create_key_file(self) -> bytes:
        """Write a fresh key to a 0600 temp file, then link it in atomically.

        Why link: concurrent first appends must all end up with the same key.
        """
        self.key_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.key_path.with_name(f".{self.key_path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, secrets.token_hex(32).encode("ascii") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, self.key_path)
        except FileExistsError:
            pass  # another writer won the race; use its key
        finally:
            tmp.unlink(missing_ok=True)
        return self._read_key_file()

    # -- writing -----------------------------------------------------------
    def append(
        self,
        *,
        actor: str,
        role: str,
        action: str,
        resource: str,
        outcome: str,
        purpose: str = "",
        source: str = "",
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Add one event at the end of the log and fsync it.

        ``resource`` must be an internal id, never PHI (no names, MRNs, dates of
        birth).  Safe for concurrent writers on one machine: the last line is
        re-read under an exclusive ``flock``; earlier lines are never rewritten.
        """
        fields = {"actor": actor, "role": role, "action": action,
                  "resource": resource, "outcome": outcome}
        for name, value in {**fields, "purpose": purpose, "source": source}.items():
            if not isinstance(value, str):
                raise AuditError(
                    f"audit field {name!r} must be a string, got {type(value).__name__}",
                    fix=f"pass {name}=str(...)",
                )
        empty = [name for name, value in fields.items() if not value.strip()]
        if empty:
            raise AuditError(
                f"audit fields {', '.join(empty)} are empty; who/role/what/resource/"
                "outcome are required",
                fix="fill them in, e.g. actor='ci-runner', role='service', "
                "action='pipeline.run', resource='pipeline/42', outcome='success'",
            )
        details = self._normalise_details(details)
        when = self._clock()
        if when.tzinfo is None:
            raise AuditError(
                "audit clock returned a naive datetime, expected a timezone-aware one",
                fix="return datetime.now(timezone.utc) from the clock",
            )
        at = when.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
        key = self._key(create=True)
        assert key is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        with open(self.path, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                last = self._last_entry(fh)
                seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
                content: dict[str, Any] = {
                    "seq": seq, "at": at, **fields, "purpose": purpose,
                    "source": source, "details": details, "prev": prev,
                }
                digest = entry_hash(content)
                content["hash"] = digest
                content["mac"] = entry_mac(key, digest)
                fh.write(canonical_json(content) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        if created:
            self._fsync_dir()
        return AuditEntry.from_dict(content)

    @staticmethod
    def _normalise_details(details: dict[str, Any] | None) -> dict[str, Any]:
        """Round-trip through JSON so the returned entry equals what is on disk."""
        if details is None:
            return {}
        if not isinstance(details, dict):
            raise AuditError(
                f"audit details must be a dict, got {type(details).__name__}",
                fix="pass details={'key': value, ...} or leave it out",
            )
        try:
            return json.loads(canonical_json(details))
        except (TypeError, ValueError) as exc:
            raise AuditError(
                f"audit details are not JSON-serialisable: {exc}",
                fix="use only str, int, float (finite), bool, None, lists and dicts "
                "with str keys; convert dates with .isoformat()",
            ) from exc

    def _fsync_dir(self) -> None:
        """Make the new file's directory entry durable too."""
        try:
            fd = os.open(self.path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _last_entry(self, fh: IO[bytes]) -> dict[str, Any] | None:
        """Parse the last line (caller holds the lock); refuse to extend a broken tail."""
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        if end == 0:
            return None
        chunk = 4096
        pos = end
        buf = b""
        while pos > 0:
            step = min(chunk, pos)
            pos -= step
            fh.seek(pos)
            buf = fh.read(step) + buf
            if buf.count(b"\n") >= 2 or pos == 0:
                break
        if not buf.endswith(b"\n"):
            raise AuditError(
                f"audit log {self.path} ends with an incomplete line (no newline at "
                "the end), expected every line to end with '\\n'",
                fix="run AuditLog(...).verify(), keep the file as evidence and start a "
                "new log; never edit an audit log by hand",
            )
        line = buf[:-1].rsplit(b"\n", 1)[-1]
        try:
            last = json.loads(line)
            if not isinstance(last, dict) or not isinstance(last.get("seq"), int) \
                    or not isinstance(last.get("hash"), str):
                raise ValueError("not an audit entry")
        except ValueError as exc:
            raise AuditError(
                f"audit log {self.path}: last line is not a valid entry ({exc}), "
                "expected JSON with seq and hash",
                fix="run AuditLog(...).verify(), keep the file as evidence and start a "
                "new log; never edit an audit log by hand",
            ) from exc
        return last

    # -- reading -----------------------------------------------------------
    def _read_lines(self) -> list[bytes]:
        """All raw lines, read under a shared lock so no half-written line is seen."""
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            return []
        with fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH)
            try:
                data = fh.read()
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        return lines

    def entries(self) -> Iterator[AuditEntry]:
        """Yield entries in file order; raises AuditError on an unreadable line."""
        for number, raw in enumerate(self._read_lines(), start=1):
            try:
                data = json.loads(raw)
                yield AuditEntry.from_dict(data)
            except (ValueError, KeyError, TypeError) as exc:
                raise AuditError(
                    f"audit log {self.path} line {number} is not a valid entry ({exc})",
                    fix="run AuditLog(...).verify() for the full list of problems",
                ) from exc

    def head(self) -> str:
        """Hash of the last line (GENESIS when empty); store it elsewhere to catch truncation."""
        lines = self._read_lines()
        if not lines:
            return GENESIS
        try:
            return str(json.loads(lines[-1])["hash"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError(
                f"audit log {self.path}: last line {len(lines)} has no readable hash ({exc})",
                fix="run AuditLog(...).verify() to see what is wrong",
            ) from exc

    def verify(
        self, expected_head: str | None = None, *, expected_entries: int | None = None
    ) -> VerifyReport:
        """Check every line: JSON, fields, seq, prev chain, hash and MAC.

        ``expected_head`` is a :meth:`head` recorded earlier; it must still be in
        the chain (the log may have grown since), else the end was truncated or
        rewritten.  ``expected_entries`` is a minimum count recorded earlier.
        """
        problems: list[str] = []
        lines = self._read_lines()
        key = self._key(create=False)
        if key is None and lines:
            problems.append(
                f"no audit key: {KEY_ENV} is unset and {self.key_path} does not exist, "
                "so MACs cannot be checked"
            )
        prev_hash = GENESIS
        prev_line = 0
        prev_seq = 0
        count = 0
        seen_hashes: set[str] = set()
        for number, raw in enumerate(lines, start=1):
            try:
                data = json.loads(raw)
            except ValueError:
                problems.append(f"line {number}: not valid JSON")
                continue
            if not isinstance(data, dict):
                problems.append(f"line {number}: not a JSON object, got {type(data).__name__}")
                continue
            missing = [f for f in REQUIRED_FIELDS if f not in data]
            if missing:
                problems.append(f"line {number}: missing field(s) {', '.join(missing)}")
                continue
            count += 1
            seq, stored = data["seq"], data["hash"]
            if not isinstance(seq, int) or seq != prev_seq + 1:
                problems.append(f"line {number}: seq {seq}, expected {prev_seq + 1}")
            if data["prev"] != prev_hash:
                if prev_line == 0:
                    problems.append(
                        f"line {number}: prev is not the genesis value "
                        "(lines removed or inserted at the start)"
                    )
                else:
                    problems.append(
                        f"line {number}: prev does not match line {prev_line} "
                        "(removed, inserted or reordered)"
                    )
            if entry_hash(data) != stored:
                problems.append(f"line {number}: hash does not match its content (edited)")
            elif key is not None and not (
                isinstance(data["mac"], str)
                and hmac.compare_digest(entry_mac(key, stored), data["mac"])
            ):
                problems.append(f"line {number}: MAC does not match (forged with another key)")
            prev_hash = stored if isinstance(stored, str) else ""
            prev_line = number
            prev_seq = seq if isinstance(seq, int) else prev_seq + 1
            seen_hashes.add(prev_hash)
        last_hash = prev_hash
        if expected_head is not None and expected_head != GENESIS \
                and expected_head not in seen_hashes:
            problems.append(
                f"end: expected head {expected_head[:16]}... is not in the log; last hash "
                f"is {last_hash[:16]}... (end truncated or log rewritten)"
            )
        if expected_entries is not None and count < expected_entries:
            problems.append(
                f"end: {count} entries, expected at least {expected_entries} (end truncated)"
            )
        return VerifyReport(ok=not problems, entries=count, problems=problems,
                            head=last_hash, path=str(self.path))

    # -- views -------------------------------------------------------------
    def to_dataframe(self) -> pd.DataFrame:
        """All entries as a pandas DataFrame (``at`` parsed as UTC datetimes)."""
        import pandas as pd

        frame = pd.DataFrame([e.to_dict() for e in self.entries()],
                             columns=list(REQUIRED_FIELDS))
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
        return frame

    def _repr_html_(self) -> str:
        """Last entries as a table plus the verification verdict, for notebooks."""
        try:
            report = self.verify()
        except AuditError as exc:  # e.g. key file with loose permissions
            report = VerifyReport(ok=False, entries=0, problems=[str(exc)], path=str(self.path))
        try:
            rows = list(self.entries())[-_HTML_ROWS:]
        except AuditError:
            rows = []
        cols = ("seq", "at", "actor", "role", "action", "resource", "outcome",
                "purpose", "source")
        table = theme.table(([entry.to_dict()[c] for c in cols] + [theme.code(entry.hash[:12])] for entry in rows),
                            header=[*cols, "hash"])
        where = theme.join(["Audit log ", theme.code(self.path), f" (last {len(rows)} of {report.entries} entries)"])
        return theme.card(where, table + report._repr_html_(), ok=None)

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"
