"""The small part of GitHub's ``${{ }}`` expression language the local runner evaluates.

Supported (and nothing else; anything else is an ExpressionError naming it):

* literals: ``'text'`` (``''`` escapes a quote), numbers, ``true``, ``false``, ``null``
* contexts: ``env.NAME``, ``github.<field>``, ``job.status``, ``runner.os``,
  ``steps.<id>.outcome|conclusion|outputs.<name>``, ``needs.<job>.result|outputs.<name>``,
  ``secrets.<NAME>`` (always empty: the local runner holds no secrets), ``vars.<NAME>`` (empty)
* operators: ``!``, ``==``, ``!=``, ``&&``, ``||``, parentheses; ``a.b`` and ``a['b']``
* functions: ``success()``, ``failure()``, ``always()``, ``cancelled()``,
  ``contains(a, b)``, ``startsWith(a, b)``, ``endsWith(a, b)``, ``format('{0}', x)``

Why a subset: the course's pipelines need status checks and a few context
values; a full language would be more to get wrong than to teach.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from careops.errors import CareOpsError

_TOKEN = re.compile(r"""\s*(?:
    (?P<string>'(?:[^']|'')*')
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op>==|!=|&&|\|\||<=|>=|[!()\[\],.<>])
  | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
)""", re.VERBOSE)
_EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")


class ExpressionError(CareOpsError):
    """An ``${{ }}`` expression the local runner cannot evaluate."""


@dataclass
class Context:
    """What expressions can see while one step or job is evaluated."""

    env: dict[str, str] = field(default_factory=dict)
    github: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    needs: dict[str, dict[str, Any]] = field(default_factory=dict)
    job_status: str = "success"  # success | failure | cancelled | skipped (a needed job was skipped)

    def lookup(self, name: str) -> Any:
        if name == "env":
            return self.env
        if name == "github":
            return self.github
        if name == "steps":
            return self.steps
        if name == "needs":
            return self.needs
        if name == "job":
            return {"status": self.job_status}
        if name == "runner":
            return {"os": "Linux", "arch": "X64", "name": "careops-local", "temp": "/tmp"}
        if name in ("secrets", "vars", "inputs", "matrix"):
            return {}
        raise ExpressionError(f"unknown context '{name}' in an expression",
                              fix="use env, github, job, runner, steps, needs, secrets or vars")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"cannot read the expression {text!r} at {text[pos:pos + 10]!r}",
                                  fix="see careops.pipeline.expressions for what is supported")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value != ""
    if isinstance(value, (int, float)):
        return value != 0
    return bool(value)


def to_text(value: Any) -> str:
    """GitHub's string conversion: null -> '', true -> 'true'."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _loose_equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()  # GitHub compares strings case-insensitively
    if type(a) is not type(b) and a is not None and b is not None:
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return False
    return a == b


