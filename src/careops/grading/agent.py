"""The agent that runs a learner's cells inside a grading sandbox.

This file runs INSIDE the sandbox container (``python -c <this source>``), as
user 1000, with no network. It is deliberately self-contained (stdlib and
IPython only) and it is *not trusted*: the learner's code runs in this very
process and may rewrite any of it. So nothing it says is believed on the host
side beyond "this is data": every answer is size-checked and parsed strictly
(see :mod:`careops.grading.sandbox`), and no test verdict is ever computed
here. Test cells run on the host, in trusted code, and reach the learner's
functions through ``call`` requests.

Protocol: one JSON object per line. The host writes requests on stdin; the
agent answers each on the original stdout, which it keeps on a private file
descriptor before pointing fds 1 and 2 at /dev/null (so output of learner
subprocesses cannot mix into the protocol).

    {"id": 1, "op": "hello"}                          -> {"id": 1, "ok": true}
    {"id": 2, "op": "run", "source": "..."}           -> {"id": 2, "ok": true, "outputs": [...], "error": null | {...}}
    {"id": 3, "op": "get", "name": "is_synthetic"}    -> {"id": 3, "ok": true, "kind": "callable" | "data" | "module" | "missing" | "opaque", ...}
    {"id": 4, "op": "call", "name": "f", "args": b64 pickle of (args, kwargs)} -> {"id": 4, "ok": true, "value": ...} | {"ok": false, "error": {...}}
"""
import base64
import io
import json
import math
import os
import pickle
import sys
import traceback

OUTPUT_CAP = int(os.environ.get("CAREOPS_AGENT_OUTPUT_CAP", "65536"))
VALUE_CAP = int(os.environ.get("CAREOPS_AGENT_VALUE_CAP", "1048576"))
TRUNCATED = "\n... [output truncated by the grader]\n"
#: A cell's pictures (a figure as its value or displayed) come back as PNG: at most this many, each this big.
IMAGES_PER_CELL = 3
IMAGE_CAP = int(os.environ.get("CAREOPS_AGENT_IMAGE_CAP", str(384 * 1024)))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class CappedWriter(io.TextIOBase):
    """A text stream that keeps at most ``cap`` characters, so printing gigabytes costs nothing."""

    def __init__(self, cap):
        self.cap = cap
        self.parts = []
        self.size = 0
        self.truncated = False

    def writable(self):
        return True

    def write(self, text):
        text = str(text)
        room = self.cap - self.size
        if room > 0:
            piece = text[:room]
            self.parts.append(piece)
            self.size += len(piece)
        if len(text) > max(room, 0):
            self.truncated = True
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False

    def getvalue(self):
        return "".join(self.parts) + (TRUNCATED if self.truncated else "")


class NoOutputHistory(dict):
    """IPython 9 keeps every printed string of a cell in its output history: keep none.

    (Otherwise a cell printing a gigabyte holds a gigabyte, whatever the cap.)
    """

    def __contains__(self, key):
        return False

    def __getitem__(self, key):
        return []

    def __setitem__(self, key, value):
        pass


class NotTransferable(Exception):
    pass


_PLAIN = (type(None), bool, int, str)


