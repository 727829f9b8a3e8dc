"""The one look of every careops result object in a notebook, nbconvert HTML and graded feedback.

Result objects build their HTML from these pieces instead of writing their own
styles: one palette, one pass/fail mark, one card, one table (text left-aligned,
numbers right-aligned). Everything is inline-styled HTML that renders the same in
JupyterLab, in nbconvert's HTML and offline (no fonts, no scripts, no CDN). Marks
are plain Unicode symbols every font has, never emoji.
"""
from __future__ import annotations

import html as _html
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
}

#: Colour per state word used across the toolkit (pipeline steps, deployments, containers).
STATE_COLOURS: dict[str, str] = {
    "success": PALETTE["ok"], "ok": PALETTE["ok"], "passed": PALETTE["ok"], "approved": PALETTE["ok"],
    "healthy": PALETTE["ok"], "running": PALETTE["ok"], "promoted": PALETTE["ok"],
    "failure": PALETTE["fail"], "failed": PALETTE["fail"], "timed-out": PALETTE["fail"], "denied": PALETTE["fail"],
    "down": PALETTE["fail"], "error": PALETTE["fail"], "unhealthy": PALETTE["fail"], "rolled-back": PALETTE["fail"],
    "waiting-approval": PALETTE["warn"], "not-approved": PALETTE["warn"], "aborted": PALETTE["warn"],
    "starting": PALETTE["warn"], "skipped": PALETTE["muted"], "exited": PALETTE["muted"],
}

PASS_MARK = "\u2714"   # heavy check mark (text presentation)
FAIL_MARK = "\u2718"   # heavy ballot x
HINT_LABEL = "hint"


def esc(value: Any) -> str:
    """HTML-escape ``value`` (anything: it is turned into text first)."""
    return _html.escape("" if value is None else str(value))


def colour(ok_or_state: bool | str) -> str:
    """The palette colour of a pass/fail or of a state word (unknown words are neutral)."""
    if isinstance(ok_or_state, bool):
        return PALETTE["ok"] if ok_or_state else PALETTE["fail"]
    return STATE_COLOURS.get(str(ok_or_state), PALETTE["text"])


def mark(ok: bool) -> str:
    """A coloured check mark or cross."""
    return f"<span style='color:{colour(ok)};font-weight:bold'>{PASS_MARK if ok else FAIL_MARK}</span>"


def state(word: str, text: str | None = None) -> str:
    """A state word (``success``, ``down`` ...) in its colour."""
    return f"<span style='color:{colour(word)};font-weight:bold'>{esc(text if text is not None else word)}</span>"


def verdict(ok: bool, ok_text: str = "ok", fail_text: str = "failed") -> str:
    """The verdict of a result: a mark and its word, coloured."""
    return f"{mark(ok)} <span style='color:{colour(ok)};font-weight:bold'>{esc(ok_text if ok else fail_text)}</span>"


def code(text: Any) -> str:
    return f"<code>{esc(text)}</code>"


def hint(text: str) -> str:
    """A hint line under a failed criterion."""
    return f"<div style='color:{PALETTE['muted']};font-size:90%'><b>{HINT_LABEL}:</b> {esc(text)}</div>" if text else ""


def card(title: str, body: str = "", *, status: str = "", ok: bool | None = None) -> str:
    """A result's frame: a title line (with its status or verdict) and the body under it.

    ``status`` is HTML (e.g. from :func:`verdict`); ``ok`` colours the left border.
    """
    edge = PALETTE["border"] if ok is None else colour(ok)
    head = f"<b>{esc(title)}</b>" + (f" &mdash; {status}" if status else "")
    inner = f"<div style='margin-top:0.3em'>{body}</div>" if body else ""
    return (f"<div class='careops-result' style='border-left:4px solid {edge};padding:0.3em 0.7em;"
            f"margin:0.3em 0;color:{PALETTE['text']}'>{head}{inner}</div>")


def items(entries: Iterable[tuple[bool | None, str]]) -> str:
    """A list of lines, each ``(ok, html)``: ok True/False gets a mark, None a neutral bullet."""
    lis = []
    for ok, body in entries:
        lead = mark(ok) if ok is not None else "&bull;"
        lis.append(f"<li style='list-style:none;margin:0.15em 0'>{lead} {body}</li>")
    return f"<ul style='padding-left:0.3em;margin:0.2em 0'>{''.join(lis)}</ul>"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def table(rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None, *, raw: bool = False) -> str:
    """A plain table: text left-aligned, numbers right-aligned. ``raw`` cells are HTML already."""
    cell = "padding:0.15em 0.6em;border-bottom:1px solid " + PALETTE["border"]
    out = ["<table style='border-collapse:collapse;margin:0.3em 0'>"]
    if header:
        out.append("<tr>" + "".join(f"<th style='{cell};text-align:left'>{esc(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        tds = []
        for value in row:
            align = "right" if _is_number(value) else "left"
            text = str(value) if raw else esc(value)
            tds.append(f"<td style='{cell};text-align:{align}'>{text}</td>")
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</table>")
    return "".join(out)


def fields(values: Mapping[str, Any]) -> str:
    """Name/value pairs as a two-column table (a result's summary)."""
    return table(((k, v) for k, v in values.items()))


__all__ = ["PALETTE", "STATE_COLOURS", "PASS_MARK", "FAIL_MARK", "esc", "colour", "mark", "state", "verdict",
           "code", "hint", "card", "items", "table", "fields"]
