"""The suite's own set-up in tests/conftest.py: how its xdist workers are grouped and share the machine."""
from __future__ import annotations

import os

from conftest import SHARED_STATE, SPLIT_PER_TEST, TEST_CPU_GROUP, _group_of, _share_the_cpu_with_the_engine, cpu_cgroup


def test_files_that_share_state_are_one_group_and_split_files_go_test_by_test() -> None:
    engine_files = SHARED_STATE["second-engine"]
    assert {_group_of(f"tests/{f}::test_x") for f in engine_files} == {"second-engine"}
    assert _group_of("tests/test_lab.py::test_a") == _group_of("tests/test_lab.py::test_b") == "test_lab.py"
    assert "test_rollout.py" in SPLIT_PER_TEST
    assert _group_of("tests/test_rollout.py::test_a") != _group_of("tests/test_rollout.py::test_b")
    notebook = "tests/test_notebooks.py::test_solution_gets_full_marks[03-safe-deployments/x.ipynb]"
    assert _group_of(notebook) == _group_of(notebook.replace("test_solution_gets_full_marks", "test_learner_version"))


def test_each_worker_is_a_learner_of_its_own() -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        assert os.environ["CAREOPS_LEARNER"].endswith(f"-{worker}")


def test_the_run_weighs_as_much_as_the_engines_containers_on_cgroup_v1() -> None:
    mine = cpu_cgroup()
    if (TEST_CPU_GROUP.parent / "docker").is_dir() and os.geteuid() == 0:  # this machine: cgroup v1, as root
        assert mine == f"/{TEST_CPU_GROUP.name}", mine
        assert (TEST_CPU_GROUP / "cpu.shares").read_text() == (TEST_CPU_GROUP.parent / "docker" / "cpu.shares").read_text()
    else:  # cgroup v2 (systemd's slices already share the machine this way) or not root: nothing to do, no error
        assert _share_the_cpu_with_the_engine() is not None
