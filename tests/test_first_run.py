"""A table's first run: the identifier claim runs in a thread while the rows are computed and
validated, and is waited for before any write (a conflict still writes nothing and is the run's
reported failure, in its registration phase, whichever phase failed too); the missing table is
looked for once, not again by each step before its creation."""

from __future__ import annotations

import logging
import threading

import polars as pl
import pyarrow as pa
import pytest
from test_run import Step, day, delta

from lakenodes import (
    DataNodeMetaData,
    FrameValidationError,
    IdentifierConflictError,
    Lake,
    NodeRunError,
)
from lakenodes.catalog import catalog
from lakenodes.lake import _tables
from lakenodes.lake.store import partition_transactions
from lakenodes.runtime.recorder import CatalogRecorder


def published(name: str, identifier: str = "shared_quotes") -> Step:
    return Step(name, [], metadata=DataNodeMetaData(identifier=identifier))


def assert_refused_in_registration(node: Step, lake: Lake) -> None:
    with pytest.raises(NodeRunError) as caught:
        node.run()
    assert caught.value.phase == "registration", caught.value
    assert isinstance(caught.value.cause, IdentifierConflictError)
    assert delta(node) is None  # nothing written, not even the table
    [run] = catalog.run_history(lake, node.update_hash)
    assert run["status"] == "error" and run["error"].startswith("registration: IdentifierConflictError")


def test_the_claim_overlaps_the_update(local_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    """The claim waits for update() to have started: were it made before update() (as it was), the
    run would wait out the claim's 10 s and the claim would see update() not started."""
    started = threading.Event()
    claim = catalog.claim_identifier
    seen: list[bool] = []

    def slow_claim(*args, **kwargs):
        seen.append(started.wait(10))
        return claim(*args, **kwargs)

    class Signalling(Step):
        def update(self):
            started.set()
            return super().update()

    monkeypatch.setattr(catalog, "claim_identifier", slow_claim)
    node = Signalling("overlap", [], metadata=DataNodeMetaData(identifier="overlapping_quotes"))
    error, written = node.run()
    assert seen and all(seen) and error is False and written.height == 1  # (the table record claims again)
    assert catalog.resolve_identifier(local_lake, "overlapping_quotes") == node.storage_hash


def test_a_conflict_is_refused_before_the_write(any_lake: Lake) -> None:
    published("owner").run()
    assert_refused_in_registration(published("intruder"), any_lake)


def test_a_conflict_is_reported_when_update_fails_too(local_lake: Lake) -> None:
    published("owner").run()
    intruder = published("failing_intruder")
    intruder.failure = RuntimeError("the vendor API is down")
    assert_refused_in_registration(intruder, local_lake)


def test_a_conflict_is_reported_when_validation_fails_too(local_lake: Lake) -> None:
    published("owner").run()
    intruder = published("invalid_intruder")
    intruder.output = pl.DataFrame({"value": [1.0]})  # no time_index
    assert_refused_in_registration(intruder, local_lake)


def test_a_conflict_fails_a_run_without_new_rows(local_lake: Lake) -> None:
    published("owner").run()
    intruder = published("idle_intruder")
    intruder.output = pl.DataFrame()
    assert_refused_in_registration(intruder, local_lake)


def test_a_failure_without_a_conflict_keeps_its_phase(local_lake: Lake) -> None:
    node = published("invalid_owner", identifier="owned_quotes")
    node.output = pl.DataFrame({"value": [1.0]})
    with pytest.raises(NodeRunError) as caught:
        node.run()
    assert caught.value.phase == "validation" and isinstance(caught.value.cause, FrameValidationError)
    # the claim finished meanwhile: the identifier is this table's, as a failed run's claim always was
    assert catalog.resolve_identifier(local_lake, "owned_quotes") == node.storage_hash


@pytest.mark.parametrize("streamed", [False, True], ids=["frame", "stream"])
def test_a_new_table_is_not_looked_for_by_steps_that_need_not(any_lake: Lake, monkeypatch, streamed: bool) -> None:
    """Each look is a log listing (a round trip on S3). The validation opens the table (one another
    writer created while update() ran types the rows, see test_first_run_races.py); the statistics'
    log listing, which found no log, is not repeated by an opening, and neither a stream's first
    batch nor the creation's own check looks again (they did: four looks for a frame, five for a
    stream, then two and three)."""
    looks: list[str] = []
    open_table = _tables._open

    def looking(uri, options):
        looks.append(uri)
        return open_table(uri, options)

    monkeypatch.setattr(_tables, "_open", looking)
    node = Step("looked_for_once", [])
    if streamed:
        rows = pa.table({"time_index": pa.array([day(1)], pa.timestamp("us", "UTC")), "value": [1.0]})
        node.output = pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches())
    error, _ = node.run()
    assert error is False and node.get_df_between_dates().height == 1
    before_creation = [uri for uri in looks if uri == node.store.uri][:1]
    assert len(before_creation) == 1
    assert [uri for uri in looks if uri == node.store.uri] == before_creation  # and none after it: created, cached


