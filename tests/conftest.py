"""Shared fixtures: where the repo is; the grader tests' orientation course, submission builders and sandboxes."""
from __future__ import annotations

import base64
import getpass
import io
import json
import os
import pickle
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


# -- the suite in parallel (`make test`: three pytest-xdist workers; TEST_WORKERS=0 for one process) ---------------
# On a 2-core machine the suite is CPU-bound: three workers take about half the time of one process (a worker is
# often waiting for a container, a deployment's traffic or a browser). What is here makes the workers safe for each
# other, and _share_the_cpu_with_the_engine keeps the lab containers from starving beside them.
#: Test files that share something outside their process (the second dockerd's data root, ...) run in one worker,
#: one after the other, in this order. (The two hub files may run at once: each starts its own hub, named after
#: its process, on a free port, with learners of its own names.)
SHARED_STATE: dict[str, tuple[str, ...]] = {
    # the second dockerd (build/test-engines/engine2) is one per machine
    "second-engine": ("test_grading_queue_hosts.py", "test_grade_queue_two_engines.py", "test_grade_queue_crash.py",
                      "test_grading_queue_handin.py", "test_grading_queue_worker.py"),
}
#: Long files whose tests are independent of each other (no fixture wider than a test, or one that is cheap to
#: make again): their tests go to any worker one by one (a parametrized test's cases by their parameter). Every other file runs whole in one worker (its module
#: fixtures are made once; test_browser's JupyterLab, test_images' test tags, ...).
SPLIT_PER_TEST = frozenset({"test_notebooks.py", "test_grade_modules.py", "test_checks_safe_deployments.py",
                            "test_rollout.py", "test_containerize_live.py", "test_containerize_build.py"})
#: Seconds per test measured on this machine (`pytest --junitxml`, tests of 1 s or more): the longest work starts
#: first, so no long test starts last. Only an order: a new or renamed test just starts later.
DURATIONS: dict[str, float] = json.loads((Path(__file__).with_name("durations.json")).read_text())


def _group_of(nodeid: str) -> str:
    """The unit of scheduling a test belongs to: its file, a SHARED_STATE group, or itself (SPLIT_PER_TEST)."""
    name = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    shared = next((group for group, files in SHARED_STATE.items() if name in files), None)
    if shared is not None:
        return shared
    if name not in SPLIT_PER_TEST:
        return name
    # a parametrized test's cases of one parameter together (test_notebooks: one notebook's generate, solution
    # and learner runs share the notebook's generated course in one worker); any other test by itself
    return f"{nodeid.split('::', 1)[0]}[{nodeid.split('[', 1)[1]}" if "[" in nodeid else nodeid


#: The cpu cgroup (v1) the test run's own processes share, beside the engine's "docker" group (see below).
TEST_CPU_GROUP = Path("/sys/fs/cgroup/cpu/careops-tests")


def cpu_cgroup() -> str | None:
    """This process's group in the cpu controller's hierarchy (cgroup v1), e.g. "/" or "/careops-tests"."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            return path
    return None


def _share_the_cpu_with_the_engine() -> str | None:
    """Put this run (and every process it starts) in a cpu cgroup of its own, of the engine's weight.

    On a systemd host the engine's containers and a user's processes sit in two slices of equal weight. Here (cgroup
    v1, every process in the root group) the kernel weighs the engine's "docker" group -- all containers together --
    as one process: with three workers' kernels, servers and browsers busy, the lab containers would get a small
    share of the machine, and module 3's deployments must answer 100 requests/s without one failure. In a group of
    its own, the run weighs as much as all the containers together. Returns why not, or None
    (tests/test_suite_workers.py checks where the run is)."""
    root = TEST_CPU_GROUP.parent
    if not (root / "docker").is_dir() or cpu_cgroup() != "/":
        return "not cgroup v1 with this run in the root cpu group"
    try:
        TEST_CPU_GROUP.mkdir(exist_ok=True)
        (TEST_CPU_GROUP / "cpu.shares").write_text((root / "docker" / "cpu.shares").read_text())
        (TEST_CPU_GROUP / "cgroup.procs").write_text(str(os.getpid()))
    except OSError as exc:  # not root, or no cgroup file system to write: the run goes on as it is
        return str(exc)
    return None


def pytest_configure(config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        _share_the_cpu_with_the_engine()
    if worker and "CAREOPS_LEARNER" not in os.environ:
        # Each worker is a learner of its own: two workers' labs of the same name (two modules' tests open
        # Lab("orientation")) never replace each other's containers or clean each other's labs up.
        os.environ["CAREOPS_LEARNER"] = f"{getpass.getuser()}-{worker}"


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's scope scheduling with this suite's groups as scopes: a group's tests go to one worker, in order.
    (xdist's own --dist loadgroup marks node ids in a way pytest 9 no longer keeps.)"""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group_of(nodeid)

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist: the longest groups first, each group's items in their own order (the same order in every
    worker: xdist compares the workers' collections). In one process the suite keeps its usual order."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    groups = [_group_of(item.nodeid) for item in items]
    seconds: dict[str, float] = {}
    first: dict[str, int] = {}
    for i, (item, group) in enumerate(zip(items, groups)):
        seconds[group] = seconds.get(group, 0.0) + DURATIONS.get(item.nodeid, 0.0)
        first.setdefault(group, i)
    shared_order = {f: i for files in SHARED_STATE.values() for i, f in enumerate(files)}
    ranked = sorted(range(len(items)), key=lambda i: (-seconds[groups[i]], first[groups[i]],
                                                     shared_order.get(items[i].path.name, 0), i))
    items[:] = [items[i] for i in ranked]


