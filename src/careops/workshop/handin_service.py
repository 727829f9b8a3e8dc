"""The hand-in service: learners hand in by hub identity, their checks report here, their feedback comes back here.

A JupyterHub service (``hand-in``) the hub runs inside careops/hub. Its routes, under /services/hand-in/:

* ``POST api/hand-ins`` ``{"assignment", "notebook", "content"}`` from a learner's server (the "Hand in" button
  of JupyterLab, or ``careops.workshop.hand_in()`` in a notebook) with the server's hub token. The hub says who
  it is; the server's clock says when; the store (careops.handins) keeps it as
  ``<hub user>+<assignment>+<server time>``. Refused, with what failed and what to do: another learner's name
  (or any who/when) in the request (403), an assignment or notebook the course does not have, a file that is no
  notebook (400), one over the size limit (413), too many hand-ins (429).
* ``GET api/hand-ins``: the caller's own hand-ins (never another learner's: asking for one is a 403).
* ``POST api/checks``: a learner check's verdict (careops.report.reporting), kept for the instructor's dashboard.
* ``GET feedback/`` (a page; also from a browser, after the hub's login) and
  ``GET feedback/<assignment>/<notebook>.html``: the caller's own feedback, as ``careops feedback return
  --exchange <store>`` released it (found through the secrets of their own hand-ins only).

Run by the hub: ``python3 -m careops.workshop.handin_service`` (its settings from the environment the hub's
configuration gives it). JupyterHub's packages, tornado and the standard library only.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import Any

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from careops.handins import MAX_NOTEBOOK_BYTES, Assignments, HandInRefused, HandInStore
from careops.report import theme
from careops.workshop.activity import ActivityLog, ReportRefused, checked_report, shared_state
from careops.workshop.labels import (
    ASSIGNMENTS_FILE_ENV,
    HANDIN_PORT,
    HANDIN_SERVICE,
    HUB_ASSIGNMENTS_FILE,
)
from careops.workshop.service import HubIdentified, OAuthCallback, ServiceError, body_json, hub_oauth, listening

log = logging.getLogger("careops.workshop")

#: The largest request body read (JSON escaping makes a notebook's text longer); the notebook's own limit is
#: careops.handins.MAX_NOTEBOOK_BYTES, said in the answer.
MAX_BODY = 2 * MAX_NOTEBOOK_BYTES + 2**20
#: Fields of a hand-in that name who or when: the hub and the server say those, never the request.
IDENTITY_FIELDS = {"user", "username", "learner", "student", "student_id", "hub_user", "name"}
TIME_FIELDS = {"timestamp", "time", "received_at", "handed_in", "submitted_at", "date"}


@dataclass
class HandInService:
    """The service's state: where hand-ins go, what can be handed in, where the checks' reports go."""

    store: HandInStore
    assignments_file: Path
    activity: ActivityLog
    prefix: str = f"/services/{HANDIN_SERVICE}/"
    port: int = HANDIN_PORT
    _assignments: tuple[float, Assignments] | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> HandInService:
        env = dict(os.environ if env is None else env)
        store, activity = shared_state(env)
        return cls(store, Path(env.get(ASSIGNMENTS_FILE_ENV, HUB_ASSIGNMENTS_FILE)), activity,
                   **listening(env, HANDIN_PORT, cls.prefix))

    def assignments(self) -> Assignments:
        """The course's assignments (re-read when ``careops workshop up`` writes them again)."""
        try:
            mtime = self.assignments_file.stat().st_mtime
        except OSError:
            raise ServiceError(503, f"the workshop has no list of assignments ({self.assignments_file})",
                               "the instructor runs careops workshop up again") from None
        if self._assignments is None or self._assignments[0] != mtime:
            self._assignments = (mtime, Assignments.load(self.assignments_file))
        return self._assignments[1]


class ServiceHandler(HubIdentified):
    service: HandInService


class ApiHandler(ServiceHandler):
    token_only = True


