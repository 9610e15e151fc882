"""Node log lines in a launcher script (subprocesses: logging is per process): shown while the
program configured no logging, exactly once once it did, hidden at WARNING; ``debug_mode``."""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest
from journal_nodes import daily, journal

from lakenodes import Lake

LAUNCHER = '''
import datetime as dt, logging, sys
import polars as pl
from lakenodes import DataNode, DataNodeConfiguration, use_lake

class Tick(DataNode):
    def dependencies(self):
        return {}
    def update(self):
        self.logger.info("tick update called")
        self.logger.debug("tick debug detail")
        last = self.update_statistics.max_time_index_value
        day = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) if last is None else last + dt.timedelta(days=1)
        return pl.DataFrame({"time_index": [day], "value": [1.0]})

mode = sys.argv[2]
configure = lambda level: logging.basicConfig(level=level, format="PROGRAM %(levelname)s %(name)s %(message)s")
with use_lake(sys.argv[1]):
    node = Tick(DataNodeConfiguration())
    if mode.endswith("-before"):
        configure(logging.INFO if mode.startswith("info") else logging.WARNING)
    node.run(debug_mode=mode == "debug")
    if mode.endswith("-after"):
        configure(logging.INFO if mode.startswith("info") else logging.WARNING)
    node.run()
'''


def launch(tmp_path, mode: str) -> str:
    """Run a launcher script (two node runs) in a fresh interpreter; its stderr."""
    script = tmp_path / "launcher.py"
    script.write_text(LAUNCHER)
    result = subprocess.run([sys.executable, str(script), str(tmp_path / f"lake_{mode}"), mode],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.parametrize(("mode", "lines", "from_program"), [
    ("unconfigured", 2, 0),     # shown by lakenodes while the program configured nothing
    ("info-before", 2, 2),      # once each, through the program's handler
    ("info-after", 2, 1),       # the first run by lakenodes, the second by the program: never twice
    ("warning-before", 0, 0),   # the program's level hides them
    ("warning-after", 1, 0),
])
def test_node_log_lines_in_a_launcher_script(tmp_path, mode: str, lines: int, from_program: int) -> None:
    stderr = launch(tmp_path, mode)
    shown = [line for line in stderr.splitlines() if "tick update called" in line]
    assert len(shown) == lines, stderr
    assert sum(line.startswith("PROGRAM") for line in shown) == from_program
    assert "tick debug detail" not in stderr and "DEBUG" not in stderr


def test_values_stored_otherwise_than_given_are_said_on_the_terminal(tmp_path) -> None:
    """``inf`` is stored as NaN: the warning shows in a script that configured no logging (it went
    to lakenodes' silent library logger before) and names the node."""
    script = tmp_path / "inf.py"
    script.write_text(LAUNCHER.replace('"value": [1.0]', '"value": [float("inf")]'))
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "lake"), "unconfigured"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "infinite" in line]
    assert len(warned) == 2 and all(re.search(r" WARNING lakenodes.node.Tick: \[[0-9a-f]{8}\] column 'value': 1 "
                                              r"infinite value\(s\) stored as NaN", line) for line in warned), result.stderr


def test_debug_mode_shows_debug_lines_for_that_run(tmp_path) -> None:
    stderr = launch(tmp_path, "debug")
    assert stderr.count("tick update called") == 2
    assert stderr.count("tick debug detail") == 1  # the node's own DEBUG line, in the debug run only
    library = [line for line in stderr.splitlines() if " DEBUG lakenodes.runtime.run: " in line]
    assert any(line.endswith(": update phase") for line in library)  # lakenodes' DEBUG lines
    second_run = stderr[stderr.rindex("tick update called"):]
    assert " DEBUG " not in second_run  # only for the run that asked


def test_debug_mode_runs_in_process_even_with_an_executor(local_lake: Lake, tmp_path) -> None:
    node = daily(tmp_path, "top", {"dependency": daily(tmp_path, "dependency")})
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        node.run(debug_mode=True, executor=pool)
    assert journal(tmp_path) == [("dependency", os.getpid()), ("top", os.getpid())]


POOL_LAUNCHER = '''
import logging, multiprocessing, sys
from concurrent.futures import ProcessPoolExecutor
from lakenodes import DataNodeConfiguration, use_lake
from ticks import Tick

if __name__ == "__main__":
    if sys.argv[2] == "warning":
        logging.basicConfig(level=logging.WARNING, format="PROGRAM %(levelname)s %(name)s %(message)s")
    with use_lake(sys.argv[1]), ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        Tick(DataNodeConfiguration()).run(executor=pool)
'''


@pytest.mark.parametrize(("mode", "lines"), [("unconfigured", 1), ("warning", 0)])
def test_node_log_lines_of_a_run_on_a_process_pool_show_as_in_a_serial_run(tmp_path, mode: str, lines: int) -> None:
    """Regression: a launcher script that configured no logging showed its nodes' lines when run
    serially and none once it passed ``executor=pool``: the spawned workers never showed them."""
    (tmp_path / "ticks.py").write_text(LAUNCHER.split("mode = sys.argv[2]")[0])
    script = tmp_path / "pool_launcher.py"
    script.write_text(POOL_LAUNCHER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "lake"), mode], capture_output=True,
                            text=True, timeout=120, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    shown = [line for line in result.stderr.splitlines() if "tick update called" in line]
    assert len(shown) == lines, result.stderr
    assert all(re.search(r" INFO lakenodes.node.Tick: \[[0-9a-f]{8}\] tick update called$", line) for line in shown)
    assert "tick debug detail" not in result.stderr
