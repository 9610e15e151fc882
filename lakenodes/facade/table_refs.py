"""References to catalog entries as people type them: a table by uid, storage hash or identifier,
maintenance targets (tables or ``_catalog/<name>``), an update process by its update hash.

Every reference that matches nothing is a ``NotFoundError`` (a user mistake) naming the close
match, if any (a typo, a hash cut short when copied), and saying where to look, e.g.
``lakenodes data-node list``.

Example (``example``: a temporary lake with one table, see conftest.py):
    >>> resolve_table(example.lake, "example_prices").storage_hash.startswith("exampleprices_")
    True
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from .._internal.deferred import pc
from ..catalog import catalog, reconcile, run_retention
from ..core.hashing import checked_namespace
from ..errors import LakenodesUserError, NotFoundError, StorageError
from ..lake import maintenance
from ..lake.ledger import RECORDED_AT
from ..lake.location import Lake
from ..lake.store import TableStore
from .meta_table import TimeIndexMetaTable

logger = logging.getLogger(__name__)

LIST_HINT = "list tables with `lakenodes data-node list`"
UPDATES_HINT = "list them with `lakenodes updates list`"


def resolve_table(lake: Lake, ref: str, namespace: str | None = None, dropped: bool = False) -> TimeIndexMetaTable:
    """A table by uid, storage hash, or identifier (in ``namespace``, default the empty one; one with
    surrounding whitespace is refused as ``hash_namespace`` refuses it); with ``dropped``, also a
    table dropped (or being dropped: ``data-node drop`` finishes it), when no live table is named so."""
    checked_namespace(namespace or "")
    by_name = (pc.field("uid") == ref) | (pc.field("storage_hash") == ref)  # only the rows named become records
    in_namespace = (pc.field("identifier") == ref) & (pc.field("namespace") == (namespace or ""))
    for include_deleted in (False, True)[:1 + dropped]:
        found = catalog.all_tables(lake, include_deleted, by_name) or catalog.all_tables(lake, include_deleted, in_namespace)
        if found:
            return TimeIndexMetaTable.of(found[0])
    tables = catalog.all_tables(lake)  # not found: every name, for the hint
    elsewhere = sorted({repr(table.namespace) for table in tables if table.identifier == ref})
    hint = f" (identifier {ref!r} exists in namespace {', '.join(elsewhere)}: pass --namespace)" if elsewhere else ""
    lost = lost_catalog(lake, "tables", f"table {ref!r}")
    if lost is not None:
        raise lost
    where = f" in namespace {namespace!r}" if namespace else ""
    names = [name for table in tables for name in (table.uid, table.storage_hash)]
    names += [table.identifier for table in tables if table.identifier and table.namespace == (namespace or "")]
    hint = hint or meant(ref, names)
    raise NotFoundError(f"no table with uid, identifier or storage hash {ref!r}{where} in {lake.uri}{hint}; {LIST_HINT}")


def meant(ref: str, names: Iterable[str]) -> str:
    """``; did you mean 'x'?`` naming what ``ref`` may have meant among ``names``, else "": the
    names it begins (a hash cut short when copied), the same name in other capitals, else the
    closest spellings; at most three.

    Example:
        >>> meant("fx_rates_dialy", ["fx_rates_daily", "fx_rates_weekly"]), meant("volumes", ["fx_rates_daily"])
        ("; did you mean 'fx_rates_daily'?", '')
        >>> meant("rates_5e1f", ["rates_5e1f0a", "rates_5e1f77", "rates_aa"])
        "; did you mean 'rates_5e1f0a' or 'rates_5e1f77'?"
    """
    names = sorted(set(names))
    folded = ref.casefold()
    matches = [name for name in names if name.casefold() == folded]
    if not matches and len(ref) >= 4:
        matches = [name for name in names if name.casefold().startswith(folded)]
    matches = matches or difflib.get_close_matches(ref, names, n=3, cutoff=0.8)
    return f"; did you mean {' or '.join(repr(name) for name in matches[:3])}?" if matches else ""


def lost_catalog(lake: Lake, name: str, what: str) -> StorageError | None:
    """The error of looking up ``what`` when the catalog table ``_catalog/<name>`` has no Delta log
    (its folder or its ``_delta_log`` deleted outside lakenodes, a partial sync) although the lake
    holds tables: not a user's mistake, and "no such table" would send them looking for one. None
    when the catalog table exists, or the lake holds no table (a new lake)."""
    where = lake.catalog_uri(name)
    if TableStore(lake, name, uri=where).exists():
        return None
    stored = reconcile.lake_tables(lake)
    if not stored:
        return None
    verb = "are" if what.endswith("tables") else "is"
    return StorageError(f"{what} {verb} not in the catalog: {where} is missing or its _delta_log is empty (deleted outside "
                        f"lakenodes?) while {lake.join('tables')} holds {len(stored)} table(s); restore "
                        f"{lake.join('_catalog')} from a backup, or run the DataNodes again (each registers its table "
                        f"and updater again; `lakenodes updates reconcile` then recovers their past runs)",
                        path=where, operation="lookup")


def table_name(table: TimeIndexMetaTable) -> str:
    """How a table is named to people: its identifier, else its storage hash."""
    return table.identifier or table.storage_hash


def maintenance_targets(lake: Lake, pending: bool = True) -> list[str]:
    """Every existing table of the lake: data tables known to the catalog (not those dropped: what a
    drop stopped half-way left is no table), then the catalog's own (with ``pending``, also one
    holding only pending rows, folded here as maintenance would first)."""
    data = sorted({record.storage_hash for record in catalog.all_tables(lake)})
    return maintenance.existing_tables(lake, [*data, *maintenance.CATALOG_TABLES], pending)


def maintenance_names(lake: Lake, refs: Sequence[str] | None, namespace: str | None = None,
                      pending: bool = True) -> list[str]:
    """Table names maintenance takes (storage hashes, ``_catalog/<name>``) for ``refs``, each once
    (two refs naming one table were maintained twice); no refs means every table of the lake,
    catalog included (``pending``: see maintenance_targets)."""
    if not refs:
        return maintenance_targets(lake, pending)
    names = []
    for ref in refs:
        if ref.startswith(maintenance.CATALOG_PREFIX):
            if ref not in maintenance.CATALOG_TABLES:
                raise LakenodesUserError(f"unknown catalog table {ref!r}; catalog tables are "
                                         f"{', '.join(maintenance.CATALOG_TABLES)}")
            names.append(ref)
        else:
            names.append(resolve_table(lake, ref, namespace).storage_hash)
    return list(dict.fromkeys(names))


def run_history(lake: Lake, update_hash: str | None = None) -> list[dict[str, Any]]:
    """Every run (oldest first), of one update process when ``update_hash`` is given; an update
    hash the lake never saw is a ``NotFoundError``."""
    # the updaters alone (their ledger): their runs are read once, below
    processes = sorted(catalog.updates_ledger(lake).latest(), key=lambda r: r[RECORDED_AT]) if update_hash else []
    known = [p["update_hash"] for p in processes]
    if update_hash and update_hash not in known:
        lost = lost_catalog(lake, "updates", f"update process {update_hash!r}")
        if lost is not None:
            raise lost
        storages = {table.storage_hash for table in catalog.all_tables(lake)
                    if update_hash in (table.uid, table.storage_hash, table.identifier)}
        writers = [p["update_hash"] for p in processes if p["storage_hash"] in storages]  # a table named instead
        hint = f": that is a table, written by {', '.join(writers)}" if writers else meant(update_hash, known)
        raise NotFoundError(f"no update process {update_hash!r} in {lake.uri}{hint}; {UPDATES_HINT}")
    runs = catalog.run_history(lake, update_hash)  # first: a key refused the catalog is told about the runs
    dropped = catalog.dropped_tables(lake)  # a drop stopped before it removed their runs: the next drop does
    return [run for run in runs if run["storage_hash"] not in dropped]


def update_processes(lake: Lake) -> list[dict[str, Any]]:
    """Every update process with the identifier of the table it writes (None when unnamed), but
    those of a table being dropped."""
    identifiers, dropped = catalog.table_states(lake)  # one read of the table records
    processes = [process for process in catalog.update_processes(lake) if process["storage_hash"] not in dropped]
    for process in processes:
        process["identifier"] = identifiers.get(process["storage_hash"])
    return processes


def clean_runs(lake: Lake, before: Any = None, *, older: Any = None, dry_run: bool = False) -> dict[str, Any]:
    """Remove the runs that finished before ``before`` (or longer than ``older`` ago, e.g. ``"90d"``)
    from the run history, keeping every updater's last run (``lakenodes updates clean``, see
    ``lakenodes.catalog.run_retention``); each updater's entry names the table it writes."""
    done = run_retention.clean_runs(lake, before, older=older, dry_run=dry_run)
    identifiers = catalog.table_identifiers(lake) if done["updaters"] else {}
    for entry in done["updaters"]:
        entry["identifier"] = identifiers.get(entry["storage_hash"])
    return done


def reconcile_runs(lake: Lake, refs: Sequence[str] | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
    """Recover the runs that committed to the given tables (uid, storage hash or identifier; none:
    every table of the lake) but never recorded themselves; one summary per table (see
    ``lakenodes.catalog.reconcile``). A storage hash whose table the catalog never registered (its
    first run was killed before) is taken as it is when its folder holds a Delta table."""
    names = None
    if refs:
        unregistered = set(reconcile.lake_tables(lake)) - {table.storage_hash for table in catalog.all_tables(lake)}
        names = [ref if ref in unregistered else resolve_table(lake, ref, namespace).storage_hash for ref in refs]
    return [dataclasses.asdict(done) for done in reconcile.reconcile_lake(lake, names) if done.version is not None]
