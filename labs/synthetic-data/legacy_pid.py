"""Riverside General's PID-5 name helpers, as the legacy interface engine has them (2009).

Used by the hypothesis exercise of module 4. HL7 v2 escapes its own
delimiters inside a field: | as \\F\\, ^ as \\S\\, & as \\T\\, ~ as \\R\\, and
the escape character itself, \\, as \\E\\. ``format_name`` builds the PID-5
field (family^given) from a name and ``parse_name`` reads it back. For almost
every name the two agree. This file contains one planted bug that shows only
on an edge case: find it with a property-based test, not by reading.
"""
import re

ESCAPES = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"}
UNESCAPES = {"E": "\\", "F": "|", "S": "^", "T": "&", "R": "~"}


def escape(text):
    """Escape HL7 delimiters in one component."""
    return "".join(ESCAPES.get(ch, ch) for ch in text)


def unescape(text):
    """Undo ``escape`` (in one pass, so an unescaped character is never read again)."""
    return re.sub(r"\\([EFSTR])\\", lambda m: UNESCAPES[m.group(1)], text)


def format_name(family, given):
    """PID-5 (XPN) from a family and a given name: family^given, each component escaped."""
    return escape(family) + "^" + escape(given)


def parse_name(field):
    """(family, given) from a PID-5 field written by ``format_name``."""
    parts = unescape(field).split("^")
    family = parts[0]
    given = parts[1] if len(parts) > 1 else ""
    return family, given
