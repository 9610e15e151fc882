"""Maintenance at real sizes: work that must not grow with the number of partitions times the files."""

from __future__ import annotations

import datetime
import json
import os
from typing import ClassVar

import polars as pl
from deltalake import DeltaTable

from lakenodes import DataNode, DataNodeConfiguration, Lake
from lakenodes.lake.maintenance import optimize_table

UTC = datetime.UTC
START = datetime.datetime(2024, 1, 1, tzinfo=UTC)


class ManyAssetsConfig(DataNodeConfiguration):
    assets: int


class ManyAssets(DataNode):
    """Appends the next day for every asset on every run: one small file per asset and day."""

    OFFSET_START: ClassVar[datetime.datetime] = START

    def dependencies(self) -> dict:
        return {}

    def update(self) -> pl.DataFrame:
        last = self.update_statistics.max_time_index_value
        day = START if last is None else last + datetime.timedelta(days=1)
        count = self.config.assets
        return pl.DataFrame({
            "time_index": [day] * count,
            "unique_identifier": [f"A{i:04d}" for i in range(count)],
            "close": [float(i) for i in range(count)],
        }).with_columns(pl.col("time_index").cast(pl.Datetime("us", "UTC")))


def _operations(table_uri: str, first: int, last: int) -> list[str]:
    """What each commit in versions ``first``..``last`` did (lakenodes' own operation name, else delta-rs')."""
    operations = []
    for version in range(first, last + 1):
        with open(os.path.join(table_uri, "_delta_log", f"{version:020d}.json")) as log:
            infos = [json.loads(line)["commitInfo"] for line in log if '"commitInfo"' in line]
        operations.append(infos[0].get("lakenodes.operation", infos[0].get("operation")) if infos else None)
    return operations


def test_optimize_compacts_many_partitions_in_few_commits(local_lake: Lake):
    """Compacting 1,000 partitions took 1,000 commits, each one replaying and checking a snapshot of
    every file: 43 s for 1,000 assets x 3 files, 488 s for 3,000 x 5 (quadratic in the assets);
    partitions are now compacted together, a bounded amount of data per commit."""
    node = ManyAssets(ManyAssetsConfig(assets=120))
    for _ in range(3):
        node.run()
    before = node.get_df_between_dates()
    progress: list[tuple[int, int]] = []

    result = optimize_table(local_lake, node.storage_hash, progress=lambda done, total: progress.append((done, total)))

    assert (result["files_before"], result["files_after"], result["partitions"]) == (360, 120, 120)
    assert (result["files_removed"], result["files_added"]) == (360, 120)
    assert _operations(node.table_uri, result["version_before"] + 1, result["version_after"]) == ["OPTIMIZE"]
    assert progress[0] == (0, 120) and progress[-1] == (120, 120)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    table = DeltaTable(node.table_uri)
    assert len(table.file_uris()) == 120
    assert node.get_df_between_dates().equals(before)
    assert pl.read_delta(node.table_uri).height == 360
    node.run()  # appends go on after the compaction
    assert node.get_df_between_dates().height == 480
