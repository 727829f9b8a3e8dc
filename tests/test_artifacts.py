"""Artifact cells are extracted from the notebook file without running it."""
from __future__ import annotations

import json

import nbformat
import pytest

from careops.artifacts import extract
from careops.errors import ArtifactError


def _nb(source: str, tags=("careops-artifact",)) -> dict:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)}),
                                         nbformat.v4.new_code_cell("print('not an artifact')")])
    return json.loads(nbformat.writes(nb))


def test_the_artifact_text_is_everything_after_the_magic_line():
    got = extract(_nb("%%artifact spec\nname: x\n### BEGIN SOLUTION\nuser: '1000'\n### END SOLUTION\n"))
    assert got == {"spec": "name: x\nuser: '1000'\n"}


def test_an_unfinished_artifact_is_reported():
    with pytest.raises(ArtifactError, match="not written yet"):
        extract(_nb("%%artifact spec\nname: x\n# YOUR CODE HERE\nraise NotImplementedError()\n"))


def test_a_tagged_cell_that_lost_its_magic_line_is_reported():
    with pytest.raises(ArtifactError, match="does not start with %%artifact"):
        extract(_nb("name: x\n"))


def test_a_file_that_is_not_a_notebook_is_reported(tmp_path):
    bad = tmp_path / "x.ipynb"
    bad.write_text("{not json")
    with pytest.raises(ArtifactError, match="cannot read notebook"):
        extract(bad)


def test_the_orientation_notebook_has_its_spec_artifact(repo_root):
    got = extract(repo_root / "notebooks" / "00-orientation" / "orientation.ipynb")
    assert "triage_probe_spec" in got and "read_only: true" in got["triage_probe_spec"]


def test_the_magic_stores_the_text_and_refuses_the_placeholder():
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    ip.run_line_magic("load_ext", "careops.notebook")
    ip.run_cell_magic("artifact", "my_spec", "name: x\n")
    assert ip.user_ns["my_spec"] == "name: x\n"
    with pytest.raises(NotImplementedError, match="not written yet"):
        ip.run_cell_magic("artifact", "my_spec", "# YOUR CODE HERE\nraise NotImplementedError()\n")
