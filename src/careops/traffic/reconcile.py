"""Reconcile what the sender believes with what the database holds: none lost, none stored twice.

A deployment is safe for an admissions feed only if every message the sender
got an AA for is stored exactly once. ``reconcile`` compares the traffic
record (the sender's view) with the control ids found in the database(s).
"""
from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

import pandas as pd

from careops.errors import LabError
from careops.images.catalog import LAB_IMAGE
from careops.lab import Lab
from careops.report import theme


@dataclass
class ReconcileReport:
    """Per control id: sent, acknowledged, stored -- and every id where they disagree."""

    sent: int
    acked: int
    stored: int
    #: ACKed (AA) but not in the database: the sender will never resend these
    lost: list[str] = field(default_factory=list)
    #: in the database more than once (e.g. once in blue's database and once in green's)
    duplicated: list[str] = field(default_factory=list)
    #: sent, but no ACK ever came (the sender gave up)
    unanswered: list[str] = field(default_factory=list)
    #: refused with AE/AR (the sender knows; not a loss, but a failed message)
    nacked: list[str] = field(default_factory=list)
    #: NAKed or unanswered yet stored anyway
    stored_unacked: list[str] = field(default_factory=list)
    #: stored but never sent by this run
    unexpected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every message sent was ACKed and is stored exactly once, and nothing else is stored."""
        return not (self.lost or self.duplicated or self.unanswered or self.nacked or self.stored_unacked
                    or self.unexpected)

    def problems(self) -> list[str]:
        out = []
        for name in ("lost", "duplicated", "unanswered", "nacked", "stored_unacked", "unexpected"):
            ids = getattr(self, name)
            if ids:
                out.append(f"{len(ids)} {name.replace('_', ' ')}: {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}")
        return out

    def __str__(self) -> str:
        head = f"{self.sent} sent, {self.acked} ACKed, {self.stored} stored"
        return head + (": every message ACKed and stored exactly once" if self.ok else ": " + "; ".join(self.problems()))

    def _repr_html_(self) -> str:
        status = theme.verdict(self.ok, "reconciled", "NOT reconciled")
        body = theme.para(theme.esc(f"{self.sent} sent, {self.acked} ACKed, {self.stored} stored"))
        return theme.card("MLLP messages against the database", body + theme.items((False, theme.esc(p))
                                                                                  for p in self.problems()),
                          status=status, ok=self.ok)


def _ids(db_rows: Iterable[Any] | pd.DataFrame) -> list[str]:
    if isinstance(db_rows, pd.DataFrame):
        return [str(x) for x in db_rows["control_id"]]
    out = []
    for row in db_rows:
        if isinstance(row, dict):
            out.append(str(row["control_id"]))
        elif isinstance(row, (tuple, list)):
            out.append(str(row[0]))
        else:
            out.append(str(row))
    return out


def reconcile(frame: pd.DataFrame, db_rows: Iterable[Any] | pd.DataFrame) -> ReconcileReport:
    """Compare the traffic record's MLLP messages with the stored control ids.

    ``db_rows``: control ids (strings, ``(control_id, ...)`` rows, dicts or a
    DataFrame with a ``control_id`` column) from every database involved --
    concatenate them when blue and green each had their own.
    """
    mllp = frame[frame["kind"] == "mllp"]
    sent = list(dict.fromkeys(str(x) for x in mllp["id"]))
    acked = set(str(x) for x in mllp[mllp["ok"]]["id"])
    final = mllp.groupby("id").tail(1)
    nak_final = set(str(i) for i, s in zip(final["id"], final["status"]) if s in ("AE", "AR", "CE", "CR"))
    stored = collections.Counter(_ids(db_rows))
    sent_set = set(sent)
    return ReconcileReport(
        sent=len(sent), acked=len(acked), stored=sum(stored.values()),
        lost=[i for i in sent if i in acked and stored[i] == 0],
        duplicated=sorted(i for i, n in stored.items() if n > 1),
        unanswered=[i for i in sent if i not in acked and i not in nak_final],
        nacked=[i for i in sent if i not in acked and i in nak_final],
        stored_unacked=[i for i in sent if i not in acked and stored[i] > 0],
        unexpected=sorted(i for i in stored if i not in sent_set),
    )


_READER = """
import json, sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=30)
rows = con.execute("SELECT control_id FROM processed_messages WHERE control_id LIKE ? ORDER BY control_id",
                   (sys.argv[2] + "%",)).fetchall()
print(json.dumps([r[0] for r in rows]))
"""


def stored_control_ids(lab: Lab, volume: str, prefix: str, *, db_path: str = "/data/adt.db",
                       user: str = "10001") -> list[str]:
    """Control ids starting with ``prefix`` in the ADT database on a lab volume, read by a short-lived container
    (whichever service containers are up or gone)."""
    with lab.run(LAB_IMAGE, name="db-reader", user=user, volumes={volume: "/data"}, wait=False,
                 command=["python3", "-c", _READER, db_path, prefix], memory="64m", cpus=0.5, pids=16) as reader:
        code = reader.wait(timeout=60)
        out = reader.logs(None, stderr=False)
        err = reader.logs(None, stdout=False)
    if code != 0:
        raise LabError(f"could not read {db_path} on volume {volume} (exit {code}): {err.strip()[-500:]}",
                       fix="check that the service has run on that volume (it creates the database)")
    return list(json.loads(out.strip().splitlines()[-1]))
