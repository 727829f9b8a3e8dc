"""Grade one Dockerfile submission end to end: static rules, security as code, build, live checks.

Why: the grader, the bench and the tests need one call that takes a learner's
Dockerfile and .dockerignore as text and returns a score with a reason for
every lost point -- within a time limit, leaving nothing behind. Points per
part mirror the notebook's graded cells (all or nothing per part).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from careops.report import CheckReport
from careops.containerize.security import security_report
from careops.containerize.build import BUILD_TIMEOUT, LearnerBuild, build_learner_image
from careops.dockerfile.parse import Dockerfile, DockerfileSyntaxError, parse
from careops.dockerfile.rules import static_report
from careops.report import theme

POINTS = {"static": 3, "security": 2, "live": 4}


@dataclass
class Submission:
    """The reports of one graded submission and its score."""

    reports: dict[str, CheckReport] = field(default_factory=dict)
    build: LearnerBuild | None = None
    seconds: float = 0.0

    @property
    def score(self) -> int:
        return sum(POINTS[part] for part, rep in self.reports.items() if rep.passed)

    @property
    def max_score(self) -> int:
        return sum(POINTS.values())

    @property
    def reasons(self) -> list[str]:
        """Every failed criterion, prefixed with its part."""
        return [f"{part}: {c.message}" + (f" (got {c.got!r})" if c.got is not None else "")
                for part, rep in self.reports.items() for c in rep.failures]

    def __str__(self) -> str:
        head = f"score {self.score}/{self.max_score} in {self.seconds:.1f} s"
        return "\n".join([head] + [str(r) for r in self.reports.values()])

    def _repr_html_(self) -> str:
        status = theme.verdict(self.score == self.max_score, f"score {self.score}/{self.max_score}",
                               f"score {self.score}/{self.max_score}")
        return theme.card("Submission", "".join(r._repr_html_() for r in self.reports.values()), status=status,
                          ok=self.score == self.max_score)


def _parsed(dockerfile: str) -> str | Dockerfile:
    """The Dockerfile parsed, once, for every part that reads it; the text itself when it cannot be read
    (each part then says so in its own words)."""
    try:
        return parse(dockerfile)
    except DockerfileSyntaxError:
        return dockerfile


def grade(dockerfile: str, dockerignore: str | None = None, *, learner: str | None = None,
          timeout: float = BUILD_TIMEOUT, progress: bool = False, live: bool = True) -> Submission:
    """Score a submission; the learner image is always removed at the end.

    The Dockerfile is parsed once, here, and every part (rules, security, build) reads the parsed one."""
    from careops.containerize.live import live_report

    started = time.monotonic()
    sub = Submission()
    parsed = _parsed(dockerfile)
    sub.reports["static"] = static_report(parsed, dockerignore)
    sub.reports["security"] = security_report(parsed)
    if live:
        with build_learner_image(parsed, dockerignore, learner=learner, timeout=timeout,
                                 progress=progress) as image:
            sub.build = image
            sub.reports["live"] = live_report(image, learner=learner)
    sub.seconds = time.monotonic() - started
    return sub


def live_check_seconds(dockerfile: str, dockerignore: str | None, *, learner: str | None = None) -> float:
    """Bench: wall time of the live part (build + live checks + clean-up) of one submission."""
    started = time.monotonic()
    grade(dockerfile, dockerignore, learner=learner)
    return time.monotonic() - started


def build_seconds_warm_vs_cold(dockerfile: str, dockerignore: str | None, *,
                               learner: str | None = None) -> dict[str, float]:
    """Bench: learner-image build time with no cache (cold) and right after, with the cache (warm)."""
    parsed = _parsed(dockerfile)
    cold = build_learner_image(parsed, dockerignore, learner=learner, nocache=True, progress=False)
    try:
        warm = build_learner_image(parsed, dockerignore, learner=learner, progress=False)
        warm.remove()
    finally:
        cold.remove()
    if not cold.ok:
        raise RuntimeError(f"the bench Dockerfile does not build: {cold.reason}")
    return {"cold": cold.seconds, "warm": warm.seconds, "warm_cached_steps": float(warm.cached_steps)}


__all__ = ["POINTS", "Submission", "build_seconds_warm_vs_cold", "grade", "live_check_seconds"]
