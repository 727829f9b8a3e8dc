"""Field-level encryption at rest: AES-256-GCM per field, keys from a mounted secret, rotation without loss.

Why: a copy of a database file -- a backup on a share, a disk sent for repair, a test copy -- must not be a breach.
Each identifying field is sealed with AES-GCM (confidentiality *and* integrity: an edited ciphertext does not
decrypt). The record id and field name are the associated data, so a sealed name cannot be moved to another record
or column unnoticed. Each value carries the id of its key, so after a rotation old and new values both read until
:func:`rotate` has re-sealed every row with the new key; then the old key can go.

The key lives in a secret mounted into the container at run time (``/run/secrets/patient-key``), never in the
image, an environment variable in the image, or the repository: whoever has the image must not have the data.

Keyring file (JSON): ``{"current": "k2", "keys": {"k1": "<base64 32 bytes>", "k2": "..."}}``.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from careops.errors import CareOpsError

PREFIX = "enc:v1:"
#: The fields of a patient row that identify a person; everything else stays in clear for queries.
SEALED_FIELDS = ("mrn", "family", "given", "birth_date")


class AtRestError(CareOpsError):
    """A keyring is unusable, or a sealed value cannot be opened."""


@dataclass
class Keyring:
    """Named 256-bit keys; ``current`` seals new values, every key opens its own."""

    current: str
    keys: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise AtRestError(f"the keyring's current key {self.current!r} is not among its keys {sorted(self.keys)}",
                              fix="name one of the keys as current")
        bad = [k for k, v in self.keys.items() if len(v) != 32]
        if bad:
            raise AtRestError(f"keys {bad} are not 32 bytes (AES-256)", fix="make keys with Keyring.generate()")

    @classmethod
    def generate(cls, kid: str = "k1") -> Keyring:
        return cls(kid, {kid: secrets.token_bytes(32)})

    def rotated(self, kid: str | None = None) -> Keyring:
        """A keyring with a new current key; the old keys stay so existing values still open."""
        new = kid or f"k{len(self.keys) + 1}"
        if new in self.keys:
            raise AtRestError(f"key id {new!r} is already in the keyring", fix="choose a new key id")
        return Keyring(new, {**self.keys, new: secrets.token_bytes(32)})

    def without(self, *kids: str) -> Keyring:
        """The keyring after retiring ``kids`` (never the current one)."""
        if self.current in kids:
            raise AtRestError(f"cannot retire the current key {self.current!r}", fix="rotate first")
        return Keyring(self.current, {k: v for k, v in self.keys.items() if k not in kids})

    def to_json(self) -> str:
        return json.dumps({"current": self.current,
                           "keys": {k: base64.b64encode(v).decode("ascii") for k, v in self.keys.items()}})

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        try:
            data = json.loads(text)
            return cls(str(data["current"]), {str(k): base64.b64decode(v) for k, v in data["keys"].items()})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AtRestError(f"the keyring is not valid JSON with current and keys: {exc}",
                              fix='write {"current": "k1", "keys": {"k1": "<base64 of 32 bytes>"}}') from None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Keyring:
        """Read a mounted secret; refuses one others may read."""
        p = Path(path)
        try:
            mode = p.stat().st_mode & 0o077
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise AtRestError(f"no keyring at {p}", fix="mount the key as a secret file at that path") from None
        if mode & 0o007:
            raise AtRestError(f"keyring {p} is readable by every user (mode {oct(p.stat().st_mode & 0o777)})",
                              fix=f"chmod 640 {p} (or 600) and mount it read-only")
        return cls.from_json(text)

    def write(self, path: str | os.PathLike[str], *, mode: int = 0o600) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch(mode=mode)
        p.chmod(mode)
        p.write_text(self.to_json(), encoding="utf-8")
        return p


def _aad(record: str, name: str) -> bytes:
    return f"{record}\x1f{name}".encode()


class FieldCipher:
    """Seal and open single values with a keyring: ``enc:v1:<kid>:<base64 nonce+ciphertext>``."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def seal(self, value: str, *, record: str, name: str) -> str:
        nonce = secrets.token_bytes(12)
        kid = self.keyring.current
        ct = AESGCM(self.keyring.keys[kid]).encrypt(nonce, value.encode("utf-8"), _aad(record, name))
        return f"{PREFIX}{kid}:{base64.b64encode(nonce + ct).decode('ascii')}"

    @staticmethod
    def key_id(sealed: str) -> str:
        return sealed[len(PREFIX):].split(":", 1)[0] if is_sealed(sealed) else ""

    def open(self, sealed: str, *, record: str, name: str) -> str:
        if not is_sealed(sealed):
            raise AtRestError(f"field {name} of record {record} is stored in clear, expected a sealed value",
                              fix="seal every identifying field before it is written (FieldCipher.seal)")
        kid, _, blob = sealed[len(PREFIX):].partition(":")
        key = self.keyring.keys.get(kid)
        if key is None:
            raise AtRestError(f"field {name} of record {record} was sealed with key {kid!r}, which the keyring "
                              f"({sorted(self.keyring.keys)}) no longer has",
                              fix="restore the retired key, open and re-seal with rotate(), then retire it")
        raw = base64.b64decode(blob)
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], _aad(record, name)).decode("utf-8")
        except InvalidTag:
            raise AtRestError(f"field {name} of record {record} does not open: edited, or moved from another "
                              "record or field", fix="restore the row from a backup") from None


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


