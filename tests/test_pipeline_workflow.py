"""careops.pipeline.workflow + expressions: loading, schema, supported subset, needs graph, ${{ }}."""
from __future__ import annotations

from pathlib import Path

import pytest

from careops.pipeline.expressions import (
    Context,
    ExpressionError,
    evaluate,
    evaluate_condition,
    interpolate,
)
from careops.pipeline.runner import parse_key_values
from careops.pipeline.workflow import (
    WorkflowError,
    load_workflow,
    validate_text,
    workflow_schema,
)

FIXTURES = Path(__file__).parent / "fixtures" / "pipeline"
LABS = Path(__file__).resolve().parents[1] / "labs" / "ci-pipeline"

MINIMAL = """\
name: minimal
on: push
jobs:
  b:
    runs-on: ubuntu-latest
    needs: a
    steps:
      - run: echo b
  a:
    runs-on: ubuntu-latest
    timeout-minutes: 2
    steps:
      - run: echo a
"""


def problems_of(path: Path) -> list[str]:
    with pytest.raises(WorkflowError) as info:
        load_workflow(path)
    return info.value.problems


def test_valid_workflow_loads_with_needs_order_and_line_numbers():
    wf = load_workflow("minimal.yml", text=MINIMAL)
    assert wf.order() == ["a", "b"]  # a first although b is written first
    assert wf.jobs["b"].needs == ["a"]
    assert wf.jobs["a"].timeout_minutes == 2
    assert wf.line_of("jobs", "a", "timeout-minutes") == 11
    assert wf.jobs["a"].steps[0].line == 13
    assert "valid" in wf._repr_html_()


def test_on_key_stays_a_string_as_in_yaml_1_2():
    wf = load_workflow("minimal.yml", text=MINIMAL)
    assert "on" in wf.data and True not in wf.data


def test_reference_and_starter_workflows_are_valid():
    reference = Path(__file__).resolve().parents[1] / "grading" / "references" / "ci-pipeline" / "ci.yml"
    for path in (reference, LABS / "starter-ci.yml"):
        wf = load_workflow(path)
        assert wf.order()[0] == "lint"


def test_not_yaml_names_the_line():
    (problem,) = problems_of(FIXTURES / "not-yaml.yml")
    assert "not valid YAML" in problem and "line " in problem


def test_cycle_is_named_with_its_jobs_and_line():
    (problem,) = problems_of(FIXTURES / "cycle.yml")
    assert "cycle" in problem and "line 11" in problem
    for job in ("lint", "test", "deploy"):
        assert job in problem


def test_missing_job_is_named_with_its_line():
    (problem,) = problems_of(FIXTURES / "missing-job.yml")
    assert "'unit-tests'" in problem and "line 10" in problem


def test_unsupported_key_is_named_with_its_line():
    (problem,) = problems_of(FIXTURES / "unsupported-key.yml")
    assert "unsupported key 'strategy'" in problem and "line 6" in problem


def test_unsupported_uses_lists_what_is_supported():
    (problem,) = problems_of(FIXTURES / "unsupported-uses.yml")
    assert "actions/setup-python@v5" in problem and "line 8" in problem
    assert "actions/checkout@v4" in problem and "careops/build-image@v1" in problem


def test_schema_error_names_the_unknown_key_and_line():
    (problem,) = problems_of(FIXTURES / "schema-typo.yml")
    assert "'step'" in problem and "line 6" in problem and "schema" in problem


def test_every_problem_is_reported_at_once():
    text = MINIMAL.replace("    needs: a\n", "    needs: [a, ghost]\n    services: {}\n")
    problems = validate_text(text)
    assert any("ghost" in p for p in problems) and any("'services'" in p for p in problems)


def test_unknown_action_input_and_shell_are_refused():
    text = MINIMAL.replace("      - run: echo a\n", "      - uses: actions/checkout@v4\n        with:\n"
                           "          token: abc\n      - run: echo a\n        shell: pwsh\n")
    problems = validate_text(text)
    assert any("no input 'token'" in p for p in problems)
    assert any("shell 'pwsh'" in p for p in problems)


def test_duplicate_key_and_empty_file_and_missing_file():
    with pytest.raises(WorkflowError, match="appears twice"):
        load_workflow("dup.yml", text=MINIMAL.replace("    timeout-minutes: 2\n", "    timeout-minutes: 2\n"
                                                      "    timeout-minutes: 3\n"))
    with pytest.raises(WorkflowError, match="empty"):
        load_workflow("empty.yml", text="")
    with pytest.raises(WorkflowError, match="does not exist"):
        load_workflow(FIXTURES / "nope.yml")


def test_valid_text_has_no_problems():
    assert validate_text(MINIMAL) == []


def test_schema_is_the_vendored_github_one():
    assert "github-workflow" in workflow_schema()["$id"]


# -- expressions --------------------------------------------------------------------------
def ctx(status: str = "success") -> Context:
    return Context(env={"NAME": "ward"}, github={"event_name": "push"},
                   steps={"s1": {"outcome": "failure", "conclusion": "success", "outputs": {"x": "7"}}},
                   needs={"build": {"result": "success", "outputs": {"image": "img:1"}}}, job_status=status)


@pytest.mark.parametrize("condition,status,expected", [
    (None, "success", True), (None, "failure", False),
    ("success()", "failure", False), ("failure()", "failure", True), ("failure()", "success", False),
    ("always()", "failure", True), ("${{ always() }}", "failure", True), ("cancelled()", "success", False),
    ("github.event_name == 'push'", "success", True), ("github.event_name == 'push'", "failure", False),
    ("env.NAME != 'ward'", "success", False), ("!(env.NAME == 'WARD')", "success", False),
    ("steps.s1.outcome == 'failure' && always()", "failure", True),
    ("contains(needs.build.outputs.image, 'img')", "success", True),
    ("startsWith(env.NAME, 'wa') || false", "success", True), (False, "success", False),
])
def test_conditions(condition, status, expected):
    assert evaluate_condition(condition, ctx(status)) is expected


def test_interpolation_and_values():
    c = ctx()
    assert interpolate("image ${{ needs.build.outputs.image }} x=${{ steps.s1.outputs.x }}", c) == "image img:1 x=7"
    assert interpolate({"a": ["${{ env.NAME }}"]}, c) == {"a": ["ward"]}
    assert evaluate("format('{0}-{1}', env.NAME, 3)", c) == "ward-3"
    assert evaluate("secrets.TOKEN", c) is None  # the local runner holds no secrets
    assert interpolate("[${{ secrets.TOKEN }}]", c) == "[]"


@pytest.mark.parametrize("bad", ["hashFiles('x')", "env.NAME ==", "unknown.x", "'open", "toJSON(github)"])
def test_unsupported_expressions_are_clear_errors(bad):
    with pytest.raises(ExpressionError):
        evaluate(bad, ctx())


def test_github_output_format():
    assert parse_key_values("a=1\nb<<EOF\nline1\nline2\nEOF\nc=x=y\n") == {"a": "1", "b": "line1\nline2", "c": "x=y"}


def test_unsupported_expressions_are_refused_before_running():
    text = MINIMAL.replace("      - run: echo a\n", "      - run: echo ${{ hashFiles('x') }}\n"
                           "      - if: steps.x.outcome = 'success'\n        run: echo b\n")
    problems = validate_text(text)
    assert any("hashFiles" in p and "line 13" in p for p in problems)
    assert any("line 14" in p and ".if" in p for p in problems)
