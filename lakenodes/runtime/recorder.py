"""The catalog recorder: the run hook that claims identifiers and records updaters, tables and runs
in the lake's catalog (the only part of the runtime that writes the catalog).

Example:
    >>> [type(hook).__name__ for hook in default_hooks()]
    ['CatalogRecorder']
"""

from __future__ import annotations

import datetime
import inspect
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import Any

from .._internal.background import in_background
from .._internal.caches import register_cache
from ..catalog import catalog
from ..catalog.reconcile import reconcile_table
from ..catalog.records import TableRecord, columns_metadata, table_uid
from ..core.hashing import canonical_value, import_path_hash
from ..errors import IdentifierConflictError, clipped, one_line, plain_message, raised_at, store_timed_out
from ..lake.location import Lake, LakeKey
from ..lake.store import TableStore
from ..nodes.node import DataNode
from .hooks import RunHooks, RunInfo

SKIPPED = "skipped"
"""The status of the run record of a node not run because a dependency failed (no rows, no commit)."""

# (lake, storage hash) of the tables a run of this process committed to without recording itself:
# the next run of that table recovers it from the table's history (lakenodes.catalog.reconcile)
_unrecorded: set[tuple[LakeKey, str]] = register_cache("recorder.unrecorded_tables", set())


class CatalogRecorder(RunHooks):
    """Claims the node's identifier before writing, then records the updater, the table and each run
    in the lake's catalog."""

    def __init__(self) -> None:
        # by id(node): the registrations under way (each awaited, its failure raised, by the run's end)
        self._updaters: dict[int, Future[None]] = {}
        self._tables: dict[int, Future[Any]] = {}
        self._claims: dict[int, Future[None]] = {}
        self._stored: dict[int, Future[list[dict[str, Any]]]] = {}  # a new table's catalog row, read ahead
        self._registered_ids: dict[int, str] = {}  # the id of the table the registrations were made for
        self._skipped: dict[LakeKey, tuple[Lake, list[dict[str, Any]]]] = {}  # run rows, until tree_finished
        self._lock = threading.Lock()

    def run_started(self, node: DataNode) -> None:
        """Start registering the updater (a run records it whatever its outcome) and claiming the
        identifier of ``node.get_table_metadata()``, each in a thread while the run computes its
        rows; ``registered`` waits for the claim before any write (a conflict writes nothing). An
        identifier repointed from this table to another is not a conflict: the run keeps writing
        its own table, which is no longer published under that name."""
        if not catalog.updater_registered(node.lake, node.update_hash):
            with self._lock:
                self._updaters[id(node)] = in_background(lambda: _register_updater(node))
        metadata = node.checked_metadata()  # a wrong shape fails here, before any write
        identifier = metadata.identifier if metadata is not None else None
        if identifier and not catalog.identifier_claimed(node.lake, identifier, node.hash_namespace, node.storage_hash):
            with self._lock:
                self._claims[id(node)] = in_background(lambda: _claim(node, identifier))

    def registered(self, node: DataNode) -> None:
        """Wait for the identifier claim ``run_started`` began, raising its failure. For a table
        this run creates (found missing: its first write creates it holding its rows, and there is
        no ``table_ready``), start reading its catalog row, if any, which ``run_succeeded`` compares
        the table's record with once the rows are committed: read while they are written."""
        with self._lock:
            claiming = self._claims.pop(id(node), None)
        if claiming is not None:
            claiming.result()
        if node.store.found_missing():  # dropped since this process registered it? its next records start afresh,
            # but for the claim this run made or read a moment ago (forgotten, the table record would read it again)
            catalog.forget_table(node.lake, node.storage_hash, [node.update_hash], claims=claiming is None)
            with self._lock:
                self._stored[id(node)] = in_background(lambda: _stored_rows_of_new_table(node))
        elif node.store.is_open():  # what this process registered of the table is of that one (see run_succeeded)
            with self._lock:
                self._registered_ids.setdefault(id(node), _table_id(node))

    def table_ready(self, node: DataNode) -> None:
        """Start registering the table (in a thread, while its rows are written): it exists now, with
        the schema its rows are written in (a table's schema never changes). Its catalog row read
        ahead (a table found missing, which another writer created meanwhile) is used."""
        record = catalog_record(node)  # here: the cached table is not read from other threads while it is written
        table_id = _table_id(node)
        with self._lock:
            self._registered_ids.setdefault(id(node), table_id)
            stored = self._stored.pop(id(node), None)
            if id(node) not in self._tables:
                read_ahead = None if stored is None else stored.result
                self._tables[id(node)] = in_background(
                    lambda: catalog.register_table(node.lake, record, read_ahead, table_id))

    def run_succeeded(self, node: DataNode, run: RunInfo) -> None:
        """Register the updater and the table (at once: different ledgers; each maybe under way
        already), then record the run as a success (a registration failure makes it a failed run
        instead). A table dropped while the run computed its rows, which its write then created
        again, is recorded afresh (:func:`_forget_the_dropped_table`)."""
        with self._lock:
            table, updater = self._tables.pop(id(node), None), self._updaters.pop(id(node), None)
            stored = self._stored.pop(id(node), None)
            registered_id = self._registered_ids.pop(id(node), "")
        committed = _table_id(node)
        if committed and registered_id and committed != registered_id:  # see _forget_the_dropped_table
            _forget_the_dropped_table(node, [pending for pending in (table, updater, stored) if pending is not None])
            table = updater = stored = None
        registrations: list[Callable[[], Any]] = []
        if table is not None:
            registrations.append(table.result)
        elif committed:
            read_ahead = None if stored is None else stored.result
            registrations.append(lambda: catalog.register_table(node.lake, catalog_record(node), read_ahead, committed))
        # an updater this process registered already costs nothing: no thread for it
        if updater is not None:
            registrations.append(updater.result)
        elif not catalog.updater_registered(node.lake, node.update_hash):
            registrations.append(lambda: _register_updater(node))
        _concurrently(registrations)
        _record(node, run, "success", None)
        if (node.lake.cache_key, node.storage_hash) in _unrecorded:
            _recover(node)

    def run_failed(self, node: DataNode, run: RunInfo, phase: str, error: BaseException) -> None:
        committed = run.rows_written > 0  # unrecorded until the record below lands
        if committed:
            _unrecorded.add((node.lake.cache_key, node.storage_hash))
        with self._lock:
            table = self._tables.pop(id(node), None)
            claiming = self._claims.pop(id(node), None)
            stored = self._stored.pop(id(node), None)
            self._registered_ids.pop(id(node), None)
        for pending in (claiming, stored):  # settled (the runner reports its failure): nothing outlives the run
            if pending is not None:
                wait([pending])
        # recording would wait out the same timeouts again (doubling a dead store's hang); a timeout
        # update() raised is its own code's (an API not answering): a dead store fails the registration,
        # which is reported first
        if phase != "update" and store_timed_out(error):
            with self._lock:
                self._updaters.pop(id(node), None)
            node.logger.warning("the failed run is not recorded: the store did not answer in time")
            return
        if table is not None and table.exception() is not None:  # the table exists: its record is retried next run
            node.logger.warning("could not register table %s: %s", node.storage_hash, one_line(table.exception()))
        # one after the other: when the store is unreachable, the first failure ends the recording
        # (at once, the two writes would each wait out the storage timeouts on top of the run's own)
        self._updater_registered(node)
        where = raised_at(error)  # the user's line (update(), a streamed frame's generator), if theirs raised
        message = clipped(f"{phase}: {type(error).__name__}: {plain_message(error)}")
        _record(node, run, "error", message + (f" (at {where})" if where else ""))
        if committed:
            _unrecorded.discard((node.lake.cache_key, node.storage_hash))

    def run_skipped(self, node: DataNode, run: RunInfo, dependency: str, error: BaseException) -> None:
        """Keep the run's ``skipped`` record (no rows; its error naming the dependency that stopped it
        and the failure behind it) for ``tree_finished``; the updater is registered as by any run. A failure of the store
        not answering is not recorded again (as in ``run_failed``: it would wait out the timeouts)."""
        if getattr(error, "phase", None) != "update" and store_timed_out(error):
            node.logger.warning("the skipped run is not recorded: the store did not answer in time")
            return
        self._updater_registered(node)
        how = "was skipped, as it depends on a failed node" if dependency in getattr(error, "skipped", ()) else "failed"
        row = _run_row(node, run, SKIPPED, clipped(f"dependency {dependency} {how}: {one_line(str(error))}"))
        with self._lock:  # recorded together by tree_finished: one catalog commit, however many were skipped
            self._skipped.setdefault(node.lake.cache_key, (node.lake, []))[1].append(row)

    def tree_finished(self) -> None:
        """Record the runs skipped since the last call: one commit per lake, not one per node."""
        with self._lock:
            skipped, self._skipped = self._skipped, {}
        for lake, rows in skipped.values():
            catalog.record_run(lake, *rows)

    def _updater_registered(self, node: DataNode) -> None:
        """Wait for the registration ``run_started`` began (raising its failure), or register the
        updater now when none was begun (a no-op once this process registered it)."""
        with self._lock:
            registering = self._updaters.pop(id(node), None)
        if registering is None:
            _register_updater(node)
        else:
            registering.result()


