"""docs/time-travel.md: its python blocks run, in order, in one namespace (their asserts check the audit)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "time-travel.md"
PYTHON_BLOCK = re.compile(r"^```python\n(?P<code>.*?)\n```", re.S | re.M)


def test_the_restatement_audit_runs():
    blocks = [match["code"] for match in PYTHON_BLOCK.finditer(DOC.read_text())]
    assert len(blocks) == 7
    namespace: dict = {}
    for number, code in enumerate(blocks, 1):
        exec(compile(code, f"{DOC.name} block {number}", "exec"), namespace)
    assert namespace["restatement"].summary()["changed"] == 1
