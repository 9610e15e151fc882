"""Rewrites of files another engine added with paths delta-rs cannot write (Spark records non-ASCII
folder names raw: ``unique_identifier=日本/...``): the remove action carries the add's path
verbatim, so restatements and tail deletes never duplicate rows (regression: they did, see
tests/test_spark.py for the same with Spark itself). Local and S3."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from deltalake.exceptions import CommitFailedError
from polars.testing import assert_frame_equal
from test_time_travel import QueueNode, TravelConfig, frame

from lakenodes import NodeRunError, TimeIndexMetaTable
from lakenodes.lake._log_commit import commit_actions
from lakenodes.lake._rewrite import file_stats
from lakenodes.lake.location import lake_filesystem

UIDS = ["日本", "é=1%", "A B"]


def foreign_append(node, uid: str, rows: pa.Table) -> str:
    """Commit ``rows`` of ``uid`` the way Spark does: a Hive-escaped folder with non-ASCII kept raw,
    recorded URI-escaped (``%`` -> ``%25``) with the non-ASCII characters raw; returns that path."""
    table = node.store.table()
    filesystem, root = lake_filesystem(node.lake, table.table_uri)
    folder = "unique_identifier=" + uid.replace("%", "%25").replace("=", "%3D")
    relative = f"{folder}/part-00000-{uuid.uuid4()}.c000.snappy.parquet"
    data = rows.drop_columns(["unique_identifier"])
    filesystem.create_dir(f"{root}/{folder}", recursive=True)
    with filesystem.open_output_stream(f"{root}/{relative}") as stream:
        pq.write_table(data, stream)
    size = filesystem.get_file_info(f"{root}/{relative}").size
    recorded = relative.replace("%", "%25")
    actions = [{"commitInfo": {"timestamp": 1, "operation": "WRITE", "engineInfo": "spark-like"}},
               {"add": {"path": recorded, "partitionValues": {"unique_identifier": uid}, "size": size,
                        "modificationTime": 1, "dataChange": True, "stats": file_stats(data)}}]
    body = "".join(json.dumps(action, ensure_ascii=False) + "\n" for action in actions)
    with filesystem.open_output_stream(f"{root}/_delta_log/{table.version() + 1:020d}.json") as stream:
        stream.write(body.encode())
    return recorded


def log_actions(node, version: int) -> list[dict]:
    filesystem, root = lake_filesystem(node.lake, node.store.table().table_uri)
    with filesystem.open_input_stream(f"{root}/_delta_log/{version:020d}.json") as stream:
        return [json.loads(line) for line in stream.read().decode().splitlines()]


@pytest.fixture
def mixed(any_lake):
    """A lakenodes table of days 1-2 for A, then a foreign append of days 1-3 for each of UIDS."""
    node = QueueNode(TravelConfig(name="foreign"), [frame([1, 2], ["A"], 0.0)], lake=any_lake)
    node.run()
    recorded = {}
    for uid in UIDS:
        rows = frame([1, 2, 3], [uid], 10.0).to_arrow()
        recorded[uid] = foreign_append(node, uid, rows)
    node.store.table()
    return node, recorded


def test_restating_foreign_rows_removes_their_file_by_its_recorded_path(mixed):
    node, recorded = mixed
    before = node.get_df_between_dates()
    assert before.height == 2 + 3 * len(UIDS)
    node.frames = [frame([2, 4], UIDS, 100.0)]  # restates day 2 of every foreign identity, adds day 4
    node.run()
    after = node.get_df_between_dates()
    assert after.height == before.height + len(UIDS)  # day 4 only: nothing duplicated
    restated = after.filter(after["unique_identifier"].is_in(UIDS) & (after["time_index"].dt.day() == 2))
    assert sorted(restated["close"].to_list()) == sorted(frame([2], UIDS, 100.0)["close"].to_list())
    removes = [a["remove"]["path"] for a in log_actions(node, node.store.table().version()) if "remove" in a]
    assert sorted(removes) == sorted(recorded.values())  # verbatim, raw UTF-8 included
    assert_frame_equal(node.get_df_between_dates(as_of=node.store.table().version() - 1), before)
    history = TimeIndexMetaTable.get(storage_hash=node.storage_hash, lake=node.lake).history(limit=1)[0]
    assert (history["operation"], history["rows_added"], history["rows_updated"]) == ("upsert", 3, 3)


def test_tail_delete_of_foreign_rows(mixed):
    node, _ = mixed
    table = TimeIndexMetaTable.get(storage_hash=node.storage_hash, lake=node.lake)
    result = table.delete_after_date("2024-01-02", dimension_filters={"unique_identifier": ["日本", "é=1%"]})
    assert result["deleted_count"] == 4
    left = node.get_df_between_dates()
    assert sorted(left.filter(left["unique_identifier"].is_in(["日本", "é=1%"]))["time_index"].dt.day().to_list()) == [1, 1]
    assert left.height == 2 + 3 * len(UIDS) - 4


def test_a_commit_of_a_version_taken_meanwhile_fails_as_a_conflict(mixed):
    node, recorded = mixed
    table = node.store.table()
    filesystem, root = lake_filesystem(node.lake, table.table_uri)
    taken = f"{root}/_delta_log/{table.version() + 1:020d}.json"
    with filesystem.open_output_stream(taken) as stream:
        stream.write(b'{"commitInfo":{"timestamp":1,"operation":"WRITE"}}\n')
    from deltalake import CommitProperties

    with pytest.raises(CommitFailedError):
        commit_actions(table, filesystem, root, [], [(recorded["日本"], 1, {"unique_identifier": "日本"})],
                       CommitProperties(custom_metadata={"lakenodes.operation": "DELETE"}), True)
    with filesystem.open_input_stream(taken) as stream:
        assert b"DELETE" not in stream.read()  # the winner's commit is untouched
    assert isinstance(filesystem, pafs.FileSystem)
    assert node.get_df_between_dates().filter(node.get_df_between_dates()["unique_identifier"] == "日本").height == 3


@pytest.mark.parametrize("when", [dt.datetime(2024, 1, 3, tzinfo=dt.UTC)])
def test_statistics_see_foreign_rows(mixed, when):
    node, _ = mixed
    stats = node.compute_update_statistics()
    assert all(stats.get_last_update_index_2d(uid) == when for uid in UIDS)


def test_a_table_whose_protocol_lakenodes_cannot_commit_to_is_refused_unchanged(mixed):
    node, _ = mixed
    node.store.table().alter.set_table_properties({"delta.appendOnly": "true"})
    before = node.get_df_between_dates()
    node.frames = [frame([2], ["日本"], 100.0)]
    with pytest.raises(NodeRunError, match="writes itself, which supports writer protocol 2 without append-only"):
        node.run()
    assert_frame_equal(node.get_df_between_dates(), before)
