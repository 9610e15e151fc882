"""Compaction under continuous appends: neither side fails, no row is lost or duplicated.

Regression: ``lakenodes optimize`` against ~20 appends a second failed (CommitFailedError
"Concurrent transaction failed") in 2 of 12 and 3 of 6 runs, and 2 of 1,373 runs failed after
their retries. Each compaction commit carried the partition's *identity* app transaction, which
every blind append of that partition carries too, so delta-rs failed whichever of the two
committed second; the compaction (seconds of reading and writing) lost nearly every race. Now it
carries the partition's *rewrite* app transaction, which only writers that remove files carry.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
import traceback
import uuid

import polars as pl
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError
from test_concurrency import SPAWN, RetryCounter, appender, assets, day, duplicate_keys, frame, original

from lakenodes import Lake, use_lake
from lakenodes.core.frames import normalize_frame
from lakenodes.lake._rewrite import RemovedFile, commit_rewrite, write_files
from lakenodes.lake._row_rewrites import restate
from lakenodes.lake._scan import read_whole, snapshot_of
from lakenodes.lake._watermarks import app_transaction, partition_transactions, rewrite_transactions
from lakenodes.lake.location import lake_filesystem
from lakenodes.lake.maintenance import optimize_table
from lakenodes.lake.store import RetryPolicy, index_names_of

SEED_DAYS = 3


def _seeded(lake: Lake, universe: list[str], days: int = SEED_DAYS):
    with use_lake(lake):
        node = appender(universe)
        for _ in range(days):
            type(node)(node.config).run()
    return node


def _rewrite(lake: Lake, table: DeltaTable, value: str, app_ids: list[str]) -> None:
    """Compact ``value``'s files as of ``table``'s snapshot (lakenodes' rewrite) with ``app_ids``."""
    index = index_names_of(table)
    filesystem, root = lake_filesystem(lake, table.table_uri)
    snapshot = snapshot_of(table, index)
    files = snapshot.files.filter(pl.col("partition").eq_missing(value))
    rows = read_whole(filesystem, root, snapshot.partition, files, snapshot.schema).drop_columns(["_file"])
    adds = write_files(filesystem, root, rows, snapshot.schema, snapshot.partition, sort_by=index, data_change=False)
    removes = [RemovedFile(*row) for row in files.select("path", "size", "partition").iter_rows()]
    write_id = f"test-{uuid.uuid4().hex}"
    properties = CommitProperties(app_transactions=[app_transaction(app_id) for app_id in [write_id, *app_ids]])
    commit_rewrite(table, filesystem, root, adds, removes, properties, write_id, data_change=False)


def test_delta_rs_lets_two_rewrites_remove_the_same_files(tmp_path):
    """The trap the rewrite app transaction closes: delta-rs 1.6.6 commits both rewrites of one
    snapshot (no "deleted the same data" conflict) and every row of the partition is live twice.
    If this starts failing, delta-rs detects it itself; the app transaction stays harmless."""
    lake = Lake(str(tmp_path / "lake"))
    node = _seeded(lake, ["AAPL"])
    first, second = DeltaTable(node.table_uri), DeltaTable(node.table_uri)
    _rewrite(lake, first, "AAPL", [])
    _rewrite(lake, second, "AAPL", [])
    assert DeltaTable(node.table_uri).to_pyarrow_table().num_rows == 2 * SEED_DAYS


def test_a_compaction_and_an_append_from_one_snapshot_both_commit(tmp_path):
    """The regression, deterministically: an append decided from the snapshot a compaction read
    commits after it (it failed with "Concurrent transaction failed"), and a compaction (with the
    app ids ``optimize_table`` sets) commits after an append landed since its snapshot."""
    lake = Lake(str(tmp_path / "lake"))
    node = _seeded(lake, ["AAPL", "BRK/B"])
    when = day(SEED_DAYS + 1)

    def append(table: DeltaTable, value: str) -> None:
        properties = CommitProperties(app_transactions=[app_transaction(f"w-{uuid.uuid4().hex}"),
                                                        *partition_transactions([value])])
        write_deltalake(table, frame([(when, value, original(value, when))]).to_arrow(),
                        mode="append", commit_properties=properties)

    stale = DeltaTable(node.table_uri)
    optimize_table(lake, node.storage_hash, retry=RetryPolicy(attempts=1))  # compacts both partitions
    append(stale, "AAPL")

    for _ in range(2):
        append(DeltaTable(node.table_uri), "BRK/B")
        when += dt.timedelta(days=1)
    stale = DeltaTable(node.table_uri)
    append(DeltaTable(node.table_uri), "BRK/B")
    _rewrite(lake, stale, "BRK/B", [txn.app_id for txn in rewrite_transactions(["BRK/B"])])

    stored = pl.read_delta(node.table_uri)
    assert stored.height == 2 * SEED_DAYS + 4 and duplicate_keys(stored).height == 0
    assert stored.filter(pl.col("unique_identifier") == "BRK/B")["time_index"].n_unique() == SEED_DAYS + 3


def test_a_restatement_from_a_snapshot_a_compaction_rewrote_fails(tmp_path):
    """A restatement decided before a compaction of its partition must not commit (it would keep
    the compacted rows and add its own): it carries the rewrite app transaction, so it retries."""
    lake = Lake(str(tmp_path / "lake"))
    node = _seeded(lake, ["AAPL"])
    stale = DeltaTable(node.table_uri)
    optimize_table(lake, node.storage_hash)
    when = day(2)
    restated = normalize_frame(frame([(when, "AAPL", original("AAPL", when) + 1.0)]), ["unique_identifier"])
    with pytest.raises(CommitFailedError, match="Concurrent transaction"):
        restate(lake, stale, restated, f"w-{uuid.uuid4().hex}", {"lakenodes.operation": "MERGE"})
    stored = pl.read_delta(node.table_uri)
    assert stored.height == SEED_DAYS and duplicate_keys(stored).height == 0


class DataTableRetries(RetryCounter):
    """Counts retried commits of writes to data tables (not catalog appends, which contend apart)."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.count += "retrying" in message and not message.startswith("catalog")


def _append_until(uri: str, env: dict[str, str], batch: list[str], seconds: float, start, results) -> None:
    """Child: run the batch's appender back to back for ``seconds``; report runs, errors, write retries."""
    os.environ.update(env)
    retries = DataTableRetries()
    logging.getLogger("lakenodes").addHandler(retries)
    runs, errors = 0, []
    try:
        with use_lake(Lake(uri)):
            node = appender(batch)
            start.wait(timeout=300)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                try:
                    type(node)(node.config).run()
                    runs += 1
                except Exception as error:  # reported to the parent, which fails the test
                    errors.append(f"{type(error).__name__}: {error}\n{traceback.format_exc()}")
    except Exception as error:
        errors.append(f"{type(error).__name__}: {error}\n{traceback.format_exc()}")
    results.put((batch, runs, errors, retries.count))


@pytest.mark.slow
def test_optimize_keeps_up_with_continuous_appends(tmp_path):
    """3 processes append back to back (one asset each, disjoint) while the parent optimizes the
    table over and over with a single attempt per commit (the old code's compactions nearly all
    lost their first race): no run and no optimize fails, neither side ever retries a data-table
    commit, every asset holds days 1..n exactly once, and polars reads the table."""
    lake = Lake(str(tmp_path / "lake"))
    universe = assets(3)
    node = _seeded(lake, universe)
    env = {"LAKENODES_COMMIT_ATTEMPTS": "3"}
    start, results = SPAWN.Barrier(len(universe) + 1), SPAWN.Queue()
    children = [SPAWN.Process(target=_append_until, args=(lake.uri, env, [uid], 12.0, start, results))
                for uid in universe]
    for child in children:
        child.start()
    optimizations, compacted, failures = 0, 0, []
    optimize_retries = DataTableRetries()
    logging.getLogger("lakenodes").addHandler(optimize_retries)
    try:
        start.wait(timeout=300)
        version_before, started = DeltaTable(node.table_uri).version(), time.monotonic()
        while any(child.is_alive() for child in children) or optimizations < 3:
            try:
                result = optimize_table(lake, node.storage_hash, retry=RetryPolicy(attempts=1))
                optimizations += 1
                compacted += result["partitions"]
            except CommitFailedError as error:
                failures.append(str(error))
        outcomes = [results.get(timeout=120) for _ in children]
        elapsed = time.monotonic() - started
    finally:
        logging.getLogger("lakenodes").removeHandler(optimize_retries)
        for child in children:
            child.join(30)
            if child.is_alive():
                child.kill()
    errors = [error for _, _, child_errors, _ in outcomes for error in child_errors]
    assert not errors, "\n".join(errors[:3])
    assert not failures, f"{len(failures)} of {optimizations + len(failures)} optimizations failed: {failures[:2]}"
    assert optimize_retries.count == 0 and sum(retries for *_, retries in outcomes) == 0
    runs = sum(count for _, count, _, _ in outcomes)
    commits = DeltaTable(node.table_uri).version() - version_before
    print(f"\ncontention figures: {runs} runs, {optimizations} optimizations ({compacted} partitions compacted), "
          f"{commits} commits in {elapsed:.0f}s ({commits / elapsed:.1f}/s)")
    assert compacted >= len(universe) and runs >= 30

    stored = pl.read_delta(node.table_uri)  # polars (delta-rs) reads it
    assert duplicate_keys(stored).height == 0
    expected = [(day(n), uid, original(uid, day(n))) for (uid,), count, _, _ in outcomes
                for n in range(1, SEED_DAYS + count + 1)]
    keys = ["unique_identifier", "time_index"]
    assert stored.select(*keys, "close").sort(keys).equals(frame(expected).select(*keys, "close").sort(keys))
    assert stored.height == len(universe) * SEED_DAYS + runs
