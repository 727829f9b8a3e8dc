"""The course's figures are pictures wherever they are shown (careops.report.figure).

A bare matplotlib Figure is the text ``<Figure size ... with 3 Axes>`` in a kernel
that never imported pyplot, in nbconvert and in the grader's feedback. Every
course plot returns careops.report.figure.Figure, which carries its own PNG: as a
cell's value it is one image output, also when pyplot's inline backend is active.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from careops.report.figure import Figure

PNG = b"\x89PNG\r\n\x1a\n"


def test_a_figure_carries_its_png_and_says_what_it_shows() -> None:
    fig = Figure(figsize=(4, 3))
    fig.subplots().plot([1, 2, 3])
    fig.suptitle("job durations")
    assert fig._repr_png_().startswith(PNG)
    assert repr(fig) == "<figure 'job durations', 400x300 px, 1 plot(s)>"


def test_every_course_plot_is_a_course_figure(tmp_path: Path) -> None:
    from careops.audit import AuditLog
    from careops.pipeline import plot_durations
    from careops.synth import generate
    from careops.synth.plots import age_pyramid, compare
    from careops.traffic import plot_rollout
    from careops.traffic.run import read_frame

    cohort = generate(patients=30, seed=3, as_of=date(2026, 1, 1))
    frame = read_frame('{"kind": "http", "id": "h1", "t_sched": 100.0, "t_send": 100.0, "latency_ms": 3.0, '
                       '"ok": true, "status": "200", "version": "v1", "attempt": 1, "upstream": "", "error": null}\n')
    figures = [plot_durations(AuditLog(tmp_path / "audit.jsonl", key=b"k" * 32)), compare(cohort),
               plot_rollout(frame, [("switch", 100.5)]), age_pyramid(cohort).figure]
    for fig in figures:
        assert isinstance(fig, Figure), f"{fig!r} is not a course figure"
        assert fig._repr_png_().startswith(PNG)


CELLS = [
    "from careops.report.figure import Figure\n"
    "def drawn():\n    fig = Figure(figsize=(3, 2))\n    fig.subplots().plot([1, 2])\n    return fig",
    "drawn()",
    "import matplotlib.pyplot as plt  # the inline backend registers its own formatter for figures\ndrawn()",
]


def test_in_a_kernel_a_figure_is_one_image_with_or_without_pyplot() -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    for cell in nb.cells[1:]:
        outputs = cell.outputs
        assert len(outputs) == 1 and "image/png" in outputs[0].data, outputs
        assert "<Figure size" not in outputs[0].data.get("text/plain", "")
