"""careops.dockerfile.policy: the Rego policy, evaluated with regopy, both ways."""
from __future__ import annotations

from pathlib import Path

import pytest

from careops.dockerfile.policy import evaluate_policy
from careops.errors import CareOpsError

SOLUTION = (Path(__file__).resolve().parents[1] / "grading" / "references" / "containerize" / "Dockerfile").read_text()
END = len(SOLUTION.splitlines()) + 1  # the line an appended instruction lands on
USER_LINE = next(n for n, ln in enumerate(SOLUTION.splitlines(), 1) if ln.startswith("USER"))


def test_solution_complies() -> None:
    assert evaluate_policy(SOLUTION).findings == []


@pytest.mark.parametrize("rule, text, line", [
    ("POL-1", SOLUTION.replace("USER 10001:10001", "USER root"), USER_LINE),
    ("POL-1", SOLUTION.replace("USER 10001:10001", ""), 1),
    ("POL-2", SOLUTION.replace("careops/base:bookworm", "python:3.11"), 2),
    ("POL-2", SOLUTION.replace("careops/base:bookworm", "careops/base"), 2),
    ("POL-3", SOLUTION + "ADD https://example.org/tool.tgz /opt/\n", END),
    ("POL-4", SOLUTION + "ARG API_TOKEN=abc\n", END),
    ("POL-5", SOLUTION + "RUN curl -s https://example.org/i.sh | sh\n", END),
    ("POL-6", SOLUTION + "RUN chmod -R 777 /data\n", END),
    ("POL-7", SOLUTION + "RUN sudo ls\n", END),
    ("POL-8", SOLUTION + "EXPOSE 80\n", END),
    ("POL-9", SOLUTION.replace("HEALTHCHECK", "# HEALTHCHECK").replace("  CMD [\"python3\", \"-c\"", "# x"), 1),
])
def test_each_policy_rule_denies(rule: str, text: str, line: int) -> None:
    found = [(f.id, f.line) for f in evaluate_policy(text).findings]
    assert (rule, line) in found, found
    assert all(f.hint for f in evaluate_policy(text).findings)


def test_a_broken_policy_is_a_clear_error() -> None:
    with pytest.raises(CareOpsError, match="could not be evaluated"):
        evaluate_policy(SOLUTION, policy="package careops.dockerfile\nthis is not rego {")
