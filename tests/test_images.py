"""careops.images: the inputs hash, the wheelhouse target, and real offline builds.

The docker tests use the real engine and reuse the course images (building
them once if they are missing); they never force a rebuild of the base. Test
images are tagged careops/test-* and removed afterwards.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
from pathlib import Path

import docker
import docker.errors
import pytest

from careops import engine
from careops.errors import CareOpsError, ImageBuildError
from careops.images import (BASE_IMAGE, CATALOG, GRADER_IMAGE, LAB_IMAGE, ImageResult, ImageSpec, ensure_images,
                            ensure_spec, select)
from careops.images import base as base_mod
from careops.images.catalog import LABEL_COURSE, LABEL_IMAGE, LABEL_INPUTS
from careops.images.hashing import context_files, file_sha256, inputs_hash
from careops.images.probe import probe_image
from careops.images.wheelhouse import (HostDist, download_args, host_constraints, manylinux_platforms,
                                       pin_requirements, read_requirements, target_from)
from packaging.requirements import Requirement

# -- the inputs hash ----------------------------------------------------------

BASE_ARGS = dict(dockerfile=b"FROM x\n", files={"Dockerfile": "a" * 64, "app/run.sh": "b" * 64},
                 wheels={"pkg-1.0-py3-none-any.whl": "c" * 64}, parent_id="sha256:parent")


def _hash(**changes: object) -> str:
    return inputs_hash(**(BASE_ARGS | changes))  # type: ignore[arg-type]


def test_hash_is_stable() -> None:
    assert _hash() == _hash()
    assert len(_hash()) == 64


def test_hash_ignores_order() -> None:
    files = dict(reversed(list(BASE_ARGS["files"].items())))  # type: ignore[attr-defined]
    wheels = {"z-1-py3-none-any.whl": "1" * 64, "a-1-py3-none-any.whl": "2" * 64}
    assert _hash(files=files) == _hash()
    assert _hash(wheels=wheels) == _hash(wheels=dict(reversed(list(wheels.items()))))


@pytest.mark.parametrize("change", [
    {"dockerfile": b"FROM y\n"},
    {"files": {"Dockerfile": "a" * 64, "app/run.sh": "d" * 64}},  # a context file's content
    {"files": {"Dockerfile": "a" * 64, "app/start.sh": "b" * 64}},  # a context file's path
    {"files": {"Dockerfile": "a" * 64}},  # a file removed
    {"wheels": {"pkg-1.0-py3-none-any.whl": "e" * 64}},  # a wheel's content
    {"wheels": {"pkg-1.1-py3-none-any.whl": "c" * 64}},  # another wheel version
    {"wheels": {}},
    {"parent_id": "sha256:other-parent"},
])
def test_hash_changes_with_every_input(change: dict) -> None:
    assert _hash(**change) != _hash()


def test_context_files_are_sorted_relative_and_skip_droppings(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.py").write_text("x")
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    (tmp_path / "b" / "y.pyc").write_bytes(b"junk")
    found = context_files(tmp_path)
    assert list(found) == ["Dockerfile", "b/x.py"]
    before = {p: file_sha256(f) for p, f in found.items()}
    (tmp_path / "b" / "x.py").write_text("changed")
    after = {p: file_sha256(f) for p, f in context_files(tmp_path).items()}
    assert inputs_hash(dockerfile=b"", files=before, wheels={}, parent_id="p") != \
        inputs_hash(dockerfile=b"", files=after, wheels={}, parent_id="p")


# -- the wheelhouse target ------------------------------------------------------

def test_download_args_select_the_images_python_and_platform() -> None:
    target = target_from(python="3.11.2", machine="x86_64", glibc="2.36")
    args = download_args(target)
    assert "--only-binary=:all:" in args
    pairs = list(zip(args, args[1:]))
    assert ("--python-version", "3.11.2") in pairs
    assert ("--implementation", "cp") in pairs
    assert ("--abi", "cp311") in pairs
    platforms = [v for k, v in pairs if k == "--platform"]
    assert platforms[0] == "manylinux_2_36_x86_64"
    for tag in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux2010_x86_64",
                "manylinux1_x86_64", "linux_x86_64"):
        assert tag in platforms
    assert "manylinux_2_37_x86_64" not in platforms  # newer than the image's glibc


def test_platforms_of_arm64_have_no_legacy_x86_tags() -> None:
    tags = manylinux_platforms("aarch64", "2.36")
    assert "manylinux_2_36_aarch64" in tags and "manylinux2014_aarch64" in tags
    assert not any("manylinux1" in t or "manylinux2010" in t for t in tags)
    assert manylinux_platforms("arm64", "2.31")[0] == "manylinux_2_31_aarch64"


def test_pins_are_the_host_versions(tmp_path: Path) -> None:
    req = tmp_path / "requirements.in"
    req.write_text("# comment\nnbgrader\n\ndocker[ssh]  # extras kept\n")
    reqs = read_requirements(req)
    versions = {"nbgrader": HostDist("0.9.6", ">=3.9"), "docker": HostDist("7.2.0")}
    target = target_from(python="3.11.2", machine="x86_64", glibc="2.36")
    assert pin_requirements(reqs, versions, req, target) == ["nbgrader==0.9.6", "docker[ssh]==7.2.0"]


def test_pin_fails_clearly_when_host_lacks_a_project_or_its_python_is_too_new(tmp_path: Path) -> None:
    target = target_from(python="3.11.2", machine="x86_64", glibc="2.36")
    with pytest.raises(ImageBuildError) as missing:
        pin_requirements([Requirement("nosuchproject")], {}, tmp_path / "r.in", target)
    assert "not installed" in missing.value.message and missing.value.fix
    with pytest.raises(ImageBuildError) as too_new:
        pin_requirements([Requirement("soupsieve")], {"soupsieve": HostDist("4.1.2", ">=3.11.5")}, tmp_path / "r.in", target)
    assert ">=3.11.5" in too_new.value.message and "3.11.2" in too_new.value.message


def test_constraints_leave_free_what_the_images_python_cannot_run() -> None:
    target = target_from(python="3.11.2", machine="x86_64", glibc="2.36")
    versions = {"a": HostDist("1.0"), "b": HostDist("2.0", ">=3.12"), "careops": HostDist("0.1.0")}
    pinned, free = host_constraints(versions, target, {"careops"})
    assert pinned == ["a==1.0"]
    assert free and free[0].startswith("b ")


def test_a_wheelhouse_that_lacks_wheels_says_what_is_missing_not_pips_error() -> None:
    from careops.images.wheelhouse import _missing

    pip = ["ERROR: Could not find a version that satisfies the requirement soupsieve==2.10 (from versions: none)",
           "ERROR: No matching distribution found for soupsieve==2.10"]
    assert _missing(pip) == "missing: soupsieve==2.10"
    assert _missing(["ERROR: ResolutionImpossible: for help visit https://pip.pypa.io"]) == "new versions"


def test_grader_requirements_are_installed_on_the_host() -> None:
    """The grader pins to the host's versions, so each must be installed here (make venv)."""
    spec = next(s for s in CATALOG if s.name == "grader")
    for req in read_requirements(Path(__file__).resolve().parents[1] / str(spec.requirements)):
        assert importlib.metadata.version(req.name)


