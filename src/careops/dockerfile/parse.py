"""Read a Dockerfile into instructions with line numbers, without building it.

Why: every static rule, the Rego policy and the notebook's feedback must point
at the learner's own line ("line 7: USER root"), and must never run anything.
Continuation lines, comments inside them, exec (JSON) and shell form and
``--flags`` are handled the way Docker's classic builder reads them.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from careops.errors import CareOpsError
from careops.images.catalog import BASE_IMAGE
from careops.report import theme

KNOWN = ("FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
         "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL")
_FLAG = re.compile(r"^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(\S*))?$")


class DockerfileSyntaxError(CareOpsError):
    """The Dockerfile cannot be read as Docker would read it; ``line`` says where."""

    def __init__(self, message: str, *, line: int = 0, fix: str | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message, fix=fix)
        self.line = line


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword, its flags, its argument text and (exec form) its JSON list."""

    cmd: str
    args: str
    line: int
    end_line: int
    flags: dict[str, str] = field(default_factory=dict)
    exec_form: list[str] | None = None
    stage: int = 0  # -1: a global ARG before the first FROM

    @property
    def is_exec_form(self) -> bool:
        return self.exec_form is not None

    def words(self) -> list[str]:
        """The arguments split like a shell would (exec form: the JSON list)."""
        if self.exec_form is not None:
            return list(self.exec_form)
        try:
            return shlex.split(self.args)
        except ValueError:
            return self.args.split()

    def pairs(self) -> dict[str, str]:
        """KEY=VALUE pairs of ENV, ARG and LABEL (also the old ``ENV KEY value`` form)."""
        words = self.words()
        if self.cmd == "ENV" and words and "=" not in words[0]:
            return {words[0]: self.args.split(None, 1)[1].strip() if len(words) > 1 else ""}
        out: dict[str, str] = {}
        for w in words:
            key, eq, value = w.partition("=")
            out[key] = value if eq else ""
        return out

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape the Rego policy sees as ``input.instructions[_]``."""
        return {"cmd": self.cmd, "args": self.args, "line": self.line, "end_line": self.end_line,
                "flags": dict(self.flags), "exec_form": self.exec_form, "words": self.words(),
                "pairs": self.pairs() if self.cmd in ("ENV", "ARG", "LABEL") else {}, "stage": self.stage}

    def __str__(self) -> str:
        flags = "".join(f"--{k}={v} " for k, v in self.flags.items())
        return f"{self.cmd} {flags}{self.args}".strip()


@dataclass
class Dockerfile:
    """A parsed Dockerfile: its instructions in order, grouped into build stages by FROM."""

    text: str
    instructions: list[Instruction]

    @property
    def stages(self) -> int:
        return sum(1 for i in self.instructions if i.cmd == "FROM")

    def final_stage(self) -> list[Instruction]:
        """Instructions of the last stage: what ends up in the image that runs."""
        last = self.stages - 1
        return [i for i in self.instructions if i.stage == last]

    def find(self, cmd: str, *, final: bool = True) -> list[Instruction]:
        pool = self.final_stage() if final else self.instructions
        return [i for i in pool if i.cmd == cmd.upper()]

    def last(self, cmd: str) -> Instruction | None:
        found = self.find(cmd)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """ENV of the final stage, later values win (no variable expansion)."""
        out: dict[str, str] = {}
        for i in self.find("ENV"):
            out.update(i.pairs())
        return out

    def as_input(self) -> dict[str, Any]:
        return {"instructions": [i.as_dict() for i in self.instructions], "stages": self.stages}

    def _repr_html_(self) -> str:
        rows = ([i.line, theme.code(str(i)[:200])] for i in self.instructions)
        return theme.card(f"Dockerfile: {len(self.instructions)} instruction(s)",
                          theme.table(rows, header=["line", "instruction"]))


def _logical_lines(text: str) -> list[tuple[int, int, str]]:
    """Join continuation lines; drop comments and blank lines (also inside a continuation)."""
    out: list[tuple[int, int, str]] = []
    buf: list[str] = []
    start = 0
    lines = text.splitlines()
    for n, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and (stripped.startswith("#") or not stripped):
            continue  # Docker ignores comment and empty lines inside a continuation
        if not buf:
            start = n
        if raw.rstrip().endswith("\\"):
            buf.append(raw.rstrip()[:-1])
            continue
        buf.append(raw)
        out.append((start, n, " ".join(part.strip() for part in buf).strip()))
        buf = []
    if buf:
        raise DockerfileSyntaxError("the last instruction ends with a line continuation '\\' and nothing follows",
                                    line=start, fix="remove the trailing backslash or finish the instruction")
    return out


def parse(text: str) -> Dockerfile:
    """Parse Dockerfile text; raise DockerfileSyntaxError (with the line) for what Docker would refuse."""
    if not isinstance(text, str):
        raise DockerfileSyntaxError(f"expected the Dockerfile as text, got {type(text).__name__}",
                                    fix="pass the artifact's text, e.g. the variable the %%artifact cell set")
    instructions: list[Instruction] = []
    stage = -1
    for start, end, logical in _logical_lines(text):
        keyword, _, rest = logical.partition(" ")
        cmd = keyword.upper()
        if cmd not in KNOWN:
            raise DockerfileSyntaxError(f"unknown instruction {keyword!r}: expected one of {', '.join(KNOWN)}",
                                        line=start, fix="check the spelling; every line starts with an instruction "
                                        "or continues the previous one with a trailing '\\'")
        rest = rest.strip()
        flags: dict[str, str] = {}
        while rest.startswith("--") and cmd in ("FROM", "RUN", "ADD", "COPY", "HEALTHCHECK"):
            word, _, tail = rest.partition(" ")
            m = _FLAG.match(word)
            if not m:
                break
            flags[m.group(1)] = m.group(2) or ""
            rest = tail.strip()
        if cmd == "FROM":
            stage += 1
        elif stage < 0 and cmd != "ARG":
            raise DockerfileSyntaxError(f"{cmd} comes before the first FROM: expected FROM (or ARG) first",
                                        line=start, fix=f"start the Dockerfile with FROM {BASE_IMAGE}")
        if not rest and cmd not in ("HEALTHCHECK",):
            raise DockerfileSyntaxError(f"{cmd} has no arguments", line=start,
                                        fix=f"see the Dockerfile reference for {cmd}")
        exec_form = None
        json_part = rest
        if cmd == "HEALTHCHECK":
            hc_flags = []
            while json_part.startswith("--"):
                w, _, json_part = json_part.partition(" ")
                hc_flags.append(w)
                json_part = json_part.strip()
            for w in hc_flags:
                m = _FLAG.match(w)
                if m:
                    flags[m.group(1)] = m.group(2) or ""
            if json_part.upper().startswith("CMD "):
                json_part = json_part[4:].strip()
            rest = json_part if json_part.upper() != "NONE" else "NONE"
        if cmd in ("RUN", "CMD", "ENTRYPOINT", "SHELL", "HEALTHCHECK", "ADD", "COPY", "VOLUME") \
                and json_part.startswith("["):
            try:
                value = json.loads(json_part)
            except ValueError:
                value = None
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                exec_form = value
            elif cmd in ("SHELL",):
                raise DockerfileSyntaxError("SHELL needs a JSON list of strings", line=start,
                                            fix='SHELL ["/bin/sh", "-c"]')
        if cmd == "SHELL" and exec_form is None:
            raise DockerfileSyntaxError("SHELL needs a JSON list of strings", line=start, fix='SHELL ["/bin/sh", "-c"]')
        if cmd == "FROM" and len(rest.split()) not in (1, 3):
            raise DockerfileSyntaxError(f"FROM takes an image and optionally AS name, got {rest!r}", line=start,
                                        fix=f"FROM {BASE_IMAGE} [AS build]")
        instructions.append(Instruction(cmd, rest, start, end, flags, exec_form, stage))
    if not any(i.cmd == "FROM" for i in instructions):
        raise DockerfileSyntaxError("no FROM instruction: expected the Dockerfile to start from a base image",
                                    fix=f"begin with FROM {BASE_IMAGE} (the course's offline base image)")
    return Dockerfile(text, instructions)


def as_dockerfile(dockerfile: str | Dockerfile) -> Dockerfile:
    """A parsed Dockerfile as it is, text parsed: what every reader takes, so a caller that parsed once
    (the grader's entry) hands the result down instead of the text."""
    return dockerfile if isinstance(dockerfile, Dockerfile) else parse(dockerfile)
