"""Reads of many files filtered by time (and by the files' identities) go through polars' Parquet reader on a local lake
(see lakenodes/lake/_polars_scan.py): the same rows, columns and types as pyarrow's scanner, which
every other read (and any read polars cannot make the same way) still uses."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
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
def many_files(local_lake: Lake) -> FrameNode:
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


@pytest.mark.parametrize("window", WINDOWS, ids=[str(sorted(w)) + str(i) for i, w in enumerate(WINDOWS)])
def test_time_window_reads_match_pyarrow(many_files: FrameNode, monkeypatch: pytest.MonkeyPatch, window: dict) -> None:
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


def test_identifiers_with_path_characters_read_the_same(local_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
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
