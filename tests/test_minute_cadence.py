"""A node run every minute: what a table of many small appends tells its user, and what the
maintenance docs/scheduling.md advises keeps bounded (the growth itself: benchmarks/minute_cadence.py)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import textwrap
import threading
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from benchmarks import minute_cadence
from benchmarks.minute_cadence import MinuteConfig
from lakenodes import Lake
from lakenodes.lake import _commit_hooks
from lakenodes.lake.maintenance import optimize_table

ASSETS = ["C000", "C001", "C002"]


class MinuteBars(minute_cadence.MinuteBars):
    """The benchmark's minute node (every minute not stored yet, up to now: a missed minute is
    caught up) on its own clock, so that overlapping runs can be at different minutes."""

    at = minute_cadence.START

    def now(self) -> dt.datetime:
        return self.at


def run_minute(lake: Lake, minute: int) -> MinuteBars:
    node = MinuteBars(MinuteConfig(assets=len(ASSETS)), lake=lake)  # a fresh node a minute, as cron's new process's
    node.at = minute_cadence.START + minute * minute_cadence.MINUTE
    node.run()
    return node


def small_files_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "lakenodes.lake._commit_hooks"]


def test_a_table_of_many_small_files_warns_to_optimize_it_until_optimized(local_lake, monkeypatch, caplog):
    """Before, a table written every minute slowed every run down (each checkpoint, read by every
    new process, lists each of its files: 75,700 files and a 15 MB checkpoint after a day of 50
    assets) without a word; the commits that checkpoint now warn, naming the command, until an
    optimize compacts the files."""
    monkeypatch.setattr(_commit_hooks, "FILES_PER_PARTITION_WARNING", 15)
    caplog.set_level(logging.WARNING, logger="lakenodes")
    for minute in range(20):  # versions 0..19: checkpoints at 9 (10 files a partition) and 19 (20)
        node = run_minute(local_lake, minute)
    warnings = small_files_warnings(caplog)
    assert len(warnings) == 1, warnings  # on the checkpoint over the line, never once a run
    assert warnings[-1].startswith(f"{node.storage_hash} holds 60 files in 3 partition(s) (20 each on average)")
    assert f"schedule `lakenodes optimize {node.storage_hash}`" in warnings[-1]

    optimize_table(local_lake, node.storage_hash)
    caplog.clear()
    for minute in range(20, 29):  # versions 21..29 (the optimize committed 20): a checkpoint at 29
        run_minute(local_lake, minute)
    assert node.store.table().version() == 29
    assert small_files_warnings(caplog) == []  # 10 files a partition since the compaction
    assert len(node.get_df_between_dates()) == 29 * len(ASSETS)


def test_hourly_optimize_keeps_live_files_and_the_checkpoint_bounded_with_the_docs_tombstone_retention(local_lake):
    """docs/scheduling.md's advice for a node run every minute: optimize hourly and shorten the
    table's tombstone retention. The table then holds one file a partition after each optimize, and
    its checkpoint lists the files of the last hour only, not every file compacted for a week."""
    node = run_minute(local_lake, 0)
    uri = node.store.uri
    DeltaTable(uri).alter.set_table_properties({"delta.deletedFileRetentionDuration": "interval 0 seconds"})
    for hour in range(3):
        for minute in range(1 + hour * 20, 21 + hour * 20):
            run_minute(local_lake, minute)
        optimize_table(local_lake, node.storage_hash)
        assert len(DeltaTable(uri).file_uris()) == len(ASSETS)
    checkpoint = json.loads((Path(uri) / "_delta_log" / "_last_checkpoint").read_text())
    assert checkpoint["size"] < 40 * len(ASSETS)  # without the retention: every file ever compacted, 183 and growing
    assert len(node.get_df_between_dates()) == 61 * len(ASSETS)


def test_overlapping_runs_of_one_minute_neither_lose_nor_duplicate_a_bar(local_lake, caplog):
    """A run that takes longer than a minute overlaps the next one (cron starts it anyway): both
    commit or find the bars stored; the later one catches up the minutes missed in between."""
    run_minute(local_lake, 0)
    caplog.set_level(logging.WARNING, logger="lakenodes")
    errors: list[BaseException] = []

    def cron(minute: int) -> None:
        try:
            run_minute(local_lake, minute)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=cron, args=(minute,)) for minute in (5, 5, 6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = MinuteBars(MinuteConfig(assets=len(ASSETS)), lake=local_lake).get_df_between_dates()
    assert stored.height == 7 * len(ASSETS)
    assert stored.select(pl.struct("time_index", "unique_identifier").n_unique()).item() == stored.height
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_the_docs_tombstone_retention_snippet_runs_on_a_lakenodes_table(local_lake):
    """docs/scheduling.md's snippet, run as written on a table a node created: delta-rs takes the
    setting, and the table goes on taking runs and checkpoints."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "scheduling.md").read_text()
    section = text[text.index("## A node every minute"):text.index("## Airflow")]
    snippet = textwrap.dedent(re.search(r"```python\n(.*?)```", section, re.S).group(1))
    node = run_minute(local_lake, 0)
    exec(snippet, {"table_uri": node.store.uri})  # noqa: S102 - the doc's own code
    assert DeltaTable(node.store.uri).metadata().configuration["delta.deletedFileRetentionDuration"] == "interval 1 days"
    for minute in range(1, 11):
        run_minute(local_lake, minute)
    assert json.loads((Path(node.store.uri) / "_delta_log" / "_last_checkpoint").read_text())["version"] == 9
    assert len(node.get_df_between_dates()) == 11 * len(ASSETS)
