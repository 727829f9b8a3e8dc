"""Copy the learner versions of the notebooks into workspace/ without ever losing work.

``careops release`` writes build/release/<assignment>/...; the learner works in
workspace/<assignment>/.... A file that already exists in the workspace is
never written to: it is the learner's. When the release of such a file has
changed since it was copied, the new release is saved *beside* it (e.g.
``orientation.new-release.ipynb``) and the report says so, so nothing is lost
on either side.

To tell "the learner edited it" from "the course changed it", sync keeps a
small manifest (workspace/.careops/sync.json) with a fingerprint of each
release file as it was last copied. Notebooks are fingerprinted by their cells'
types and sources only, so re-running nbgrader, or a learner running cells,
does not count as a change.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from careops import paths
from careops.errors import CareOpsError
from careops.report import theme

#: Where sync remembers what it copied (hidden from JupyterLab's file browser).
MANIFEST = Path(".careops") / "sync.json"
#: Infix of the copy saved beside a learner's file when a newer release differs.
NEW_RELEASE = "new-release"
#: Folders in a release that are never learner material.
_SKIP_DIRS = {".ipynb_checkpoints", "__pycache__", ".git"}
_SKIP_FILES = {".DS_Store", "Thumbs.db"}


class WorkspaceError(CareOpsError):
    """The release cannot be read or the workspace cannot be written."""


@dataclass
class NewRelease:
    """A kept learner file whose release changed, and where the new release was saved."""

    kept: str
    saved_as: str


@dataclass
class AssignmentSync:
    """What sync did for one assignment; paths are relative to workspace/<assignment>/."""

    name: str
    added: list[str] = field(default_factory=list)
    #: Already in the workspace, same content as the release: nothing to do.
    unchanged: list[str] = field(default_factory=list)
    #: Already in the workspace and different (the learner's work): left alone.
    kept: list[str] = field(default_factory=list)
    #: Kept files whose release changed: the new release was saved beside them.
    new_releases: list[NewRelease] = field(default_factory=list)


@dataclass
class SyncReport:
    """Result of :func:`sync`: per assignment, what was added and what was kept."""

    release_dir: Path
    workspace_dir: Path
    assignments: list[AssignmentSync] = field(default_factory=list)

    @property
    def added(self) -> list[str]:
        """Every added file, as <assignment>/<path>."""
        return [f"{a.name}/{p}" for a in self.assignments for p in a.added]

    @property
    def kept(self) -> list[str]:
        """Every learner file left untouched because it differs from the release."""
        return [f"{a.name}/{p}" for a in self.assignments for p in a.kept]

    @property
    def new_releases(self) -> list[NewRelease]:
        """Every new release saved beside a kept file (paths as <assignment>/<path>)."""
        return [
            NewRelease(f"{a.name}/{n.kept}", f"{a.name}/{n.saved_as}")
            for a in self.assignments
            for n in a.new_releases
        ]

    def __str__(self) -> str:
        lines = [f"Workspace {self.workspace_dir} (learner versions from {self.release_dir})"]
        for a in self.assignments:
            summary = (
                f"{len(a.added)} added, {len(a.kept)} kept (your work), "
                f"{len(a.unchanged)} already up to date"
            )
            lines.append(f"  {a.name}: {summary}")
            lines += [f"    added      {p}" for p in a.added]
            lines += [f"    kept       {p}  (yours, not touched)" for p in a.kept]
            for n in a.new_releases:
                lines.append(f"    NEW        {n.saved_as}  (newer release of {n.kept})")
        if self.new_releases:
            lines += [
                "",
                "Some notebooks you already have were changed in a newer release of the course.",
                "Your copies were NOT changed; each new release is saved beside yours as",
                f"'<name>.{NEW_RELEASE}.<ext>'. Compare the two and copy over what you need, or,",
                "to start that notebook afresh, rename or delete your copy and run 'make workspace'.",
            ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = []
        for a in self.assignments:
            rows += [[a.name, theme.state("success", "added"), theme.code(p), ""] for p in a.added]
            rows += [[a.name, "kept", theme.code(p), "your work, not touched"] for p in a.kept]
            rows += [[a.name, theme.state("waiting-approval", "new release"), theme.code(n.saved_as),
                      f"newer release of {n.kept}"] for n in a.new_releases]
            rows += [[a.name, theme.muted("up to date"), theme.code(p), ""] for p in a.unchanged]
        note = ""
        if self.new_releases:
            note = theme.para(theme.join([theme.bold("Newer releases were saved beside your notebooks"), " as ",
                                          theme.code(f"<name>.{NEW_RELEASE}.<ext>"),
                                          "; your copies were not changed."]))
        title = theme.join(["Workspace ", theme.code(self.workspace_dir)])
        where = theme.para(theme.muted(theme.join(["from ", theme.code(self.release_dir)])))
        return theme.card(title, where + note + theme.table(rows, header=["assignment", "status", "file", "note"]))


def fingerprint(path: Path) -> str:
    """Content hash that ignores what running a notebook changes (outputs, counts, metadata)."""
    data = path.read_bytes()
    if path.suffix == ".ipynb":
        try:
            nb = json.loads(data)
            cells = [
                [c.get("cell_type"), "".join(c["source"]) if isinstance(c.get("source"), list) else c.get("source")]
                for c in nb["cells"]
            ]
            data = json.dumps(cells, sort_keys=True).encode()
        except (ValueError, KeyError, TypeError, AttributeError):
            pass  # not a notebook we can parse: compare its bytes
    return hashlib.sha256(data).hexdigest()


def _release_files(assignment_dir: Path) -> list[Path]:
    """Files of one assignment, relative to its folder, skipping editor and cache junk."""
    found: list[Path] = []
    for root, dirs, files in os.walk(assignment_dir, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            full = Path(root, name)
            if name in _SKIP_FILES or not full.is_file():
                continue
            found.append(full.relative_to(assignment_dir))
    return found


def copy_new(src: Path, dest: Path) -> bool:
    """Copy src to dest only if dest does not exist; True if copied.

    Writes a temporary file and hard-links it into place: the link fails if
    dest appeared meanwhile, and an interrupted copy never leaves a half file
    that later syncs would mistake for the learner's work.
    """
    if os.path.lexists(dest):
        return False
    mode = (stat.S_IMODE(src.stat().st_mode) | stat.S_IRUSR | stat.S_IWUSR) & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
            while chunk := inp.read(1 << 20):
                out.write(chunk)
        os.chmod(tmp, mode)
        try:
            os.link(tmp, dest)
        except FileExistsError:
            return False
        except OSError:  # file system without hard links: exclusive create instead
            try:
                with dest.open("xb") as out, open(tmp, "rb") as inp:
                    while chunk := inp.read(1 << 20):
                        out.write(chunk)
            except FileExistsError:
                return False
            os.chmod(dest, mode)
        return True
    finally:
        os.unlink(tmp)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _beside_name(rel: Path, n: int) -> Path:
    """orientation.ipynb -> orientation.new-release.ipynb (then .new-release-2, ...)."""
    tag = NEW_RELEASE if n == 1 else f"{NEW_RELEASE}-{n}"
    return rel.with_name(f"{rel.stem}.{tag}{rel.suffix}")


def _save_beside(src: Path, ws_assignment: Path, rel: Path) -> Path:
    """Save the new release next to the learner's file under a name not yet taken.

    An existing ``.new-release`` copy with the same content is reused (sync is
    idempotent); one with other content (maybe edited) is left alone.
    """
    want = fingerprint(src)
    for n in range(1, 1000):
        candidate = _beside_name(rel, n)
        dest = ws_assignment / candidate
        if os.path.lexists(dest):
            if dest.is_file() and fingerprint(dest) == want:
                return candidate
            continue
        if copy_new(src, dest):
            return candidate
    raise WorkspaceError(
        f"cannot save the new release of {ws_assignment / rel}: "
        f"expected a free name like {_beside_name(rel, 1).name}, got 999 taken",
        fix=f"delete old '*.{NEW_RELEASE}*' copies in {ws_assignment} and run 'make workspace' again",
    )


def _load_manifest(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data.get("files", {})
        return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}  # missing or damaged: treat every differing file conservatively


def _save_manifest(path: Path, files: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"version": 1, "files": dict(sorted(files.items()))}, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def sync(release: Path | None = None, workspace: Path | None = None) -> SyncReport:
    """Copy every release file that the workspace lacks; never overwrite a workspace file.

    Raises WorkspaceError when there is no release to copy (run `make release`)
    or the workspace cannot be written.
    """
    release = (release or paths.release_dir()).resolve()
    workspace = (workspace or paths.workspace_dir()).resolve()
    assignments = sorted(
        p for p in release.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in _SKIP_DIRS
    ) if release.is_dir() else []
    if not assignments:
        got = "no such folder" if not release.exists() else "no assignment folders in it"
        raise WorkspaceError(
            f"no learner notebooks to copy: expected build/release/<assignment>/ at {release}, got {got}",
            fix="run 'make release' (generates the learner versions), then 'make workspace'",
        )

    manifest_path = workspace / MANIFEST
    manifest = _load_manifest(manifest_path)
    report = SyncReport(release_dir=release, workspace_dir=workspace)
    try:
        for assignment in assignments:
            result = AssignmentSync(assignment.name)
            ws_assignment = workspace / assignment.name
            for rel in _release_files(assignment):
                src, dest = assignment / rel, ws_assignment / rel
                key = (Path(assignment.name) / rel).as_posix()
                src_print = fingerprint(src)
                dest.parent.mkdir(parents=True, exist_ok=True)
                if copy_new(src, dest):
                    result.added.append(rel.as_posix())
                elif dest.is_file() and fingerprint(dest) == src_print:
                    result.unchanged.append(rel.as_posix())
                else:
                    result.kept.append(rel.as_posix())
                    if manifest.get(key) != src_print:
                        # The release changed since we last copied it (or we cannot
                        # tell): keep theirs, save ours beside it.
                        saved = _save_beside(src, ws_assignment, rel)
                        result.new_releases.append(NewRelease(rel.as_posix(), saved.as_posix()))
                manifest[key] = src_print
            report.assignments.append(result)
        _save_manifest(manifest_path, manifest)
    except (FileExistsError, NotADirectoryError) as exc:
        raise WorkspaceError(
            f"cannot create a folder in the workspace: expected a folder at {exc.filename}, got a file",
            fix="rename that file (it may be your work), then run 'make workspace' again",
        ) from exc
    except PermissionError as exc:
        raise WorkspaceError(
            f"cannot write to the workspace: permission denied on {exc.filename}",
            fix=f"make {workspace} writable by you (e.g. 'sudo chown -R $USER {workspace}')",
        ) from exc
    return report
