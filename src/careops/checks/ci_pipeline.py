"""Checks for module 1, "build a CI pipeline" (notebooks/01-ci-pipeline).

Exercise 1 (tests first) is graded by mutation testing: the learner's pytest
file must pass on the legacy service and fail on planted bugs. The three
``PRACTICE_MUTANTS`` here are what the visible check uses; the graded ones
live in the notebook's hidden tests, so tests cannot be written against them.
"""
from __future__ import annotations

import ast
from pathlib import Path

from careops import paths
from careops.checks import live_check
from careops.report import CheckReport, learner_check, learner_error
from careops.mutation import Mutant, run_mutation

SERVICE = "legacy-adt/adt_service.py"
MIN_TESTS = 5

PRACTICE_MUTANTS = [
    Mutant("msh10-wrong-field", "the control id is read from MSH-11 instead of MSH-10",
           'control_id = msh[9] if len(msh) > 9 else ""', 'control_id = msh[10] if len(msh) > 10 else ""'),
    Mutant("unsupported-gets-AE", "an unsupported message type gets AE instead of AR",
           'raise Nak("AR", "unsupported message type', 'raise Nak("AE", "unsupported message type'),
    Mutant("err-segment-dropped", "NAKs lose their ERR segment",
           '        segs.append("ERR|||%s|E||||%s" % (err_code, clean(text)))', "        pass"),
]


def service_source() -> str:
    """The legacy service (v1) the learner's tests import as ``adt_service``."""
    return paths.lab_asset(SERVICE).read_text(encoding="utf-8")


def count_tests(tests: str) -> int:
    """Test functions (``def test_*``, also inside ``class Test*``) in a pytest file; -1 if it does not parse."""
    try:
        tree = ast.parse(tests)
    except SyntaxError:
        return -1
    return sum(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test")
               for n in ast.walk(tree))


@learner_check
def unit_tests(tests: str, *, mutants: list[Mutant] | None = None, min_killed: float = 2 / 3,
               title: str = "Exercise 1: tests that catch bugs") -> CheckReport:
    """Your tests must run, pass on the real service, and fail on most planted bugs.

    ``report.data["mutation"]`` is the :class:`MutationReport` (None when the tests did not run).
    """
    mutants = PRACTICE_MUTANTS if mutants is None else mutants
    report = CheckReport(title)
    n = count_tests(tests) if isinstance(tests, str) else -1
    if not report.check(n >= 0, "the test file is valid Python",
                        hint="run the cell: Python reports the line with the syntax error"):
        return report
    enough = report.check(n >= MIN_TESTS, f"at least {MIN_TESTS} test functions (def test_...)",
                          expected=f">= {MIN_TESTS}", got=n,
                          hint="one test per behaviour: a valid A01, each NAK reason, the ACK's MSA segment, field()")
    if not enough and n == 0:
        return report
    result = run_mutation(tests, mutants, source=service_source())
    report.data["mutation"] = report.attach(result)
    failures = result.original.failures
    failed = "; ".join(str(f) for f in failures) or result.original.summary()
    if not report.check(result.passes_on_original, "your tests pass on the real legacy service",
                        got=f"{failed} ({result.original.summary()})" if failures else failed,
                        hint="a test that fails on correct code is testing the wrong thing: read its message "
                             "and compare with what adt_service really does"):
        return report
    need = int(len(mutants) * min_killed + 0.999)
    report.check(len(result.killed) >= need,
                 f"your tests catch at least {need} of the {len(mutants)} planted bugs",
                 expected=f">= {need} killed", got=f"{len(result.killed)} killed",
                 hint="for each surviving mutant, write the test that would have caught it: "
                      + "; ".join(m.description for m in result.survived))
    return report


