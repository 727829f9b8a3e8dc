"""The hub's login (runs inside careops/hub): NativeAuthenticator, with accounts from the instructor's roster.

NativeAuthenticator gives the login page, bcrypt password checks, a lock-out
after repeated failures and /hub/change-password. What this adds: nobody signs
up; the roster (roster.json, written on the host by careops.workshop.roster and
mounted read-only) decides who may log in, as what, and with which initial
password. A member's NativeAuthenticator account is created from the roster's
hash at their first login; from then on NativeAuthenticator owns the password
(a learner who changed it keeps their own). The file is re-read when it
changes, so ``careops workshop add-learners`` needs no restart.

Pages: JupyterHub's own /hub/login (same form, username and password), and
NativeAuthenticator's /hub/change-password. NativeAuthenticator 1.3.0's own
login handler fails on JupyterHub 6 (it times the login with ``self.statsd``,
which JupyterHub 6 removed: jupyterhub#5407), and sign-up, approval and admin
pages have no use here, so ``get_handlers`` keeps only change-password.

Only JupyterHub's packages and the standard library are imported here.
"""
from __future__ import annotations

import json
import os

from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import ChangePasswordHandler
from nativeauthenticator.orm import UserInfo
from traitlets import Unicode

from careops.workshop.labels import HUB_ROSTER_FILE


class RosterAuthenticator(NativeAuthenticator):
    """NativeAuthenticator whose members come from the workshop roster; sign-up is off."""

    roster_file = Unicode(HUB_ROSTER_FILE, config=True,
                          help="roster.json written by `careops workshop up|add-learners` (bcrypt hashes only)")

    _roster_cache: tuple[float, dict[str, dict]] | None = None

    def roster(self) -> dict[str, dict]:
        """Members by username (re-read when the file changes; empty, with a log line, when unreadable)."""
        try:
            mtime = os.stat(self.roster_file).st_mtime
        except OSError as exc:
            self.log.error("careops: cannot read the roster %s (%s): nobody can log in", self.roster_file, exc)
            return {}
        if self._roster_cache is None or self._roster_cache[0] != mtime:
            try:
                with open(self.roster_file, encoding="utf-8") as f:
                    members = dict(json.load(f)["members"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self.log.error("careops: the roster %s is damaged (%s): nobody can log in", self.roster_file, exc)
                return {}
            self._roster_cache = (mtime, members)
        return self._roster_cache[1]

    def check_allowed(self, username: str, authentication: dict | None = None) -> bool:
        """Only roster members get in (the roster is live: add-learners needs no restart)."""
        return self.normalize_username(username) in self.roster()

    def enroll_from_roster(self, username: str) -> None:
        """Create the member's NativeAuthenticator account from the roster's hash, once."""
        entry = self.roster().get(username)
        if entry is None or self.get_user(username) is not None:
            return
        self.db.add(UserInfo(username=username, password=entry["password_hash"].encode(), is_authorized=True))
        self.db.commit()
        self.log.info("careops: enrolled %s (%s) from the roster", username, entry.get("role", "learner"))

    async def authenticate(self, handler, data):
        username = self.normalize_username(str((data or {}).get("username", "")))
        if username not in self.roster():
            return None
        self.enroll_from_roster(username)
        return await super().authenticate(handler, data)

    def get_handlers(self, app):
        """Only the learner's own change-password page (see the module's docstring)."""
        return [(r"/change-password", ChangePasswordHandler)]
