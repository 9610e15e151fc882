"""The runnable snippet of docs/scheduling.md runs as written (in its own process, like a user's job)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from lakenodes import Asset, Lake, TimeIndexMetaTable

REPO = Path(__file__).resolve().parents[1]
MARKED = re.compile(r"<!-- test: run -->[ \t]*\n```python\n(?P<code>.*?)\n```", re.S)


def test_fan_out_snippet_runs_as_written(tmp_path):
    snippets = MARKED.findall((REPO / "docs" / "scheduling.md").read_text())
    assert len(snippets) == 1
    script = tmp_path / "fan_out.py"
    script.write_text(snippets[0])
    env = {**os.environ, "LAKENODES_URI": str(tmp_path / "lake"), "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, str(script)], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    written = ast.literal_eval(result.stdout.strip().splitlines()[-1])
    assert len(written) == 2 and all(rows > 0 for rows in written.values())
    table = TimeIndexMetaTable.get(identifier="simulated_prices_tutorial_local", lake=Lake(tmp_path / "lake"))
    assert table.stats()["row_count"] == sum(written.values())
    # regression: the snippet registered the tutorial's assets with a ticker only, blanking their names
    assert {asset.unique_identifier: asset.name for asset in Asset.filter(lake=Lake(tmp_path / "lake"))} == {
        "NVDA": "NVIDIA", "AAPL": "Apple", "JPM": "JPMorgan Chase", "GS": "Goldman Sachs"}
