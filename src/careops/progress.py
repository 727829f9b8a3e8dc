"""Progress of a long task: a bar on a terminal, one updating line in a notebook, one plain line per step in a log.

Why: tqdm redraws its bar with carriage returns. A terminal shows that as one
line that changes; a CI log or ``make test > log`` keeps every frame, and an
image build's log becomes unreadable; a notebook shows each burst of frames as a
red stderr box between the task's log lines. ``Progress`` asks its stream:

* a terminal gets the tqdm bar;
* a Jupyter kernel gets one line of the theme (:func:`careops.report.theme.progress_line`)
  displayed once and updated in place (an IPython display handle: JupyterLab,
  ``jupyter execute`` and nbconvert all keep its last state), never stderr;
* anything else gets one line per step and a last line with the time::

    building careops/grader:latest: step 3/19 RUN python3 -m venv /opt/venv
    building careops/grader:latest: done in 83.4 s
"""
from __future__ import annotations

import sys
import time
import uuid
from typing import IO, Any

from careops.report import theme

#: Characters of a step's text shown on one plain line.
PLAIN_WIDTH = 120
#: Seconds between two updates of a notebook's line (a step change or the end always shows).
NOTEBOOK_EVERY = 0.25


def _kernel_stream(stream: Any) -> bool:
    return type(stream).__module__.split(".")[0] == "ipykernel"


def interactive(stream: Any) -> bool:
    """True for a terminal, or a Jupyter kernel's output (both show progress in place)."""
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        pass
    return _kernel_stream(stream)


def in_notebook(stream: Any) -> bool:
    """True when ``stream`` is a Jupyter kernel's output and IPython can display rich output there."""
    if not _kernel_stream(stream):
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def write_line(text: str) -> None:
    """Print one line of a task's log (stdout) without garbling a terminal's progress bar."""
    if interactive(sys.stdout) and not _kernel_stream(sys.stdout):
        from tqdm import tqdm

        tqdm.write(text, file=sys.stdout)
    else:
        print(text, flush=True)


class NotebookLine:
    """One line in a notebook cell's output, shown once and then updated in place."""

    def __init__(self, every: float = NOTEBOOK_EVERY) -> None:
        self.display_id = f"careops-progress-{uuid.uuid4().hex}"
        self.every = every
        self.shown = False
        self._last = float("-inf")

    def show(self, text: str, html: str, *, now: bool = False) -> None:
        """Show ``text``/``html`` (at most every ``every`` seconds unless ``now``)."""
        if not now and time.monotonic() - self._last < self.every:
            return
        from IPython.display import display, update_display

        bundle = {"text/plain": text, "text/html": html}
        if self.shown:
            update_display(bundle, raw=True, display_id=self.display_id)
        else:
            display(bundle, raw=True, display_id=self.display_id)
            self.shown = True
        self._last = time.monotonic()


class Progress:
    """One task's progress: ``step()`` when a numbered step starts, ``advance()`` when units finish.

    ``enabled=False`` shows nothing. In a Jupyter kernel this is one updating line
    of the theme. On a terminal it is a tqdm bar (``tqdm_args`` such as
    ``bar_format``, ``initial``, ``leave``, ``mininterval`` go to it). Elsewhere
    each ``step()`` prints a line, each ``advance()`` too (at most one per
    ``every`` seconds) unless it only completes the step just announced, and
    ``close()`` prints the time it took. ``notebook`` is accepted for older
    callers; a kernel always gets the line.
    """

    def __init__(self, desc: str, *, total: int | None = None, unit: str = "step", enabled: bool = True,
                 file: IO[str] | None = None, notebook: bool = False, every: float = 0.0,
                 **tqdm_args: Any) -> None:
        self.desc, self.total, self.enabled, self.every = desc, total, enabled, every
        self.unit = unit.strip()
        self.file = file if file is not None else sys.stderr
        self.n = int(tqdm_args.get("initial") or 0)
        self.started = time.monotonic()
        self.closed = False
        self.text = ""
        self._announced = False
        self._last_line = float("-inf")
        self.bar = None
        self.line: NotebookLine | None = None
        if enabled and in_notebook(self.file):
            self.line = NotebookLine()
            self._show(now=True)
        elif enabled and interactive(self.file):
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, file=self.file, **tqdm_args)

    @property
    def plain(self) -> bool:
        """Plain lines (not a bar, not a notebook's line) are printed."""
        return self.enabled and self.bar is None and self.line is None

    def _show(self, *, now: bool = False, ok: bool | None = None) -> None:
        """Update the notebook's line: what, how far, the latest news, the time."""
        if self.line is None:
            return
        of = f"/{self.total}" if self.total else ""
        unit = f" {self.unit}{'s' if self.unit and not self.unit.endswith('s') else ''}" if self.unit else ""
        said = self.text[:PLAIN_WIDTH]
        text = f"{self.desc}: {self.n}{of}{unit} {said} ({self.seconds:.1f} s)".replace("  ", " ")
        self.line.show(text, theme.progress_line(self.desc, self.n, self.total, said, self.seconds, ok=ok,
                                                 unit=unit.strip()), now=now)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def _print(self, text: str) -> None:
        print(f"{self.desc}: {text}", file=self.file, flush=True)
        self._last_line = time.monotonic()

    def step(self, text: str, number: int | None = None, total: int | None = None) -> None:
        """Step ``number`` of ``total`` (default: the next one of the total known) starts; ``text`` says what it does."""
        if total is not None:
            self.total = total
        if number is not None:
            self.n = number - 1
        self._announced = True
        self.text = text
        if self.line is not None:
            self._show(now=True)
        elif self.bar is not None:
            if total is not None:
                self.bar.total = total
            if number is not None:
                self.bar.n = number - 1
            self.bar.set_postfix_str(text[:60], refresh=True)
        elif self.plain:
            of = f"/{self.total}" if self.total else ""
            self._print(f"step {self.n + 1}{of} {text[:PLAIN_WIDTH]}".rstrip())

    def advance(self, k: int = 1, text: str = "") -> None:
        """``k`` more units are done; ``text`` is the latest news (a line of output, a status)."""
        self.n += k
        completes, self._announced = self._announced and not text, False
        if text:
            self.text = text
        if self.line is not None:
            self._show()
        elif self.bar is not None:
            if text:
                self.bar.set_postfix_str(text[:70], refresh=False)
            self.bar.update(k)
        elif self.plain and not completes and time.monotonic() - self._last_line >= self.every:
            where = f"{self.n}/{self.total}" if self.total else f"{self.seconds:.0f} s"
            self._print(f"{where} {text[:PLAIN_WIDTH]}".rstrip())

    def close(self, ok: bool | None = True, text: str = "") -> None:
        """The task ended (``ok``: it succeeded, so the step last announced is done too; None: it stopped
        without a verdict, e.g. paused); a plain stream gets the time it took (``text`` instead of
        "done"/"failed", e.g. "paused for approval"). Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        if ok and self._announced:
            self.n += 1
        if self.line is not None:
            self.text = text or ("done" if ok else "failed" if ok is False else self.text)
            self._show(now=True, ok=ok)
        elif self.bar is not None:
            if ok and self._announced:
                self.bar.update(1)
            self.bar.close()
        elif self.plain:
            said = text or ("done" if ok else "failed" if ok is False else "stopped")
            self._print(f"{said} {'in' if said == 'done' else 'after'} {self.seconds:.1f} s")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(ok=exc_type is None)


__all__ = ["NotebookLine", "Progress", "in_notebook", "interactive", "write_line"]