@pytest.mark.parametrize("kind", ["append", "restatement", "stream"])
def test_no_refresh_after_the_commit(any_lake: Lake, monkeypatch, kind: str) -> None:
    """The statistics after a write come from the snapshot the write left cached at its commit
    (a refresh is a log listing and a stamp request on S3); a merge brings that snapshot to its
    commit itself, before."""
    # the table written is the one counted: a fold of the pending run records (one run in 20, at
    # random) refreshes _catalog/runs, whose versions the count would mix in
    monkeypatch.setenv("LAKENODES_CATALOG_FOLD_EVERY", "0")
    node = Step("refreshed_once", [], days=2)
    node.run()
    refreshes_at: list[int] = []
    refreshed = _tables._refreshed

    def counting(entry, filesystem_of, guard):
        refreshes_at.append(entry.table.version())
        return refreshed(entry, filesystem_of, guard)

    monkeypatch.setattr(_tables, "_refreshed", counting)
    if kind == "restatement":
        node.output = pl.DataFrame({"time_index": [day(1), day(2)], "value": [10.0, 2.0]})
    elif kind == "stream":
        rows = pa.table({"time_index": pa.array([day(2)], pa.timestamp("us", "UTC")), "value": [2.0]})
        node.output = pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches())
    node.run()
    committed = delta(node).version()
    assert committed == 1 and node.update_statistics.max_time_index_value == day(2)
    assert refreshes_at and all(version < committed for version in refreshes_at)


def test_a_first_write_creates_its_table_holding_its_rows_in_one_commit(any_lake: Lake) -> None:
    """Regression (#17, backfills): a new table was created empty (version 0), then appended to
    (version 1): a commit and a table opening more than a raw write_deltalake of a new table. Its
    one commit carries what the empty creation did: the table's settings, its index names, its
    partitioning, the run's app transactions."""
    from lakenodes.lake.store import TABLE_CONFIGURATION

    node = Step("one_commit", [], days=3, metadata=DataNodeMetaData(identifier="one_commit_quotes"))
    node.output = pl.DataFrame({"time_index": [day(1), day(2)], "unique_identifier": ["A", "B"], "value": [1.0, 2.0]})
    node.run()
    table = delta(node)
    [commit] = table.history()
    assert table.version() == 0 and commit["operation"] == "WRITE" and commit["lakenodes.operation"] == "WRITE"
    assert table.to_pyarrow_table().num_rows == 2
    metadata = table.metadata()
    assert metadata.configuration == TABLE_CONFIGURATION and metadata.partition_columns == ["unique_identifier"]
    assert metadata.name == node.storage_hash and '"index_names": ["time_index", "unique_identifier"]' in metadata.description
    for transaction in partition_transactions(["A", "B"]):  # one app transaction per partition
        assert table.transaction_version(transaction.app_id) == 1
    assert catalog.resolve_identifier(any_lake, "one_commit_quotes") == node.storage_hash
    record = catalog.table_record(any_lake, node.storage_hash)
    assert [column.column_name for column in record.columns][-1] == "value"  # recorded with the stored columns


def test_a_table_another_writer_created_since_it_was_found_missing_is_appended_to(
        local_lake: Lake, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Another writer creates the table between this run's look (none) and its creating write: that
    write finds the table there (``mode="error"``), opens it and appends its rows to it: one table
    id, nothing lost or doubled."""
    from deltalake import write_deltalake

    import lakenodes.lake.store as store_module

    creating = store_module.create_with_rows

    def raced(uri, *args, **kwargs):
        first = pa.table({"time_index": pa.array([day(1)], pa.timestamp("us", "UTC")), "value": [1.0]})
        write_deltalake(uri, first)  # the other writer's first write lands first
        return creating(uri, *args, **kwargs)

    monkeypatch.setattr(store_module, "create_with_rows", raced)
    ready: list[str] = []
    table_ready = CatalogRecorder.table_ready
    monkeypatch.setattr(CatalogRecorder, "table_ready", lambda self, node: (ready.append(node.storage_hash),
                                                                            table_ready(self, node)))
    node = Step("raced", [], days=1)
    node.output = pl.DataFrame({"time_index": [day(2)], "value": [2.0]})
    with caplog.at_level(logging.DEBUG, logger="lakenodes.lake.store"):
        error, written = node.run()
    assert "created concurrently" in caplog.text and error is False and written.height == 1
    assert ready == [node.storage_hash]  # the table exists before this run's rows are committed: hooks hear it
    assert catalog.table_record(local_lake, node.storage_hash) is not None
    table = delta(node)
    assert table.version() == 1 and sorted(table.to_pyarrow_table().column("value").to_pylist()) == [1.0, 2.0]
    assert len([action for action in table.history() if action["operation"] == "WRITE"]) == 2


def test_a_new_tables_catalog_row_is_read_while_its_rows_are_written(local_lake: Lake, monkeypatch) -> None:
    """The table record is stored once the creating commit landed; the stored row it is compared with
    (labels to keep, a moved lake's old URI) is read before, in a thread, while the rows are written."""
    reads: list[bool] = []
    stored_rows = catalog.stored_table_rows

    def watched(*args):
        reads.append(threading.current_thread() is threading.main_thread())
        return stored_rows(*args)

    monkeypatch.setattr(catalog, "stored_table_rows", watched)
    node = published("read_ahead", identifier="read_ahead_quotes")
    node.run()
    assert reads == [False]  # once, in a thread
    assert catalog.table_record(local_lake, node.storage_hash).identifier == "read_ahead_quotes"
    reads.clear()
    node.days = 2
    node.run()  # the table exists: registered while the rows are written (table_ready), nothing read ahead
    assert reads == []