# -- catalog and base sources ------------------------------------------------------

def test_select_adds_dependencies_in_build_order() -> None:
    assert [s.name for s in select(["grader"])] == ["base", "grader"]
    assert [s.name for s in select(None)] == [s.name for s in CATALOG]
    with pytest.raises(CareOpsError, match="unknown image"):
        select(["nope"])


def test_host_debian_mirror_reads_both_apt_formats(tmp_path: Path) -> None:
    apt = tmp_path / "etc/apt/sources.list.d"
    apt.mkdir(parents=True)
    (apt / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n")
    assert base_mod.host_debian_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "etc/apt/sources.list").write_text("# x\ndeb [arch=amd64] http://local.example/debian bookworm main\n")
    assert base_mod.host_debian_mirror(tmp_path) == "http://local.example/debian"
    assert base_mod.host_debian_mirror(tmp_path / "nothing") is None


# -- real builds ---------------------------------------------------------------------

TEST_REPO = "careops/test-images"


@pytest.fixture(scope="module")
def cl() -> docker.DockerClient:
    return engine.client()  # no engine: EngineUnavailable fails the test with the engine's message


@pytest.fixture(scope="module")
def course(cl: docker.DockerClient) -> dict[str, ImageResult]:
    """The course images, built once if missing (never forced)."""
    return {r.name: r for r in ensure_images(client=cl, progress=False)}


