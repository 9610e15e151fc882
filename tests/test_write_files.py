"""lakenodes' own Parquet writer (streams, restatements, tail deletes, optimize): one file per
partition, its rows in ``sort_by`` order whatever the input order, and its Add action's Delta
statistics exactly those of the rows it holds (all files' statistics come from one grouping)."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from polars.testing import assert_frame_equal
from test_time_travel import QueueNode
from test_unchanged_rows import SameConfig

from lakenodes import DataNode, DataNodeConfiguration
from lakenodes.lake._rewrite import _statistics, file_stats, write_files

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def rows(order: str) -> pa.Table:
    rng = np.random.default_rng(4)
    uids, days = [f"U{i}/x" for i in range(6)], 30
    times = [T0 + dt.timedelta(days=d, microseconds=int(rng.integers(0, 999))) for d in range(days) for _ in uids]
    n = len(times)
    table = pa.table({
        "time_index": pa.array(times, pa.timestamp("us", "UTC")),
        "unique_identifier": pa.array(uids * days),
        "close": pa.array([None if i % 7 == 0 else float("nan") if i % 5 == 0 else float(rng.standard_normal())
                           for i in range(n)], pa.float64()),
        "volume": pa.array([None if i % 3 == 0 else int(rng.integers(-9, 9)) for i in range(n)], pa.int64()),
        "venue": pa.array([None if i % 4 == 0 else f"v{i % 5}" for i in range(n)]),
        "flag": pa.array([i % 2 == 0 for i in range(n)]),
        "since": pa.array([None] * n, pa.date32()),
    })
    if order == "by time":
        return table
    return table.take(pa.array(rng.permutation(n)))


def expected_stats(data: pa.Table) -> dict:
    """The Delta statistics of ``data``, column by column (the rules of ``file_stats``)."""
    minimums, maximums = {}, {}
    for name in data.column_names:
        column = data.column(name)
        if name == "flag" or column.null_count == len(column):
            continue
        low, high = pc.min_max(column).values()
        low, high = low.as_py(), high.as_py()
        if isinstance(low, dt.datetime):
            low, high = (f"{v:%Y-%m-%dT%H:%M:%S}.{v.microsecond // 1000:03d}Z" for v in (low, high))
        minimums[name], maximums[name] = low, high
    return {"numRecords": data.num_rows, "minValues": minimums, "maxValues": maximums,
            "nullCount": {name: data.column(name).null_count for name in data.column_names}}


@pytest.mark.parametrize("order", ["by time", "shuffled"])
def test_each_file_holds_its_partition_sorted_with_its_own_statistics(tmp_path, order):
    data = rows(order)
    bounds: dict = {}
    adds = write_files(pafs.LocalFileSystem(), str(tmp_path), data, data.schema, "unique_identifier",
                       sort_by=["time_index", "unique_identifier"], bounds=bounds)
    assert sorted(add.partition_values["unique_identifier"] for add in adds) == sorted(
        set(data.column("unique_identifier").to_pylist()))
    for add in adds:
        uid = add.partition_values["unique_identifier"]
        stored = pq.read_table(tmp_path / add.path, partitioning=None)  # the file alone: no column from its folder
        wanted = data.filter(pc.equal(data.column("unique_identifier"), uid)).drop_columns(["unique_identifier"])
        assert_frame_equal(pl.from_arrow(stored), pl.from_arrow(wanted.sort_by("time_index")))  # NaN == NaN
        assert json.loads(add.stats) == expected_stats(stored)
        assert bounds[add.path] == (stored.column("time_index")[0].as_py(), stored.column("time_index")[-1].as_py())
        assert add.size == (tmp_path / add.path).stat().st_size


def test_each_group_of_rows_gets_its_own_statistics_whatever_the_batches_they_come_in():
    """The files' statistics come from one grouping of all their rows, which runs in threads: those
    return the groups of a table of many batches in an order of their own, so each group's
    statistics and time bounds must still be matched with its own rows."""
    sizes = [137 + 11 * (group % 9) for group in range(300)]
    times = np.datetime64("2024-01-01", "us") + np.arange(sum(sizes)) * np.timedelta64(1, "m")
    data = pa.table({"time_index": pa.array(times, pa.timestamp("us", "UTC")),
                     "close": pa.array(np.random.default_rng(5).standard_normal(len(times)))})
    data = pa.Table.from_batches(data.to_batches(max_chunksize=3_000))  # as a stream's batches come
    computed = _statistics(sizes, data)
    offsets = [0, *itertools.accumulate(sizes)]
    for group, (stats, bounds) in enumerate(computed):
        rows_of_group = data.slice(offsets[group], sizes[group])
        assert json.loads(stats) == expected_stats(rows_of_group)
        assert bounds == (rows_of_group.column("time_index")[0].as_py(), rows_of_group.column("time_index")[-1].as_py())


def test_only_text_is_dictionary_encoded(tmp_path):
    """Numbers and timestamps of a series are nearly all distinct: a dictionary costs the writer
    several times the plain encoding and saves nothing; text (venues, tickers) keeps one."""
    data = rows("by time")
    adds = write_files(pafs.LocalFileSystem(), str(tmp_path), data, data.schema, "unique_identifier",
                       sort_by=["time_index", "unique_identifier"])
    chunks = pq.ParquetFile(tmp_path / adds[0].path).metadata.row_group(0)
    dictionary = {chunks.column(i).path_in_schema: chunks.column(i).has_dictionary_page
                  for i in range(chunks.num_columns)}
    assert dictionary == {"time_index": False, "close": False, "volume": False, "venue": True, "flag": False,
                          "since": False}


def test_statistics_keep_characters_beyond_the_bmp_and_pad_years_before_1000():
    data = pa.table({"time_index": pa.array([dt.datetime(1, 1, 1, tzinfo=dt.UTC), T0], pa.timestamp("us", "UTC")),
                     "name": ["𠮷野家", "a"]})
    stats = file_stats(data)
    # raw UTF-8 as delta-rs writes it: arrow-rs decodes an escaped surrogate pair to another character
    assert '"𠮷野家"' in stats and "\\u" not in stats
    assert json.loads(stats)["minValues"]["time_index"] == "0001-01-01T00:00:00.000Z"  # a valid Delta timestamp


def test_a_filter_on_a_character_beyond_the_bmp_finds_rows_lakenodes_rewrote(local_lake):
    """Polars prunes files by the log's statistics: with the escaped form it read '\\U00010bb7野家'
    as the file's maximum and returned no row after a restatement rewrote the file."""
    schema = {"time_index": pl.Datetime("us", "UTC"), "unique_identifier": pl.String, "close": pl.Float64,
              "note": pl.String}
    first = pl.DataFrame([(T0, "A", 1.0, "𠮷野家"), (T0, "B", 2.0, "a")], schema=schema, orient="row")
    node = QueueNode(SameConfig(name="non-bmp"), [first, first.with_columns(pl.col("close") + 1)])
    node.run()
    node.run()  # a restatement of both rows: lakenodes' writer rewrites their files
    assert node.store.table().version() == 1
    found = pl.scan_delta(node.table_uri).filter(pl.col("note") == "𠮷野家").collect()
    assert found.select("unique_identifier", "close").rows() == [("A", 2.0)]


