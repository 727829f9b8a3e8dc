"""The course's static rules for the legacy-service Dockerfile, as ordered data.

Why: a learner (and the grader) gets one message per rule, each with a hint
that names the offending line, before anything is built. The rules encode the
change board's container contract for ADT-Legacy; the security policy in
Rego (careops.dockerfile.policy) and hadolint add general hygiene on top.
"""
from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from docker.utils.build import PatternMatcher

from careops import legacy_adt as adt
from careops.dockerfile.parse import (
    Dockerfile,
    DockerfileSyntaxError,
    Instruction,
    as_dockerfile,
)
from careops.images.catalog import BASE_IMAGE, LAB_IMAGE
from careops.report import CheckReport

#: Images a learner's FROM may name: they exist on every course machine (no registry needed).
COURSE_BASE_IMAGES = (BASE_IMAGE, LAB_IMAGE)
PINNED_BASE = BASE_IMAGE
SERVICE_PORTS = (adt.MLLP_PORT, adt.HTTP_PORT)
SECRET_NAME = re.compile(r"(PASS(WORD|WD)?|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?)($|_)", re.IGNORECASE)
#: Paths in the build context that must never reach the build (decoys the lab puts there).
MUST_IGNORE = ("secrets/adt-admin.env", "test-data/admissions-extract.hl7", "data/adt.db", ".git/config",
               "__pycache__/adt_service.cpython-311.pyc")
MUST_KEEP = ("adt_service.py",)


@dataclass(frozen=True)
class Context:
    """What a rule may look at besides the Dockerfile: the .dockerignore text (None: there is none)."""

    dockerignore: str | None = None


@dataclass(frozen=True)
class Rule:
    """One static rule: an id, the criterion's message, a hint, and a check returning (passed, got)."""

    id: str
    message: str
    hint: str
    check: Callable[[Dockerfile, Context], tuple[bool, Any]]


def _lines(found: list[Instruction]) -> str:
    return ", ".join(f"line {i.line}" for i in found)


def _from(df: Dockerfile) -> Instruction:
    return df.find("FROM")[0]


def _base(df: Dockerfile) -> str:
    return _from(df).words()[0]


def _pinned(df: Dockerfile, ctx: Context) -> tuple[bool, Any]:
    image = _base(df)
    ok = "@sha256:" in image or (":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"))
    return ok, image


def _course_base(df: Dockerfile, ctx: Context) -> tuple[bool, Any]:
    image = _base(df)
    return image in COURSE_BASE_IMAGES or image.split("@")[0] in COURSE_BASE_IMAGES, image


def _user_is_root(user: str) -> bool:
    name = user.split(":")[0].strip()
    return name in ("", "root", "0")


def _non_root(df: Dockerfile, ctx: Context) -> tuple[bool, Any]:
    last = df.last("USER")
    if last is None:
        return False, "no USER in the final stage (runs as root)"
    return not _user_is_root(last.args), f"line {last.line}: USER {last.args}"


def _healthcheck(df: Dockerfile, ctx: Context) -> tuple[bool, Any]:
    last = df.last("HEALTHCHECK")
    if last is None:
        return False, "no HEALTHCHECK"
    return last.args.upper() != "NONE" and bool(last.args), f"line {last.line}: HEALTHCHECK {last.args[:60]}"


def _run_words(df: Dockerfile) -> list[str]:
    words: list[str] = []
    for cmd in ("ENTRYPOINT", "CMD"):
        last = df.last(cmd)
        if last is not None:
            words += last.words()
    return words


_CONFIG_FLAGS = ("--config", "--db", "--log", "--host", "--mllp-port", "--http-host", "--http-port")


