"""docs/from-arcticdb.md: its blocks marked ``<!-- test: run -->`` run, in order, in one namespace
(their asserts check the ported ArcticDB workflow); the one that needs ArcticDB is compiled only."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "from-arcticdb.md"
TEXT = DOC.read_text(encoding="utf-8")
MARKED = re.compile(r"<!-- test: run -->[ \t]*\n```python\n(?P<code>.*?)\n```", re.S)
ANY_PYTHON = re.compile(r"^```python\n(?P<code>.*?)\n```", re.S | re.M)


def test_the_ported_workflow_runs():
    blocks = [match["code"] for match in MARKED.finditer(TEXT)]
    assert len(blocks) == 5
    namespace: dict = {}
    for number, code in enumerate(blocks, 1):
        exec(compile(code, f"{DOC.name} block {number}", "exec"), namespace)  # noqa: S102 - the doc's own code
    assert [entry["operation"] for entry in namespace["table"].history()][:2] == ["restore", "delete"]


def test_the_arcticdb_block_compiles_and_builds_the_index_lakenodes_takes():
    unmarked = [code for code in ANY_PYTHON.findall(TEXT) if code not in MARKED.findall(TEXT)]
    assert len(unmarked) == 1 and "swaplevel()" in unmarked[0]
    compile(unmarked[0], DOC.name, "exec")