@pytest.fixture
def test_tags(cl: docker.DockerClient):
    """Removes every careops/test-* image a test made."""
    yield
    for repo in (TEST_REPO, "careops/test-base", "careops/test-broken"):
        for img in cl.images.list(name=repo):
            for tag in img.tags:
                try:
                    cl.images.remove(tag, force=True)
                except docker.errors.APIError:
                    pass


def _run(cl: docker.DockerClient, image: str, cmd: list[str], **kw: object) -> str:
    out = cl.containers.run(image, cmd, remove=True, network_mode="none", **kw)
    return out.decode().strip()


@pytest.mark.docker
def test_all_images_exist_with_labels(cl: docker.DockerClient, course: dict[str, ImageResult]) -> None:
    tags = [r.tag for r in course.values()]
    assert tags[:3] == [BASE_IMAGE, LAB_IMAGE, GRADER_IMAGE]  # the foundation first, in dependency order
    assert tags == [s.tag for s in CATALOG]
    for r in course.values():
        attrs = cl.api.inspect_image(r.tag)
        labels = attrs["Config"]["Labels"]
        assert labels[LABEL_IMAGE] == r.name
        assert labels[LABEL_INPUTS] == r.inputs_hash and len(r.inputs_hash) == 64
        assert labels[LABEL_COURSE] == "careops-labs"
        assert attrs["Id"] == r.image_id
        assert cl.api.inspect_image(f"{r.tag.rsplit(':', 1)[0]}:{r.inputs_hash[:12]}")["Id"] == r.image_id


@pytest.mark.docker
def test_second_run_builds_nothing(cl: docker.DockerClient, course: dict[str, ImageResult]) -> None:
    again = ensure_images(client=cl, progress=False)
    assert [(r.name, r.built) for r in again] == [(n, False) for n in course]
    assert [r.image_id for r in again] == [r.image_id for r in course.values()]
    assert sum(r.seconds for r in again) < 30


@pytest.mark.docker
def test_base_fits_the_contract(cl: docker.DockerClient, course: dict[str, ImageResult]) -> None:
    probe = probe_image(cl, BASE_IMAGE)
    assert probe.problems() == []
    assert probe.python.startswith("3.11.") and probe.codename == "bookworm"


@pytest.mark.docker
def test_grader_runs_nbgrader_offline_read_only_as_1000(cl: docker.DockerClient, course: dict[str, ImageResult]) -> None:
    kw = dict(read_only=True, user="1000")
    out = _run(cl, GRADER_IMAGE, ["nbgrader", "--version"], **kw)
    assert f"nbgrader version {importlib.metadata.version('nbgrader')}" in out  # the host's version
    out = _run(cl, GRADER_IMAGE, ["python", "-c", "import careops, os; print(careops.__version__, os.getuid())"], **kw)
    assert out.split() == [importlib.metadata.version("careops"), "1000"]


