"""A learner check's verdict, reported live to the workshop's instructor dashboard (only when one is configured).

In workshop mode the hub's spawner sets :data:`REPORTS_URL_ENV` in each learner's server, and every
:func:`~careops.report.check.learner_check` then posts what the learner just saw to the hub's hand-in service:
the check's id and title, passed or not, and its criteria's messages with their marks. Never the learner's code or
answers, never a hint, an expected or a found value, and nothing hidden (learner-side checks have no hidden data).
Who ran it is not in the message: the service asks the hub whose token (:data:`TOKEN_ENV`, the server's own) it is.

The post never slows or fails the check: it runs in a background thread with a short timeout, at most
:data:`MAX_IN_FLIGHT` at once (more are dropped), and every error is swallowed and counted in :data:`COUNTS`.
Outside the workshop (no URL in the environment) nothing happens at all.

Standard library only: careops.report is the bottom floor.
"""
from __future__ import annotations

import json
import os
import threading
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

#: Where the checks' results go (set by the workshop hub's spawner; unset on a laptop).
REPORTS_URL_ENV = "CAREOPS_CHECK_REPORTS_URL"
#: The learner's server's hub token (JupyterHub sets it in the server and its kernels inherit it).
TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
#: The notebook a kernel runs for (jupyter_server sets it): tells the dashboard which assignment the check is of.
NOTEBOOK_ENV = "JPY_SESSION_NAME"
TIMEOUT = 2.0
MAX_IN_FLIGHT = 4
MAX_CRITERIA = 30
MAX_MESSAGE = 200


@dataclass
class ReportCounts:
    """What the reporting did in this kernel: sent, failed (with the last error) and dropped posts."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0
    last_error: str = ""
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **changes: int | str) -> None:
        with self.lock:
            for key, value in changes.items():
                setattr(self, key, value if isinstance(value, str) else getattr(self, key) + value)


COUNTS = ReportCounts()


def notebook_of_kernel(env: dict[str, str] | None = None) -> str:
    """``<folder>/<notebook>.ipynb`` of the kernel's notebook (its last two path parts), '' when unknown."""
    path = (os.environ if env is None else env).get(NOTEBOOK_ENV, "")
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    return "/".join(parts[-2:]) if path.endswith(".ipynb") else ""


def payload(check: str, report: Any, *, notebook: str = "") -> dict[str, Any]:
    """The message for one run of a check: what the learner saw, without hints, values or code."""
    criteria = [{"message": str(c.message)[:MAX_MESSAGE], "passed": bool(c.passed)}
                for c in report.criteria[:MAX_CRITERIA]]
    return {"check": check[:200], "title": str(report.title)[:MAX_MESSAGE], "passed": bool(report.passed),
            "not_written": bool(report.not_written), "summary": report.summary()[:MAX_MESSAGE],
            "criteria": criteria, "notebook": notebook[:200],
            "ran_at": datetime.now(timezone.utc).isoformat()}


def _post(url: str, token: str, body: bytes) -> None:
    try:
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            resp.read()
        COUNTS.add(sent=1)
    except Exception as exc:  # noqa: BLE001 - reporting never fails a learner's check
        COUNTS.add(failed=1, last_error=f"{type(exc).__name__}: {exc}"[:300])
    finally:
        COUNTS.add(in_flight=-1)


def report_check(check: str, report: Any) -> threading.Thread | None:
    """Post ``report`` of the check ``check`` in the background when a dashboard is configured; never raises."""
    try:
        url = os.environ.get(REPORTS_URL_ENV, "")
        if not url:
            return None
        body = json.dumps(payload(check, report, notebook=notebook_of_kernel())).encode()
        thread = threading.Thread(target=_post, args=(url, os.environ.get(TOKEN_ENV, ""), body), daemon=True,
                                  name="careops-check-report")
        with COUNTS.lock:
            if COUNTS.in_flight >= MAX_IN_FLIGHT:
                COUNTS.dropped += 1
                return None
            COUNTS.in_flight += 1
        try:
            thread.start()
        except BaseException:
            COUNTS.add(in_flight=-1)
            raise
        return thread
    except Exception as exc:  # noqa: BLE001 - reporting never fails a learner's check
        COUNTS.add(failed=1, last_error=f"{type(exc).__name__}: {exc}"[:300])
        return None


__all__ = ["COUNTS", "NOTEBOOK_ENV", "REPORTS_URL_ENV", "ReportCounts", "TOKEN_ENV", "notebook_of_kernel", "payload",
           "report_check"]
