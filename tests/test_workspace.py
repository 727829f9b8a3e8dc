"""`careops workspace sync`: new files arrive, the learner's files are never overwritten."""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from careops import workspace
from careops.cli import cli
from careops.workspace import WorkspaceError, sync


def _notebook(path: Path, *sources: str, outputs: bool = False) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title")]
    for i, src in enumerate(sources, start=1):
        cell = nbformat.v4.new_code_cell(src)
        if outputs:
            cell.execution_count = i
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ran\n")]
        nb.cells.append(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CareOps tree with a release of one assignment (a notebook and a data file)."""
    monkeypatch.setenv("CAREOPS_HOME", str(tmp_path))
    rel = tmp_path / "build" / "release" / "00-orientation"
    _notebook(rel / "orientation.ipynb", "print('welcome')")
    (rel / "data").mkdir()
    (rel / "data" / "patients.csv").write_text("id,name\n1,TEST^PATIENT\n")
    (rel / ".ipynb_checkpoints").mkdir()
    (rel / ".ipynb_checkpoints" / "orientation-checkpoint.ipynb").write_text("{}")
    return tmp_path


def test_copies_every_new_file(home: Path) -> None:
    report = sync()
    ws = home / "workspace" / "00-orientation"
    assert (ws / "orientation.ipynb").read_bytes() == (
        home / "build/release/00-orientation/orientation.ipynb"
    ).read_bytes()
    assert (ws / "data" / "patients.csv").read_text().startswith("id,name")
    assert not (ws / ".ipynb_checkpoints").exists(), "editor junk must not be copied"
    assert sorted(report.added) == ["00-orientation/data/patients.csv", "00-orientation/orientation.ipynb"]
    assert report.kept == [] and report.new_releases == []
    assert not list(ws.rglob("*.part")), "no temporary files may be left behind"
    assert os.access(ws / "orientation.ipynb", os.W_OK), "the learner must be able to edit the copy"


def test_second_sync_changes_nothing(home: Path) -> None:
    sync()
    report = sync()
    assert report.added == [] and report.kept == [] and report.new_releases == []
    assert sorted(report.assignments[0].unchanged) == ["data/patients.csv", "orientation.ipynb"]


def test_learner_work_is_never_overwritten(home: Path) -> None:
    sync()
    mine = home / "workspace" / "00-orientation" / "orientation.ipynb"
    _notebook(mine, "print('my answer')")
    before = mine.read_bytes()

    report = sync()

    assert mine.read_bytes() == before
    assert report.kept == ["00-orientation/orientation.ipynb"]
    # The release did not change since it was copied: these are just the learner's edits.
    assert report.new_releases == []
    assert list(mine.parent.glob("*.new-release*")) == []
    assert "kept" in str(report) and "orientation.ipynb" in str(report)


def test_running_cells_is_not_a_change(home: Path) -> None:
    """Outputs and execution counts differ from the release, the sources do not."""
    sync()
    mine = home / "workspace" / "00-orientation" / "orientation.ipynb"
    _notebook(mine, "print('welcome')", outputs=True)
    before = mine.read_bytes()
    report = sync()
    assert mine.read_bytes() == before
    assert "orientation.ipynb" in report.assignments[0].unchanged


def test_newer_release_is_saved_beside_the_learners_copy(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sync()
    ws = home / "workspace" / "00-orientation"
    _notebook(ws / "orientation.ipynb", "print('my answer')")
    mine = (ws / "orientation.ipynb").read_bytes()
    _notebook(home / "build/release/00-orientation/orientation.ipynb", "print('welcome, v2')")

    report = sync()

    assert (ws / "orientation.ipynb").read_bytes() == mine, "the learner's copy must not change"
    beside = ws / "orientation.new-release.ipynb"
    assert "welcome, v2" in beside.read_text()
    assert [(n.kept, n.saved_as) for n in report.new_releases] == [
        ("00-orientation/orientation.ipynb", "00-orientation/orientation.new-release.ipynb")
    ]
    text = str(report)
    assert "orientation.new-release.ipynb" in text and "NOT changed" in text
    assert "new release" in report._repr_html_()

    # Once saved, the same release is not reported again.
    again = sync()
    assert again.new_releases == [] and again.kept == ["00-orientation/orientation.ipynb"]


def test_a_taken_new_release_name_is_not_overwritten(home: Path) -> None:
    sync()
    ws = home / "workspace" / "00-orientation"
    _notebook(ws / "orientation.ipynb", "print('my answer')")
    (ws / "orientation.new-release.ipynb").write_text("my notes in the old new-release copy")
    _notebook(home / "build/release/00-orientation/orientation.ipynb", "print('welcome, v3')")

    report = sync()

    assert (ws / "orientation.new-release.ipynb").read_text() == "my notes in the old new-release copy"
    assert "welcome, v3" in (ws / "orientation.new-release-2.ipynb").read_text()
    assert report.new_releases[0].saved_as == "00-orientation/orientation.new-release-2.ipynb"


def test_without_a_record_a_differing_file_gets_the_release_beside_it(home: Path) -> None:
    """A workspace from before the manifest existed: keep theirs, lose nothing."""
    ws = home / "workspace" / "00-orientation"
    (ws / "data").mkdir(parents=True)
    (ws / "data" / "patients.csv").write_text("my,edited\n")
    report = sync()
    assert (ws / "data" / "patients.csv").read_text() == "my,edited\n"
    assert (ws / "data" / "patients.new-release.csv").read_text().startswith("id,name")
    assert report.added == ["00-orientation/orientation.ipynb"]
    assert report.kept == ["00-orientation/data/patients.csv"]


def test_a_dangling_symlink_in_the_workspace_is_not_followed(home: Path, tmp_path: Path) -> None:
    ws = home / "workspace" / "00-orientation"
    ws.mkdir(parents=True)
    target = tmp_path / "outside.ipynb"
    (ws / "orientation.ipynb").symlink_to(target)
    sync()
    assert not target.exists(), "sync wrote through a symlink"


def test_a_file_where_a_folder_belongs_is_explained(home: Path) -> None:
    (home / "workspace").mkdir()
    (home / "workspace" / "00-orientation").write_text("oops")
    with pytest.raises(WorkspaceError) as err:
        sync()
    assert "expected a folder" in err.value.message and "rename" in (err.value.fix or "")


def test_missing_release_names_make_release(home: Path) -> None:
    import shutil

    shutil.rmtree(home / "build" / "release")
    with pytest.raises(WorkspaceError) as err:
        sync()
    assert "build/release" in err.value.message and "no such folder" in err.value.message
    assert "make release" in (err.value.fix or "")


def test_empty_release_names_make_release(home: Path) -> None:
    import shutil

    shutil.rmtree(home / "build" / "release" / "00-orientation")
    with pytest.raises(WorkspaceError, match="no assignment folders"):
        sync()


def test_cli_prints_the_report_and_fails_clearly(home: Path) -> None:
    result = CliRunner().invoke(cli, ["workspace", "sync"])
    assert result.exit_code == 0, result.output
    assert "00-orientation: 2 added" in result.output

    import shutil

    shutil.rmtree(home / "build" / "release")
    result = CliRunner().invoke(cli, ["workspace", "sync"])
    assert result.exit_code != 0
    assert "make release" in result.output


def test_repr_html_escapes_names(home: Path) -> None:
    (home / "build/release/00-orientation/<b>.txt").write_text("x")
    html = sync()._repr_html_()
    assert "&lt;b&gt;.txt" in html and "<b>.txt" not in html


def test_manifest_is_hidden_and_readable(home: Path) -> None:
    sync()
    manifest = home / "workspace" / workspace.MANIFEST
    assert manifest.parent.name.startswith("."), "JupyterLab hides dot folders"
    files = json.loads(manifest.read_text())["files"]
    assert set(files) == {"00-orientation/orientation.ipynb", "00-orientation/data/patients.csv"}
