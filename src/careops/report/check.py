"""The one report type of a learner check, and the contract every check follows.

A check is a function decorated with :func:`learner_check`. Its body records one
criterion per property it looks at in a :class:`CheckReport` and returns it. Called
as ``check.thing(answer)`` in a notebook cell, the check

* returns the report when every criterion passed: as the cell's value it shows
  itself once (a ``display_data`` output, no ``execute_result`` for nbgrader to warn about);
* otherwise shows the report once and raises :class:`CheckFailed` (an
  ``AssertionError``, so nbgrader scores the cell 0), which IPython renders as a
  single line under the report: no traceback, no check source, no second copy.

``check.thing.report(answer)`` runs the same criteria without raising, for hidden
tests, the grader and the toolkit's own tests.

In workshop mode a check called from a notebook also reports its verdict to the
instructor's dashboard (:mod:`careops.report.reporting`: in the background, never
slowing or failing the check; nothing happens where no dashboard is configured).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from careops.report import reporting, theme

F = TypeVar("F", bound=Callable[..., "CheckReport"])


@dataclass
class Criterion:
    """One thing a check looks at, and what it found."""

    message: str
    passed: bool
    hint: str = ""
    expected: Any = None
    got: Any = None

    def found(self) -> str:
        """``expected X, got Y`` with only the parts that are known (empty when neither is)."""
        parts = []
        if self.expected is not None:
            parts.append(f"expected {self.expected!r}")
        if self.got is not None:
            parts.append(f"got {self.got!r}")
        return ", ".join(parts)

    def line(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        text = f"[{mark}] {self.message}"
        if not self.passed:
            if self.found():
                text += f" ({self.found()})"
            if self.hint:
                text += f"\n       hint: {self.hint}"
        return text

    def _html(self) -> str:
        body = theme.esc(self.message)
        if not self.passed:
            if self.found():
                body += theme.note(self.found())
            body += theme.hint(self.hint)
        return body


@dataclass
class CheckReport:
    """The criteria of one exercise's check, in the order they were checked.

    ``data`` carries what the check measured besides the verdict (a mutation
    report, a deployment run ...), for the cells that come after it.
    """

    title: str
    criteria: list[Criterion] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    #: Result objects shown under the criteria (a mutation report, a pipeline run): the evidence behind them.
    details: list[Any] = field(default_factory=list)

    def check(self, passed: bool, message: str, *, hint: str = "", expected: Any = None, got: Any = None) -> bool:
        """Record one criterion; returns whether it passed so later criteria can depend on it."""
        self.criteria.append(Criterion(message, bool(passed), hint, expected, got))
        return bool(passed)

    def fail(self, message: str, *, hint: str = "") -> bool:
        return self.check(False, message, hint=hint)

    def parsed(self, parse: Callable[[Any], Any], text: Any, message: str, *,
               errors: type[BaseException] | tuple[type[BaseException], ...], record_pass: bool = True) -> Any | None:
        """The first criterion of a check on a learner's artifact: it can be read.

        Returns ``parse(text)``; when it raises one of ``errors`` records a failed
        ``message`` with the error's own words and ``fix`` as the hint, and returns
        None (the check then stops). ``record_pass`` False: a success adds no criterion.
        """
        try:
            value = parse(text)
        except errors as exc:
            self.fail(f"{message}: {getattr(exc, 'message', None) or exc}", hint=getattr(exc, "fix", None) or "")
            return None
        if record_pass:
            self.check(True, message)
        return value

    def extend(self, other: "CheckReport") -> "CheckReport":
        """Add another report's criteria (and data and details) to this one."""
        self.criteria.extend(other.criteria)
        self.data.update(other.data)
        self.details.extend(other.details)
        return self

    def attach(self, evidence: Any) -> Any:
        """Show ``evidence`` (any result object) under the criteria, in the report itself; returns it."""
        if evidence is not None:
            self.details.append(evidence)
        return evidence

    @property
    def passed(self) -> bool:
        return bool(self.criteria) and all(c.passed for c in self.criteria)

    @property
    def failures(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.passed]

    @property
    def not_written(self) -> bool:
        """Every failed criterion failed only because the learner's code is still the stub."""
        failed = self.failures
        return bool(failed) and all(NOT_WRITTEN in f"{c.message} {c.hint} {c.got}" for c in failed)

    def summary(self) -> str:
        n_ok = sum(c.passed for c in self.criteria)
        if not self.criteria:
            return f"{self.title}: nothing was checked"
        return f"{self.title}: {n_ok}/{len(self.criteria)} criteria passed"

    def __str__(self) -> str:
        if self.not_written:  # one line, not the stub's error once per criterion
            return f"{self.summary()}\n  [FAIL] {NOT_WRITTEN}"
        lines = [self.summary()] + ["  " + c.line() for c in self.criteria]
        return "\n".join(lines + [str(d) for d in self.details])

    def _repr_html_(self) -> str:
        n_ok = sum(c.passed for c in self.criteria)
        if self.not_written:  # one line, not the stub's error once per criterion
            status = theme.verdict(False, "", "not written yet")
            body = theme.items([(False, theme.esc(NOT_WRITTEN))])
            n = len(self.criteria)
            body += theme.note(theme.muted(f"{n} {'criterion is' if n == 1 else 'criteria are'} checked once it runs"))
            return theme.card(self.title, body, status=status, ok=False)
        status = theme.verdict(self.passed, "all passed", f"{n_ok}/{len(self.criteria)} passed")
        body = theme.items((c.passed, c._html()) for c in self.criteria)
        body += "".join(_evidence_html(d) for d in self.details)
        return theme.card(self.title, body, status=status, ok=self.passed)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": str(self), "text/html": self._repr_html_()}

    def _ipython_display_(self) -> None:
        # As a cell's value: one display_data output (nbgrader reads no score from it), never an execute_result.
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)

    def raise_for_failures(self) -> "CheckReport":
        """Return the report if every criterion passed; otherwise show it (in a notebook) and raise CheckFailed."""
        if not self.passed:
            show(self)
            raise CheckFailed(self)
        return self


