"""Two S3-compatible stores holding a bucket of the same name (a staging MinIO and production AWS),
used from ONE process: each store's tables are its own, whatever this process cached of the other's
(snapshots, statistics, file facts, refused writes). Here two moto servers on two ports."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from lake_copies import copy_lake
from test_polars_scan import FrameConfig, FrameNode, day, rows
from test_read_only_lake import _allow, _client, _user

from lakenodes import DataNodeMetaData, Lake, TimeIndexMetaTable
from lakenodes._internal.afterwards import settle
from lakenodes._internal.caches import clear_caches
from lakenodes.catalog.catalog import tables_version
from lakenodes.lake._scan import add_actions
from lakenodes.lake.location import file_exists, lake_filesystem
from lakenodes.lake.maintenance import optimize_table
from lakenodes.lake.progress import FACTS_PATH
from lakenodes.testing import REGION, S3Server, start_s3_server

pytestmark = pytest.mark.s3


@pytest.fixture
def staging_and_production(s3_server: S3Server) -> Iterator[tuple[Lake, Lake]]:
    """s3://lake-<n>/prod on the session's server (staging) and on a second server (production)."""
    other = start_s3_server()
    try:
        bucket = s3_server.create_bucket()
        other.create_bucket(bucket)
        yield (Lake(f"s3://{bucket}/prod", storage_options=s3_server.storage_options),
               Lake(f"s3://{bucket}/prod", storage_options=other.storage_options))
    finally:
        clear_caches()  # the saves left for later land while the second server still answers
        other.stop()


def test_a_table_copied_to_another_store_keeps_its_own_statistics_and_rows(staging_and_production) -> None:
    """Regression: staging's table was copied to production (same bucket name, same key, so the same
    Delta table id), then the updater ran in both: production took staging's cached statistics of
    version 1 (watermark day 3, not day 5), and reading staging failed on files only production has."""
    staging, production = staging_and_production
    on_staging = FrameNode(FrameConfig(name="copied"), lake=staging)
    on_staging.run_with(rows(range(1, 3)))
    copy_lake(staging, production)
    on_production = FrameNode(FrameConfig(name="copied"), lake=production)
    on_production.run_with(rows(range(3, 6)))  # version 1 in production: days 3-5
    on_staging.run_with(rows(range(3, 4)))  # version 1 in staging: day 3 only
    for _ in ("warm", "fresh"):
        assert on_staging.compute_update_statistics().max_time_index_value == day(3)
        assert on_production.compute_update_statistics().max_time_index_value == day(5)
        assert on_staging.get_df_between_dates().height == 3 * 40
        assert on_production.get_df_between_dates().height == 5 * 40
        clear_caches()  # as a fresh process


def test_a_copied_tables_cross_section_copy_is_read_in_its_own_store(staging_and_production) -> None:
    """Regression: after `optimize --cross-section` in both stores (each at version 2 of the one
    Delta table id), a one-date read in production used the copy this process had found in staging."""
    staging, production = staging_and_production
    on_staging = FrameNode(FrameConfig(name="sections"), lake=staging)
    on_staging.run_with(rows(range(1, 3)))
    copy_lake(staging, production)
    on_production = FrameNode(FrameConfig(name="sections"), lake=production)
    on_production.run_with(rows(range(3, 6)))
    on_staging.run_with(rows(range(3, 4)))
    for node in (on_staging, on_production):
        optimize_table(node.lake, node.storage_hash, cross_section=True)
    assert on_staging.get_df_between_dates(day(3), day(3)).height == 40  # staging's copy, found and cached
    assert on_production.get_df_between_dates(day(5), day(5)).height == 40
    assert on_production.get_df_between_dates(day(3), day(3))["price"].to_list() == [3 * 1.5] * 40


def test_a_table_behind_its_copy_in_another_store_still_saves_its_file_facts(staging_and_production) -> None:
    """Regression: production's table (version 1) was taken for a past version of staging's (version 2,
    open in this process) at the same URI, so its statistics saved no file facts for the next process."""
    staging, production = staging_and_production
    on_staging = FrameNode(FrameConfig(name="facts"), lake=staging)
    on_staging.run_with(rows(range(1, 3)))
    on_staging.run_with(rows(range(3, 4)))
    copy_lake(staging, production)
    on_staging.run_with(rows(range(4, 5)))
    filesystem, root = lake_filesystem(production, production.table_uri(on_staging.storage_hash))
    filesystem.delete_file(f"{root}/{FACTS_PATH}")  # as a table another engine wrote has none
    clear_caches()
    assert on_staging.get_df_between_dates().height == 4 * 40  # staging's table open, at version 2
    on_production = FrameNode(FrameConfig(name="facts"), lake=production)
    assert on_production.compute_update_statistics().max_time_index_value == day(3)
    settle()
    assert file_exists(filesystem, f"{root}/{FACTS_PATH}")


