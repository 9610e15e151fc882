"""Values that storage or readers cannot hold, at their limits: partition folder names and datetimes.

The rejections themselves are rows of test_frames.py's and test_bad_input.py's tables; here the
values just inside the limits are written through real runs and read back by lakenodes, Delta and
folder-name readers, and lakenodes' computation of a folder name is checked against delta-rs.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from typing import Any

import polars as pl
import pyarrow as pa
from test_frames import UTC, FrameNode, SectorNode, VenueNode, _read, day, polars_frame

from lakenodes.core.datetime_range import format_count
from lakenodes.core.identity_values import partition_folder_name

DESIGN_ODD_UIDS = ["BRK/B", "A B", "é=1%", "x'y", "a=b/c", "日本"]


def _folder_reader_values(node: FrameNode, column: str = "unique_identifier") -> dict[str, list[str]]:
    """The partition values as folder-name readers decode them (told the column is a string)."""
    import pyarrow.dataset as ds

    root = node.table_uri
    files = f"{root}/{column}=*/*.parquet"  # the data files only (not _delta_log nor _lakenodes)
    hive = ds.partitioning(pa.schema([(column, pa.string())]), flavor="hive")
    return {
        "pyarrow": ds.dataset(root, format="parquet", partitioning=hive, ignore_prefixes=["_"]).to_table()[column]
        .to_pylist(),
        "polars": pl.scan_parquet(files, hive_partitioning=True, hive_schema={column: pl.String}).collect()[column]
        .to_list(),
        "dask": _dask_values(files, hive, column),
        "polars_delta": pl.read_delta(root)[column].to_list(),
    }


def _dask_values(files: str, hive: Any, column: str) -> list[str]:
    import warnings

    import dask.dataframe as dd

    with warnings.catch_warnings():  # dask's own use of a pandas 3 deprecation, not ours
        warnings.filterwarnings("ignore", message="The inplace keyword in DataFrame.reset_index")
        return dd.read_parquet(files, dataset={"partitioning": hive}).compute()[column].astype(str).tolist()


def test_partition_folder_names_are_computed_as_delta_rs_writes_them(local_lake):
    """lakenodes' folder-name computation (for the length limit) matches the folders delta-rs creates,
    and every value round-trips through lakenodes, Delta and folder-name readers."""
    uids = sorted({f"a{chr(code)}b" for code in range(32, 127)} | set(DESIGN_ODD_UIDS) | {"🙂", "e\u0301", "0700"})
    node = FrameNode()
    node.run_with(polars_frame(times=[day(1)] * len(uids), uids=uids, value=[1.0] * len(uids)))
    folders = {name for name in os.listdir(node.table_uri) if not name.startswith("_")}
    assert folders == {partition_folder_name("unique_identifier", uid) for uid in uids}
    assert sorted(_read(FrameNode())["unique_identifier"]) == uids
    for reader, values in _folder_reader_values(node).items():
        assert sorted(values) == uids, reader


def test_longest_partition_values_are_written_and_read_back(local_lake):
    """Folder names of exactly 255 bytes are accepted; the limit counts the encoded bytes."""
    uids = sorted(["x" * 237, "é" * 39, "日" * 26, "%" * 79, "é=1%" * 18])
    node = FrameNode()
    node.run_with(polars_frame(times=[day(1)] * len(uids), uids=uids, value=[1.0] * len(uids)))
    assert sorted(_read(FrameNode())["unique_identifier"]) == uids
    assert sorted(_folder_reader_values(node)["pyarrow"]) == uids
    sector = SectorNode()
    sector.run_with(polars_frame(uids=None, sector_classification=["A", "s" * 233], value=[1.0, 2.0]))
    assert sorted(_read(SectorNode())["sector_classification"]) == ["A", "s" * 233]


def test_long_values_of_a_level_that_is_not_a_partition_are_accepted(local_lake):
    """Only the partition column becomes a folder name: a third level keeps the 255-character limit."""
    venue = "é" * 255
    VenueNode().run_with(polars_frame(uids=("AAA", "AAA"), venue=["X", venue], value=[1.0, 2.0]))
    assert _read(VenueNode())["venue"].to_list() == ["X", venue]


def test_out_of_range_values_are_named_exactly_as_python_would_print_in_range_ones():
    """The error names an out-of-range value in ISO form; the same formatter agrees with Python in range."""
    epoch, micro = dt.datetime(1970, 1, 1, tzinfo=UTC), dt.timedelta(microseconds=1)
    first, last = (dt.datetime.min.replace(tzinfo=UTC) - epoch) // micro, (dt.datetime.max.replace(tzinfo=UTC) - epoch) // micro
    for value in [first, last, 0, -1, *random.Random(7).sample(range(first, last), 2_000)]:
        assert format_count(value, "us") == (epoch + value * micro).replace(tzinfo=None).isoformat() + "Z"
    assert format_count((last + 1) * 1000, "ns") == "10000-01-01T00:00:00Z"
    assert format_count(-719_163, "day") == "0000-12-31"


def test_datetime_bounds_python_can_hold_are_accepted(local_lake):
    """0001-01-01 and 9999-12-31T23:59:59.999999 are written, counted in statistics and read back exactly."""
    first, last = dt.datetime.min.replace(tzinfo=UTC), dt.datetime.max.replace(tzinfo=UTC)
    frame = polars_frame(times=(first, last), uids=("AAA", "AAA"), seen_at=[last, first], due=[dt.date.max, dt.date.min])
    node = FrameNode()
    node.run_with(frame)
    assert node.update_statistics.max_time_index_value == last
    assert _read(FrameNode()).equals(frame)
    error, _ = FrameNode().run_with(frame.clear())  # the next run's statistics read those bounds back
    assert error is False
