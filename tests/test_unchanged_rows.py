"""Rows equal to the stored ones are never rewritten: a re-run of an idempotent job commits nothing,
and a restatement rewrites only the rows (and files) that change. null vs a value, NaN vs null and
-0.0 vs 0.0 are changes; NaN vs NaN is not (lakenodes.lake._same_rows)."""

from __future__ import annotations

import datetime as dt
import logging
import math

import polars as pl
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from test_time_travel import QueueNode

from lakenodes import DataNode, DataNodeConfiguration, TimeIndexMetaTable
from lakenodes.catalog import catalog
from lakenodes.lake.diff import diff_frames

UTC = dt.UTC
NAN = float("nan")


class SameConfig(DataNodeConfiguration):
    name: str = "same"


def day(d: int) -> dt.datetime:
    return dt.datetime(2024, 1, d, tzinfo=UTC)


def prices(rows, series: bool = False) -> pl.DataFrame:
    schema = {"time_index": pl.Datetime("us", "UTC"), "unique_identifier": pl.String, "close": pl.Float64,
              "note": pl.String}
    if series:
        schema.pop("unique_identifier")
    return pl.DataFrame(rows, schema=schema, orient="row")


def grid(days, uids, base=0.0) -> pl.DataFrame:
    return prices([(day(d), uid, base + d + k / 10, f"{uid}{d}") for d in days for k, uid in enumerate(uids)])


def files_of(node: DataNode) -> set[str]:
    return set(node.store.table().file_uris())


def summary_of(node: DataNode):
    _, summary = node.run(return_frames=False)
    return summary


@pytest.mark.parametrize("series", [False, True], ids=["per-asset", "single-index"])
def test_rerun_with_the_same_rows_commits_nothing(local_lake, caplog, series):
    first = grid([1, 2, 3], ["A", "B"]) if not series else prices([(day(d), d + 0.5, None) for d in (1, 2, 3)], True)
    node = QueueNode(SameConfig(name=f"same-{series}"), [first, first.clone(), first.sample(fraction=1.0, shuffle=True)])
    assert summary_of(node).rows_written == first.height
    table = TimeIndexMetaTable.get(storage_hash=node.storage_hash)
    version, history, files = node.store.table().version(), table.history(), files_of(node)
    for _ in range(2):  # the same rows, then in another order (a cron retry)
        with caplog.at_level(logging.INFO):
            summary = summary_of(node)
        assert (summary.rows_written, summary.rows_appended, summary.rows_upserted) == (0, 0, 0)
        assert summary.rows_unchanged == first.height and summary.table_version is None
        assert node.store.table().version() == version and table.history() == history and files_of(node) == files
        assert any("no changed rows" in r.getMessage() and f"the {first.height} rows" in r.getMessage()
                   for r in caplog.records)
    # regression: run() returned every row it was given although it persisted none
    node.frames.append(first.clone())
    error, written = node.run()
    assert error is False and written.height == 0 and written.columns == node.get_df_between_dates().columns
    runs = [run for run in catalog.run_history(local_lake, node.update_hash) if run["status"] == "success"]
    assert sorted(run["rows_written"] for run in runs) == [0, 0, 0, first.height]
    assert node.get_df_between_dates().height == first.height


