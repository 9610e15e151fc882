"""The ``lakenodes`` command pauses the garbage collector while it starts up (its imports create
objects that live until it exits) and resumes it, freezing them, before any user code runs; a
process that calls the CLI in-process or imports lakenodes keeps its collector as it was."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from lakenodes.cli import main

REPO = Path(__file__).resolve().parent.parent

NODE = textwrap.dedent('''
    import gc, json, os
    import polars as pl, datetime as dt
    from lakenodes import DataNode, DataNodeConfiguration

    class Probe(DataNode):
        config: DataNodeConfiguration

        def dependencies(self):
            return {}

        def update(self):
            with open(os.environ["COLLECTOR_REPORT"], "w") as report:
                json.dump({"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}, report)
            return pl.DataFrame({"time_index": [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)], "value": [1.0]})
''')


def test_lakenodes_run_collects_garbage_while_user_code_runs(tmp_path: Path) -> None:
    (tmp_path / "probe_node.py").write_text(NODE)
    report = tmp_path / "collector.json"
    process = subprocess.run(
        [sys.executable, "-m", "lakenodes", "--lake", str(tmp_path / "lake"), "--json", "run",
         f"{tmp_path / 'probe_node.py'}:Probe"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLLECTOR_REPORT": str(report)},
    )
    assert process.returncode == 0, process.stderr[-2000:]
    assert json.loads(process.stdout)["rows_written"] == 1
    seen = json.loads(report.read_text())
    # on while update() runs; what the start-up created (imports, the node) frozen, never scanned again
    assert seen["enabled"] is True and seen["frozen"] > 10_000, seen


def test_the_cli_in_process_leaves_the_collector_alone(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "probe_node.py").write_text(NODE)
    monkeypatch.setenv("COLLECTOR_REPORT", str(tmp_path / "collector.json"))
    frozen = gc.get_freeze_count()
    lake = ["--lake", str(tmp_path / "lake"), "--json"]
    assert main([*lake, "run", f"{tmp_path / 'probe_node.py'}:Probe"], standalone_mode=False) == 0
    assert main([*lake, "data-node", "list"], standalone_mode=False) == 0
    assert gc.isenabled() and gc.get_freeze_count() == frozen
