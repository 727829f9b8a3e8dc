"""The monitoring lab's stack: the ADT service on its own small disk, Prometheus scraping it, a ward sending.

``MonitoringStack.start(lab, rules)`` starts, from nothing:

* ``adt-disk`` -- the storage the service's database lives on: a 16 MiB disk (a
  tmpfs volume) mounted by a small keeper container, through which careops also
  fills it up and frees it again (module 5's "database disk full");
* ``adt`` -- release v2 of the ADT service on that disk (``/metrics`` on 8081);
* ``prometheus`` -- scraping ``adt:8081/metrics`` every second, evaluating the
  learner's rule files every second;
* ``traffic`` (``start_traffic``) -- the ward: HL7 ADT^A01 admissions over MLLP
  at 10 per second, each stamped with its creation time (MSH-7), on a channel
  that can be held (a stuck interface channel).

The incidents (:mod:`careops.monitoring.incidents`) act on these containers;
the drill (:mod:`careops.monitoring.drill`) measures what they did.
"""
from __future__ import annotations

import urllib.request
from typing import Any

from careops import legacy_adt as adt
from careops.errors import LabError, MonitoringError
from careops.images.catalog import ADT_V2, LAB_IMAGE
from careops.lab import Lab
from careops.lab import labels as L
from careops.lab.container import LabContainer
from careops.monitoring.prometheus import Prometheus, wait_answering
from careops.traffic import TrafficPlan, TrafficRun, start_traffic

LAB_NAME = "monitoring"
#: the service's database disk: small, so that it can fill up
DISK_VOLUME, DISK_SIZE = "adt-disk", "16m"
#: the container that mounts the disk for the whole lab (so restarting the service keeps its data)
DISK_KEEPER = "adt-disk"
ADT_UID = 10001
#: the ward's admissions: A01 messages per second (lab time; a busy hospital sends a few per minute)
ADMISSIONS_PER_SECOND = 10.0
#: every container a stack starts, by its short name (what a fresh stack removes first)
STACK_ROLES = (DISK_KEEPER, adt.CONTAINER, "prometheus", "traffic", "noisy-sender", "report-job", "db-reader",
               "promtool")


def open_lab(name: str = LAB_NAME) -> Lab:
    """The notebook's lab (leftovers of an earlier kernel with the same name are removed first)."""
    return Lab(name)


def remove_stack(lab: Lab) -> None:
    """Remove what an earlier exercise (or a crashed cell) left: the service, its disk keeper, Prometheus, traffic."""
    for c in lab.containers():
        if c.labels.get(L.ROLE, "") in STACK_ROLES:
            try:
                c.remove()
            except LabError:
                pass