def test_a_mix_rewrites_only_the_changed_rows_and_their_files(local_lake, caplog):
    node = QueueNode(SameConfig(), [grid([1, 2], ["A", "B", "C"])])
    node.run()
    version = node.store.table().version()
    untouched = {uri for uri in files_of(node) if "unique_identifier=B" in uri or "unique_identifier=C" in uri}
    mix = pl.concat([grid([1, 2], ["A", "B", "C"]).filter(pl.col("unique_identifier") != "A"),  # identical
                     prices([(day(2), "A", 99.0, "A2"),  # one value changed
                             (day(1), "A", 1.0, "A1"),  # identical
                             (day(3), "C", 3.2, "C3")])])  # new, after C's watermark
    node.frames.append(mix)
    with caplog.at_level(logging.INFO):
        summary = summary_of(node)
    assert (summary.rows_appended, summary.rows_upserted, summary.rows_unchanged) == (1, 1, 5)
    assert summary.table_version == version + 1 == node.store.table().version()
    assert any("wrote 2 rows (1 appended, 1 upserted; 5 unchanged rows left as stored)" in r.getMessage()
               for r in caplog.records)
    assert untouched <= files_of(node)  # B's files and C's old file were not rewritten
    table = TimeIndexMetaTable.get(storage_hash=node.storage_hash)
    change = table.diff(version, version + 1)
    assert change.summary() | {"from_version": 0, "to_version": 0} == {
        "from_version": 0, "to_version": 0, "added": 1, "deleted": 0, "changed": 1}
    assert change.changed.rows() == [(day(2), "A", 2.0, 99.0, "A2", "A2")]
    assert change.added.rows() == [(day(3), "C", 3.2, "C3")]
    assert table.history(limit=1)[0] | {"timestamp": None, "run_id": None, "update_hash": None} == {
        "version": version + 1, "timestamp": None, "operation": "upsert", "update_hash": None, "run_id": None,
        "rows_added": 1, "rows_updated": 1, "rows_deleted": 0}
    assert node.get_df_between_dates().height == 7
    # regression: run() returned the unchanged rows too, as if it had persisted them
    a_day_2 = (pl.col("unique_identifier") == "A") & (pl.col("time_index") == day(2))
    node.frames.append(mix.with_columns(close=pl.when(a_day_2).then(98.0).otherwise(pl.col("close"))))
    error, written = node.run()
    assert error is False and written.select("time_index", "unique_identifier", "close").rows() == [(day(2), "A", 98.0)]


CASES = [  # (stored close, stored note, new close, new note, rewritten)
    (1.0, "x", 1.0, "x", False),
    (NAN, "x", NAN, "x", False),  # NaN is NaN: unchanged
    (None, None, None, None, False),
    (1.0, "x", None, "x", True),  # value -> null
    (None, "x", 1.0, "x", True),  # null -> value
    (NAN, "x", None, "x", True),  # NaN -> null
    (None, "x", NAN, "x", True),
    (NAN, "x", 1.0, "x", True),
    (0.0, "x", -0.0, "x", True),  # the sign of zero counts
    (-0.0, "x", 0.0, "x", True),
    (-0.0, "x", -0.0, "x", False),
    (1.0, "x", 1.0, None, True),  # text: null -> value and back
    (1.0, None, 1.0, "", True),
    (1.0, "x", 1.0, "X", True),
]


@pytest.mark.parametrize(("old_close", "old_note", "new_close", "new_note", "rewritten"), CASES)
def test_null_nan_and_signed_zero(local_lake, old_close, old_note, new_close, new_note, rewritten):
    stored = prices([(day(1), "A", old_close, old_note), (day(2), "A", 5.0, "y")])
    node = QueueNode(SameConfig(), [stored, prices([(day(1), "A", new_close, new_note)])])
    node.run()
    version = node.store.table().version()
    summary = summary_of(node)
    assert (summary.rows_upserted, summary.rows_unchanged) == ((1, 0) if rewritten else (0, 1))
    assert node.store.table().version() == version + rewritten
    row = node.get_df_between_dates().row(0, named=True)
    if new_close is None or math.isnan(new_close):
        assert row["close"] is None if new_close is None else math.isnan(row["close"])
    else:
        assert row["close"] == new_close and math.copysign(1, row["close"]) == math.copysign(1, new_close)
    assert row["note"] == new_note
    if rewritten:  # and the diff of that version shows the row
        assert TimeIndexMetaTable.get(storage_hash=node.storage_hash).diff(version).summary()["changed"] == 1


