"""The actions a workflow may ``uses:``, implemented by the runner itself.

Why vendored: a hospital's CI must not fetch code from the internet at run
time, and a job container must never get the engine socket. Steps that need
the engine (build the service image, scan it, start it in staging) are done
here, by careops' trusted code, on the learner's declarative request; steps
that only read files (checkout, PHI scan) run inside the job container.
Anything else in ``uses:`` is refused before the pipeline starts.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import re
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from careops import engine, legacy_adt
from careops.dockerops import BuildLine, stream_build, tracked_container
from careops.errors import CareOpsError
from careops.images.catalog import COURSE, LABEL_COURSE
from careops.lab import Lab, LabContainer
from careops.pipeline.jobcontainer import REPO_MOUNT, WORKSPACE

LABEL_PIPELINE_REPO = "org.careops.pipeline.repo"
LABEL_PIPELINE_RUN = "org.careops.pipeline.run"
#: a lab container's own label naming its pipeline run (a lab sets every org.careops.* label itself)
CONTAINER_LABEL_RUN = "pipeline-run"
#: Folders never copied by checkout nor sent to the image builder.
SKIPPED_DIRS = (".venv", "venv", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache", ".careops")


class ActionFailed(CareOpsError):
    """A vendored action did not succeed; the message says what and why."""


@dataclass
class ActionCall:
    """Everything one ``uses:`` step gets: its inputs and the job it runs in."""

    inputs: dict[str, str]
    container: LabContainer
    lab: Lab
    repo: Path
    run_id: str
    timeout: float
    env: dict[str, str]
    workdir: str
    log: Callable[[str], None]
    client: docker.DockerClient = field(default_factory=engine.client)


@dataclass(frozen=True)
class Action:
    """One supported action: its name, inputs (with defaults), implementation, and the release vendored here.

    ``commit`` is the full commit SHA a workflow pins it to (``uses: NAME@COMMIT # VERSION``, what the course
    policy asks for); ``tags`` are the tags that point at it (``VERSION`` first). The runner resolves either
    offline; any other ref cannot be resolved without fetching, and is refused when the step runs.
    """

    name: str
    inputs: dict[str, str | None]  # None: required
    description: str
    run: Callable[[ActionCall], dict[str, str]]
    commit: str
    tags: tuple[str, ...] = ("v1",)

    @property
    def version(self) -> str:
        return self.tags[0]

    @property
    def pinned(self) -> str:
        """``name@commit # version``: how to write it in ``uses:``."""
        return f"{self.name}@{self.commit} # {self.version}"


def _repo_slug(repo: Path) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", repo.name.lower()).strip("-") or "repo"
    return f"{base[:24]}-{hashlib.sha256(str(repo.resolve()).encode()).hexdigest()[:8]}"


# -- actions/checkout -----------------------------------------------------------------------
def _checkout(call: ActionCall) -> dict[str, str]:
    excludes = " ".join(f"--exclude='{d}'" for d in SKIPPED_DIRS)
    script = f"tar -C {REPO_MOUNT} {excludes} -cf - . | tar -C {WORKSPACE} --no-same-owner -xf -"
    res = call.container.exec_stream(["sh", "-c", script], timeout=call.timeout, on_line=call.log)
    if res.timed_out or res.exit_code != 0:
        raise ActionFailed(f"actions/checkout: copying the repo into {WORKSPACE} failed (exit {res.exit_code}): "
                           f"{res.output[-500:]}", fix="check that the repo folder is readable")
    call.log(f"checked out {call.repo.name} (read-only mount) into {WORKSPACE}")
    return {}


