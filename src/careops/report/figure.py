"""The course's figures: a matplotlib Figure that shows itself as a picture wherever it is shown.

Why: a bare ``matplotlib.figure.Figure`` is a picture only where pyplot's inline
backend registered a formatter for it (after ``import matplotlib.pyplot`` in a
kernel). Everywhere else -- a notebook that never imported pyplot, nbconvert,
the grader's feedback, ``jupyter execute`` -- IPython shows its text,
``<Figure size 1000x700 with 3 Axes>``. This Figure carries its own PNG
(``_repr_png_``), so a plot function's return value, as a cell's last line, is
an image in every one of them, exactly once (it is not a pyplot figure, so the
inline backend does not show it a second time).

Import this module only where a figure is drawn: it imports matplotlib, and
``careops.report`` itself does not.
"""
from __future__ import annotations

import io

import matplotlib.figure

from careops.report.theme import FIGURE, SERIES

#: Dots per inch of the picture: a 10-inch figure is 1000 pixels wide.
DPI = 100


class Figure(matplotlib.figure.Figure):
    """A matplotlib figure (same arguments and methods) that renders as a PNG in notebooks and their HTML."""

    def add_subplot(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - matplotlib's own signature
        """An Axes whose series take the theme's colours (``subplots()`` comes here too)."""
        ax = super().add_subplot(*args, **kwargs)
        ax.set_prop_cycle(color=SERIES)
        return ax

    def _repr_png_(self) -> bytes:
        return self.png()

    def png(self) -> bytes:
        """The picture as PNG bytes (white background, trimmed to what is drawn)."""
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor=FIGURE["background"])
        return buf.getvalue()

    def __repr__(self) -> str:
        suptitle = getattr(self, "_suptitle", None)
        title = suptitle.get_text() if suptitle is not None else ""
        if not title:
            title = next((ax.get_title() for ax in self.axes if ax.get_title()), "")
        size = f"{self.bbox.width:.0f}x{self.bbox.height:.0f}"
        return f"<figure {title!r}, {size} px, {len(self.axes)} plot(s)>" if title else f"<figure {size} px>"


__all__ = ["DPI", "Figure"]