def test_diff_frames_sees_a_flipped_zero_and_not_nan():
    before = pl.DataFrame({"time_index": [1, 2, 3], "close": [0.0, NAN, None]})
    after = pl.DataFrame({"time_index": [1, 2, 3], "close": [-0.0, NAN, None]})
    assert diff_frames(before, after, ["time_index"]).changed["time_index"].to_list() == [1]


@pytest.mark.parametrize("restated", [1.0, 5.0, 9.0], ids=["the first copy's", "the other copy's", "a new value"])
def test_an_index_stored_twice_by_another_engine_is_merged_to_one_row_whatever_the_value(local_lake, restated):
    """docs/interop.md: another engine's append at an existing index stores a second row, and the
    next lakenodes run restating it merges them. A restated value equal to one of the copies was
    taken for unchanged: nothing was committed and both rows stayed."""
    node = QueueNode(SameConfig(name=f"twice-{restated}"), [grid([1, 2], ["A"], base=0.0)])
    node.run()
    stored_day_1 = node.get_df_between_dates().filter(pl.col("time_index") == day(1))
    assert stored_day_1["close"].to_list() == [1.0]
    copy = stored_day_1.with_columns(close=pl.lit(5.0)).to_arrow()
    write_deltalake(node.table_uri, copy.cast(pa.schema(node.store.table().schema().to_arrow())), mode="append")
    assert node.get_df_between_dates().filter(pl.col("time_index") == day(1)).height == 2
    node.frames.append(stored_day_1.with_columns(close=pl.lit(restated)))
    summary = summary_of(node)
    assert (summary.rows_upserted, summary.rows_unchanged) == (1, 0)
    rows = node.get_df_between_dates().sort("time_index")
    assert rows.select("time_index", "close").rows() == [(day(1), restated), (day(2), 2.0)]


def test_a_restatement_is_written_whatever_the_value_columns_are_named(local_lake):
    """Regression: the stored values were compared under the names ``<column>__lakenodes_stored``; a
    table with columns ``close`` and ``close__lakenodes_stored`` (a valid name) compared the new ``close``
    with the new ``close__lakenodes_stored``, so a restatement that made them equal was dropped as
    "no changed rows" and the old values stayed."""
    rows = {"time_index": [day(1), day(2)], "unique_identifier": ["A", "A"]}
    first = pl.DataFrame({**rows, "close": [1.0, 2.0], "close__lakenodes_stored": [5.0, 6.0]})
    restated = pl.DataFrame({**rows, "close": [5.0, 6.0], "close__lakenodes_stored": [5.0, 6.0]})
    node = QueueNode(SameConfig(name="stored-suffix"), [first, restated])
    summary_of(node)
    assert summary_of(node).rows_written == 2
    stored = node.get_df_between_dates()
    assert stored["close"].to_list() == [5.0, 6.0] and stored["close__lakenodes_stored"].to_list() == [5.0, 6.0]


@pytest.mark.parametrize("dimension", ["_lo", "_hi"])
def test_a_restatement_is_written_whatever_the_partition_dimension_is_named(local_lake, dimension):
    """Regression: the files a restatement may rewrite were found by grouping its rows by the partition
    dimension beside bounds named "_lo" and "_hi", so a class with IDENTITY_DIMENSIONS = ("_lo",) (a valid
    name) failed every restatement in its write phase with polars' "DuplicateError: column with name
    '_lo' has more than one occurrence"."""
    node_class = type("PartitionNode", (QueueNode,), {"IDENTITY_DIMENSIONS": (dimension,)})

    def rows(close: float) -> pl.DataFrame:
        return pl.DataFrame({"time_index": [day(1), day(1), day(2)], dimension: ["A", "B", "A"], "close": [close] * 3})

    node = node_class(SameConfig(name=f"partition-{dimension}"), [rows(1.0), rows(2.0)])
    summary_of(node)
    assert summary_of(node).rows_written == 3
    assert node.get_df_between_dates()["close"].to_list() == [2.0, 2.0, 2.0]
