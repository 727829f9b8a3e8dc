"""The one look of every careops result object in a notebook, nbconvert HTML and graded feedback.

Result objects build their HTML from these pieces instead of writing their own
styles: one palette, one pass/fail mark, one card, one table (text left-aligned,
numbers right-aligned), one log block, one progress line. Everything is
inline-styled HTML that renders the same in JupyterLab, in nbconvert's HTML and
offline (no fonts, no scripts, no CDN). Marks are plain Unicode symbols every
font has, never emoji. This is the only module of careops that writes a colour
or a style (tests/test_theme.py keeps it so).

Every piece returns :class:`Html`, a ``str`` that is markup already. A parameter
named ``body`` (or ``status``, or an item's entry) is HTML; titles, names and
table cells are text and escaped unless they are :class:`Html` (or :func:`num`).
Figures use the same palette (:data:`FIGURE`).
"""
from __future__ import annotations

import base64
import html as _html
import numbers
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: One palette for every result: state colours and the neutral ones.
PALETTE: dict[str, str] = {
    "ok": "#1a7f37",       # passed, healthy, approved
    "fail": "#cf222e",     # failed, down, denied
    "warn": "#9a6700",     # waiting, skipped for a reason, needs a person
    "muted": "#6e7781",    # skipped, not applicable
    "info": "#0969da",     # neutral emphasis
    "border": "#d0d7de",
    "text": "#1f2328",
    "code-bg": "#f6f8fa",  # behind a log block
}

#: Colours of the course's figures (matplotlib), by role: the same palette, plus series colours.
FIGURE: dict[str, str] = {
    "ok": PALETTE["ok"], "fail": PALETTE["fail"], "warn": "#bc4c00", "muted": PALETTE["muted"],
    "text": PALETTE["text"],
    "primary": PALETTE["info"],    # the first series (the old release, men, values in range)
    "secondary": "#bf3989",        # the second series when neither is good or bad (women)
    "band-ok": "#dafbe1",          # the area of what is acceptable (a tolerance, a normal range)
    "band": PALETTE["code-bg"],    # a neutral area
    "event": "#8250df",            # a moment marked across the plots (the router switch, a rollback)
    "background": "#ffffff",       # behind a figure's picture (also in a dark notebook theme)
}

#: Colours of a figure's series, in order, where no series means good or bad (e.g. one line per pipeline job).
SERIES: list[str] = [PALETTE["info"], FIGURE["secondary"], FIGURE["warn"], FIGURE["event"], "#1b7c83", PALETTE["muted"]]

#: Colour per state word used across the toolkit (pipeline steps, deployments, containers).
STATE_COLOURS: dict[str, str] = {
    "success": PALETTE["ok"], "ok": PALETTE["ok"], "passed": PALETTE["ok"], "approved": PALETTE["ok"],
    "healthy": PALETTE["ok"], "running": PALETTE["ok"], "promoted": PALETTE["ok"], "killed": PALETTE["ok"],
    "reconciled": PALETTE["ok"],
    "failure": PALETTE["fail"], "failed": PALETTE["fail"], "timed-out": PALETTE["fail"], "denied": PALETTE["fail"],
    "down": PALETTE["fail"], "error": PALETTE["fail"], "unhealthy": PALETTE["fail"], "rolled-back": PALETTE["fail"],
    "missing": PALETTE["fail"], "expired": PALETTE["fail"], "survived": PALETTE["fail"],
    "cancelled": PALETTE["fail"], "dead": PALETTE["fail"],
    "waiting-approval": PALETTE["warn"], "not-approved": PALETTE["warn"], "aborted": PALETTE["warn"],
    "starting": PALETTE["warn"], "restarting": PALETTE["warn"], "pending": PALETTE["muted"],
    "skipped": PALETTE["muted"], "exited": PALETTE["muted"], "created": PALETTE["muted"],
    "warning": PALETTE["warn"], "info": PALETTE["muted"], "style": PALETTE["muted"],
    "stuck": FIGURE["warn"], "handed-in": PALETTE["ok"], "not-started": PALETTE["muted"],
}

PASS_MARK = "\u2714"   # heavy check mark (text presentation)
FAIL_MARK = "\u2718"   # heavy ballot x
HINT_LABEL = "hint"
_CELL = f"padding:0.15em 0.6em;border-bottom:1px solid {PALETTE['border']};vertical-align:top"