def _facts_paths(lake: Lake, storage_hash: str) -> set[str]:
    filesystem, root = lake_filesystem(lake, lake.table_uri(storage_hash))
    with filesystem.open_input_file(f"{root}/{FACTS_PATH}") as file:
        return set(pq.read_table(file).column("path").to_pylist())


def test_each_store_saves_its_own_tables_file_facts(staging_and_production) -> None:
    """Regression: the same updater ran in staging, then in production (one process, same bucket name):
    production's file facts were saved as staging's, which this process had loaded, plus production's
    new files, naming files production does not have and leaving out those it does."""
    staging, production = staging_and_production
    on_staging = FrameNode(FrameConfig(name="own_facts"), lake=staging)
    on_production = FrameNode(FrameConfig(name="own_facts"), lake=production)
    for node in (on_staging, on_production):
        node.run_with(rows(range(1, 3)))
    clear_caches()  # the daily job's process
    for node in (on_staging, on_production):
        node.run_with(rows(range(3, 4)))
    settle()
    for node in (on_staging, on_production):
        table = DeltaTable(node.lake.table_uri(node.storage_hash), storage_options=node.lake.storage_options)
        assert _facts_paths(node.lake, node.storage_hash) <= set(add_actions(table).column("path").to_pylist())


@pytest.fixture
def guarded_staging_and_production(s3_server: S3Server) -> Iterator[dict[str, Lake]]:
    """s3://lake-<n>/prod in staging, a store that checks keys (as "writer", a key that may do anything,
    and "reader", one that may only read), and in production (the session's server, any key writes)."""
    staging = start_s3_server(environment={"INITIAL_NO_AUTH_ACTION_COUNT": "7"})  # 2 users, 1 bucket: then checked
    try:
        iam = boto3.client("iam", endpoint_url=staging.endpoint_url, region_name=REGION,
                           aws_access_key_id="setup", aws_secret_access_key="setup")
        writer = _user(iam, "writer", [_allow(["s3:*"])], staging.endpoint_url)
        reader = _user(iam, "reader", [_allow(["s3:Get*", "s3:List*", "s3:Head*"])], staging.endpoint_url)
        bucket = s3_server.create_bucket()
        _client(writer).create_bucket(Bucket=bucket)
        yield {name: Lake(f"s3://{bucket}/prod", storage_options=options)
               for name, options in (("writer", writer), ("reader", reader), ("production", s3_server.storage_options))}
    finally:
        clear_caches()
        staging.stop()


def test_a_store_that_refused_file_facts_does_not_stop_another_from_saving_them(guarded_staging_and_production) -> None:
    """Regression: a key that may only read staging's s3://<bucket>/prod refused the file facts its
    statistics would save; this process then never saved any under <bucket>/prod/tables in production
    either (same bucket name, another store, a key that may write), so every new process there read
    the data files' footers again."""
    lakes = guarded_staging_and_production
    facts = {}
    for name in ("writer", "production"):
        node = FrameNode(FrameConfig(name="refused"), lake=lakes[name])
        node.run_with(rows(range(1, 3)))
        settle()
        filesystem, root = lake_filesystem(lakes[name], lakes[name].table_uri(node.storage_hash))
        filesystem.delete_file(f"{root}/{FACTS_PATH}")  # as a table another engine wrote has none
        facts[name] = (filesystem, f"{root}/{FACTS_PATH}")
    clear_caches()
    for name in ("reader", "production"):
        assert FrameNode(FrameConfig(name="refused"), lake=lakes[name]).compute_update_statistics(
            ).max_time_index_value == day(2)
    settle()
    assert not file_exists(*facts["writer"])  # the reader may not save them
    assert file_exists(*facts["production"])


def _found(lake: Lake, query: str) -> set[str]:
    return {hit["storage_hash"] for hit in TimeIndexMetaTable.description_search(query, lake=lake)["results"]}


def _published(name: str, lake: Lake) -> str:
    node = FrameNode(FrameConfig(name=name, node_metadata=DataNodeMetaData(identifier=f"prices_{name}")), lake=lake)
    node.run_with(rows(range(1, 2)))
    return node.storage_hash


def test_a_search_in_one_store_does_not_take_the_other_stores_index_for_current(guarded_staging_and_production) -> None:
    """Regression: production is a copy of staging (`aws s3 sync`), then staging's catalog was compacted
    and production registered a table: both catalogs at the same version. A reader's search in staging
    kept its catch-up marker in the process (its key may not store it); production's next search took
    that marker for its own, found its index current, and missed the new table."""
    lakes = guarded_staging_and_production
    staged = {_published(name, lakes["writer"]) for name in ("p", "q")}
    assert _found(lakes["writer"], "prices") == staged  # the index and its marker stored
    copy_lake(lakes["writer"], lakes["production"])
    assert optimize_table(lakes["writer"], "_catalog/tables")["files_after"] == 1  # one commit, no record changed
    added = _published("r", lakes["production"])  # one commit too
    assert tables_version(lakes["writer"]) == tables_version(lakes["production"])
    clear_caches()
    assert _found(lakes["reader"], "prices") == staged
    assert _found(lakes["production"], "prices") == staged | {added}
