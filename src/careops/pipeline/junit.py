"""JUnit XML for a pipeline run: what CI dashboards and graders read.

A ``testsuite`` per job, a ``testcase`` per step; a failed or timed-out step
is a ``failure`` carrying the tail of its log, a skipped step is ``skipped``
(with the reason), and a job that never ran (skipped, denied, not approved)
is one skipped testcase saying why.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from careops.pipeline.results import RunResults

#: Characters of a failed step's log put into its <failure>.
LOG_TAIL = 4000
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("?", text)


def junit_xml(run: RunResults) -> str:
    """The run as a JUnit XML document (a string)."""
    root = ET.Element("testsuites", name=f"{run.workflow.name} {run.run_id}")
    totals = {"tests": 0, "failures": 0, "skipped": 0, "time": 0.0}
    for job in run.jobs.values():
        suite = ET.SubElement(root, "testsuite", name=job.id)
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        steps = job.steps
        if not steps:
            case = ET.SubElement(suite, "testcase", classname=job.id, name="(job not run)", time="0")
            ET.SubElement(case, "skipped", message=_clean(f"{job.status}: {job.message}"))
            counts["tests"] += 1
            counts["skipped"] += 1
        for step in steps:
            counts["tests"] += 1
            case = ET.SubElement(suite, "testcase", classname=job.id, name=_clean(f"{step.index + 1:02d} {step.name}"),
                                 time=f"{step.seconds:.3f}")
            if step.status in ("failure", "timed-out"):
                counts["failures"] += 1
                fail = ET.SubElement(case, "failure", message=_clean(f"{step.status}: {step.message}"),
                                     type=step.status)
                fail.text = _clean(step.log[-LOG_TAIL:])
            elif step.status == "skipped":
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=_clean(step.message or "skipped"))
            if step.log and step.status not in ("failure", "timed-out"):
                ET.SubElement(case, "system-out").text = _clean(step.log[-LOG_TAIL:])
        suite.set("tests", str(counts["tests"]))
        suite.set("failures", str(counts["failures"]))
        suite.set("errors", "0")
        suite.set("skipped", str(counts["skipped"]))
        suite.set("time", f"{job.seconds:.3f}")
        for k, n in counts.items():
            totals[k] += n
        totals["time"] += job.seconds
    for k, v in totals.items():
        root.set(k, f"{v:.3f}" if k == "time" else str(v))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def write_junit(run: RunResults, path: str | Path) -> Path:
    """Write the JUnit XML file (parent folders are created)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(junit_xml(run), encoding="utf-8")
    return target