@web.stream_request_body
class HandInHandler(ApiHandler):
    """POST api/hand-ins (store one) and GET api/hand-ins (the caller's own)."""

    async def prepare(self) -> None:
        self.received: list[bytes] = []
        self.size = 0
        if self.request.method == "POST":
            self.request.connection.set_max_body_size(8 * MAX_BODY)  # read it to say why it is refused
        await super().prepare()

    def data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size <= MAX_BODY:
            self.received.append(chunk)

    def post(self) -> None:
        if self.size > MAX_BODY:
            raise ServiceError(413, f"the hand-in is {self.size / 2**20:.0f} MiB, far over the limit of "
                                    f"{MAX_NOTEBOOK_BYTES // 2**20} MiB per notebook",
                               "clear the outputs (Edit > Clear Outputs of All Cells), save, and hand in again")
        data = body_json(self, b"".join(self.received))
        forged = sorted(k for k in data if k.lower() in IDENTITY_FIELDS and data[k] != self.username)
        if forged:
            raise ServiceError(403, f"refused: the hand-in names {forged[0]}={str(data[forged[0]])[:40]!r}, but the "
                                    f"hub says this request comes from {self.username}; a hand-in is stored under "
                                    "the hub identity of its token only",
                               "hand in from your own server, as yourself")
        unknown = sorted(set(data) - {"assignment", "notebook", "content"} - IDENTITY_FIELDS)
        if unknown:
            said = ("the hand-in time is the server's clock: " if set(unknown) & TIME_FIELDS else "")
            raise ServiceError(400, f"refused: unknown field(s) {', '.join(unknown)}; {said}a hand-in is "
                                    "{assignment, notebook, content}", "use the Hand in button of JupyterLab")
        assignment, notebook, content = (data.get(k) for k in ("assignment", "notebook", "content"))
        if not all(isinstance(v, str) for v in (assignment, notebook, content)):
            raise ServiceError(400, "refused: assignment, notebook and content must each be text "
                                    "(content: the .ipynb file's text)", "use the Hand in button of JupyterLab")
        try:
            handin = self.service.store.receive(self.username, assignment, notebook, content.encode("utf-8"),
                                                self.service.assignments())
        except HandInRefused as exc:
            raise ServiceError(exc.status, f"refused: {exc.message}", exc.fix) from None
        log.info("hand-in of %s: %s/%s.ipynb, %d bytes", handin.learner, handin.assignment, handin.notebook,
                 handin.size)
        self.answer({**handin.as_row(), "feedback_url": self.service.prefix + "feedback/",
                     "message": f"handed in {handin.assignment}/{handin.notebook}.ipynb as {handin.learner} at "
                                f"{handin.received_at:%H:%M:%S} UTC (the server's time)"}, 201)

    def get(self) -> None:
        asked = self.get_argument("learner", self.username)
        if asked != self.username:
            raise ServiceError(403, f"you are {self.username}: you can see only your own hand-ins, not {asked}'s")
        pages = self.service.store.feedback_pages(self.username)
        self.answer({"learner": self.username, "hand_ins": [
            {**h.as_row(), "feedback": (h.assignment, h.notebook) in pages
             and pages[(h.assignment, h.notebook)][0].folder == h.folder}
            for h in self.service.store.hand_ins(self.username)]})


class ChecksHandler(ApiHandler):
    """POST api/checks: one check's verdict from a learner's kernel (careops.report.reporting)."""

    def post(self) -> None:
        try:
            report = checked_report(body_json(self), self.service.assignments())
            self.service.activity.record(self.username, report)
        except ReportRefused as exc:
            raise ServiceError(400, f"refused: {exc}") from None
        self.set_status(204)
        self.finish()


class FeedbackHandler(ServiceHandler):
    """GET feedback/ (the caller's hand-ins and feedback) and feedback/<assignment>/<notebook>.html."""

    def get(self, assignment: str | None = None, notebook: str | None = None) -> None:
        pages = self.service.store.feedback_pages(self.username)
        if assignment is not None:
            found = pages.get((assignment, notebook or ""))
            if found is None:
                raise ServiceError(404, f"no feedback of yours for {assignment}/{notebook}.ipynb yet",
                                   f"see {self.service.prefix}feedback/ for what there is")
            self.html(found[1].read_text(encoding="utf-8", errors="replace"))
            return
        rows = []
        for h in reversed(self.service.store.hand_ins(self.username)):
            page = pages.get((h.assignment, h.notebook))
            link = (theme.link(f"{self.service.prefix}feedback/{h.assignment}/{h.notebook}.html", "open")
                    if page and page[0].folder == h.folder else theme.muted("not returned yet"))
            when = f"{h.received_at.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
            rows.append((h.assignment, f"{h.notebook}.ipynb", when, theme.num(h.size / 1024, "KiB", "{:.1f}"), link))
        body = (theme.table(rows, ["assignment", "notebook", "handed in (server time)", "size", "feedback"])
                if rows else theme.para(theme.muted("nothing handed in yet: use Hand in in JupyterLab's notebook "
                                                    "toolbar")))
        self.html(theme.page(f"Hand-ins and feedback of {self.username}",
                             theme.card(f"{len(rows)} hand-in(s)", body, ok=None)))


class NoSuchRoute(web.RequestHandler):
    def prepare(self) -> None:
        self.set_status(404)
        self.set_header("Content-Type", "application/json")
        self.finish({"error": 404, "message": f"the hand-in service has no {self.request.method} {self.request.path}",
                     "fix": "api/hand-ins, api/checks, feedback/"})


def make_app(service: HandInService, auth: Any) -> web.Application:
    p = service.prefix
    args = {"auth": auth, "service": service}
    name = r"([A-Za-z0-9][A-Za-z0-9._-]{0,63})"
    return web.Application([
        (p + "api/hand-ins", HandInHandler, args),
        (p + "api/checks", ChecksHandler, args),
        (p + "feedback/?", FeedbackHandler, args),
        (p + f"feedback/{name}/{name}\\.html", FeedbackHandler, args),
        (p + "oauth_callback", OAuthCallback, {"auth": auth}),
        (p + "?", web.RedirectHandler, {"url": p + "feedback/"}),
        (r".*", NoSuchRoute),
    ], cookie_secret=os.urandom(32), hub_auth=auth)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s careops.hand-in] %(message)s")
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    service = HandInService.from_env()
    auth = hub_oauth()
    server = HTTPServer(make_app(service, auth), max_body_size=8 * MAX_BODY)
    server.listen(service.port, "0.0.0.0")  # learners' servers come over the private network
    log.info("hand-in service on :%d%s, store %s", service.port, service.prefix, service.store.root)
    IOLoop.current().start()


if __name__ == "__main__":
    main()
