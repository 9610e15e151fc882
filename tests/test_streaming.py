"""Streamed updates: ``update()`` returning an Arrow ``RecordBatchReader`` or a polars ``LazyFrame``
is validated batch by batch and written in one commit (lakenodes.core.frame_stream,
lakenodes.lake.stream_write). A bad batch anywhere leaves the table exactly as it was."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from lakenodes import DataNode, DataNodeConfiguration, NodeRunError, SchemaMismatchError, TimeIndexMetaTable
from lakenodes.lake import stream_write

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
SCHEMA = pa.schema([("time_index", pa.timestamp("us", "UTC")), ("unique_identifier", pa.string()),
                    ("close", pa.float64())])


class StreamConfig(DataNodeConfiguration):
    name: str = "stream"


class StreamNode(DataNode):
    """Returns whatever the test put in ``output`` (a callable, so every computation gets a fresh stream)."""

    def __init__(self, name: str = "stream", **kwargs: Any):
        super().__init__(StreamConfig(name=name), **kwargs)
        self.output: Any = None

    def dependencies(self) -> dict:
        return {}

    def update(self) -> Any:
        return self.output()


def rows(first_day: int, days: int, assets: int = 5) -> pa.Table:
    """``days`` daily rows for ``assets`` assets from ``first_day``, sorted by time."""
    times = np.repeat(np.arange(first_day, first_day + days), assets)
    return pa.table({
        "time_index": pa.array([T0 + dt.timedelta(days=int(d)) for d in times], pa.timestamp("us", "UTC")),
        "unique_identifier": pa.array([f"A{i}" for i in range(assets)] * days, pa.string()),
        "close": pa.array(np.arange(days * assets, dtype="float64") + first_day),
    })


def reader(*tables: pa.Table | pa.RecordBatch, chunk: int = 7) -> pa.RecordBatchReader:
    batches = []
    for table in tables:
        batches += [table] if isinstance(table, pa.RecordBatch) else table.to_batches(max_chunksize=chunk)
    return pa.RecordBatchReader.from_batches(SCHEMA, batches)


def stored(node: DataNode) -> pl.DataFrame:
    return node.get_df_between_dates()


def expected(*tables: pa.Table) -> pl.DataFrame:
    return pl.from_arrow(pa.concat_tables(tables)).sort("time_index", "unique_identifier")


def table_state(node: DataNode) -> tuple[int, list[dict]] | None:
    try:
        table = DeltaTable(node.table_uri, storage_options=node.lake.storage_options or None)
    except TableNotFoundError:
        return None
    return table.version(), sorted(table.to_pyarrow_table().to_pylist(), key=str)


def parquet_files(node: DataNode) -> list[str]:
    found = []
    for folder, _, names in os.walk(node.table_uri):
        if "_delta_log" in folder or "_lakenodes" in folder:
            continue
        found += [os.path.join(folder, name) for name in names if name.endswith(".parquet")]
    return sorted(found)


@pytest.mark.parametrize("kind", ["reader", "lazy"])
def test_a_stream_is_written_exactly_in_one_commit(local_lake, monkeypatch, kind):
    monkeypatch.setattr(stream_write, "FLUSH_ROWS", 20)  # several flushes: several files per partition
    node = StreamNode(kind)
    data = rows(0, 30)
    node.output = (lambda: reader(data)) if kind == "reader" else (lambda: pl.from_arrow(data).lazy())
    _, persisted = node.run()
    assert stored(node).equals(expected(data))
    assert persisted.columns == ["time_index", "unique_identifier", "close"]
    assert table_state(node)[0] == 0  # one commit creates the table holding every file
    [entry] = TimeIndexMetaTable.get(storage_hash=node.storage_hash).history()
    assert (entry["operation"], entry["rows_added"]) == ("append", data.num_rows)  # was None: no metrics for its commit
    assert node.update_statistics.max_time_index_value == T0 + dt.timedelta(days=29)
    more = rows(30, 3)
    node.output = lambda: reader(more)
    node.run()
    assert stored(node).equals(expected(data, more))


def test_a_stream_written_on_s3(s3_lake):
    node = StreamNode("s3")
    data = rows(0, 12)
    node.output = lambda: reader(data)
    node.run()
    assert stored(node).equals(expected(data))


def test_a_stream_sorted_by_identity_is_accepted(local_lake):
    data = rows(0, 10)
    by_identity = data.sort_by([("unique_identifier", "ascending"), ("time_index", "ascending")])
    node = StreamNode("by-identity")
    node.output = lambda: reader(by_identity, chunk=4)
    node.run()
    assert stored(node).equals(expected(data))


def bad_null_time() -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([{"time_index": None, "unique_identifier": "A1", "close": 1.0}], schema=SCHEMA)


def out_of_order() -> pa.Table:
    return rows(0, 1)  # day 0 again after later days


def bad_identity() -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([{"time_index": T0 + dt.timedelta(days=50), "unique_identifier": "",
                                        "close": 1.0}], schema=SCHEMA)


@pytest.mark.parametrize(("bad", "problem"), [
    (bad_null_time, "'time_index' has 1 null"),
    (out_of_order, "in time order across batches"),
    (bad_identity, "index level 'unique_identifier'"),
], ids=["null-time", "out-of-order", "empty-identity"])
@pytest.mark.parametrize("seeded", [False, True], ids=["new-table", "existing-table"])
def test_a_bad_batch_in_the_middle_writes_nothing(local_lake, monkeypatch, bad, problem, seeded):
    monkeypatch.setattr(stream_write, "FLUSH_ROWS", 10)  # files are written before the bad batch arrives
    node = StreamNode(f"bad-{seeded}")
    if seeded:
        node.output = lambda: reader(rows(-5, 5))
        node.run()
    before, files_before = table_state(node), parquet_files(node)
    node.output = lambda: reader(rows(0, 20), bad(), rows(20, 5))
    with pytest.raises(NodeRunError, match="batch .* of the streamed update") as raised:
        node.run()
    assert problem in str(raised.value)
    assert table_state(node) == before
    assert parquet_files(node) == files_before  # the files written before the bad batch are gone


def test_a_stream_that_restates_stored_rows_is_refused(local_lake):
    node = StreamNode("restate")
    node.output = lambda: reader(rows(0, 5))
    node.run()
    before = table_state(node)
    node.output = lambda: reader(rows(4, 3))
    with pytest.raises(NodeRunError, match="only appends; return a DataFrame to restate"):
        node.run()
    assert table_state(node) == before


def test_a_stream_that_breaks_the_stored_schema_is_refused(local_lake):
    node = StreamNode("schema")
    node.output = lambda: reader(rows(0, 3))
    node.run()
    before = table_state(node)
    text = pl.from_arrow(rows(3, 2)).with_columns(pl.col("close").cast(pl.String))
    node.output = lambda: text.lazy()
    with pytest.raises(NodeRunError, match=r"batch 1 of the streamed update: column 'close' was float64 and is now string"):
        node.run()
    assert table_state(node) == before


def test_an_empty_stream_writes_nothing(local_lake):
    node = StreamNode("empty")
    node.output = lambda: reader(rows(0, 0))
    _, persisted = node.run()
    assert persisted.is_empty()
    assert table_state(node) is None


def test_a_streamed_column_of_only_nulls_takes_the_stored_type(local_lake):
    """Regression: a LazyFrame whose close is missing on every row was refused ("holds only nulls")
    although the stored table fixes the column's type; on a first run it is still refused."""
    node = StreamNode("nulls")
    missing = pl.from_arrow(rows(3, 2)).with_columns(close=pl.lit(None))
    node.output = lambda: missing.lazy()
    with pytest.raises(NodeRunError, match="column 'close' holds only nulls"):
        node.run()
    assert table_state(node) is None
    node.output = lambda: reader(rows(0, 3))
    node.run()
    node.output = lambda: missing.lazy()
    node.run()
    assert stored(node)["close"].null_count() == 10 and stored(node).schema["close"] == pl.Float64


