"""Reads of many files filtered by time (and by the files' identities) go through polars' Parquet reader, on a local
lake and on S3 (see lakenodes/lake/_polars_scan.py): the same rows, columns and types as pyarrow's
scanner, which every other read (and any read polars cannot make the same way) still uses."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from faultproxy import FaultProxy
from test_frames import FrameConfig, FrameNode

import lakenodes.lake._polars_scan as polars_scan
import lakenodes.lake._table_scan as table_scan
from lakenodes import Lake, use_lake

UTC = dt.UTC
ASSETS = [f"A{i:02d}" for i in range(40)]  # 40 files per append, over MANY_FILES


def day(n: int) -> dt.datetime:
    return dt.datetime(2024, 1, n, tzinfo=UTC)


def rows(days: range, assets=ASSETS, extra: dict | None = None) -> pl.DataFrame:
    keys = [(d, a) for d in days for a in assets]
    frame = pl.DataFrame({
        "time_index": [day(d) for d, _ in keys], "unique_identifier": [a for _, a in keys],
        "price": [d * 1.5 for d, _ in keys], "volume": pl.Series([d * 10 for d, _ in keys], dtype=pl.Int32),
        "halted": [d % 2 == 0 for d, _ in keys], "note": [None if d == 3 else f"n{d}" for d, _ in keys],
        "settles": [day(d).date() for d, _ in keys],
        "stamped": [day(d) + dt.timedelta(microseconds=d) for d, _ in keys],
    })
    return frame.with_columns(**(extra or {}))


@pytest.fixture
def many_files(any_lake: Lake) -> FrameNode:
    node = FrameNode(FrameConfig(name="many_files"))
    node.run_with(rows(range(1, 4)))
    node.run_with(rows(range(4, 7)))
    return node


def read_both(node: FrameNode, monkeypatch: pytest.MonkeyPatch, **read) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """The read through polars and through pyarrow, and how many reads polars answered."""
    answered = []
    scan_many = table_scan.scan_many

    def counting(*args, **kwargs):
        result = scan_many(*args, **kwargs)
        answered.append(result is not None)
        return result

    with monkeypatch.context() as patched:
        patched.setattr(table_scan, "scan_many", counting)
        fast = node.get_df_between_dates(**read)
    with monkeypatch.context() as patched:
        patched.setattr(polars_scan, "MANY_FILES", 10**9)
        patched.setattr(polars_scan, "MANY_FILES_ON_S3", 10**9)
        plain = node.get_df_between_dates(**read)
    return fast, plain, sum(answered)


WINDOWS = [
    {},
    {"start_date": day(3), "end_date": day(3)},
    {"start_date": day(2)},
    {"end_date": day(4)},
    {"start_date": day(2), "end_date": day(5), "great_or_equal": False, "less_or_equal": False},
    {"start_date": day(9)},  # no file can hold rows: nothing to read
]


@pytest.mark.parametrize("filtered", ["after the read", "pushed down"])
@pytest.mark.parametrize("window", WINDOWS, ids=[str(sorted(w)) + str(i) for i, w in enumerate(WINDOWS)])
def test_time_window_reads_match_pyarrow(many_files: FrameNode, monkeypatch: pytest.MonkeyPatch, window: dict,
                                         filtered: str) -> None:
    """Small files are read whole, then filtered; larger ones with the window pushed down to polars' reader."""
    if filtered == "pushed down":
        monkeypatch.setattr(polars_scan, "SMALL_FILE_BYTES", 0)
    fast, plain, answered = read_both(many_files, monkeypatch, **window)
    assert fast.schema == plain.schema and fast.equals(plain)
    if window.get("start_date") == day(9):
        assert answered == 0 and fast.height == 0
    else:
        assert answered == 1 and fast.height > 0


