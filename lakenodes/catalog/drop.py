"""Drop a table: its data and log files, its catalog records and its published identifier.

The steps (:data:`STEPS`), in this order, each idempotent, so that a drop stopped anywhere (a
killed process) leaves a readable lake and a second drop finishes it:

1. ``tombstone``: the table's record is saved with ``deleted`` (one blind append), and the table
   records' marks are removed (an older lakenodes' mark would keep it from recording the table it
   creates again, docs/upgrading.md): from here on
   ``data-node list``/``detail``/``org-unique-identifiers``, search (its next catch-up deletes
   the table from the index) and ``updates reconcile`` no longer see the table; a drop finds it
   again by its storage hash, uid or identifier to finish.
2. ``identifier``: every identifier claim this table holds is removed (version 0 first: see
   ``claims.release``), so another table can claim the name: in every namespace, for every
   identifier its records ever had (``repoint_identifier`` into another namespace leaves the
   claim of the first one pointing at it too).
3. ``updaters``: the updaters writing the table leave ``_catalog/updates`` (and their marks).
4. ``runs``: their runs leave ``_catalog/runs`` (pending records folded first). Reconcile never
   recovers them from the table's history: it skips dropped tables (step 1).
5. ``files``: the table's folder is removed, log first (``lakenodes.lake.table_removal``).
6. ``drop mark``: the mark step 1 left is removed, last, so that a drop stopped before keeps it for
   a run taking the table back and for a second drop's refusal. A second drop finishing one that
   stopped after step 5 finds no table to read its id from, so it leaves that mark (a few bytes,
   naming a table id no table has any more).

A run of this very table (by its Delta table id) after step 1, from a process that registers it
afresh, takes the table back and cancels the drop (``catalog.register_table``; step 1 leaves a
mark first for that); a drop finishing one that began earlier refuses, unless ``force``, when rows
were written to the table after the first began (:func:`rows_written_since_the_drop_began`).

The tombstone stays: it records that the table was dropped. The node's next run finds no table,
creates it at version 0 and records it afresh (a new record, updater and claim), as a first run;
so does a run under way during the drop whose write creates it again (``runtime.recorder``).

Example (``example``: a temporary lake with one table, see conftest.py):
    >>> plan = drop_table(example.lake, example.table, dry_run=True)
    >>> plan["dry_run"], plan["rows"], plan["identifier_freed"]
    (True, 8, 'example_prices')
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

from deltalake.exceptions import DeltaError

from .._internal.afterwards import settle
from .._internal.deferred import pc
from ..errors import LakenodesUserError, StorageError
from ..lake._delta_log import commit_stamp
from ..lake._scan import add_actions
from ..lake.claims import claim_owner, identifier_scope, identifier_scopes, release
from ..lake.ledger import RECORDED_AT
from ..lake.ledger_prune import remove_rows
from ..lake.location import Lake, lake_filesystem
from ..lake.pending import Pending
from ..lake.store import TableStore
from ..lake.table_removal import remove_table_folder, stored_files
from .catalog import (
    DROP_MARKS,
    all_tables,
    drop_mark,
    dropped_tables,
    forget_table,
    runs_ledger,
    save_table_record,
    tables_ledger,
    updates_ledger,
)
from .records import TableRecord

logger = logging.getLogger(__name__)


def plan_drop(lake: Lake, record: TableRecord) -> dict[str, Any]:
    """What dropping ``record``'s table removes: ``rows`` (of its current version; None when its log
    is unreadable, a drop stopped half-way), ``files`` and ``bytes`` (everything under its folder,
    old versions and log included), its ``update_processes`` (update hashes) and their ``runs``,
    the ``identifier_freed`` (None when the table holds none in its namespace), every claim it holds
    (``identifiers_freed``: identifier and namespace, see :func:`held_claims`) and ``catalog_records``."""
    name = record.storage_hash
    files = stored_files(lake, record.table_uri)
    try:
        table = TableStore(lake, name).table()
        rows = 0 if table is None else int(pc.sum(add_actions(table)["num_records"]).as_py() or 0)
        table_id, version = (None, None) if table is None else (table.metadata().id, table.version())
    except (StorageError, DeltaError, OSError) as error:  # a log a stopped drop left half-removed
        logger.info("table %s cannot be read (%s): counting its files only", name, error)
        rows = table_id = version = None
    updaters = [row["update_hash"] for row in updates_ledger(lake).latest(where={"storage_hash": name})]
    runs = Pending(runs_ledger(lake)).rows()
    run_count = int(pc.sum(pc.equal(runs["storage_hash"], name)).as_py() or 0) if runs.num_rows else 0
    claims = held_claims(lake, record)
    own = {"identifier": record.identifier, "namespace": record.namespace}
    freed = record.identifier if own in claims else None
    return {
        "ok": True, "meta_table_uid": record.uid, "storage_hash": name, "identifier": record.identifier,
        "namespace": record.namespace, "table_uri": record.table_uri, "table_id": table_id, "table_version": version, "dry_run": True, "rows": rows,
        "files": len(files), "bytes": sum(size for _, size in files), "update_processes": updaters, "runs": run_count,
        "identifier_freed": freed, "identifiers_freed": claims,
        "catalog_records": {"tables": 0 if record.deleted else 1, "updates": len(updaters), "runs": run_count,
                            "identifier_claims": len(claims)},
    }


def held_claims(lake: Lake, record: TableRecord) -> list[dict[str, str]]:
    """The identifier claims ``record``'s table holds (``{identifier, namespace}``, sorted): each
    identifier any of its catalog records ever had, looked up in every namespace's claims."""
    name = record.storage_hash
    history = tables_ledger(lake).read()
    recorded = history.filter(pc.equal(history["storage_hash"], name))["identifier"].to_pylist()
    identifiers = sorted({identifier for identifier in [*recorded, record.identifier] if identifier})
    scopes = identifier_scopes(lake) if identifiers else []
    owners = [claim_owner(lake, scope, identifier) for identifier in identifiers for scope in scopes]
    held = [{"identifier": owner["identifier"], "namespace": owner["namespace"]} for owner in owners
            if owner is not None and owner["storage_hash"] == name]
    return sorted(held, key=lambda claimed: (claimed["namespace"], claimed["identifier"]))


