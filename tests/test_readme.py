"""The README's DataNode runs as written (as a script and through ``lakenodes run``), and renaming
its identifier keeps its table."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from lakenodes import Lake, TimeIndexMetaTable, use_lake

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def readme_node_code() -> str:
    section = README.split("## A DataNode", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run_block(code: str) -> dict:
    namespace: dict = {"__name__": "__main__"}  # as `python my_nodes.py` runs it
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


def test_readme_module_through_lakenodes_run_runs_the_node_once(tmp_path):
    """Saved as the README names it, ``lakenodes run my_nodes:DailyRates --config '{}'`` writes
    today's row in one run (bug: the module ran the node when imported, so the command found the
    row written and reported 0 rows, with two runs recorded)."""
    (tmp_path / "my_nodes.py").write_text(readme_node_code())
    lake = tmp_path / "lake"
    command = [sys.executable, "-m", "lakenodes", "--lake", str(lake), "--json"]
    ran = subprocess.run([*command, "run", "my_nodes:DailyRates", "--config", "{}"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["rows_written"] == 1
    listed = subprocess.run([*command, "updates", "list"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert [row["runs"] for row in json.loads(listed.stdout)["results"]] == [1]