# -- careops/phi-scan -----------------------------------------------------------------------
def _phi_scan(call: ActionCall) -> dict[str, str]:
    paths = call.inputs["paths"].split()
    res = call.container.exec_stream(["python", "-m", "careops.phi", "--kinds", call.inputs["kinds"], *paths],
                                     env=call.env, workdir=call.workdir, timeout=call.timeout, on_line=call.log)
    if res.timed_out:
        raise ActionFailed(f"careops/phi-scan did not finish within {call.timeout:g} s", fix="scan fewer files")
    if res.exit_code == 1:
        # The scan's report above lists the values (masked) and says the fix once: not repeated here.
        raise ActionFailed(f"careops/phi-scan found possible PHI in {' '.join(paths)}: the pipeline stops here "
                           "(the values and the fix are listed above)")
    if res.exit_code != 0:
        raise ActionFailed(f"careops/phi-scan could not scan {' '.join(paths)} (exit {res.exit_code})",
                           fix="name files or folders that exist in the checked-out repo")
    return {}


# -- careops/build-image --------------------------------------------------------------------
def _inside(repo: Path, rel: str, what: str) -> Path:
    target = (repo / rel).resolve()
    if target != repo.resolve() and repo.resolve() not in target.parents:
        raise ActionFailed(f"careops/build-image: {what} {rel!r} is outside the repo {repo}",
                           fix=f"give a {what} inside the repo, relative to its root")
    return target


def _build_image(call: ActionCall) -> dict[str, str]:
    context = _inside(call.repo, call.inputs["context"], "context")
    dockerfile = _inside(call.repo, str(Path(call.inputs["context"]) / call.inputs["file"]), "file")
    if not dockerfile.is_file():
        raise ActionFailed(f"careops/build-image: no Dockerfile at {dockerfile.relative_to(call.repo.resolve())}",
                           fix="write the Dockerfile first, or set `with: file:`")
    slug = _repo_slug(call.repo)
    tag = call.inputs["tag"] or f"careops-ci/{slug}:{call.run_id}"
    labels = {LABEL_COURSE: COURSE, LABEL_PIPELINE_REPO: slug, LABEL_PIPELINE_RUN: call.run_id}
    # A client of our own, so the shared one is never blocked by a long build.
    builder = engine.connect(timeout=int(call.timeout) + 30)
    # The build is read in a thread of its own; the lines are logged here, in this thread (notebook output).
    # At the time limit the running RUN step is killed: the build then fails at once and the builder removes it.
    build = stream_build(builder, deadline=time.monotonic() + call.timeout, control=call.client, grace=15,
                         path=str(context), dockerfile=str(dockerfile.relative_to(context)), rm=True, forcerm=True,
                         pull=False, network_mode="none", labels=labels, tag=tag)
    try:
        for event in build:
            if isinstance(event, BuildLine):
                call.log(event.text)
    finally:
        builder.close()
    if build.stopped:
        raise ActionFailed(f"careops/build-image: the build did not finish within {call.timeout:g} s and was stopped",
                           fix="make the build faster (fewer layers, no network needed) or raise timeout-minutes")
    image_id = build.image_id
    if build.error or not image_id:
        raise ActionFailed(f"careops/build-image: the build failed: {build.error or 'no image id in its output'}\n"
                           + "\n".join(build.log[-15:]),
                           fix="read the builder's output above; builds run without network and without pulling, "
                               "so the FROM image must be on this engine (e.g. careops/base:bookworm)")
    _prune_old_builds(call.client, slug, keep=tag)
    call.log(f"built {tag} ({image_id[7:19] if image_id.startswith('sha256:') else image_id[:12]})")
    return {"image": tag, "imageid": image_id}


def _prune_old_builds(cl: docker.DockerClient, slug: str, *, keep: str) -> None:
    """Remove this repo's earlier pipeline images (in-use ones stay): builds do not pile up."""
    with contextlib.suppress(docker.errors.APIError):
        for img in cl.images.list(filters={"label": f"{LABEL_PIPELINE_REPO}={slug}"}):
            if keep in img.tags:
                continue
            with contextlib.suppress(docker.errors.APIError):
                for t in img.tags or [img.id]:
                    cl.api.remove_image(t)


