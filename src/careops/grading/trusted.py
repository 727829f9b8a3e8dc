"""Test cells run here, in trusted code on the host, never inside the learner's process.

A test cell is the instructor's code; it only needs the learner's *values*:
functions to call, data to look at. So it runs in a fresh namespace on the
host that holds

* the instructor's imports, taken from the locked cells of the source
  notebook (only ``import``/``from ... import`` statements are run), so
  ``check``, ``pd`` and friends are the host's own, unpatched modules;
* every other name the cell uses, fetched from the sandbox: plain data is
  copied (JSON, exact builtin types only), a function becomes a
  :class:`RemoteFunction` whose calls run in the sandbox with a timeout.

Whatever the learner's code patches in its own process (``AssertionError``,
builtins, ``sys.excepthook``, the check API, IPython's traceback display) has
no effect on the verdict: pass/fail is decided by this process catching the
test's exception. Live checks (``careops.live_check`` cell metadata) run the
same way against throwaway lab containers built from the learner's artifact
text, extracted from the notebook file without executing it.
"""
from __future__ import annotations

import ast
import base64
import builtins
import pickle
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from careops.grading.restore import nbgrader_meta, source_text
from careops.grading.sandbox import Sandbox, SandboxError
from careops.report import CheckFailed

CELL_FILE = "<test cell {gid}>"
# Modules a sandbox may name for a value the host then imports itself (never the learner's copy).
SAFE_MODULE_ROOTS = frozenset({"careops", "pandas", "numpy", "yaml", "matplotlib"}) | frozenset(
    sys.stdlib_module_names
)


def python_source(cell_source: str) -> str:
    """The cell as plain Python (IPython magics such as %%artifact turned into calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(cell_source)


def trusted_prelude(source_nb: dict[str, Any]) -> dict[str, Any]:
    """The instructor's imports from every locked code cell, executed on the host."""
    ns: dict[str, Any] = {"__builtins__": builtins, "__name__": "__grader__"}
    for cell in source_nb.get("cells", []):
        meta = nbgrader_meta(cell)
        if cell.get("cell_type") != "code" or not meta.get("locked") or meta.get("solution"):
            continue
        try:
            tree = ast.parse(python_source(source_text(cell)))
        except SyntaxError:
            continue
        for node in tree.body:
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            try:
                exec(compile(ast.Module(body=[node], type_ignores=[]), "<instructor imports>", "exec"), ns)  # noqa: S102 - the instructor's own imports
            except ImportError:
                continue  # a lab module the notebook puts on sys.path at run time: tests do not rely on it here
    return ns


class RemoteError(Exception):
    """The learner's function raised, in the sandbox; the message is its exception.

    ``ename`` and ``evalue`` are the original exception's name and message (a check words them as the learner's
    own kernel would, see :func:`careops.report.learner_error`).
    """

    def __init__(self, message: str, *, ename: str = "", evalue: str = "") -> None:
        super().__init__(message)
        self.ename, self.evalue = ename, evalue


class Opaque:
    """A learner value that cannot leave the sandbox (a container, an open file...): any use fails."""

    def __init__(self, name: str, what: str) -> None:
        self._name, self._what = name, what

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"the grader cannot use {self._name!r} ({self._what}) outside your notebook: "
                        "tests work with functions and plain values (bool, int, str, list, dict)")

    __call__ = __getattr__ = __iter__ = __len__ = __bool__ = __eq__ = _fail  # type: ignore[assignment]
    __hash__ = None  # type: ignore[assignment]


def decode(value: Any, depth: int = 0) -> Any:
    """Strict inverse of the agent's ``encode``: only JSON types and the tagged forms."""
    if depth > 60:
        raise ValueError("value nested too deeply")
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        return value
    if type(value) is list:
        return [decode(v, depth + 1) for v in value]
    if type(value) is dict and len(value) == 1:
        (tag, inner), = value.items()
        if tag == "__tuple__" and type(inner) is list:
            return tuple(decode(v, depth + 1) for v in inner)
        if tag == "__dict__" and type(inner) is dict:
            return {str(k): decode(v, depth + 1) for k, v in inner.items()}
        if tag == "__set__" and type(inner) is list:
            return {decode(v, depth + 1) for v in inner}
        if tag == "__float__" and inner in ("nan", "inf", "-inf"):
            return float(inner)
        if tag in ("__dataframe__", "__series__") and type(inner) is dict and type(inner.get("table")) is str \
                and type(inner.get("floats")) is dict:
            return _read_pandas(inner["table"], inner["floats"], series=tag == "__series__")
        if tag == "__cohort__" and type(inner) is dict:
            return _regenerate_cohort(inner)
    raise ValueError(f"not a value the grader accepts: {str(value)[:80]}")