def test_a_streamed_run_reports_the_version_it_committed(any_lake) -> None:
    """create_write_transaction leaves the table object at the version it read: the run's summary
    said the version before its own commit."""
    node = StreamNode("versioned")
    node.output = lambda: reader(rows(0, 2))
    node.run()
    node.output = lambda: reader(rows(2, 2))
    _, summary = node.run(return_frames=False)
    table = DeltaTable(node.table_uri, storage_options=node.lake.storage_options or None)
    assert summary.table_version == table.version() == 1
    assert node.update_statistics.max_time_index_value == T0 + dt.timedelta(days=3)


def test_the_committed_version_is_found_past_a_later_commit(local_lake) -> None:
    """Another writer's commit after ours: our version is read from the log, not taken as the latest."""
    from deltalake import write_deltalake

    node = StreamNode("overtaken")
    node.output = lambda: reader(rows(0, 2))
    node.run()
    table = DeltaTable(node.table_uri)
    ours, write_id = table.version(), table.history(1)[0]["lakenodes.write_id"]
    write_deltalake(node.table_uri, rows(5, 1).cast(pa.schema(table.schema().to_arrow())), mode="append")
    assert stream_write._committed_version(node.store, write_id, ours - 1) == ours
    assert node.store.table(refresh=False).version() == ours + 1


def empty_text_reader() -> pa.RecordBatchReader:
    schema = pa.schema([("time_index", pa.timestamp("us", "UTC")), ("unique_identifier", pa.string()),
                        ("close", pa.string())])
    return pa.RecordBatchReader.from_batches(schema, [pa.RecordBatch.from_pylist([], schema=schema)])


def no_batch_text_reader() -> pa.RecordBatchReader:
    schema = pa.schema([("time_index", pa.timestamp("us", "UTC")), ("unique_identifier", pa.string()),
                        ("close", pa.string())])
    return pa.RecordBatchReader.from_batches(schema, [])