# --- the learner's repo copy ------------------------------------------------
REPO_NAME = "riverside-adt"
SERVICE_FILES = ("adt_service.py", "adt.ini")
TEMPLATE = "ci-pipeline/repo-template"
#: The fixture a colleague copied from production into a bug ticket: the PHI gate must stop it.
LEAKED_FIXTURE = "tests/fixtures/ticket-4711-from-production.hl7"
WORKFLOW_PATH = ".github/workflows/ci.yml"
TESTS_PATH = "tests/test_adt_service.py"


def _leaked_message() -> str:
    """A real-looking (made-up) production message; built from parts so no real-looking value sits in the repo."""
    phone = "-".join(["212", "4" + "87", "31" + "09"])
    ssn = "-".join(["4" + "21", "6" + "8", "7" + "315"])
    mrn = "MRN" + "0048" + "2213"
    return "\n".join([
        "MSH|^~\\&|EPIC-PROD|RIVERSIDE|LEGACY-ADT|RIVERSIDE|20250312081544||ADT^A01^ADT_A01|PROD-88213|P|2.5",
        "EVN|A01|20250312081544",
        f"PID|1||{mrn}^^^RIVERSIDE^MR||Okafor^Grace||19520611|F|||14 Mill Lane^^Riverside^NY^10027||{phone}|||||"
        f"V-88213|{ssn}",
        "PV1|1|I|CARD^204^B|||||DR-311^House^Gregory|||||||||||V-88213",
    ]) + "\n"


def prepare_repo(dest: str | Path | None = None) -> Path:
    """Your copy of the team's repo for this module (``riverside-adt`` beside the notebook).

    Copies the legacy service and the template on first use and never overwrites
    a file you changed; a colleague's production extract sits in fixtures/.
    """
    import shutil

    repo = Path(dest) if dest else Path.cwd() / REPO_NAME
    repo.mkdir(parents=True, exist_ok=True)
    sources = [(paths.lab_asset(f"legacy-adt/{f}"), repo / f) for f in SERVICE_FILES]
    template = paths.lab_asset(TEMPLATE)
    sources += [(p, repo / p.relative_to(template)) for p in sorted(template.rglob("*")) if p.is_file()]
    for src, dst in sources:
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    leaked = repo / LEAKED_FIXTURE
    if not leaked.exists() and not (repo / ".careops-leak-fixed").exists():
        leaked.write_text(_leaked_message(), encoding="utf-8")
    return repo


def write_into_repo(repo: str | Path, *, tests: str | None = None, workflow: str | None = None) -> list[Path]:
    """Save your artifacts where the pipeline expects them: tests/ and .github/workflows/ci.yml."""
    repo = Path(repo)
    written = []
    for rel, text in ((TESTS_PATH, tests), (WORKFLOW_PATH, workflow)):
        if text is None:
            continue
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        written.append(path)
    return written


# --- exercise: make the leaked fixture synthetic -----------------------------
PID_IDENTIFIERS = {3: "MRN", 13: "phone", 19: "SSN"}


def _segments(message: str) -> list[str]:
    return [s for s in message.replace("\r\n", "\n").replace("\r", "\n").split("\n") if s.strip()]


def pid_fields(message: str) -> list[str]:
    """The fields of the message's PID segment (``pid_fields(m)[3]`` is PID-3), or [] without one."""
    return next((s.split("|") for s in _segments(message) if s.startswith("PID|")), [])


def sample_messages() -> list[str]:
    """The leaked message and variations a real feed has (another event, \\r separators, no SSN, a formatted phone)."""
    base = _leaked_message()
    phone = "-".join(["212", "4" + "87", "31" + "09"])
    other = (base.replace("Okafor^Grace", "Nguyen^Minh").replace("MRN" + "0048" + "2213", "MRN" + "0051" + "0977")
             .replace("ADT^A01", "ADT^A08").replace("EVN|A01", "EVN|A08"))
    no_ssn = "\n".join(seg.rsplit("|", 1)[0] if seg.startswith("PID|") else seg for seg in other.split("\n"))
    formatted = base.replace(phone, "(212) " + phone[4:])
    return [base, no_ssn.replace("\n", "\r").rstrip("\r"), formatted]