def _read_pandas(text: str, floats: dict[str, Any], *, series: bool) -> Any:
    """A DataFrame/Series from pandas' JSON table format (data only, parsed by pandas' JSON reader),
    with its float columns replaced by their exact values."""
    import io

    import pandas as pd

    if len(text) > 64 * 2**20:
        raise ValueError("a table larger than 64 MiB")
    try:
        frame = pd.read_json(io.StringIO(text), orient="table", precise_float=True)
    except Exception as exc:  # noqa: BLE001 - anything malformed is simply refused
        raise ValueError(f"a table the grader cannot read ({type(exc).__name__})") from None
    names = {str(c): c for c in frame.columns}
    for name, values in floats.items():
        if name not in names or type(values) is not list or len(values) != len(frame) \
                or any(v is not None and type(v) is not float for v in values):
            raise ValueError(f"exact values for column {name[:40]!r} that do not fit the table")
        frame[names[name]] = pd.Series([float("nan") if v is None else v for v in values], index=frame.index,
                                       dtype="float64")
    if series:
        if frame.shape[1] != 1:
            raise ValueError("a series with more than one column")
        return frame.iloc[:, 0]
    return frame


def _regenerate_cohort(recipe: dict[str, Any]) -> Any:
    """A careops.synth Cohort rebuilt on the host from its recipe (generation is deterministic)."""
    from datetime import date

    from careops.synth import Anomalies, generate

    want = {"seed": int, "as_of": str, "patients": int, "years": int, "rare": float, "anomalies": dict}
    if set(recipe) != set(want) or any(type(recipe[k]) is not t for k, t in want.items()):
        raise ValueError("a cohort recipe with unexpected fields")
    if not 1 <= recipe["patients"] <= 20_000:
        raise ValueError(f"a cohort of {recipe['patients']} patients (the grader rebuilds at most 20,000)")
    shares = recipe["anomalies"]
    if any(type(k) is not str or type(v) is not float for k, v in shares.items()):
        raise ValueError("anomaly shares that are not numbers")
    try:
        return generate(recipe["patients"], recipe["seed"], as_of=date.fromisoformat(recipe["as_of"]),
                        years=recipe["years"], rare=recipe["rare"], anomalies=Anomalies(**shares))
    except Exception as exc:  # noqa: BLE001 - a recipe the generator refuses is refused here too
        raise ValueError(f"a cohort the grader cannot rebuild ({exc})") from None


_BUILTIN_EXC = {name: obj for name, obj in vars(builtins).items()
                if isinstance(obj, type) and issubclass(obj, Exception)}


class RemoteFunction:
    """Calls a learner's function inside the sandbox; arguments go in pickled, results come back as data."""

    def __init__(self, sandbox: Sandbox, name: str, outputs: list[dict[str, Any]], deadline: float) -> None:
        self._sandbox, self.__name__, self._outputs = sandbox, name, outputs
        self._deadline = deadline  # the whole test cell shares one cell timeout, as in nbgrader

    def __repr__(self) -> str:
        return f"<learner function {self.__name__}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            payload = base64.b64encode(pickle.dumps((args, kwargs))).decode()
        except Exception as exc:  # noqa: BLE001
            raise TypeError(f"the grader cannot pass these arguments to {self.__name__}: {exc}") from None
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{self.__name__}(...) was not called: the test cell used up its "
                               f"{self._sandbox.policy.cell_timeout:.0f} s")
        answer = self._sandbox.request("call", timeout=left, label=f"{self.__name__}(...)",
                                       name=self.__name__, args=payload)
        for out in answer.get("outputs") or []:
            if isinstance(out, dict) and isinstance(out.get("text"), str):
                self._outputs.append({"output_type": "stream", "name": "stdout", "text": out["text"][:65536]})
        if answer.get("ok"):
            try:
                return decode(answer.get("value"))
            except ValueError as exc:
                raise RemoteError(f"{self.__name__} returned something unreadable: {exc}") from None
        err = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        ename, evalue = str(err.get("ename", "Error"))[:80], str(err.get("evalue", ""))[:2000]
        if answer.get("timed_out"):
            raise TimeoutError(f"{self.__name__}(...) {evalue}")
        cls = _BUILTIN_EXC.get(ename)
        if cls is not None and cls not in (AssertionError,) and not issubclass(cls, (OSError, UnicodeError)):
            try:
                raise cls(evalue)
            except TypeError:
                pass
        raise RemoteError(f"{ename}: {evalue}", ename=ename, evalue=evalue)