class PatientStore:
    """Patients in SQLite, the identifying fields sealed when a cipher is given (clear otherwise)."""

    COLUMNS = ("id", "ward", *SEALED_FIELDS, "gender")

    def __init__(self, path: str | os.PathLike[str], cipher: FieldCipher | None) -> None:
        self.path = Path(path)
        self.cipher = cipher
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=DELETE")
        self.db.execute("CREATE TABLE IF NOT EXISTS patients (id TEXT PRIMARY KEY, ward TEXT, mrn TEXT, "
                        "family TEXT, given TEXT, birth_date TEXT, gender TEXT)")

    def close(self) -> None:
        self.db.close()

    def _seal(self, record: str, name: str, value: str) -> str:
        return self.cipher.seal(value, record=record, name=name) if self.cipher else value

    def put(self, row: Mapping[str, str]) -> None:
        rid = row["id"]
        values = [rid, row.get("ward", "")] + [self._seal(rid, f, str(row.get(f, ""))) for f in SEALED_FIELDS]
        self.db.execute("INSERT OR REPLACE INTO patients VALUES (?,?,?,?,?,?,?)", [*values, row.get("gender", "")])

    def _open_row(self, raw: tuple[Any, ...], *, allow_clear: bool = False) -> dict[str, str]:
        row = dict(zip(self.COLUMNS, raw, strict=True))
        for f in SEALED_FIELDS:
            if not is_sealed(row[f]) and (self.cipher is None or allow_clear):
                continue
            if self.cipher is None:
                raise AtRestError("the store holds sealed fields but was opened without a key",
                                  fix="mount the keyring and open the store with a FieldCipher")
            row[f] = self.cipher.open(row[f], record=row["id"], name=f)
        return row

    def get(self, rid: str) -> dict[str, str] | None:
        raw = self.db.execute(f"SELECT {', '.join(self.COLUMNS)} FROM patients WHERE id = ?", (rid,)).fetchone()
        return None if raw is None else self._open_row(raw)

    def rows(self, *, allow_clear: bool = False) -> Iterator[dict[str, str]]:
        for raw in self.db.execute(f"SELECT {', '.join(self.COLUMNS)} FROM patients ORDER BY id").fetchall():
            yield self._open_row(raw, allow_clear=allow_clear)

    def key_ids(self) -> dict[str, int]:
        """How many rows each key sealed (``clear`` for values stored in clear)."""
        counts: dict[str, int] = {}
        for (mrn,) in self.db.execute("SELECT mrn FROM patients"):
            kid = FieldCipher.key_id(mrn) or "clear"
            counts[kid] = counts.get(kid, 0) + 1
        return counts

    def __len__(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM patients").fetchone()[0])


def rotate(store: PatientStore, keyring: Keyring) -> int:
    """Re-seal every row with ``keyring``'s current key in one transaction; returns the rows re-sealed.

    ``keyring`` must still hold the old keys (``Keyring.rotated``): every row is opened first, so a missing key
    stops the rotation before anything is written.
    """
    before = store.cipher
    store.cipher = FieldCipher(keyring)
    try:
        opened = list(store.rows(allow_clear=True))  # a clear store is sealed by its first rotation
    except AtRestError:
        store.cipher = before
        raise
    store.db.execute("BEGIN IMMEDIATE")
    try:
        for row in opened:
            store.put(row)
        store.db.execute("COMMIT")
    except BaseException:
        store.db.execute("ROLLBACK")
        raise
    store.db.execute("VACUUM")  # the old ciphertexts' pages do not stay in the file
    return len(opened)


def cleartext_found(data: bytes, needles: list[str]) -> list[str]:
    """Which ``needles`` (names, MRNs) occur in ``data`` as UTF-8 or UTF-16 bytes."""
    found = []
    for n in needles:
        if n and any(enc in data for enc in (n.encode("utf-8"), n.encode("utf-16-le"))):
            found.append(n)
    return found
