"""The router running in a Lab: start it, switch or re-weight it safely, see who answers.

Every change goes the same way: careops renders nginx.conf, copies it into
the router as a *candidate*, and the router's own ``careops-router-apply``
runs ``nginx -t`` on it; only a candidate that passes replaces the live config,
followed by ``nginx -s reload`` (graceful: old workers finish what they hold).
A rejected config changes nothing: the previous generation keeps serving.
"""
from __future__ import annotations

import collections
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import docker.errors

from careops.errors import LabError, RouterConfigError
from careops.images.catalog import ROUTER_IMAGE
from careops.lab import Lab
from careops.lab.container import LabContainer
from careops.router.config import (HTTP_PORT, MLLP_PORT, STATUS_PORT, RouterConfig, parse_router_config,
                                   render_nginx)
from careops.report import theme

ROUTER_UID = 10010
CONFIG_DIR = "/etc/careops-router"


@dataclass(frozen=True)
class ReloadResult:
    """One applied config: its generation and how long validate + reload took until the new config answered."""

    generation: int
    seconds: float
    config: RouterConfig

    def _repr_html_(self) -> str:
        body = theme.para(theme.esc(f"serving after {self.seconds * 1000:.0f} ms (nginx -t, then graceful reload)"))
        return theme.card(f"Router generation {self.generation}", body + self.config._repr_html_())


class Router:
    """A careops router (nginx) in a lab; other lab containers reach it as ``<name>:8080`` and ``<name>:2575``."""

    def __init__(self, lab: Lab, container: LabContainer, config: RouterConfig, generation: int) -> None:
        self.lab = lab
        self.container = container
        self.config = config
        self.generation = generation
        self.history: list[ReloadResult] = []

    # -- lifecycle ----------------------------------------------------------
    @classmethod
    def start(cls, lab: Lab, config: str | dict[str, Any] | RouterConfig, *, name: str = "router",
              image: str = ROUTER_IMAGE, timeout: float = 20) -> "Router":
        """Start the router and apply ``config`` (validated first, like every later change)."""
        cfg = parse_router_config(config)
        container = lab.run(image, name=name, ports=[HTTP_PORT, MLLP_PORT, STATUS_PORT], memory="128m",
                            cpus=1.0, pids=64)
        router = cls(lab, container, cfg, 0)
        router._wait_generation(0, timeout=timeout)
        router.apply(cfg)
        return router

    @property
    def name(self) -> str:
        return self.container.labels.get("org.careops.role", "router")

    def check_alive(self) -> None:
        """Raise a clear error when the router container is gone or stopped (killed mid-lab)."""
        try:
            status = self.container.status
        except LabError:
            status = "removed"
        if status != "running":
            raise LabError(f"the router is not running (container {self.container.name} is {status}); "
                           "HTTP and MLLP traffic through it fail until it is back",
                           fix=f"start it again with Router.start(lab, config), or 'careops labs reset "
                               f"{self.lab.name}' and run the lab's cells from the top")

    # -- ports ----------------------------------------------------------------
    def host_port(self, container_port: int) -> int:
        return self.container.port(container_port)

    @property
    def http_url(self) -> str:
        """The router's HTTP entry from the host (127.0.0.1 only)."""
        return f"http://127.0.0.1:{self.host_port(HTTP_PORT)}"

    @property
    def mllp_address(self) -> tuple[str, int]:
        return "127.0.0.1", self.host_port(MLLP_PORT)

    # -- config ---------------------------------------------------------------
    def _put(self, text: str, filename: str) -> None:
        try:
            self.container.put_files(CONFIG_DIR, {filename: text.encode()}, mode=0o640, uid=ROUTER_UID, gid=ROUTER_UID)
        except docker.errors.APIError as exc:
            self.check_alive()
            raise LabError(f"could not copy the router config into {self.container.name}: {exc.explanation or exc}",
                           fix="check the router with router.container.logs()") from None

    def live_config(self) -> str:
        """The nginx.conf the router serves right now (read back from the container)."""
        return self.container.exec(["cat", f"{CONFIG_DIR}/nginx.conf"], timeout=10).output

    def validate(self, config: str | dict[str, Any] | RouterConfig) -> RouterConfig:
        """Parse the YAML and let nginx test the rendered config, changing nothing; raise if either fails."""
        cfg = parse_router_config(config)
        self.check_alive()
        self._put(render_nginx(cfg, generation=self.generation + 1), "candidate.conf")
        res = self.container.exec(["careops-router-test", f"{CONFIG_DIR}/candidate.conf"], check=False, timeout=20)
        if not res.ok:
            raise self._rejected(res.output)
        return cfg

    def _rejected(self, output: str) -> RouterConfigError:
        lines = [ln for ln in output.strip().splitlines() if "emerg" in ln or "error" in ln or "rejected" in ln]
        detail = "\n    ".join(lines or output.strip().splitlines()[-5:])
        return RouterConfigError(
            f"nginx rejected the router config (nginx -t failed); the router keeps serving generation "
            f"{self.generation} ({', '.join(b.address for b in self.config.http)}). nginx said:\n    {detail}",
            fix="'host not found in upstream' means no running lab container has that name: start the service "
                "first or fix the host; otherwise fix the line nginx names and apply again")

    def apply(self, config: str | dict[str, Any] | RouterConfig, *, timeout: float = 15) -> ReloadResult:
        """Validate (YAML, then ``nginx -t``) and switch with a graceful reload; wait until the new config answers."""
        cfg = parse_router_config(config)
        self.check_alive()
        generation = self.generation + 1
        started = time.monotonic()
        self._put(render_nginx(cfg, generation=generation), "candidate.conf")
        res = self.container.exec(["careops-router-apply"], check=False, timeout=20)
        if not res.ok:
            raise self._rejected(res.output)
        self._wait_generation(generation, timeout=timeout)
        result = ReloadResult(generation, time.monotonic() - started, cfg)
        self.config, self.generation = cfg, generation
        self.history.append(result)
        return result

    def serving_generation(self) -> int | None:
        """The generation the router's workers answer with now (None: no answer)."""
        try:
            url = f"http://127.0.0.1:{self.host_port(STATUS_PORT)}/router-status"
            with urllib.request.urlopen(url, timeout=2) as r:
                return int(r.read().decode().split()[-1])
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def _wait_generation(self, generation: int, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            current = self.serving_generation()
            if current == generation:
                return
            if time.monotonic() > deadline:
                self.check_alive()
                raise LabError(f"the router did not serve config generation {generation} within {timeout:g} s "
                               f"(it answers {current!r})",
                               fix="read router.container.logs() for nginx's errors")
            time.sleep(0.02)

    # -- who answers ------------------------------------------------------------
    def who_answers(self, requests: int = 20) -> collections.Counter[str]:
        """Send ``requests`` GET /health through the router; count the release that answered each
        (``X-Service-Version``, else the body's version, else "v1"); failures count as "error"."""
        self.check_alive()
        seen: collections.Counter[str] = collections.Counter()
        for _ in range(requests):
            try:
                with urllib.request.urlopen(f"{self.http_url}/health", timeout=5) as r:
                    body = json.loads(r.read() or b"{}")
                    seen[r.headers.get("X-Service-Version") or body.get("version") or "v1"] += 1
            except (OSError, ValueError, urllib.error.URLError):
                seen["error"] += 1
        return seen

    def _repr_html_(self) -> str:
        title = theme.join(["Router ", theme.code(self.container.name), f", generation {self.generation}"])
        return theme.card(title, self.config._repr_html_())