@dataclass
class TestOutcome:
    """How one test cell ended on the host."""

    grade_id: str
    passed: bool
    outputs: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""  # why it failed, one line
    hidden: bool = False  # it failed in its hidden tests (the visible part passed): feedback must not show why

    def error_output(self) -> dict[str, Any] | None:
        return next((o for o in self.outputs if o.get("output_type") == "error"), None)


HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def hidden_lines(source: str) -> set[int]:
    """Line numbers (1-based) of a test cell's source that are inside its hidden-tests region."""
    lines, inside = set(), False
    for number, line in enumerate(source.splitlines(), start=1):
        if HIDDEN_BEGIN in line:
            inside = True
        elif HIDDEN_END in line:
            inside = False
        elif inside:
            lines.add(number)
    return lines


def _failed_in(exc: BaseException, filename: str, hidden: set[int]) -> bool:
    """Whether the cell's own frame that raised is on a hidden line."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    return bool(frames) and frames[-1].lineno in hidden


def _names_used(tree: ast.AST) -> list[str]:
    return sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})


def _assigned(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
    return names


def _error_output(exc: BaseException, filename: str) -> dict[str, Any]:
    frames = [f for f in traceback.extract_tb(exc.__traceback__)]
    keep = [f for f in frames if f.filename == filename] or frames[-1:]
    tb = ["Traceback (most recent call last):"] + [
        ln.rstrip("\n") for ln in traceback.format_list(keep)
    ] + [ln.rstrip("\n") for ln in traceback.format_exception_only(type(exc), exc)]
    return {"output_type": "error", "ename": type(exc).__name__, "evalue": str(exc), "traceback": tb}


def _display(value: Any) -> dict[str, Any] | None:
    """A test cell's last value as an output.

    A careops result (a check's report) shows as ``display_data``, as it does in
    the learner's kernel: nbgrader reads partial credit from an ``execute_result``
    and would warn that a report is not a number.
    """
    if value is None:
        return None
    if not type(value).__module__.startswith("careops."):
        return {"output_type": "execute_result", "execution_count": None, "metadata": {},
                "data": {"text/plain": repr(value)}}
    data = {"text/plain": str(value) if hasattr(value, "criteria") else repr(value)}
    html = getattr(value, "_repr_html_", None)
    if callable(html):
        try:
            data["text/html"] = html()
        except Exception:  # noqa: BLE001, S110 - the plain text is shown anyway
            pass
    return {"output_type": "display_data", "metadata": {}, "data": data}


def _check_failed_outputs(exc: CheckFailed) -> list[dict[str, Any]]:
    """A failed check as the learner sees it in the notebook: its report once, then one line."""
    shown = _display(exc.report)
    line = exc._render_traceback_()
    return [*([shown] if shown else []), {"output_type": "error", "ename": "CheckFailed",
                                          "evalue": exc.report.summary(), "traceback": line}]


_VISIBLE = "__careops_visible_value__"


def _keep_visible_value(tree: ast.Module, hidden: set[int]) -> None:
    """The visible part's last expression (``check.thing(answer)``) is the cell's value in the learner's kernel,
    where the hidden tests are gone: keep its value to show it, even though hidden tests follow it here."""
    if not hidden:
        return
    first_hidden = min(hidden)
    visible = [i for i, node in enumerate(tree.body) if (node.end_lineno or node.lineno) < first_hidden]
    if visible and isinstance(tree.body[visible[-1]], ast.Expr) and visible[-1] != len(tree.body) - 1:
        node = tree.body[visible[-1]]
        tree.body[visible[-1]] = ast.copy_location(
            ast.Assign(targets=[ast.Name(_VISIBLE, ast.Store())], value=node.value), node)
        ast.fix_missing_locations(tree)


def _show_visible_value(ns: dict[str, Any], outputs: list[dict[str, Any]]) -> None:
    if _VISIBLE in ns:
        shown = _display(ns.pop(_VISIBLE))
        if shown:
            outputs.append(shown)


def run_test_source(source: str, grade_id: str, ns: dict[str, Any],
                    fetch: Callable[[str, list[dict[str, Any]]], Any] | None) -> tuple[TestOutcome, dict[str, Any]]:
    """Execute a test cell's source in ``ns`` (fetching missing names); returns the outcome and its new names."""
    filename = CELL_FILE.format(gid=grade_id)
    outputs: list[dict[str, Any]] = []
    hidden: set[int] = set()
    try:
        code = python_source(source)
        hidden = hidden_lines(code)
        tree = ast.parse(code, filename=filename)
        if fetch is not None:
            for name in _names_used(tree):
                if name not in ns and not hasattr(builtins, name):
                    value = fetch(name, outputs)
                    if value is not _MISSING:
                        ns[name] = value
        _keep_visible_value(tree, hidden)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, filename, "exec"), ns)  # noqa: S102 - the instructor's test cell (trusted)
        _show_visible_value(ns, outputs)
        if last is not None:
            shown = _display(eval(compile(last, filename, "eval"), ns))
            if shown:
                outputs.append(shown)
    except SandboxError as exc:
        outputs.append({"output_type": "error", "ename": "SandboxError", "evalue": exc.message,
                        "traceback": [f"SandboxError: {exc.message}"]})
        return TestOutcome(grade_id, False, outputs, exc.message), {}
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        _show_visible_value(ns, outputs)
        if isinstance(exc, CheckFailed):
            outputs.extend(_check_failed_outputs(exc))
        else:
            outputs.append(_error_output(exc, filename))
        first = (str(exc).strip().splitlines() or [""])[0]
        return TestOutcome(grade_id, False, outputs, f"{type(exc).__name__}: {first}"[:300],
                           hidden=_failed_in(exc, filename, hidden)), {}
    assigned = _assigned(tree) if isinstance(tree, ast.Module) else set()
    return TestOutcome(grade_id, True, outputs), {k: ns[k] for k in assigned if k in ns}


