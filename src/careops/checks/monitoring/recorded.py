"""Module 5's recorded data: months of admissions and series of incidents, with their right answers.

Exercise 2 (error budgets, burn rates) is graded on months of per-minute
admissions built here; every right answer is written out by hand next to the
construction it was worked out from -- never computed by a reference the
learner could call. Exercise 3 (alerting rules) is graded with promtool on the
series in labs/monitoring/series (recorded from live drills, or constructed
when they span hours) and the expectations listed here.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from careops.monitoring.series import Fires, RecordValue, SeriesCase

# -- exercise 2: months of admissions --------------------------------------------------------

COLUMNS = ["minute", "admissions", "in_time"]


def _month(start: str, days: int, *, day: int = 15, night: int = 5) -> pd.DataFrame:
    """Per minute from ``start`` (UTC, no zone): ``day`` admissions a minute from 06:00 to 21:59, ``night`` from
    22:00 to 05:59, all stored in time."""
    minutes = pd.date_range(start, periods=days * 1440, freq="min")
    hour = minutes.hour
    admissions = np.where((hour >= 6) & (hour < 22), day, night).astype(int)
    return pd.DataFrame({"minute": minutes, "admissions": admissions, "in_time": admissions.copy()})


def _set(frame: pd.DataFrame, first: str, last: str, **columns: int) -> None:
    rows = (frame["minute"] >= pd.Timestamp(first)) & (frame["minute"] <= pd.Timestamp(last))
    for column, value in columns.items():
        frame.loc[rows, column] = value


def admissions_month(name: str = "practice") -> pd.DataFrame:
    """A recorded month (or week) of A01 admissions per minute: ``minute``, ``admissions`` (received),
    ``in_time`` (stored, ACK AA, within 2 s of creation). Names: see MONTH_ANSWERS."""
    if name in ("practice", "overspent", "clean"):
        frame = _month("2025-03-01", 30)  # 16 h x 60 x 15 + 8 h x 60 x 5 = 16,800 a day; 504,000 in 30 days
        if name != "clean":
            for d in range(1, 31):  # a daily batch at 08:15 collides with 3 of that minute's 15 admissions
                _set(frame, f"2025-03-{d:02d} 08:15", f"2025-03-{d:02d} 08:15", in_time=12)  # 30 x 3 = 90 bad
            _set(frame, "2025-03-04 10:00", "2025-03-04 10:19", in_time=0)  # disk full: 20 x 15 = 300 bad
            _set(frame, "2025-03-12 02:00", "2025-03-12 03:29", admissions=0, in_time=0)  # feed stuck 90 min ...
            _set(frame, "2025-03-12 03:30", "2025-03-12 03:30", admissions=455, in_time=5)  # ... 450 arrive late
            _set(frame, "2025-03-19 14:00", "2025-03-19 15:59", in_time=10)  # slow database: 120 x 5 = 600 late
        if name == "overspent":
            _set(frame, "2025-03-25 09:00", "2025-03-25 11:59", in_time=0)  # three hours down: 180 x 15 = 2700
        return frame
    if name == "quiet-clinic":
        frame = _month("2025-06-01", 7, day=2, night=2)  # 2 a minute: 2,880 a day, 20,160 in the week
        _set(frame, "2025-06-03 00:00", "2025-06-03 00:59", in_time=0)  # one hour refused: 60 x 2 = 120 bad
        return frame
    raise KeyError(f"no recorded month {name!r}: expected one of {', '.join(MONTH_ANSWERS)}")


#: error_budget's right answers, worked out by hand from the constructions above
#: (allowed_bad = admissions x (1 - objective); budget_used = bad / allowed_bad; budget_left = 1 - budget_used)
MONTH_ANSWERS: dict[str, dict[str, Any]] = {
    # bad = 90 + 300 + 450 + 600 = 1,440; allowed = 504,000 x 0.005 = 2,520; used = 1,440 / 2,520 = 4/7
    "practice": {"objective": 0.995, "admissions": 504_000, "bad": 1_440, "sli": 1 - 1_440 / 504_000,
                 "allowed_bad": 2_520.0, "budget_used": 4 / 7, "budget_left": 3 / 7},
    # + 2,700: bad = 4,140; used = 4,140 / 2,520 = 23/14 -- overspent: budget_left is negative, not clipped
    "overspent": {"objective": 0.995, "admissions": 504_000, "bad": 4_140, "sli": 1 - 4_140 / 504_000,
                  "allowed_bad": 2_520.0, "budget_used": 23 / 14, "budget_left": 1 - 23 / 14},
    "clean": {"objective": 0.995, "admissions": 504_000, "bad": 0, "sli": 1.0, "allowed_bad": 2_520.0,
              "budget_used": 0.0, "budget_left": 1.0},
    # a 99 % objective: allowed = 20,160 x 0.01 = 201.6; used = 120 / 201.6
    "quiet-clinic": {"objective": 0.99, "admissions": 20_160, "bad": 120, "sli": 1 - 120 / 20_160,
                     "allowed_bad": 201.6, "budget_used": 120 / 201.6, "budget_left": 1 - 120 / 201.6},
}
BUDGET_KEYS = ["admissions", "bad", "sli", "allowed_bad", "budget_used", "budget_left"]
PRACTICE_MONTHS = ["practice"]
GRADED_MONTHS = ["overspent", "clean", "quiet-clinic"]

#: burn_rate's right answers: (month, objective, window, minute, burn rate); the window is (minute - window, minute]
#: burn rate = (bad / admissions in the window) / (1 - objective); NaN where the window has no admissions
BurnCase = tuple[str, float, str, str, float]
PRACTICE_BURNS: list[BurnCase] = [
    # 09:20-10:19 on the 4th: 60 x 15 = 900 admissions, 20 x 15 = 300 bad: 1/3 / 0.005 = 66.67
    ("practice", 0.995, "1h", "2025-03-04 10:19", 200 / 3),
    # 10:31-11:30: all in time
    ("practice", 0.995, "1h", "2025-03-04 11:30", 0.0),
    # 02:01-03:00 on the 12th: the feed was stuck, no admissions at all: nothing to judge
    ("practice", 0.995, "1h", "2025-03-12 03:00", float("nan")),
    # 02:31-03:30: only 03:30 has admissions, 455 of which 450 late: (450/455) / 0.005
    ("practice", 0.995, "1h", "2025-03-12 03:30", 450 / 455 / 0.005),
]
GRADED_BURNS: list[BurnCase] = [
    # 11:00-16:59 on the 19th: 360 x 15 = 5,400 admissions, 600 late: 1/9 / 0.005 = 22.22
    ("practice", 0.995, "6h", "2025-03-19 16:59", 200 / 9),
    # 07:16-08:15 on the 7th: 900 admissions, the batch's 3 bad: (3/900) / 0.005 = 2/3
    ("practice", 0.995, "1h", "2025-03-07 08:15", 2 / 3),
    # 08:15-09:14: the batch minute is still in the window ...
    ("practice", 0.995, "1h", "2025-03-07 09:14", 2 / 3),
    # ... and at 09:15 (08:16-09:15) it is not
    ("practice", 0.995, "1h", "2025-03-07 09:15", 0.0),
    # 09:36-10:05 on the 4th: 30 x 15 = 450, 6 x 15 = 90 bad: 0.2 / 0.005 = 40
    ("practice", 0.995, "30min", "2025-03-04 10:05", 40.0),
    # 03:30-04:29 on the 12th: 455 (450 late) + 59 x 5 = 750 admissions, 450 bad: 0.6 / 0.005 = 120 -- not the
    # mean of each minute's ratio (that would be about 3.3)
    ("practice", 0.995, "1h", "2025-03-12 04:29", 120.0),
    # 21:31-22:30 on the 19th: 29 x 15 + 31 x 5 = 590 admissions, none bad
    ("practice", 0.995, "1h", "2025-03-19 22:30", 0.0),
    # 23:31 on the 2nd - 00:30 on the 3rd: 120 admissions, 31 x 2 = 62 refused: (62/120) / 0.01 = 51.67
    ("quiet-clinic", 0.99, "1h", "2025-06-03 00:30", 62 / 120 / 0.01),
    ("quiet-clinic", 0.99, "1h", "2025-06-03 01:59", 0.0),
]


# -- exercise 3: alerting rules on recorded series ------------------------------------------------

#: the alerts the learner writes, and the severity each must carry
ALERTS = {"ADTAdmissionsFastBurn": "page", "ADTAdmissionsSlowBurn": "ticket", "ADTFeedSilent": "page",
          "ADTDatabaseWriteErrors": "page", "ADTNakFlood": "ticket"}
#: the recording rules the burn-rate alerts stand on
RECORDS = ["adt:admissions_bad_ratio:rate5m", "adt:admissions_bad_ratio:rate30m", "adt:admissions_bad_ratio:rate1h",
           "adt:admissions_bad_ratio:rate6h"]
FAST, SLOW, SILENT, DB, NAK = ALERTS


def _silent(*alerts: str, start: int = 0, end: int) -> tuple[Fires, ...]:
    return tuple(Fires(a, start, end, fires=False) for a in alerts)


#: the recorded drills run 60 s; their incident starts at 20 s and is ended at 35 s
PRACTICE_CASES: list[SeriesCase] = [
    SeriesCase("a healthy minute", "healthy",
               (*_silent(*ALERTS, start=15, end=59), RecordValue(RECORDS[0], 50, -0.001, 0.001))),
    SeriesCase("the database disk fills up", "disk-full",
               (Fires(DB, 20, 30), Fires(FAST, 20, 35), *_silent(SILENT, NAK, start=15, end=59),
                *_silent(DB, FAST, start=15, end=19))),
    SeriesCase("the ward's feed stops, silently", "feed-stops",
               (Fires(SILENT, 20, 36), *_silent(DB, NAK, start=15, end=59), *_silent(SILENT, start=15, end=19))),
]
GRADED_CASES: list[SeriesCase] = [
    SeriesCase("a report job slows the database down", "slowdown",
               (Fires(FAST, 20, 35), *_silent(DB, SILENT, NAK, start=15, end=59), *_silent(FAST, start=15, end=19))),
    SeriesCase("a lab analyser floods the feed", "noisy-sender",
               (Fires(NAK, 20, 30), *_silent(FAST, SILENT, DB, start=15, end=59), *_silent(NAK, start=15, end=19))),
    SeriesCase("a one-minute outage after a quiet morning", "blip",
               (*_silent(FAST, SLOW, start=0, end=23445), Fires(DB, 21600, 21700),
                *_silent(DB, start=21900, end=23445))),  # ... and stops once the writes succeed again
    SeriesCase("5 % of admissions stored late for two hours", "slow-leak",
               (Fires(SLOW, 7200, 10785), *_silent(FAST, DB, start=0, end=10785), *_silent(SLOW, start=0, end=3600),
                RecordValue(RECORDS[1], 7200, 0.045, 0.055), RecordValue(RECORDS[3], 3600, -0.001, 0.001))),
    SeriesCase("a quiet night: one admission every five seconds", "quiet-night",
               _silent(SILENT, FAST, SLOW, start=30, end=599)),
]


__all__ = ["ALERTS", "BUDGET_KEYS", "COLUMNS", "GRADED_BURNS", "GRADED_CASES", "GRADED_MONTHS", "MONTH_ANSWERS",
           "PRACTICE_BURNS", "PRACTICE_CASES", "PRACTICE_MONTHS", "RECORDS", "admissions_month"]