@learner_check
def to_synthetic(to_synthetic, *, messages: list[str] | None = None,  # noqa: ANN001 - the learner's function
                       title: str = "Exercise 3: make the production extract synthetic") -> CheckReport:
    """PID-3, PID-13 and PID-19 get synthetic markers; nothing else changes; the result still parses."""
    import re

    from careops.phi import HIGH_PRECISION_KINDS, scan_text

    messages = messages or sample_messages()
    report = CheckReport(title)
    outputs: list[str] = []
    for msg in messages:
        try:
            out = to_synthetic(msg)
        except Exception as exc:  # the learner's code: report, do not crash the check
            report.fail(f"to_synthetic runs on the leaked message: {learner_error(exc)}",
                        hint="test it on the leaked message first: print(to_synthetic(leaked))")
            return report
        outputs.append(out)
    kinds = sorted({type(o).__name__ for o in outputs if not isinstance(o, str)})
    if not report.check(not kinds, "to_synthetic returns the message as text", expected="str", got=kinds or None,
                        hint="return the changed message (a str), do not print it"):
        return report
    findings = [f for out in outputs for f in scan_text(out, kinds=HIGH_PRECISION_KINDS) if not f.synthetic]
    report.check(not findings, "the PHI scan finds no real-looking identifier in the result",
                 got=[f"{f.kind} {f.masked}" for f in findings][:3],
                 hint="replace the whole value, e.g. the phone with 555-0100..555-0199")
    markers = {3: r"SYN-[A-Za-z0-9-]+", 13: r"(\+1 ?)?\(?\d{3}\)?[ .-]?555-01\d\d|555-01\d\d", 19: r"999-\d\d-\d{4}"}
    bad = []
    for out in outputs:
        pid = pid_fields(out)
        for n, pattern in markers.items():
            value = pid[n].split("~")[0].split("^")[0] if len(pid) > n else ""
            if not re.fullmatch(pattern, value) and (n == 3 or value):
                bad.append(f"PID-{n} ({PID_IDENTIFIERS[n]}) = {value!r}")
    report.check(not bad, "PID-3 is a SYN- MRN; PID-13 and PID-19, where present, a 555-01xx phone and a 999- SSN",
                 got=bad[:3],
                 hint="split the PID segment on '|' and replace fields 3, 13 and 19 (the MRN keeps its ^^^… components)")
    changed = []
    for msg, out in zip(messages, outputs):
        a, b = _segments(msg), _segments(out)
        if [s[:3] for s in a] != [s[:3] for s in b]:
            changed.append("the list of segments changed")
            continue
        for sa, sb in zip(a, b):
            fa, fb = sa.split("|"), sb.split("|")
            if sa.startswith("PID|"):
                keep = [i for i in range(max(len(fa), len(fb))) if i not in PID_IDENTIFIERS]
                fa = [fa[i] if i < len(fa) else "" for i in keep]
                fb = [fb[i] if i < len(fb) else "" for i in keep]
                mrn_a, mrn_b = pid_fields(msg)[3].split("^")[1:], pid_fields(out)[3].split("^")[1:]
                if mrn_a != mrn_b:
                    changed.append("the MRN's other components (assigning authority, type)")
            if fa != fb:
                changed.append(f"segment {sa[:3]}")
    report.check(not changed, "every other field is unchanged (the test still tests the same case)",
                 got=sorted(set(changed))[:3], hint="change only the three identifier fields")
    originals = [pid_fields(m)[3].split("^")[0] if len(pid_fields(m)) > 3 else "" for m in messages]
    mrns = [pid_fields(o)[3].split("^")[0] if len(pid_fields(o)) > 3 else "" for o in outputs]
    pairs = set(zip(originals, mrns))
    repeatable = to_synthetic(messages[0]) == outputs[0] and len({o for o, _ in pairs}) == len(pairs)
    distinct = len({n for _, n in pairs}) == len({o for o, _ in pairs})
    report.check(repeatable and distinct and all(m.startswith("SYN-") for m in mrns),
                 "the same patient always gets the same synthetic MRN, different patients different ones",
                 got={"repeatable": repeatable, "distinct": distinct},
                 hint="derive the new MRN from the old one, e.g. SYN- plus a hash (hashlib) of it")
    adt_service = service_module(paths.lab_asset("legacy-adt"))
    parsed = []
    for out in outputs:
        try:
            parsed.append(adt_service.parse(out)[2])
        except adt_service.Nak as nak:
            parsed.append(f"NAK {nak.code}: {nak.reason}")
    want = [adt_service.parse(m)[2] for m in messages]
    report.check(parsed == want, "the legacy service still accepts the message", expected=want, got=parsed,
                 hint="keep the segments separated as they were (\\n or \\r) and the MSH untouched")
    return report


