"""Prometheus running in a lab: started with the lab's scrape config and rule files, read through its HTTP API.

careops renders ``prometheus.yml`` (scrape the ADT service every second,
evaluate the rules every second: lab time is compressed), copies it and the
rule files into a ``careops/prometheus`` container, and reads what Prometheus
knows through its HTTP API on a port published on 127.0.0.1: instant and
range queries, the alerts and their state, the health of every rule. There is
no fake metrics store: what a check sees is what Prometheus scraped.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from careops import legacy_adt as adt
from careops.errors import LabError, MonitoringError
from careops.images.catalog import PROMETHEUS_IMAGE
from careops.lab import Lab
from careops.lab.container import LabContainer

PROMETHEUS_PORT = 9090
PROMETHEUS_UID = 10020
CONFIG_DIR = "/etc/careops-prometheus"
#: the job name the service is scraped as (``up{job="adt"}``)
ADT_JOB = "adt"
#: lab time: Prometheus scrapes and evaluates every second (production would use 15-60 s)
SCRAPE_SECONDS = 1


def prometheus_config(targets: tuple[str, ...] = (f"{adt.CONTAINER}:{adt.HTTP_PORT}",), *,
                      interval: float = SCRAPE_SECONDS) -> str:
    """The lab's prometheus.yml: the ADT service scraped every second (``interval``); every rule file in rules/
    loaded and evaluated as often."""
    listed = ", ".join(f'"{t}"' for t in targets)
    every = f"{round(interval * 1000)}ms"
    return (f"global:\n  scrape_interval: {every}\n  scrape_timeout: {every}\n"
            f"  evaluation_interval: {every}\n"
            f"rule_files:\n  - {CONFIG_DIR}/rules/*.yml\n"
            f"scrape_configs:\n  - job_name: {ADT_JOB}\n    static_configs:\n      - targets: [{listed}]\n")


def wait_answering(url: str, *, timeout: float, alive: Callable[[], object]) -> bool:
    """Poll ``url`` until it answers 200 (True) or ``timeout`` passes (False); ``alive()`` is called between
    tries and raises (or returns False) when the container behind the URL stopped."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        if alive() is False or time.monotonic() > deadline:
            return False
        time.sleep(0.1)


@dataclass(frozen=True)
class Alert:
    """One alert as Prometheus reports it: its name, state (pending or firing), labels and since when."""

    name: str
    state: str
    labels: dict[str, str]
    active_at: float