class Html(str):
    """Text that is HTML markup already: :func:`esc` and table cells take it as it is.

    Markup plus markup stays markup; anything else added to it is a plain ``str``."""

    __slots__ = ()

    def __add__(self, other: object) -> Any:
        joined = str.__add__(self, other)  # type: ignore[operator]
        return Html(joined) if isinstance(other, Html) else joined

    def __radd__(self, other: object) -> Any:
        if not isinstance(other, str):
            return NotImplemented
        return Html(other + str(self)) if isinstance(other, Html) else other + str(self)


class Num(Html):
    """A number (maybe with its unit) as a table cell: right-aligned."""

    __slots__ = ()


def esc(value: Any) -> Html:
    """HTML-escape ``value`` (anything: it is turned into text first); :class:`Html` stays as it is."""
    if isinstance(value, Html):
        return value
    return Html(_html.escape("" if value is None else str(value)))


def join(parts: Iterable[Any], sep: str = "") -> Html:
    """Pieces one after the other (text escaped, markup kept)."""
    return Html(esc(sep).join(esc(p) for p in parts))


def colour(ok_or_state: bool | str) -> str:
    """The palette colour of a pass/fail or of a state word (unknown words are neutral)."""
    if isinstance(ok_or_state, bool):
        return PALETTE["ok"] if ok_or_state else PALETTE["fail"]
    return STATE_COLOURS.get(str(ok_or_state), PALETTE["text"])


def mark(ok: bool) -> Html:
    """A coloured check mark or cross."""
    return Html(f"<span style='color:{colour(ok)};font-weight:bold'>{PASS_MARK if ok else FAIL_MARK}</span>")


def state(word: str, text: Any = None) -> Html:
    """A state word (``success``, ``down`` ...) in its colour; ``text`` shows instead of the word."""
    return Html(f"<span style='color:{colour(word)};font-weight:bold'>{esc(word if text is None else text)}</span>")


def verdict(ok: bool, ok_text: Any = "ok", fail_text: Any = "failed") -> Html:
    """The verdict of a result: a mark and its word, coloured."""
    return Html(f"{mark(ok)} <span style='color:{colour(ok)};font-weight:bold'>{esc(ok_text if ok else fail_text)}"
                "</span>")


def bold(text: Any) -> Html:
    return Html(f"<b>{esc(text)}</b>")


def code(text: Any) -> Html:
    return Html(f"<code>{esc(text)}</code>")


def link(url: str, text: Any) -> Html:
    return Html(f"<a href='{esc(url)}' target='_blank' rel='noopener'>{esc(text)}</a>")


def muted(text: Any) -> Html:
    """Secondary words in a line (a time, a count, where something came from)."""
    return Html(f"<span style='color:{PALETTE['muted']}'>{esc(text)}</span>")


def note(text: Any) -> Html:
    """A secondary line under something (what was expected and found, a path)."""
    return Html(f"<div style='font-size:90%'>{esc(text)}</div>") if text else Html("")


def hint(text: Any) -> Html:
    """A hint line under a failed criterion."""
    if not text:
        return Html("")
    return Html(f"<div style='color:{PALETTE['muted']};font-size:90%'><b>{HINT_LABEL}:</b> {esc(text)}</div>")


def para(body: Any) -> Html:
    """One line or paragraph of a result (HTML)."""
    return Html(f"<div style='margin:0.2em 0'>{body}</div>")


def indent(text: Any) -> Html:
    """A table cell's label one level down (a step under its job)."""
    return Html(f"<span style='padding-left:1.5em'>{esc(text)}</span>")


