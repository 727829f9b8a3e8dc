"""Module 5's benchmarks (``careops bench``): the solution's drill times, and what scraping costs the service.

* :func:`drill_times` runs the notebook's solution (rules and runbook) through the
  graded drill a few times: time to detect and time to recover, against the floor
  any rule has (one scrape and one evaluation: 2 s in lab time).
* :func:`scrape_overhead` measures the ADT service's MLLP throughput in one lab,
  rounds without Prometheus and with Prometheus scraping ``/metrics`` (at the
  lab's 1 s, and ten times as often), in a rotating order, so every figure comes
  from the same run on the same container.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from careops import legacy_adt as adt
from careops.errors import MonitoringError
from careops.hl7 import build_adt, send_batches
from careops.lab import Lab
from careops.images.catalog import ADT_V2
from careops.monitoring.prometheus import SCRAPE_SECONDS, Prometheus, wait_answering
from careops.paths import lab_asset


@dataclass
class DrillTimes:
    incident: str
    detect: list[float] = field(default_factory=list)
    recover: list[float] = field(default_factory=list)
    detected_by: list[str] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)


def drill_times(repeat: int = 3, *, incident: str = "disk-full") -> DrillTimes:
    """The solution's drill ``repeat`` times: time to detect and to recover (each must have happened)."""
    from careops.monitoring.drill import run_drill

    rules = lab_asset("monitoring/solution/rules.yml").read_text()
    runbook = lab_asset("monitoring/solution/runbook.yml").read_text()
    out = DrillTimes(incident)
    with Lab("bench-drill", learner="bench") as lab:
        for _ in range(repeat):
            run = run_drill(lab, rules, runbook, incident=incident, progress=False)
            if run.time_to_detect is None or run.time_to_recover is None:
                raise MonitoringError(f"the solution's drill of {incident} was not detected or not recovered: "
                                      f"{run.measurements()}", fix="run `careops bench --only drill` again; check "
                                                                   "the prometheus and legacy-adt images")
            out.detect.append(run.time_to_detect)
            out.recover.append(run.time_to_recover)
            out.detected_by.append(str(run.detected_by))
            out.lost.append(len(run.reconcile.lost))
    return out


@dataclass
class ScrapeOverhead:
    """Messages per second in alternating rounds: without Prometheus, scraped every 1 s, every 0.1 s."""

    without: list[float] = field(default_factory=list)
    lab_rate: list[float] = field(default_factory=list)
    ten_times: list[float] = field(default_factory=list)
    scrapes: int = 0


    def median(self, name: str) -> float:
        return statistics.median(getattr(self, name))


def _throughput(address: tuple[str, int], messages: int, connections: int, tag: str) -> float:
    per = messages // connections
    batches = [[build_adt("A08", control_id=f"{tag}-{k}-{i}", mrn=f"SYN-B{i % 50:04d}", family="Benchmark",
                          given="Alex", birth_date="19800101", sex="F") for i in range(per)]
               for k in range(connections)]  # updates of 50 patients: the database stays small on its tmpfs disk
    elapsed, failures = send_batches(*address, batches)
    if failures:
        raise MonitoringError(f"{len(failures)} benchmark messages were refused, e.g. {failures[0]}",
                              fix="check the service: careops labs ls")
    return per * connections / elapsed


def scrape_overhead(*, messages: int = 8000, connections: int = 4, rounds: int = 3) -> ScrapeOverhead:
    """The service's MLLP throughput without and with Prometheus scraping it, alternating in one lab."""
    from careops.monitoring.stack import DISK_VOLUME, MonitoringStack

    out = ScrapeOverhead()
    with Lab("bench-scrape", learner="bench") as lab:
        lab.volume(DISK_VOLUME, size="256m", owner=10001)
        service = MonitoringStack._start_service(lab, ADT_V2, None)
        health = f"http://127.0.0.1:{service.port(adt.HTTP_PORT)}{adt.HEALTH_PATH}"
        if not wait_answering(health, timeout=30, alive=lambda: service.state().status == "running"):
            raise MonitoringError(f"the service did not answer {adt.HEALTH_PATH}: {service.logs(10)}",
                                  fix="check the legacy-adt:v2 image: careops images build legacy-adt-v2")
        address = ("127.0.0.1", service.port(adt.MLLP_PORT))
        _throughput(address, 2000, connections, "WARM")  # first connections, database created, caches warm
        configs = [("without", None), ("lab_rate", SCRAPE_SECONDS), ("ten_times", 0.1)]
        for r in range(rounds):
            for name, interval in configs[r % 3:] + configs[:r % 3]:  # each round starts with another one
                prom = Prometheus.start(lab, interval=interval) if interval else None
                try:
                    if prom is not None:
                        prom.wait_scraped()
                    getattr(out, name).append(_throughput(address, messages, connections, f"R{r}{name[:3]}"))
                    if prom is not None:
                        out.scrapes += int(prom.value('count_over_time(up{job="adt"}[1h])', 0.0) or 0)
                finally:
                    if prom is not None:
                        prom.container.remove()
    return out


__all__ = ["DrillTimes", "ScrapeOverhead", "drill_times", "scrape_overhead"]
