"""Pattern-based scanner for the HIPAA Safe Harbor identifiers a regex can find.

Why: the course must never hold real PHI.  Synthetic data carries obvious
markers (SSN 999-xx-xxxx, phone 555-0100..555-0199, e-mail at example.org,
MRNs starting "SYN-", documentation IP ranges); the scanner reports those as
*synthetic* (allowed) and everything else that looks like an identifier as
PHI.  It is a guard rail, not a de-identification tool: it finds patterns,
it cannot prove that a text is free of PHI.

Allowlist: a line containing the marker ``phi-scan: allow`` (for example
``# phi-scan: allow -- shows the SSN format``) is not scanned at all.  Use it
only for documentation that must show a pattern, and give a reason.
"""
from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from careops.errors import CareOpsError
from careops.phi.names import FIRST_NAMES, LAST_NAMES, PLACEHOLDER_LAST_NAMES
from careops.report import theme

if TYPE_CHECKING:  # pandas is only needed by the dataframe helpers
    import pandas as pd

ALLOW_MARKER = "phi-scan: allow"
#: What to do when the scan finds PHI: fix the data, never the gate (the allow marker is for documentation).
PHI_FIX = ("keep the test case and replace each value with a synthetic marker (SSN 999-xx-xxxx, phone 555-01xx, "
           "@example.org, SYN- MRNs); do not weaken the gate")
MAX_FILE_BYTES = 5 * 1024 * 1024
KINDS: tuple[str, ...] = (
    "ssn", "phone", "fax", "email", "mrn", "date", "zip", "ip", "url", "name", "account",
)
# Kinds with few false positives: what the repository guard checks.
HIGH_PRECISION_KINDS: tuple[str, ...] = ("ssn", "phone", "email", "mrn", "ip")

SYNTHETIC_DOMAINS = ("example.org", "example.com", "example.net")


class PhiScanError(CareOpsError):
    """A path could not be scanned (missing, unreadable)."""


class FileSkipped(PhiScanError):
    """A file was deliberately not scanned (binary or too large)."""


def mask(value: str) -> str:
    """Hide a value but keep its shape: ``12*-**-***9``.

    Why: reports and notebooks must never echo the PHI they found.  Keeps
    the first two and the last letter/digit (none when the value is short)
    and every separator, so the finding stays recognisable.
    """
    alnum = [i for i, ch in enumerate(value) if ch.isalnum()]
    keep: set[int] = set()
    if len(alnum) >= 6:
        keep = {alnum[0], alnum[1], alnum[-1]}
    return "".join(ch if (i in keep or not ch.isalnum()) else "*" for i, ch in enumerate(value))


@dataclass(frozen=True)
class Finding:
    """One identifier-like match; ``value`` is raw, str()/repr() are masked."""

    kind: str
    value: str = field(repr=False)
    source: str
    line: int
    column: int
    synthetic: bool

    @property
    def masked(self) -> str:
        return mask(self.value)

    @property
    def location(self) -> str:
        return f"{self.source}:{self.line}:{self.column}"

    def __str__(self) -> str:
        status = "synthetic (allowed)" if self.synthetic else "PHI"
        return f"{self.location}: {self.kind} {self.masked} [{status}]"

    def __repr__(self) -> str:
        return (
            f"Finding(kind={self.kind!r}, value={self.masked!r}, source={self.source!r}, "
            f"line={self.line}, column={self.column}, synthetic={self.synthetic})"
        )