def _config_from_env(df: Dockerfile, ctx: Context) -> tuple[bool, Any]:
    env = df.env()
    flags = [w for w in _run_words(df) if w.split("=")[0] in _CONFIG_FLAGS]
    ini = [i for i in df.find("COPY") + df.find("ADD") if "adt.ini" in i.args]
    problems = []
    if "ADT_DB" not in env:
        problems.append("ADT_DB is not set with ENV")
    if flags:
        problems.append(f"the command passes {', '.join(flags)}")
    if ini:
        problems.append(f"adt.ini is copied ({_lines(ini)})")
    return not problems, "; ".join(problems) or {k: v for k, v in env.items() if k.startswith("ADT_")}


def _volume_paths(df: Dockerfile) -> list[str]:
    paths: list[str] = []
    for i in df.find("VOLUME"):
        paths += i.words()
    return [posixpath.normpath(p) for p in paths]


def _data_on_volume(df: Dockerfile, ctx: Context) -> tuple[bool, Any]:
    vols = _volume_paths(df)
    db = df.env().get("ADT_DB", "")
    if not vols:
        return False, "no VOLUME"
    if not db.startswith("/"):
        return False, f"ADT_DB={db!r} is not an absolute path"
    folder = posixpath.dirname(posixpath.normpath(db))
    ok = any(folder == v or folder.startswith(v.rstrip("/") + "/") for v in vols)
    return ok, f"ADT_DB={db}, VOLUME {' '.join(vols)}"


def _logs_stdout(df: Dockerfile, ctx: Context) -> tuple[bool, Any]:
    log = df.env().get("ADT_LOG")
    return log == "-", f"ADT_LOG={log!r}" if log is not None else "ADT_LOG not set"


def _exec_form(df: Dockerfile, ctx: Context) -> tuple[bool, Any]:
    cmd, entry = df.last("CMD"), df.last("ENTRYPOINT")
    if cmd is None and entry is None:
        return False, "no CMD"
    shell = [i for i in (cmd, entry) if i is not None and not i.is_exec_form]
    return not shell, (f"shell form at {_lines(shell)}" if shell else "exec form")


def _runs_service(df: Dockerfile, ctx: Context) -> tuple[bool, Any]:
    words = _run_words(df)
    return any(w.endswith("adt_service.py") for w in words), " ".join(words) or "no CMD"


def _no_secrets(df: Dockerfile, ctx: Context) -> tuple[bool, Any]:
    from careops.secretscan import scan_text

    hits = []
    for i in df.instructions:
        if i.cmd in ("ENV", "ARG", "LABEL"):
            for key, value in i.pairs().items():
                if SECRET_NAME.search(key) and (value or i.cmd != "ARG"):
                    hits.append(f"line {i.line}: {i.cmd} {key}")
    hits += [f"line {f.line}: {f.kind}" for f in scan_text(df.text)]
    return not hits, hits or "none"


def _no_add(df: Dockerfile, ctx: Context) -> tuple[bool, Any]:
    adds = df.find("ADD", final=False)
    return not adds, f"ADD at {_lines(adds)}" if adds else "COPY only"


