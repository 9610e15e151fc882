"""docs/intraday.md: its python blocks run, in order, in one namespace (their asserts check the
time semantics the page states)."""

from __future__ import annotations

from pathlib import Path

from test_time_travel_doc import PYTHON_BLOCK

DOC = Path(__file__).resolve().parents[1] / "docs" / "intraday.md"


def test_the_intraday_examples_run():
    blocks = [match["code"] for match in PYTHON_BLOCK.finditer(DOC.read_text(encoding="utf-8"))]
    assert len(blocks) == 4
    namespace: dict = {}
    for number, code in enumerate(blocks, 1):
        exec(compile(code, f"{DOC.name} block {number}", "exec"), namespace)  # noqa: S102 - the doc's own code
    assert namespace["ticker"].get_df_between_dates().height == 3