@dataclass
class ScanReport:
    """Findings from one or more sources, plus the files that were skipped."""

    findings: list[Finding] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    scanned: int = 0

    @property
    def phi(self) -> list[Finding]:
        """Non-synthetic findings: the ones to fix."""
        return [f for f in self.findings if not f.synthetic]

    @property
    def ok(self) -> bool:
        return not self.phi

    def __str__(self) -> str:
        synthetic = len(self.findings) - len(self.phi)
        head = (
            f"PHI scan: {self.scanned} source(s) scanned, {len(self.phi)} possible PHI, "
            f"{synthetic} synthetic (allowed), {len(self.skipped)} skipped"
        )
        lines = [head]
        lines += [f"  {f}" for f in self.phi]
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped]
        if self.phi:
            lines.append(f"  fix: {PHI_FIX}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        verdict = theme.verdict(self.ok, "no PHI found", f"{len(self.phi)} possible PHI")
        rows = ([f.kind, f.masked, f.location, theme.state("ok" if f.synthetic else "failed",
                                                           "synthetic" if f.synthetic else "PHI")]
                for f in self.findings)
        table = theme.table(rows, header=["kind", "value (masked)", "where", "status"]) if self.findings else ""
        counts = theme.muted(f"{self.scanned} scanned, {len(self.skipped)} skipped")
        fix = "" if self.ok else theme.hint(PHI_FIX)
        return theme.card("PHI scan", theme.para(counts) + table + fix, status=verdict, ok=self.ok)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per finding, values masked (safe to display or save)."""
        import pandas as pd

        columns = ["kind", "value", "source", "line", "column", "synthetic"]
        rows = [
            (f.kind, f.masked, f.source, f.line, f.column, f.synthetic) for f in self.findings
        ]
        return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------
# Detectors.  Each yields (kind, value, start offset, synthetic).

Hit = tuple[str, str, int, bool]

_SSN = re.compile(r"(?<![\w-])(\d{3})-(\d{2})-(\d{4})(?![\w-])")
_SSN_LABELLED = re.compile(r"\bSSN\b\W{0,4}(\d{9})\b", re.IGNORECASE)
_PHONE = re.compile(
    r"(?<![\w.+-])(?:\+?1[\s.-]?)?(?:\(([2-9]\d{2})\)\s?|([2-9]\d{2})[\s.-])"
    r"([2-9]\d{2})[\s.-](\d{4})(?![\w-])"
)
_FAX_CONTEXT = re.compile(r"\bfax\b[^\d\n]{0,15}$", re.IGNORECASE)
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})\b")
_MRN_LABELLED = re.compile(
    r"\b(?:MRN|medical[\s_-]+record(?:[\s_-]+(?:number|no\.?|num|#))?)\b[\"']?\s*[:#=]?\s*[\"']?"
    r"([A-Za-z0-9][A-Za-z0-9-]{3,})",
    re.IGNORECASE,
)
_MRN_SYN = re.compile(r"(?<![\w-])SYN-[A-Za-z0-9-]+")
_ISO_DATE = re.compile(r"(?<![\w-])((?:19|20)\d{2})-(\d{2})-(\d{2})(?![\d])")
_US_DATE = re.compile(r"(?<![\w/])(\d{1,2})/(\d{1,2})/((?:19|20)\d{2})(?![\w/])")
_HL7_PID7 = re.compile(r"PID\|(?:[^|\r\n]*\|){6}((?:19|20)\d{6})")
_ZIP_LABELLED = re.compile(
    r"\b(?:zip|zip\s*code|zipcode|postal\s*code)\b[\"']?\s*[:=]?\s*[\"']?(\d{5}(?:-\d{4})?)(?![\w-])",
    re.IGNORECASE,
)
_ZIP_ADDRESS = re.compile(r",\s*[A-Z]{2}\s+(\d{5}(?:-\d{4})?)(?![\w-])")
_IPV4 = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?![\w]|\.\d)")
_URL = re.compile(r"\b(?:https?|ftp)://[^\s\"'<>()\[\]{}`|\\]+", re.IGNORECASE)
_NAME = re.compile(r"(?=\b([A-Z][a-z]+)[ \t]+([A-Z][a-z']+)\b)")
_ACCOUNT = re.compile(
    r"\b(?:acct|account|policy|member[\s_-]*id)(?:[\s_-]*(?:no\.?|number|num|#|id))?\b"
    r"[\"']?\s*[:#=]?\s*[\"']?([A-Za-z0-9][A-Za-z0-9-]{4,})",
    re.IGNORECASE,
)

_SYNTHETIC_NETS = [
    ipaddress.ip_network(n)
    for n in ("127.0.0.0/8", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
]


def _digits(s: str) -> int:
    return sum(ch.isdigit() for ch in s)


def _ssn(line: str) -> Iterator[Hit]:
    for m in _SSN.finditer(line):
        area, group, serial = m.groups()
        if area == "999":
            yield "ssn", m.group(0), m.start(), True
        elif area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000":
            yield "ssn", m.group(0), m.start(), False
    for m in _SSN_LABELLED.finditer(line):
        v = m.group(1)
        yield "ssn", v, m.start(1), v.startswith("999")


def _phone(line: str) -> Iterator[Hit]:
    for m in _PHONE.finditer(line):
        exchange, number = m.group(3), m.group(4)
        synthetic = exchange == "555" and "0100" <= number <= "0199"
        kind = "fax" if _FAX_CONTEXT.search(line[: m.start()]) else "phone"
        yield kind, m.group(0).strip(), m.start(), synthetic


def _domain_is_synthetic(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "localhost" or any(host == d or host.endswith("." + d) for d in SYNTHETIC_DOMAINS)


def _email(line: str) -> Iterator[Hit]:
    for m in _EMAIL.finditer(line):
        yield "email", m.group(0), m.start(), _domain_is_synthetic(m.group(1))


def _mrn(line: str) -> Iterator[Hit]:
    for m in _MRN_LABELLED.finditer(line):
        v = m.group(1)
        if _digits(v) >= 4:
            yield "mrn", v, m.start(1), v.upper().startswith("SYN-")
    for m in _MRN_SYN.finditer(line):
        yield "mrn", m.group(0), m.start(), True


def _valid_md(month: str, day: str) -> bool:
    return 1 <= int(month) <= 12 and 1 <= int(day) <= 31


def _date(line: str) -> Iterator[Hit]:
    for m in _ISO_DATE.finditer(line):
        if _valid_md(m.group(2), m.group(3)):
            yield "date", m.group(0), m.start(), False
    for m in _US_DATE.finditer(line):
        if _valid_md(m.group(1), m.group(2)):
            yield "date", m.group(0), m.start(), False
    for m in _HL7_PID7.finditer(line):
        v = m.group(1)
        if _valid_md(v[4:6], v[6:8]):
            yield "date", v, m.start(1), False


def _zip(line: str) -> Iterator[Hit]:
    for rx in (_ZIP_LABELLED, _ZIP_ADDRESS):
        for m in rx.finditer(line):
            v = m.group(1)
            yield "zip", v, m.start(1), v[:5] in ("00000", "99999")


def _ip(line: str) -> Iterator[Hit]:
    for m in _IPV4.finditer(line):
        try:
            addr = ipaddress.IPv4Address(m.group(1))
        except ValueError:
            continue
        synthetic = (
            any(addr in net for net in _SYNTHETIC_NETS)
            or addr.is_unspecified  # 0.0.0.0: "listen everywhere", nobody's address
            or str(addr) == "255.255.255.255"
        )
        yield "ip", m.group(1), m.start(1), synthetic


def _url(line: str) -> Iterator[Hit]:
    for m in _URL.finditer(line):
        url = m.group(0).rstrip(".,;:!?")
        host = re.sub(r"^[a-z]+://", "", url, flags=re.IGNORECASE).split("/")[0]
        host = host.rsplit("@", 1)[-1]
        host = host[1:].split("]")[0] if host.startswith("[") else host.split(":")[0]
        synthetic = _domain_is_synthetic(host)
        try:
            synthetic = synthetic or any(ipaddress.IPv4Address(host) in n for n in _SYNTHETIC_NETS)
        except ValueError:
            pass
        yield "url", url, m.start(), synthetic


def _name(line: str) -> Iterator[Hit]:
    for m in _NAME.finditer(line):
        first, last = m.group(1), m.group(2)
        if first in FIRST_NAMES and last in LAST_NAMES:
            yield "name", line[m.start(1):m.end(2)], m.start(1), last in PLACEHOLDER_LAST_NAMES


def _account(line: str) -> Iterator[Hit]:
    for m in _ACCOUNT.finditer(line):
        v = m.group(1)
        if _digits(v) >= 4:
            yield "account", v, m.start(1), v.upper().startswith("SYN-")


_DETECTORS: dict[str, Callable[[str], Iterator[Hit]]] = {
    "ssn": _ssn,
    "mrn": _mrn,
    "account": _account,
    "email": _email,
    "phone": _phone,  # also yields "fax"
    "ip": _ip,
    "date": _date,
    "zip": _zip,
    "name": _name,
    "url": _url,
}
# When two findings overlap, the earlier kind wins (a labelled SSN is not
# also an account number).  URLs never suppress, nor are suppressed: an IP or
# e-mail inside a URL is still reported under its own kind.
_PRIORITY = {k: i for i, k in enumerate(["ssn", "mrn", "account", "email", "fax", "phone", "ip", "date", "zip", "name"])}


def _check_kinds(kinds: Iterable[str] | None) -> frozenset[str]:
    if kinds is None:
        return frozenset(KINDS)
    wanted = frozenset(kinds)
    unknown = wanted - set(KINDS)
    if unknown:
        raise PhiScanError(
            f"unknown PHI kind(s): expected some of {', '.join(KINDS)}, got {', '.join(sorted(unknown))}",
            fix="pass kinds from careops.phi.KINDS",
        )
    return wanted


def _scan_line(line: str, wanted: frozenset[str]) -> list[Hit]:
    hits: list[Hit] = []
    for name, detect in _DETECTORS.items():
        if name == "phone" and not wanted & {"phone", "fax"}:
            continue
        if name != "phone" and name not in wanted:
            continue
        hits.extend(h for h in detect(line) if h[0] in wanted)
    kept: list[Hit] = []
    spans: list[tuple[int, int]] = []
    for hit in sorted(hits, key=lambda h: (_PRIORITY.get(h[0], 99), h[2])):
        kind, value, start, _ = hit
        end = start + len(value)
        if kind != "url":
            if any(start < e and s < end for s, e in spans):
                continue
            spans.append((start, end))
        if hit not in kept:
            kept.append(hit)
    return sorted(kept, key=lambda h: h[2])


def scan_text(
    text: str, *, source: str = "<text>", kinds: Iterable[str] | None = None
) -> list[Finding]:
    """Find identifier-like strings in ``text``; lines with the allow marker are skipped."""
    wanted = _check_kinds(kinds)
    findings: list[Finding] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if ALLOW_MARKER in line:
            continue
        for kind, value, start, synthetic in _scan_line(line, wanted):
            findings.append(Finding(kind, value, source, lineno, start + 1, synthetic))
    return findings


def _notebook_sources(text: str) -> list[tuple[str, str]] | None:
    """(label, source) per cell, or None if this is not notebook JSON."""
    try:
        nb = json.loads(text)
        cells = nb["cells"]
    except (ValueError, KeyError, TypeError):
        return None
    out: list[tuple[str, str]] = []
    for i, cell in enumerate(cells):
        src = cell.get("source", "")
        out.append((f"cell{i}", "".join(src) if isinstance(src, list) else str(src)))
    return out


def scan_file(path: str | Path, *, kinds: Iterable[str] | None = None) -> list[Finding]:
    """Scan one text file; notebooks are scanned cell by cell (sources only).

    Raises FileSkipped for binary or >5 MB files, PhiScanError if unreadable.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FileSkipped(
                f"{p}: not scanned: expected at most {MAX_FILE_BYTES} bytes, got {size}",
                fix="keep large data out of the repository, or scan it in chunks with scan_text",
            )
        data = p.read_bytes()
    except OSError as exc:
        raise PhiScanError(
            f"{p}: cannot read file: {exc.strerror or exc}", fix="check the path and its permissions"
        ) from exc
    if b"\0" in data[:8192]:
        raise FileSkipped(f"{p}: not scanned: binary file (NUL bytes)", fix="none needed for binaries")
    text = data.decode("utf-8", errors="replace")
    if p.suffix == ".ipynb":
        cells = _notebook_sources(text)
        if cells is not None:
            findings: list[Finding] = []
            for label, src in cells:
                findings += scan_text(src, source=f"{p}#{label}", kinds=kinds)
            return findings
    return scan_text(text, source=str(p), kinds=kinds)


_SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", ".mypy_cache", ".pytest_cache"}


def _expand(paths: Iterable[str | Path]) -> Iterator[Path]:
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for child in sorted(p.rglob("*")):
                if child.is_file() and not _SKIP_DIRS & set(child.relative_to(p).parts):
                    yield child
        else:
            yield p


def scan_paths(paths: Iterable[str | Path], *, kinds: Iterable[str] | None = None) -> ScanReport:
    """Scan files and directories; binary and >5 MB files are skipped with a note."""
    report = ScanReport()
    for p in _expand(paths):
        try:
            report.findings += scan_file(p, kinds=kinds)
            report.scanned += 1
        except FileSkipped as exc:
            report.skipped.append((str(p), exc.message.split(": not scanned: ", 1)[-1]))
    return report


def scan_dataframe(
    df: pd.DataFrame, *, name: str = "df", kinds: Iterable[str] | None = None
) -> ScanReport:
    """Scan every cell; source is ``name[column]``, line is the 1-based row position."""
    report = ScanReport()
    for col in df.columns:
        source = f"{name}[{col!r}]"
        for row, value in enumerate(df[col].tolist(), start=1):
            if value is None or (isinstance(value, float) and value != value):
                continue
            for f in scan_text(str(value), source=source, kinds=kinds):
                report.findings.append(
                    Finding(f.kind, f.value, source, row, f.column, f.synthetic)
                )
        report.scanned += 1
    return report