class Prometheus:
    """A Prometheus container of a lab; careops talks to its API from the host."""

    def __init__(self, lab: Lab, container: LabContainer) -> None:
        self.lab, self.container = lab, container
        self._url: str | None = None

    @classmethod
    def start(cls, lab: Lab, rules: dict[str, str] | None = None, *, name: str = "prometheus",
              targets: tuple[str, ...] = (f"{adt.CONTAINER}:{adt.HTTP_PORT}",), interval: float = SCRAPE_SECONDS,
              timeout: float = 60) -> "Prometheus":
        """Start Prometheus with ``rules`` (file name -> rule file text), scraping every ``interval`` seconds,
        and wait until it answers."""
        container = lab.run(PROMETHEUS_IMAGE, name=name, ports=[PROMETHEUS_PORT], memory="256m", cpus=1.0,
                            pids=128)
        files = {"prometheus.yml": prometheus_config(targets, interval=interval).encode()}
        files.update({f"rules/{n}": text.encode() for n, text in (rules or {}).items()})
        files["go"] = b""  # last: careops-prometheus-start waits for it
        container.put_files(CONFIG_DIR, files, mode=0o640, uid=PROMETHEUS_UID, gid=PROMETHEUS_UID)
        prom = cls(lab, container)
        prom.wait_ready(timeout)
        return prom

    # -- the API ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Prometheus' web UI and API from the host (127.0.0.1 only)."""
        if self._url is None:
            self._url = f"http://127.0.0.1:{self.container.port(PROMETHEUS_PORT)}"
        return self._url

    def address(self) -> str:
        """The web UI's address, or why there is none (not published, container gone)."""
        try:
            return self.url
        except LabError as exc:
            return exc.message

    def _get(self, path: str, params: dict[str, Any] | None = None, *, method: str = "GET") -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        request = urllib.request.Request(self.url + path + query, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                body = r.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            try:
                detail = json.loads(detail).get("error", detail)
            except ValueError:
                pass
            raise MonitoringError(f"Prometheus answered {exc.code} to {path}: {detail}",
                                  fix="check the query; read prometheus.container.logs() for more") from None
        except OSError as exc:
            self.check_alive()
            raise MonitoringError(f"Prometheus did not answer {path}: {exc}",
                                  fix="wait a moment and try again; prometheus.container.logs() says more") from None
        if not body:
            return None
        data = json.loads(body)
        if isinstance(data, dict) and data.get("status") == "error":
            raise MonitoringError(f"Prometheus refused {path}: {data.get('error')}", fix="check the query")
        return data.get("data") if isinstance(data, dict) and "data" in data else data

    def check_alive(self) -> None:
        """Raise a clear error when the Prometheus container stopped (e.g. a rule file it could not load)."""
        try:
            state = self.container.state()
        except LabError:
            raise MonitoringError("the Prometheus container is gone (its lab was reset or closed)",
                                  fix="start the monitoring lab again") from None
        if state.status != "running":
            raise MonitoringError(f"Prometheus stopped (exit {state.exit_code}); its last lines:\n"
                                  f"{self.container.logs(15)}",
                                  fix="read the lines above; a rule file Prometheus cannot load stops it at start")

    def wait_ready(self, timeout: float = 60) -> None:
        if not wait_answering(f"{self.url}/-/ready", timeout=timeout, alive=self.check_alive):
            raise MonitoringError(f"Prometheus was not ready within {timeout:g} s",
                                  fix="read prometheus.container.logs()")

    def query(self, expr: str, at: float | None = None, *, wait: float = 0.0) -> pd.DataFrame:
        """An instant query: one row per series with its labels as columns and ``value``; ``wait`` seconds for
        a first answer (a rate over a window needs a few scrapes first)."""
        deadline = time.monotonic() + wait
        while True:
            frame = self._query(expr, at)
            if len(frame) or time.monotonic() >= deadline:
                return frame
            time.sleep(0.5)

    def _query(self, expr: str, at: float | None) -> pd.DataFrame:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        rows = []
        if data["resultType"] == "scalar":
            return pd.DataFrame([{"value": float(data["result"][1])}])
        for item in data["result"]:
            rows.append({**item["metric"], "value": float(item["value"][1])})
        return pd.DataFrame(rows)

    def value(self, expr: str, default: float | None = None) -> float | None:
        """The single value of an instant query (the sum when it returns several series)."""
        frame = self.query(expr)
        return float(frame["value"].sum()) if len(frame) else default

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> pd.DataFrame:
        """A range query: one row per (series, time) with the labels as columns, ``t`` (epoch s) and ``value``."""
        data = self._get("/api/v1/query_range", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                                 "step": f"{step:g}"})
        rows = []
        for item in data["result"]:
            for t, v in item["values"]:
                rows.append({**item["metric"], "t": float(t), "value": float(v)})
        return pd.DataFrame(rows)

    def alerts(self) -> list[Alert]:
        """Every pending or firing alert now."""
        out = []
        for a in self._get("/api/v1/alerts")["alerts"]:
            labels = dict(a.get("labels") or {})
            out.append(Alert(labels.get("alertname", ""), str(a.get("state", "")), labels,
                             pd.Timestamp(a["activeAt"]).timestamp() if a.get("activeAt") else 0.0))
        return out

    def rule_health(self) -> pd.DataFrame:
        """One row per loaded rule: group, name, type, health and the last evaluation error."""
        rows = []
        for group in self._get("/api/v1/rules")["groups"]:
            for rule in group["rules"]:
                rows.append({"group": group["name"], "name": rule["name"], "type": rule["type"],
                             "health": rule.get("health", ""), "error": rule.get("lastError", "")})
        return pd.DataFrame(rows, columns=["group", "name", "type", "health", "error"])

    def target_up(self) -> bool:
        """Whether the last scrape of the ADT service succeeded."""
        return (self.value(f'up{{job="{ADT_JOB}"}}', 0.0) or 0.0) >= 1

    def scrape_error(self) -> str:
        """Why the last scrape of the service failed ("" when it did not)."""
        targets = self._get("/api/v1/targets").get("activeTargets", [])
        return "; ".join(str(t.get("lastError")) for t in targets if t.get("lastError"))

    def wait_scraped(self, timeout: float = 30) -> None:
        """Wait until Prometheus scraped the service successfully."""
        deadline = time.monotonic() + timeout
        while not self.target_up():
            if time.monotonic() > deadline:
                why = self.scrape_error()
                fix = ("the service's image has no /metrics: it is older than this course; run `make images` "
                       "(or `careops images build legacy-adt-v2`), then this cell again") if "404" in why else \
                    "check that the service runs: lab.container('adt').logs()"
                raise MonitoringError(f"Prometheus could not scrape {adt.CONTAINER}:{adt.HTTP_PORT}/metrics within "
                                      f"{timeout:g} s: {why or 'no answer'}", fix=fix)
            time.sleep(0.2)

    def put_rules(self, rules: dict[str, str]) -> None:
        """Replace rule files (file name -> text) and reload; Prometheus keeps its old rules if it refuses them."""
        self.container.put_files(f"{CONFIG_DIR}/rules", {n: t.encode() for n, t in rules.items()}, mode=0o640,
                                 uid=PROMETHEUS_UID, gid=PROMETHEUS_UID)
        self._get("/-/reload", method="POST")

    def _repr_html_(self) -> str:
        from careops.report import theme

        return theme.card("Prometheus", theme.fields({"container": self.container.name,
                                                      "web UI and API": self.address(),
                                                      "scrapes": f"{adt.CONTAINER}:{adt.HTTP_PORT}/metrics every "
                                                                 f"{SCRAPE_SECONDS} s"}))


__all__ = ["ADT_JOB", "Alert", "PROMETHEUS_PORT", "Prometheus", "SCRAPE_SECONDS", "prometheus_config",
           "wait_answering"]