_MISSING = object()


def sandbox_fetcher(sandbox: Sandbox) -> Callable[[str, list[dict[str, Any]]], Any]:
    """Looks a name up in the learner's namespace; returns a host-side stand-in for it."""
    deadline = time.monotonic() + sandbox.policy.cell_timeout

    def fetch(name: str, outputs: list[dict[str, Any]]) -> Any:
        answer = sandbox.request("get", name=name)
        if not answer.get("ok"):
            return _MISSING
        kind = answer.get("kind")
        if kind == "callable":
            fn = RemoteFunction(sandbox, name, outputs, deadline)
            if answer.get("hypothesis") is True:
                fn.hypothesis = True  # type: ignore[attr-defined] - mirrors @given's marker for checks
            return fn
        if kind == "data":
            try:
                return decode(answer.get("value"))
            except ValueError as exc:
                return Opaque(name, str(exc))
        if kind == "module":
            # only a module this process already imported: a learner never makes the host import anything
            mod = str(answer.get("module", ""))
            if mod.split(".")[0] in SAFE_MODULE_ROOTS and mod in sys.modules:
                return sys.modules[mod]
            return Opaque(name, f"module {mod}")
        if kind == "opaque":
            return Opaque(name, str(answer.get("type", "an object"))[:200])
        return _MISSING

    return fetch


def run_test_cell(cell: dict[str, Any], prelude: dict[str, Any], defined: dict[str, Any],
                  sandbox: Sandbox) -> TestOutcome:
    """Run one (non-live) test cell against the learner's sandbox; ``defined`` collects its names."""
    gid = nbgrader_meta(cell).get("grade_id", "?")
    ns = {**prelude, **defined}
    outcome, new = run_test_source(source_text(cell), str(gid), ns, sandbox_fetcher(sandbox))
    defined.update(new)
    return outcome


def failed(grade_id: str, reason: str, ename: str = "NotGraded") -> TestOutcome:
    """A test that failed before it could run: zero, with the reason.

    ``NotGraded`` (the default) means the grader could not run it (the sandbox
    is gone): the submission is reported as not graded fully. Another
    ``ename`` is the learner's own failure (an artifact not written yet).
    """
    return TestOutcome(grade_id, False, [{"output_type": "error", "ename": ename, "evalue": reason,
                                          "traceback": [f"{ename}: {reason}"]}], f"{ename}: {reason}")


__all__ = [
    "RemoteError",
    "RemoteFunction",
    "TestOutcome",
    "decode",
    "failed",
    "run_test_cell",
    "run_test_source",
    "trusted_prelude",
]
