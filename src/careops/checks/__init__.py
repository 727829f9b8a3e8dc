"""Learner checks: one message per criterion, each with a hint.

A visible test cell calls a check; the check returns a ``CheckReport`` that
shows itself as a list of passed and failed criteria, and ``assert_passed()``
raises (an ``AssertionError``, so nbgrader counts the cell as failed) with
every failed criterion and its hint. ``eventually`` polls lab state that
settles over time instead of failing on the first look.
"""
from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class CheckFailed(AssertionError):
    """A learner check did not pass; the message lists each failed criterion."""


@dataclass
class Criterion:
    """One thing a check looks at, and what it found."""

    message: str
    passed: bool
    hint: str = ""
    expected: Any = None
    got: Any = None

    def line(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        text = f"[{mark}] {self.message}"
        if not self.passed:
            if self.expected is not None or self.got is not None:
                text += f" (expected {self.expected!r}, got {self.got!r})"
            if self.hint:
                text += f"\n       hint: {self.hint}"
        return text


@dataclass
class CheckReport:
    """The criteria of one exercise's check, in the order they were checked."""

    title: str
    criteria: list[Criterion] = field(default_factory=list)

    def check(self, passed: bool, message: str, *, hint: str = "", expected: Any = None, got: Any = None) -> bool:
        """Record one criterion; returns whether it passed so later criteria can depend on it."""
        self.criteria.append(Criterion(message, bool(passed), hint, expected, got))
        return bool(passed)

    def fail(self, message: str, *, hint: str = "") -> bool:
        return self.check(False, message, hint=hint)

    @property
    def passed(self) -> bool:
        return bool(self.criteria) and all(c.passed for c in self.criteria)

    @property
    def failures(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.passed]

    def __str__(self) -> str:
        n_ok = sum(c.passed for c in self.criteria)
        head = f"{self.title}: {n_ok}/{len(self.criteria)} criteria passed"
        return "\n".join([head] + ["  " + c.line() for c in self.criteria])

    def _repr_html_(self) -> str:
        items = []
        for c in self.criteria:
            colour, mark = ("#2e7d32", "&#10004;") if c.passed else ("#c62828", "&#10008;")
            extra = ""
            if not c.passed:
                if c.expected is not None or c.got is not None:
                    extra += (f"<br><small>expected <code>{html.escape(repr(c.expected))}</code>, "
                              f"got <code>{html.escape(repr(c.got))}</code></small>")
                if c.hint:
                    extra += f"<br><small>&#128161; {html.escape(c.hint)}</small>"
            items.append(f"<li style='list-style:none;color:{colour}'>{mark} {html.escape(c.message)}{extra}</li>")
        n_ok = sum(c.passed for c in self.criteria)
        verdict = "all passed" if self.passed else f"{n_ok}/{len(self.criteria)} passed"
        return f"<div><b>{html.escape(self.title)}</b>: {verdict}<ul style='padding-left:0.5em'>{''.join(items)}</ul></div>"

    def assert_passed(self) -> "CheckReport":
        """Show the report (in a notebook) and raise CheckFailed unless every criterion passed."""
        _show(self)
        if not self.criteria:
            raise CheckFailed(f"{self.title}: nothing was checked")
        if not self.passed:
            raise CheckFailed(str(self))
        return self


def _show(report: CheckReport) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python: the exception text says it all
        return
    if get_ipython() is not None:
        display(report)


def eventually(probe: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.5,
               until: Callable[[T], bool] = bool, what: str = "the lab state") -> T:
    """Call ``probe`` until ``until(result)`` holds; return the last result.

    For lab state that settles over time (a container becoming healthy, a
    resource going away): the check waits up to ``timeout`` seconds instead of
    failing on the first look. Exceptions from the probe count as "not yet"
    until the deadline, then the last one is raised with context -- except a
    missing engine, which will not appear by waiting and is raised at once.
    """
    from careops.errors import EngineUnavailable

    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    result: Any = None
    while True:
        try:
            result = probe()
            last_exc = None
            if until(result):
                return result
        except EngineUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - reported below when time is up
            last_exc = exc
        if time.monotonic() >= deadline:
            if last_exc is not None:
                raise TimeoutError(f"{what} was not reached within {timeout:g} s; last error: {last_exc}") from last_exc
            return result
        time.sleep(interval)


__all__ = ["CheckReport", "CheckFailed", "Criterion", "eventually"]
