#!/usr/bin/env python3
"""Print the pip requirements of environment.yml, one per line.

`make` builds .venv from these lines so that conda users and venv users get
the same packages from the same file. Standard library only: it runs before
any dependency is installed. It reads the subset of YAML environment.yml uses
(block lists, comments); tests/test_environment.py checks it against PyYAML.

Usage: env_requirements.py [environment.yml] [--python-spec]
"""
from __future__ import annotations

import sys
from pathlib import Path


def _strip_comment(line: str) -> str:
    out, quote = [], None
    for ch in line:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (not out or out[-1].isspace()):
            break
        out.append(ch)
    return "".join(out).rstrip()


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def read_environment(path: Path) -> tuple[list[str], list[str]]:
    """Return (conda dependencies, pip requirements) of an environment file."""
    conda: list[str] = []
    pip: list[str] = []
    in_deps = False
    deps_indent = pip_indent = -1
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = _strip_comment(raw)
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        text = line.strip()
        if indent == 0:
            in_deps = text == "dependencies:"
            pip_indent = -1
            continue
        if not in_deps or not text.startswith("- "):
            continue
        item = text[2:].strip()
        if pip_indent >= 0 and indent > pip_indent:
            pip.append(_unquote(item))
            continue
        pip_indent = -1
        if deps_indent < 0:
            deps_indent = indent
        if item == "pip:":
            pip_indent = indent
        else:
            conda.append(_unquote(item))
    return conda, pip


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    path = Path(args[0]) if args else Path(__file__).resolve().parent.parent / "environment.yml"
    conda, pip = read_environment(path)
    if "--python-spec" in argv:
        spec = next((c for c in conda if c.split("=")[0].strip() == "python"), "")
        print(spec.partition("=")[2].lstrip("="))
        return 0
    for req in pip:
        print(req)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
