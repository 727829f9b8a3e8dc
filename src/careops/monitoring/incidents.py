"""Incidents that are not a deployment, injected into a running monitoring stack, and the runbook actions.

Each :class:`Incident` knows how to happen to a :class:`~careops.monitoring.stack.MonitoringStack` and
which runbook action ends it. The actions (:data:`ACTIONS`) are what an on-call engineer may do from a
runbook; careops executes the one the learner's runbook names when the learner's alert fires -- careops'
own code, the same in the learner's lab and in the grader:

============== ================================================ ==========================
incident       what happens                                     the action that ends it
============== ================================================ ==========================
disk-full      an export job fills the database's disk          ``free-disk``
slowdown       a report job locks the database for seconds      ``stop-report-job``
feed-stops     the ward's interface channel hangs, silently     ``restart-feed``
noisy-sender   a lab analyser floods the ADT port with results  ``block-sender``
============== ================================================ ==========================

``restart-service`` (the reflex) and ``page`` (wake a person, change nothing) end none of them.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from careops import legacy_adt as adt
from careops.errors import LabError, MonitoringError
from careops.images.catalog import LAB_IMAGE
from careops.traffic import TrafficPlan, start_traffic

if TYPE_CHECKING:
    from careops.monitoring.stack import MonitoringStack

#: where the export job writes on the database's disk (free-disk removes it)
EXPORT_DIR = "/data/export"
#: the report job holds the database's write lock this long, then lets go briefly
LOCK_SECONDS, GAP_SECONDS = 3.5, 0.5
#: the misconfigured analyser's results per second
NOISE_PER_SECOND = 40.0

_FILL = (f"python3 -c \"import sqlite3; sqlite3.connect('/data/adt.db', timeout=10)"
         f".execute('PRAGMA wal_checkpoint(TRUNCATE)')\" ; mkdir -p {EXPORT_DIR} && "
         f"dd if=/dev/zero of={EXPORT_DIR}/adt-export-full.bin bs=64k 2>/dev/null; df -k /data | tail -1")
_REPORT_JOB = f"""
import sqlite3, time
con = sqlite3.connect('/data/adt.db', timeout=60, isolation_level=None)
while True:
    con.execute('BEGIN IMMEDIATE')
    con.execute('SELECT ward, COUNT(*) FROM visits GROUP BY ward').fetchall()
    time.sleep({LOCK_SECONDS})
    con.execute('COMMIT')
    time.sleep({GAP_SECONDS})
"""


class AnalyserResults(TrafficPlan):
    """A lab analyser's interface pointed at the wrong port: ORU^R01 results (synthetic) sent to the ADT feed."""

    def messages(self) -> list[tuple[str, str]]:
        out = []
        for i in range(int(self.mllp_rate * self.duration)):
            control_id = f"{self.prefix}-{i:05d}"
            out.append((control_id, "\r".join([
                f"MSH|^~\\&|LAB-ANALYSER|SYNTH-HOSP|LEGACY-ADT|SYNTH-HOSP|20250101000000||ORU^R01^ORU_R01|"
                f"{control_id}|P|2.5",
                f"PID|1||SYN-{self.prefix[3:]}{i:05d}^^^SYNTH-HOSP^MR||Testperson^Sam",
                "OBR|1|||2823-3^Potassium^LN",
                "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||F"])))
        return out


# -- runbook actions --------------------------------------------------------------------

@dataclass(frozen=True)
class Action:
    """One runbook action: what it does, in the words of the runbook, and how careops does it."""

    name: str
    does: str
    run: Callable[["MonitoringStack"], None]


def _free_disk(stack: "MonitoringStack") -> None:
    stack.keeper.exec(["sh", "-c", f"rm -rf {EXPORT_DIR}"], timeout=30)


def _stop_report_job(stack: "MonitoringStack") -> None:
    _remove(stack, "report-job")


def _restart_feed(stack: "MonitoringStack") -> None:
    if stack.traffic is not None:
        stack.traffic.hold(False)


def _block_sender(stack: "MonitoringStack") -> None:
    stack.stop_noise()


