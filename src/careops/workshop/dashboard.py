"""The instructor's dashboard: the class live, learner by exercise, as the checks report it (instructors only).

A JupyterHub service (``dashboard``) the hub runs inside careops/hub. Only roles that grant
``access:services!service=dashboard`` reach it (the workshop's ``instructor`` role does; a learner gets the
hub's 403). Under /services/dashboard/:

* ``/`` the page: per learner and exercise the latest self-check verdict (✔/✘ with its message), attempts and
  minutes on it, a "stuck" highlight (the check has been failing for more than N minutes: ``?stuck_minutes=N``,
  default from the workshop's settings), who has handed in (and when, by the server's clock), the grade once
  ``careops grade`` graded it, and a plot of the class's progress (inline SVG); it refreshes itself every few
  seconds (``view``: the same content without the page around it);
* ``export.csv``: one line per learner and exercise with all of the above; ``data.json``: the same as data.

The learners are the hub's ``learners`` group (its own token's role lists them), so someone who has not started
yet shows up too. Reports come from careops.workshop.activity, hand-ins and grades from the store
(careops.handins). Rendered with careops.report.theme. Run by the hub: ``python3 -m careops.workshop.dashboard``.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from careops.handins import HandInStore
from careops.report import theme
from careops.workshop.activity import ActivityLog, ClassView, Progress, class_view, shared_state
from careops.workshop.labels import (
    DASHBOARD_PORT,
    DASHBOARD_SERVICE,
    STUCK_MINUTES_ENV,
)
from careops.workshop.service import HubIdentified, OAuthCallback, ServiceError, hub_oauth, listening

log = logging.getLogger("careops.workshop")

DEFAULT_STUCK_MINUTES = 10.0
#: How often the page asks for a fresh view.
REFRESH_SECONDS = 5
CSV_COLUMNS = ["learner", "assignment", "exercise", "check", "latest", "message", "attempts", "minutes_on",
               "stuck", "stuck_minutes", "first_run_utc", "first_pass_utc", "hand_ins", "handed_in_utc",
               "grade_status", "score", "max_score"]


@dataclass
class Dashboard:
    """Where the dashboard reads from, and how it asks the hub who the learners are."""

    store: HandInStore
    activity: ActivityLog
    stuck_minutes: float = DEFAULT_STUCK_MINUTES
    prefix: str = f"/services/{DASHBOARD_SERVICE}/"
    port: int = DASHBOARD_PORT
    hub_api: str = ""
    token: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Dashboard:
        env = dict(os.environ if env is None else env)
        return cls(*shared_state(env), stuck_minutes=float(env.get(STUCK_MINUTES_ENV, DEFAULT_STUCK_MINUTES)),
                   **listening(env, DASHBOARD_PORT, cls.prefix),
                   hub_api=env.get("JUPYTERHUB_API_URL", "").rstrip("/"), token=env.get("JUPYTERHUB_API_TOKEN", ""))

    async def hub_learners(self) -> dict[str, dict[str, Any]]:
        """The learners the hub lists for this service (its role: the learners group), with server and activity;
        empty when the hub does not answer (the view then lists whoever reported or handed in)."""
        if not self.hub_api:
            return {}
        try:
            resp = await AsyncHTTPClient().fetch(HTTPRequest(
                f"{self.hub_api}/users?limit=1000", headers={"Authorization": f"token {self.token}"},
                request_timeout=5))
            users = json.loads(resp.body)
        except Exception as exc:  # noqa: BLE001 - the view still shows what the store and the reports have
            log.warning("the hub did not list the learners: %s", exc)
            return {}
        found = {}
        for u in users if isinstance(users, list) else []:
            server = (u.get("servers") or {}).get("") or {}
            found[u["name"]] = {"server": "ready" if server.get("ready") else "starting" if server else "none",
                                "last_activity": (u.get("last_activity") or "")[:19].replace("T", " ")}
        return found

    async def view(self, stuck_minutes: float | None = None) -> ClassView:
        hub = await self.hub_learners()
        return class_view(self.activity.reports(), sorted(hub), self.store.hand_ins(), self.store.grades(),
                          now=datetime.now(timezone.utc), stuck_after=self.stuck_minutes
                          if stuck_minutes is None else stuck_minutes, activity=hub)


# -- rendering ----------------------------------------------------------------------------------------------


def _clock(when: datetime | None) -> str:
    return f"{when.astimezone(timezone.utc):%H:%M:%S}" if when else ""


def _cell(view: ClassView, p: Progress | None) -> theme.Html:
    if p is None:
        return theme.muted("not started")
    message = theme.muted(p.message[:90])
    runs = theme.note(theme.muted(f"{p.attempts} run(s), {p.minutes:.0f} min"))
    if view.is_stuck(p):
        lead = theme.state("stuck", f"{theme.FAIL_MARK} stuck {p.stuck_minutes(view.now):.0f} min")
    else:
        lead = theme.mark(p.passed)
    return theme.join([theme.join([lead, message], " "), runs])


def _hand_in_cell(view: ClassView, learner: str, assignment: str) -> theme.Html:
    found = view.hand_ins.get((learner, assignment), [])
    if not found:
        return theme.muted("not yet")
    times = f" ({len(found)}×)" if len(found) > 1 else ""
    return theme.state("handed-in", f"{theme.PASS_MARK} {_clock(found[-1].received_at)} UTC{times}")


def _grade_cell(view: ClassView, learner: str, assignment: str) -> Any:
    row = view.grades.get(assignment, {}).get(learner)
    if row is None:
        return theme.muted("not graded")
    status, got, most = str(row.get("status", "")), float(row.get("score", 0)), float(row.get("max_score", 0))
    word = "warning" if status != "graded" else "success" if most and got >= most else "info"
    return theme.join([theme.state(word, f"{got:g}/{most:g}"), theme.muted(status)], " ")


def render_view(view: ClassView, dashboard: Dashboard) -> theme.Html:
    """The dashboard's content (the page's live part)."""
    stuck = [(learner, e) for e in view.exercises for learner in view.learners
             if view.is_stuck(view.progress.get((learner, e.check)))]
    handed = {learner for (learner, _a) in view.hand_ins}
    summary = theme.fields({
        "learners": len(view.learners), "exercises reported": len(view.exercises),
        "handed in (any assignment)": f"{len(handed & set(view.learners))} of {len(view.learners)}",
        "stuck now": theme.state("stuck", str(len(stuck))) if stuck else "0",
        "stuck means": f"the same check failing for more than {view.stuck_after:g} min",
        "updated": f"{view.now:%Y-%m-%d %H:%M:%S} UTC (every {REFRESH_SECONDS} s)",
    })
    export = theme.para(theme.join([theme.link(f"{dashboard.prefix}export.csv?stuck_minutes={view.stuck_after:g}",
                                               "export CSV"), theme.muted("(one line per learner and exercise)")], " "))
    out = [theme.card("The class now", summary + export, status=theme.state("stuck", f"{len(stuck)} stuck")
                      if stuck else theme.verdict(True, "nobody stuck"), ok=None if stuck else True)]
    if stuck:
        out.append(theme.card("Stuck", theme.items(
            (False, theme.join([theme.bold(learner), e.title, theme.muted(
                f"failing for {view.progress[(learner, e.check)].stuck_minutes(view.now):.0f} min: "
                f"{view.progress[(learner, e.check)].message[:90]}")], " "))
            for learner, e in stuck), ok=False))
    if view.exercises and view.learners:
        counts = view.passed_counts()
        chart = theme.stacked_bars("Class progress: learners per exercise",
                                   [(e.title[:40], [(passed, "passed"), (failing, "failed"), (n_stuck, "stuck")])
                                    for e, passed, failing, n_stuck in counts], len(view.learners),
                                   legend=[("passed", "latest run passed"), ("failed", "failing"),
                                           ("stuck", "stuck")])
        out.append(theme.card("Class progress", chart, ok=None))
    for assignment in view.assignments:
        exercises = [e for e in view.exercises if e.assignment == assignment]
        header = ["learner", "server"] + [e.title for e in exercises] + ["handed in", "grade"]
        rows = []
        for learner in view.learners:
            hub = view.activity.get(learner, {})
            rows.append([theme.bold(learner), theme.muted(hub.get("server", "-"))]
                        + [_cell(view, view.progress.get((learner, e.check))) for e in exercises]
                        + [_hand_in_cell(view, learner, assignment), _grade_cell(view, learner, assignment)])
        out.append(theme.card(assignment, theme.table(rows, header), ok=None))
    if not view.learners:
        out.append(theme.card("Nobody yet", theme.para(theme.muted("no learner on the hub has logged in, run a "
                                                                     "check or handed in")), ok=None))
    return theme.Html("".join(out))


def render_page(view: ClassView, dashboard: Dashboard, query: str) -> theme.Html:
    script = (f"const CAREOPS_VIEW = {json.dumps(dashboard.prefix + 'view' + query)};\n"
              "async function careopsRefresh() {\n"
              "  try {\n"
              "    const r = await fetch(CAREOPS_VIEW, {credentials: 'same-origin', cache: 'no-store'});\n"
              "    if (r.ok) { document.getElementById('careops-view').innerHTML = await r.text(); }\n"
              "  } catch (e) { /* the next round tries again */ }\n"
              f"  setTimeout(careopsRefresh, {REFRESH_SECONDS * 1000});\n"
              "}\n"
              f"setTimeout(careopsRefresh, {REFRESH_SECONDS * 1000});\n")
    return theme.page("Workshop dashboard", f"<div id='careops-view'>{render_view(view, dashboard)}</div>",
                      script=script)


def rows(view: ClassView) -> list[dict[str, Any]]:
    """One row per learner and exercise (and per learner and assignment without reported exercises)."""
    out = []
    for assignment in view.assignments:
        exercises = [e for e in view.exercises if e.assignment == assignment] or [None]
        for learner in view.learners:
            found = view.hand_ins.get((learner, assignment), [])
            grade = view.grades.get(assignment, {}).get(learner) or {}
            for e in exercises:
                p = view.progress.get((learner, e.check)) if e else None
                out.append({
                    "learner": learner, "assignment": assignment, "exercise": e.title if e else "",
                    "check": e.check if e else "",
                    "latest": ("passed" if p.passed else "failed") if p else "not started",
                    "message": p.message if p else "", "attempts": p.attempts if p else 0,
                    "minutes_on": round(p.minutes, 1) if p else 0.0, "stuck": view.is_stuck(p),
                    "stuck_minutes": round(p.stuck_minutes(view.now), 1) if p and not p.passed else 0.0,
                    "first_run_utc": p.first_at.isoformat() if p and p.first_at else "",
                    "first_pass_utc": p.first_pass_at.isoformat() if p and p.first_pass_at else "",
                    "hand_ins": len(found), "handed_in_utc": found[-1].received_at.isoformat() if found else "",
                    "grade_status": grade.get("status", ""), "score": grade.get("score", ""),
                    "max_score": grade.get("max_score", "")})
    return out


def render_csv(view: ClassView) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(rows(view))
    return buf.getvalue()


# -- the service ----------------------------------------------------------------------------------------------


class DashboardHandler(HubIdentified):
    """Every route: the page, its live part, the CSV export, the data."""

    dashboard: Dashboard

    def stuck_minutes(self) -> float | None:
        text = self.get_argument("stuck_minutes", "")
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            raise ServiceError(400, f"stuck_minutes must be a number of minutes, got {text[:20]!r}") from None
        if not 0 <= value <= 24 * 60:
            raise ServiceError(400, f"stuck_minutes must be 0-1440, got {value:g}")
        return value

    async def get(self, what: str = "") -> None:
        stuck = self.stuck_minutes()
        view = await self.dashboard.view(stuck)
        if what == "view":
            self.html(render_view(view, self.dashboard))
        elif what == "export.csv":
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", f"attachment; filename=workshop-{view.now:%Y%m%dT%H%M%SZ}.csv")
            self.finish(render_csv(view))
        elif what == "data.json":
            self.answer({"now": view.now.isoformat(), "stuck_after_minutes": view.stuck_after,
                         "learners": view.learners, "rows": rows(view)})
        else:
            self.html(render_page(view, self.dashboard, "" if stuck is None else f"?stuck_minutes={stuck:g}"))


def make_app(dashboard: Dashboard, auth: Any) -> web.Application:
    p = dashboard.prefix
    args = {"auth": auth, "dashboard": dashboard}
    return web.Application([
        (p + "oauth_callback", OAuthCallback, {"auth": auth}),
        (p + "(view|export\\.csv|data\\.json)", DashboardHandler, args),
        (p + "?", DashboardHandler, args),
    ], cookie_secret=os.urandom(32))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s careops.dashboard] %(message)s")
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    dashboard = Dashboard.from_env()
    server = HTTPServer(make_app(dashboard, hub_oauth()))
    server.listen(dashboard.port, "127.0.0.1")  # only through the hub's proxy
    log.info("dashboard on :%d%s (stuck after %g min)", dashboard.port, dashboard.prefix, dashboard.stuck_minutes)
    IOLoop.current().start()


if __name__ == "__main__":
    main()