def test_columns_are_read_as_asked(many_files: FrameNode, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, plain, answered = read_both(many_files, monkeypatch, start_date=day(2), columns=["volume", "note"])
    assert answered == 1 and fast.equals(plain)
    assert fast.columns == ["time_index", "unique_identifier", "volume", "note"]


def test_files_rewritten_by_a_restatement_read_the_same(many_files: FrameNode, monkeypatch: pytest.MonkeyPatch) -> None:
    """delta-rs' MERGE writes string_view columns; polars reads those files like the others."""
    many_files.run_with(rows(range(2, 3), extra={"price": pl.lit(-1.0)}))
    fast, plain, answered = read_both(many_files, monkeypatch, start_date=day(1))
    assert answered == 1 and fast.equals(plain)
    assert fast.filter(pl.col("time_index") == day(2))["price"].unique().to_list() == [-1.0]


def test_reads_of_some_identities_read_their_files_by_polars(many_files: FrameNode, monkeypatch: pytest.MonkeyPatch) -> None:
    """An identity filter on the partition column chooses files, not rows: the files chosen and a
    time window select the rows exactly."""
    fast, plain, answered = read_both(many_files, monkeypatch, unique_identifier_list=ASSETS[:35], start_date=day(2))
    assert answered == 1 and fast.equals(plain) and fast.height == 35 * 5
    assert sorted(fast["unique_identifier"].unique()) == ASSETS[:35]


def test_identifiers_with_path_characters_read_the_same(any_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    """Partition folders hold the identifier URL-encoded: ``%``, ``*``, ``[``, spaces and slashes are
    file names, never patterns or escapes, to polars."""
    odd = ["a/b", "x y", "ü", "a%2Fb", "a*b", "[c]", "d?", "e=f", *ASSETS[:30]]
    node = FrameNode(FrameConfig(name="odd_identifiers"))
    node.run_with(rows(range(1, 3), assets=odd))
    fast, plain, answered = read_both(node, monkeypatch, start_date=day(1))
    assert answered == 1 and fast.equals(plain)
    assert sorted(fast["unique_identifier"].unique().to_list()) == sorted(odd)


def test_a_lake_folder_with_pattern_characters_reads_the_same(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    with use_lake(Lake(tmp_path / "data *?{a,b}" / "lake")):
        node = FrameNode(FrameConfig(name="odd_folder"))
        node.run_with(rows(range(1, 3)))
        fast, plain, answered = read_both(node, monkeypatch, start_date=day(1))
    assert answered == 1 and fast.equals(plain) and fast.height == 2 * len(ASSETS)


def test_a_read_polars_cannot_make_is_made_by_pyarrow(many_files: FrameNode, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any failure of polars' reader (a storage option it refuses, a file it cannot read) leaves the
    read to pyarrow's scanner: the same rows, a DEBUG line, no error."""
    expected = many_files.get_df_between_dates(start_date=day(2))

    def refusing(*args, **kwargs):
        raise OSError("polars could not reach the store")

    monkeypatch.setattr(polars_scan, "_scan_paths", refusing)
    assert many_files.get_df_between_dates(start_date=day(2)).equals(expected)


@pytest.mark.s3
def test_a_new_process_reads_a_small_s3_file_in_one_request(s3_server, tmp_path) -> None:
    """A cron job reading one date across every asset: pyarrow's scanner asked S3 for each file's
    footer, then for its data (two requests a file, ``FileFragment`` has no footer in a new
    process); polars reads a small file in one, and, told the columns' types, reads no footer
    first to plan the scan (it read 16 files of 40 twice). Counted through the recording proxy."""
    lake = s3_server.new_lake()
    with use_lake(lake):
        FrameNode(FrameConfig(name="many_files")).run_with(rows(range(1, 4)))
    job = ("import json, sys, datetime as dt; sys.path.insert(0, sys.argv[3]); from test_frames import FrameConfig, FrameNode; "
           "from lakenodes import Lake; node = FrameNode(FrameConfig(name='many_files'), "
           "lake=Lake(sys.argv[1], storage_options=json.loads(sys.argv[2]))); "
           "print(node.get_df_between_dates(start_date=dt.datetime(2024, 1, 2, tzinfo=dt.UTC)).height)")
    with FaultProxy(s3_server.endpoint_url) as proxy:
        options = {**lake.storage_options, "AWS_ENDPOINT_URL": proxy.endpoint_url}
        done = subprocess.run([sys.executable, "-c", job, lake.uri, json.dumps(options), str(Path(__file__).parent)],
                              capture_output=True, text=True, timeout=120, check=True)
        data = [path for method, path in proxy.requests if method == "GET" and path.split("?")[0].endswith(".parquet")
                and "/_lakenodes/" not in path and "/_catalog/" not in path]
    assert done.stdout.split()[-1] == str(2 * len(ASSETS))
    assert len(data) == len(ASSETS), f"{len(data)} data requests for {len(ASSETS)} files"


@pytest.mark.s3
def test_on_s3_files_read_before_are_left_to_pyarrow(s3_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    """polars reads files this process never read in fewer requests; pyarrow's scanner keeps the
    footers of what it read, and then reads each file in one request, faster than polars: a second
    read of the same files goes to pyarrow, and so does every later one. New files go to polars again."""
    node = FrameNode(FrameConfig(name="many_files"))
    node.run_with(rows(range(1, 4)))
    engines = []
    scan_many = table_scan.scan_many

    def recording(*args, **kwargs):
        result = scan_many(*args, **kwargs)
        engines.append("pyarrow" if result is None else "polars")
        return result

    monkeypatch.setattr(table_scan, "scan_many", recording)
    reads = [node.get_df_between_dates(start_date=day(2)) for _ in range(3)]
    node.run_with(rows(range(4, 5)))  # 40 new files
    reads.append(node.get_df_between_dates(start_date=day(4)))
    assert engines == ["polars", "pyarrow", "pyarrow", "polars"]
    assert reads[0].equals(reads[1]) and reads[1].equals(reads[2]) and reads[0].height == 2 * len(ASSETS)
    assert reads[3].height == len(ASSETS)

