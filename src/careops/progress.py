"""Progress of a long task: a tqdm bar on a terminal or in a notebook, one plain line per step in a log.

Why: tqdm redraws its bar with carriage returns. A terminal and a notebook's
output area show that as one line that changes; a CI log or ``make test > log``
keeps every frame, and an image build's log becomes unreadable. ``Progress``
asks its stream: a terminal (or a Jupyter kernel's stream) gets the bar as
before; anything else gets one line per step and a last line with the time::

    building careops/grader:latest: step 3/19 RUN python3 -m venv /opt/venv
    building careops/grader:latest: done in 83.4 s
"""
from __future__ import annotations

import sys
import time
from typing import IO, Any

#: Characters of a step's text shown on one plain line.
PLAIN_WIDTH = 120


def interactive(stream: Any) -> bool:
    """True for a terminal, or a Jupyter kernel's output (both redraw a line in place)."""
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        pass
    return type(stream).__module__.split(".")[0] == "ipykernel"


class Progress:
    """One task's progress: ``step()`` when a numbered step starts, ``advance()`` when units finish.

    ``enabled=False`` shows nothing. On an interactive stream this is a tqdm bar
    (``tqdm_args`` such as ``bar_format``, ``initial``, ``leave``, ``mininterval`` go
    to it; ``notebook=True`` uses a notebook widget in Jupyter). Elsewhere each
    ``step()`` prints a line, each ``advance()`` too (at most one per ``every``
    seconds) unless it only completes the step just announced, and ``close()``
    prints the time it took.
    """

    def __init__(self, desc: str, *, total: int | None = None, unit: str = "step", enabled: bool = True,
                 file: IO[str] | None = None, notebook: bool = False, every: float = 0.0,
                 **tqdm_args: Any) -> None:
        self.desc, self.total, self.enabled, self.every = desc, total, enabled, every
        self.file = file if file is not None else sys.stderr
        self.n = int(tqdm_args.get("initial") or 0)
        self.started = time.monotonic()
        self.closed = False
        self._announced = False
        self._last_line = float("-inf")
        self.bar = None
        if enabled and interactive(self.file):
            if notebook:
                from tqdm.auto import tqdm
            else:
                from tqdm import tqdm
            self.bar = tqdm(total=total, desc=desc, unit=unit, file=self.file, **tqdm_args)

    @property
    def plain(self) -> bool:
        """Plain lines (not a bar) are printed."""
        return self.enabled and self.bar is None

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
        if self.bar is not None:
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
        if self.bar is not None:
            if text:
                self.bar.set_postfix_str(text[:70], refresh=False)
            self.bar.update(k)
        elif self.plain and not completes and time.monotonic() - self._last_line >= self.every:
            where = f"{self.n}/{self.total}" if self.total else f"{self.seconds:.0f} s"
            self._print(f"{where} {text[:PLAIN_WIDTH]}".rstrip())

    def close(self, ok: bool = True, text: str = "") -> None:
        """The task ended (``ok``: it succeeded, so the step last announced is done too); a plain stream gets
        the time it took (``text`` instead of "done"/"failed", e.g. "paused for approval"). Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        if ok and self._announced:
            self.n += 1
        if self.bar is not None:
            if ok and self._announced:
                self.bar.update(1)
            self.bar.close()
        elif self.plain:
            said = text or ("done" if ok else "failed")
            self._print(f"{said} {'in' if said == 'done' else 'after'} {self.seconds:.1f} s")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(ok=exc_type is None)


__all__ = ["Progress", "interactive"]
