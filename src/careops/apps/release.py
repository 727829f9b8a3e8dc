"""`careops release`: generate the learner versions of the modules with nbgrader, and the learner's copy.

Runs on every `make lab`, so unchanged assignments are skipped (see
careops.grading.release). Every assignment is tried even if one fails, so
one broken notebook does not hold back the others; the command then fails
with the explanation of each failure. After releasing every assignment it
writes the learner's copy of the course (careops.grading.learner_copy: the
learner versions and the toolkit, no answer) to build/learner/. In a
learner's copy there is nothing to generate: it says where the learner
versions are.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from careops import paths
from careops.errors import CareOpsError
from careops.grading.course import Course, repo_root
from careops.grading.release import release_assignment, remove_stale_releases


def main(*, assignments: Sequence[str] | None = (), course_dir: Path | None = None, force: bool = False) -> int:
    """Release ``assignments`` (default, or none named: every folder in notebooks/) into build/release/."""
    course = Course((course_dir or repo_root()).resolve())
    if paths.is_learner_copy(course.root):
        shipped = sorted(p.name for p in (course.root / "release").iterdir() if p.is_dir()) \
            if (course.root / "release").is_dir() else []
        print(f"a learner's copy of the course: {len(shipped)} module(s) ready in release/ "
              f"({', '.join(shipped) or 'none'}); nothing to generate")
        return 0
    if not course.config.is_file():
        raise CareOpsError(
            f"no nbgrader config: expected {course.config}",
            fix="run careops from a complete checkout of CareOps Labs",
        )
    known = course.assignments()
    if assignments:
        unknown = [a for a in assignments if a not in known]
        if unknown:
            raise CareOpsError(
                f"unknown assignment{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                f"expected folders under {course.source} (there are: {', '.join(known) or 'none'})",
                fix="check the spelling; `careops release` with no name releases them all",
            )
        todo = list(dict.fromkeys(assignments))
    else:
        todo = known
        for name in remove_stale_releases(course.root):
            print(f"{name}: source folder gone, removed its release")
    if not todo:
        print(f"no assignments: {course.source} has no module folders yet")
        return 0

    failures: list[tuple[str, CareOpsError]] = []
    for name in todo:
        try:
            result = release_assignment(course.root, name, force=force)
        except CareOpsError as exc:
            failures.append((name, exc))
            print(f"{name}: FAILED")
            continue
        print(result.summary())
    if failures:
        if len(failures) == 1:
            raise failures[0][1]
        details = "\n".join(f"  {name}: {exc.message}" for name, exc in failures)
        fixes = "; ".join(f"{name}: {exc.fix}" for name, exc in failures if exc.fix)
        raise CareOpsError(f"{len(failures)} assignments could not be released:\n{details}", fix=fixes or None)
    try:
        where = course.release.relative_to(Path.cwd())
    except ValueError:
        where = course.release
    print(f"learner versions are in {where}/")
    if not assignments:
        from careops.grading import learner_copy

        copy = learner_copy.write(course.root, course.release)
        note = "" if copy.written else " (unchanged)"
        print(f"the learner's copy (no answers) is {copy.archive}{note}: hand it out for self-paced learners")
    return 0