def empty_text_lazy() -> pl.LazyFrame:
    return pl.from_arrow(rows(0, 0)).with_columns(pl.col("close").cast(pl.String)).lazy()


def empty_extra_column_lazy() -> pl.LazyFrame:
    return pl.from_arrow(rows(0, 0)).with_columns(volume=pl.lit(None, pl.Int64)).lazy()


@pytest.mark.parametrize("output", [empty_text_reader, no_batch_text_reader, empty_text_lazy,
                                    empty_extra_column_lazy],
                         ids=["empty-batch", "no-batch", "empty-lazy", "empty-lazy-new-column"])
def test_an_empty_stream_that_breaks_the_stored_schema_is_refused(local_lake, output):
    """Regression: an empty streamed update was checked against its own schema only (a quiet day's
    wrong schema passed, to fail on the next busy day); it now gets the schema error of a non-empty
    batch, and the stored table is left exactly as it was."""
    node = StreamNode("empty-schema")
    node.output = lambda: reader(rows(0, 3))
    node.run()
    before, files_before = table_state(node), parquet_files(node)
    node.output = output
    with pytest.raises(NodeRunError, match=r"streamed update.*(column 'close' was float64 and is now string|"
                                           r"columns changed: new 'volume')") as raised:
        node.run()
    assert isinstance(raised.value.__cause__, SchemaMismatchError)
    assert table_state(node) == before
    assert parquet_files(node) == files_before


def test_an_empty_stream_that_keeps_the_stored_schema_writes_nothing(local_lake):
    node = StreamNode("empty-same-schema")
    node.output = lambda: reader(rows(0, 3))
    node.run()
    before = table_state(node)
    for output in (lambda: reader(rows(0, 0)), lambda: pl.from_arrow(rows(0, 0)).lazy(),
                   lambda: pa.RecordBatchReader.from_batches(SCHEMA, [pa.RecordBatch.from_pylist([], schema=SCHEMA)])):
        node.output = output
        _, persisted = node.run()
        assert persisted.is_empty()
    assert table_state(node) == before


@pytest.mark.parametrize("kind", ["reader", "lazy"])
def test_a_stream_overtaken_by_a_concurrent_append_is_computed_again(local_lake, kind):
    """Two updaters of one table at once: the other one appends rows the stream also holds after
    this run's statistics were read. The stream cannot be merged, so the run computes its rows
    again from the new watermark (it failed "a streamed update only appends", exit 2: a user
    mistake, where retrying succeeds)."""
    node, other = StreamNode("overtaken"), StreamNode("overtaken")
    node.output = lambda: reader(rows(0, 3))
    node.run()  # days 0..2
    computed: list[int] = []

    def overtaken() -> Any:
        watermark = node.update_statistics.max_time_index_value
        first = (watermark - T0).days + 1
        computed.append(first)
        if len(computed) == 1:  # meanwhile another updater appends days 3..4
            other.output = lambda: pl.from_arrow(rows(3, 2))
            other.run()
        fresh = rows(first, 6 - first)
        return reader(fresh) if kind == "reader" else pl.from_arrow(fresh).lazy()

    node.output = overtaken
    node.run()
    assert computed == [3, 5]
    result = stored(node)  # days 0..5 of the 5 assets, each once
    assert result.height == 30 and result.select(pl.struct("time_index", "unique_identifier").n_unique()).item() == 30


class SeenNode(StreamNode):
    """Identified by a dimension whose name is one the stream's order check gave its own columns."""

    IDENTITY_DIMENSIONS = ("hi_seen",)


def test_a_stream_of_a_dimension_named_like_the_order_checks_columns_is_written(local_lake):
    """Regression: the order check joined each batch's bounds to the earlier ones with the suffix
    "_seen", so a streamed update identified by a dimension ``hi_seen`` (a valid name) failed in its
    write phase with polars' "DuplicateError: column with name 'hi_seen' already exists"."""
    table = pa.table({"time_index": pa.array([T0 + dt.timedelta(days=d) for d in (1, 1, 2, 2)], pa.timestamp("us", "UTC")),
                      "hi_seen": ["A", "B", "A", "B"], "close": [1.0, 2.0, 3.0, 4.0]})
    node = SeenNode("hi-seen")
    node.output = lambda: pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=2))
    node.run()
    stored = node.get_df_between_dates()
    assert stored["hi_seen"].to_list() == ["A", "B", "A", "B"] and stored["close"].to_list() == [1.0, 2.0, 3.0, 4.0]
    again = table.slice(2).set_column(0, "time_index", pa.array([T0 + dt.timedelta(days=3)] * 2, pa.timestamp("us", "UTC")))
    node.output = lambda: pa.RecordBatchReader.from_batches(table.schema, [*again.to_batches(), *again.to_batches()])
    with pytest.raises(NodeRunError, match="batch 2 .* hi_seen='A' .* time order"):  # the check still holds
        node.run()