def _evidence_html(evidence: Any) -> str:
    """Evidence as HTML: its own rendering, its picture (a figure), else its text."""
    for method, as_html in (("_repr_html_", theme.Html), ("_repr_png_", lambda png: theme.image(png, "figure"))):
        render = getattr(evidence, method, None)
        if callable(render):
            try:
                out = render()
            except Exception:  # noqa: BLE001 - a broken renderer must not hide the verdict; the text follows
                continue
            if out:
                return theme.block(as_html(out))
    return theme.block(theme.pre(evidence))


class CheckFailed(AssertionError):
    """A learner check did not pass. ``report`` holds every criterion; the message lists the failed ones.

    In IPython the report has been shown already, so the exception renders as one
    line (``_render_traceback_``) instead of a traceback with the check's source.
    """

    def __init__(self, report: CheckReport) -> None:
        super().__init__(str(report))
        self.report = report

    def _render_traceback_(self) -> list[str]:
        failed = len(self.report.failures)
        if not self.report.criteria:
            return [f"\x1b[31m{self.report.title}: nothing was checked\x1b[0m"]
        if self.report.not_written:
            return [f"\x1b[1;31m{self.report.title}: not written yet (see the report above)\x1b[0m"]
        return [f"\x1b[1;31m{FAIL_LINE.format(title=self.report.title, failed=failed, n=len(self.report.criteria))}"
                "\x1b[0m"]


FAIL_LINE = "{title}: {failed} of {n} criteria not met yet (see the report above)"


def show(report: Any) -> None:
    """Display ``report`` in a running IPython; a no-op in plain Python (the exception text says it all)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return
    if get_ipython() is not None:
        display(report)


#: What a criterion says when the learner's function is still the stub.
NOT_WRITTEN = "not written yet: replace `raise NotImplementedError` with your code"


def learner_error(exc: BaseException) -> str:
    """A learner's exception in plain words: ``ValueError: bad MRN``, or :data:`NOT_WRITTEN` for the stub.

    An exception that crossed the grader's sandbox carries the original's name and
    message as ``ename``/``evalue``; it reads the same as in the learner's kernel.
    """
    name = str(getattr(exc, "ename", "") or type(exc).__name__)
    message = str(getattr(exc, "evalue", exc) if hasattr(exc, "ename") else exc).strip()
    if name == "NotImplementedError":
        return NOT_WRITTEN
    return f"{name}: {message}" if message else name


def call_learner(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """Call the learner's ``fn``; ``(value, None)``, or ``(None, what went wrong)`` in plain words.

    A learner's exception is a failed criterion, not a crashed check.
    """
    try:
        return fn(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - the learner's code
        return None, learner_error(exc)


def learner_check(fn: F) -> F:
    """Make ``fn`` (which builds and returns a CheckReport) a learner check; see the module's docstring.

    The decorated function raises :class:`CheckFailed` unless every criterion
    passed; ``.report`` is the undecorated builder (same arguments, never raises
    for a failed criterion).
    """

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> CheckReport:
        report = fn(*args, **kwargs)
        if not isinstance(report, CheckReport):  # a module author's mistake, not a learner's
            raise TypeError(f"the check {fn.__qualname__} returned {type(report).__name__}, expected a CheckReport")
        reporting.report_check(f"{fn.__module__}.{fn.__qualname__}", report)  # workshop mode only; never raises
        return report.raise_for_failures()

    run.report = fn  # type: ignore[attr-defined]
    run.is_learner_check = True  # type: ignore[attr-defined]
    return run  # type: ignore[return-value]


__all__ = ["Criterion", "CheckReport", "CheckFailed", "NOT_WRITTEN", "call_learner", "learner_check", "learner_error",
           "show"]
