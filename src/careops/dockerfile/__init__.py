"""Static analysis of learner Dockerfiles: parse, the course's rules, hadolint, the Rego policy.

Nothing here builds or runs anything: it reads text, so a grader can judge a
Dockerfile before (and without) handing it to the engine.
"""
from __future__ import annotations

from careops.dockerfile.parse import (
           Dockerfile,
           DockerfileSyntaxError,
           Instruction,
           as_dockerfile,
           parse,
)
from careops.dockerfile.rules import RULES, Rule, evaluate, static_report

__all__ = [
           "RULES",
           "Dockerfile",
           "DockerfileSyntaxError",
           "Instruction",
           "Rule",
           "as_dockerfile",
           "evaluate",
           "parse",
           "static_report",
]