def _remove(stack: "MonitoringStack", name: str) -> None:
    try:
        stack.lab.container(name).remove()
    except LabError:
        pass  # not running: nothing to stop


ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("free-disk", "remove the export files an export job left on the database's disk", _free_disk),
    Action("stop-report-job", "stop the report job that holds the database", _stop_report_job),
    Action("restart-feed", "restart the ward's interface channel (it sends what it held)", _restart_feed),
    Action("block-sender", "block the sender that floods the ADT port (disable its channel)", _block_sender),
    Action("restart-service", "restart the ADT service (graceful: it finishes what it holds)",
           lambda stack: stack.restart_service()),
    Action("page", "page the on-call engineer; change nothing", lambda stack: None),
)}


# -- incidents -------------------------------------------------------------------------

@dataclass(frozen=True)
class Incident:
    """One kind of incident: its story, how careops makes it happen, and the action that ends it."""

    kind: str
    title: str
    story: str
    fix: str
    inject: Callable[["MonitoringStack"], None]

    def mitigate(self, stack: "MonitoringStack") -> None:
        """What the right runbook action does (careops ends an undetected incident this way after the drill)."""
        ACTIONS[self.fix].run(stack)


def _fill_disk(stack: "MonitoringStack") -> None:
    res = stack.keeper.exec(["sh", "-c", _FILL], timeout=60, check=False)
    free = res.output.split()
    if len(free) < 4 or free[3] != "0":
        raise MonitoringError(f"the database's disk did not fill up: {res.output.strip()[-200:]}",
                              fix="run the drill again; careops labs reset monitoring --yes if it repeats")


def _start_report_job(stack: "MonitoringStack") -> None:
    from careops.monitoring.stack import ADT_UID, DISK_VOLUME

    stack.lab.run(LAB_IMAGE, name="report-job", user=str(ADT_UID), volumes={DISK_VOLUME: "/data"},
                  command=["python3", "-c", _REPORT_JOB], memory="64m", cpus=0.5, pids=16)


def _hold_feed(stack: "MonitoringStack") -> None:
    if stack.traffic is None:
        raise MonitoringError("the ward's traffic is not running: nothing to stop",
                              fix="start the admissions first (stack.start_admissions)")
    stack.traffic.hold(True)


def _start_noise(stack: "MonitoringStack") -> None:
    traffic = stack.traffic
    seconds = traffic.plan.duration if traffic is not None else 30.0
    plan = AnalyserResults(duration=seconds, http_rate=0.0, mllp_rate=NOISE_PER_SECOND, target=adt.CONTAINER,
                           mllp_port=adt.MLLP_PORT, grace=2.0, prefix="NZ-" + secrets.token_hex(3).upper())
    stack.noisy = start_traffic(stack.lab, plan, name="noisy-sender")


INCIDENTS: dict[str, Incident] = {i.kind: i for i in (
    Incident("disk-full", "the database disk fills up",
             "A nightly export job writes its files to the disk the ADT database lives on, until the disk is full. "
             "The service keeps running and answering: every admission gets an AE (internal error) and is not "
             "stored. /health still says ok.", "free-disk", _fill_disk),
    Incident("slowdown", "a report job slows the database down",
             f"A new bed-management report locks the ADT database for {LOCK_SECONDS:g} s at a time, again and "
             "again. Every admission is still stored, but many only seconds after the registration desk sent it.",
             "stop-report-job", _start_report_job),
    Incident("feed-stops", "the ward's feed stops, silently",
             "The interface channel of the ward's registration system hangs: it keeps queueing admissions but "
             "sends none. Nothing fails, nothing is logged as an error; the ADT service simply hears nothing.",
             "restart-feed", _hold_feed),
    Incident("noisy-sender", "a lab analyser floods the feed",
             f"After a network change, a lab analyser sends its results (ORU^R01, {NOISE_PER_SECOND:g} per second) "
             "to the ADT port. Every one is rejected (AR): the results never reach the lab system, and the flood "
             "of rejections hides any real error.", "block-sender", _start_noise),
)}


def incident(kind: str) -> Incident:
    """The incident called ``kind``."""
    if kind not in INCIDENTS:
        raise MonitoringError(f"no incident {kind!r}: expected one of {', '.join(INCIDENTS)}",
                              fix=f"run_drill(..., incident={next(iter(INCIDENTS))!r})")
    return INCIDENTS[kind]


__all__ = ["ACTIONS", "Action", "AnalyserResults", "INCIDENTS", "Incident", "incident"]
