"""Importing lakenodes stays cheap: heavy modules load where they are used, not at import.

A cron job pays for every module ``import lakenodes`` pulls in. ``deltalake`` and ``polars``
import neither pyarrow nor numpy, so neither does lakenodes' public API: pyarrow (and numpy,
which it imports), ``pyarrow.dataset`` (which imports pandas), datafusion and LanceDB load on
first use (``lakenodes._internal.deferred``), typer, click and rich only with the CLI's commands.
The time itself is measured in ``benchmarks/`` (the ``import`` section), never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from deltalake import DeltaTable

HEAVY = ("pandas", "pyarrow", "numpy", "pyarrow.compute", "pyarrow.dataset", "datafusion", "lancedb", "lance", "rich", "typer",
         "click", "sentence_transformers", "duckdb", "boto3", "asyncio", "concurrent.futures.process")


def loaded_after(code: str) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_lakenodes_and_every_public_name_loads_no_heavy_module() -> None:
    code = "import lakenodes\nfor name in lakenodes.__all__: getattr(lakenodes, name)"
    assert loaded_after(code) == []


def test_declaring_a_node_and_a_lake_loads_no_heavy_module() -> None:
    code = """
from lakenodes import DataNode, DataNodeConfiguration, DataNodeMetaData, Lake

class Config(DataNodeConfiguration):
    window: int = 5

class Prices(DataNode):
    def dependencies(self):
        return {}

    def update(self):
        raise NotImplementedError

node = Prices(Config(node_metadata=DataNodeMetaData(identifier="prices")), lake=Lake("memory-free-path"))
node.storage_hash
"""
    assert loaded_after(code) == []


def test_the_deferred_modules_load_on_first_use() -> None:
    code = "import lakenodes\nfrom lakenodes._internal.deferred import pa\nassert pa.int64() == pa.int64()"
    loaded = loaded_after(code)
    assert "pyarrow" in loaded and "datafusion" not in loaded and "pyarrow.dataset" not in loaded


def test_cli_version_and_help_load_no_data_module_nor_rich() -> None:
    result = subprocess.run([sys.executable, "-m", "lakenodes", "--version"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    code = "import lakenodes.cli\nlakenodes.cli.main(['--version'], standalone_mode=False)\nlakenodes.cli.main(['--help'], standalone_mode=False)"
    assert not {"pandas", "pyarrow", "numpy", "datafusion", "lancedb", "rich"} & set(loaded_after(code))


DAILY_RUN = """
import datetime, sys
import polars as pl
from lakenodes import DataNode, DataNodeConfiguration, DataNodeMetaData, Lake

class Config(DataNodeConfiguration):
    assets: int = 3

class Prices(DataNode):
    def dependencies(self):
        return {{}}

    def get_asset_list(self):
        return [f"A{{i}}" for i in range(self.config.assets)]

    def update(self):
        last = self.update_statistics.max_time_index_value
        day = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC) if last is None else last + datetime.timedelta(days=1)
        return pl.DataFrame({{"time_index": [day] * 3, "unique_identifier": self.get_asset_list(),
                              "close": [1.0, 2.0, 3.0], "volume": [10, 20, 30], "venue": ["X", "Y", "Z"]}})

Prices(Config(node_metadata=DataNodeMetaData(identifier="prices")), lake=Lake({uri!r})).run()
"""


def next_daily_run_loads(tmp_path, facts_file: str, catalog_checkpointed: bool = False) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after the daily run that follows the table's
    first one, with the table's file facts ``"kept"`` or ``"deleted"`` (its Parquet footers read).
    Its catalog records fold their pending files into the ledgers, as about one run in 20 does
    (``catalog_checkpointed``: into ledgers with a checkpoint, as a lake's soon have)."""
    code = "import os\nos.environ['LAKENODES_CATALOG_FOLD_EVERY'] = '1'\n" + DAILY_RUN.format(uri=str(tmp_path / "lake"))
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)  # creates the table
    if facts_file == "deleted":
        for facts in (tmp_path / "lake" / "tables").glob("*/_lakenodes/file_facts.parquet"):
            facts.unlink()
    if catalog_checkpointed:  # the fold then reads the app transactions of the ledgers' checkpoints
        for log in (tmp_path / "lake" / "_catalog").glob("*/_delta_log"):
            DeltaTable(str(log.parent)).create_checkpoint()
    return loaded_after(code)


@pytest.mark.parametrize("facts_file", ["kept", "deleted"])
def test_a_daily_run_in_a_fresh_interpreter_does_not_import_pandas(tmp_path, facts_file) -> None:
    """pyarrow imports pandas (when installed, ~0.15 s) from many calls: ``pa.array`` of Python or
    NumPy values, tz-aware ``as_py``, ``group_by``, ``import pyarrow.dataset``. A cron job's daily
    run (identifier claim, statistics, validation, append, catalog records) avoids every one, also
    when it must read Parquet footers (no persisted file facts)."""
    loaded = next_daily_run_loads(tmp_path, facts_file)
    assert "pyarrow" in loaded
    assert "pandas" not in loaded and "pyarrow.dataset" not in loaded