def dependents(lake: Lake, record: TableRecord, update_hashes: list[str]) -> list[str]:
    """The other tables whose recorded configuration names one of ``update_hashes`` (a DataNode in a
    configuration is recorded as its update hash): tables built from this one. Dependencies a node
    builds in its ``__init__`` or ``dependencies()`` are not recorded, so not found."""
    if not update_hashes:
        return []
    names = {table.storage_hash: table.identifier or table.storage_hash for table in all_tables(lake)}
    gone = dropped_tables(lake) | {record.storage_hash}
    return sorted({names.get(row["storage_hash"], row["storage_hash"]) for row in updates_ledger(lake).latest()
                   if row["storage_hash"] not in gone and any(h in (row["configuration"] or "") for h in update_hashes)})


def rows_written_since_the_drop_began(lake: Lake, record: TableRecord) -> tuple[int, datetime.datetime] | None:
    """The rows in files added to ``record``'s table after its drop began (a drop that stopped, then
    a run that wrote to the table), and the time the drop began (its record marked deleted); None
    when the table cannot be read (a log a stopped drop left half-removed: no run writes to it).
    Files are those added since the version the drop saw (its mark holds it), else, for a drop
    begun by an older lakenodes, those written after that time by their writers' clocks."""
    began = tables_ledger(lake).latest(where={"storage_hash": record.storage_hash})[0][RECORDED_AT]
    store = TableStore(lake, record.storage_hash)
    try:
        table = store.table()
        if table is None or _remnant(lake, table):
            return None
        actions = add_actions(table)
    except (StorageError, DeltaError, OSError):
        return None
    try:
        seen = tables_ledger(lake).mark_data(drop_mark(record.storage_hash, table.metadata().id), group=DROP_MARKS)
    except OSError as error:  # counted by time then
        logger.info("the mark of the drop of %s cannot be read: %s", record.storage_hash, error)
        seen = None
    later = pc.greater(actions["modification_time"], int(began.timestamp() * 1000))  # ms, by the writers' clocks
    if seen:  # exact: whatever was committed after that version, whoever wrote it, whenever
        try:
            later = pc.invert(pc.is_in(actions["path"], add_actions(store.table_as_of(int(seen)))["path"]))
        except (LakenodesUserError, StorageError, DeltaError, OSError) as error:
            logger.info("the version %s a drop of %s began at cannot be read (%s): counting by time", seen.decode(),
                        record.storage_hash, error)
    return int(pc.sum(pc.filter(actions["num_records"], later)).as_py() or 0), began


