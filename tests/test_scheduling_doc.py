"""The runnable snippet of docs/scheduling.md runs as written (in its own process, like a user's job)."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from lakenodes import Asset, Lake, TimeIndexMetaTable
from lakenodes.lake.pending import PENDING_DIR

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


def test_exit_1_after_the_commit_says_the_rows_are_stored_and_reconcile_records_the_run(tmp_path):
    """docs/scheduling.md, exit 1: a `lakenodes run` whose run record is refused after its commit
    exits 1 naming the stored rows; a later `lakenodes run` process does not record the lost run,
    `lakenodes updates reconcile` does."""
    lake = tmp_path / "lake"

    def lakenodes(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        return subprocess.run([sys.executable, "-m", "lakenodes", "--lake", str(lake), *args], env=env,
                              capture_output=True, text=True, timeout=300)

    def run(name: str) -> subprocess.CompletedProcess:
        config = json.dumps({"name": name, "journal": str(tmp_path / "journal.txt"), "days": 1})
        return lakenodes("--json", "run", f"{REPO / 'tests' / 'journal_nodes.py'}:Daily", "--config", config)

    assert run("first").returncode == 0  # the catalog exists
    pending = lake / "_catalog" / "runs" / PENDING_DIR  # a file where a run's record goes: the record fails
    shutil.rmtree(pending)
    pending.write_text("not a folder")
    failed = run("stored")
    pending.unlink()

    assert failed.returncode == 1
    [line] = failed.stderr.splitlines()
    assert line.startswith("error: ") and "failed during catalog: " in line
    assert line.endswith("(its 1 rows ARE stored: the failure came after the commit)")
    assert json.loads(failed.stdout)["error"]["rows_stored"] is True
    update_hash = json.loads(failed.stdout)["error"]["message"].split("update_hash='")[1].split("'")[0]

    again = run("stored")  # the retry: nothing new, nothing recovered
    assert again.returncode == 0 and json.loads(again.stdout)["rows_written"] == 0

    def runs() -> list[tuple[str, int]]:
        listed = json.loads(lakenodes("--json", "updates", "runs", update_hash).stdout)["results"]
        return sorted((run["status"], run["rows_written"]) for run in listed)

    assert runs() == [("success", 0)]
    assert lakenodes("updates", "reconcile").returncode == 0
    assert runs() == [("recovered", 1), ("success", 0)]
