"""Is module 3's stack still up? ``stack_status(lab)`` names what is down and what that does to the ward.

Why: a router or release killed mid-lab (by the learner, the OOM killer, a crashed kernel) otherwise shows
up later as puzzling 502s or a rollout that "fails" for reasons unrelated to its spec. This reads every lab
container from the engine and says, one sentence each, what is down, what it means for traffic, what to do.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from careops.errors import LabError
from careops.images.catalog import ADT_REPOSITORY, ROUTER_REPOSITORY
from careops.lab import Lab
from careops.lab import labels as L
from careops.lab.container import LabContainer
from careops.report import theme

ROUTER, RELEASE, TRAFFIC, OTHER = "router", "release", "traffic", "other"
#: containers that must exist for the stack to serve (a missing one is reported as "missing")
EXPECTED = ("router",)
_WHAT_IT_MEANS = {
    ROUTER: "every HTTP request and HL7 message to the ward fails",
    RELEASE: "the router's requests to it fail (HTTP 502/504, HL7 messages unacknowledged)",
    TRAFFIC: "its traffic record is incomplete",
    OTHER: "whatever it was doing did not finish",
}


@dataclass(frozen=True)
class ContainerState:
    """One lab container as the engine sees it now (``state`` is "missing" for an expected one that is gone)."""

    name: str
    role: str
    state: str
    exit_code: int | None = None
    killed: bool = False
    release: str = ""
    log_tail: str = ""

    @property
    def down(self) -> bool:
        """Router and releases must run; a traffic or helper container that finished cleanly is fine."""
        if self.role in (ROUTER, RELEASE):
            return self.state != "running"
        return self.killed or self.state in ("missing", "dead") or (self.state == "exited" and self.exit_code != 0)

    def problem(self, lab: str) -> str:
        """What is down, what it means for traffic, and the next step -- one plain sentence."""
        ended = f"exited with {self.exit_code}" if self.exit_code is not None else f"is {self.state}"
        how = ("is missing (removed)" if self.state == "missing"
               else f"is not running ({ended}{', killed' if self.killed else ''})" if self.role == ROUTER
               else f"{ended} (killed)" if self.killed else ended if self.exit_code is not None
               else f"{ended}, not running")
        start = f"lab.container({self.name!r}).start()"
        only = {ROUTER: f"restart only it: {start}",
                RELEASE: f"restart only it: {start}, then router.apply(router.config) so the router finds its new "
                         "address"}.get(self.role, "run the cell that started it again")
        who = "the router" if self.role == ROUTER else self.name + (f" ({self.release})" if self.release else "")
        return (f"{who} {how}: {_WHAT_IT_MEANS[self.role]}. Next: 'careops labs reset {lab} --yes' then run the "
                f"notebook from \"Set up\", or {'start only it again' if self.state == 'missing' else only}.")


def _role(short: str, image: str) -> str:
    if short == "router" or image.startswith(ROUTER_REPOSITORY):
        return ROUTER
    if image.startswith(ADT_REPOSITORY):
        return RELEASE
    return TRAFFIC if short == "traffic" else OTHER


def _tag(image: str) -> str:
    """"careops/legacy-adt:v1" -> "v1" (a registry port's colon is not a tag)."""
    return image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""


def _read(c: LabContainer) -> ContainerState:
    image = c.attrs.get("Config", {}).get("Image", "")
    short = c.labels.get(L.ROLE, c.name)
    state = c.state(reload=False)
    status, code, killed = state.status, state.exit_code, state.killed
    try:
        tail = "" if status == "running" else "\n".join(c.logs(10).strip().splitlines()[-5:])
    except Exception:  # noqa: BLE001 - removed meanwhile: no logs is the honest answer
        tail = ""
    return ContainerState(short, _role(short, image), status, code, killed, _tag(image), tail)


@dataclass
class StackStatus:
    """Every container of a lab's stack, and the problems of those that are down."""

    lab: str
    containers: list[ContainerState] = field(default_factory=list)

    @property
    def down(self) -> list[ContainerState]:
        return [c for c in self.containers if c.down]

    @property
    def ok(self) -> bool:
        return not self.down

    @property
    def problems(self) -> list[str]:
        return [c.problem(self.lab) for c in self.down]

    def get(self, name: str) -> ContainerState | None:
        return next((c for c in self.containers if c.name == name), None)

    def raise_if_down(self) -> None:
        """Raise LabError naming every part that is down (before a rollout blames its spec for it)."""
        if self.problems:
            logs = [f"last log lines of {c.name}:\n    " + c.log_tail.replace("\n", "\n    ")
                    for c in self.down if c.log_tail]
            raise LabError(f"lab {self.lab}: {len(self.problems)} part(s) of the stack are down, expected all "
                           "running:\n  - " + "\n  - ".join(self.problems + logs),
                           fix=f"careops labs reset {self.lab} --yes, then run the notebook from \"Set up\"")

    def __str__(self) -> str:
        head = f"lab {self.lab}: " + ("ok" if self.ok else "DOWN")
        rows = [f"  {c.name:<14} {c.role:<8} {c.release or '-':<10} {c.state}"
                + (f" (exit {c.exit_code}{', killed' if c.killed else ''})" if c.exit_code is not None else "")
                for c in self.containers]
        return "\n".join([head, *rows, *(f"  ! {p}" for p in self.problems)])

    def _repr_html_(self) -> str:
        rows = ([c.name, c.role, c.release or "-", theme.state("down" if c.down else c.state, c.state),
                 "" if c.exit_code is None else theme.num(c.exit_code, "(killed)" if c.killed else "")]
                for c in self.containers)
        body = theme.table(rows, header=["container", "role", "release", "state", "exit"])
        body += theme.items((False, theme.esc(p)) for p in self.problems)
        return theme.card(theme.join(["Lab ", theme.code(self.lab)]), body,
                          status=theme.verdict(self.ok, "ok", "down"), ok=self.ok)


def stack_status(lab: Lab, *, expected: tuple[str, ...] = EXPECTED) -> StackStatus:
    """Read every container of ``lab`` from the engine; an ``expected`` one that is gone is "missing"."""
    found = sorted((_read(c) for c in lab.containers()), key=lambda s: s.name)
    names = {s.name for s in found}
    missing = [ContainerState(n, _role(n, ""), "missing") for n in expected if n not in names]
    return StackStatus(lab.name, missing + found)
