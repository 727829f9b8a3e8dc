"""`careops workshop up|down|status|add-learners`: a JupyterHub for a whole class on this host (workshop mode).

``up`` enrolls the roster (initial passwords go to a handout file, mode 0600),
makes sure the hub and learner images are current, writes the hub's
configuration and starts (or keeps) the hub; it prints the URL. ``down``
removes the hub, the learners' servers and the networks and keeps every volume
(the learners' work) unless ``remove_volumes``. See careops.workshop.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from careops import paths
from careops.handins import Assignments
from careops.workshop import config, hub, roster
from careops.workshop.api import HubAPI, api_token
from careops.workshop.settings import WorkshopError, WorkshopSettings
from careops.workshop.status import workshop_status


def _enroll(settings: WorkshopSettings, roster_file: str | None) -> tuple[dict[str, roster.Enrolled], list[roster.Issued]]:
    """The enrolled roster after adding ``roster_file``'s members (issuing passwords to new ones)."""
    enrolled = roster.load_enrolled(settings.roster_path)
    issued: list[roster.Issued] = []
    if roster_file:
        enrolled, issued = roster.enroll(roster.read_roster(roster_file), enrolled)
        roster.save_enrolled(settings.roster_path, enrolled)
    return enrolled, issued


def _print_issued(settings: WorkshopSettings, issued: list[roster.Issued]) -> None:
    handout = roster.write_handout(settings.handouts_dir, issued, url=settings.url)
    if handout is not None:
        who = ", ".join(i.member.username for i in issued)
        print(f"initial passwords of {len(issued)} new member(s) ({who}) are in {handout} (only you can read it);\n"
              f"  hand them out; learners change theirs at {settings.url}hub/change-password")


def _release():
    release = paths.release_dir()
    if not release.is_dir() or not any(release.glob("*/*.ipynb")):
        raise WorkshopError(f"no released notebooks in {release}: learners would have nothing to hand in",
                            fix="careops release (make workshop runs it)")
    return release


def up_main(*, name: str = "careops", roster_file: str | None = None, port: int | None = None,
            bind: str | None = None, mem_limit: str | None = None, cpu_limit: float | None = None,
            idle_timeout: int | None = None, lab_containers: int | None = None, lab_memory: str | None = None,
            stuck_minutes: float | None = None, build: bool = True, progress: bool = True) -> int:
    """Start (or update) workshop ``name``; options not given keep their saved value (or the default)."""
    settings = WorkshopSettings.load(name, required=False).replace(
        port=port, bind=bind, mem_limit=mem_limit, cpu_limit=cpu_limit, idle_timeout=idle_timeout,
        lab_containers=lab_containers, lab_memory=lab_memory, stuck_minutes=stuck_minutes)
    enrolled, issued = _enroll(settings, roster_file)
    if not enrolled:
        raise WorkshopError(f"workshop {name} has nobody to let in: no roster given and none enrolled before",
                            fix="careops workshop up --roster class.csv (columns username,role,name; role learner or "
                                "instructor), or make workshop ROSTER=class.csv")
    settings.save()
    if build:
        from careops.images import ensure_images

        ensure_images(["learner", "hub"], progress=progress)
    text = config.render(settings, enrolled)
    config.write_config(settings, enrolled)
    Assignments.from_release(_release()).save(settings.assignments_path)  # what the hand-in service takes
    token = api_token(settings)
    _state, started = hub.up(settings, config_text=text, token=token)
    new = HubAPI(settings.api_url, token).sync_members(enrolled)
    what = "started" if started else "already running, unchanged"
    print(f"workshop {name}: hub {what}; {len(enrolled)} member(s) on the roster"
          + (f", {len(new)} new on the hub" if new else ""))
    _print_issued(settings, issued)
    print(f"open {settings.url} (log in with the roster's usernames); instructors: the dashboard is at "
          f"{settings.url}services/dashboard/; hand-ins arrive in {settings.handin_store}")
    return 0