def default_hooks() -> tuple[RunHooks, ...]:
    """The hooks every run has: the catalog recorder."""
    return (CatalogRecorder(),)


def catalog_record(node: DataNode) -> TableRecord:
    """The catalog record describing ``node``'s table (metadata from its configuration)."""
    metadata = node.get_table_metadata()
    store = node.store
    schema, index_names = node._declared_schema()
    stored = store.schema()
    if stored is not None:
        schema, index_names = stored, store.index_names()
    return TableRecord(
        uid=table_uid(node.storage_hash),
        storage_hash=node.storage_hash,
        identifier=metadata.identifier if metadata else None,
        namespace=node.hash_namespace,
        description=metadata.description if metadata else None,
        labels=list(metadata.labels) if metadata else [],
        data_frequency_id=metadata.data_frequency_id if metadata else None,
        index_names=list(index_names),
        columns=columns_metadata(schema, index_names, node.get_column_metadata()),
        source_class=node.source_class,
        # cleandoc: Python 3.13 dedents docstrings when it compiles them, 3.11 and 3.12 keep the indentation
        source_doc=inspect.cleandoc(type(node).__doc__ or "").strip() or None,
        build_configuration=canonical_value(node.config, "storage"),
        table_uri=store.uri,
    )


def _table_id(node: DataNode) -> str:
    """The ``metaData.id`` of ``node``'s table as this process holds it ("" before it exists): a table
    dropped and created again is another table, recorded again."""
    table = node.store.table(refresh=False)
    return "" if table is None else table.metadata().id