def fix_fixture(repo: str | Path, to_synthetic) -> Path:  # noqa: ANN001 - the learner's function
    """Replace the production extract in the repo by its synthetic version (renamed: it is no longer a ticket copy)."""
    repo = Path(repo)
    leaked = repo / LEAKED_FIXTURE
    target = repo / "tests" / "fixtures" / "admit-a01-cardiology.hl7"
    if leaked.exists():
        target.write_text(to_synthetic(leaked.read_text(encoding="utf-8")), encoding="utf-8")
        leaked.unlink()
        (repo / ".careops-leak-fixed").write_text("the production extract was replaced by a synthetic one\n")
    return target


# --- exercise: the pipeline as code ----------------------------------------------
@learner_check
def workflow(text: str, *, title: str = "Exercise 2: a pipeline the change board accepts") -> CheckReport:
    """The workflow loads (YAML, the official schema, what the runner supports) and passes every course rule."""
    from careops.pipeline import check_policy, workflow_or_problems

    report = CheckReport(title)
    if not report.check(isinstance(text, str) and bool(text.strip()), "the workflow is written",
                        hint="write it in the %%artifact ci_workflow cell and run that cell"):
        return report
    loaded, problems = workflow_or_problems(text, source=WORKFLOW_PATH)
    if not report.check(not problems, "the workflow is valid YAML, matches GitHub's schema and uses what the runner supports",
                        got=problems[:5] or None, hint="each problem names its line; fix them top to bottom"):
        return report
    policy = check_policy(loaded)  # the workflow loaded above, not read again
    for res in policy.results:
        where = "; ".join((f"line {f.line}: " if f.line else "") + f.message for f in res.findings)
        report.check(res.passed, f"{res.rule.id}: {res.rule.title}", got=where or None, hint=res.rule.hint)
    return report


# --- exercise: run it, with the gate ------------------------------------------------
@learner_check
def pipeline_run(run, *, title: str = "Exercise 4: a green pipeline, approved by a person") -> CheckReport:  # noqa: ANN001 - a PipelineRun
    """Every required job passed in one run, the deploy was approved by a named person, and the audit log is intact."""
    from careops.pipeline import PipelineRun
    from careops.pipeline.policy import REQUIRED_JOBS

    report = CheckReport(title)
    if not report.check(isinstance(run, PipelineRun), "`run` is the result of run_pipeline(...)",
                        got=type(run).__name__, hint="run the cells above: run = run_pipeline(...), then approve(run, ...)"):
        return report
    report.check(run.status != "waiting-approval", "the run is not left waiting at the gate", got=run.status,
                 hint="approve it: approve(run, who='Your Name', note='why it may go to staging')")
    status = {job: (run.jobs[job].status if job in run.jobs else "missing") for job in REQUIRED_JOBS}
    failed = {j: s for j, s in status.items() if s != "success"}
    report.check(not failed, "lint, test, phi-scan, build-image and deploy-staging all succeeded", got=failed or None,
                 hint="open the failing job's log in the run summary above; fix the repo, then run the pipeline again")
    approvals = [a for a in getattr(run, "approvals", []) if getattr(a, "decision", "") == "approved"]
    report.check(bool(approvals) and all(str(a.who).strip() for a in approvals),
                 "a named person approved the deployment to staging", got=len(approvals),
                 hint="approve(run, who='Your Name', note=...) -- the record says who, not 'someone'")
    verdict = run.audit.verify()
    report.check(verdict.ok, "the pipeline's audit log verifies (hash chain and MACs intact)",
                 got=verdict.problems[:3] or None, hint="never edit the audit log by hand")
    return report


