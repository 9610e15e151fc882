"""Undo writes: put one table back as it was at an earlier version (Delta ``RESTORE``).

A restore is one commit that removes the data files added since the target version and adds back
the ones removed since (the rows deleted by mistake); the versions in between stay readable
with ``as_of`` until vacuum removes their files. Everything lakenodes derives from a table is
keyed by its version (progress, file lists, the persisted progress snapshot, the cross-section
copy), so the next run computes its watermarks from the restored state and appends after them.
The commit carries the identity and rewrite app transactions of every partition it changes
(``lakenodes.lake._watermarks``), as a tail delete does: a writer that decided from the
snapshot before it retries, finds its watermarks moved back, and recomputes its rows. The
history shows it as ``restore`` with the rows it brought back (added) and removed (deleted).

Example:
    >>> _changes(pa.table({"path": ["a"], "num_records": [2]}), pa.table({"path": ["b"], "num_records": [3]}), None)
    {'files_added': 1, 'files_removed': 1, 'rows_added': 3, 'rows_removed': 2, 'partitions': ['']}
"""

from __future__ import annotations

import logging
import numbers
import uuid
from typing import Any

from deltalake import CommitProperties

from .._internal.datetimes import iso_z, parse_datetime
from .._internal.deferred import pa, pc
from ..errors import LakenodesUserError, NotFoundError
from ._scan import add_actions, index_names_of
from ._watermarks import app_transaction, partition_transactions, rewrite_transactions
from .maintenance import CATALOG_PREFIX
from .store import TableStore
from .versions import resolve_as_of, row_counts

logger = logging.getLogger(__name__)

def restore_table(store: TableStore, to_version: Any = None, *, to_timestamp: Any = None,
                  dry_run: bool = False) -> dict[str, Any]:
    """Restore ``store``'s table to ``to_version`` (or the version current at ``to_timestamp``) in one
    commit; returns ``{table, dry_run, from_version, to_version, new_version, files_added,
    files_removed, rows_added, rows_removed}`` (with ``dry_run``, what it would change, and
    ``new_version`` None). A version that does not exist, is the current one or whose files vacuum
    removed, a moment before the table existed, and the catalog's own tables are refused, changing nothing.
    """
    name = store.storage_hash
    refuse_catalog_table(name, store.uri if store.uri != store.lake.table_uri(name) else None)
    if (to_version is None) == (to_timestamp is None):
        raise LakenodesUserError("give exactly one of to_version or to_timestamp")
    if to_version is not None and (not isinstance(to_version, numbers.Integral) or isinstance(to_version, bool)
                                   or to_version < 0):
        raise LakenodesUserError(f"to_version must be a table version (an int from 0 up, see the table's history), "
                                 f"not {to_version!r}")
    table = store.table()
    if table is None:
        raise NotFoundError(f"table {name} has no version yet: nothing to restore")
    latest = table.version()
    moment = None if to_timestamp is None else parse_datetime(to_timestamp, "to_timestamp")  # an ISO string too
    target = resolve_as_of(table, to_version if moment is None else moment)
    if target is None:
        raise LakenodesUserError(f"table {name} did not exist at {iso_z(moment)}: its version 0 was committed later")
    if target > latest:
        raise LakenodesUserError(f"version {target} of {name} does not exist: the latest is {latest}")
    if target == latest:
        raise LakenodesUserError(f"version {target} is the current version of {name}: nothing to restore")
    old = store.table_as_of(target)  # VersionUnavailableError (how far back time travel reaches) when vacuumed
    partition = _partition_column(table)
    done = {"table": name, "dry_run": dry_run, "from_version": latest, "to_version": target, "new_version": None,
            **_changes(add_actions(table), add_actions(old), partition)}
    if dry_run:
        return _public(done)
    write_id = f"lakenodes-{uuid.uuid4().hex}"
    tried: list[dict[str, Any]] = []

    def attempt() -> dict[str, Any]:
        current = store.table()
        if tried and current.transaction_version(write_id) is not None:
            return tried[-1]  # an earlier attempt landed although it reported a failure
        changes = _changes(add_actions(current), add_actions(old), partition)  # afresh: a writer may have landed
        values = changes["partitions"]
        tried.append({**done, "from_version": current.version(), **changes})
        current.restore(target, commit_properties=CommitProperties(
            app_transactions=[app_transaction(write_id), *partition_transactions(values), *rewrite_transactions(values)],
            custom_metadata={"lakenodes.write_id": write_id, "lakenodes.operation": "RESTORE",
                             **row_counts(changes["rows_added"], 0, changes["rows_removed"])}))
        return tried[-1]

    done = store.with_retries(attempt, what=f"restore {name} to version {target}")
    done["new_version"] = store.table().version()
    logger.info("restored %s to version %d as version %d: %d row(s) added, %d removed", name, target,
                done["new_version"], done["rows_added"], done["rows_removed"])
    return _public(done)


def refuse_catalog_table(ref: str, uri: str | None = None, verb: str = "restored") -> None:
    """Refuse ``ref`` (or the table at ``uri``, outside the lake's tables) when it names one of the
    catalog's own tables (``_catalog/...``): only data tables are restored (or ``verb``: dropped).

    Example:
        >>> refuse_catalog_table("_catalog/runs")
        Traceback (most recent call last):
        ...
        lakenodes.errors.LakenodesUserError: _catalog/runs is a catalog table: only data tables can be restored
    """
    if ref.startswith(CATALOG_PREFIX) or uri is not None:
        raise LakenodesUserError(f"{uri or ref} is a catalog table: only data tables can be {verb}")


def _partition_column(table: Any) -> str | None:
    index = index_names_of(table)
    return f"partition.{index[1]}" if len(index) > 1 else None


def _changes(current: pa.Table, target: pa.Table, partition: str | None) -> dict[str, Any]:
    """Files and rows a restore from ``current`` to ``target`` (add actions of each) adds and
    removes, and the partition values it touches (``[""]`` for a single-index table)."""
    added = target.filter(pc.invert(pc.is_in(target["path"], current["path"])))
    removed = current.filter(pc.invert(pc.is_in(current["path"], target["path"])))
    touched = added.num_rows + removed.num_rows
    if partition is None:
        partitions = [""] if touched else []
    else:
        partitions = sorted({str(value) for part in (added, removed) for value in part[partition].to_pylist()})

    def rows(files: pa.Table) -> int:
        return int(pc.sum(files["num_records"]).as_py() or 0)

    return {"files_added": added.num_rows, "files_removed": removed.num_rows, "rows_added": rows(added),
            "rows_removed": rows(removed), "partitions": partitions}


def _public(done: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in done.items() if key != "partitions"}
