"""careops.dockerfile.rules: the solution passes every rule; each rule fails on its own broken variant."""
from __future__ import annotations

from pathlib import Path

import pytest

from careops.dockerfile.rules import RULES, evaluate, static_report

SOLUTION = Path(__file__).resolve().parents[1] / "grading" / "references" / "containerize"
DOCKERFILE = (SOLUTION / "Dockerfile").read_text()
IGNORE = (SOLUTION / ".dockerignore").read_text()


def test_solution_passes_every_rule() -> None:
    report = static_report(DOCKERFILE, IGNORE)
    assert report.passed, str(report)
    assert len(report.criteria) == len(RULES) + 1


BROKEN = {
    "DF01": (DOCKERFILE.replace("FROM careops/base:bookworm", "FROM careops/lab-runtime:latest"), IGNORE),
    "DF02": (DOCKERFILE.replace("FROM careops/base:bookworm", "FROM python:3.11-slim"), IGNORE),
    "DF03": (DOCKERFILE.replace("USER 10001:10001", "USER root"), IGNORE),
    "DF04": (DOCKERFILE.split("HEALTHCHECK")[0] + 'CMD ["python3", "/app/adt_service.py"]\n', IGNORE),
    "DF05": (DOCKERFILE.replace('CMD ["python3", "/app/adt_service.py"]',
                                'CMD ["python3", "/app/adt_service.py", "--config", "/etc/adt.ini"]'), IGNORE),
    "DF06": (DOCKERFILE.replace('VOLUME ["/data"]', ""), IGNORE),
    "DF07": (DOCKERFILE.replace("ADT_LOG=-", "ADT_LOG=/var/log/adt.log"), IGNORE),
    "DF08": (DOCKERFILE.replace('CMD ["python3", "/app/adt_service.py"]', "CMD python3 /app/adt_service.py"), IGNORE),
    "DF09": (DOCKERFILE.replace('CMD ["python3", "/app/adt_service.py"]', 'CMD ["sleep", "infinity"]'), IGNORE),
    "DF10": (DOCKERFILE.replace("ENV ADT_DB", "ENV ADT_ADMIN_PASSWORD=changeme ADT_DB"), IGNORE),
    "DF11": (DOCKERFILE.replace("COPY --chown=root:root", "ADD"), IGNORE),
    "DF12": (DOCKERFILE, "secrets/\n"),
    "DF13": (DOCKERFILE.replace("EXPOSE 2575 8081", "EXPOSE 8081"), IGNORE),
}


@pytest.mark.parametrize("rule_id", [r.id for r in RULES])
def test_each_rule_fails_on_its_broken_variant_only(rule_id: str) -> None:
    text, ignore = BROKEN[rule_id]
    failed = [rule.id for rule, passed, _ in evaluate(text, ignore) if not passed]
    assert rule_id in failed
    assert set(failed) <= {rule_id, "DF01", "DF02", "DF10"}, failed  # only the rule (and base-image twins)


def test_dockerignore_details() -> None:
    results = {r.id: (ok, got) for r, ok, got in evaluate(DOCKERFILE, None)}
    assert results["DF12"] == (False, "no .dockerignore")
    results = {r.id: (ok, got) for r, ok, got in evaluate(DOCKERFILE, IGNORE + "*.py\n")}
    assert results["DF12"][0] is False and "would leave out adt_service.py" in results["DF12"][1]


def test_unreadable_dockerfile_is_one_failed_criterion() -> None:
    report = static_report("FROM careops/base:bookworm\nRUNN x\n")
    assert not report.passed and len(report.criteria) == 1
    assert "line 2" in report.criteria[0].message