# --- exercise: the change record ------------------------------------------------------
CHANGE_RECORD_COLUMNS = ["at", "run_id", "environment", "approver", "decision", "note"]


def sample_audit_frame(seed: int = 0):  # noqa: ANN201 - a pandas DataFrame
    """An audit log as AuditLog.to_dataframe() gives it: runs, approvals and a denial, out of order."""
    import pandas as pd

    def row(seq: int, at: str, actor: str, action: str, outcome: str, details: dict) -> dict:
        return {"seq": seq, "at": at, "actor": actor, "role": "approver" if action == "pipeline.approval" else "developer",
                "action": action, "resource": f"pipeline/{details.get('run_id')}", "outcome": outcome,
                "purpose": "", "source": "careops pipeline (local runner)", "details": details,
                "prev": "", "hash": "", "mac": ""}

    runs = [("20261102-0905-a1", "staging", "Dana Reyes", "approved", "tests green; CAB ticket 113"),
            ("20261102-1140-b2", "staging", "Sam Okoye", "denied", "no rollback plan"),
            ("20261103-0810-c3", "staging", "Dana Reyes", "approved", "")]
    if seed:
        runs = [(f"{r}-{seed}", env, f"{who} {seed}", d, n) for r, env, who, d, n in runs]
    rows, seq = [], 0
    for i, (run_id, env, who, decision, note) in enumerate(runs):
        day = f"2026-11-0{2 + i // 2}T{9 + i:02d}:"
        seq += 1
        rows.append(row(seq, day + "05:00Z", "ci-bot", "pipeline.run", "success" if decision == "approved" else "failure",
                        {"run_id": run_id, "workflow": "adt-service-ci"}))
        seq += 1
        rows.append(row(seq, day + "01:30Z", who, "pipeline.approval", decision,
                        {"run_id": run_id, "job": "deploy-staging", "environment": env, "note": note}))
    rows.append(row(seq + 1, "2026-11-01T08:00:00Z", "Ana Lind", "lab.reset", "success", {"lab": "ci"}))
    frame = pd.DataFrame(rows[::-1])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


#: The right change record of the practice log (``sample_audit_frame()``), worked out ahead, as text per column.
#: Only the practice log's answer ships with the toolkit; the hidden logs' answers live with the grader
#: (grading/references/ci_pipeline.py, read on the instructor's host).
PRACTICE_CHANGE_RECORD: list[dict[str, str]] = [
    {"at": "2026-11-02 09:01:30+00:00", "run_id": "20261102-0905-a1", "environment": "staging",
     "approver": "Dana Reyes", "decision": "approved", "note": "tests green; CAB ticket 113"},
    {"at": "2026-11-02 10:01:30+00:00", "run_id": "20261102-1140-b2", "environment": "staging",
     "approver": "Sam Okoye", "decision": "denied", "note": "no rollback plan"},
    {"at": "2026-11-03 11:01:30+00:00", "run_id": "20261103-0810-c3", "environment": "staging",
     "approver": "Dana Reyes", "decision": "approved", "note": ""},
]


