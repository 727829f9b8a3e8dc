"""careops.dockerfile.parse: instructions with their line numbers, forms and flags; clear syntax errors."""
from __future__ import annotations

import pytest

from careops.dockerfile.parse import DockerfileSyntaxError, parse

TEXT = """# syntax comment
ARG BASE=careops/base:bookworm
FROM ${BASE} AS build

RUN useradd adt \\
 # a comment inside a continuation
 && install -d /data
COPY --chown=10001:10001 adt_service.py /app/
ENV ADT_DB=/data/adt.db ADT_LOG=-
ENV LEGACY value with spaces
HEALTHCHECK --interval=2s CMD ["python3", "-c", "print(1)"]
CMD python3 /app/adt_service.py
ENTRYPOINT ["tini", "--"]
"""


def test_lines_continuations_forms_and_flags() -> None:
    df = parse(TEXT)
    cmds = [(i.cmd, i.line) for i in df.instructions]
    assert cmds == [("ARG", 2), ("FROM", 3), ("RUN", 5), ("COPY", 8), ("ENV", 9), ("ENV", 10),
                    ("HEALTHCHECK", 11), ("CMD", 12), ("ENTRYPOINT", 13)]
    run = df.instructions[2]
    assert run.end_line == 7 and "install -d /data" in run.args and "comment" not in run.args
    assert df.instructions[0].stage == -1 and run.stage == 0
    assert df.instructions[3].flags == {"chown": "10001:10001"}
    assert df.env() == {"ADT_DB": "/data/adt.db", "ADT_LOG": "-", "LEGACY": "value with spaces"}
    hc = df.last("HEALTHCHECK")
    assert hc.flags == {"interval": "2s"} and hc.exec_form == ["python3", "-c", "print(1)"]
    assert not df.last("CMD").is_exec_form and df.last("ENTRYPOINT").exec_form == ["tini", "--"]


def test_stages() -> None:
    df = parse("FROM careops/base:bookworm AS build\nRUN true\nFROM careops/base:bookworm\nUSER 10001\n")
    assert df.stages == 2 and [i.cmd for i in df.final_stage()] == ["FROM", "USER"]


@pytest.mark.parametrize("text, line, words", [
    ("", 0, "no FROM"),
    ("# only a comment\n", 0, "no FROM"),
    ("FROM careops/base:bookworm\nRUNN echo hi\n", 2, "unknown instruction 'RUNN'"),
    ("RUN echo hi\nFROM careops/base:bookworm\n", 1, "comes before the first FROM"),
    ("FROM careops/base:bookworm\nRUN echo \\\n", 2, "continuation"),
    ("FROM careops/base:bookworm\nUSER\n", 2, "USER has no arguments"),
    ("FROM a b\n", 1, "FROM takes an image"),
    ('FROM careops/base:bookworm\nSHELL /bin/bash\n', 2, "SHELL needs a JSON list"),
])
def test_syntax_errors_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(DockerfileSyntaxError) as err:
        parse(text)
    assert err.value.line == line and words in err.value.message and err.value.fix


def test_not_text() -> None:
    with pytest.raises(DockerfileSyntaxError, match="expected the Dockerfile as text"):
        parse(None)  # type: ignore[arg-type]
