"""The tables every outside engine (Spark, daft, Dask) must read exactly as lakenodes reads them.

Each table kind -- a plain time series, 2 and 3 identity levels -- is driven through every kind of
commit lakenodes makes, with awkward identifiers (``test_interop.UIDS``) and microsecond UTC
timestamps: a first write, a blind append, a MERGE restatement, tail deletes
(``TimeIndexMetaTable.delete_after_date``: whole table, one identity coordinate, and the CLI's
``--dimension-filter`` scope), an append after the delete, ``optimize_table`` with the
cross-section copy (``lakenodes optimize --cross-section``) and ``vacuum_table``. ``table_life``
yields after each stage so a test reads the table with its engine right then; each ``Stage`` has
the table version it left, for the engines' time travel.

The node classes, value columns and comparison come from ``test_interop`` (the DuckDB tests).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from test_interop import (
    DIMENSIONS,
    KINDS,
    UIDS,
    QueuedNode,
    assert_same_rows,
    batch,
    delta_tables,
    make_node,
)

from lakenodes import Asset, Lake, NodeRunError, TimeIndexMetaTable
from lakenodes.lake.maintenance import optimize_table, vacuum_table

__all__ = ["KINDS", "DIMENSIONS", "assert_same_rows", "catalog_tables", "doc_snippets", "identities", "rows",
           "table_life", "Stage", "STAGE_NAMES", "DOC"]

UTC = dt.UTC
DOC = Path(__file__).resolve().parents[1] / "docs" / "interop.md"
PORTFOLIOS = ("PF/1", "日本 x'y")
STAGE_NAMES = ["first write", "append", "restatement", "tail delete", "append after delete", "optimize", "vacuum"]


def identities(kind: str) -> list[dict[str, str]]:
    if kind == "series":
        return [{}]
    if kind == "asset":
        return [{"unique_identifier": uid} for uid in UIDS]
    return [{"portfolio_uid": p, "entity_uid": e} for p in PORTFOLIOS for e in UIDS[:4]]


def rows(kind: str, days: range, version: int) -> pl.DataFrame:
    """Rows for ``days`` of every identity above (see ``test_interop.batch``)."""
    return batch(kind, days, version, identities)


@dataclass
class Stage:
    name: str
    node: QueuedNode
    index: list[str]
    ours: pl.DataFrame  # lakenodes' own read right after the stage
    version: int  # the table version the stage left


def _run(node: QueuedNode, batch: pl.DataFrame) -> None:
    node.pending = batch
    err, written = node.run()
    assert err is False and written.height == batch.height


def table_life(lake: Lake, kind: str) -> Iterator[Stage]:
    """Drive one table of ``kind`` through every kind of commit; yield lakenodes' read after each."""
    node, index = make_node(kind), ["time_index", *DIMENSIONS[kind]]

    def stage(name: str) -> Stage:
        ours = node.get_df_between_dates()
        assert list(ours.columns[: len(index)]) == index
        return Stage(name, node, index, ours, node.store.table().version())

    _run(node, rows(kind, range(1, 4), version=1))
    yield stage("first write")
    _run(node, rows(kind, range(4, 6), version=1))
    yield stage("append")
    before = node.get_df_between_dates().height
    _run(node, rows(kind, range(3, 7), version=2))  # rewrites days 3-5 (a MERGE), adds day 6
    after = stage("restatement")
    assert after.ours.height == before + len(identities(kind))
    yield after

    record = TimeIndexMetaTable.get(identifier=f"interop_{kind}", lake=lake)
    assert record.delete_after_date(dt.datetime(2024, 1, 6, tzinfo=UTC))["deleted_count"] > 0
    if DIMENSIONS[kind]:  # scoped tail deletes: one identity coordinate, then values of the first dimension
        coordinate = identities(kind)[0]
        assert record.delete_after_date("2024-01-04T00:00:00Z", index_coordinates=[coordinate])["deleted_count"] > 0
        scope = {"unique_identifier": ["#1", "?", "-1"]} if kind == "asset" else {"portfolio_uid": [PORTFOLIOS[1]]}
        assert record.delete_after_date("2024-01-05T00:00:00Z", dimension_filters=scope)["deleted_count"] > 0
    yield stage("tail delete")
    _run(node, rows(kind, range(6, 8), version=3))
    yield stage("append after delete")
    assert optimize_table(lake, node.storage_hash, cross_section=True)["cross_section"] == "written"
    yield stage("optimize")
    assert vacuum_table(lake, node.storage_hash, retention_hours=0, force_unsafe_retention=True)["file_count"] > 0
    yield stage("vacuum")


def catalog_tables(lake: Lake) -> list[str]:
    """Fill the (active) lake's catalog -- a table of each kind, a failed run, asset snapshots -- and
    return every Delta table of it (tables, updates, runs, assets, identifier claims)."""
    for kind in KINDS:
        next(table_life(lake, kind))
    failing = make_node("series")
    failing.pending = "not a frame"
    with pytest.raises(NodeRunError):
        failing.run()  # an error row in _catalog/runs
    Asset.batch_get_or_register_custom_assets(
        [{"unique_identifier": uid, "snapshot": {"ticker": uid, "name": f"asset {uid}"}} for uid in UIDS]
    )
    found = [uri for uri in delta_tables(lake) if "/_catalog/" in uri]
    assert {lake.catalog_uri(name) for name in ("tables", "updates", "runs", "assets")} <= set(found)
    return found


def doc_snippets(word: str) -> dict[str, str]:
    """The ```python blocks of docs/interop.md marked ``<!-- <word>: <name> -->``, by name."""
    text = DOC.read_text(encoding="utf-8")
    pattern = re.compile(rf"<!-- {re.escape(word)}: (?P<name>[^>]*?) -->[ \t]*\n```python\n(?P<code>.*?)\n```", re.S)
    found = {match["name"]: match["code"] for match in pattern.finditer(text)}
    assert len(found) == text.count(f"<!-- {word}: "), f"every <!-- {word}: ... --> must sit right above a ```python block"
    return found