class _Parser:
    def __init__(self, text: str, ctx: Context) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.ctx = ctx
        self.used_status = False

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise ExpressionError(f"expected {value or 'more'} in the expression {self.text!r}, got "
                                  f"{tok[1] if tok else 'the end'}", fix="check brackets and quotes")
        self.i += 1
        return tok

    def parse(self) -> Any:
        value = self.or_()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()[1]!r} in the expression {self.text!r}",  # type: ignore[index]
                                  fix="check the operators: ==, !=, &&, ||, !")
        return value

    def or_(self) -> Any:
        left = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.and_()
            left = left if _truthy(left) else right
        return left

    def and_(self) -> Any:
        left = self.cmp()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.cmp()
            left = right if _truthy(left) else left
        return left

    def cmp(self) -> Any:
        left = self.unary()
        tok = self.peek()
        if tok and tok[1] in ("==", "!="):
            self.take()
            right = self.unary()
            eq = _loose_equal(left, right)
            return eq if tok[1] == "==" else not eq
        return left

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.take()
            return not _truthy(self.unary())
        return self.postfix()

    def postfix(self) -> Any:
        value = self.primary()
        while self.peek() in (("op", "."), ("op", "[")):
            if self.take()[1] == ".":
                key = self.take()[1]
                self._check_key(value, key)
                value = value.get(key) if isinstance(value, dict) else None
            else:
                key = self.or_()
                self.take("]")
                value = value.get(to_text(key)) if isinstance(value, dict) else None
        return value

    @staticmethod
    def _check_key(value: Any, key: str) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*|\*", key):
            raise ExpressionError(f"{key!r} cannot follow a '.' in an expression", fix="write e.g. env.NAME")

    def primary(self) -> Any:
        kind, value = self.take()
        if kind == "string":
            return value[1:-1].replace("''", "'")
        if kind == "number":
            return float(value) if "." in value else int(value)
        if value == "(":
            inner = self.or_()
            self.take(")")
            return inner
        if kind == "name":
            if value in ("true", "false"):
                return value == "true"
            if value == "null":
                return None
            if self.peek() == ("op", "("):
                return self.call(value)
            return self.ctx.lookup(value)
        raise ExpressionError(f"unexpected {value!r} in the expression {self.text!r}", fix="check the syntax")

    def call(self, name: str) -> Any:
        self.take("(")
        args = []
        if self.peek() != ("op", ")"):
            args.append(self.or_())
            while self.peek() == ("op", ","):
                self.take()
                args.append(self.or_())
        self.take(")")
        status = self.ctx.job_status
        if name in STATUS_FUNCTIONS:
            self.used_status = True
            if args:
                raise ExpressionError(f"{name}() takes no arguments", fix=f"write {name}()")
            return {"success": status == "success", "failure": status == "failure", "always": True,
                    "cancelled": status == "cancelled"}[name]
        lowered = name.lower()
        if lowered in ("contains", "startswith", "endswith") and len(args) == 2:
            hay, needle = args
            if lowered == "contains" and isinstance(hay, list):
                return any(_loose_equal(x, needle) for x in hay)
            h, n = to_text(hay).lower(), to_text(needle).lower()
            return n in h if lowered == "contains" else h.startswith(n) if lowered == "startswith" else h.endswith(n)
        if lowered == "format" and args:
            out = to_text(args[0])
            for i, arg in enumerate(args[1:]):
                out = out.replace("{" + str(i) + "}", to_text(arg))
            return out
        raise ExpressionError(
            f"function {name}() with {len(args)} argument(s) is not supported by the local runner",
            fix="use success(), failure(), always(), cancelled(), contains(), startsWith(), endsWith() or format()")


def evaluate(text: str, ctx: Context) -> Any:
    """Evaluate one expression (without the ``${{ }}``)."""
    return _Parser(text, ctx).parse()


def evaluate_condition(condition: Any, ctx: Context) -> bool:
    """An ``if:`` value: a bool, or an expression with or without ``${{ }}``.

    As on GitHub, a condition without a status function means ``success() && (condition)``.
    """
    if condition is None:
        condition = "success()"
    if isinstance(condition, bool):
        return condition and ctx.job_status == "success"
    if isinstance(condition, (int, float)):
        return bool(condition) and ctx.job_status == "success"
    text = str(condition).strip()
    m = re.fullmatch(r"\$\{\{(.*)\}\}", text, re.DOTALL)
    if m:
        text = m.group(1)
    parser = _Parser(text, ctx)
    value = _truthy(parser.parse())
    if not parser.used_status:
        value = value and ctx.job_status == "success"
    return value


def interpolate(value: Any, ctx: Context) -> Any:
    """Replace every ``${{ expr }}`` in strings (recursively in lists and dicts)."""
    if isinstance(value, str):
        return _EXPR.sub(lambda m: to_text(evaluate(m.group(1), ctx)), value)
    if isinstance(value, list):
        return [interpolate(v, ctx) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, ctx) for k, v in value.items()}
    return value


def expressions_in(value: Any) -> list[str]:
    """Every ``${{ }}`` expression text inside a value (for static checks)."""
    if isinstance(value, str):
        return [m.group(1).strip() for m in _EXPR.finditer(value)]
    if isinstance(value, list):
        return [e for v in value for e in expressions_in(v)]
    if isinstance(value, dict):
        return [e for v in value.values() for e in expressions_in(v)]
    return []
