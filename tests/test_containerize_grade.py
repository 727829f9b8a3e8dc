"""careops.containerize.grade reads a learner's Dockerfile once: the entry parses it and every part (static
rules, hadolint and the Rego policy, the build) takes the parsed one. The full grading runs on a real
engine in test_containerize_build.py; here the parse calls are counted."""
from __future__ import annotations

import importlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from careops.containerize.grade import grade
from careops.lab import reset

parse_module = importlib.import_module("careops.dockerfile.parse")  # the module (the package's `parse` is the function)

SOLUTION = Path(__file__).resolve().parents[1] / "grading" / "references" / "containerize"
GOOD = (SOLUTION / "Dockerfile").read_text()
IGNORE = (SOLUTION / ".dockerignore").read_text()


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call of careops.dockerfile.parse.parse, under whatever name a careops module imported it."""
    original = parse_module.parse
    calls: list[str] = []

    def counting(text: str) -> parse_module.Dockerfile:
        calls.append(text)
        return original(text)

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("careops") and getattr(module, "parse", None) is original:
            monkeypatch.setattr(module, "parse", counting)
    return calls


@pytest.fixture
def learner() -> Iterator[str]:
    who = f"t-{uuid.uuid4().hex[:8]}"
    yield who
    reset(None, who)


def test_static_and_security_parts_read_the_dockerfile_once(parses: list[str]) -> None:
    sub = grade(GOOD, IGNORE, live=False)
    assert len(parses) == 1, "the entry parses; the rules, hadolint, the policy take the parsed Dockerfile"
    assert sub.reports["static"].passed and sub.reports["security"].passed, sub.reasons


@pytest.mark.docker
def test_the_build_takes_the_parsed_dockerfile_too(parses: list[str], learner: str) -> None:
    absent = GOOD.replace("FROM careops/base:bookworm", "FROM careops/base:no-such-tag")
    sub = grade(absent, IGNORE, learner=learner)  # the build stops before the engine builds anything
    assert len(parses) == 1
    assert not sub.reports["live"].passed and "careops/base:no-such-tag is not on this machine" in sub.reasons[-1]


def test_an_unreadable_dockerfile_fails_each_part_in_its_own_words(parses: list[str]) -> None:
    sub = grade("FROM careops/base:bookworm\nRUNN x\n", IGNORE, live=False)
    assert sub.score == 0
    for part in ("static", "security"):
        first = sub.reports[part].failures[0]
        assert first.message.startswith("the Dockerfile can be read: line 2: unknown instruction 'RUNN'"), first