def add_learners_main(*, roster_file: str, name: str = "careops") -> int:
    """Enroll the roster file's new members (existing ones keep their passwords); a running hub learns them at once."""
    settings = WorkshopSettings.load(name)
    enrolled, issued = _enroll(settings, roster_file)
    config.write_config(settings, enrolled)  # read at the hub's next start; the roster itself is read live
    if hub.hub_state(settings).running:
        new = HubAPI.for_workshop(settings).sync_members(enrolled)
        print(f"workshop {name}: {len(new)} new member(s) on the running hub, {len(enrolled)} on the roster")
    else:
        print(f"workshop {name}: the hub is not running; {len(enrolled)} on the roster (start it: careops workshop up)")
    _print_issued(settings, issued)
    if not issued:
        print("no new members: everyone in the file was enrolled already (their passwords are unchanged)")
    return 0


def status_main(*, name: str = "careops", as_json: bool = False) -> int:
    """Print the hub's state and each member's server; exit 1 when the hub is not running."""
    settings = WorkshopSettings.load(name)
    st = workshop_status(settings, roster.load_enrolled(settings.roster_path))
    if as_json:
        json.dump({"name": st.name, "url": st.url, "hub": st.hub.state, "problem": st.problem,
                   "members": [m.__dict__ for m in st.members]}, sys.stdout, indent=1)
        print()
    else:
        print(st)
    return 0 if st.hub.running else 1


def down_main(*, name: str = "careops", remove_volumes: bool = False) -> int:
    """Remove the hub, the learners' servers and the networks; keep the volumes unless ``remove_volumes``."""
    settings = WorkshopSettings.load(name)
    report = hub.down(settings, remove_volumes=remove_volumes)
    print(f"workshop {name}: {report}")
    return 1 if report.failed else 0


def submit_main(*, notebook: str | None = None, as_json: bool = False) -> int:
    """Hand in ``notebook`` (default: the notebook of the kernel that runs this) from a learner's server."""
    from careops.workshop.handin_client import hand_in

    receipt = hand_in(notebook)
    print(json.dumps(receipt.__dict__, indent=1) if as_json else receipt)
    return 0



def new_arrivals(store_root) -> tuple[list[dict], Callable[[], None]]:
    """The hand-ins logged in the store's arrivals.jsonl since the last marked read (whole lines only: a line being
    written is read next time), and what marks them read (``<course>/autograde.offset``) once they are graded."""
    from careops.handins import HandInStore

    store = HandInStore(store_root)
    offset_file = store.arrivals.with_name("autograde.offset")
    offset = int(offset_file.read_text()) if offset_file.is_file() else 0
    whole = b""
    if store.arrivals.is_file():
        with open(store.arrivals, "rb") as log:
            log.seek(offset)
            data = log.read()
        whole = data[:data.rfind(b"\n") + 1]
    rows = [json.loads(line) for line in whole.decode("utf-8").splitlines() if line.strip()]
    return rows, lambda: offset_file.write_text(str(offset + len(whole))) if whole else None


def autograde_main(*, name: str = "careops", once: bool = False, interval: float = 15.0, jobs: int | None = None,
                   course_dir: Path | None = None, queue: str | None = None, rounds: int | None = None) -> int:
    """Grade hand-ins as they arrive: every ``interval`` s, each assignment with new arrivals in the workshop's store
    is graded as `careops grade ASSIGNMENT --workshop NAME` does (only what is new or changed, here or on the grading
    queue's workers with ``queue``); the grades go to the dashboard. Runs beside the hub until stopped (Ctrl-C), or
    one pass with ``once``. Exit 2 when some hand-in hit a grader problem in the last pass (graded again later)."""
    import time

    from careops.apps import grade as grade_app

    settings = WorkshopSettings.load(name)
    done, status = 0, 0
    while True:
        arrived, mark_read = new_arrivals(settings.handin_store)
        for assignment in sorted({a["assignment"] for a in arrived}):
            who = sorted({a["learner"] for a in arrived if a["assignment"] == assignment})
            print(f"autograde {assignment}: new hand-in(s) of {', '.join(who)}", flush=True)
            status = grade_app.main(assignment=assignment, workshop=name, jobs=jobs, course_dir=course_dir,
                                    progress=False, queue=queue)
        mark_read()
        done += 1
        if once or (rounds is not None and done >= rounds):
            return status
        time.sleep(interval)
