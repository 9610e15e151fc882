"""Interop: every lakenodes table is plain Delta that DuckDB reads exactly and Spark can read.

DuckDB reads through its ``delta`` extension (``delta_scan``). The extension binary comes from
PyPI (``duckdb-extension-delta``, plus ``duckdb-extension-httpfs`` for S3), pinned with the
matching ``duckdb`` in the ``test`` extra and loaded by path, so nothing is downloaded from
DuckDB's extension server. Spark cannot run here (no JVM, no Maven), so what a Spark reader
needs is checked on the Delta log itself: protocol reader 1 / writer 2 with no table features,
``time_index`` as ``timestamp`` (µs, UTC).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote

import polars as pl
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from polars.testing import assert_frame_equal

from lakenodes import (
    Asset,
    DataNode,
    DataNodeConfiguration,
    DataNodeMetaData,
    Lake,
    NodeRunError,
    TimeIndexMetaTable,
)
from lakenodes.lake.store import TableStore

UTC = dt.UTC
# Identifiers that need care in Hive folder names and URLs (delta-rs percent-encodes all but A-Z a-z 0-9 - . _ ~):
# readers must take them from the log, decode a folder name once, and never infer a type from it.
UIDS = ("BRK/B", "A B", "é=1%", "日本", "x'y", "a=b/c",  # / space, non-ASCII, = %, quotes
        "BRK.B", "#1", "?", "+", "-1", "037833100", "A%20B")  # URL-special, a leading -, numeric-looking, encoded-looking
PORTFOLIOS = ("PF/1", "pf 2=x%")
ENTITIES = ("BRK/B", "A B", "é=1%")
KINDS = ("series", "asset", "portfolio")
DIMENSIONS = {"series": (), "asset": ("unique_identifier",), "portfolio": ("portfolio_uid", "entity_uid")}
VALUE_SCHEMA = {
    "close": pl.Float64, "volume": pl.Int64, "flag": pl.Boolean, "note": pl.String,
    "as_of": pl.Datetime("us", "UTC"), "day": pl.Date,
}
# any_lake's own two lakes, with the S3 one marked ``s3``
ANY_LAKE = pytest.mark.parametrize(
    "any_lake", ["local", pytest.param("s3", marks=pytest.mark.s3)], indirect=True
)
# Table properties that turn on a Delta feature Spark would need a newer protocol (or a feature) for.
FEATURE_PROPERTIES = {
    "delta.enableDeletionVectors", "delta.columnMapping.mode", "delta.enableChangeDataFeed",
    "delta.enableRowTracking", "delta.enableTypeWidening", "delta.checkpointPolicy",
    "delta.enableInCommitTimestamps", "delta.enableIcebergCompatV1", "delta.enableIcebergCompatV2",
}


# -- the DataNodes: one per index shape ------------------------------------------------------------
class InteropConfig(DataNodeConfiguration):
    kind: str


class QueuedNode(DataNode):
    """Writes the batch the test queued in ``pending`` (an empty frame when none)."""

    pending: Any = None

    def dependencies(self) -> dict:
        return {}

    def update(self) -> Any:
        batch, self.pending = self.pending, None
        return pl.DataFrame() if batch is None else batch


class SeriesNode(QueuedNode):
    """One index level: ``time_index``."""


class AssetNode(QueuedNode):
    """Two index levels: ``time_index``, ``unique_identifier`` (taken from the frame's columns)."""


class PortfolioNode(QueuedNode):
    """Three index levels: ``time_index``, ``portfolio_uid``, ``entity_uid``."""

    IDENTITY_DIMENSIONS: ClassVar[tuple[str, ...]] = ("portfolio_uid", "entity_uid")


NODE_CLASSES = {"series": SeriesNode, "asset": AssetNode, "portfolio": PortfolioNode}


def make_node(kind: str) -> QueuedNode:
    metadata = DataNodeMetaData(identifier=f"interop_{kind}", description=f"interop {kind} table")
    return NODE_CLASSES[kind](InteropConfig(kind=kind, node_metadata=metadata))


def identities(kind: str) -> list[dict[str, str]]:
    if kind == "series":
        return [{}]
    if kind == "asset":
        return [{"unique_identifier": uid} for uid in UIDS]
    return [{"portfolio_uid": p, "entity_uid": e} for p in PORTFOLIOS for e in ENTITIES]


def batch(kind: str, days: range, version: int,
          identities_of: Callable[[str], list[dict[str, str]]] | None = None) -> pl.DataFrame:
    """Rows for ``days`` of every identity (``identities_of(kind)``, this module's ``identities``
    by default): µs timestamps, NaN, nulls (of text and of booleans), every value dtype."""
    rows = []
    for day in days:
        for k, identity in enumerate((identities_of or identities)(kind)):
            stamp = dt.datetime(2024, 1, day, 9, 30, tzinfo=UTC) + dt.timedelta(microseconds=100_003 * k + day)
            rows.append({
                "time_index": stamp, **identity,
                "close": math.nan if (day + k) % 5 == 0 else day * 10 + k + version / 10,
                "volume": day * 100 + k + version,
                "flag": None if (day + k) % 7 == 3 else (day + k + version) % 2 == 0,  # Dask once read these as text
                "note": None if (day + k) % 4 == 0 else f"v{version} {identity} d{day}",
                "as_of": stamp + dt.timedelta(hours=version, microseconds=7),
                "day": dt.date(2024, 1, day),
            })
    schema = {"time_index": pl.Datetime("us", "UTC"), **{d: pl.String for d in DIMENSIONS[kind]}, **VALUE_SCHEMA}
    return pl.DataFrame(rows, schema=schema)


# -- the life of a table: writes, restatements, tail deletes, maintenance ------------------------
@dataclass
class Stage:
    name: str
    node: QueuedNode
    index: list[str]
    expected: pl.DataFrame  # what the table must hold now (an independent model of the writes)


def write(node: QueuedNode, rows: pl.DataFrame, model: pl.DataFrame | None, index: list[str]) -> pl.DataFrame:
    """Run ``node`` on ``rows``; return the model of the table afterwards (restated rows replaced)."""
    node.pending = rows
    err, written = node.run()
    assert err is False and written.height == rows.height
    if model is None:
        return rows
    return pl.concat([model.join(rows.select(index), on=index, how="anti"), rows])


def last_operation(lake: Lake, uri: str) -> str:
    """The operation of the table's latest commit, read from its ``_delta_log`` (``DeltaTable.history``
    holds the GIL while it lists S3, which deadlocks against the in-process moto server)."""
    fs, _ = filesystem(lake)
    actions, _ = read_log(fs, uri.split("://", 1)[-1])
    info = [action["commitInfo"] for action in actions if "commitInfo" in action][-1]
    return info.get("lakenodes.operation", info["operation"])  # lakenodes commits its own MERGE/DELETE rewrites


def stages(lake: Lake, kind: str) -> Iterator[Stage]:
    """Drive one table through every kind of commit lakenodes and its maintenance make."""
    node, index = make_node(kind), ["time_index", *DIMENSIONS[kind]]
    model = write(node, batch(kind, range(1, 4), version=1), None, index)
    yield Stage("first write", node, index, model)

    model = write(node, batch(kind, range(4, 6), version=1), model, index)
    assert last_operation(lake, node.table_uri) == "WRITE"  # newer rows: a blind append
    yield Stage("append", node, index, model)

    model = write(node, batch(kind, range(3, 7), version=2), model, index)  # restates days 3-5, adds 6
    assert last_operation(lake, node.table_uri) == "MERGE"
    yield Stage("upsert", node, index, model)

    store = TableStore(lake, node.storage_hash)
    cut = dt.datetime(2024, 1, 6, tzinfo=UTC)
    assert store.delete_after(cut) == model.filter(pl.col("time_index") >= cut).height > 0
    model = model.filter(pl.col("time_index") < cut)
    if DIMENSIONS[kind]:  # a scoped tail delete of one identity coordinate
        coordinate, cut = identities(kind)[0], dt.datetime(2024, 1, 4, tzinfo=UTC)
        scoped = pl.all_horizontal([pl.col(d) == v for d, v in coordinate.items()]) & (pl.col("time_index") >= cut)
        assert store.delete_after(cut, coordinates=[coordinate]) == model.filter(scoped).height > 0
        model = model.filter(~scoped)
    assert last_operation(lake, node.table_uri) == "DELETE"
    yield Stage("tail delete", node, index, model)

    model = write(node, batch(kind, range(6, 8), version=3), model, index)
    assert last_operation(lake, node.table_uri) == "WRITE"
    yield Stage("append after delete", node, index, model)

    table = DeltaTable(node.table_uri, storage_options=lake.storage_options or None)
    assert table.optimize.compact()["numFilesRemoved"] > 0
    yield Stage("compaction", node, index, model)

    table = DeltaTable(node.table_uri, storage_options=lake.storage_options or None)
    table.create_checkpoint()
    assert table.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    yield Stage("checkpoint + vacuum", node, index, model)


STAGE_NAMES = ["first write", "append", "upsert", "tail delete", "append after delete", "compaction",
               "checkpoint + vacuum"]


# -- DuckDB ----------------------------------------------------------------------------------------
def extension_path(name: str) -> Path:
    """The extension binary shipped by the PyPI package ``duckdb-extension-<name>`` for this duckdb."""
    import importlib

    import duckdb

    try:
        package = importlib.import_module(f"duckdb_extension_{name}")
    except ImportError:
        pytest.skip(f"duckdb-extension-{name} is not installed (pip install -e '.[test]'); "
                    "DuckDB cannot download extensions on this machine")
    folder = Path(package.__file__).parent / "extensions"
    path = folder / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.exists():
        shipped = sorted(p.name for p in folder.iterdir())
        pytest.skip(f"duckdb-extension-{name} ships {shipped} but duckdb is {duckdb.__version__}: "
                    "install the matching pair pinned in pyproject.toml's test extra")
    return path


def s3_secret_sql(options: dict[str, str]) -> str:
    scheme, endpoint = options["AWS_ENDPOINT_URL"].split("://", 1)
    return (
        f"CREATE OR REPLACE SECRET lake_s3 (TYPE s3, KEY_ID '{options['AWS_ACCESS_KEY_ID']}', "
        f"SECRET '{options['AWS_SECRET_ACCESS_KEY']}', ENDPOINT '{endpoint.rstrip('/')}', URL_STYLE 'path', "
        f"USE_SSL {str(scheme == 'https').lower()}, REGION '{options.get('AWS_REGION', 'us-east-1')}')"
    )


def delta_scan(con, uri: str) -> pl.DataFrame:
    escaped = uri.replace("'", "''")
    return pl.from_arrow(con.execute(f"SELECT * FROM delta_scan('{escaped}')").to_arrow_table())


def assert_same_rows(got: pl.DataFrame, expected: pl.DataFrame, sort_by: list[str], what: str) -> None:
    """Same columns and, sorted, exactly the same rows and dtypes (µs timestamps, NaN, nulls)."""
    assert sorted(got.columns) == sorted(expected.columns), f"{what}: columns {got.columns} != {expected.columns}"
    try:
        assert_frame_equal(got.select(expected.columns).sort(sort_by), expected.sort(sort_by), check_exact=True)
    except AssertionError as error:
        raise AssertionError(f"{what}: {error}") from None


@ANY_LAKE
@pytest.mark.parametrize("kind", KINDS)
def test_delta_scan_reads_exactly_what_lakenodes_reads(any_lake: Lake, duck, kind: str) -> None:
    seen = []
    for stage in stages(any_lake, kind):
        ours = stage.node.get_df_between_dates()
        assert list(ours.columns[: len(stage.index)]) == stage.index
        assert_same_rows(ours, stage.expected, stage.index, f"lakenodes after {stage.name}")
        assert_same_rows(delta_scan(duck, stage.node.table_uri), ours, stage.index, f"delta_scan after {stage.name}")
        seen.append(stage.name)
    assert seen == STAGE_NAMES
    # µs and the awkward identifiers really went through (not just equal on both sides by accident)
    final = delta_scan(duck, stage.node.table_uri)
    assert final["time_index"].dt.microsecond().n_unique() > 1
    for dim in DIMENSIONS[kind]:
        assert set(final[dim]) == {v for identity in identities(kind) for k, v in identity.items() if k == dim}


@ANY_LAKE
def test_catalog_tables_read_by_delta_scan(any_lake: Lake, duck) -> None:
    nodes = {kind: make_node(kind) for kind in KINDS}
    for kind, node in nodes.items():
        write(node, batch(kind, range(1, 3), version=1), None, [])
    failing = make_node("series")
    failing.pending = "not a frame"
    with pytest.raises(NodeRunError):
        failing.run()  # leaves an error row in _catalog/runs
    Asset.batch_get_or_register_custom_assets(
        [{"unique_identifier": uid, "snapshot": {"ticker": uid, "name": f"asset {uid}"}} for uid in UIDS]
    )

    catalog_tables = [uri for uri in delta_tables(any_lake) if "/_catalog/" in uri]
    for name in ("tables", "updates", "runs", "assets"):
        assert any_lake.catalog_uri(name) in catalog_tables
    for uri in catalog_tables:  # includes the identifier claims; lakenodes reads them through deltalake
        ours = pl.from_arrow(DeltaTable(uri, storage_options=any_lake.storage_options or None).to_pyarrow_table())
        assert_same_rows(delta_scan(duck, uri), ours, sorted(ours.columns), uri)

    runs = delta_scan(duck, any_lake.catalog_uri("runs"))
    assert set(runs["status"]) == {"success", "error"}
    for kind, node in nodes.items():
        uri = TimeIndexMetaTable.get(identifier=f"interop_{kind}").table_uri
        assert uri == node.table_uri
        found = duck.execute(
            f"SELECT table_uri FROM delta_scan('{any_lake.catalog_uri('tables')}') WHERE identifier = ?",
            [f"interop_{kind}"],
        ).fetchall()
        assert {row[0] for row in found} == {uri}
        assert_same_rows(delta_scan(duck, uri), node.get_df_between_dates(), ["time_index", *DIMENSIONS[kind]], uri)


# -- Spark: the Delta log itself --------------------------------------------------------------------
def filesystem(lake: Lake) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem for the lake and the root path inside it (no deltalake involved)."""
    if lake.is_local:
        return pafs.LocalFileSystem(), lake.uri
    options = lake.storage_options
    scheme, endpoint = options["AWS_ENDPOINT_URL"].split("://", 1)
    fs = pafs.S3FileSystem(
        access_key=options["AWS_ACCESS_KEY_ID"], secret_key=options["AWS_SECRET_ACCESS_KEY"],
        region=options.get("AWS_REGION", "us-east-1"), endpoint_override=endpoint, scheme=scheme,
    )
    return fs, lake.uri.split("://", 1)[1]


def delta_tables(lake: Lake) -> list[str]:
    """URIs of every Delta table under the lake root (every folder holding a ``_delta_log``)."""
    fs, root = filesystem(lake)
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    logs = {info.path.rsplit("/_delta_log/", 1)[0] for info in infos if "/_delta_log/" in info.path}
    prefix = "" if lake.is_local else lake.uri.split("://", 1)[0] + "://"
    return sorted(prefix + path for path in logs)


def read_log(fs: pafs.FileSystem, table_path: str) -> tuple[list[dict], list[dict]]:
    """Every action of the JSON commits (in order) and every row of the checkpoints."""
    entries = fs.get_file_info(pafs.FileSelector(f"{table_path}/_delta_log"))
    commits = sorted(e.path for e in entries if e.path.endswith(".json") and e.base_name[:20].isdigit())
    actions = []
    for path in commits:
        with fs.open_input_stream(path) as stream:
            actions += [json.loads(line) for line in stream.read().decode().splitlines() if line.strip()]
    checkpoint_rows = []
    for entry in entries:
        if ".checkpoint" in entry.base_name and entry.base_name.endswith(".parquet"):
            with fs.open_input_file(entry.path) as handle:
                checkpoint_rows += pq.read_table(handle).to_pylist()
    return actions, checkpoint_rows


def field_types(schema: dict) -> Iterator[tuple[str, Any, dict]]:
    for field in schema["fields"]:
        yield field["name"], field["type"], field.get("metadata", {})


def assert_plain_delta(fs: pafs.FileSystem, table_path: str) -> None:
    """What Spark (delta-spark 3.x/4.x) needs: reader 1 / writer 2, no features, UTC µs timestamps."""
    actions, checkpoint_rows = read_log(fs, table_path)
    protocols = [a["protocol"] for a in actions if "protocol" in a]
    protocols += [row["protocol"] for row in checkpoint_rows if row.get("protocol")]
    assert protocols, f"{table_path}: no protocol action"
    for protocol in protocols:
        features = {k: v for k, v in protocol.items() if k not in ("minReaderVersion", "minWriterVersion")}
        assert (protocol["minReaderVersion"], protocol["minWriterVersion"]) == (1, 2), (table_path, protocol)
        assert not any(features.values()), f"{table_path}: table features {features}"

    metadatas = [a["metaData"] for a in actions if "metaData" in a]
    assert metadatas, f"{table_path}: no metaData action"
    for metadata in metadatas:
        enabled = FEATURE_PROPERTIES & set(metadata.get("configuration") or {})
        assert not enabled, f"{table_path}: feature properties {enabled}"
        schema = json.loads(metadata["schemaString"])
        assert "timestamp_ntz" not in metadata["schemaString"], table_path
        for name, kind, field_metadata in field_types(schema):
            assert isinstance(kind, str), f"{table_path}: nested column {name}"
            assert not [k for k in field_metadata if k.startswith("delta.")], f"{table_path}: {name} {field_metadata}"
    latest = json.loads(metadatas[-1]["schemaString"])
    types = {name: kind for name, kind, _ in field_types(latest)}
    if "/tables/" in table_path:
        assert types["time_index"] == "timestamp", table_path

    for action in actions:
        for key in ("add", "remove"):
            assert not (action.get(key) or {}).get("deletionVector"), f"{table_path}: deletion vector in {action}"

    live: dict[str, dict] = {}  # replay adds and removes: the files a reader must read now
    for action in actions:
        if "add" in action:
            live[action["add"]["path"]] = action["add"]
        elif "remove" in action:
            live.pop(action["remove"]["path"], None)
    partition_columns = metadatas[-1]["partitionColumns"]
    timestamp_columns = [name for name, kind in types.items() if kind == "timestamp" and name not in partition_columns]
    for path, add in live.items():
        assert set(add["partitionValues"]) == set(partition_columns), f"{table_path}: {add}"
        with fs.open_input_file(f"{table_path}/{unquote(path)}") as handle:
            parquet_schema = pq.ParquetFile(handle).schema
        for column in timestamp_columns:
            logical = json.loads(parquet_schema.column(parquet_schema.names.index(column)).logical_type.to_json())
            assert logical["Type"] == "Timestamp" and logical["timeUnit"] == "microseconds", (path, column, logical)
            assert logical["isAdjustedToUTC"] is True, (path, column, logical)


@ANY_LAKE
def test_every_table_is_plain_delta_that_spark_reads(any_lake: Lake, monkeypatch) -> None:
    monkeypatch.setenv("LAKENODES_CATALOG_FOLD_EVERY", "1")  # every run in the Delta table of _catalog/runs at once
    nodes = {kind: [stage for stage in stages(any_lake, kind)][-1].node for kind in KINDS}
    Asset.batch_get_or_register_custom_assets([{"unique_identifier": uid} for uid in UIDS])
    fs, _ = filesystem(any_lake)
    tables = delta_tables(any_lake)
    catalog = {any_lake.catalog_uri(name) for name in ("tables", "updates", "runs", "assets")}
    expected = {node.table_uri for node in nodes.values()} | catalog
    assert expected <= set(tables)
    assert any("/_catalog/claims/" in uri for uri in tables)
    for uri in tables:
        assert_plain_delta(fs, uri.split("://", 1)[1] if "://" in uri else uri)
    for kind, node in nodes.items():  # partitioned by the first identity dimension, series not at all
        log_path = node.table_uri.split("://", 1)[-1]
        metadata = [a["metaData"] for a in read_log(fs, log_path)[0] if "metaData" in a][-1]
        assert metadata["partitionColumns"] == list(DIMENSIONS[kind][:1])