def encode(value, depth=0):
    """JSON-able form of a plain value; exact builtin types only (no subclasses with tricks)."""
    if depth > 50:
        raise NotTransferable("nested too deeply")
    t = type(value)
    if t in _PLAIN:
        return value
    if t is float:
        if math.isfinite(value):
            return value
        return {"__float__": repr(value)}
    if t is list:
        return [encode(v, depth + 1) for v in value]
    if t is tuple:
        return {"__tuple__": [encode(v, depth + 1) for v in value]}
    if t is dict:
        if not all(type(k) is str for k in value):
            raise NotTransferable("a dict with keys that are not strings")
        return {"__dict__": {k: encode(v, depth + 1) for k, v in value.items()}}
    if t in (set, frozenset):
        return {"__set__": sorted((encode(v, depth + 1) for v in value), key=repr)}
    if t.__module__ == "careops.synth.model" and t.__qualname__ == "Cohort":
        # a cohort travels as its recipe: the host regenerates it (same arguments, same tables, byte for byte)
        import dataclasses

        s, an = value.settings, value.settings.get("anomalies")
        return {"__cohort__": {"seed": int(value.seed), "as_of": value.as_of.isoformat(),
                               "patients": int(s["patients"]), "years": int(s["years"]), "rare": float(s["rare"]),
                               "anomalies": {k: float(v) for k, v in dataclasses.asdict(an).items()} if an else {}}}
    mod = t.__module__.split(".")[0]
    if mod == "numpy":
        if hasattr(value, "tolist") and getattr(value, "ndim", 0) >= 1:
            return encode(value.tolist(), depth + 1)  # an array becomes a list
        if hasattr(value, "item"):
            return encode(value.item(), depth + 1)  # a numpy scalar becomes its Python value
    if mod == "pandas" and t.__name__ in ("DataFrame", "Series"):
        # pandas' own JSON table format (schema + data); the host parses it with pandas.read_json
        tag = "__dataframe__" if t.__name__ == "DataFrame" else "__series__"
        frame = value.to_frame(name="values" if value.name is None else value.name) if t.__name__ == "Series" else value
        # JSON numbers in the table lose the last bits of a float: float columns also travel exactly (repr)
        exact = {str(c): [None if x != x else float(x) for x in frame[c].tolist()]
                 for c in frame.columns if getattr(frame[c].dtype, "kind", "") == "f"}
        return {tag: {"table": value.to_json(orient="table", date_format="iso", double_precision=15,
                                             default_handler=str), "floats": exact}}
    raise NotTransferable("a value of type " + t.__module__ + "." + t.__qualname__)


