"""The course's rules for a hospital CI pipeline, as ordered data: each rule its own message.

Why rules on top of the schema: a workflow can be valid GitHub Actions and
still be unsafe for a hospital -- no PHI gate, no approval before staging,
tokens that may write, jobs that can hang forever, actions that change under
your feet. Each rule has an id, the message shown when it fails, and a hint.
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from careops.report import CheckReport
from careops.pipeline.expressions import expressions_in
from careops.pipeline.workflow import Workflow, load_workflow
from careops.report import theme

#: The pipeline the course asks for, in order: each job must (transitively) need the one before.
REQUIRED_JOBS = ("lint", "test", "phi-scan", "build-image", "deploy-staging")
MAX_TIMEOUT_MINUTES = 60
READ_ONLY_VALUES = {"read", "none"}
#: a full commit SHA: the only ref nobody can move to other code (a tag such as v4 can be re-pointed)
_PINNED_REF = re.compile(r"^[0-9a-f]{40}$")
_ECHO = re.compile(r"\b(echo|printf|cat|tee|print)\b")


@dataclass(frozen=True)
class Finding:
    """Where a rule failed: the message names the job/step; ``line`` points into the file."""

    message: str
    line: int | None = None


@dataclass(frozen=True)
class Rule:
    """One course rule: ``check`` returns the places it fails (empty: passed)."""

    id: str
    title: str
    hint: str
    check: Callable[[Workflow], list[Finding]]


@dataclass
class RuleResult:
    rule: Rule
    findings: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.findings


@dataclass
class PolicyReport:
    """Every rule's verdict, in rule order; ``ok`` when all pass."""

    source: str
    results: list[RuleResult]

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if not r.passed]

    def result(self, rule_id: str) -> RuleResult:
        return next(r for r in self.results if r.rule.id == rule_id)

    def as_check_report(self, title: str = "Your pipeline follows the course's rules") -> CheckReport:
        """One criterion per rule (message: the rule and where it fails; hint: the rule's hint), for notebooks."""
        report = CheckReport(title)
        for r in self.results:
            where = "; ".join(f"line {f.line}: {f.message}" if f.line else f.message for f in r.findings)
            report.check(r.passed, f"{r.rule.id}: {r.rule.title}" + (f" -- {where}" if where else ""),
                         hint=r.rule.hint)
        return report

    def __str__(self) -> str:
        verdict = (f"all {len(self.results)} rules pass" if self.ok
                   else f"{len(self.failed)} of {len(self.results)} rules fail")
        lines = [f"course policy for {self.source}: {verdict}"]
        for r in self.results:
            lines.append(f"  [{'ok' if r.passed else 'FAIL'}] {r.rule.id}: {r.rule.title}")
            for f in r.findings:
                lines.append(f"      {'line ' + str(f.line) + ': ' if f.line else ''}{f.message}")
            if not r.passed:
                lines.append(f"      hint: {r.rule.hint}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        entries = []
        for r in self.results:
            found = theme.items((None, theme.esc(f"line {f.line}: {f.message}" if f.line else f.message))
                                for f in r.findings)
            entries.append((r.passed, theme.join([theme.code(r.rule.id), " ", r.rule.title]) + found
                            + ("" if r.passed else theme.hint(r.rule.hint))))
        status = theme.verdict(self.ok, "all rules pass", f"{len(self.failed)} rule(s) fail")
        return theme.card(theme.join(["Course policy for ", theme.code(self.source)]), theme.items(entries),
                          status=status, ok=self.ok)


# -- the rules ------------------------------------------------------------------------------
def _required_jobs(wf: Workflow) -> list[Finding]:
    missing = [j for j in REQUIRED_JOBS if j not in wf.jobs]
    return [Finding(f"job '{j}' is missing (the pipeline needs {', '.join(REQUIRED_JOBS)})", wf.line_of("jobs"))
            for j in missing]


def _job_order(wf: Workflow) -> list[Finding]:
    out = []
    for before, after in itertools.pairwise(REQUIRED_JOBS):
        if before in wf.jobs and after in wf.jobs and before not in wf.ancestors(after):
            out.append(Finding(f"job '{after}' does not wait for '{before}': add `needs: {before}` "
                               f"(directly or through another job)", wf.line_of("jobs", after)))
    return out


def _timeouts(wf: Workflow) -> list[Finding]:
    out = []
    for job in wf.jobs.values():
        value = job.data.get("timeout-minutes")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            out.append(Finding(f"job '{job.id}' has no timeout-minutes (GitHub's default is 6 hours)",
                               wf.line_of("jobs", job.id)))
        elif not 0 < value <= MAX_TIMEOUT_MINUTES:
            out.append(Finding(f"job '{job.id}' has timeout-minutes {value:g}, expected more than 0 and at most "
                               f"{MAX_TIMEOUT_MINUTES}", wf.line_of("jobs", job.id, "timeout-minutes")))
    return out


def _scopes(value: object) -> tuple[bool, list[str]]:
    """(narrow enough, what is too broad) for one permissions value."""
    if isinstance(value, str):
        return value not in ("write-all", "read-all"), [value] if value in ("write-all", "read-all") else []
    if isinstance(value, dict):
        wide = [f"{k}: {v}" for k, v in value.items() if v not in READ_ONLY_VALUES]
        return not wide, wide
    return True, []


def _top_permissions(wf: Workflow) -> list[Finding]:
    if "permissions" not in wf.data:
        return [Finding("the workflow has no top-level `permissions:`, so every job gets the repository's "
                        "default token (often read/write)", 1)]
    ok, wide = _scopes(wf.data["permissions"])
    if not ok:
        return [Finding(f"top-level permissions grant {', '.join(wide)}; expected `contents: read` or narrower",
                        wf.line_of("permissions"))]
    return []


def _job_permissions(wf: Workflow) -> list[Finding]:
    out = []
    for job in wf.jobs.values():
        if "permissions" not in job.data:
            continue
        ok, wide = _scopes(job.data["permissions"])
        if job.data["permissions"] in ("write-all", "read-all"):
            out.append(Finding(f"job '{job.id}' asks for {job.data['permissions']}; name only the scopes it needs",
                               wf.line_of("jobs", job.id, "permissions")))
        elif not ok and not job.environment:
            out.append(Finding(f"job '{job.id}' asks for {', '.join(wide)} without an approval gate "
                               "(`environment:`); only a gated deploy job may write",
                               wf.line_of("jobs", job.id, "permissions")))
    return out


def _deploy_environment(wf: Workflow) -> list[Finding]:
    job = wf.jobs.get("deploy-staging")
    if job is None:
        return []  # required-jobs reports it
    if not job.environment:
        return [Finding("job 'deploy-staging' has no `environment:`, so nobody approves the deployment",
                        wf.line_of("jobs", "deploy-staging"))]
    return []


def _no_secret_echo(wf: Workflow) -> list[Finding]:
    out = []
    for job in wf.jobs.values():
        secret_vars = set()
        for scope in (wf.data.get("env") or {}, job.data.get("env") or {}):
            secret_vars |= {k for k, v in scope.items() if any(e.startswith("secrets.") for e in expressions_in(v))}
        for step in job.steps:
            names = secret_vars | {k for k, v in (step.data.get("env") or {}).items()
                                   if any(e.startswith("secrets.") for e in expressions_in(v))}
            script = step.run or ""
            where = wf.line_of("jobs", job.id, "steps", step.index, "run")
            if any(e.startswith("secrets.") for e in expressions_in(script)):
                out.append(Finding(f"job '{job.id}' step {step.index + 1} puts ${{{{ secrets.* }}}} into its script, "
                                   "where logs and process lists can show it; pass it through `env:`", where))
                continue
            for line in script.splitlines():
                if _ECHO.search(line) and any(re.search(rf"\${{?{re.escape(n)}\b", line) for n in names):
                    out.append(Finding(f"job '{job.id}' step {step.index + 1} prints a secret: {line.strip()[:80]}",
                                       where))
    return out


def _pinned_actions(wf: Workflow) -> list[Finding]:
    from careops.pipeline.actions import find_action

    out = []
    for job in wf.jobs.values():
        for step in job.steps:
            if not step.uses:
                continue
            ref = step.uses.partition("@")[2]
            if not _PINNED_REF.match(ref):
                action = find_action(step.uses)
                example = f"uses: {action.pinned}" if action else "uses: owner/name@<40-hex commit> # v1.2.3"
                kind = ("a tag, which can be moved to other code" if re.match(r"^v\d", ref) else
                        "a short commit SHA, which another commit can come to share"
                        if re.fullmatch(r"[0-9a-f]{7,39}", ref)
                        else "a branch, which moves with every push" if ref else "no ref at all")
                out.append(Finding(f"job '{job.id}' step {step.index + 1} uses {step.uses!r}: {kind}; pin the "
                                   f"full commit SHA, e.g. {example}",
                                   wf.line_of("jobs", job.id, "steps", step.index, "uses")))
    return out


def _phi_gate(wf: Workflow) -> list[Finding]:
    job = wf.jobs.get("phi-scan")
    if job is None:
        return []  # required-jobs reports it
    scans = any((s.uses or "").lower().startswith("careops/phi-scan@") or "careops.phi" in (s.run or "")
                for s in job.steps)
    if not scans:
        return [Finding("job 'phi-scan' does not run the PHI scanner (uses: careops/phi-scan@<commit> or "
                        "run: python -m careops.phi ...)", wf.line_of("jobs", "phi-scan"))]
    bypass = [s for s in job.steps if ((s.uses or "").lower().startswith("careops/phi-scan@")
                                       or "careops.phi" in (s.run or "")) and s.data.get("continue-on-error") is True]
    if bypass:
        return [Finding("the PHI scan step has continue-on-error: true, so PHI would not stop the pipeline",
                        wf.line_of("jobs", "phi-scan", "steps", bypass[0].index, "continue-on-error"))]
    return []


def _dockerfile_lint(wf: Workflow) -> list[Finding]:
    job = wf.jobs.get("lint")
    if job is None:
        return []  # required-jobs reports it
    if not any("hadolint" in (s.run or "") for s in job.steps):
        return [Finding("job 'lint' does not check the Dockerfile (run: hadolint Dockerfile)",
                        wf.line_of("jobs", "lint"))]
    return []


def _image_scan(wf: Workflow) -> list[Finding]:
    job = wf.jobs.get("build-image")
    if job is None:
        return []  # required-jobs reports it
    if not any((s.uses or "").lower().startswith("careops/scan-image@") for s in job.steps):
        return [Finding("job 'build-image' does not scan the image it built (uses: careops/scan-image@<commit>)",
                        wf.line_of("jobs", "build-image"))]
    return []


RULES: list[Rule] = [
    Rule("required-jobs", f"the pipeline has the jobs {' -> '.join(REQUIRED_JOBS)}",
         "add the missing jobs under `jobs:` with these exact ids", _required_jobs),
    Rule("job-order", "each job waits for the one before it (needs)",
         "e.g. `test: needs: lint`, `phi-scan: needs: test`, ...", _job_order),
    Rule("timeouts", f"every job has timeout-minutes (at most {MAX_TIMEOUT_MINUTES})",
         "add `timeout-minutes: 10` to each job: a hung job must not block the hospital's releases for hours",
         _timeouts),
    Rule("least-privilege", "top-level permissions are `contents: read` or narrower",
         "add `permissions: {contents: read}` at the top of the workflow", _top_permissions),
    Rule("job-permissions", "no job widens its token without an approval gate",
         "remove write scopes and write-all/read-all from jobs; only a gated deploy job may ask to write",
         _job_permissions),
    Rule("deploy-approval", "deploy-staging needs an approval (`environment:`)",
         "add `environment: staging` to the deploy-staging job", _deploy_environment),
    Rule("no-secret-echo", "no step prints a secret or pastes one into a script",
         "map secrets to env vars and never echo them; the runner's logs are kept", _no_secret_echo),
    Rule("pinned-actions", "every action is pinned to a full commit SHA",
         "write actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2, not @v4 or @main: a tag or a "
         "branch can be pointed at other code after you reviewed it", _pinned_actions),
    Rule("phi-gate", "the phi-scan job runs the PHI scanner and can fail the pipeline",
         "add a step `uses: careops/phi-scan@847b9e86d63125160bd94ce7ed75a35359b341e0` (v1) with `paths:` of your "
         "fixtures and logs", _phi_gate),
    Rule("dockerfile-lint", "the lint job checks the Dockerfile with hadolint",
         "add a step `run: hadolint Dockerfile` to the lint job", _dockerfile_lint),
    Rule("image-scan", "the build-image job scans the image it built",
         "add `uses: careops/scan-image@84ce136e9dc7c46fe69ab9acc76305d5b84e9932` (v1) with "
         "`image: ${{ steps.build.outputs.image }}`", _image_scan),
]


def check_policy(workflow: Workflow | str | Path, *, text: str | None = None) -> PolicyReport:
    """Run every course rule on a (valid) workflow; a WorkflowError if it does not even load."""
    wf = workflow if isinstance(workflow, Workflow) else load_workflow(workflow, text=text)
    return PolicyReport(wf.source, [RuleResult(rule, rule.check(wf)) for rule in RULES])
