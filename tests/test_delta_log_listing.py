"""Listing a table's log: commit versions only (not checkpoints, temp files, staged commits or the
``_last_checkpoint`` pointer), in version order, the same on a local folder and on S3."""

from __future__ import annotations

import polars as pl
import pytest
from test_run import day

from lakenodes import DataNode, DataNodeConfiguration, Lake
from lakenodes.lake._delta_log import commit_versions, log_names
from lakenodes.lake._progress_snapshot import latest_stamp
from lakenodes.lake.location import lake_filesystem, write_small_file


class Daily(DataNode):
    def __init__(self, **kwargs):
        super().__init__(DataNodeConfiguration(), **kwargs)

    def dependencies(self):
        return {}

    def update(self):
        last = self.update_statistics.max_time_index_value
        return pl.DataFrame({"time_index": [day(1 if last is None else last.day + 1)], "value": [1.0]})


def test_commit_versions_of_a_long_log(any_lake: Lake) -> None:
    node = Daily()
    for _ in range(13):  # versions 0..12 (the first run creates the table); a checkpoint every 10 commits
        node.run()
    filesystem, root = lake_filesystem(any_lake, node.table_uri)
    for stray in ("00000000000000000099.json.tmp", "_commits/00000000000000000098.json"):
        write_small_file(filesystem, f"{root}/_delta_log/{stray}", b"{}")
    names = log_names(filesystem, root)
    assert "_last_checkpoint" in names and any(name.endswith(".checkpoint.parquet") for name in names)
    assert commit_versions(filesystem, root) == list(range(13))
    assert latest_stamp(filesystem, root)[0] == 12 == node.store.table().version()


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_no_log_lists_nothing(local_lake: Lake, tmp_path, kind: str) -> None:
    filesystem, root = lake_filesystem(local_lake, str(tmp_path / "table"))
    if kind == "empty":
        (tmp_path / "table" / "_delta_log").mkdir(parents=True)
    assert log_names(filesystem, root) == [] and commit_versions(filesystem, root) == []
    assert latest_stamp(filesystem, root) is None
