"""careops.pipeline.policy: every course rule passes on the reference and fails, alone, on one broken copy."""
from __future__ import annotations

from pathlib import Path

import pytest

from careops.apps.pipeline import validate_main
from careops.pipeline.policy import RULES, check_policy

SOLUTION = (Path(__file__).resolve().parents[1] / "grading" / "references" / "ci-pipeline" / "ci.yml").read_text()
STARTER = Path(__file__).resolve().parents[1] / "labs" / "ci-pipeline" / "starter-ci.yml"


PHI_SCAN = "careops/phi-scan@847b9e86d63125160bd94ce7ed75a35359b341e0 # v1"


def broken(old: str, new: str) -> str:
    assert SOLUTION.count(old) == 1, old
    return SOLUTION.replace(old, new)


#: rule id -> a copy of the reference workflow that breaks that rule only
BREAKS = {
    "required-jobs": broken("  phi-scan:\n    needs: test\n", "  privacy-scan:\n    needs: test\n")
    .replace("needs: phi-scan", "needs: privacy-scan"),
    "job-order": broken("  test:\n    needs: lint\n", "  test:\n"),
    "timeouts": broken("    needs: phi-scan\n    runs-on: ubuntu-latest\n    timeout-minutes: 15\n",
                       "    needs: phi-scan\n    runs-on: ubuntu-latest\n"),
    "least-privilege": broken("permissions:\n  contents: read\n", "permissions: write-all\n"),
    "job-permissions": broken("  lint:\n    runs-on: ubuntu-latest\n",
                              "  lint:\n    permissions:\n      contents: write\n    runs-on: ubuntu-latest\n"),
    "deploy-approval": broken("    environment: staging\n", ""),
    "no-secret-echo": broken("      - name: Unit tests\n",
                             "      - name: Show the token\n        env:\n          TOKEN: ${{ secrets.DEPLOY_TOKEN }}\n"
                             "        run: echo \"token is $TOKEN\"\n      - name: Unit tests\n"),
    "pinned-actions": broken("  lint:\n    runs-on: ubuntu-latest\n    timeout-minutes: 5\n    steps:\n"
                             "      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2\n",
                             "  lint:\n    runs-on: ubuntu-latest\n    timeout-minutes: 5\n    steps:\n"
                             "      - uses: actions/checkout@v4\n"),
    "phi-gate": broken(f"        uses: {PHI_SCAN}\n        with:\n          paths: tests/fixtures logs\n",
                       f"        uses: {PHI_SCAN}\n        continue-on-error: true\n        with:\n"
                       "          paths: tests/fixtures logs\n"),
    "dockerfile-lint": broken("      - name: Dockerfile rules (hadolint)\n        run: hadolint Dockerfile\n", ""),
    "image-scan": broken("      - name: Scan the image (non-root, no secrets, no PHI)\n"
                         "        uses: careops/scan-image@84ce136e9dc7c46fe69ab9acc76305d5b84e9932 # v1\n"
                         "        with:\n          image: ${{ steps.build.outputs.image }}\n          phi-paths: /opt\n",
                         ""),
}


def test_every_rule_has_a_breaking_example():
    assert set(BREAKS) == {r.id for r in RULES}


def test_reference_workflow_passes_every_rule():
    report = check_policy("solution-ci.yml", text=SOLUTION)
    assert report.ok, str(report)
    assert "all 11 rules pass" in str(report)


@pytest.mark.parametrize("rule_id", list(BREAKS))
def test_each_rule_fails_alone_with_its_own_message(rule_id):
    report = check_policy(f"{rule_id}.yml", text=BREAKS[rule_id])
    assert [r.rule.id for r in report.failed] == [rule_id], str(report)
    result = report.result(rule_id)
    assert result.findings and all(f.line for f in result.findings)
    text = str(report)
    assert f"[FAIL] {rule_id}" in text and f"hint: {result.rule.hint}" in text
    assert rule_id in report._repr_html_()


