"""`careops labs ls|reset` (careops.apps.labs): the commands it suggests name the learner when it is not you."""
from __future__ import annotations

import io
import uuid
from contextlib import redirect_stderr

import pytest

from careops.apps.labs import reset_command, reset_main


def test_the_suggested_reset_names_the_learner_and_the_confirmation() -> None:
    assert reset_command("night-shift", None) == "careops labs reset night-shift"
    assert reset_command("night-shift", "amara-okafor", assume_yes=True) == \
        "careops labs reset night-shift --learner amara-okafor --yes"
    assert reset_command(None, "amara-okafor") == "careops labs reset --learner amara-okafor"


@pytest.mark.docker
def test_an_instructor_resetting_a_learners_lab_is_told_the_whole_command() -> None:
    from careops.lab import Lab

    learner = f"h-grading-{uuid.uuid4().hex[:6]}"
    lab = Lab("reset-hint", learner=learner)
    try:
        lab.run(name="idle", command=["sleep", "60"])
        err = io.StringIO()
        with redirect_stderr(err):
            code = reset_main(lab="reset-hint", learner=learner)  # no --yes, and no terminal to ask on
        assert code == 2
        assert f"run: careops labs reset reset-hint --learner {learner} --yes" in err.getvalue()
    finally:
        assert reset_main(lab="reset-hint", learner=learner, assume_yes=True) == 0
        lab.close()