@learner_check
def change_record(change_record, *, cases: list | None = None,  # noqa: ANN001 - the learner's function
                  title: str = "Exercise 5: the change record for the advisory board") -> CheckReport:
    """One row per approval decision (approved or denied), the agreed columns, oldest first.

    ``cases`` are ``(audit frame, right record)`` pairs (the record as rows or a DataFrame); the default is the
    practice log and its answer. Hidden tests bring their own, with answers from the grader's references.
    """
    import pandas as pd

    cases = cases or [(sample_audit_frame(), PRACTICE_CHANGE_RECORD)]
    report = CheckReport(title)
    for frame, right in cases:
        try:
            got = change_record(frame.copy())
        except Exception as exc:  # the learner's code
            report.fail(f"change_record runs on an audit log: {learner_error(exc)}",
                        hint="try it on the sample: change_record(sample_audit_frame())")
            return report
        want = pd.DataFrame(right, columns=CHANGE_RECORD_COLUMNS).astype(str)
        if not report.check(isinstance(got, pd.DataFrame), "returns a pandas DataFrame", got=type(got).__name__):
            return report
        report.check(list(got.columns) == CHANGE_RECORD_COLUMNS, "the columns are " + ", ".join(CHANGE_RECORD_COLUMNS),
                     expected=CHANGE_RECORD_COLUMNS, got=list(got.columns),
                     hint="build the frame with exactly these columns, in this order")
        report.check(len(got) == len(want), "one row per approval decision, denied ones included",
                     expected=len(want), got=len(got),
                     hint="filter action == 'pipeline.approval'; a denial belongs in the record too")
        if list(got.columns) == CHANGE_RECORD_COLUMNS and len(got) == len(want):
            g = got.reset_index(drop=True)
            report.check(g["at"].is_monotonic_increasing, "oldest decision first",
                         hint="sort_values('at')")
            same = all(list(g[c].astype(str)) == list(want[c]) for c in CHANGE_RECORD_COLUMNS)
            report.check(same, "who decided what, for which run and environment, matches the log",
                         hint="run_id, environment and note are in the details dict; approver is the actor; "
                              "decision is the outcome")
        if not report.passed:
            break
    return report


@live_check("ci_pipeline.pipeline_run")
def live_pipeline_run(lab, artifacts: dict[str, str]) -> dict:  # noqa: ANN001 - the grader's Lab
    """For the sandboxed grader (exercise 4): run the learner's workflow and tests in trusted code.

    A fresh repo copy without the production extract (exercise 3 is graded on
    its own), the learner's two artifacts, and an approval in the grader's name;
    the learner's tests run only inside the pipeline's job containers.
    """
    import tempfile
    import uuid

    from careops.lab import Lab
    from careops.pipeline import run_pipeline

    tmp = Path(tempfile.mkdtemp(prefix="careops-grade-ci-"))
    repo = prepare_repo(tmp / REPO_NAME)
    (repo / LEAKED_FIXTURE).unlink(missing_ok=True)
    write_into_repo(repo, tests=artifacts["unit_tests"], workflow=artifacts["ci_workflow"])
    pipeline_lab = Lab(f"grade-ci-{uuid.uuid4().hex[:6]}", learner=lab.learner, workdir=tmp, reclaim=False)
    from careops.pipeline import remove_pipeline_images

    try:
        run = run_pipeline(WORKFLOW_PATH, repo, lab=pipeline_lab, audit=tmp / "pipeline-audit.jsonl",
                           approve="careops grader", progress=False, on_log=lambda *a: None)
    finally:
        pipeline_lab.close()
        remove_pipeline_images(repo)  # the run's record is kept; its image is not needed any more
    return {"run": run}


def service_module(repo: str | Path):  # noqa: ANN201 - a module
    """The ``adt_service.py`` of a repo folder, loaded fresh from its file (sys.path stays as it is)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("adt_service", Path(repo) / "adt_service.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module
