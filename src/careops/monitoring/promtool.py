"""promtool, Prometheus' own checker, run on a learner's rule file; its errors told with the line they are on.

``promtool check rules`` validates a rule file (YAML, PromQL, names, durations);
``promtool test rules`` evaluates the rules over recorded series and compares
what they produce with expectations. Both run in a ``careops/prometheus``
container (the same promtool as the Prometheus that runs the rules). Their
output is written for Prometheus operators ("5:15: group "adt", rule 1 ...",
"field foo not found in type rulefmt.RuleNode"); :class:`RuleProblem` says the
same to a learner: the line, what is wrong, what to do.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from careops.errors import MonitoringError, RulesError
from careops.images.catalog import PROMETHEUS_IMAGE
from careops.lab import Lab
from careops.lab.container import LabContainer
from careops.monitoring.prometheus import PROMETHEUS_UID
from careops.report import theme
from careops.router.yamlpos import load_located

WORK_DIR = "/tmp/promtool"
RULES_FILE = "rules.yml"


@dataclass(frozen=True)
class RuleProblem:
    """One thing wrong with a rule file: its line (None: the whole file), promtool's words, and a hint."""

    line: int | None
    message: str
    hint: str = ""

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class Rule:
    kind: str  # "alert" | "record"
    name: str
    group: str
    line: int | None
    expr: str
    labels: dict[str, str] = field(default_factory=dict)
    for_: str = ""


@dataclass(frozen=True)
class RuleFile:
    """A rule file read as YAML (before promtool): its rules with their lines."""

    text: str
    rules: tuple[Rule, ...]
    group_names: tuple[str, ...]
    group_lines: tuple[int | None, ...]
    rule_lines: tuple[tuple[int | None, ...], ...]

    @property
    def alerts(self) -> list[str]:
        return [r.name for r in self.rules if r.kind == "alert"]

    @property
    def records(self) -> list[str]:
        return [r.name for r in self.rules if r.kind == "record"]

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)


def read_rules(text: str) -> RuleFile:
    """The rule file's groups and rules with their lines; RulesError (with the line) when it is not a rule file."""
    try:
        doc = load_located(text, what="your rules", error=MonitoringError)
    except MonitoringError as exc:
        raise RulesError(exc.message, problems=[RuleProblem(_line_in(exc.message), exc.message, exc.fix or "")],
                         fix=exc.fix) from None
    data = doc.data
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, list):
        problem = RuleProblem(1, "a rule file starts with 'groups:', a list of rule groups",
                              "groups:\n  - name: adt\n    rules:\n      - alert: ...")
        raise RulesError(f"your rules: {problem}", problems=[problem], fix=problem.hint)
    rules, names, group_lines, rule_lines = [], [], [], []
    for g, group in enumerate(groups):
        names.append(str(group.get("name", "")) if isinstance(group, dict) else "")
        group_lines.append(doc.lines.get(("groups", g)))
        lines = []
        items = group.get("rules") if isinstance(group, dict) else None
        for r, rule in enumerate(items if isinstance(items, list) else []):
            line = doc.lines.get(("groups", g, "rules", r))
            lines.append(line)
            if isinstance(rule, dict):
                kind = "alert" if "alert" in rule else "record"
                labels = rule.get("labels") if isinstance(rule.get("labels"), dict) else {}
                rules.append(Rule(kind, str(rule.get(kind, "")), str(group.get("name", "")), line,
                                  str(rule.get("expr", "")), {str(k): str(v) for k, v in labels.items()},
                                  str(rule.get("for", ""))))
        rule_lines.append(tuple(lines))
    return RuleFile(text, tuple(rules), tuple(names), tuple(group_lines), tuple(rule_lines))


def _line_in(message: str) -> int | None:
    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else None


# -- promtool's words, for a learner -------------------------------------------------------

