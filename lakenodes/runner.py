"""``run()``: dependencies first (each node once), then statistics → update → validation → write.

Every phase failure is raised as NodeRunError naming the node, the phase and the cause; a
failure before the write leaves the table untouched.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import logging
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import Any

import polars as pl
import pyarrow.compute as pc
from deltalake import DeltaTable

from . import catalog
from .errors import DependencyCycleError, NodeRunError, RowsStoredError, WatermarkMovedError
from .frames import TIME_INDEX, NormalizedFrame, conform_to_schema, normalize_frame
from .hashing import canonical_value, hash_namespace
from .lake import use_lake
from .node import APIDataNode, BaseNode, DataNode
from .statistics import TableProgress, read_progress, remember_append

logger = logging.getLogger(__name__)
# statistics -> update -> validation runs at most this often per run: again when a concurrent tail
# delete moved a watermark back between the statistics update() used and the write
COMPUTATIONS = 3


def run_tree(root: DataNode, *, update_tree: bool = True, executor: Executor | None = None) -> tuple[bool, pl.DataFrame]:
    """Run ``root`` (and, with ``update_tree``, its dependency tree first); see ``DataNode.run``."""
    if not update_tree:
        return False, run_single(root)
    with _node_context(root):
        written = run_many([root], executor=executor)
    return False, written[root.update_hash]


ProgressCallback = Callable[[int, int, "DataNode | None"], None]


def run_many(
    nodes: Sequence[DataNode], *, executor: Executor | None = None, on_progress: ProgressCallback | None = None,
) -> dict[str, pl.DataFrame]:
    """Run several trees together: every node once, dependencies first; returns rows written per update_hash.

    With an ``executor`` (a spawn process pool, a Dask ``distributed`` client's executor, …)
    independent branches and sharded updaters of one table run in parallel; a node starts when
    all its dependencies finished. Results are identical to a serial run. ``on_progress(done,
    total, node)`` is called once before the first node (``node=None``) and after each one.

    Example:
        >>> from concurrent.futures import ProcessPoolExecutor
        >>> import multiprocessing
        >>> with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:  # doctest: +SKIP
        ...     run_many([SimulatedPrices(batch_1), SimulatedPrices(batch_2)], executor=pool)
    """
    graph: dict[str, DataNode] = {}
    needs: dict[str, set[str]] = {}
    for root in nodes:
        with _node_context(root):
            collect_dependencies(root, graph, needs)
    report = on_progress or (lambda done, total, node: None)
    report(0, len(graph), None)
    if executor is None:
        results, failures = _run_serially(graph, needs, report)
    else:
        results, failures = _run_on_executor(graph, needs, executor, report)
    if failures:
        first, *others = {id(error): error for error in failures.values()}.values()  # skipped nodes share it
        for other in others:
            logger.error("also failed: %s", other)
        raise first
    return results


def _run_serially(
    graph: dict[str, DataNode], needs: dict[str, set[str]], report: ProgressCallback,
) -> tuple[dict[str, pl.DataFrame], dict[str, NodeRunError]]:
    results: dict[str, pl.DataFrame] = {}
    failures: dict[str, NodeRunError] = {}
    for key, node in graph.items():
        if not _skipped_for_failed_dependency(key, needs, failures, graph):
            try:
                results[key] = run_single(node)
            except NodeRunError as error:
                failures[key] = error
        report(len(results) + len(failures), len(graph), node)
    return results, failures


def _run_on_executor(
    graph: dict[str, DataNode], needs: dict[str, set[str]], executor: Executor, report: ProgressCallback,
) -> tuple[dict[str, pl.DataFrame], dict[str, NodeRunError]]:
    """A node starts when its dependencies succeeded; a failure skips only the nodes that depend on
    it, so independent nodes still finish."""
    results: dict[str, pl.DataFrame] = {}
    failures: dict[str, NodeRunError] = {}
    running: dict[Future, str] = {}
    pending = dict(needs)
    try:
        while pending or running:
            for key in [key for key, deps in pending.items() if deps <= results.keys() | failures.keys()]:
                del pending[key]
                if _skipped_for_failed_dependency(key, needs, failures, graph):
                    report(len(results) + len(failures), len(graph), graph[key])
                    continue
                # a fresh argument per submission: executors that cache by arguments (Dask's default
                # pure=True) would otherwise hand back an earlier run's result without running
                running[executor.submit(run_submission, graph[key], uuid.uuid4().hex)] = key
            if not running:
                if pending:
                    raise DependencyCycleError(f"dependency cycle among {sorted(pending)}")
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                try:
                    results[key] = future.result()
                except NodeRunError as error:
                    failures[key] = error
                report(len(results) + len(failures), len(graph), graph[key])
    finally:
        for future in running:
            future.cancel()
    return results, failures


def run_submission(node: DataNode, submission_id: str) -> pl.DataFrame:
    """``run_single`` as submitted to an executor; ``submission_id`` makes every submission distinct."""
    logger.debug("running submission %s of %r", submission_id, node)
    return run_single(node)


def _skipped_for_failed_dependency(
    key: str, needs: dict[str, set[str]], failures: dict[str, NodeRunError], graph: dict[str, DataNode],
) -> bool:
    failed = needs[key] & failures.keys()
    if failed:
        failures[key] = failures[next(iter(failed))]
        logger.warning("skipping %r: its dependency %s failed", graph[key], sorted(failed)[0])
    return bool(failed)


@contextlib.contextmanager
def _node_context(node: DataNode) -> Iterator[None]:
    """Re-activate the node's namespace and lake so dependencies built during the run inherit them."""
    with use_lake(node.lake):
        if node.hash_namespace:
            with hash_namespace(node.hash_namespace):
                yield
        else:
            yield


def collect_dependencies(root: DataNode, graph: dict[str, DataNode], needs: dict[str, set[str]]) -> None:
    """Add the tree under ``root`` to ``graph`` in topological order (dependencies first, each
    update_hash once; ``dependencies()`` is called once per node) and what each node waits for
    to ``needs``. Read-only APIDataNodes are leaves that never run."""
    path: list[str] = []

    def visit(node: BaseNode) -> None:
        key = node.update_hash
        if key in graph or not isinstance(node, DataNode):
            return
        if key in path:
            cycle = path[path.index(key):] + [key]
            raise DependencyCycleError(f"dependency cycle: {' -> '.join(cycle)}")
        path.append(key)
        dependencies = _dependencies_of(node)
        for dependency in dependencies:
            visit(dependency)
        path.pop()
        graph[key] = node
        needs[key] = {dependency.update_hash for dependency in dependencies if isinstance(dependency, DataNode)}

    visit(root)


def _dependencies_of(node: DataNode) -> list[BaseNode]:
    try:
        dependencies = node.dependencies()
    except NodeRunError:
        raise
    except Exception as error:  # user code: report it like every other phase
        raise NodeRunError(repr(node), "dependencies", error) from error
    if not isinstance(dependencies, dict):
        raise NodeRunError(repr(node), "dependencies", TypeError("dependencies() must return a dict"))
    for name, dependency in dependencies.items():
        if not isinstance(dependency, (DataNode, APIDataNode)):
            raise NodeRunError(
                repr(node), "dependencies",
                TypeError(f"dependency {name!r} is a {type(dependency).__name__}, not a DataNode"),
            )
    return list(dependencies.values())


_phase_listener: contextvars.ContextVar[Callable[[DataNode, str], None] | None] = contextvars.ContextVar(
    "lakenodes_phase_listener", default=None)


@contextlib.contextmanager
def watch_phases(listener: Callable[[DataNode, str], None]) -> Iterator[None]:
    """Call ``listener(node, phase)`` as nodes run in this process enter each phase (e.g. a progress bar
    showing that a long backfill is validating or writing)."""
    token = _phase_listener.set(listener)
    try:
        yield
    finally:
        _phase_listener.reset(token)


def _enter(node: DataNode, phase: str) -> str:
    logger.debug("%r: %s phase", node, phase)
    listener = _phase_listener.get()
    if listener is not None:
        listener(node, phase)
    return phase


def run_single(node: DataNode) -> pl.DataFrame:
    """Run one node (not its dependencies); return the rows it persisted."""
    started = datetime.datetime.now(datetime.timezone.utc)
    run_id = uuid.uuid4().hex
    rows_written = 0
    committed = False
    phase = _enter(node, "registration")
    try:
        with _node_context(node):
            _claim_identifier(node)
            for computation in range(1, COMPUTATIONS + 1):  # again when a tail delete moved watermarks back
                phase = _enter(node, "statistics")
                node.update_statistics = node.compute_update_statistics()
                stats = node.update_statistics
                if stats.asset_list is not None and len(stats.asset_list) == 0:
                    node.logger.warning(
                        "get_asset_list() returned no assets, so there is nothing to update; on a fresh lake the "
                        "asset registry is empty: register assets first (Asset.batch_get_or_register_custom_assets)")
                phase = _enter(node, "update")
                output = node.update()
                phase = _enter(node, "validation")
                frame = _validate(node, output)
                if frame is None:
                    node.logger.info("no new rows (watermark %s)", stats.max_time_index_value)
                    phase = _enter(node, "catalog")
                    _register(node)
                    _record(node, run_id, started, "success", 0, None)
                    return pl.DataFrame()
                phase = _enter(node, "write")
                checked: list[TableProgress] = []
                try:
                    result = node.store.write(
                        frame, watermarks=_progress_reader(node, checked), seen=stats.progress.last,
                        metadata={"lakenodes.update_hash": node.update_hash, "lakenodes.run_id": run_id},
                    )
                    break
                except WatermarkMovedError as moved:
                    if computation == COMPUTATIONS:
                        raise
                    node.logger.warning("%s: computing the rows again (%d of %d)", moved, computation + 1,
                                        COMPUTATIONS)
            rows_written = result.rows_written
            committed = True
            if checked and result.rows_appended == frame.num_rows:  # a blind append we committed ourselves
                remember_append(node.store.table(), checked[-1], frame.table, node.lake, run_id)
            _log_window(node, stats, frame, result)
            phase = _enter(node, "catalog")
            _register(node)
            node.update_statistics = node.compute_update_statistics()
            _record(node, run_id, started, "success", rows_written, None)
            return pl.from_arrow(frame.table)
    except Exception as error:
        _record_failure(node, run_id, started, rows_written, phase, error)
        if committed:
            cause = error.cause if isinstance(error, NodeRunError) else error
            raise RowsStoredError(repr(node), phase, cause, rows_written) from error
        if isinstance(error, NodeRunError):
            raise
        raise NodeRunError(repr(node), phase, error) from error


def _progress_reader(node: DataNode, checked: list[TableProgress]) -> Callable[[DeltaTable], dict]:
    """The write's watermark callback: the stored progress of the snapshot a write attempt decides
    from, remembered in ``checked`` (the last one is the snapshot of the attempt that committed)."""

    def watermarks(table: DeltaTable) -> dict:
        checked.append(read_progress(table, node.lake))
        return checked[-1].last

    return watermarks


def _claim_identifier(node: DataNode) -> None:
    """Claim the identifier of ``node.get_table_metadata()`` before any write (a conflict writes
    nothing). An identifier repointed from this table to another is not a conflict: the run keeps
    writing its own table, which is no longer published under that name."""
    metadata = node.get_table_metadata()
    identifier = metadata.identifier if metadata is not None else None
    if not identifier:
        return
    if not catalog.claim_identifier(node.lake, identifier, node.hash_namespace, node.storage_hash):
        node.logger.warning(
            "identifier %r now points to table %s (it was repointed): this run keeps writing its own table %s, "
            "which is no longer published under that name", identifier,
            catalog.resolve_identifier(node.lake, identifier, node.hash_namespace), node.storage_hash)


def _validate(node: DataNode, output: Any) -> NormalizedFrame | None:
    records = getattr(node.config, "records", None)
    frame = normalize_frame(output, node.IDENTITY_DIMENSIONS, records)
    if frame is None:
        return None
    store = node.store
    stored_schema = store.schema()
    if stored_schema is not None:
        frame = conform_to_schema(frame, stored_schema, store.index_names())
    return frame


def _log_window(node: DataNode, stats: Any, frame: NormalizedFrame, result: Any) -> None:
    times = frame.table.column(TIME_INDEX)
    assets = 1
    if frame.identity_dimensions:
        assets = len(pc.unique(frame.table.column(frame.identity_dimensions[0])))
    node.logger.info(
        "wrote %d rows (%d appended, %d upserted) for %d %s, window %s .. %s (previous watermark %s)",
        result.rows_written, result.rows_appended, result.rows_upserted, assets,
        frame.identity_dimensions[0] if frame.identity_dimensions else "series",
        pc.min(times).as_py(), pc.max(times).as_py(), stats.max_time_index_value,
    )


def catalog_record(node: DataNode) -> catalog.TimeIndexMetaTable:
    """The catalog record describing ``node``'s table (metadata from its configuration)."""
    metadata = node.get_table_metadata()
    store = node.store
    schema, index_names = node._declared_schema()
    stored = store.schema()
    if stored is not None:
        schema, index_names = stored, store.index_names()
    return catalog.TimeIndexMetaTable(
        uid=catalog.table_uid(node.storage_hash),
        storage_hash=node.storage_hash,
        identifier=metadata.identifier if metadata else None,
        namespace=node.hash_namespace,
        description=metadata.description if metadata else None,
        labels=list(metadata.labels) if metadata else [],
        data_frequency_id=metadata.data_frequency_id if metadata else None,
        index_names=list(index_names),
        columns=catalog.columns_metadata(schema, index_names, node.get_column_metadata()),
        source_class=node.source_class,
        source_doc=(type(node).__doc__ or "").strip() or None,
        build_configuration=canonical_value(node.config, "storage"),
        table_uri=store.uri,
    )


def _record(node: DataNode, run_id: str, started: datetime.datetime, status: str, rows: int, error: str | None) -> None:
    catalog.record_run(node.lake, {
        "run_id": run_id, "update_hash": node.update_hash, "storage_hash": node.storage_hash,
        "started_at": started, "finished_at": datetime.datetime.now(datetime.timezone.utc),
        "status": status, "rows_written": rows, "error": error, "host": socket.gethostname(),
    })


def _register(node: DataNode) -> None:
    """Record the updater and, once its table exists, the table's catalog record (when it changed)."""
    _register_updater(node)
    if node.store.table(refresh=False) is not None:
        catalog.register_table(node.lake, catalog_record(node))


def _register_updater(node: DataNode) -> None:
    catalog.register_updater(
        node.lake, node.update_hash, node.storage_hash, node.hash_namespace, node.source_class,
        canonical_value(node.config, "update"),
    )


def _record_failure(node: DataNode, run_id: str, started: datetime.datetime, rows: int, phase: str,
                    error: BaseException) -> None:
    try:
        _register_updater(node)
        _record(node, run_id, started, "error", rows, f"{phase}: {type(error).__name__}: {error}")
    except Exception as record_error:  # never hide the original failure (storage errors are DeltaError too)
        logger.warning("could not record the failed run of %s: %s", node.update_hash, record_error)
