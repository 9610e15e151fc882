"""Spark reads every lakenodes table exactly, locally and on S3, and may append to one.

Real PySpark (the ``test`` extra pins it) with Delta Lake and hadoop-aws jars from Maven Central,
fetched once by ``spark/fetch-jars`` (``.ci/run`` runs it before pytest) into
``$LAKENODES_SPARK_JARS`` (default ``~/.cache/lakenodes/spark-jars``) and put on ``spark.jars``:
nothing is downloaded at test time. One SparkSession serves the whole test session; it is made by
the ``<!-- spark: session -->`` snippet of docs/interop.md, and the other ``<!-- spark: ... -->``
snippets are what the tests run to read and append. With ``CI=true`` a missing Java, pyspark or
jar fails the tests instead of skipping them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from deltalake import DeltaTable
from engine_tables import (
    DIMENSIONS,
    KINDS,
    STAGE_NAMES,
    assert_same_rows,
    catalog_tables,
    doc_snippets,
    identities,
    rows,
    table_life,
)
from test_interop import UIDS, make_node

from lakenodes import Lake

pytestmark = [pytest.mark.spark, pytest.mark.slow]

POM = Path(__file__).resolve().parents[1] / "spark" / "pom.xml"
SNIPPETS = doc_snippets("spark")
# Spark's types for lakenodes' columns (docs/interop.md, "Column types")
SPARK_TYPES = {
    "time_index": "timestamp", "unique_identifier": "string", "portfolio_uid": "string", "entity_uid": "string",
    "close": "double", "volume": "bigint", "flag": "boolean", "note": "string", "as_of": "timestamp", "day": "date",
}
# A small local session for tiny tables: few partitions, no UI, and the JVM's quick (C1) JIT only,
# which halves the warm-up of a short-lived driver.
TEST_SUBMIT_ARGS = ("--conf spark.ui.enabled=false --conf spark.ui.showConsoleProgress=false "
                    "--conf spark.sql.shuffle.partitions=2 --conf spark.databricks.delta.snapshotPartitions=1 "
                    "--driver-java-options -XX:TieredStopAtLevel=1 pyspark-shell")


def unavailable(reason: str) -> None:
    """Skip locally; in CI (CI=true) the Spark tests must run, so a missing piece is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Spark tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def spark_jars() -> list[str]:
    """The jars spark/fetch-jars put in the cache folder for this exact spark/pom.xml."""
    folder = Path(os.environ.get("LAKENODES_SPARK_JARS")
                  or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lakenodes" / "spark-jars")
    stamp = folder / ".pom-sha256"
    want = hashlib.sha256(POM.read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text().strip() != want:
        unavailable(f"no jars for spark/pom.xml in {folder}: run spark/fetch-jars (needs Maven)")
    return sorted(str(path) for path in folder.glob("*.jar"))


@pytest.fixture(scope="session")
def spark(s3_server) -> Iterator[Any]:
    """The docs' SparkSession, made with the moto server's AWS variables in the environment."""
    if shutil.which("java") is None:
        unavailable("no java on PATH (Spark 4 needs Java 17+)")
    try:
        import pyspark  # noqa: F401
    except ImportError as error:
        unavailable(f"{error}: pip install -e '.[test]'")
    jars = spark_jars()
    saved = dict(os.environ)
    os.environ.update({**s3_server.env, "PYSPARK_SUBMIT_ARGS": TEST_SUBMIT_ARGS})
    try:
        namespace: dict[str, Any] = {"SPARK_JARS": ",".join(jars)}
        exec(compile(SNIPPETS["session"], "interop.md:spark-session", "exec"), namespace)  # noqa: S102
    finally:
        os.environ.clear()
        os.environ.update(saved)
    session = namespace["spark"]
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def run_snippet(name: str, spark: Any, lake: Lake, table_uri: str, **extra: Any) -> dict[str, Any]:
    namespace = {"spark": spark, "LAKE_URI": lake.uri, "TABLE_URI": table_uri, **extra}
    exec(compile(SNIPPETS[name], f"interop.md:spark-{name}", "exec"), namespace)  # noqa: S102
    return namespace


def spark_read(spark: Any, lake: Lake, table_uri: str) -> tuple[pl.DataFrame, dict[str, str]]:
    """The docs' read snippet: the rows (through Arrow) and Spark's column types."""
    df = run_snippet("read", spark, lake, table_uri)["df"]
    types = {field.name: field.dataType.simpleString() for field in df.schema.fields}
    return pl.from_arrow(df.toArrow()), types


LAKES = pytest.mark.parametrize("any_lake", ["local", pytest.param("s3", marks=pytest.mark.s3)], indirect=True)


@LAKES
@pytest.mark.parametrize("kind", KINDS)
def test_spark_reads_every_stage_exactly(spark, any_lake: Lake, kind: str) -> None:
    """Every stage as it is, and (before vacuum deletes their files) the versions the earlier stages
    left through the docs' ``versionAsOf`` snippet; on the final table, a filter on each identifier."""
    seen, versions = [], []
    for stage in table_life(any_lake, kind):
        got, types = spark_read(spark, any_lake, stage.node.table_uri)
        assert types == {name: SPARK_TYPES[name] for name in stage.ours.columns}, stage.name
        assert_same_rows(got, stage.ours, stage.index, f"Spark after {stage.name}")
        if stage.name == "optimize":
            for version in versions:
                old = run_snippet("time travel", spark, any_lake, stage.node.table_uri, VERSION=version)["df"]
                assert_same_rows(pl.from_arrow(old.toArrow()), stage.node.get_df_between_dates(as_of=version),
                                 stage.index, f"Spark versionAsOf {version}")
        seen.append(stage.name)
        versions.append(stage.version)
    assert seen == STAGE_NAMES
    # the awkward identifiers and µs timestamps really went through
    assert got["time_index"].dt.microsecond().n_unique() > 1
    for dim in DIMENSIONS[kind]:
        assert set(got[dim]) == {identity[dim] for identity in identities(kind)}
    if kind == "asset":  # partition pruning on each value: Spark matches the log's values, never folder names
        table = run_snippet("read", spark, any_lake, stage.node.table_uri)["df"]
        for uid in UIDS:
            picked = pl.from_arrow(table.where(table.unique_identifier == uid).toArrow())
            assert_same_rows(picked, stage.ours.filter(pl.col("unique_identifier") == uid), stage.index, f"Spark {uid!r}")


@LAKES
def test_spark_reads_the_catalog_exactly(spark, any_lake: Lake) -> None:
    for uri in catalog_tables(any_lake):
        ours = pl.from_arrow(DeltaTable(uri, storage_options=any_lake.storage_options or None).to_pyarrow_table())
        got, _ = spark_read(spark, any_lake, uri)
        assert_same_rows(got, ours, sorted(ours.columns), uri)
    tables, _ = spark_read(spark, any_lake, any_lake.catalog_uri("tables"))
    assert {f"interop_{kind}" for kind in KINDS} <= set(tables["identifier"])


def last_per_identity(frame: pl.DataFrame, dims: list[str], how: str) -> dict[tuple[str, ...], Any]:
    if not dims:
        return {(): getattr(frame["time_index"], how)()}
    grouped = frame.group_by(dims).agg(getattr(pl.col("time_index"), how)())
    return {tuple(row[:-1]): row[-1] for row in grouped.iter_rows()}


def spark_append_after_lakenodes(spark: Any, lake: Lake, kind: str, keep: pl.Expr | bool = True) -> pl.DataFrame:
    """lakenodes writes days 1-3, then the docs' Spark snippet appends days 4-5; returns the model."""
    node, first = make_node(kind), rows(kind, range(1, 4), version=1).filter(keep)
    node.pending = first
    assert node.run()[0] is False
    appended = rows(kind, range(4, 6), version=2).filter(keep)
    run_snippet("append", spark, lake, node.table_uri, NEW_ROWS=appended.to_dicts())
    return pl.concat([first, appended])


@pytest.mark.parametrize("any_lake,kind", [
    ("local", "series"), ("local", "asset"), ("local", "portfolio"),
    pytest.param("s3", "asset", marks=pytest.mark.s3),
], indirect=["any_lake"])
def test_spark_append_is_seen_by_lakenodes(spark, any_lake: Lake, kind: str) -> None:
    """Supported: Spark appends newer rows with the table's own schema (the docs' snippet); lakenodes'
    reads, statistics and watermarks include them exactly."""
    dims = list(DIMENSIONS[kind])
    model = spark_append_after_lakenodes(spark, any_lake, kind)
    fresh = make_node(kind)  # a new process's view: nothing cached from the writes above
    assert_same_rows(fresh.get_df_between_dates(), model, ["time_index", *dims], "lakenodes after the Spark append")
    progress = fresh.update_statistics.progress
    assert progress.last == last_per_identity(model, dims, "max")
    assert progress.first == last_per_identity(model, dims, "min")
    assert fresh.update_statistics.max_time_index_value == model["time_index"].max()


@pytest.mark.parametrize("any_lake", ["local", pytest.param("s3", marks=pytest.mark.s3)], indirect=True)
@pytest.mark.parametrize("uids", [
    pytest.param(("BRK/B", "A B", "x'y", "a=b/c"), id="ascii"),
    # Spark records non-ASCII folder names raw (unique_identifier=日本/...), which delta-rs cannot write in a
    # remove action: lakenodes commits that rewrite itself (lakenodes.lake._log_commit)
    pytest.param(("é=1%", "日本"), id="non-ascii"),
])
def test_lakenodes_restates_rows_spark_appended(spark, aws_env: Lake, uids: tuple[str, ...]) -> None:
    """After a Spark append, lakenodes' next run restates Spark's rows (day 5) and adds day 6: a merge
    on the full index, never duplicates; Spark then reads what lakenodes reads."""
    index = ["time_index", "unique_identifier"]
    keep = pl.col("unique_identifier").is_in(uids)
    model = spark_append_after_lakenodes(spark, aws_env, "asset", keep)
    restated = rows("asset", range(5, 7), version=3).filter(keep)
    node = make_node("asset")
    node.pending = restated
    err, written = node.run()
    assert err is False and written.height == restated.height
    model = pl.concat([model.join(restated.select(index), on=index, how="anti"), restated])
    ours = make_node("asset").get_df_between_dates()
    assert_same_rows(ours, model, index, "lakenodes after restating Spark's rows")
    got, _ = spark_read(spark, aws_env, node.table_uri)
    assert_same_rows(got, ours, index, "Spark after lakenodes' restatement")
    # polars' own reader fails on S3 while Spark's day-4 file is live; the docs' polars route reads it
    by_polars = run_snippet("polars", spark, aws_env, node.table_uri)["df"]
    assert_same_rows(by_polars, ours, index, "polars (the docs' route) after Spark's append")


def test_spark_append_with_another_schema_is_refused(spark, any_lake: Lake) -> None:
    """Delta's schema enforcement refuses rows whose types are not the table's (here ``day`` as a
    timestamp, what pandas-inferred rows give): the table and lakenodes' view stay unchanged."""
    from pyspark.errors import AnalysisException

    node = make_node("asset")
    node.pending = rows("asset", range(1, 3), version=1)
    assert node.run()[0] is False
    before = node.get_df_between_dates()
    wrong = spark.createDataFrame(rows("asset", range(3, 4), version=1).to_pandas())  # day -> timestamp
    with pytest.raises(AnalysisException, match="day"):
        wrong.write.format("delta").mode("append").save(node.table_uri.replace("s3://", "s3a://", 1))
    assert_same_rows(make_node("asset").get_df_between_dates(), before, ["time_index", "unique_identifier"],
                     "after the refused append")


def test_a_table_spark_deleted_from_with_deletion_vectors_is_refused_unchanged(spark, any_lake: Lake) -> None:
    """Spark turns deletion vectors on and deletes day 3. lakenodes reads files and statistics
    without them: before the fix a run took day 3 as stored (and skipped it), and ``optimize``
    rewrote the files with the deleted rows and left the old ones live beside them (Spark then read
    every day-1..2 row twice and day 3 back). Now every lakenodes operation refuses the table,
    naming deletion vectors, and Spark reads exactly what it read before."""
    from lakenodes import LakenodesUserError, NodeRunError, TimeIndexMetaTable
    from lakenodes.lake.maintenance import optimize_table, vacuum_table

    index = ["time_index", "unique_identifier"]
    node = make_node("asset")
    node.pending = rows("asset", range(1, 4), version=1)
    assert node.run()[0] is False
    path = node.table_uri.replace("s3://", "s3a://", 1)
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = true)")
    spark.sql(f"DELETE FROM delta.`{path}` WHERE time_index >= '2024-01-03'")
    before, _ = spark_read(spark, any_lake, node.table_uri)
    assert before.height == 2 * len(UIDS)
    version = DeltaTable(node.table_uri, storage_options=any_lake.storage_options or None).version()

    fresh = make_node("asset")
    fresh.pending = rows("asset", range(4, 6), version=2)
    with pytest.raises(NodeRunError, match="deletion vectors"):
        fresh.run()
    with pytest.raises(LakenodesUserError, match="deletion vectors"):
        fresh.get_df_between_dates()
    with pytest.raises(LakenodesUserError, match="deletion vectors"):
        optimize_table(any_lake, node.storage_hash)
    with pytest.raises(LakenodesUserError, match="deletion vectors"):
        vacuum_table(any_lake, node.storage_hash, dry_run=True)
    with pytest.raises(LakenodesUserError, match="deletion vectors"):
        TimeIndexMetaTable.get(identifier="interop_asset", lake=any_lake).delete_after_date("2024-01-02")
    after, _ = spark_read(spark, any_lake, node.table_uri)
    assert_same_rows(after, before, index, "Spark after lakenodes refused the table")
    assert DeltaTable(node.table_uri, storage_options=any_lake.storage_options or None).version() == version


def test_a_table_whose_columns_spark_maps_to_other_names_is_refused_unchanged(spark, any_lake: Lake) -> None:
    """Spark turns column mapping on and adds a column (stored as ``col-<uuid>``), then appends a row
    with it. lakenodes reads columns by their names: before the fix its reads gave that column as
    nulls and ``optimize`` rewrote the partition so, losing the value for every engine. Now every
    lakenodes operation refuses the table, naming the column, and Spark reads what it read before."""
    from lakenodes import LakenodesUserError, NodeRunError
    from lakenodes.lake.maintenance import optimize_table

    index = ["time_index", "unique_identifier"]
    node = make_node("asset")
    node.pending = rows("asset", range(1, 4), version=1)
    assert node.run()[0] is False
    path = node.table_uri.replace("s3://", "s3a://", 1)
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name', "
              "'delta.minReaderVersion' = '2', 'delta.minWriterVersion' = '5')")
    spark.sql(f"ALTER TABLE delta.`{path}` ADD COLUMNS (comment STRING)")
    table_schema = spark.read.format("delta").load(path).schema
    extra = rows("asset", range(4, 5), version=2).filter(pl.col("unique_identifier") == UIDS[0])
    spark.createDataFrame([{**row, "comment": "from Spark"} for row in extra.to_dicts()], schema=table_schema) \
        .write.format("delta").mode("append").save(path)
    before, _ = spark_read(spark, any_lake, node.table_uri)
    assert before["comment"].to_list().count("from Spark") == 1
    version = DeltaTable(node.table_uri, storage_options=any_lake.storage_options or None).version()

    fresh = make_node("asset")
    with pytest.raises(LakenodesUserError, match="'comment'.*column mapping"):
        fresh.get_df_between_dates()
    with pytest.raises(LakenodesUserError, match="'comment'.*column mapping"):
        optimize_table(any_lake, node.storage_hash)
    fresh.pending = rows("asset", range(5, 6), version=2).with_columns(comment=pl.lit("x"))
    with pytest.raises(NodeRunError, match="column mapping"):
        fresh.run()
    after, _ = spark_read(spark, any_lake, node.table_uri)
    assert_same_rows(after, before, index, "Spark after lakenodes refused the table")
    assert DeltaTable(node.table_uri, storage_options=any_lake.storage_options or None).version() == version
