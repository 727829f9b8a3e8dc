"""Module 2, exercise 4: security as code -- hadolint and the course's Rego policy, one criterion per rule."""
from __future__ import annotations

from careops.dockerfile.hadolint import run_hadolint
from careops.dockerfile.parse import Dockerfile, DockerfileSyntaxError, as_dockerfile
from careops.dockerfile.policy import evaluate_policy
from careops.report import CheckReport


def security_report(dockerfile: str | Dockerfile) -> CheckReport:
    """The security-as-code criteria (the learner check and the grader's score both use them)."""
    report = CheckReport("Exercise 4: security as code")
    df = report.parsed(as_dockerfile, dockerfile, "the Dockerfile can be read", errors=DockerfileSyntaxError,
                       record_pass=False)
    if df is None:
        return report
    lint = run_hadolint(df.text)
    report.check(lint.ok, f"hadolint {lint.version}: no finding at warning or error level",
                 got=[str(f) for f in lint.graded] or None, hint="each finding names its rule (DL...); fix the line")
    policy = evaluate_policy(df)
    for rule in ("POL-1", "POL-2", "POL-3", "POL-4", "POL-5", "POL-6", "POL-7", "POL-8", "POL-9"):
        hits = [f for f in policy.findings if f.id == rule]
        report.check(not hits, f"course policy {rule}: " + (hits[0].message if hits else "complies"),
                     got=[str(f) for f in hits] or None, hint=hits[0].hint if hits else "")
    return report
