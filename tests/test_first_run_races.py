"""A table created by another writer between the first statistics (which found it missing) and the
validation or the write of the rows: the rows are typed as that table (a column of nulls too), a
stream's files as well (regressions of 972a7ec, found by review: it trusted the statistics)."""

from __future__ import annotations

import datetime as dt
import glob
import subprocess
import sys
import textwrap

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_frames import FrameConfig, FrameNode

from lakenodes import ConcurrentCreationError, Lake, NodeRunError

UTC = dt.UTC


def day(n: int) -> dt.datetime:
    return dt.datetime(2024, 1, n, tzinfo=UTC)


def other_process_writes(lake: Lake, name: str, frame_code: str) -> None:
    """Another process (same node, same table) runs first and creates the table."""
    script = textwrap.dedent(f"""
        import datetime as dt, sys
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})
        import polars as pl
        from lakenodes import Lake, use_lake
        from test_frames import FrameConfig
        from test_first_run_races import RacingNode
        UTC = dt.UTC
        with use_lake(Lake({lake.uri!r})):
            node = RacingNode(FrameConfig(name={name!r}))
            node.run_with({frame_code})
    """)
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)


class RacingNode(FrameNode):
    """Its update() lets another process create the table first (the race, made deterministic)."""

    other = None

    def update(self):
        if self.other is not None:
            other_process_writes(self.lake, self.config.name, self.other)
        return self.output


def test_null_column_typed_by_table_created_during_update(local_lake: Lake) -> None:
    node = RacingNode(FrameConfig(name="race_nulls"))
    node.other = ('pl.DataFrame({"time_index": [dt.datetime(2024, 1, 1, tzinfo=UTC)], '
                  '"unique_identifier": ["A"], "price": [1.0], "note": ["x"]})')
    node.output = pl.DataFrame({"time_index": [day(2)], "unique_identifier": ["A"], "price": [2.0], "note": [None]})
    node.run()  # the stored table types the column holding only nulls (as when it existed at the statistics)
    stored = node.get_df_between_dates()
    assert stored.height == 2 and stored.schema["note"] == pl.String


def test_types_conformed_to_table_created_during_update(local_lake: Lake) -> None:
    node = RacingNode(FrameConfig(name="race_types"))
    node.other = ('pl.DataFrame({"time_index": [dt.datetime(2024, 1, 1, tzinfo=UTC)], '
                  '"unique_identifier": ["A"], "price": [1.5]})')
    node.output = pl.DataFrame({"time_index": [day(2)], "unique_identifier": ["A"], "price": [2]})  # Int64
    node.run()
    stored = node.get_df_between_dates()
    assert stored["price"].to_list() == [1.5, 2.0] and stored.schema["price"] == pl.Float64


def test_stream_conformed_to_table_created_during_update(local_lake: Lake) -> None:
    node = RacingNode(FrameConfig(name="race_stream"))
    node.other = ('pl.DataFrame({"time_index": [dt.datetime(2024, 1, 1, tzinfo=UTC)], '
                  '"unique_identifier": ["A"], "price": [1.5]})')
    node.output = pl.DataFrame({"time_index": [day(2)], "unique_identifier": ["A"], "price": [2]}).lazy()
    node.run()
    stored = node.get_df_between_dates()
    assert stored["price"].to_list() == [1.5, 2.0] and stored.schema["price"] == pl.Float64
    assert pl.read_delta(node.table_uri).height == 2  # other engines read the table (polars: "Int64 != Float64")
    # every data file holds the table's types (a Delta table's files match its schema)
    for path in glob.glob(f"{node.table_uri}/unique_identifier=*/*.parquet"):
        assert pq.read_schema(path).field("price").type == pa.float64(), path


def test_a_stream_whose_table_appears_with_other_types_midway_writes_nothing(local_lake: Lake) -> None:
    """The first batch found no table, so the stream's files took its types; another writer then
    created the table with other ones: the commit refuses the files (Delta readers would meet files
    that disagree with the table's schema) and the next run conforms to that table."""
    node = RacingNode(FrameConfig(name="race_midway"))
    first = pl.DataFrame({"time_index": [day(2)], "unique_identifier": ["A"], "price": [2]})  # Int64

    def batches():
        yield from first.to_arrow().to_batches()
        other_process_writes(local_lake, "race_midway", 'pl.DataFrame({"time_index": [dt.datetime(2024, 1, 1, '
                             'tzinfo=UTC)], "unique_identifier": ["B"], "price": [1.5]})')
        yield from first.with_columns(unique_identifier=pl.lit("C")).to_arrow().to_batches()

    node.output = pa.RecordBatchReader.from_batches(first.to_arrow().schema, batches())
    with pytest.raises(NodeRunError) as caught:
        node.run()
    assert isinstance(caught.value.cause, ConcurrentCreationError), caught.value
    assert "price: double" in str(caught.value) and "price: int64" in str(caught.value)
    assert node.get_df_between_dates()["unique_identifier"].to_list() == ["B"]  # the other writer's row only
    assert pl.read_delta(node.table_uri).height == 1
    node.output = first.lazy()
    node.run()
    assert node.get_df_between_dates().sort("unique_identifier")["price"].to_list() == [2.0, 1.5]
