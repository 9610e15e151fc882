"""Column names a user may choose that lakenodes' own frames also used: each either works like any
other name or is refused up front with an error naming it, never stores rows under another identity.

Found by trying them: an identity dimension ``_code`` (the name lakenodes' own Parquet writer gave
the partition codes it sorts by) sent restated and streamed rows to other identities' folders;
``n``/``lo``/``hi``/``watermark`` (its per-identity bookkeeping columns) failed with a polars
DuplicateError; a diff of a table holding ``px`` and ``px_to`` failed the same way."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from test_time_travel import QueueNode

from lakenodes import DataNode, DataNodeConfiguration
from lakenodes.errors import ConfigurationError, NodeRunError
from lakenodes.lake.diff import diff_versions

UTC = dt.UTC
PAIRS = [("AAA", "z"), ("BBB", "a"), ("CCC", "m")]  # "_code" values sorting against the identifiers' order


class NamesConfig(DataNodeConfiguration):
    name: str = "names"


class CodedNode(QueueNode):
    """A second identity dimension named ``_code``; returns one queued frame per run."""

    IDENTITY_DIMENSIONS: ClassVar[tuple[str, ...]] = ("unique_identifier", "_code")


def coded(days, bump: float = 0.0) -> pl.DataFrame:
    return pl.DataFrame(
        [(dt.datetime(2024, 1, 1 + d, tzinfo=UTC), uid, code, k + bump) for d in days for k, (uid, code) in enumerate(PAIRS)],
        schema={"time_index": pl.Datetime("us", "UTC"), "unique_identifier": pl.String, "_code": pl.String,
                "v": pl.Float64}, orient="row")


def stored(node: DataNode) -> pl.DataFrame:
    return pl.read_delta(node.table_uri).select("time_index", "unique_identifier", "_code", "v").sort(
        "unique_identifier", "time_index")


@pytest.mark.parametrize("kind", ["frame", "lazy stream"])
def test_an_identity_named_code_keeps_every_row_under_its_own_identifier(local_lake, kind):
    restated = coded([1], bump=0.5)
    node = CodedNode(NamesConfig(name=f"code-{kind}"),
                     [coded(range(3)), restated if kind == "frame" else None, coded([3, 4]).lazy()])
    node.run()
    if kind == "frame":  # a restatement: rows at the watermark, rewritten by lakenodes' writer (one merge)
        node.run()
    else:
        node.frames.pop(0)
    node.run()  # a stream, written by lakenodes' writer file by file
    expected = pl.concat([coded([0, 2]), restated if kind == "frame" else coded([1]), coded([3, 4])])
    assert_frame_equal(stored(node), expected.sort("unique_identifier", "time_index"))
    # and the partition folder of every file is the identifier of every row in it (Spark, DuckDB read it)
    for path in node.store.table().file_uris():
        folder = path.rsplit("/", 2)[-2]
        rows = pl.read_parquet(path)
        assert set(rows["_code"].to_list()) == {dict(PAIRS)[folder.split("=", 1)[1]]}, path


@pytest.mark.parametrize("name", ["n", "lo", "hi", "watermark", "time_index_max"])
def test_identity_dimensions_named_like_lakenodes_bookkeeping_are_refused_by_name(local_lake, name):
    class Declared(CodedNode):
        IDENTITY_DIMENSIONS: ClassVar[tuple[str, ...]] = ("unique_identifier", name)

    with pytest.raises(ConfigurationError, match=f"identity dimension name '{name}' is reserved"):
        Declared(NamesConfig(name=f"declared-{name}"))
    # a pandas MultiIndex names its dimensions in the frame: refused at validation, nothing written
    index = pd.MultiIndex.from_tuples([(pd.Timestamp("2024-01-01", tz="UTC"), "A", "x")],
                                      names=["time_index", "unique_identifier", name])
    node = CodedNode(NamesConfig(name=f"frame-{name}"), [pd.DataFrame({"v": [1.0]}, index=index)])
    node.IDENTITY_DIMENSIONS = ()  # the frame's index alone names them
    with pytest.raises(NodeRunError, match=f"identity dimension name '{name}' is reserved"):
        node.run()
    assert not node.store.exists()
    # as a value column the name is an ordinary one
    plain = CodedNode(NamesConfig(name=f"value-{name}"), [coded([0]).rename({"v": name})])
    plain.IDENTITY_DIMENSIONS = ("unique_identifier", "_code")
    plain.run()
    assert sorted(pl.read_delta(plain.table_uri)[name].to_list()) == [0.0, 1.0, 2.0]


def test_a_diff_of_a_table_holding_a_column_and_its_to_suffix(local_lake):
    first = coded([0]).with_columns(v_to=pl.lit(7.0), v_from=pl.lit(8.0))
    node = CodedNode(NamesConfig(name="suffixes"), [first, first.with_columns(pl.col("v_to") + 1)])
    node.run()
    node.run()
    change = diff_versions(node.store, 0)
    assert change.changed.columns == ["time_index", "unique_identifier", "_code", "v_from", "v_to", "v_to_from",
                                      "v_to_to", "v_from_from", "v_from_to"]
    assert change.changed.height == 3 and change.changed["v_to_from"].to_list() == [7.0] * 3
    assert change.changed["v_to_to"].to_list() == [8.0] * 3 and change.changed["v_from_to"].to_list() == [8.0] * 3
    assert (change.added.height, change.deleted.height) == (0, 0)
