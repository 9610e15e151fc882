"""Reads of a few small local files (an asset-scoped read) read each file whole and keep the rows of
the time window (see lakenodes/lake/_small_read.py): the same rows, columns and types as pyarrow's
dataset scanner, which every other read still uses."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from test_frames import FrameConfig, FrameNode
from test_polars_scan import ASSETS, day, rows

import lakenodes.lake._table_scan as table_scan
from lakenodes import Lake
from lakenodes.catalog.catalog import runs_ledger
from lakenodes.lake.pending import Pending
from lakenodes.lake.store import TableStore

FEW = ASSETS[:4]


@pytest.fixture
def few_files(local_lake: Lake) -> FrameNode:
    node = FrameNode(FrameConfig(name="few_files"))
    node.run_with(rows(range(1, 4), assets=FEW))
    node.run_with(rows(range(4, 7), assets=FEW))
    return node


def read_both(node: FrameNode, monkeypatch: pytest.MonkeyPatch, **read):
    """The read with whole files and with the scanner, and how many reads whole files answered."""
    answered = []
    whole = table_scan.read_whole_files

    def counting(*args, **kwargs):
        answered.append(1)
        return whole(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(table_scan, "read_whole_files", counting)
        fast = node.get_df_between_dates(**read)
    with monkeypatch.context() as patched:
        patched.setattr(table_scan, "SMALL_READ_BYTES", 0)
        plain = node.get_df_between_dates(**read)
    return fast, plain, len(answered)


READS = [
    {},
    {"start_date": day(3), "end_date": day(3)},
    {"start_date": day(2), "end_date": day(5), "great_or_equal": False, "less_or_equal": False},
    {"end_date": day(4), "unique_identifier_list": FEW[1:3]},
    {"start_date": day(2), "unique_identifier_list": [FEW[0]], "columns": ["note", "volume"]},
    {"columns": ["stamped", "settles", "halted"]},
    {"unique_identifier_list": ["not-there"]},
    {"unique_identifier_range_map": {FEW[0]: {"start_date": day(2), "start_date_operand": ">"},
                                     FEW[2]: {"end_date": day(3), "end_date_operand": "<="}}},
]


@pytest.mark.parametrize("read", READS, ids=[str(sorted(r)) + str(i) for i, r in enumerate(READS)])
def test_small_reads_match_the_scanner(few_files: FrameNode, monkeypatch: pytest.MonkeyPatch, read: dict) -> None:
    fast, plain, answered = read_both(few_files, monkeypatch, **read)
    assert fast.schema == plain.schema and fast.equals(plain)
    # a few ranges are one filter term each, more than a time window: the scanner reads them
    assert answered == (0 if "unique_identifier_range_map" in read else 1)
    assert fast.height > 0 or read.get("unique_identifier_list") == ["not-there"]


def test_files_rewritten_by_a_restatement_read_the_same(few_files: FrameNode, monkeypatch: pytest.MonkeyPatch) -> None:
    """delta-rs' MERGE writes string_view columns: read whole, they come back as plain strings."""
    few_files.run_with(rows(range(2, 3), assets=FEW, extra={"price": pa.scalar(-1.0).as_py()}))
    fast, plain, answered = read_both(few_files, monkeypatch, start_date=day(2), unique_identifier_list=FEW[:2])
    assert answered == 1 and fast.schema == plain.schema and fast.equals(plain)
    assert fast.filter(fast["time_index"] == day(2))["price"].unique().to_list() == [-1.0]


def test_a_column_another_engine_added_reads_as_nulls_from_older_files(few_files: FrameNode,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    newer = pa.Table.from_pylist([{"time_index": day(7), "unique_identifier": FEW[0], "extra": 5}],
                                 schema=pa.schema([("time_index", pa.timestamp("us", "UTC")),
                                                   ("unique_identifier", pa.string()), ("extra", pa.int64())]))
    write_deltalake(few_files.table_uri, newer, mode="append", schema_mode="merge")
    fast, plain, answered = read_both(few_files, monkeypatch, unique_identifier_list=[FEW[0]], columns=["extra"])
    assert answered == 1 and fast.equals(plain)
    assert fast["extra"].to_list() == [None] * 6 + [5]


def test_a_table_without_a_time_index_is_read_whole(local_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a catalog ledger (no time_index column) read with no bounds failed with
    ``KeyError: 'Column time_index does not exist in schema'``."""
    FrameNode(FrameConfig(name="ledger_read")).run_with(rows(range(1, 3), assets=FEW))
    monkeypatch.setenv("LAKENODES_CATALOG_FOLD_EVERY", "0")
    Pending(runs_ledger(local_lake)).fold()  # the run's record, from its pending file into the table
    answered = []
    whole = table_scan.read_whole_files
    monkeypatch.setattr(table_scan, "read_whole_files", lambda *a, **k: answered.append(1) or whole(*a, **k))
    read = TableStore(local_lake, "runs", uri=local_lake.catalog_uri("runs")).read()
    assert answered == [1] and read is not None and read.num_rows == 1 and "time_index" not in read.column_names