@pytest.mark.s3
def test_a_daily_run_on_s3_reading_a_few_footers_does_not_import_pandas(s3_server) -> None:
    """On S3 a footer read with its file's size known saves a request, but goes through
    ``pyarrow.dataset``, which imports pandas: a daily run with a few footers to read (its table's
    facts file gone) reads them as before (test_statistics: many footers, one request each)."""
    from pyarrow import fs

    from lakenodes.lake.location import lake_filesystem

    lake = s3_server.new_lake()
    code = DAILY_RUN.replace("Lake({uri!r})", "Lake({uri!r}, storage_options={options!r})").format(
        uri=lake.uri, options=lake.storage_options)
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)  # creates the table
    filesystem, root = lake_filesystem(lake, lake.uri)
    facts = [info.path for info in filesystem.get_file_info(fs.FileSelector(f"{root}/tables", recursive=True))
             if info.path.endswith("/_lakenodes/file_facts.parquet")]
    assert len(facts) == 1
    filesystem.delete_file(facts[0])
    loaded = loaded_after(code)
    assert "pyarrow" in loaded
    assert "pandas" not in loaded and "pyarrow.dataset" not in loaded


@pytest.mark.parametrize(("facts_file", "catalog_checkpointed"), [("kept", False), ("deleted", False), ("kept", True)])
def test_a_daily_run_in_a_fresh_interpreter_does_not_import_pyarrow_compute(tmp_path, facts_file,
                                                                            catalog_checkpointed) -> None:
    """The raw job (pyarrow and write_deltalake) never imports ``pyarrow.compute`` (~30-40 ms of a
    cron job); a daily run of an ordinary frame (times, floats, ints, strings) checks and converts
    it with polars and plain pyarrow instead (any Arrow ``.cast()`` imports it)."""
    loaded = next_daily_run_loads(tmp_path, facts_file, catalog_checkpointed)
    assert "pyarrow" in loaded and "pyarrow.compute" not in loaded


def test_a_daily_run_in_a_fresh_interpreter_imports_neither_asyncio_nor_process_pools(tmp_path) -> None:
    """Regression: a daily run imported ``asyncio`` (~12 ms with the ``ssl`` it loads) to ask whether
    an event loop runs (a notebook's), and ``concurrent.futures.process`` (~3 ms) to ask whether the
    executor is a process pool: neither can be so when the module was never imported."""
    loaded = next_daily_run_loads(tmp_path, "kept")
    assert "asyncio" not in loaded and "concurrent.futures.process" not in loaded


def test_a_scheduled_lakenodes_run_loads_neither_rich_nor_the_search_stack(tmp_path) -> None:
    """`lakenodes run` is the cron job the docs recommend: without a terminal it shows no progress
    bar and prints one plain line, so it imports no rich (~20 ms), and nothing in it searches, so
    it imports no LanceDB stack (``lakenodes.search``, ~15 ms): both used to load on every run."""
    (tmp_path / "daily_prices.py").write_text(DAILY_RUN.format(uri=str(tmp_path / "lake")).rpartition("\n\nPrices(")[0]
                                              + "\n\nPrices.Config = Config\n")
    code = f"""
import sys
sys.path.insert(0, {str(tmp_path)!r})
import lakenodes.cli
code = lakenodes.cli.main(["--lake", {str(tmp_path / "lake")!r}, "run", "daily_prices:Prices", "--config", "{{}}"],
                          standalone_mode=False)
assert code == 0, code
print("lakenodes.search" in sys.modules)
"""
    probe = f"{code}\nimport json\nprint(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    *_, searched, loaded = result.stdout.strip().splitlines()
    assert searched == "False" and "rich" not in json.loads(loaded) and "typer" in json.loads(loaded)


def test_reading_the_run_history_in_a_fresh_interpreter_does_not_import_pandas(tmp_path) -> None:
    """``lakenodes updates runs`` / ``updates list`` read the runs catalog: its tz-aware times became
    Python objects through ``to_pylist`` and one updater's runs were picked with ``pc.equal`` of a
    string, each of which imports pandas (~0.15 s of the command)."""
    uri = str(tmp_path / "lake")
    for _ in range(2):  # two runs, two run records
        subprocess.run([sys.executable, "-c", DAILY_RUN.format(uri=uri)], check=True, capture_output=True, timeout=120)
    code = f"""
from lakenodes import Lake
from lakenodes.catalog import catalog
lake = Lake({uri!r})
[process] = catalog.update_processes(lake)
assert process["runs"] == 2 and process["last_status"] == "success", process
assert len(catalog.run_history(lake, process["update_hash"])) == 2
"""
    assert "pandas" not in loaded_after(code)