class WideConfig(DataNodeConfiguration):
    assets: int


class WideRows(DataNode):
    """Numeric and text columns for many assets, one more day on every run."""

    def dependencies(self) -> dict:
        return {}

    def update(self) -> pa.Table:
        last = self.update_statistics.max_time_index_value
        day = T0 if last is None else last + dt.timedelta(days=1)
        count = self.config.assets
        return pa.table({
            "time_index": pa.array([day] * count, pa.timestamp("us", "UTC")),
            "unique_identifier": pa.array([f"A{i}" for i in range(count)]),
            **{f"f{c}": pa.array(np.arange(count, dtype="float64") + c) for c in range(3)},
            "venue": pa.array([f"v{i % 3}" for i in range(count)]),
        })


def test_runs_write_numbers_without_dictionaries(local_lake):
    """delta-rs dictionary-encodes every column by default and keeps an encoder per column and
    partition: a backfill of 500 assets x 500 days x 100 float columns (204 MB of rows) peaked at
    5.0 GB of RSS (x 400 columns: 19 GB, near the machine's memory); without dictionaries for
    numbers 0.9 GB. Runs (the first write and the appends) now encode only text with one."""
    node = WideRows(WideConfig(assets=4))
    node.run()
    node.run()
    table = DeltaTable(node.table_uri)
    assert len(table.file_uris()) == 8
    for path in table.file_uris():
        chunks = pq.ParquetFile(path).metadata.row_group(0)
        dictionary = {chunks.column(i).path_in_schema: chunks.column(i).has_dictionary_page
                      for i in range(chunks.num_columns)}
        assert dictionary == {"time_index": False, "f0": False, "f1": False, "f2": False, "venue": True}, path
    stats = pa.RecordBatchReader.from_stream(table.get_add_actions(flatten=True)).read_all()
    assert stats.column("min.f2").to_pylist() != [None] * 8  # the statistics every read prunes with are kept
    assert sorted(set(stats.column("max.venue").to_pylist())) == ["v0", "v1", "v2"]
    assert node.get_df_between_dates().height == 8