@pytest.mark.docker
def test_lab_runtime_runs_as_learner_under_tini(cl: docker.DockerClient, course: dict[str, ImageResult]) -> None:
    out = _run(cl, LAB_IMAGE, ["sh", "-c", "id -u; id -un; stat -c %u /work; cat /proc/1/comm"])
    assert out.split() == ["1000", "learner", "1000", "tini"]


@pytest.mark.docker
def test_failed_build_raises_with_the_builders_words_and_tags_nothing(
        cl: docker.DockerClient, course: dict[str, ImageResult], tmp_path: Path, test_tags: None) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nRUN echo careops-test-about-to-fail && exit 7\n")
    spec = ImageSpec(name="broken", tag="careops/test-broken:latest", context=str(tmp_path), depends_on=("base",))
    with pytest.raises(ImageBuildError) as err:
        ensure_spec(cl, spec, parents=course, progress=False)
    text = str(err.value)
    assert "returned a non-zero code: 7" in text
    assert "careops-test-about-to-fail" in text  # the builder's own output
    assert err.value.fix
    assert cl.images.list(name="careops/test-broken") == []


@pytest.mark.docker
def test_builds_have_no_network(cl: docker.DockerClient, course: dict[str, ImageResult], tmp_path: Path,
                                test_tags: None) -> None:
    # A build step sees only the loopback interface: nothing it runs can reach any address.
    # (A failed connect would not prove it on an offline machine; the interface list does.)
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nRUN ls /sys/class/net && test \"$(ls /sys/class/net)\" = lo "
        "|| (echo careops-build-had-a-network; exit 9)\n")
    spec = ImageSpec(name="netcheck", tag="careops/test-broken:latest", context=str(tmp_path), depends_on=("base",))
    result = ensure_spec(cl, spec, parents=course, progress=False)
    assert result.built


@pytest.mark.docker
def test_unchanged_inputs_skip_and_a_changed_file_rebuilds(cl: docker.DockerClient, course: dict[str, ImageResult],
                                                           tmp_path: Path, test_tags: None) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY hello.txt /hello.txt\n")
    (tmp_path / "hello.txt").write_text("one\n")
    spec = ImageSpec(name="test", tag=f"{TEST_REPO}:latest", context=str(tmp_path), depends_on=("base",),
                     smoke=(("cat", "/hello.txt"),))
    first = ensure_spec(cl, spec, parents=course, progress=False)
    second = ensure_spec(cl, spec, parents=course, progress=False)
    assert (first.built, second.built) == (True, False)
    assert second.image_id == first.image_id and second.inputs_hash == first.inputs_hash
    (tmp_path / "hello.txt").write_text("two\n")
    third = ensure_spec(cl, spec, parents=course, progress=False)
    assert third.built and third.inputs_hash != first.inputs_hash
    assert _run(cl, spec.tag, ["cat", "/hello.txt"]) == "two"
    forced = ensure_spec(cl, spec, parents=course, force=True, progress=False)
    assert forced.built and forced.inputs_hash == third.inputs_hash
    # the old hash tag was dropped with the old image
    assert not cl.images.list(name=f"{TEST_REPO}:{first.inputs_hash[:12]}")


@pytest.mark.docker
def test_base_from_a_local_python_image(cl: docker.DockerClient, course: dict[str, ImageResult],
                                        test_tags: None) -> None:
    """Source (a): a local image that passes the probe is relabelled (here: the base itself, with host tini added)."""
    probe = probe_image(cl, BASE_IMAGE)
    without_tini = type(probe)(**{**probe.__dict__, "tini": ""})
    res = base_mod.from_image(cl, BASE_IMAGE, without_tini, f"local image {BASE_IMAGE}", progress=False,
                              tag="careops/test-base:bookworm")
    assert res.built and res.source.startswith(f"local image {BASE_IMAGE}")
    labels = cl.api.inspect_image("careops/test-base:bookworm")["Config"]["Labels"]
    assert labels[LABEL_IMAGE] == "base" and labels[LABEL_INPUTS] == res.inputs_hash
    if "tini from the host" in res.source:
        assert _run(cl, "careops/test-base:bookworm", ["tini", "--version"]).startswith("tini version")