def _dockerignore(df: Dockerfile, ctx: Context) -> tuple[bool, Any]:
    if ctx.dockerignore is None or not ctx.dockerignore.strip():
        return False, "no .dockerignore"
    patterns = [ln.strip() for ln in ctx.dockerignore.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    matcher = PatternMatcher(patterns)
    sent = [p for p in MUST_IGNORE if not ignored(matcher, p)]
    dropped = [p for p in MUST_KEEP if ignored(matcher, p)]
    problems = [f"would send {p}" for p in sent] + [f"would leave out {p}" for p in dropped]
    return not problems, problems or "ok"


def ignored(matcher: PatternMatcher, path: str) -> bool:
    """Docker's rule: a file is left out when it, or a folder above it, matches."""
    parts = path.split("/")
    return any(matcher.matches("/".join(parts[:n])) for n in range(len(parts), 0, -1))


def _exposes(df: Dockerfile, ctx: Context) -> tuple[bool, Any]:
    ports: set[int] = set()
    for i in df.find("EXPOSE"):
        for w in i.words():
            try:
                ports.add(int(w.split("/")[0]))
            except ValueError:
                pass
    return set(SERVICE_PORTS) <= ports, sorted(ports)


RULES: list[Rule] = [
    Rule("DF01", "the base image is pinned to an exact tag (not latest, not untagged)",
         f"FROM {PINNED_BASE}: an unpinned base changes under you between two builds", _pinned),
    Rule("DF02", "the base image is a course image available offline",
         f"there is no registry in the hospital network: FROM {PINNED_BASE}", _course_base),
    Rule("DF03", "the service runs as a non-root user",
         "create a user (RUN useradd --uid 10001 --user-group --no-create-home adt) and switch with USER 10001",
         _non_root),
    Rule("DF04", f"a HEALTHCHECK asks the service's {adt.HEALTH_PATH}",
         "the base image has no curl: HEALTHCHECK CMD [\"python3\", \"-c\", \"import urllib.request; "
         f"urllib.request.urlopen('http://127.0.0.1:{adt.HTTP_PORT}{adt.HEALTH_PATH}', timeout=2)\"]", _healthcheck),
    Rule("DF05", "configuration comes from the environment (ENV ADT_*), not from adt.ini or flags",
         "set ENV ADT_DB=... and friends; do not COPY adt.ini or pass --config/--db/--log in CMD", _config_from_env),
    Rule("DF06", "the database lives on a VOLUME",
         "VOLUME [\"/data\"] and ENV ADT_DB=/data/adt.db: a new container must find the old patients", _data_on_volume),
    Rule("DF07", "logs go to stdout (ENV ADT_LOG=-)",
         "containers log to stdout; the engine collects it (docker logs), no log file fills the disk", _logs_stdout),
    Rule("DF08", "CMD (and ENTRYPOINT) use the exec form",
         "CMD [\"python3\", \"/app/adt_service.py\"]: in shell form /bin/sh is PID 1 and swallows SIGTERM",
         _exec_form),
    Rule("DF09", "the container runs adt_service.py",
         "CMD [\"python3\", \"/app/adt_service.py\"] (after COPY adt_service.py /app/)", _runs_service),
    Rule("DF10", "no secret in ENV, ARG or LABEL",
         "secrets come at run time (an env file or a secrets manager), never in a layer: remove the line",
         _no_secrets),
    Rule("DF11", "COPY, not ADD",
         "ADD also downloads URLs and unpacks archives; use COPY for files from the context", _no_add),
    Rule("DF12", "a .dockerignore keeps secrets, test data, databases and .git out of the build",
         "list secrets/, test-data/, *.db (and data/), .git and __pycache__ in .dockerignore; keep adt_service.py",
         _dockerignore),
    Rule("DF13", f"it EXPOSEs the MLLP port {adt.MLLP_PORT} and the HTTP port {adt.HTTP_PORT}",
         f"EXPOSE {adt.MLLP_PORT} {adt.HTTP_PORT} documents the ports for the people who run it", _exposes),
]


def evaluate(dockerfile: str | Dockerfile, dockerignore: str | None = None) -> list[tuple[Rule, bool, Any]]:
    """Every rule's result for a Dockerfile (text is parsed; a syntax error propagates)."""
    df = as_dockerfile(dockerfile)
    ctx = Context(dockerignore)
    return [(rule, *rule.check(df, ctx)) for rule in RULES]


def static_report(dockerfile: str | Dockerfile, dockerignore: str | None = None, *,
                  title: str = "Static checks of your Dockerfile") -> CheckReport:
    """One criterion per rule (the first one: the Dockerfile parses). Does not raise on failure."""
    report = CheckReport(title)
    df = report.parsed(as_dockerfile, dockerfile, "the Dockerfile can be read", errors=DockerfileSyntaxError)
    if df is None:
        return report
    for rule, passed, got in evaluate(df, dockerignore):
        report.check(passed, f"{rule.id} {rule.message}", hint=rule.hint, got=None if passed else got)
    return report


__all__ = ["COURSE_BASE_IMAGES", "PINNED_BASE", "RULES", "Context", "Rule", "evaluate", "static_report"]
