"""The class list: who may log in to the workshop, as learner or instructor, and their initial passwords.

An instructor writes a roster file, CSV (an LMS export cut down to two or three
columns) or YAML::

    username,role,name                     learners:
    ana,learner,Ana Example                  - ana
    ben,learner,Ben Example                  - {username: ben, name: Ben Example}
    dr-lee,instructor,Dr Lee               instructors:
                                             - dr-lee

``enroll`` gives every new member a random initial password, keeps only its
bcrypt hash (build/workshop/<name>/config/roster.json, which the hub reads
through careops.workshop.auth) and returns the clear text once, for the
handout the instructor prints (``write_handout``, mode 0600). A member who is
already enrolled keeps their password: running ``add-learners`` with the whole
class again issues passwords only to the new names. Learners change their
password at /hub/change-password.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import re
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from careops.workshop.labels import INSTRUCTORS_GROUP, LEARNERS_GROUP
from careops.workshop.settings import WorkshopError

ROLES = {"learner": LEARNERS_GROUP, "instructor": INSTRUCTORS_GROUP}
#: JupyterHub lower-cases names; NativeAuthenticator refuses commas, spaces and slashes; Docker names need less.
USERNAME_RE = re.compile(r"^[a-z][a-z0-9._-]{0,31}$")
#: No look-alike characters (0/o, 1/l/i): passwords are read off a printed sheet.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
PASSWORD_GROUPS = 3
#: bcrypt work factor (NativeAuthenticator checks with bcrypt.checkpw, whatever the cost).
BCRYPT_ROUNDS = 12
ROSTER_VERSION = 1


class RosterError(WorkshopError):
    """The roster file cannot be read, or a row of it is not a valid member."""


@dataclass(frozen=True)
class Member:
    """One person of the class, as the roster file names them."""

    username: str
    role: str = "learner"
    name: str = ""

    @property
    def group(self) -> str:
        return ROLES[self.role]


@dataclass(frozen=True)
class Enrolled(Member):
    """A member as the hub knows them: the hash of their initial password (never the password), and when issued."""

    password_hash: str = ""
    issued: str = ""


@dataclass(frozen=True)
class Issued:
    """A new member's initial password, in clear text: for the handout only, never stored."""

    member: Member
    password: str


# -- reading the instructor's file ----------------------------------------------

def _member(raw: object, where: str, default_role: str | None = None) -> Member:
    if isinstance(raw, str):
        raw = {"username": raw}
    if not isinstance(raw, dict):
        raise RosterError(f"{where}: expected a username or a mapping with username, role, name; got {raw!r}",
                          fix="write one member per row: username,role,name")
    username = str(raw.get("username") or "").strip().lower()
    role = str(raw.get("role") or default_role or "learner").strip().lower()
    name = str(raw.get("name") or "").strip()
    if not USERNAME_RE.match(username):
        raise RosterError(f"{where}: username {username!r} is not allowed: expected a lowercase letter, then up to 31 "
                          "lowercase letters, digits, dots, dashes or underscores",
                          fix="use the learner's login id (e.g. 'ana' or 'a.example'), not their full name")
    if role not in ROLES:
        raise RosterError(f"{where}: role {role!r} of {username}: expected one of {', '.join(ROLES)}",
                          fix="write learner or instructor in the role column")
    return Member(username, role, name)


def _from_csv(text: str, path: Path) -> list[Member]:
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise RosterError(f"{path} has no members: expected a header line 'username,role,name' and one row per person",
                          fix="add the class, one row per learner or instructor")
    if "username" not in (rows[0].keys() if rows else ()):
        raise RosterError(f"{path}: expected a header line with a 'username' column, got {list(rows[0].keys())}",
                          fix="make the first line: username,role,name")
    return [_member({k.strip().lower(): v for k, v in row.items() if k}, f"{path}:{n}") for n, row in enumerate(rows, 2)]