def test_only_a_full_commit_sha_pins_an_action_and_the_hint_names_the_vendored_commit():
    from careops.pipeline.actions import ACTIONS

    for ref, words in [("v4", "a tag, which can be moved"), ("main", "a branch"), ("11bd719", "a short commit SHA")]:
        text = SOLUTION.replace("actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683", f"actions/checkout@{ref}", 1)
        [finding] = check_policy("x.yml", text=text).result("pinned-actions").findings
        assert words in finding.message and ACTIONS["actions/checkout"].pinned in finding.message, finding.message
    rules = {r.id: r for r in RULES}
    assert ACTIONS["careops/phi-scan"].commit in rules["phi-gate"].hint
    assert ACTIONS["careops/scan-image"].commit in rules["image-scan"].hint
    assert ACTIONS["actions/checkout"].commit in rules["pinned-actions"].hint


def test_secret_pasted_into_a_script_is_caught():
    text = broken("        run: ruff check --select E9,F63,F7,F82 .\n",
                  "        run: ruff check --select E9,F63,F7,F82 . --token ${{ secrets.T }}\n")
    assert [r.rule.id for r in check_policy("x.yml", text=text).failed] == ["no-secret-echo"]


def test_read_all_is_too_broad_and_none_is_fine():
    assert not check_policy("x.yml", text=broken("permissions:\n  contents: read\n", "permissions: read-all\n")).ok
    assert check_policy("x.yml", text=broken("permissions:\n  contents: read\n", "permissions: {}\n")).ok


def test_starter_breaks_the_rules_the_learner_must_fix():
    failed = {r.rule.id for r in check_policy(STARTER).failed}
    assert failed == {"job-order", "timeouts", "least-privilege", "deploy-approval", "phi-gate",
                      "dockerfile-lint", "image-scan"}


def test_validate_command_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.yml"
    good.write_text(SOLUTION)
    assert validate_main(workflow=good) == 0
    assert "all 11 rules pass" in capsys.readouterr().out
    assert validate_main(workflow=STARTER) == 1
    assert "[FAIL] deploy-approval" in capsys.readouterr().out
    assert validate_main(workflow=STARTER, policy=False) == 0
    bad = tmp_path / "bad.yml"
    bad.write_text(SOLUTION.replace("    timeout-minutes: 5\n", "    timeout-minutes: 5\n    services: {}\n", 1))
    assert validate_main(workflow=bad) == 2
    assert "unsupported key 'services'" in capsys.readouterr().err


def test_policy_as_a_learner_check_report():
    good = check_policy("good.yml", text=SOLUTION).as_check_report()
    assert good.passed and len(good.criteria) == len(RULES)
    bad = check_policy(STARTER).as_check_report()
    failed = [c for c in bad.criteria if not c.passed]
    assert len(failed) == 7 and all(c.hint for c in failed)
    assert any(c.message.startswith("deploy-approval") and "line " in c.message for c in failed)
    with pytest.raises(AssertionError, match="deploy-approval"):
        bad.raise_for_failures()


def test_the_learner_check_loads_the_workflow_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validating and then judging the rules read the one loaded workflow, not the text a second time."""
    import sys

    from careops.checks import ci_pipeline
    from careops.pipeline import workflow as workflow_module
    from careops.pipeline.workflow import workflow_or_problems

    original = workflow_module.load_workflow
    loads: list[object] = []

    def counting(*args: object, **kwargs: object) -> object:
        loads.append(args)
        return original(*args, **kwargs)

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("careops") and getattr(module, "load_workflow", None) is original:
            monkeypatch.setattr(module, "load_workflow", counting)
    assert ci_pipeline.workflow.report(SOLUTION).passed
    assert len(loads) == 1
    loaded, problems = workflow_or_problems(SOLUTION)
    assert problems == [] and loaded is not None and "deploy-staging" in loaded.jobs
    assert workflow_or_problems("jobs: [\n")[0] is None