def num(value: Any, unit: str = "", fmt: str = "{:g}") -> Num:
    """A number as a table cell (right-aligned), formatted with ``fmt`` and followed by its ``unit``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = fmt.format(value)
    else:
        text = "" if value is None else str(value)
    return Num(esc(f"{text} {unit}" if unit and text else text))


def seconds(value: float | None) -> Num:
    """A duration as a table cell."""
    return num(value, "s", "{:.1f}") if value is not None else Num("")


def card(title: Any, body: Any = "", *, status: Any = "", ok: bool | None = None) -> Html:
    """A result's frame: a title line (with its status or verdict) and the body under it.

    ``status`` is HTML (e.g. from :func:`verdict`); ``ok`` colours the left border
    (None: neutral).
    """
    edge = PALETTE["border"] if ok is None else colour(ok)
    head = f"<b>{esc(title)}</b>" + (f" &mdash; {status}" if status else "")
    inner = f"<div style='margin-top:0.3em'>{body}</div>" if body else ""
    return Html(f"<div class='careops-result' style='border-left:4px solid {edge};padding:0.3em 0.7em;"
                f"margin:0.3em 0'>{head}{inner}</div>")


def section(title: Any, body: Any) -> Html:
    """A titled part inside a card (e.g. "pass rate per exercise" and its table)."""
    return Html(f"<div style='margin-top:0.5em'><b>{esc(title)}</b>{body}</div>")


def items(entries: Iterable[tuple[bool | None, Any]]) -> Html:
    """A list of lines, each ``(ok, html)``: ok True/False gets a mark, None a neutral bullet."""
    lis = []
    for ok, body in entries:
        lead = mark(ok) if ok is not None else "&bull;"
        lis.append(f"<li style='list-style:none;margin:0.15em 0'>{lead} {body}</li>")
    if not lis:
        return Html("")
    return Html(f"<ul style='padding-left:0.3em;margin:0.2em 0'>{''.join(lis)}</ul>")


def _is_number(value: Any) -> bool:
    """Python's and numpy's numbers (not booleans), and :func:`num` cells."""
    return isinstance(value, (numbers.Number, Num)) and not isinstance(value, (bool, _numpy_bools()))


def _numpy_bools() -> tuple[type, ...]:
    numpy = sys.modules.get("numpy")  # only loaded when a table came from pandas or numpy
    return (numpy.bool_,) if numpy is not None else ()


def _cell(value: Any, raw: bool) -> tuple[bool, str]:
    """(right-aligned, the cell's html)."""
    right = _is_number(value)
    if right and isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return True, f"{value:g}"
    return right, (str(value) if raw else esc(value))


def table(rows: Iterable[Sequence[Any]], header: Sequence[Any] | None = None, *, raw: bool = False) -> Html:
    """A plain table: text left-aligned, numbers (ints, floats, :func:`num`) right-aligned; a column's header
    follows its cells. Cells are escaped unless they are :class:`Html` (or ``raw``: every cell is HTML)."""
    body = [[_cell(v, raw) for v in row] for row in rows]
    width = max([len(header or ())] + [len(r) for r in body])
    numeric = [bool(col) and all(right for right, text in col if text)
               for col in ([r[i] for r in body if i < len(r)] for i in range(width))]
    out = ["<table class='careops-table' style='border-collapse:collapse;margin:0.3em 0'>"]
    if header:
        ths = "".join(f"<th style='{_CELL};text-align:{'right' if numeric[i] else 'left'}'>{esc(h)}</th>"
                      for i, h in enumerate(header))
        out.append(f"<thead><tr>{ths}</tr></thead>")
    out.append("<tbody>")
    for row in body:
        tds = "".join(f"<td style='{_CELL};text-align:{'right' if right else 'left'}'>{text}</td>"
                      for right, text in row)
        out.append(f"<tr>{tds}</tr>")
    out.append("</tbody></table>")
    return Html("".join(out))


def fields(values: Mapping[str, Any]) -> Html:
    """Name/value pairs as a two-column table (a result's summary): names bold, values as table cells."""
    return table(((bold(k), v) for k, v in values.items()))


def pre(text: Any, *, tail: int | None = None) -> Html:
    """A block of a program's output (a log, a command's output), its last ``tail`` lines when given."""
    lines = str(text or "").rstrip("\n").splitlines()
    if tail is not None and len(lines) > tail:
        lines = [f"... ({len(lines) - tail} earlier lines)"] + lines[-tail:]
    return Html(f"<pre style='background:{PALETTE['code-bg']};padding:0.4em 0.6em;margin:0.3em 0;"
                f"max-height:24em;overflow:auto;white-space:pre-wrap'>{esc(chr(10).join(lines))}</pre>")


def details(summary: Any, body: Any) -> Html:
    """Something to open when needed (a builder's output), closed at first."""
    return Html(f"<details style='margin:0.3em 0'><summary>{esc(summary)}</summary>{body}</details>")


def image(png: bytes, alt: str) -> Html:
    """A PNG picture, embedded (no file beside the notebook)."""
    data = base64.b64encode(png).decode("ascii")
    return Html(f"<img alt='{esc(alt)}' src='data:image/png;base64,{data}' style='max-width:100%'>")


def block(body: Any) -> Html:
    """A result shown inside another one (evidence under a check's criteria)."""
    return Html(f"<div style='margin-top:0.4em'>{body}</div>")


def progress_line(desc: str, n: float, total: float | None, text: str = "", elapsed: float = 0.0,
                  ok: bool | None = None, unit: str = "") -> Html:
    """One line of a long task's progress in a notebook: what, a bar, how far, the latest news, the time.

    ``ok`` None: still running; True/False: finished, marked as a result is."""
    share = min(max(n / total, 0.0), 1.0) if total else None
    bar = ""
    if share is not None:
        fill = colour(ok) if ok is not None else PALETTE["info"]
        bar = (f"<span style='display:inline-block;width:10em;height:0.7em;border:1px solid {PALETTE['border']};"
               f"vertical-align:middle;margin:0 0.5em'><span style='display:block;height:100%;"
               f"width:{share * 100:.0f}%;background:{fill}'></span></span>")
    count = (f"{n:g}/{total:g}" if total else f"{n:g}") + (f" {unit}" if unit else "")
    lead = f"{mark(ok)} " if ok is not None else ""
    news = f" {muted(text)}" if text else ""
    return Html(f"<div class='careops-progress' style='font-family:monospace;margin:0.2em 0'>{lead}"
                f"<b>{esc(desc)}</b>{bar}{esc(count)} {muted(f'{elapsed:.1f} s')}{news}</div>")


def page(title: Any, body: Any, *, script: str = "") -> Html:
    """A whole HTML page (a hub service's page, e.g. the instructor's dashboard) around ``body``; ``script`` is
    JavaScript the page runs (e.g. polling for a fresh view), never a style."""
    js = f"<script>{script}</script>" if script else ""
    return Html(f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
                "<meta name='viewport' content='width=device-width, initial-scale=1'></head>"
                f"<body style='font-family:sans-serif;color:{PALETTE['text']};margin:1em 1.5em'>"
                f"<h2 style='margin:0.2em 0'>{esc(title)}</h2>{body}{js}</body></html>")


def stacked_bars(title: str, rows: Sequence[tuple[Any, Sequence[tuple[int, str]]]], total: int, *,
                 legend: Sequence[tuple[str, str]] = ()) -> Html:
    """A horizontal stacked bar chart as inline SVG (no script, no picture file): one bar per row ``(label,
    [(count, state word), ...])`` out of ``total``, each part in its state's colour; ``legend`` is ``(state word,
    text)``."""
    bar_w, label_w, row_h = 360, 260, 22
    height = row_h * (len(rows) + 1) + 10
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' role='img' width='{label_w + bar_w + 60}' height='{height}' "
             f"font-family='sans-serif' font-size='12'><title>{esc(title)}</title>"]
    for i, (label, pieces) in enumerate(rows):
        y = 5 + i * row_h
        parts.append(f"<text x='{label_w - 6}' y='{y + 14}' text-anchor='end' fill='{PALETTE['text']}'>"
                     f"{esc(label)}</text>")
        parts.append(f"<rect x='{label_w}' y='{y + 2}' width='{bar_w}' height='{row_h - 6}' "
                     f"fill='{PALETTE['code-bg']}' stroke='{PALETTE['border']}'/>")
        x = float(label_w)
        for count, word in pieces:
            w = bar_w * count / total if total else 0
            if w > 0:
                parts.append(f"<rect x='{x:.1f}' y='{y + 2}' width='{w:.1f}' height='{row_h - 6}' "
                             f"fill='{colour(word)}'><title>{esc(f'{count} {word}')}</title></rect>")
            x += w
        done = sum(c for c, _ in pieces)
        parts.append(f"<text x='{label_w + bar_w + 6}' y='{y + 14}' fill='{PALETTE['muted']}'>{done}/{total}</text>")
    y = 5 + len(rows) * row_h + 12
    x = label_w
    for word, text in legend:
        parts.append(f"<rect x='{x}' y='{y - 9}' width='10' height='10' fill='{colour(word)}'/>"
                     f"<text x='{x + 14}' y='{y}' fill='{PALETTE['text']}'>{esc(text)}</text>")
        x += 14 + 7 * len(text) + 16
    parts.append("</svg>")
    return Html("".join(parts))


__all__ = ["PALETTE", "FIGURE", "SERIES", "STATE_COLOURS", "PASS_MARK", "FAIL_MARK", "Html", "Num", "esc", "join", "colour",
           "mark", "state", "verdict", "bold", "code", "link", "muted", "note", "hint", "para", "indent", "num",
           "seconds", "card", "section", "items", "table", "fields", "pre", "details", "image", "block",
           "progress_line", "page", "stacked_bars"]
