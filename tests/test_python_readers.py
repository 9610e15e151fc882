"""polars (``scan_delta``, ``read_delta``) and deltalake (a pyarrow dataset, ``QueryBuilder``) read
every lakenodes table exactly; they, DuckDB, daft and Dask select exactly an identifier's rows
when they filter on it.

The whole-table reads run after every stage of every table kind (``engine_tables.table_life``:
appends, a MERGE restatement, scoped tail deletes, ``optimize --cross-section``, ``vacuum``); the
filters run per identifier (``test_interop.UIDS``: ``/``, space, ``#``, ``?``, ``+``, ``%``, ``=``,
a leading ``-``, numeric-looking, non-ASCII) on the final table, where a reader that prunes by
folder name, decodes a path twice or infers a type from a folder name would drop or mix rows.
Local and on the moto S3 server, the standard ``AWS_*`` variables set as a user's shell would.
DuckDB reads every stage whole in tests/test_interop.py, daft and Dask in tests/test_daft_dask.py,
Spark (filters included) in tests/test_spark.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.dataset as pds
import pytest
from deltalake import DeltaTable, QueryBuilder
from engine_tables import (
    DIMENSIONS,
    KINDS,
    STAGE_NAMES,
    assert_same_rows,
    doc_snippets,
    identities,
    table_life,
)
from test_daft_dask import engine_snippets
from test_docs_snippets import as_polars
from test_interop import UIDS

from lakenodes import Lake

LAKES = pytest.mark.parametrize("any_lake", ["local", pytest.param("s3", marks=pytest.mark.s3)], indirect=True)
# docs/interop.md's polars route through deltalake (a pyarrow dataset over the log's files)
DATASET_SNIPPET = doc_snippets("spark")["polars"]


def docs_dataset(table_uri: str) -> pds.Dataset:
    """The pyarrow dataset docs/interop.md reads through (pyarrow's own filesystem under deltalake)."""
    namespace: dict[str, Any] = {"TABLE_URI": table_uri}
    exec(compile(DATASET_SNIPPET, "interop.md:spark-polars", "exec"), namespace)  # noqa: S102
    return namespace["dataset"]


def query_builder(table_uri: str, where: str = "", *parameters: str) -> pl.DataFrame:
    """deltalake's SQL engine (DataFusion) over the table; ``where`` with ``$1``-style literals inlined."""
    for number, value in enumerate(parameters, start=1):
        where = where.replace(f"${number}", "'" + value.replace("'", "''") + "'")
    batches = QueryBuilder().register("t", DeltaTable(table_uri)).execute(f"SELECT * FROM t {where}").read_all()
    return pl.from_arrow(pa.table(batches))


READERS: dict[str, Callable[[str], pl.DataFrame]] = {
    "pl.scan_delta": lambda uri: pl.scan_delta(uri).collect(),
    "pl.read_delta": pl.read_delta,
    "DeltaTable.to_pyarrow_dataset": lambda uri: pl.from_arrow(docs_dataset(uri).to_table()),
    "QueryBuilder": query_builder,
}


@LAKES
@pytest.mark.parametrize("kind", KINDS)
def test_python_readers_read_every_stage_exactly(aws_env: Lake, kind: str) -> None:
    seen = []
    for stage in table_life(aws_env, kind):
        for name, read in READERS.items():
            assert_same_rows(read(stage.node.table_uri), stage.ours, stage.index, f"{name} after {stage.name}")
        seen.append(stage.name)
    assert seen == STAGE_NAMES
    for dim in DIMENSIONS[kind]:
        assert set(stage.ours[dim]) == {identity[dim] for identity in identities(kind)}


def daft_and_dask_frames(lake: Lake, table_uri: str) -> tuple[Any, Any]:
    """The lazy frames docs/interop.md's daft and Dask snippets open (``frame``, ``ddf``), unread."""
    frames = []
    for engine, snippet in sorted(engine_snippets(lake).items()):  # daft, dask
        namespace: dict[str, Any] = {"__name__": "docs_snippet", "LAKE_URI": lake.uri, "TABLE_URI": table_uri}
        exec(compile(snippet.code, f"interop.md:{snippet.line}", "exec"), namespace)  # noqa: S102
        frames.append(namespace["frame" if engine == "daft" else "ddf"])
    return frames[0], frames[1]


def filtered_reads(table_uri: str, uid: str, con: Any, daft_frame: Any, ddf: Any) -> dict[str, pl.DataFrame]:
    """Each engine's rows of one ``unique_identifier``, filtered by the engine (partition pruning)."""
    import daft

    column = "unique_identifier"
    escaped = table_uri.replace("'", "''")
    return {
        "daft": pl.from_arrow(daft_frame.where(daft.col(column) == uid).to_arrow()),
        "Dask": as_polars(ddf[ddf[column] == uid].compute().reset_index(drop=True)),
        "pl.scan_delta": pl.scan_delta(table_uri).filter(pl.col(column) == uid).collect(),
        "DeltaTable.to_pyarrow_dataset": pl.from_arrow(docs_dataset(table_uri).to_table(filter=pds.field(column) == uid)),
        "QueryBuilder": query_builder(table_uri, f"WHERE {column} = $1", uid),
        "DuckDB delta_scan": pl.from_arrow(
            con.execute(f"SELECT * FROM delta_scan('{escaped}') WHERE {column} = ?", [uid]).to_arrow_table()),
    }


@LAKES
def test_filters_on_each_identifier_select_exactly_its_rows(aws_env: Lake, duck) -> None:
    *_, stage = table_life(aws_env, "asset")  # after vacuum: compacted, restated and deleted partitions
    assert set(stage.ours["unique_identifier"]) == set(UIDS)
    frames = daft_and_dask_frames(aws_env, stage.node.table_uri)
    for uid in UIDS:
        ours = stage.ours.filter(pl.col("unique_identifier") == uid)
        assert ours.height > 0
        for name, got in filtered_reads(stage.node.table_uri, uid, duck, *frames).items():
            assert_same_rows(got, ours, stage.index, f"{name} where unique_identifier = {uid!r}")
    # the docs' Dask frame takes more than compute(): arithmetic between its columns, a group-by
    ddf = frames[1]
    volumes = (ddf["volume"] * 2).groupby(ddf["unique_identifier"]).sum().compute()
    expected = stage.ours.group_by("unique_identifier").agg(pl.col("volume").sum() * 2)
    assert volumes.to_dict() == dict(expected.iter_rows())
