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


def up_main(*, name: str = "careops", roster_file: str | None = None, port: int | None = None,
            bind: str | None = None, mem_limit: str | None = None, cpu_limit: float | None = None,
            idle_timeout: int | None = None, lab_containers: int | None = None, lab_memory: str | None = None,
            build: bool = True, progress: bool = True) -> int:
    """Start (or update) workshop ``name``; options not given keep their saved value (or the default)."""
    settings = WorkshopSettings.load(name, required=False).replace(
        port=port, bind=bind, mem_limit=mem_limit, cpu_limit=cpu_limit, idle_timeout=idle_timeout,
        lab_containers=lab_containers, lab_memory=lab_memory)
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
    token = api_token(settings)
    _state, started = hub.up(settings, config_text=text, token=token)
    new = HubAPI(settings.api_url, token).sync_members(enrolled)
    what = "started" if started else "already running, unchanged"
    print(f"workshop {name}: hub {what}; {len(enrolled)} member(s) on the roster"
          + (f", {len(new)} new on the hub" if new else ""))
    _print_issued(settings, issued)
    print(f"open {settings.url} (log in with the roster's usernames)")
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