# -- failure paths that must explain themselves -----------------------------------------

def test_no_debootstrap_and_no_local_image_names_both_fixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base_mod.shutil, "which", lambda name: None)
    with pytest.raises(ImageBuildError) as err:
        base_mod._debootstrap(None, progress=False)  # type: ignore[arg-type]  # fails before using the engine
    assert "debootstrap is not installed" in err.value.message
    assert "python:3.11-slim-bookworm" in err.value.message
    assert "apt-get install debootstrap" in str(err.value.fix) and "docker load" in str(err.value.fix)


def test_low_disk_space_fails_with_numbers_and_a_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from careops.images import common

    monkeypatch.setattr(common.shutil, "disk_usage", lambda p: type("U", (), {"free": 200 * 1024**2})())
    with pytest.raises(ImageBuildError) as err:
        common.check_free_space(None, what="debootstrap the base image")
    assert "0.20 GiB free" in err.value.message and "at least 1.5 GiB" in err.value.message
    assert "docker system prune" in str(err.value.fix)


def test_remove_rootfs_removes_a_leftover_tree(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs-tmp"
    (rootfs / "usr/bin").mkdir(parents=True)
    (rootfs / "usr/bin/python3").write_text("x")
    (rootfs / "bin").symlink_to("usr/bin")
    base_mod.remove_rootfs(rootfs)
    assert not rootfs.exists()
    base_mod.remove_rootfs(rootfs)  # nothing left: no error


@pytest.mark.docker
def test_wheelhouse_reuse_needs_no_pip(cl: docker.DockerClient, course: dict[str, ImageResult],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A second run with unchanged requirements must not run pip at all (offline re-runs)."""
    from careops.images import wheelhouse

    spec = next(s for s in CATALOG if s.name == "grader")
    target = wheelhouse.target_for_image(cl, course["base"].image_id)
    wheelhouse.ensure_wheelhouse(spec, target, progress=False)

    def no_pip(*args: object, **kw: object) -> None:
        raise AssertionError(f"pip ran although the wheelhouse satisfies the requirements: {args}")

    monkeypatch.setattr(wheelhouse, "run_streaming", no_pip)
    wh = wheelhouse.ensure_wheelhouse(spec, target, progress=False)
    assert f"nbgrader=={importlib.metadata.version('nbgrader')}" in wh.lock.splitlines()
    assert any(name.startswith("careops-") for name in wh.local)
    assert all(path.is_file() for path, _ in (wh.wheels | wh.local).values())


@pytest.mark.docker
def test_failed_debootstrap_explains_and_leaves_no_rootfs(cl: docker.DockerClient, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs-tmp"
    rootfs.mkdir()
    (rootfs / "leftover").write_text("from a crashed run")
    with pytest.raises(ImageBuildError) as err:
        base_mod._debootstrap(cl, progress=False, rootfs=rootfs, mirror="http://127.0.0.1:9/debian")
    assert "debootstrap" in err.value.message and err.value.fix
    assert not rootfs.exists()


@pytest.mark.docker
def test_an_optional_image_that_cannot_be_built_is_skipped_with_a_fix(monkeypatch, capsys) -> None:
    """On a machine without debootstrap, `make images` still gives modules 0-2 and 4 their images."""
    from careops.errors import CareOpsError
    from careops.images import base as base_mod

    def no_debootstrap(*args, **kwargs):
        raise CareOpsError("debootstrap is not installed", fix="apt-get install debootstrap")

    monkeypatch.setattr(base_mod, "ensure_variant", no_debootstrap)
    built = {r.name for r in ensure_images(progress=False)}
    assert "router-base" not in built and "router" not in built
    assert {"base", "lab-runtime", "grader", "legacy-adt-v2"} <= built
    err = capsys.readouterr().err
    assert "skipped careops/router-base:bookworm, needed only by module 3" in err and "apt-get install debootstrap" in err
    with pytest.raises(CareOpsError, match="debootstrap"):
        ensure_images(["router"], progress=False)  # asked for by name: a real failure


@pytest.mark.docker
def test_a_new_build_keeps_the_hash_tags_of_its_siblings_in_the_same_repository(cl: docker.DockerClient) -> None:
    """careops/legacy-adt holds v1, v2 and v2-faulty: rebuilding one must not untag the others' current builds."""
    import io

    from careops.images.build import tag_image

    repo = "careops-test/siblings"

    def build(name: str, salt: str) -> str:
        dockerfile = f"FROM {BASE_IMAGE}\nLABEL {LABEL_IMAGE}={name} salt={salt}\n".encode()
        image, _ = cl.images.build(fileobj=io.BytesIO(dockerfile), rm=True, network_mode="none")
        return image.id

    made: list[str] = []
    try:
        v1, v2 = build("v1", "1"), build("v2", "1")
        made += [v1, v2]
        tag_image(cl, v1, f"{repo}:v1", "a" * 64)
        tag_image(cl, v2, f"{repo}:v2", "b" * 64)
        assert cl.api.inspect_image(f"{repo}:{'a' * 12}")["Id"] == v1, "building v2 untagged v1's current build"
        v1_again = build("v1", "2")
        made.append(v1_again)
        tag_image(cl, v1_again, f"{repo}:v1", "c" * 64)
        with pytest.raises(docker.errors.ImageNotFound):  # v1's older build loses its hash tag
            cl.api.inspect_image(f"{repo}:{'a' * 12}")
        assert cl.api.inspect_image(f"{repo}:{'b' * 12}")["Id"] == v2
    finally:
        for tag in (f"{repo}:v1", f"{repo}:v2", f"{repo}:{'b' * 12}", f"{repo}:{'c' * 12}", f"{repo}:{'a' * 12}"):
            with contextlib.suppress(docker.errors.APIError):
                cl.api.remove_image(tag, force=True)
        for image_id in made:
            with contextlib.suppress(docker.errors.APIError):
                cl.api.remove_image(image_id, force=True)


# -- what a fresh clone reuses from the user's cache (careops.paths.cache_dir) -----------------------------

@pytest.mark.docker
def test_a_fresh_clone_takes_downloaded_wheels_from_the_shared_cache_without_downloading(
        cl: docker.DockerClient, course: dict[str, ImageResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second checkout of the same user downloads nothing another checkout already downloaded."""
    import shutil

    from careops import paths
    from careops.images import wheelhouse

    repo = paths.repo_root()
    spec = next(s for s in CATALOG if s.name == "ci-runner")
    target = wheelhouse.target_for_image(cl, course["base"].image_id)
    mine = wheelhouse.ensure_wheelhouse(spec, target, progress=False)  # this checkout's wheelhouse (made by setup)
    cache = tmp_path / "cache"
    (cache / "wheels").mkdir(parents=True)
    for path, _ in mine.wheels.values():
        shutil.copy2(path, cache / "wheels" / path.name)
    clone = tmp_path / "clone"  # a fresh clone: its build tools and its own careops wheel, no downloaded wheels
    for sub in ("buildtools", "local"):
        shutil.copytree(repo / "build" / "wheelhouse" / sub, clone / "build" / "wheelhouse" / sub)
    monkeypatch.setenv(paths.HOME_ENV, str(clone))
    monkeypatch.setenv(paths.CACHE_ENV, str(cache))
    real = wheelhouse.run_streaming

    def no_download(cmd: list[str], **kw: object) -> object:
        assert "download" not in cmd, f"downloaded although the shared cache had every wheel: {cmd}"
        return real(cmd, **kw)

    monkeypatch.setattr(wheelhouse, "run_streaming", no_download)
    theirs = wheelhouse.ensure_wheelhouse(spec, target, root=repo, progress=False)
    assert theirs.lock == mine.lock and not theirs.downloaded
    assert {fn: sha for fn, (_, sha) in theirs.wheels.items()} == {fn: sha for fn, (_, sha) in mine.wheels.items()}
    assert all(p.parent == clone / "build" / "wheelhouse" for p, _ in theirs.wheels.values()), \
        "the clone's wheelhouse holds its wheels itself (copy build/wheelhouse to an offline machine and it works)"


def test_freshly_downloaded_wheels_go_to_the_shared_cache_and_a_broken_cache_costs_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from careops import paths
    from careops.images import wheelhouse

    house = tmp_path / "house"
    house.mkdir()
    (house / "pkg-1.0-py3-none-any.whl").write_bytes(b"wheel")
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "cache"))
    wheelhouse._give_to_shared_cache(house)
    assert (tmp_path / "cache" / "wheels" / "pkg-1.0-py3-none-any.whl").read_bytes() == b"wheel"
    other = tmp_path / "other"
    other.mkdir()
    assert wheelhouse._take_from_shared_cache(other) is True
    assert (other / "pkg-1.0-py3-none-any.whl").read_bytes() == b"wheel"
    assert wheelhouse._take_from_shared_cache(other) is False  # nothing new to take
    (tmp_path / "blocked").write_text("a file where the cache folder would be")
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "blocked"))
    wheelhouse._give_to_shared_cache(house)  # no error: the next clone downloads again, nothing is lost
    assert wheelhouse._take_from_shared_cache(other) is False


def test_a_fresh_clone_reuses_the_prebuilt_labextension_byte_for_byte(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The builder's output depends on the folder it ran in: a second clone takes the first one's build from the
    user's cache, so careops/learner's inputs do not change and the image is not rebuilt."""
    import json

    from careops import paths
    from careops.images import labextension, npm

    source = tmp_path / "ext"
    (source / "lib").mkdir(parents=True)
    (source / "package.json").write_text(json.dumps({"name": "careops-demo"}))
    (source / "package-lock.json").write_text("{}")
    (source / "lib" / "index.js").write_text("export default {};\n")
    builds = []

    def fake_build(name: str, folder: Path, *, progress: bool, dev: bool) -> None:
        builds.append(folder)  # the unit test's stand-in for npm and jupyter-builder (the real one: test_workshop_*)
        raise RuntimeError("stop: a real build would start here")

    monkeypatch.setattr(npm, "ensure_node_modules", fake_build)
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "cache"))
    first = tmp_path / "first"
    out = first / "build" / "labextension" / "learner" / "careops-demo" / "static"
    out.mkdir(parents=True)
    (out / "remoteEntry.abc.js").write_text("built in the first clone\n")
    files = {"careops-demo/static/remoteEntry.abc.js": file_sha256(out / "remoteEntry.abc.js")}
    (first / "build" / "labextension" / "learner" / labextension.STAMP).write_text(
        json.dumps({"key": labextension.source_key(source), "files": files}))
    monkeypatch.setenv(paths.HOME_ENV, str(first))
    assert set(labextension.ensure_labextension("learner", source, progress=False)) == set(files)
    second = tmp_path / "second"
    monkeypatch.setenv(paths.HOME_ENV, str(second))
    got = labextension.ensure_labextension("learner", source, progress=False)
    assert builds == [], "the second clone rebuilt the extension although the cache had the same source's build"
    assert got["careops-demo/static/remoteEntry.abc.js"].read_text() == "built in the first clone\n"
    assert got["careops-demo/static/remoteEntry.abc.js"].is_relative_to(second)
    (source / "lib" / "index.js").write_text("export default {changed: true};\n")
    with pytest.raises(RuntimeError, match="a real build would start here"):
        labextension.ensure_labextension("learner", source, progress=False)  # a changed source is built again