def remove_pipeline_images(repo: str | Path | None = None, *, client: docker.DockerClient | None = None) -> list[str]:
    """Remove the images pipelines built for ``repo`` (None: for every repo); returns the tags removed.

    Why: each repo keeps only its latest build, but a repo that is deleted (a
    test's temporary copy, an old workspace) leaves its last image behind.
    """
    cl = client or engine.client()
    flt = f"{LABEL_PIPELINE_REPO}={_repo_slug(Path(repo))}" if repo is not None else LABEL_PIPELINE_REPO
    removed = []
    for img in cl.images.list(filters={"label": flt}):
        for t in img.tags or [img.id]:
            with contextlib.suppress(docker.errors.APIError):
                cl.api.remove_image(t, force=True)
                removed.append(t)
    return removed


# -- careops/scan-image ---------------------------------------------------------------------
_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY)", re.IGNORECASE)


def _scan_image(call: ActionCall) -> dict[str, str]:
    """Image policy from trusted code: non-root user, no secrets in ENV, size, PHI in chosen folders."""
    from careops.phi import scan_text

    ref = call.inputs["image"]
    try:
        data = call.client.api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        raise ActionFailed(f"careops/scan-image: image {ref!r} is not on this engine",
                           fix="pass the build step's output: image: ${{ steps.build.outputs.image }}") from None
    cfg = data.get("Config") or {}
    problems = []
    user = (cfg.get("User") or "").split(":")[0]
    if user in ("", "0", "root"):
        problems.append(f"runs as root (USER is {cfg.get('User') or 'not set'}); expected a non-root USER")
    for item in cfg.get("Env") or []:
        name, _, value = item.partition("=")
        if _SECRET_NAME.search(name) and value:
            problems.append(f"ENV {name} holds a value that looks like a secret; pass secrets at run time")
    size_mb = int(data.get("Size") or 0) / 1024**2
    limit = float(call.inputs["max-size-mb"])
    if size_mb > limit:
        problems.append(f"is {size_mb:.0f} MB, expected at most {limit:g} MB")
    phi_paths = call.inputs["phi-paths"].split()
    if phi_paths:
        with tracked_container(call.client, ref, ["true"], network_mode="none",
                               labels={LABEL_COURSE: COURSE, "org.careops.role": "image-scan"}) as container:
            for p in phi_paths:
                try:
                    stream, _ = container.get_archive(p)
                except docker.errors.NotFound:
                    problems.append(f"has no {p} to scan for PHI")
                    continue
                with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                    for member in tar.getmembers():
                        if not member.isfile() or member.size > 5 * 1024**2:
                            continue
                        raw = tar.extractfile(member).read()  # type: ignore[union-attr]
                        if b"\0" in raw[:4096]:
                            continue
                        for f in scan_text(raw.decode("utf-8", "replace"), source=f"{ref}:{member.name}",
                                           kinds=("ssn", "phone", "email", "mrn")):
                            if not f.synthetic:
                                problems.append(f"holds possible PHI: {f}")
    for p in problems:
        call.log(f"scan-image: {ref} {p}")
    if problems:
        raise ActionFailed(f"careops/scan-image: {ref} fails {len(problems)} check(s): " + "; ".join(problems),
                           fix="fix the Dockerfile (USER, ENV, what is copied in) and run the pipeline again")
    call.log(f"scan-image: {ref} passes (non-root user {cfg.get('User')}, no secrets in ENV, {size_mb:.0f} MB"
             + (f", no PHI in {' '.join(phi_paths)})" if phi_paths else ")"))
    return {}