def _remnant(lake: Lake, table: Any) -> bool:
    """Whether ``table``'s log lacks the commit of its own version: a checkpoint a write that spanned a
    drop made after the drop had removed the log (a healthy log always keeps its latest commit). No
    run writes to such a table, whose rows its writer saw committed before the drop removed them."""
    filesystem, root = lake_filesystem(lake, table.table_uri)
    return commit_stamp(filesystem, root, table.version())[1] is None


def _tombstone(lake: Lake, record: TableRecord, plan: dict[str, Any]) -> None:
    if plan["table_id"]:  # first: a run of this very table from then on takes it back (catalog.register_table)
        tables_ledger(lake).mark(drop_mark(record.storage_hash, plan["table_id"]), str(plan["table_version"]).encode(),
                                 group=DROP_MARKS)
    if not record.deleted:
        save_table_record(lake, record.model_copy(update={"deleted": True}))
    # then: a run of the table from a new process no longer finds its record marked as registered,
    # reads it, finds it deleted and takes the table back (catalog.register_table)
    tables_ledger(lake).unmark_group(record.storage_hash)
    forget_table(lake, record.storage_hash, plan["update_processes"])
    # lakenodes before the table id was part of a record's mark (57a891a and older) still finds its
    # mark of the live record and would not record the table it creates again: it stayed dropped
    tables_ledger(lake).unmark_ungrouped()


def _identifier(lake: Lake, record: TableRecord, plan: dict[str, Any]) -> None:
    for claimed in plan["identifiers_freed"]:
        release(lake, identifier_scope(claimed["namespace"]), claimed["identifier"])


def _updaters(lake: Lake, record: TableRecord, plan: dict[str, Any]) -> None:
    ledger = updates_ledger(lake)
    remove_rows(ledger, "storage_hash", [record.storage_hash])
    for update_hash in plan["update_processes"]:
        ledger.unmark(update_hash)


def _runs(lake: Lake, record: TableRecord, plan: dict[str, Any]) -> None:
    Pending(runs_ledger(lake)).fold()  # every run in the table: a pending record is removed as any other
    remove_rows(runs_ledger(lake), "storage_hash", [record.storage_hash])


def _files(lake: Lake, record: TableRecord, plan: dict[str, Any]) -> None:
    settle()  # a run of this process may still be saving the table's file facts (on S3, after run() returned)
    remove_table_folder(lake, record.table_uri)


def _drop_mark(lake: Lake, record: TableRecord, plan: dict[str, Any]) -> None:
    if plan["table_id"]:  # None when a drop that stopped had removed the table already: its mark stays (step 6)
        tables_ledger(lake).unmark(drop_mark(record.storage_hash, plan["table_id"]), group=DROP_MARKS)


STEPS: tuple[Callable[[Lake, TableRecord, dict[str, Any]], None], ...] = (
    _tombstone, _identifier, _updaters, _runs, _files, _drop_mark)


def drop_table(lake: Lake, record: TableRecord, *, force: bool = False, dry_run: bool = False) -> dict[str, Any]:
    """Drop ``record``'s table (see the module doc); returns :func:`plan_drop`'s document (what was,
    or with ``dry_run`` would be, removed). A table whose updaters another recorded table's
    configuration names is refused, changing nothing, unless ``force``."""
    plan = plan_drop(lake, record)
    built_on = dependents(lake, record, plan["update_processes"])
    if built_on and not force:
        raise LakenodesUserError(f"{record.identifier or record.storage_hash} is a dependency of {', '.join(built_on)} "
                                 "(their configuration names its updater): drop those first, or pass force=True (--force)")
    written = rows_written_since_the_drop_began(lake, record) if record.deleted and not force else None
    if written is not None and written[0]:
        rows, began = written
        raise LakenodesUserError(
            f"{record.identifier or record.storage_hash} ({record.storage_hash}) is being dropped, and {rows} row(s) "
            f"were written to it after its drop began at {began:%Y-%m-%d %H:%M:%S} UTC (that drop stopped before it "
            "finished, then a run wrote them): to keep them run its node again from a new process (it takes the "
            "table back), or pass force=True (--force) to drop them too")
    if dry_run:
        return plan
    for step in STEPS:
        step(lake, record, plan)
    logger.info("dropped table %s: %d file(s), %d byte(s); freed identifier %s", record.storage_hash, plan["files"],
                plan["bytes"], plan["identifier_freed"])
    return {**plan, "dry_run": False}
