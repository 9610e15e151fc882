"""Runs that committed rows but never recorded themselves (the process was killed, or the disk
filled, between the data commit and the run record), recovered from the table's history.

Every commit a run makes carries ``lakenodes.run_id`` and ``lakenodes.update_hash`` in its commit
info. A commit whose run id has no row in ``_catalog/runs`` is recorded as a run with status
``recovered``: ``rows_written`` from the commits' row counts, ``started_at`` / ``finished_at`` the
first / last commit's timestamp, ``error`` saying where it came from.

A run whose commits all precede the cutoff of ``lakenodes updates clean`` is not recovered: the
clean may have removed its record (:mod:`lakenodes.catalog.run_retention`).

Idempotent, also when processes reconcile at once: each recovered run is appended as a named batch
(``Ledger.append_batches``: a batch some commit holds already is never appended again), and its
``recorded_at`` is the commit's timestamp, so the run's own record, which is always stamped after
its commit, wins if it lands after all (a run still recording itself while another process
reconciles).

Example (a lake with no such table):
    >>> reconcile_table(Lake("/tmp/no-such-lake"), "t_0")
    Reconciled(storage_hash='t_0', version=None, commits_checked=0, recovered=[])
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from .._internal.deferred import pafs
from ..lake.location import Lake, lake_filesystem
from ..lake.store import TableStore
from ..lake.versions import table_history
from .catalog import all_tables, dropped_tables, run_history, runs_ledger
from .run_retention import cleaned_before

logger = logging.getLogger(__name__)

RECOVERED = "recovered"


@dataclasses.dataclass(frozen=True)
class Reconciled:
    """What one reconciliation of one table did: the table's ``storage_hash``, the newest
    ``version`` it checked (None: no table), the ``commits_checked`` (commits carrying a run id)
    and the run rows it ``recovered``."""

    storage_hash: str
    version: int | None
    commits_checked: int = 0
    recovered: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def reconcile_table(lake: Lake, storage_hash: str) -> Reconciled:
    """Record every run that committed to the table (in its history still in the log) and has no
    run record; afterwards every run through the returned ``version`` is recorded."""
    table = TableStore(lake, storage_hash).table()
    if table is None:
        return Reconciled(storage_hash, None)
    commits = [commit for commit in table_history(table, lake=lake) if commit["run_id"]]
    recovered: list[dict[str, Any]] = []
    if commits:
        recorded = {run["run_id"] for run in run_history(lake)}
        missing: dict[str, list[dict[str, Any]]] = {}
        for commit in sorted(commits, key=lambda commit: commit["version"]):
            if commit["run_id"] not in recorded:
                missing.setdefault(commit["run_id"], []).append(commit)
        # read after the runs (a clean keeps its cutoff before it removes any): a run whose commits all
        # precede it may have been removed by `lakenodes updates clean`
        cleaned = cleaned_before(lake) if missing else None
        if cleaned is not None:
            missing = {run_id: found for run_id, found in missing.items() if found[-1]["timestamp"] >= cleaned}
        recovered = [_recovered_run(storage_hash, run_id, found) for run_id, found in missing.items()]
        if recovered:
            ledger = runs_ledger(lake)
            ledger.append_batches({f"recovered.{run['run_id']}": ledger.stamped([run], now=run["finished_at"])
                                   for run in recovered})
            logger.warning("recovered %d run(s) of table %s that committed rows but never recorded themselves: %s",
                           len(recovered), storage_hash, ", ".join(run["run_id"] for run in recovered))
    return Reconciled(storage_hash, table.version(), len(commits), recovered)


def reconcile_lake(lake: Lake, storage_hashes: list[str] | None = None) -> list[Reconciled]:
    """Reconcile the whole history of the given tables, by default every table of the lake (those
    in the catalog and any other folder under ``tables/``: a run killed before its table was
    registered leaves one)."""
    names = storage_hashes if storage_hashes is not None else lake_tables(lake)
    return [reconcile_table(lake, name) for name in names]


def lake_tables(lake: Lake) -> list[str]:
    """Storage hashes of the catalog's tables and of every other folder under ``<root>/tables``, less
    the dropped tables (``catalog.drop``: whatever a drop stopped half-way left is not recovered)."""
    known = {record.storage_hash for record in all_tables(lake, include_deleted=True)}
    filesystem, root = lake_filesystem(lake, lake.join("tables"))
    listing = filesystem.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    folders = {info.base_name for info in listing if info.type == pafs.FileType.Directory}
    return sorted((known | folders) - dropped_tables(lake))


def _recovered_run(storage_hash: str, run_id: str, commits: list[dict[str, Any]]) -> dict[str, Any]:
    rows = sum((commit["rows_added"] or 0) + (commit["rows_updated"] or 0) for commit in commits)
    versions = ", ".join(str(commit["version"]) for commit in commits)
    return {
        "run_id": run_id, "update_hash": commits[0]["update_hash"], "storage_hash": storage_hash,
        "started_at": commits[0]["timestamp"], "finished_at": commits[-1]["timestamp"], "status": RECOVERED,
        "rows_written": rows, "host": None,
        "error": f"recovered from the table's history (commit version {versions}): the run committed its rows but "
                 "never recorded itself (it stopped between its commit and its run record)",
    }
