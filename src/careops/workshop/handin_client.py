"""Hand in from a learner's server: what JupyterLab's "Hand in" button and ``careops.workshop.hand_in()`` call.

Both send the saved notebook's file to the hub's hand-in service (careops.workshop.handin_service) with the
server's own hub token (``JUPYTERHUB_API_TOKEN``): the service asks the hub whose it is, so the request carries
no name and no time. The assignment is the notebook's module folder (``00-orientation/orientation.ipynb`` hands
in ``orientation`` of ``00-orientation``); the service refuses anything the course does not have.

Outside the workshop hub (no ``CAREOPS_HANDIN_URL``) there is nowhere to hand in, and the error says so.
Standard library only (and careops.report's theme for the receipt).
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from careops.errors import CareOpsError
from careops.report import theme
from careops.workshop.labels import HANDIN_SERVICE, HANDIN_URL_ENV, LEARNER_WORKSPACE

TIMEOUT = 60.0


class HandInFailed(CareOpsError):
    """The hand-in did not reach the store; ``status`` is the service's HTTP status (0: it did not answer)."""

    def __init__(self, message: str, *, status: int = 0, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.status = status


@dataclass(frozen=True)
class HandInReceipt:
    """What the hand-in service stored (its answer)."""

    learner: str
    assignment: str
    notebook: str
    received_at: str
    size: int
    sha256: str
    feedback_url: str = ""

    def __str__(self) -> str:
        return (f"handed in {self.assignment}/{self.notebook}.ipynb as {self.learner} at {self.received_at} "
                f"(the server's time), {self.size} bytes, SHA-256 {self.sha256[:12]}")

    def _repr_html_(self) -> str:
        body = theme.fields({"learner (from the hub)": self.learner, "assignment": self.assignment,
                             "notebook": f"{self.notebook}.ipynb", "received (server time)": self.received_at,
                             "size": theme.num(self.size / 1024, "KiB", "{:.1f}"), "SHA-256": theme.code(self.sha256[:16])})
        if self.feedback_url:
            body += theme.para(theme.join([theme.muted("Feedback, once returned:"),
                                           theme.link(self.feedback_url, self.feedback_url)], " "))
        return theme.card("Handed in", body, status=theme.verdict(True, "stored"), ok=True)


def service_url(env: dict[str, str] | None = None) -> str:
    url = (os.environ if env is None else env).get(HANDIN_URL_ENV, "")
    if not url:
        raise HandInFailed("there is nowhere to hand in: this server is not a workshop hub's (no "
                           f"{HANDIN_URL_ENV} in its environment)",
                           fix="hand in as your instructor says (an LMS upload of the .ipynb file); in the workshop "
                               "hub, use the Hand in button in JupyterLab's notebook toolbar")
    return url.rstrip("/") + "/"


def feedback_url(env: dict[str, str] | None = None) -> str:
    """Where the learner's browser finds their feedback (through the hub's proxy)."""
    base = (os.environ if env is None else env).get("JUPYTERHUB_BASE_URL", "/")
    return base.rstrip("/") + f"/services/{HANDIN_SERVICE}/feedback/"


def _request(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            answer = json.loads(exc.read())
        except ValueError:
            answer = {}
        raise HandInFailed(str(answer.get("message") or f"the hand-in service answered HTTP {exc.code}"),
                           status=exc.code, fix=answer.get("fix")) from None
    except (urllib.error.URLError, OSError) as exc:
        raise HandInFailed(f"the hand-in service did not answer at {url}: {getattr(exc, 'reason', exc)}",
                           fix="try again in a minute; if it persists, tell the instructor (the hub may be "
                               "restarting)") from None


def send(path: Path, *, assignment: str) -> HandInReceipt:
    """Hand in the saved file ``path`` as a notebook of ``assignment``."""
    path = Path(path)
    if path.suffix != ".ipynb":
        raise HandInFailed(f"{path.name} is not a notebook: only .ipynb files are handed in",
                           fix="open the module's notebook and hand in from there")
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HandInFailed(f"cannot read {path}: {exc}", fix="save the notebook (Ctrl+S) and try again") from None
    answer = _request("POST", service_url() + "api/hand-ins",
                      {"assignment": assignment, "notebook": path.stem, "content": content})
    return HandInReceipt(answer["learner"], answer["assignment"], answer["notebook"], answer["received_at"],
                         int(answer["size"]), answer["sha256"], feedback_url())


def my_hand_ins() -> list[dict[str, Any]]:
    """The learner's own hand-ins, as the store has them (each says whether its feedback is back)."""
    return list(_request("GET", service_url() + "api/hand-ins")["hand_ins"])


def hand_in(notebook: str | Path | None = None) -> HandInReceipt:
    """Hand in ``notebook`` (default: the notebook this kernel runs for) as its module folder's assignment.

    Save first (Ctrl+S): what is on disk is handed in. JupyterLab's "Hand in" button saves and then does this."""
    if notebook is None:
        notebook = os.environ.get("JPY_SESSION_NAME", "")
        if not notebook.endswith(".ipynb"):
            raise HandInFailed("cannot tell which notebook this kernel runs for",
                               fix="name it: careops.workshop.hand_in('00-orientation/orientation.ipynb')")
    path = Path(notebook)
    if not path.is_absolute():  # beside the kernel (its notebook's folder), else from the workspace's top
        path = next((p for p in (Path.cwd() / path, Path(LEARNER_WORKSPACE) / path) if p.is_file()), path)
    if not path.is_file():
        raise HandInFailed(f"no notebook {notebook} to hand in", fix="save it first (Ctrl+S), and check its name")
    return send(path, assignment=path.resolve().parent.name)


__all__ = ["HandInFailed", "HandInReceipt", "feedback_url", "hand_in", "my_hand_ins", "send", "service_url"]
