"""Module 3 lab faults: a backend or router killed mid-lab is detected and reported with the next step, and
`careops labs reset LAB --yes` (the real CLI) removes the broken stack so a fresh one serves v1 again."""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from careops.errors import LabError
from careops.lab import Lab, find
from careops.rollout import HealthCheck
from careops.rollout.drills import fresh_stack
from careops.rollout.health import ContainerState, StackStatus, stack_status
from careops.traffic import TrafficPlan, start_traffic
from careops.report import theme

LEARNER = "pytest"
ROUTER_CONFIG = ("http:\n  backends:\n    - {host: adt-blue, port: 8081, weight: 100}\n"
                 "mllp:\n  backends:\n    - {host: adt-blue, port: 2575, weight: 100}\n")
CAREOPS = Path(sys.executable).with_name("careops")


@pytest.fixture
def lab_factory() -> Iterator:
    """Open labs by name; every lab opened here is closed (all its resources removed) even if a test fails."""
    opened: list[Lab] = []

    def open_lab(name: str) -> Lab:
        lab = Lab(name, learner=LEARNER)
        opened.append(lab)
        return lab

    yield open_lab
    for lab in opened:
        lab.close()


# -- no engine needed ------------------------------------------------------------------

def test_problem_sentences_say_what_is_down_what_it_means_and_what_to_do() -> None:
    status = StackStatus("ward-lab", [
        ContainerState("router", "router", "missing"),
        ContainerState("adt-blue", "release", "exited", 137, True, "v1", "last line"),
        ContainerState("adt-green", "release", "running", release="v2"),
        ContainerState("traffic", "traffic", "exited", 0),
    ])
    assert not status.ok
    assert [c.name for c in status.down] == ["router", "adt-blue"]
    router, blue = status.problems
    assert router.startswith("the router is missing (removed): every HTTP request and HL7 message to the ward fails")
    assert blue.startswith("adt-blue (v1) exited with 137 (killed): the router's requests to it fail")
    for sentence in (router, blue):
        assert "careops labs reset ward-lab --yes" in sentence and "Set up" in sentence
    assert "lab.container('adt-blue').start(), then router.apply(router.config)" in blue
    with pytest.raises(LabError, match="2 part\\(s\\) of the stack are down") as info:
        status.raise_if_down()
    assert "adt-blue (v1) exited with 137" in str(info.value)
    assert "careops labs reset ward-lab" in (info.value.fix or "")
    page = status._repr_html_()
    down = [theme.state("down", "missing"), theme.state("down", "exited")]  # the rows of what is down, in red
    assert all(page.count(s) == 1 for s in down) and "careops-table" in page
    assert "exit 137, killed" in str(status)
    healthy = StackStatus("ward-lab", [ContainerState("router", "router", "running", release="latest"),
                                       ContainerState("traffic", "traffic", "exited", 0)])
    assert healthy.ok and healthy.problems == []
    healthy.raise_if_down()


# -- with the engine --------------------------------------------------------------------

@pytest.mark.docker
def test_a_backend_killed_mid_traffic_fails_requests_and_is_reported(lab_factory) -> None:
    lab = lab_factory("recovery-backend")
    controller = fresh_stack(lab, ROUTER_CONFIG)
    assert stack_status(lab).ok, str(stack_status(lab))
    run = start_traffic(lab, TrafficPlan(duration=5, http_rate=40, mllp_rate=1, grace=1))
    time.sleep(2.5)
    kill_asked = time.time()
    lab.container("adt-blue").kill()
    killed_at = time.time()
    record = run.wait(progress=False)

    http = record.http  # requests in flight around the kill may go either way: compare 0.5 s either side
    before, after = http[http["t_send"] < kill_asked - 0.5], http[http["t_send"] > killed_at + 0.5]
    assert len(before) > 20 and before["ok"].all(), before[~before["ok"]].head()
    assert len(after) > 20 and not after["ok"].any(), after[after["ok"]].head()  # only one backend: all fail
    assert record.summary()["mllp_unanswered"] >= 1  # HL7 messages after the kill got no ACK

    status = stack_status(lab)
    blue = status.get("adt-blue")
    assert blue is not None and (blue.state, blue.exit_code, blue.killed, blue.release) == ("exited", 137, True, "v1")
    assert status.get("router").state == "running"  # the router itself is fine
    assert not status.ok and len(status.problems) == 1
    assert status.problems[0].startswith("adt-blue (v1) exited with 137 (killed): the router's requests to it fail")
    assert "careops labs reset recovery-backend --yes" in status.problems[0]
    with pytest.raises(LabError, match="adt-blue"):
        status.raise_if_down()
    healthy, why = controller.wait_healthy("adt-blue", HealthCheck(successes=1, timeout_seconds=3))
    assert not healthy and why.startswith("adt-blue is exited")

    lab.container("adt-blue").start()  # the sentence's "restart only it" path: restart, re-resolve, serve
    controller.router.apply(controller.router.config)
    assert controller.wait_healthy("adt-blue", HealthCheck(successes=1, timeout_seconds=20))[0]
    assert controller.router.who_answers(5) == {"v1": 5}
    assert stack_status(lab).ok


@pytest.mark.docker
def test_a_killed_router_is_reported_and_check_alive_raises(lab_factory) -> None:
    lab = lab_factory("recovery-router")
    controller = fresh_stack(lab, ROUTER_CONFIG)
    controller.router.container.kill()

    status = stack_status(lab)
    router = status.get("router")
    assert router is not None and (router.state, router.exit_code, router.killed) == ("exited", 137, True)
    assert status.get("adt-blue").state == "running"
    assert status.problems == [status.get("router").problem("recovery-router")]
    assert status.problems[0].startswith("the router is not running (exited with 137, killed): every HTTP request "
                                         "and HL7 message to the ward fails")
    with pytest.raises(LabError, match="router is not running"):
        controller.router.check_alive()

    lab.container("router").start()  # the sentence's "restart only it" path: nginx keeps its last config
    deadline = time.monotonic() + 15
    while controller.router.serving_generation() != controller.router.generation and time.monotonic() < deadline:
        time.sleep(0.1)
    assert controller.router.who_answers(5) == {"v1": 5}
    assert stack_status(lab).ok

    controller.router.container.remove()  # gone entirely: still reported, as missing
    assert stack_status(lab).get("router").state == "missing"
    assert "the router is missing" in stack_status(lab).problems[0]


@pytest.mark.docker
def test_careops_labs_reset_recovers_a_broken_stack(lab_factory) -> None:
    name = "recovery-reset"
    lab = lab_factory(name)
    controller = fresh_stack(lab, ROUTER_CONFIG)
    controller.router.container.kill()
    lab.container("adt-blue").kill()
    assert len(stack_status(lab).problems) == 2
    assert {r.kind for r in find(name, LEARNER)} == {"container", "network", "volume"}

    done = subprocess.run([str(CAREOPS), "labs", "reset", name, "--learner", LEARNER, "--yes"],
                          check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "removed" in done.stdout
    assert find(name, LEARNER) == [], find(name, LEARNER)

    lab = lab_factory(name)
    assert lab.reclaimed == []  # the reset left nothing for the new session to clean up
    controller = fresh_stack(lab, ROUTER_CONFIG)
    assert controller.router.who_answers(5) == {"v1": 5}
    status = stack_status(lab)
    assert status.ok, str(status)
    assert {c.name for c in status.containers} == {"router", "adt-blue"}
