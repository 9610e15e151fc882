"""The identifier claim made in a thread (see test_first_run.py) under a thread executor, failing and
interrupted runs, and repeated runs of one node object: nothing written before a conflict is known,
no claim outliving its run."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from test_run import Step, day, delta

from lakenodes import DataNodeMetaData, IdentifierConflictError, Lake, NodeRunError
from lakenodes.catalog import catalog
from lakenodes.core.hashing import hash_namespace
from lakenodes.runtime import recorder as recorder_module
from lakenodes.runtime.run import run_single
from lakenodes.runtime.schedule import run_many


def published(name: str, identifier: str) -> Step:
    return Step(name, [], metadata=DataNodeMetaData(identifier=identifier))


def slow_claims(monkeypatch, seconds: float = 0.3) -> None:
    claim = catalog.claim_identifier

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return claim(*args, **kwargs)

    monkeypatch.setattr(catalog, "claim_identifier", slow)


def test_thread_executor_conflicts_write_nothing(local_lake: Lake, monkeypatch) -> None:
    published("owner", "contested").run()
    slow_claims(monkeypatch)
    nodes = [published(f"intruder{i}", "contested") for i in range(3)] + [published(f"free{i}", f"free{i}") for i in range(3)]
    with ThreadPoolExecutor(4) as pool, pytest.raises(NodeRunError) as caught:
        run_many(nodes, executor=pool)
    failures = caught.value.failures
    assert sorted(n.config.name for n in nodes if n.update_hash in failures) == ["intruder0", "intruder1", "intruder2"]
    for node in nodes:
        if node.update_hash in failures:
            assert failures[node.update_hash].phase == "registration"
            assert isinstance(failures[node.update_hash].cause, IdentifierConflictError)
            assert delta(node) is None
        else:
            assert catalog.resolve_identifier(local_lake, node.config.metadata.identifier if hasattr(node.config, "metadata") else node.get_table_metadata().identifier) == node.storage_hash


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit, RuntimeError])
def test_no_claim_outlives_a_failed_run_and_the_next_run_waits_for_its_own(local_lake: Lake, monkeypatch, stop) -> None:
    published("owner2", "taken").run()
    slow_claims(monkeypatch)
    hooks = recorder_module.default_hooks()
    node = published("intruder", "taken")
    node.failure = stop("stop")
    with pytest.raises((stop, NodeRunError)):
        run_single(node, hooks)
    assert hooks[0]._claims == {}
    node.failure = None
    with pytest.raises(NodeRunError) as caught:
        run_single(node, hooks)  # the same hooks and node object: its own claim, not a stale one
    assert caught.value.phase == "registration" and delta(node) is None
    assert hooks[0]._claims == {}


def test_no_rows_with_a_conflict_is_a_registration_failure(local_lake: Lake) -> None:
    published("owner3", "taken3").run()
    node = published("empty_intruder", "taken3")
    node.output = pl.DataFrame()
    with pytest.raises(NodeRunError) as caught:
        node.run()
    assert caught.value.phase == "registration"


def _stream(node: Step, consumed: list[float]) -> pl.LazyFrame | pa.RecordBatchReader:
    """Two days of rows as a RecordBatchReader, noting when its last batch was taken."""
    schema = pa.schema([("time_index", pa.timestamp("us", "UTC")), ("value", pa.float64())])

    def batches():
        for index in (1, 2):
            yield pa.record_batch([pa.array([day(index)], schema.field(0).type), pa.array([float(index)])], schema=schema)
        consumed.append(time.monotonic())

    return pa.RecordBatchReader.from_batches(schema, batches())


def test_a_stream_uploads_while_its_claim_is_checked_then_commits(local_lake: Lake, monkeypatch) -> None:
    claimed: list[float] = []
    claim = catalog.claim_identifier

    def slow(*args, **kwargs):
        time.sleep(1.0)
        claimed.append(time.monotonic())
        return claim(*args, **kwargs)

    monkeypatch.setattr(catalog, "claim_identifier", slow)
    node, consumed = published("streamer", "streamed"), []
    node.output = _stream(node, consumed)
    node.run()
    assert consumed[0] < claimed[0]  # every batch was taken (and its file written) during the claim
    assert delta(node).version() == 0 and delta(node).to_pyarrow_table().num_rows == 2
    assert catalog.resolve_identifier(local_lake, "streamed") == node.storage_hash


def test_a_stream_whose_claim_conflicts_commits_nothing_and_leaves_no_file(local_lake: Lake) -> None:
    published("owner4", "taken4").run()
    node, consumed = published("stream_intruder", "taken4"), []
    node.output = _stream(node, consumed)
    with pytest.raises(NodeRunError) as caught:
        node.run()
    assert caught.value.phase == "registration" and isinstance(caught.value.cause, IdentifierConflictError)
    assert consumed  # the stream was written, then its files deleted
    assert delta(node) is None
    table_folder = Path(node.table_uri)
    assert not table_folder.exists() or not [path for path in table_folder.rglob("*.parquet")]


@pytest.mark.parametrize("lookalike", ["_default", "a/../shared", "shared/", "./shared", "../../../../escaped", "n" * 300])
def test_a_namespace_claims_its_identifiers_apart_and_inside_the_lake(local_lake: Lake, tmp_path, lookalike) -> None:
    """Namespaces were folder names of their claims as they were: the test namespace '_default'
    took the production scope's identifiers, 'a/../shared' and 'shared' shared one scope, '..'
    wrote a claim outside the lake, and a 300-character one failed as a storage error."""
    scopes = {"": "the production tables", lookalike: "a namespace", "shared": "another namespace"}
    storage_hashes = {}
    for namespace in scopes:  # every one claims the identifier for its own table: no conflict
        with hash_namespace(namespace):
            node = published("node", "prices")
            assert node.run()[0] is False
            storage_hashes[namespace] = node.storage_hash
    assert len(set(storage_hashes.values())) == 3
    for namespace, storage_hash in storage_hashes.items():
        assert catalog.resolve_identifier(local_lake, "prices", namespace) == storage_hash
    root = Path(local_lake.uri)
    outside = [path for path in tmp_path.rglob("*") if root not in path.parents and path != root
               and path not in root.parents]
    assert outside == []
