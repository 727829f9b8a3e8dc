"""careops.progress: a bar on a terminal, one plain line per step in a log (CI, `make test > log`)."""
from __future__ import annotations

import io

from careops.progress import Progress, interactive


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal, as a real one does."""

    def isatty(self) -> bool:
        return True


def test_a_log_gets_one_plain_line_per_step_and_the_time() -> None:
    log = io.StringIO()
    with Progress("building careops/grader:latest", file=log) as shown:
        shown.step("FROM careops/base:bookworm", 1, 19)
        shown.step("RUN python3 -m venv /opt/venv", 3, 19)
    lines = log.getvalue().splitlines()
    assert lines[:2] == ["building careops/grader:latest: step 1/19 FROM careops/base:bookworm",
                         "building careops/grader:latest: step 3/19 RUN python3 -m venv /opt/venv"]
    assert lines[2].startswith("building careops/grader:latest: done in ") and lines[2].endswith(" s")
    assert len(lines) == 3 and "\r" not in log.getvalue()


def test_a_log_gets_counts_announced_steps_once_and_a_failure() -> None:
    log = io.StringIO()
    shown = Progress("pipeline 1", total=4, file=log)
    shown.step("build: Check out")
    shown.advance()  # completes the step just announced: no second line
    shown.advance(2, "deploy: skipped")
    shown.close(ok=False)
    shown.close()  # twice: nothing more
    lines = log.getvalue().splitlines()
    assert lines[:2] == ["pipeline 1: step 1/4 build: Check out", "pipeline 1: 3/4 deploy: skipped"]
    assert lines[2].startswith("pipeline 1: failed after ") and len(lines) == 3


def test_a_chatty_command_is_thinned_out_in_a_log() -> None:
    log = io.StringIO()
    shown = Progress("debootstrap", file=log, every=60)
    for n in range(500):
        shown.advance(1, f"I: Retrieving package-{n}")
    shown.close(text="paused for approval")
    lines = log.getvalue().splitlines()
    assert lines[0] == "debootstrap: 0 s I: Retrieving package-0" and len(lines) == 2
    assert lines[1].startswith("debootstrap: paused for approval after ")


def test_a_terminal_gets_the_tqdm_bar() -> None:
    tty = FakeTerminal()
    assert interactive(tty) and not interactive(io.StringIO())
    shown = Progress("building your image", file=tty, mininterval=0,
                     bar_format="{desc}: step {n_fmt}/{total_fmt} |{bar:20}| {elapsed} {postfix}")
    assert not shown.plain
    shown.step("FROM careops/base:bookworm", 1, 3)
    shown.step("RUN make", 3, 3)
    shown.close()
    out = tty.getvalue()
    assert "\r" in out  # redrawn in place, as a terminal shows it
    assert "building your image: step 0/3" in out and "step 2/3" in out and "RUN make" in out
    assert "building your image: step 3/3" in out  # the last step is done when the task ended well
    assert "done in" not in out


def test_disabled_shows_nothing_anywhere() -> None:
    for stream in (io.StringIO(), FakeTerminal()):
        with Progress("quiet", file=stream, enabled=False) as shown:
            shown.step("a", 1, 2)
            shown.advance(1, "b")
        assert stream.getvalue() == ""


def test_a_notebook_gets_one_line_updated_in_place_and_no_stderr() -> None:
    """In a kernel: one display output whose last state says what finished, between the task's log lines."""
    import nbformat
    from nbclient import NotebookClient

    cell = ("from careops.progress import Progress, write_line\n"
            "with Progress('pipeline 7', total=3) as shown:\n"
            "    for n, step in enumerate(['lint', 'test', 'build'], start=1):\n"
            "        shown.step(step, n)\n"
            "        write_line(f'[{step}] ok')\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    assert not [o for o in outputs if o.get("name") == "stderr"], outputs
    lines = [o for o in outputs if o.output_type == "display_data"]
    assert len(lines) == 1, outputs
    final = lines[0].data
    assert final["text/plain"].startswith("pipeline 7: 3/3 steps done (") and "careops-progress" in final["text/html"]
    logged = "".join(o.text for o in outputs if o.output_type == "stream")
    assert logged == "[lint] ok\n[test] ok\n[build] ok\n"


def test_a_task_that_stopped_without_a_verdict_says_so() -> None:
    log = io.StringIO()
    shown = Progress("pipeline 2", total=3, file=log)
    shown.step("deploy-staging: waiting", 3)
    shown.close(ok=None)
    assert log.getvalue().splitlines()[-1].startswith("pipeline 2: stopped after ")