_HINTS: list[tuple[str, str]] = [
    ("could not parse expression", "PromQL: check the brackets, quotes and operators of expr on that line "
                                   "(try the expression in Prometheus' web UI first)"),
    ("not a valid duration", "durations are a number and a unit without a space: 30s, 5m, 1h"),
    ("in recording rule", "a recording rule has record, expr and labels only; for and annotations belong to alerts"),
    ("must be set in rule", "every rule needs expr (and either record or alert)"),
    ("is repeated in the same file", "give each group its own name"),
    ("invalid recording rule name", "a recorded series' name looks like level:metric:operation, e.g. "
                                    "adt:admissions_bad_ratio:rate5m"),
    ("invalid alert name", "an alert name is one word (letters, digits, _), e.g. ADTFeedSilent"),
    ("not found in type rulefmt.RuleNode", "a rule has: record or alert, expr, for, labels, annotations"),
    ("not found in type rulefmt.RuleGroup", "a group has: name, interval, rules"),
    ("not found in type rulefmt.RuleGroups", "the file has one key, groups"),
    ("yaml:", "check the indentation (spaces, not tabs) and the 'key: value' colons"),
]


def _hint(message: str) -> str:
    return next((h for pattern, h in _HINTS if pattern in message), "")


def _plain(message: str) -> str:
    m = re.match(r"line \d+: field (\S+) not found in type rulefmt\.(\w+)", message)
    if m:
        where = {"RuleNode": "a rule", "RuleGroup": "a group", "RuleGroups": "the file"}.get(m.group(2), m.group(2))
        return f"unknown key {m.group(1)!r} in {where}"
    return message


def problems_from_check(output: str, rules: RuleFile, filename: str = RULES_FILE) -> list[RuleProblem]:
    """promtool check rules' error lines as problems, each with the line of the rule file it is about."""
    found: list[RuleProblem] = []
    prefix = f"{filename}: "
    for raw in output.splitlines():
        text = raw.strip()
        cont = re.match(r"^line (\d+): (.*)$", text)
        if cont and raw.startswith("  ") and not raw.strip().startswith("FAILED"):  # yaml: unmarshal errors list
            msg = _plain(text)
            found.append(RuleProblem(int(cont.group(1)), msg, _hint(text)))
            continue
        if not text.startswith(prefix):
            continue
        body = text[len(prefix):]
        line: int | None = None
        m = re.match(r"^(\d+):(\d+): (.*)$", body)
        if m:
            line, body = int(m.group(1)) or None, m.group(3)
        if body.startswith("yaml: unmarshal errors:"):
            continue  # the errors follow on their own lines
        ym = re.match(r"^yaml: line (\d+): (.*)$", body)
        if ym:
            line, body = int(ym.group(1)), f"not valid YAML: {ym.group(2)}"
        if line is None:
            line = _locate(body, rules)
        message = re.sub(r'^group "([^"]*)", rule (\d+), ', r'group \1, rule \2: ', body)
        found.append(RuleProblem(line, message, _hint(body)))
    return found


def _locate(message: str, rules: RuleFile) -> int | None:
    """The line a message without one is about: its group/rule, or the line holding the value it quotes."""
    m = re.search(r'group "([^"]*)", rule (\d+)', message)
    if m:
        if m.group(1) in rules.group_names:
            g, r = rules.group_names.index(m.group(1)), int(m.group(2)) - 1
            if g < len(rules.rule_lines) and 0 <= r < len(rules.rule_lines[g]):
                return rules.rule_lines[g][r] or rules.group_lines[g]
    m = re.search(r'"([^"]+)"', message) or re.search(r"'([^']+)'", message)
    if m:
        for number, text in enumerate(rules.text.splitlines(), start=1):
            if m.group(1) in text:
                return number
    return None


def _problems_error(problems: list[RuleProblem]) -> RulesError:
    listed = "\n  ".join(str(p) for p in problems)
    first = next((p.hint for p in problems if p.hint), "fix the line named, then run the cell again")
    return RulesError(f"promtool check rules found {len(problems)} problem(s) in your rules:\n  {listed}",
                      problems=problems, fix=first)


# -- running promtool ----------------------------------------------------------------------

@dataclass
class ExprFailure:
    """One promql_expr_test promtool reported as failed: the expression, when, what was expected and got."""

    expr: str
    time: str
    expected: str
    got: str


