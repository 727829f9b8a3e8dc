"""The hub's REST API as the host's ``careops workshop`` commands use it (service ``careops``'s token).

The token is made once per workshop (build/workshop/<name>/secrets.json, mode
0600) and handed to the hub through its environment; its role (careops-cli in
careops.workshop.config) lists exactly what these commands do. Phase-2
services (lab broker, hand-in, dashboard) get their own tokens and roles.
"""
from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from careops.workshop.roster import Enrolled
from careops.workshop.settings import WorkshopError, WorkshopSettings

TIMEOUT = 30.0
PAGE = 200


def api_token(settings: WorkshopSettings) -> str:
    """The CLI's service token of this workshop (made on first use, kept in secrets.json, mode 0600)."""
    path = settings.state_dir / "secrets.json"
    if path.is_file():
        try:
            return str(json.loads(path.read_text())["api_token"])
        except (OSError, ValueError, KeyError) as exc:
            raise WorkshopError(f"cannot read {path}: {exc}",
                                fix=f"remove {path}; the next `careops workshop up` makes a new token") from None
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"api_token": token}, f)
    return token


class HubAPIError(WorkshopError):
    """The hub answered a request with an error (``status`` is its HTTP status, 0 when it did not answer)."""

    def __init__(self, message: str, *, status: int = 0, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.status = status


@dataclass
class HubAPI:
    """GET/POST/DELETE on {url}hub/api with a token."""

    base: str
    token: str

    @classmethod
    def for_workshop(cls, settings: WorkshopSettings) -> HubAPI:
        return cls(settings.api_url, api_token(settings))

    def request(self, method: str, path: str, body: Any = None, *, timeout: float = TIMEOUT) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            with_msg = detail
            try:
                with_msg = json.loads(detail).get("message", detail)
            except (ValueError, AttributeError):
                pass
            raise HubAPIError(f"the hub refused {method} {path}: HTTP {exc.code}, {with_msg}", status=exc.code,
                              fix="check the hub's log: docker logs <workshop>-hub") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HubAPIError(f"the hub did not answer {method} {self.base}{path}: {reason}",
                              fix="is it running? careops workshop status (start it with careops workshop up)") from None
        return json.loads(text) if text.strip() else None

    def get(self, path: str, **query: str) -> Any:
        return self.request("GET", path + ("?" + urllib.parse.urlencode(query) if query else ""))

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body if body is not None else {})

    def delete(self, path: str, body: Any = None) -> Any:
        return self.request("DELETE", path, body)

    def users(self) -> list[dict]:
        """Every hub user with their servers and last activity (page by page: the hub caps a page at 200)."""
        found: list[dict] = []
        while True:
            page = list(self.get("/users", offset=str(len(found)), limit=str(PAGE)) or [])
            found += page
            if len(page) < PAGE:
                return found

    def sync_members(self, enrolled: dict[str, Enrolled]) -> list[str]:
        """Create the roster's members the hub does not know yet and put everyone in their group; returns the new."""
        known = {u["name"]: set(u.get("groups") or ()) for u in self.users()}
        new = sorted(set(enrolled) - set(known))
        if new:
            self.post("/users", {"usernames": new})
        missing: dict[str, list[str]] = {}
        for e in enrolled.values():
            if e.group not in known.get(e.username, set()):
                missing.setdefault(e.group, []).append(e.username)
        for group, names in sorted(missing.items()):
            self.post(f"/groups/{group}/users", {"users": sorted(names)})
        return new
