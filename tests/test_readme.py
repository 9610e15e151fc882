"""The README's DataNode runs as written, and renaming its identifier keeps its table."""

from __future__ import annotations

import re
from pathlib import Path

from lakenodes import Lake, TimeIndexMetaTable, use_lake

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def readme_node_code() -> str:
    section = README.split("## A DataNode", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run_block(code: str) -> dict:
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    return namespace


def test_readme_example_runs_and_its_identifier_can_be_renamed(tmp_path):
    with use_lake(Lake(tmp_path / "lake")) as lake:
        first = run_block(readme_node_code())
        assert first["err"] is False and first["written"].height == 1
        renamed = run_block(readme_node_code().replace('"fx_rates_daily"', '"fx_rates_eur_daily"'))
        assert renamed["err"] is False and renamed["written"].height == 0  # same table: today is already there

        node_before = first["DailyRates"](first["RatesConfig"]())
        node_after = renamed["DailyRates"](renamed["RatesConfig"]())
        assert node_before.storage_hash == node_after.storage_hash
        assert [p.name for p in (tmp_path / "lake" / "tables").iterdir()] == [node_after.storage_hash]
        assert TimeIndexMetaTable.get(identifier="fx_rates_eur_daily").storage_hash == node_after.storage_hash
        assert lake.uri == str(tmp_path / "lake")