class Promtool:
    """promtool in a lab container; ``with Promtool(lab) as tool:`` (no lab: a throwaway lab of its own)."""

    def __init__(self, lab: Lab | None = None) -> None:
        self._own = lab is None
        self.lab = lab if lab is not None else Lab(f"promtool-{uuid.uuid4().hex[:6]}", reclaim=False)
        self.container: LabContainer | None = None

    def __enter__(self) -> "Promtool":
        self.container = self.lab.run(PROMETHEUS_IMAGE, name="promtool", command=["sleep", "infinity"],
                                      memory="256m", cpus=1.0, pids=64)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.container is not None:
                self.container.remove()
        finally:
            if self._own:
                self.lab.close()

    def _run(self, files: dict[str, str], command: str, timeout: float = 120) -> tuple[int, str]:
        assert self.container is not None, "use Promtool in a with block"
        work = f"{WORK_DIR}-{uuid.uuid4().hex[:6]}"
        self.container.put_files("/tmp", {f"{work[5:]}/{n}": t.encode() for n, t in files.items()}, mode=0o644,
                                 uid=PROMETHEUS_UID, gid=PROMETHEUS_UID)
        res = self.container.exec(["sh", "-c", f"cd {work} && {command} 2>&1; echo \"exit=$?\""], timeout=timeout,
                                  check=False)
        out = res.output.rstrip()
        code = int(out.rsplit("exit=", 1)[1]) if "exit=" in out else res.exit_code
        return code, out.rsplit("exit=", 1)[0]

    def check_rules(self, text: str) -> list[RuleProblem]:
        """``promtool check rules`` on ``text``: [] when it passes, else every problem with its line."""
        rules = read_rules(text)  # YAML errors are found here, with PyYAML's (exact) line
        code, out = self._run({RULES_FILE: text}, f"promtool check rules {RULES_FILE}")
        if code == 0:
            return []
        return problems_from_check(out, rules) or [RuleProblem(None, out.strip()[-500:], "")]

    def test_rules(self, text: str, tests: dict[str, str]) -> dict[str, list[ExprFailure]]:
        """``promtool test rules`` of ``tests`` (file name -> promtool test YAML, each naming rules.yml) against
        ``text``: the failed expressions of each test file ([] when it passed)."""
        files = {RULES_FILE: text, **tests}
        code, out = self._run(files, "promtool test rules " + " ".join(tests))
        results = parse_test_output(out, list(tests))
        if code != 0 and not any(results.values()):
            raise MonitoringError(f"promtool test rules failed without naming a failed test:\n{out.strip()[-800:]}",
                                  fix="check the rules with promtool check rules first")
        return results


def parse_test_output(output: str, files: list[str]) -> dict[str, list[ExprFailure]]:
    """promtool test rules' output, per test file: the failed expressions (exp/got), or [] when it passed."""
    results: dict[str, list[ExprFailure]] = {f: [] for f in files}
    current: str | None = None
    pending: dict[str, str] = {}
    for raw in output.splitlines():
        line = raw.strip()
        m = re.match(r"^Unit Testing:\s+(\S+)$", line)
        if m:
            current = m.group(1) if m.group(1) in results else None
            continue
        if current is None:
            continue
        m = re.match(r'^expr: "(.*)", time: (\S+?),?$', line)
        if m:
            pending = {"expr": m.group(1).replace('\\"', '"'), "time": m.group(2)}
            continue
        if line.startswith("exp:") and pending:
            pending["expected"] = line[4:].strip()
        elif line.startswith("got:") and pending:
            results[current].append(ExprFailure(pending["expr"], pending["time"], pending.get("expected", ""),
                                                line[4:].strip()))
            pending = {}
        elif line.startswith(("FAILED", "  ")) and "could not" in line:
            results[current].append(ExprFailure("", "", "", line))
    return results


def check_rules(text: str, *, lab: Lab | None = None) -> list[RuleProblem]:
    """``promtool check rules`` on ``text`` (in ``lab``, or a throwaway lab): the problems, [] when none."""
    try:
        with Promtool(lab) as tool:
            return tool.check_rules(text)
    except RulesError as exc:
        return list(exc.problems)


def validate_rules(text: str, *, lab: Lab | None = None) -> RuleFile:
    """The rule file, read, when promtool accepts it; otherwise RulesError naming every problem's line."""
    problems = check_rules(text, lab=lab)
    if problems:
        raise _problems_error(problems)
    return read_rules(text)


def problems_html(problems: list[RuleProblem]) -> str:
    return theme.items((False, theme.esc(str(p)) + theme.hint(p.hint)) for p in problems)


__all__ = ["ExprFailure", "Promtool", "Rule", "RuleFile", "RuleProblem", "check_rules", "parse_test_output",
           "problems_from_check", "read_rules", "validate_rules"]
