"""Plain string types in every file lakenodes writes, and reads that survive view-typed files.

delta-rs MERGE/DELETE write Parquet files whose embedded Arrow schema uses ``string_view``;
pyarrow then has no ``equal(string, string_view)`` kernel and daft refuses ``Utf8View``. So
lakenodes rewrites files itself (``lakenodes.lake._rewrite``), and its scans cast any legacy
view-typed file (``lakenodes.lake._scan``). Checked here on real Delta tables, locally and on a moto
S3 server, through lakenodes, polars ``scan_delta`` and DuckDB ``delta_scan``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, ClassVar
from urllib.parse import unquote

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError
from polars.testing import assert_frame_equal
from test_interop import QueuedNode

from lakenodes import DataNodeConfiguration, Lake
from lakenodes.lake.location import lake_filesystem
from lakenodes.lake.maintenance import optimize_table, vacuum_table
from lakenodes.lake.store import TableStore

UTC = dt.UTC
DIMS = {1: (), 2: ("unique_identifier",), 3: ("unique_identifier", "venue")}
UIDS = ("BRK/B", "é=1%")
VENUES = ("XNYS", "x y/z")
NOT_PLAIN = (pa.types.is_string_view, pa.types.is_large_string, pa.types.is_binary_view, pa.types.is_large_binary)
PYARROW_MAJOR = int(pa.__version__.split(".")[0])
SCHEMA = {"time_index": pl.Datetime("us", "UTC"), "value": pl.Float64, "note": pl.String}


class StringConfig(DataNodeConfiguration):
    levels: int


class VenueNode(QueuedNode):
    """Three index levels: the second identity column (``venue``) is stored in the data files."""

    IDENTITY_DIMENSIONS: ClassVar[tuple[str, ...]] = ("unique_identifier", "venue")


def make_node(levels: int) -> QueuedNode:
    return (VenueNode if levels == 3 else QueuedNode)(StringConfig(levels=levels))


def identities(levels: int) -> list[dict[str, str]]:
    if levels == 1:
        return [{}]
    if levels == 2:
        return [{"unique_identifier": uid} for uid in UIDS]
    return [{"unique_identifier": uid, "venue": venue} for uid in UIDS for venue in VENUES]


def day(n: int, us: int = 0) -> dt.datetime:
    return dt.datetime(2024, 1, n, 9, 30, 0, us, tzinfo=UTC)


def rows(levels: int, days: range, version: int) -> pl.DataFrame:
    """One row per day and identity; µs timestamps, a nullable string payload."""
    data = []
    for d in days:
        for k, identity in enumerate(identities(levels)):
            note = None if (d + k) % 3 == 0 else f"v{version} {'/'.join(identity.values())} d{d}"
            data.append({"time_index": day(d, us=1000 * k + 7), **identity, "value": d * 10.0 + k + version / 10,
                         "note": note})
    schema = {"time_index": SCHEMA["time_index"], **{dim: pl.String for dim in DIMS[levels]},
              "value": SCHEMA["value"], "note": SCHEMA["note"]}
    return pl.DataFrame(data, schema=schema)


def run(node: QueuedNode, frame: pl.DataFrame, model: pl.DataFrame | None) -> pl.DataFrame:
    """Write ``frame`` through ``node.run()``; return the model of the table afterwards."""
    node.pending = frame
    error, written = node.run()
    assert error is False and written.height == frame.height
    index = index_of(node)
    return frame if model is None else pl.concat([model.join(frame.select(index), on=index, how="anti"), frame])


def index_of(node: QueuedNode) -> list[str]:
    return list(node.store.index_names())


# -- what every file holds --------------------------------------------------------------------------
def live_files(lake: Lake, uri: str) -> list[str]:
    table = DeltaTable(uri, storage_options=lake.storage_options or None)
    return [unquote(path) for path in pa.table(table.get_add_actions(flatten=True)).column("path").to_pylist()]


def file_types(lake: Lake, uri: str) -> dict[str, dict[str, pa.DataType]]:
    """The embedded Arrow schema of every live data file: ``{path: {column: type}}``."""
    filesystem, root = lake_filesystem(lake, uri)
    types = {}
    for path in live_files(lake, uri):
        with filesystem.open_input_file(f"{root}/{path}") as handle:
            schema = pq.read_schema(handle)
        types[path] = {field.name: field.type for field in schema}
    return types


def assert_all_plain(lake: Lake, uri: str, what: str) -> None:
    types = file_types(lake, uri)
    assert types, f"{what}: no data files"
    bad = {path: {c: str(t) for c, t in cols.items() if any(check(t) for check in NOT_PLAIN)}
           for path, cols in types.items()}
    bad = {path: cols for path, cols in bad.items() if cols}
    assert not bad, f"{what}: files with non-plain types {bad}"
    for path, cols in types.items():
        assert cols["time_index"] == pa.timestamp("us", "UTC"), (what, path, cols["time_index"])


def last_operation(lake: Lake, uri: str) -> str:
    """What the latest commit did: lakenodes names its own rewrites (Delta calls them all WRITE)."""
    filesystem, root = lake_filesystem(lake, uri)
    version = DeltaTable(uri, storage_options=lake.storage_options or None).version()
    with filesystem.open_input_stream(f"{root}/_delta_log/{version:020d}.json") as stream:
        actions = [json.loads(line) for line in stream.read().decode().splitlines() if line.strip()]
    info = next(action["commitInfo"] for action in actions if "commitInfo" in action)
    return info.get("lakenodes.operation", info["operation"])


# -- every read ---------------------------------------------------------------------------------------
def same(got: pl.DataFrame, expected: pl.DataFrame, index: list[str], what: str) -> None:
    assert sorted(got.columns) == sorted(expected.columns), f"{what}: columns {got.columns} != {expected.columns}"
    try:
        assert_frame_equal(got.select(expected.columns).sort(index), expected.sort(index), check_exact=True)
    except AssertionError as error:
        raise AssertionError(f"{what}: {error}") from None


def last_rows(model: pl.DataFrame, dims: list[str]) -> pl.DataFrame:
    if not dims:
        return model.sort("time_index").tail(1)
    return model.sort("time_index").group_by(dims, maintain_order=True).last()


def check_reads(node: QueuedNode, lake: Lake, model: pl.DataFrame, duck: Any, stage: str) -> None:
    """lakenodes (every filter kind), polars ``scan_delta`` and DuckDB ``delta_scan`` read ``model``."""
    index = index_of(node)
    dims = index[1:]
    what = f"{stage}, {len(index)} level(s)"
    same(node.get_df_between_dates(), model, index, f"{what}: all rows")
    start, end = day(2), day(4, us=999_999)
    window = model.filter(pl.col("time_index").is_between(start, end))
    same(node.get_df_between_dates(start, end), window, index, f"{what}: time window")
    same(node.get_df_between_dates(columns=["value"]), model.select(*index, "value"), index, f"{what}: columns")
    same(node.get_last_observation(), last_rows(model, dims), index, f"{what}: last observation")
    if dims:
        uid = UIDS[1]
        by_uid = model.filter(pl.col("unique_identifier") == uid)
        same(node.get_df_between_dates(unique_identifier_list=[uid]), by_uid, index, f"{what}: unique_identifier_list")
        same(node.get_df_between_dates(start, end, unique_identifier_list=[uid], columns=["note"]),
             window.filter(pl.col("unique_identifier") == uid).select(*index, "note"), index,
             f"{what}: unique_identifier_list + window + columns")
        ranged = model.filter((pl.col("unique_identifier") == uid) & (pl.col("time_index") >= start))
        same(node.get_df_between_dates(unique_identifier_range_map={uid: {"start_date": start,
                                                                             "start_date_operand": ">="}}),
             ranged, index, f"{what}: unique_identifier_range_map")
        same(node.get_last_observation(asset_list=[uid]), last_rows(by_uid, dims), index,
             f"{what}: last observation of one asset")
    for dim in dims:  # the second identity column of a 3-level table is the one stored in the files
        value = model[dim].sort()[-1]
        same(node.get_df_between_dates(dimension_filters={dim: [value]}), model.filter(pl.col(dim) == value),
             index, f"{what}: dimension_filters on {dim}")
    if dims:
        coordinate = identities(len(index))[-1]
        scoped = model.filter(pl.all_horizontal([pl.col(d) == v for d, v in coordinate.items()]))
        same(node.get_df_between_dates(dimension_range_map=[{"coordinate": coordinate, "start_date": start,
                                                               "start_date_operand": ">"}]),
             scoped.filter(pl.col("time_index") > start), index, f"{what}: dimension_range_map")
    same(pl.scan_delta(node.table_uri, storage_options=lake.storage_options or None).collect(), model, index,
         f"{what}: polars scan_delta")
    escaped = node.table_uri.replace("'", "''")
    ducked = pl.from_arrow(duck.execute(f"SELECT * FROM delta_scan('{escaped}')").to_arrow_table())
    same(ducked, model, index, f"{what}: duckdb delta_scan")


LAKES_AND_LEVELS = pytest.mark.parametrize(
    ("any_lake", "levels"),
    [pytest.param("local", n, id=f"local-{n}") for n in (1, 2, 3)]
    + [pytest.param("s3", n, id=f"s3-{n}", marks=[pytest.mark.s3, pytest.mark.slow]) for n in (1, 2, 3)],
    indirect=["any_lake"],
)


# -- the matrix: {append, MERGE restatement, tail delete, optimize, vacuum} x levels x lakes ------------
@LAKES_AND_LEVELS
def test_every_write_leaves_plain_strings_and_every_read_works(any_lake: Lake, levels: int, duck) -> None:
    node = make_node(levels)
    index = ["time_index", *DIMS[levels]]
    uri = node.table_uri
    stages = []

    model = run(node, rows(levels, range(1, 4), version=1), None)
    model = run(node, rows(levels, range(4, 6), version=1), model)
    assert last_operation(any_lake, uri) == "WRITE"
    stages.append(("append", model))
    check_reads(node, any_lake, model, duck, "append")
    assert_all_plain(any_lake, uri, "append")

    model = run(node, rows(levels, range(2, 7), version=2), model)  # restates days 2-5, adds day 6
    assert last_operation(any_lake, uri) == "MERGE"
    check_reads(node, any_lake, model, duck, "restatement")
    assert_all_plain(any_lake, uri, "restatement")

    store = TableStore(any_lake, node.storage_hash)
    cut = day(6)
    assert store.delete_after(cut) == model.filter(pl.col("time_index") >= cut).height > 0
    model = model.filter(pl.col("time_index") < cut)
    if levels > 1:  # a scoped tail delete of one coordinate
        coordinate, cut = identities(levels)[-1], day(4)
        scoped = pl.all_horizontal([pl.col(d) == v for d, v in coordinate.items()]) & (pl.col("time_index") >= cut)
        assert store.delete_after(cut, coordinates=[coordinate]) == model.filter(scoped).height > 0
        model = model.filter(~scoped)
    assert last_operation(any_lake, uri) == "DELETE"
    check_reads(node, any_lake, model, duck, "tail delete")
    assert_all_plain(any_lake, uri, "tail delete")

    model = run(node, rows(levels, range(6, 8), version=3), model)  # an append: more than one file to compact
    files_before = len(live_files(any_lake, uri))
    result = optimize_table(any_lake, node.storage_hash)
    assert result["files_removed"] > 0 and len(live_files(any_lake, uri)) < files_before
    check_reads(node, any_lake, model, duck, "optimize")
    assert_all_plain(any_lake, uri, "optimize")

    assert vacuum_table(any_lake, node.storage_hash, retention_hours=0, force_unsafe_retention=True)["file_count"] > 0
    check_reads(node, any_lake, model, duck, "vacuum")
    assert_all_plain(any_lake, uri, "vacuum")
    assert model.select(index).is_duplicated().sum() == 0


# -- tables that already hold string_view files (older lakenodes, other delta-rs writers) --------------
def merge_with_delta_rs(lake: Lake, node: QueuedNode, frame: pl.DataFrame) -> None:
    """Restate ``frame`` with delta-rs MERGE directly, as lakenodes before this fix did."""
    index = index_of(node)
    table = DeltaTable(node.table_uri, storage_options=lake.storage_options or None)
    predicate = " AND ".join(f"t.{name} = s.{name}" for name in index)
    (table.merge(frame.to_arrow(), predicate=predicate, source_alias="s", target_alias="t")
     .when_matched_update_all().when_not_matched_insert_all().execute())


def view_files(lake: Lake, uri: str) -> list[str]:
    return [path for path, cols in file_types(lake, uri).items() if any(pa.types.is_string_view(t) for t in cols.values())]


@pytest.mark.parametrize("any_lake", ["local", pytest.param("s3", marks=[pytest.mark.s3, pytest.mark.slow])],
                         indirect=True)
@pytest.mark.parametrize("levels", [2, 3])
def test_legacy_string_view_files_are_readable_and_repaired(any_lake: Lake, levels: int, duck) -> None:
    node = make_node(levels)
    model = run(node, rows(levels, range(1, 5), version=1), None)
    restated = rows(levels, range(2, 4), version=9)
    merge_with_delta_rs(any_lake, node, restated)
    index = index_of(node)
    model = pl.concat([model.join(restated.select(index), on=index, how="anti"), restated])
    if PYARROW_MAJOR >= 20:  # pyarrow 19 (tried here) reads delta-rs's Utf8View columns as plain strings
        assert view_files(any_lake, node.table_uri), "precondition: delta-rs MERGE wrote string_view files"

    check_reads(node, any_lake, model, duck, "legacy MERGE file")
    fresh = make_node(levels)  # statistics from the table as it is (a new process would do the same)
    progress = fresh.compute_update_statistics().index_progress
    assert progress == {uid: ({v: day(4, us=1000 * k + 7) for k, v in enumerate(VENUES, start=2 * i)} if levels == 3
                              else day(4, us=1000 * i + 7)) for i, uid in enumerate(UIDS)}

    model = run(node, rows(levels, range(3, 6), version=3), model)  # a lakenodes restatement over them
    check_reads(node, any_lake, model, duck, "restatement over legacy files")
    store = TableStore(any_lake, node.storage_hash)
    assert store.delete_after(day(5)) == model.filter(pl.col("time_index") >= day(5)).height
    model = model.filter(pl.col("time_index") < day(5))
    check_reads(node, any_lake, model, duck, "tail delete over legacy files")

    merge_with_delta_rs(any_lake, node, rows(levels, range(1, 2), version=4))  # one more legacy file
    model = pl.concat([model.filter(pl.col("time_index") >= day(2)), rows(levels, range(1, 2), version=4)])
    assert view_files(any_lake, node.table_uri) or PYARROW_MAJOR < 20
    optimize_table(any_lake, node.storage_hash)
    assert_all_plain(any_lake, node.table_uri, "optimize over legacy files")
    check_reads(node, any_lake, model, duck, "optimize over legacy files")


# -- concurrency: the rewrite commits conflict where they must ------------------------------------------
def stale(lake: Lake, uri: str, version: int) -> DeltaTable:
    return DeltaTable(uri, storage_options=lake.storage_options or None, version=version)


def test_racing_rewrites_and_appends_of_one_partition_conflict(local_lake: Lake) -> None:
    """A restatement prepared on a snapshot that a concurrent restatement, tail delete or append of
    the same partition moved past fails to commit (and the retry then decides afresh)."""
    from lakenodes.core.frames import normalize_frame
    from lakenodes.lake._row_rewrites import restate

    node = make_node(2)
    model = run(node, rows(2, range(1, 5), version=1), None)
    store = TableStore(local_lake, node.storage_hash)
    uri = node.table_uri
    def restating(version: int):
        return normalize_frame(rows(2, range(2, 3), version=version).filter(pl.col("unique_identifier") == UIDS[0]),
                               (), None)

    # the losers restate other values than the winner's: rows equal to the stored ones commit nothing at all
    restatement, other = restating(5), restating(6)

    base = store.table().version()
    restate(local_lake, store.table(), restatement, "winner-1", {})  # the same rows, restated concurrently
    with pytest.raises(CommitFailedError):
        restate(local_lake, stale(local_lake, uri, base), restatement, "loser-1", {})
    assert restate(local_lake, store.table(), restatement, "same-1", {}).true_count == restatement.num_rows and store.table().version() == base + 1

    base = store.table().version()
    store.delete_after(day(4), dimension_filters={"unique_identifier": [UIDS[0]]})
    with pytest.raises(CommitFailedError):
        restate(local_lake, stale(local_lake, uri, base), other, "loser-2", {})

    base = store.table().version()
    late = normalize_frame(rows(2, range(7, 8), version=1).filter(pl.col("unique_identifier") == UIDS[0]), (), None)
    txns = [Transaction("append-1", 1), *store_identity_txns(late)]
    write_deltalake(store.table(), late.table, mode="append", commit_properties=CommitProperties(app_transactions=txns))
    with pytest.raises(CommitFailedError):
        restate(local_lake, stale(local_lake, uri, base), other, "loser-3", {})

    # nothing the losers wrote is visible, nothing lost or duplicated
    restated = pl.from_arrow(restatement.table)
    model = pl.concat([model.join(restated.select(index_of(node)), on=index_of(node), how="anti"), restated])
    model = model.filter(~((pl.col("unique_identifier") == UIDS[0]) & (pl.col("time_index") >= day(4))))
    model = pl.concat([model, pl.from_arrow(late.table)])
    same(node.get_df_between_dates(), model, index_of(node), "after the races")
    assert_all_plain(local_lake, uri, "after the races")


def store_identity_txns(frame: Any) -> list[Transaction]:
    from lakenodes.lake.store import partition_transactions

    return partition_transactions(sorted(set(frame.table.column("unique_identifier").to_pylist())))