def _forget_the_dropped_table(node: DataNode, registrations: list[Future[Any]]) -> None:
    """Forget what this process registered of ``node``'s table (record, updater, identifier claim)
    once ``registrations`` (this run's, begun before its write) have settled, whatever their
    outcome: the table was dropped while the run computed its rows, and its write created it again
    (another table id). The drop removed those records: the registrations made afresh record the
    table the run wrote, as a first run does."""
    wait(registrations)
    node.logger.info("table %s was dropped while this run computed its rows, and its write created it again: "
                     "recording it afresh", node.storage_hash)
    catalog.forget_table(node.lake, node.storage_hash, [node.update_hash])


def _concurrently(writes: list[Callable[[], None]]) -> None:
    """Run catalog writes to different ledgers at once (each is a few storage round trips: a fresh
    process reads the ledger before it appends); raise the first failure once all have finished."""
    if not writes:
        return
    futures = [in_background(write) for write in writes[1:]]
    try:
        writes[0]()  # in this thread: one thread fewer to wait for
    finally:
        wait(futures)
    for future in futures:
        future.result()


def _record(node: DataNode, run: RunInfo, status: str, error: str | None) -> None:
    catalog.record_run(node.lake, _run_row(node, run, status, error), pending=status == "success")


def _run_row(node: DataNode, run: RunInfo, status: str, error: str | None) -> dict[str, Any]:
    """The catalog row of ``run`` of ``node``, finished now."""
    return {
        "run_id": run.run_id, "update_hash": node.update_hash, "storage_hash": node.storage_hash,
        "started_at": run.started_at, "finished_at": datetime.datetime.now(datetime.timezone.utc),
        "status": status, "rows_written": run.rows_written, "error": error, "host": socket.gethostname(),
    }


def _recover(node: DataNode) -> None:
    """Record the runs that committed to ``node``'s table but never recorded themselves (an earlier
    run of this process whose record failed); a failure is only logged (the next run tries again)."""
    try:
        reconcile_table(node.lake, node.storage_hash)
    except Exception as error:  # noqa: BLE001 - this run succeeded and is recorded
        node.logger.warning("could not recover the unrecorded runs of %s: %s", node.storage_hash, one_line(error))
        return
    _unrecorded.discard((node.lake.cache_key, node.storage_hash))


def _claim(node: DataNode, identifier: str) -> None:
    try:
        claimed = catalog.claim_identifier(node.lake, identifier, node.hash_namespace, node.storage_hash)
    except IdentifierConflictError as error:
        old_hash = import_path_hash(type(node), node.config, "storage", node.hash_namespace)
        if old_hash is None or catalog.resolve_identifier(node.lake, identifier, node.hash_namespace) != old_hash:
            raise
        raise IdentifierConflictError(
            f"identifier {identifier!r} is held by table {old_hash}, which {node.source_class} wrote under a lakenodes "
            "that hashed classes by their import path (this one computes "
            f"{node.storage_hash}); to keep writing that table set HASH_NAME: ClassVar[str] = "
            f"{node.source_class!r} on class {type(node).__qualname__} (docs/identity.md, 'Upgrading lakes "
            "written before this rule')"
        ) from error
    if not claimed:
        node.logger.warning(
            "identifier %r now points to table %s (it was repointed): this run keeps writing its own table %s, "
            "which is no longer published under that name", identifier,
            catalog.resolve_identifier(node.lake, identifier, node.hash_namespace), node.storage_hash)


def _stored_rows_of_new_table(node: DataNode) -> list[dict[str, Any]]:
    """The catalog row of the table this run creates, after warning when the lake holds the table
    an earlier lakenodes wrote for this class and configuration (hashed by its import path)."""
    old_hash = import_path_hash(type(node), node.config, "storage", node.hash_namespace)
    if old_hash is not None and TableStore(node.lake, old_hash).exists():
        node.logger.warning(
            "this run creates table %s, while the lake holds %s, which %s wrote with this configuration under a "
            "lakenodes that hashed classes by their import path; to keep writing that table set HASH_NAME: "
            "ClassVar[str] = %r on class %s (docs/identity.md, 'Upgrading lakes written before this rule')",
            node.storage_hash, old_hash, node.source_class, node.source_class, type(node).__qualname__)
    return catalog.stored_table_rows(node.lake, node.storage_hash)


def _register_updater(node: DataNode) -> None:
    catalog.register_updater(
        node.lake, node.update_hash, node.storage_hash, node.hash_namespace, node.source_class,
        canonical_value(node.config, "update"),
    )