class MonitoringStack:
    """The ADT service on its own disk, scraped by Prometheus, in a lab (see the module's docstring)."""

    def __init__(self, lab: Lab, adt_container: LabContainer, keeper: LabContainer, prometheus: Prometheus,
                 env: dict[str, str] | None = None) -> None:
        self.lab, self.adt, self.keeper, self.prometheus = lab, adt_container, keeper, prometheus
        self.env = dict(env or {})
        #: the ward's admissions, once started
        self.traffic: TrafficRun | None = None
        #: a noisy sender while it runs (incident noisy-sender)
        self.noisy: TrafficRun | None = None

    @classmethod
    def start(cls, lab: Lab, rules: dict[str, str] | None = None, *, env: dict[str, str] | None = None,
              image: str = ADT_V2) -> "MonitoringStack":
        """A fresh stack (anything an earlier exercise left is removed first): disk, service, Prometheus."""
        remove_stack(lab)
        lab.volume(DISK_VOLUME, size=DISK_SIZE, owner=ADT_UID)
        keeper = lab.run(LAB_IMAGE, name=DISK_KEEPER, user=str(ADT_UID), volumes={DISK_VOLUME: "/data"},
                         command=["sleep", "infinity"], memory="64m", cpus=0.5, pids=32)
        service = cls._start_service(lab, image, env)
        prometheus = Prometheus.start(lab, rules)
        stack = cls(lab, service, keeper, prometheus, env)
        stack.wait_healthy()
        prometheus.wait_scraped()
        return stack

    @staticmethod
    def _start_service(lab: Lab, image: str, env: dict[str, str] | None) -> LabContainer:
        return lab.run(image, name=adt.CONTAINER, volumes={DISK_VOLUME: "/data"}, env=env or {},
                       ports=[adt.HTTP_PORT, adt.MLLP_PORT], memory="256m", cpus=1.0, pids=128)

    # -- the service -------------------------------------------------------------------
    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.adt.port(adt.HTTP_PORT)}"

    @property
    def mllp_address(self) -> tuple[str, int]:
        return "127.0.0.1", self.adt.port(adt.MLLP_PORT)

    def metrics_text(self) -> str:
        """What the service answers on /metrics right now (what Prometheus scrapes)."""
        with urllib.request.urlopen(f"{self.http_url}/metrics", timeout=5) as r:
            return r.read().decode()

    def wait_healthy(self, timeout: float = 30) -> None:
        if not wait_answering(f"{self.http_url}{adt.HEALTH_PATH}", timeout=timeout,
                              alive=lambda: self.adt.state().status == "running"):
            state = self.adt.state()
            raise MonitoringError(f"the ADT service did not become healthy ({state.status}, exit {state.exit_code}); "
                                  f"its last lines:\n{self.adt.logs(10)}",
                                  fix=f"careops labs reset {self.lab.name} --yes, then run the cell again")

    def restart_service(self) -> None:
        """Stop the service gracefully (SIGTERM: it finishes what it holds) and start the same release again."""
        image = self.adt.image_name
        self.adt.remove()
        self.adt = self._start_service(self.lab, image, self.env)
        self.wait_healthy()

    # -- the ward ---------------------------------------------------------------------
    def start_admissions(self, seconds: float, *, rate: float = ADMISSIONS_PER_SECOND) -> TrafficRun:
        """The ward's admissions for ``seconds``: A01 over MLLP straight to the service, MSH-7 stamped."""
        plan = TrafficPlan(duration=seconds, http_rate=0.0, mllp_rate=rate, target=adt.CONTAINER,
                           mllp_port=adt.MLLP_PORT, http_port=adt.HTTP_PORT, stamp_created=True, grace=10.0)
        self.traffic = start_traffic(self.lab, plan)
        return self.traffic

    def stop_noise(self) -> None:
        """Block the noisy sender, if one runs (its channel disabled: the container removed)."""
        if self.noisy is not None:
            try:
                self.noisy.container.remove()
            except LabError:
                pass
            self.noisy = None

    def stored_ids(self, prefix: str) -> list[str]:
        """Control ids starting with ``prefix`` in the service's database (read through the disk's keeper)."""
        code = ("import json, sqlite3, sys\n"
                "con = sqlite3.connect('/data/adt.db', timeout=30)\n"
                "rows = con.execute(\"SELECT control_id FROM processed_messages WHERE control_id LIKE ?\","
                " (sys.argv[1] + '%',)).fetchall()\n"
                "print(json.dumps([r[0] for r in rows]))\n")
        res = self.keeper.exec(["python3", "-c", code, prefix], timeout=60, check=False)
        if not res.ok:
            raise MonitoringError(f"could not read the service's database (exit {res.exit_code}): "
                                  f"{res.output.strip()[-300:]}", fix="check that the service has run on its disk")
        import json

        return list(json.loads(res.output.strip().splitlines()[-1]))

    def __repr__(self) -> str:
        return f"<monitoring stack of lab {self.lab.name}: Prometheus at {self.prometheus.address()}>"

    def _repr_html_(self) -> str:
        from careops.report import theme

        rows: list[tuple[Any, ...]] = []
        for c in (self.keeper, self.adt, self.prometheus.container):
            rows.append((c.labels.get(L.ROLE, c.name), theme.code(c.image_name), theme.state(c.state().status)))
        return theme.card(f"monitoring lab {self.lab.name}", theme.table(rows, ["container", "image", "state"])
                          + theme.fields({"Prometheus (web UI and API)": self.prometheus.address()}))


__all__ = ["ADMISSIONS_PER_SECOND", "DISK_KEEPER", "DISK_SIZE", "DISK_VOLUME", "LAB_NAME", "MonitoringStack",
           "open_lab", "remove_stack"]
