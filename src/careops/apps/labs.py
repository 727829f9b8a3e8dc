"""`careops labs ls|reset`: see and remove lab resources, also those a crashed kernel left."""
from __future__ import annotations

import sys

import click

from careops.lab import labels as L
from careops.lab import resources
from careops.lab.backend import via_broker


def ls_main(*, all_learners: bool = False) -> int:
    found = resources.find(learner=None if all_learners else L.learner_id())
    if not found:
        who = "anyone" if all_learners else L.learner_id()
        print(f"no lab resources of {who}")
        return 0
    print(f"{'KIND':<10} {'NAME':<48} {'LAB':<16} {'LEARNER':<14} {'STATUS':<10} STATE")
    for r in found:
        state = "LEAKED (creator gone)" if r.leaked else "active"
        print(f"{r.kind:<10} {r.name:<48} {r.lab:<16} {r.learner:<14} {r.status:<10} {state}")
    leaked = sorted({(r.learner, r.lab) for r in found if r.leaked})
    if leaked:
        me = L.learner_id()
        print(f"\nleaked labs: {', '.join(sorted({lab for _, lab in leaked}))}; remove with:")
        for learner, lab in leaked:
            print(f"  {reset_command(lab, learner if learner != me else None)}")
    return 0


def reset_command(lab: str | None, learner: str | None, *, assume_yes: bool = False) -> str:
    """The command that resets ``lab`` (None: every lab) of ``learner`` (None: yourself)."""
    return " ".join(["careops labs reset", *([lab] if lab else []), *([f"--learner {learner}"] if learner else []),
                     *(["--yes"] if assume_yes else [])])


def reset_main(*, lab: str | None = None, learner: str | None = None, assume_yes: bool = False) -> int:
    from careops.containerize.build import leftover_images, remove_leftover_images

    who = learner or L.learner_id()
    found = resources.find(lab, who)
    # learner-build images belong to no lab; through the lab broker, the broker removes a learner's builds
    images = leftover_images(who) if lab is None and not via_broker() else []
    if not found and not images:
        print(f"nothing to remove: no resources of lab {lab or '(any)'} for {who}")
        return 0
    if not assume_yes:
        if not sys.stdin.isatty():
            command = reset_command(lab, learner if learner and learner != L.learner_id() else None, assume_yes=True)
            print(f"careops: refusing to remove without confirmation; run: {command}", file=sys.stderr)
            return 2
        click.confirm(f"remove {len(found) + len(images)} resource(s) of {lab or 'all labs'} for {who}?", abort=True)
    failed = False
    if found:
        report = resources.remove(found)
        print(report)
        failed = bool(report.failed)
    if images:
        gone = remove_leftover_images(who)
        print(f"removed {len(gone)} image(s) left by interrupted Dockerfile builds: {', '.join(gone)}")
        failed = failed or len(gone) < len(images)
    return 1 if failed else 0