def _from_yaml(text: str, path: Path) -> list[Member]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RosterError(f"{path} is not valid YAML: {exc}", fix="fix the indentation or quoting it points at") from None
    members: list[Member] = []
    if isinstance(data, dict):
        unknown = set(data) - {"learners", "instructors"}
        if unknown:
            raise RosterError(f"{path}: unknown key(s) {', '.join(map(str, sorted(unknown)))}: expected learners, instructors",
                              fix="list people under learners: and instructors:")
        for key, role in (("learners", "learner"), ("instructors", "instructor")):
            for n, raw in enumerate(data.get(key) or [], 1):
                members.append(_member(raw, f"{path}: {key}[{n}]", default_role=role))
    elif isinstance(data, list):
        members = [_member(raw, f"{path}: item {n}") for n, raw in enumerate(data, 1)]
    else:
        raise RosterError(f"{path}: expected learners:/instructors: lists or a list of members, got {type(data).__name__}",
                          fix="see the example in `careops workshop add-learners --help`")
    return members


def read_roster(path: str | Path) -> list[Member]:
    """The members of a roster file (.csv, .yml or .yaml); every problem is named with its row."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RosterError(f"cannot read the roster {path}: {exc.strerror or exc}",
                          fix="give the path of a CSV or YAML file listing the class") from None
    if path.suffix.lower() == ".csv":
        members = _from_csv(text, path)
    elif path.suffix.lower() in (".yml", ".yaml"):
        members = _from_yaml(text, path)
    else:
        raise RosterError(f"roster {path}: expected a .csv, .yml or .yaml file, got {path.suffix or 'no suffix'}",
                          fix="save the class list as CSV (username,role,name) or YAML")
    seen: dict[str, Member] = {}
    for m in members:
        if m.username in seen and seen[m.username] != m:
            raise RosterError(f"{path}: {m.username} is listed twice with different roles or names",
                              fix="keep one row per person")
        seen[m.username] = m
    if not seen:
        raise RosterError(f"{path} lists nobody", fix="add the class, one row per learner or instructor")
    return list(seen.values())


# -- enrolment: passwords and the hub's copy ---------------------------------------

def new_password() -> str:
    """A random password that is easy to read aloud and type: three groups of four (about 59 bits)."""
    return "-".join("".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(4)) for _ in range(PASSWORD_GROUPS))


def _hash(password: str) -> str:
    import bcrypt  # comes with jupyterhub-nativeauthenticator (environment.yml)

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


def load_enrolled(path: Path) -> dict[str, Enrolled]:
    """The roster the hub reads (roster.json), by username; empty when there is none yet."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        return {u: Enrolled(username=u, **e) for u, e in data["members"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RosterError(f"cannot read the enrolled roster {path}: {exc}",
                          fix="restore it from a backup, or remove it and enroll the class again "
                              "(everyone gets a new password)") from None


def save_enrolled(path: Path, enrolled: dict[str, Enrolled]) -> None:
    """Write roster.json atomically (the hub may read it at any moment); hashes only, readable by the hub."""
    path.parent.mkdir(parents=True, exist_ok=True)
    members = {u: {k: v for k, v in asdict(e).items() if k != "username"} for u, e in sorted(enrolled.items())}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"version": ROSTER_VERSION, "members": members}, indent=1) + "\n")
    os.chmod(tmp, 0o644)
    tmp.replace(path)


def enroll(members: list[Member], enrolled: dict[str, Enrolled]) -> tuple[dict[str, Enrolled], list[Issued]]:
    """Add ``members`` to ``enrolled``: new ones get a password (returned once), known ones keep theirs.

    A known member's role and name follow the roster file (moving someone to
    instructors is a roster edit); their password never changes here.
    """
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    result = dict(enrolled)
    issued = []
    for m in members:
        known = result.get(m.username)
        if known is None:
            password = new_password()
            result[m.username] = Enrolled(m.username, m.role, m.name, _hash(password), now)
            issued.append(Issued(m, password))
        elif (known.role, known.name) != (m.role, m.name):
            result[m.username] = Enrolled(m.username, m.role, m.name, known.password_hash, known.issued)
    return result, issued


def write_handout(folder: Path, issued: list[Issued], *, url: str) -> Path | None:
    """A CSV of the new members' initial passwords (mode 0600) for the instructor to hand out; None if none."""
    if not issued:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"passwords-{stamp}.csv"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"passwords-{stamp}-{n}.csv"
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["username", "role", "name", "initial password", "log in at", "change it at"])
    for i in issued:
        writer.writerow([i.member.username, i.member.role, i.member.name, i.password, url + "hub/login",
                         url + "hub/change-password"])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", newline="") as f:
        f.write(buf.getvalue())
    return path
