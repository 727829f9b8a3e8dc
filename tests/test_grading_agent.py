"""careops.grading.agent: the untrusted side of the sandbox, which runs a learner's cells and answers as data.

The agent runs inside the grader image (tests/test_grading_sandbox.py starts it the same way); its encoder and
output cap are plain Python and are also tested here directly.
"""
from __future__ import annotations

import json

import pytest

from careops.grading.agent import TRUNCATED, CappedWriter, NotTransferable, encode
from careops.grading.trusted import decode


def test_encode_keeps_exact_builtin_types_and_refuses_the_rest() -> None:
    value = (1, {"sum": 5, "ok": True}, {2, 1}, [None, 1.5, "x"], float("inf"))
    wire = json.loads(json.dumps(encode(value)))  # JSON all the way: no Python object crosses
    assert wire == {"__tuple__": [1, {"__dict__": {"sum": 5, "ok": True}}, {"__set__": [1, 2]}, [None, 1.5, "x"],
                                  {"__float__": "inf"}]}
    assert decode(wire) == value

    class Sneaky(str):  # a str whose __eq__ lies must not pass as a str
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = str.__hash__

    nested: list = []
    for _ in range(60):
        nested = [nested]
    for bad, why in ((Sneaky("x"), "Sneaky"), ({1: "a"}, "keys that are not strings"), (object(), "builtins.object"),
                     (nested, "nested too deeply")):
        with pytest.raises(NotTransferable, match=why):
            encode(bad)


def test_capped_writer_keeps_the_first_characters_and_says_it_cut() -> None:
    out = CappedWriter(10)
    assert out.write("12345") == 5 and out.write("67890abc") == 8  # a writer always reports everything written
    out.write("more")
    assert out.truncated and out.getvalue() == "1234567890" + TRUNCATED
    quiet = CappedWriter(10)
    quiet.write("short")
    assert not quiet.truncated and quiet.getvalue() == "short"


def test_tables_numbers_and_cohorts_cross_the_sandbox_as_data() -> None:
    """DataFrames travel as pandas' JSON table format, numpy values as Python ones, a cohort as its recipe."""
    import numpy as np
    import pandas as pd

    from careops.synth import Anomalies, generate

    def wire(value):  # what the agent sends, as JSON, read back strictly on the host
        return decode(json.loads(json.dumps(encode(value))))

    frame = pd.DataFrame({"at": pd.to_datetime(["2026-11-02T09:01:30Z", "2026-11-03T10:00:00Z"], utc=True),
                          "who": ["Dana Reyes", "Sam Okoye"], "share": [0.6, 0.1 + 0.2], "n": [3, 4],
                          "ok": [True, False]})
    back = wire(frame)
    assert list(back.columns) == list(frame.columns)
    assert list(back["share"]) == [0.6, 0.1 + 0.2] and list(back["n"]) == [3, 4] and list(back["ok"]) == [True, False]
    assert list(back["at"]) == list(frame["at"]) and list(back["who"]) == ["Dana Reyes", "Sam Okoye"]
    assert list(wire(pd.Series([1.5, 2.0], name="x"))) == [1.5, 2.0] and list(wire(pd.Series([0.1 + 0.2]))) == [0.1 + 0.2]
    assert wire(np.int64(7)) == 7 and type(wire(np.float64(0.5))) is float and wire(np.arange(3)) == [0, 1, 2]
    cohort = generate(30, seed=5, anomalies=Anomalies(duplicate_patients=0.1))
    again = wire(cohort)
    assert all(again.tables()[name].equals(table) for name, table in cohort.tables().items())
    with pytest.raises(ValueError, match="cannot read"):
        decode({"__dataframe__": {"table": "{not json", "floats": {}}})
    recipe = encode(cohort)["__cohort__"]
    with pytest.raises(ValueError, match="at most 20,000"):
        decode({"__cohort__": {**recipe, "patients": 10**7}})
    with pytest.raises(ValueError, match="unexpected fields"):
        decode({"__cohort__": {**recipe, "extra": 1}})


@pytest.mark.docker
def test_agent_returns_values_and_errors_as_data(grading_sandboxes) -> None:
    sb = grading_sandboxes.start()
    call = grading_sandboxes.call
    try:
        ran = sb.request("run", source=(
            "import os\n"
            "def pair(a, b):\n    return (a, {'sum': a + b}, {1, 2}, [None, 1.5, 'x'])\n"
            "def boom(x):\n    raise ValueError(f'bad {x}')\n"
            "def weird():\n    return object()\n"
            "data = {'k': [1, 2]}\n"
            "class Sneaky(str):\n    def __eq__(self, other):\n        return True\n"
            "sneaky = Sneaky('x')\n"
            "1 / 0\n"))
        assert ran["error"]["ename"] == "ZeroDivisionError"
        assert call(sb, "pair", 2, 3)["value"] == {"__tuple__": [
            2, {"__dict__": {"sum": 5}}, {"__set__": [1, 2]}, [None, 1.5, "x"]]}
        err = call(sb, "boom", 7)
        assert err["ok"] is False and err["error"]["ename"] == "ValueError" and err["error"]["evalue"] == "bad 7"
        assert call(sb, "weird")["error"]["ename"] == "NotTransferable"
        assert sb.request("get", name="pair")["kind"] == "callable"
        got = sb.request("get", name="os")
        assert (got["kind"], got["module"]) == ("module", "os")
        assert sb.request("get", name="data")["value"] == {"__dict__": {"k": [1, 2]}}
        assert sb.request("get", name="nothing")["kind"] == "missing"
        # a str subclass with a lying __eq__ never leaves as a str
        assert sb.request("get", name="sneaky")["kind"] == "opaque"
    finally:
        sb.remove()


PICTURE_CELL = (
    "from IPython.display import display\n"
    "class Picture:\n"
    "    def __init__(self, data):\n        self.data = data\n"
    "    def _repr_png_(self):\n        return self.data\n"
    "print('drawn')\n"
    "display(Picture(b'<script>alert(1)</script>'))\n"  # not a PNG: dropped
    "display(Picture(b'\\x89PNG\\r\\n\\x1a\\n' + b'1' * 64))\n"
    "Picture(b'\\x89PNG\\r\\n\\x1a\\n' + b'2' * 64)\n")


def test_a_cells_pictures_come_back_as_png_and_nothing_else(grading_sandboxes) -> None:
    """The grader's feedback shows a plot cell's figure as an image, as the learner's notebook does."""
    import base64

    from careops.grading.autograder import _sandbox_outputs

    sb = grading_sandboxes.start()
    try:
        answer = sb.request("run", source=PICTURE_CELL)
    finally:
        sb.remove()
    outputs = _sandbox_outputs(answer)
    assert [o["output_type"] for o in outputs] == ["stream", "display_data", "display_data"], outputs
    assert "drawn" in outputs[0]["text"]
    pictures = [base64.b64decode(o["data"]["image/png"]) for o in outputs[1:]]
    assert [p[8:9] for p in pictures] == [b"1", b"2"]
    forged = {"outputs": [{"output_type": "display_data", "png": base64.b64encode(b"GIF89a").decode()},
                          {"output_type": "display_data", "png": "not base64!"},
                          {"output_type": "display_data", "html": "<script>"}]}
    assert _sandbox_outputs(forged) == []
