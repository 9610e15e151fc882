"""Another engine writes to a lakenodes table (a notebook's ``write_deltalake``, polars ``write_delta``):
rows lakenodes' frame rules would have refused — a null ``time_index`` or a null identity — make
its statistics refuse the table in one line naming the column, the file and the fix, instead of a
raw ``AttributeError`` or polars ``ColumnNotFoundError``; the rows are never dropped, and once the
user deletes them the next run goes on. Local and S3 (moto server)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from test_time_travel import QueueNode, TravelConfig, frame

from lakenodes import LakenodesUserError, NodeRunError

UTC = dt.UTC


def foreign_row(time_index: dt.datetime | None, uid: str | None) -> pa.Table:
    return pa.table({"time_index": pa.array([time_index], pa.timestamp("us", "UTC")),
                     "unique_identifier": pa.array([uid], pa.string()), "close": pa.array([1.0])})


@pytest.mark.parametrize("column,row", [
    ("time_index", foreign_row(None, "A")),
    ("unique_identifier", foreign_row(dt.datetime(2024, 1, 3, tzinfo=UTC), None)),
])
def test_rows_with_a_null_index_value_from_another_engine_are_refused_by_name(any_lake, column, row):
    node = QueueNode(TravelConfig(name="foreign-nulls"), [frame([1, 2], ["A", "B"], 0.0)], lake=any_lake)
    node.run()
    options = any_lake.storage_options or None
    write_deltalake(node.table_uri, row, mode="append", storage_options=options)
    version = DeltaTable(node.table_uri, storage_options=options).version()

    fresh = QueueNode(TravelConfig(name="foreign-nulls"), [frame([3], ["A", "B"], 0.0)], lake=any_lake)
    pattern = f"null {column} \\(data file .*written by another engine\\).*delete\\(\"{column} IS NULL\"\\)"
    with pytest.raises(LakenodesUserError, match=pattern):
        fresh.get_last_observation()
    with pytest.raises(NodeRunError, match=f"during statistics: LakenodesUserError: .*{pattern}"):
        fresh.run()
    table = DeltaTable(node.table_uri, storage_options=options)
    assert table.version() == version and table.to_pyarrow_table().num_rows == 5  # nothing dropped

    table.delete(f"{column} IS NULL")  # the fix the error names
    again = QueueNode(TravelConfig(name="foreign-nulls"), [frame([3], ["A", "B"], 0.0)], lake=any_lake)
    assert again.run()[0] is False
    stored = again.get_df_between_dates()
    assert stored.height == 6 and stored["time_index"].null_count() == 0


def test_a_table_rewritten_with_a_naive_time_index_is_refused_by_name(any_lake):
    """A notebook overwrote the table from naive datetimes (``schema_mode="overwrite"``): its
    ``time_index`` became ``timestamp_ntz``. lakenodes' whole-table reads returned naive times, its
    ``get_last_observation`` failed with a raw ``ArrowInvalid`` (timestamp with timezone vs without)
    and its runs still appended; now every read, run and
    maintenance refuses it in one line naming ``timestamp_ntz``, and the table stays unchanged."""
    from lakenodes.lake.maintenance import optimize_table

    node = QueueNode(TravelConfig(name="foreign-naive"), [frame([1, 2], ["A", "B"], 0.0)], lake=any_lake)
    node.run()
    options = any_lake.storage_options or None
    naive = frame([1, 2, 3], ["A"], 5.0).to_arrow()
    naive = naive.set_column(0, "time_index", naive["time_index"].cast(pa.timestamp("us")))
    write_deltalake(node.table_uri, naive, mode="overwrite", schema_mode="overwrite",
                    partition_by=["unique_identifier"], storage_options=options)
    version = DeltaTable(node.table_uri, storage_options=options).version()

    fresh = QueueNode(TravelConfig(name="foreign-naive"), [frame([4], ["A", "B"], 0.0)], lake=any_lake)
    for read in (fresh.get_df_between_dates, fresh.get_last_observation,
                 lambda: optimize_table(any_lake, node.storage_hash)):
        with pytest.raises(LakenodesUserError, match="stores time_index as timestamp_ntz"):
            read()
    with pytest.raises(NodeRunError, match="stores time_index as timestamp_ntz"):
        fresh.run()
    assert DeltaTable(node.table_uri, storage_options=options).version() == version


@pytest.mark.parametrize("partition_by", [["time_index"], ["unique_identifier", "time_index"]])
def test_a_foreign_table_partitioned_by_time_index_is_refused_by_name(any_lake, partition_by):
    """Another engine wrote a node's table partitioned by ``time_index`` (a notebook's
    ``write_deltalake(..., partition_by=["time_index"])``): its data files hold no ``time_index``
    column, and the node's statistics, ``get_last_observation`` and runs failed with a raw
    ``ValueError: 'time_index' is not in list``. Every read, run and maintenance now refuses it in
    one line naming the partitioning and the fix, and the table stays unchanged."""
    from lakenodes.lake.maintenance import optimize_table

    node = QueueNode(TravelConfig(name="foreign-partitioned"), [frame([3], ["A", "B"], 0.0)], lake=any_lake)
    options = any_lake.storage_options or None
    write_deltalake(node.table_uri, frame([1, 2], ["A", "B"], 0.0).to_arrow(), partition_by=partition_by,
                    storage_options=options)
    refusal = (r"is partitioned by time_index \(partition columns \[.*\]; another engine wrote it, .*\): lakenodes "
               r"reads each data file's time_index, .*partition_by=\['unique_identifier'\]")
    for use in (node.get_df_between_dates, node.compute_update_statistics, node.get_last_observation,
                lambda: optimize_table(any_lake, node.storage_hash)):
        with pytest.raises(LakenodesUserError, match=refusal):
            use()
    with pytest.raises(NodeRunError, match=f"during statistics: LakenodesUserError: .*{refusal}"):
        node.run()
    table = DeltaTable(node.table_uri, storage_options=options)
    assert (table.version(), table.to_pyarrow_table().num_rows) == (0, 4)