def describe_error(exc):
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    text = "".join(tb)
    if len(text) > OUTPUT_CAP:
        text = text[: OUTPUT_CAP // 2] + TRUNCATED + text[-OUTPUT_CAP // 2:]
    return {"ename": type(exc).__name__, "evalue": str(exc)[:4000], "traceback": text}


class Agent:
    def __init__(self, proto_out):
        from IPython.core.interactiveshell import InteractiveShell

        self.out = proto_out
        self.shell = InteractiveShell.instance(colors="NoColor")
        self.shell.showtraceback = self._record_traceback  # errors are returned, not printed
        if hasattr(self.shell, "history_manager") and hasattr(self.shell.history_manager, "outputs"):
            self.shell.history_manager.outputs = NoOutputHistory()
        self._last_error = None
        self._images = []
        self._keep_pictures()

    def _keep_pictures(self):
        """A figure shown by a cell (its value, or display()) is kept as PNG besides its text, as a kernel does."""
        publish = self.shell.display_pub.publish
        write = self.shell.displayhook.write_format_data

        def publish_keeping(data=None, metadata=None, *args, **kwargs):
            self._keep_image(data)
            return publish(data, metadata, *args, **kwargs)

        def write_keeping(format_dict, md_dict=None):
            self._keep_image(format_dict)
            return write(format_dict, md_dict)

        self.shell.display_pub.publish = publish_keeping
        self.shell.displayhook.write_format_data = write_keeping

    def _keep_image(self, data):
        png = data.get("image/png") if isinstance(data, dict) else None
        if isinstance(png, str):
            try:
                png = base64.b64decode(png)
            except ValueError:
                return
        if isinstance(png, bytes) and png.startswith(PNG_MAGIC) and len(png) <= IMAGE_CAP \
                and len(self._images) < IMAGES_PER_CELL:
            self._images.append({"output_type": "display_data", "png": base64.b64encode(png).decode("ascii")})

    def _record_traceback(self, *args, **kwargs):
        value = sys.exc_info()[1]
        if value is not None:
            self._last_error = describe_error(value)

    def send(self, message):
        data = json.dumps(message, ensure_ascii=True)
        if len(data) > VALUE_CAP + 2 * OUTPUT_CAP + IMAGES_PER_CELL * (IMAGE_CAP * 4 // 3 + 64) + 4096:
            data = json.dumps({"id": message.get("id"), "ok": False,
                               "error": {"ename": "OutputTooLarge", "evalue": "the answer was too large to return",
                                         "traceback": ""}})
        self.out.write(data.encode("ascii") + b"\n")
        self.out.flush()

    def capture(self, fn):
        stdout, stderr = CappedWriter(OUTPUT_CAP), CappedWriter(OUTPUT_CAP)
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = stdout, stderr
        self._images = []
        try:
            result = fn()
        finally:
            sys.stdout, sys.stderr = saved
        outputs = []
        for name, stream in (("stdout", stdout), ("stderr", stderr)):
            text = stream.getvalue()
            if text:
                outputs.append({"output_type": "stream", "name": name, "text": text})
        outputs += self._images
        self._images = []
        return result, outputs

    def op_hello(self, req):
        return {"python": sys.version.split()[0]}

    def op_run(self, req):
        self._last_error = None
        res, outputs = self.capture(lambda: self.shell.run_cell(req["source"], store_history=True))
        err = None
        exc = getattr(res, "error_in_exec", None) or getattr(res, "error_before_exec", None)
        if exc is not None:
            err = describe_error(exc)
        elif self._last_error is not None:
            err = self._last_error
        return {"outputs": outputs, "error": err}

    def op_get(self, req):
        import types

        ns = self.shell.user_ns
        name = req["name"]
        if name not in ns:
            return {"kind": "missing"}
        value = ns[name]
        if isinstance(value, types.ModuleType):
            return {"kind": "module", "module": str(getattr(value, "__name__", ""))}
        if callable(value):
            # a hypothesis test carries .hypothesis; the host's stand-in says so too (checks look for it)
            return {"kind": "callable", "type": type(value).__name__, "hypothesis": hasattr(value, "hypothesis")}
        try:
            return {"kind": "data", "value": encode(value)}
        except NotTransferable as exc:
            return {"kind": "opaque", "type": str(exc)}

    def op_call(self, req):
        args, kwargs = pickle.loads(base64.b64decode(req["args"]))
        fn = self.shell.user_ns.get(req["name"])
        if fn is None or not callable(fn):
            raise NameError("name " + repr(req["name"]) + " is not defined (or not callable) in the notebook")
        value, outputs = self.capture(lambda: fn(*args, **kwargs))
        return {"value": encode(value), "outputs": outputs}

    def serve(self, stdin):
        while True:
            try:
                line = stdin.readline()
            except KeyboardInterrupt:
                continue
            if not line:
                return
            rid = None
            try:
                req = json.loads(line)
                rid = req.get("id")
                op = req.get("op")
                if op == "exit":
                    self.send({"id": rid, "ok": True})
                    return
                handler = getattr(self, "op_" + str(op), None)
                if handler is None:
                    raise ValueError("unknown op " + repr(op))
                answer = handler(req)
                answer.update({"id": rid, "ok": True})
            except NotTransferable as exc:
                answer = {"id": rid, "ok": False, "error": {
                    "ename": "NotTransferable", "evalue": "it returned " + str(exc) +
                    ", which the grader cannot compare (return plain values: bool, int, str, list, dict)",
                    "traceback": ""}}
            except BaseException as exc:  # noqa: BLE001 - every learner failure is an answer, not a crash
                answer = {"id": rid, "ok": False, "error": describe_error(exc)}
            try:
                self.send(answer)
            except KeyboardInterrupt:
                self.send(answer)


def no_engine_here():
    """The sandbox has no container engine: make the toolkit say so at once instead of polling.

    DOCKER_HOST (set by the grader) points at a socket that does not exist, so
    careops.engine fails fast; checks that poll lab state give up on the
    first EngineUnavailable instead of retrying it for their whole timeout.
    Only ungraded lab steps are affected: test cells run on the host.
    """
    try:
        from careops import checks
        from careops.errors import EngineUnavailable
    except Exception:  # noqa: BLE001 - an image without the toolkit: nothing to adjust
        return
    polling = checks.eventually

    class NoEngine(BaseException):
        pass

    def eventually(probe, **kwargs):
        def once():
            try:
                return probe()
            except EngineUnavailable as exc:
                raise NoEngine(exc)
        try:
            return polling(once, **kwargs)
        except NoEngine as stop:
            raise stop.args[0] from None

    checks.eventually = eventually


def main():
    no_engine_here()
    proto = os.fdopen(os.dup(1), "wb", buffering=0)
    stdin = os.fdopen(os.dup(0), "r", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.chdir(os.environ.get("CAREOPS_AGENT_WORKDIR", "/tmp"))
    Agent(proto).serve(stdin)
    proto.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