# -- careops/deploy-staging -----------------------------------------------------------------
def _deploy_staging(call: ActionCall) -> dict[str, str]:
    ref, port, path = call.inputs["image"], int(call.inputs["port"]), call.inputs["health-path"]
    name = call.inputs["name"]
    container = call.lab.run(ref, name=name, ports=[port], memory="256m", cpus=0.5, pids=128,
                             labels={CONTAINER_LABEL_RUN: call.run_id})
    url = f"http://127.0.0.1:{container.port(port)}{path}"
    deadline = time.monotonic() + call.timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    call.log(f"deploy-staging: {ref} is up as {container.name}; GET {path} -> 200")
                    return {"url": url, "container": container.name}
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        if container.status in ("exited", "dead"):
            last = f"the container {container.status}; last log lines:\n{container.logs(20)}"
            break
        time.sleep(0.5)
    raise ActionFailed(f"careops/deploy-staging: {ref} did not answer 200 on {path} (port {port}) within "
                       f"{call.timeout:g} s: {last}", fix="check the service's /health endpoint and its logs")


#: Actions that start a container this host reaches on a published port: their run's lab needs a network.
NEEDS_LAB_NETWORK = frozenset({"careops/deploy-staging"})

#: actions/checkout v4.2.2's commit; the careops/* actions are the hospital's own, vendored at these commits
ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("actions/checkout", {"fetch-depth": "1", "persist-credentials": "false"},
           "copies the repo (mounted read-only) into the job's workspace", _checkout,
           "11bd71901bbe5b1630ceea73d27597364c9af683", ("v4.2.2", "v4")),
    Action("careops/phi-scan", {"paths": ".", "kinds": "high-precision"},
           "fails on PHI-like values in the named files/folders (python -m careops.phi)", _phi_scan,
           "847b9e86d63125160bd94ce7ed75a35359b341e0"),
    Action("careops/build-image", {"context": ".", "file": "Dockerfile", "tag": ""},
           "builds the repo's Dockerfile on the engine: no network, no pull, time-limited, labelled", _build_image,
           "8b8a979549ce5671c1795e810de66736eb757683"),
    Action("careops/scan-image", {"image": None, "max-size-mb": "500", "phi-paths": ""},
           "checks the built image: non-root USER, no secrets in ENV, size, PHI in folders", _scan_image,
           "84ce136e9dc7c46fe69ab9acc76305d5b84e9932"),
    Action("careops/deploy-staging", {"image": None, "port": str(legacy_adt.HTTP_PORT),
                                      "health-path": legacy_adt.HEALTH_PATH, "name": "staging"},
           "starts the image in the lab and waits for its health endpoint", _deploy_staging,
           "59d630571daad945c784c28743936dd23cd2f9bb"),
)}


def find_action(uses: str) -> Action | None:
    """The vendored action for ``owner/name@ref`` (whatever the ref: :func:`resolve_ref` checks it), or None."""
    name = uses.split("@", 1)[0].strip().lower()
    return ACTIONS.get(name)


def resolve_ref(action: Action, uses: str) -> str:
    """The vendored commit ``uses`` resolves to offline (its commit SHA or one of its tags); ActionFailed if none."""
    ref = uses.partition("@")[2].split("#")[0].strip()
    if ref == action.commit or ref in action.tags:
        return action.commit
    raise ActionFailed(f"{action.name}@{ref or '(no ref)'} cannot be resolved here: the runner is offline and holds "
                       f"{action.name} only at commit {action.commit} (tag {', '.join(action.tags)})",
                       fix=f"pin it to the vendored commit: uses: {action.pinned}")


def supported_list() -> str:
    return ", ".join(f"{a.name}@{a.version}" for a in ACTIONS.values())


def resolve_inputs(action: Action, given: dict[str, Any]) -> dict[str, str]:
    """Inputs with defaults filled in; a missing required input is an ActionFailed."""
    from careops.pipeline.expressions import to_text

    out = {}
    for key, default in action.inputs.items():
        if key in given and to_text(given[key]) != "":
            out[key] = to_text(given[key])
        elif default is None:
            raise ActionFailed(f"{action.name} needs the input '{key}'",
                               fix=f"add `with:` / `{key}: ...` to the step")
        else:
            out[key] = default
    return out