# tests/fixtures/submissions/builders.py (submissions made at test time) is imported as `builders`
sys.path.insert(0, str(REPO_ROOT / "tests" / "fixtures" / "submissions"))

#: the assignment the grader tests hand in: its notebook is small and needs no engine to grade
ORIENTATION = "00-orientation"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def orientation_source() -> dict[str, Any]:
    """The instructor's orientation notebook (a fresh copy: tests may change it)."""
    return json.loads((REPO_ROOT / "notebooks" / ORIENTATION / "orientation.ipynb").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def orientation_course(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A throwaway course with 00-orientation released and registered in its gradebook.

    nbgrader generate_assignment takes many seconds: made once per session for every grading unit test. Tests
    only read it, or add learners of their own to its gradebook."""
    from careops.grading.course import generate_assignment, make_temp_course

    course = make_temp_course(tmp_path_factory.mktemp("orientation-course"), ORIENTATION)
    generate_assignment(ORIENTATION, course.root)
    return course


@pytest.fixture
def orientation_release(orientation_course: Any) -> dict[str, Any]:
    """The released learner version of the orientation notebook (a fresh copy: tests may change it)."""
    path = orientation_course.release / ORIENTATION / "orientation.ipynb"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def released_course(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A throwaway course with every module, released by `careops release` (real nbgrader)."""
    import io
    from contextlib import redirect_stdout

    from careops.apps.release import main
    from careops.grading.course import make_temp_course

    root = tmp_path_factory.mktemp("release-all") / "course"
    for assignment in sorted(p.name for p in (REPO_ROOT / "notebooks").iterdir() if p.is_dir()
                             and not p.name.startswith((".", "_"))):
        course = make_temp_course(root, assignment)
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(course_dir=course.root) == 0
    from types import SimpleNamespace

    return SimpleNamespace(course=course, root=course.root, release=course.release, build=course.build,
                           output=out.getvalue())


@pytest.fixture(scope="session")
def learner_tree(released_course: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The learner's copy of this checkout, with the released modules (careops.grading.learner_copy)."""
    from careops.grading import learner_copy

    return learner_copy.write(REPO_ROOT, released_course.release, tmp_path_factory.mktemp("learner-copy"))


class _ExportStream(io.RawIOBase):
    """The chunks of ``docker export`` as a file for tarfile's streaming mode."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks, self.buf = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self.buf:
            try:
                self.buf = next(self.chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self.buf))
        b[:n], self.buf = self.buf[:n], self.buf[n:]
        return n


@pytest.fixture(scope="session")
def image_filesystem() -> Any:
    """``files_of(image, max_size)``: every regular file of an image up to ``max_size`` bytes, by path (no leading
    slash), read from ``docker export`` of a container that never starts."""
    import tarfile

    from careops import engine

    def files_of(image: str, max_size: int = 2 * 2**20) -> dict[str, bytes]:
        container = engine.client().containers.create(image, ["true"], network_mode="none")
        files: dict[str, bytes] = {}
        try:
            with tarfile.open(fileobj=io.BufferedReader(_ExportStream(iter(container.export())), 1 << 20),
                              mode="r|") as tar:
                for member in tar:
                    if member.isfile() and member.size <= max_size:
                        data = tar.extractfile(member)
                        files[member.name] = data.read() if data else b""
        finally:
            container.remove(force=True)
        return files

    return files_of


class GradingSandboxes:
    """Grading sandboxes (careops/grader image) of one test, all under one session id."""

    assignment = "sandbox-test"

    def __init__(self) -> None:
        self.session = "t" + uuid.uuid4().hex[:11]

    def start(self, **policy: Any) -> Any:
        """A ready sandbox with ``SandboxPolicy(**policy)``; the test removes it (leftovers go after the test)."""
        from careops import engine
        from careops.grading.sandbox import Sandbox, SandboxPolicy

        sb = Sandbox(engine.client(), SandboxPolicy(**policy), assignment=self.assignment, session=self.session)
        sb.wait_ready()
        return sb

    @staticmethod
    def call(sb: Any, name: str, *args: object) -> dict[str, Any]:
        """Ask the agent to call the learner's function ``name`` with ``args``, as trusted test code does."""
        return sb.request("call", name=name, args=base64.b64encode(pickle.dumps((args, {}))).decode())


@pytest.fixture
def grading_sandboxes() -> Iterator[GradingSandboxes]:
    from careops.grading.sandbox import remove_leftovers

    sandboxes = GradingSandboxes()
    yield sandboxes
    remove_leftovers(sandboxes.assignment, session=sandboxes.session)


# -- the grading queue: Redis and a second Docker engine, once per session -----------------------------------------
@pytest.fixture(scope="session")
def queue_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's redis-server on a free loopback port (each test uses a Redis database of its own)."""
    from careops.grading.queue.hosts import RedisServer

    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def second_engine() -> Iterator[Any]:
    """A second dockerd on this machine, started here, with the first engine's course images loaded.

    Its data root stays in the user cache (``careops.paths.cache_dir()``/test-engines) between sessions and
    checkouts: an image is loaded (docker save | docker load; all of them take about a minute) only when it differs
    from the first engine's, so a fresh clone of an unchanged commit loads none. A run that finds the cached one in
    use by another checkout's run takes a data root in its own build/ instead."""
    import fcntl

    from careops.grading.queue.hosts import DockerEngine, default_engine_url
    from careops.paths import cache_dir

    shared = cache_dir() / "test-engines"
    shared.mkdir(parents=True, exist_ok=True)
    with open(shared / "engine2.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            folder = shared / "engine2"
        except BlockingIOError:
            folder = REPO_ROOT / "build" / "test-engines" / "engine2"
        with DockerEngine(folder) as engine2:
            engine2.load_images(default_engine_url())
            yield engine2


#: Debian's Chromium (never Playwright's own download), headless, with the flags this closed network needs.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # without these Chromium floods the closed network
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Any]:
    """One Playwright for the whole run: a sync Playwright keeps its event loop running in this thread until it
    stops, so a second ``sync_playwright()`` beside it fails. Every browser test takes this one (or ``chromium``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


def dismiss_lost_server_dialogs(page: Any, metrics: dict[str, int] | None = None) -> None:
    """Chromium aborts the requests in flight whenever this host's interfaces change (ERR_NETWORK_CHANGED), and the
    engine changes them for every container or lab network anyone starts: with the suite's workers busy, that is
    every few seconds. JupyterLab then says the learner's server is "unavailable or unreachable" although it runs.
    A learner's browser is on another machine and never sees this; here the dialog is dismissed whenever it is in the
    way of the next step, as a learner would, and counted in ``metrics``. A server that really stopped still fails
    the step that needs it."""
    dialog = page.locator("dialog.jp-Dialog", has_text="Server unavailable or unreachable")

    def dismiss(found: Any) -> None:
        if metrics is not None:
            metrics["server_unreachable_dialogs_dismissed"] = metrics.get("server_unreachable_dialogs_dismissed", 0) + 1
        found.get_by_role("button", name="Dismiss").click()

    page.add_locator_handler(dialog, dismiss)


@pytest.fixture(scope="session")
def chromium(playwright_session: Any) -> Iterator[Any]:
    """One headless Chromium for every browser test; each test opens its own context or page."""
    browser = playwright_session.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()
