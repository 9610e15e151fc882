"""The lake catalog: every table (``TableRecord``), identifier claim, updater and run.

Stored as append-only Delta tables under ``<root>/_catalog/`` (readable by DuckDB or Spark);
the latest row of a record is its current state.

The catalog is split by responsibility: :mod:`.ledgers` (the ledgers, this process's registrations),
:mod:`.tables` (table records), :mod:`.identifiers` (identifier claims), :mod:`.history` (updaters
and runs); this module registers a table (claim, record) and keeps the catalog's public surface.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from ..lake.location import Lake
from .history import (  # noqa: F401 - the catalog's public surface
    record_run,
    register_updater,
    run_history,
    update_processes,
    updater_registered,
)
from .identifiers import (  # noqa: F401 - the catalog's public surface
    claim_identifier,
    identifier_claimed,
    repoint_identifier,
    resolve_identifier,
)
from .ledgers import (  # noqa: F401 - the catalog's public surface
    _known_records,
    _schemas,
    forget_table,
    runs_ledger,
    tables_ledger,
    updates_ledger,
)
from .records import TableRecord
from .tables import (  # noqa: F401 - the catalog's public surface
    DROP_MARKS,
    _digest,
    all_tables,
    being_dropped,
    drop_mark,
    dropped_tables,
    find_tables,
    save_table_record,
    stored_table_rows,
    table_identifiers,
    table_record,
    table_states,
    tables_since,
    tables_version,
)

logger = logging.getLogger(__name__)


def register_table(lake: Lake, record: TableRecord, stored: Callable[[], list[dict[str, Any]]] | None = None,
                   table_id: str = "") -> bool:
    """Claim the record's identifier and store the record when it changed; True when written.
    A record registered once is marked beside ``_catalog/tables``: registering it again, from any
    process, is one request (a record changed since by someone else, e.g. its labels, stays as is).
    A drop removes the table's marks when it marks the table deleted; a table whose drop stopped
    there is taken back (recorded again, with a warning): the drop is cancelled, so a drop run again
    to finish it never removes the rows this run wrote unseen.
    A record stored with another ``table_uri`` (the lake was moved or copied since: ``mv``, ``aws s3
    sync``) is stored again with this lake's, so engines reading ``_catalog/tables`` find the table.
    Under ``python -OO`` (no docstrings) a record keeps the ``source_doc`` stored.
    ``stored``: what gives ``stored_table_rows`` read ahead (else they are read here). ``table_id``:
    the Delta table's ``metaData.id``, part of what is remembered and marked, so a table dropped and
    created again (``catalog.drop``) is recorded again, never matched with its ``deleted`` record.

    Raises IdentifierConflictError naming the owner when another storage holds the identifier.
    """
    repointed_away = bool(record.identifier) and not claim_identifier(
        lake, record.identifier, record.namespace, record.storage_hash)
    if repointed_away:
        record = record.model_copy(update={"identifier": None})  # the table keeps no name
    key = (lake.cache_key, record.storage_hash)
    digest = f"{table_id}\n{_digest(record)}"  # a table dropped and created again has another id
    if _known_records.get(key) == digest:
        return False
    ledger, mark = tables_ledger(lake), f"{record.storage_hash}\n{digest}"
    # this very record was registered before, by any process, and no drop of the table began since
    if ledger.marked(mark, group=record.storage_hash):
        _known_records[key] = digest
        return False
    rows = stored() if stored is not None else stored_table_rows(lake, record.storage_hash)
    taken_back = bool(rows) and rows[0].get("deleted") and being_dropped(lake, record.storage_hash, table_id)
    if not taken_back:  # a dropped table's record: this table was created afresh since
        rows = [row for row in rows if not row.get("deleted")]
    if rows:  # as stored: a lake moved or copied since has its old table_uri saved again with the new one
        stored = TableRecord.from_row(rows[0])
        record = record.model_copy(update={"labels": sorted(set(stored.labels) | set(record.labels)),
                                           **_published_metadata(record, stored, repointed_away)})
        if record.source_doc is None and sys.flags.optimize >= 2:  # python -OO strips docstrings: keep the stored one
            record = record.model_copy(update={"source_doc": stored.source_doc})
        if _digest(stored) == _digest(record):
            _known_records[key] = digest
            ledger.mark(mark, group=record.storage_hash)
            return False
    save_table_record(lake, record)
    if taken_back:  # unmarked once saved: a crash before leaves the next run to take it back
        ledger.unmark(drop_mark(record.storage_hash, table_id), group=DROP_MARKS)
        logger.warning("table %s (%s) was being dropped (a drop stopped before it finished): this run wrote to it, "
                       "so it takes the table back and the drop is cancelled; drop it again to remove it",
                       record.identifier or record.storage_hash, record.storage_hash)
    _known_records[key] = digest
    ledger.mark(mark, group=record.storage_hash)
    return True


def _published_metadata(record: TableRecord, stored: TableRecord, repointed_away: bool) -> dict[str, Any]:
    """The stored table-level metadata a run leaves unsaid (its updater declares no identifier,
    description or frequency: node_metadata is runtime-only, so a backfill job may omit it): the
    table keeps them. Only ``repoint_identifier`` takes a name away from a table."""
    names = ("description", "data_frequency_id") if repointed_away else ("identifier", "description", "data_frequency_id")
    return {name: getattr(stored, name) for name in names
            if getattr(record, name) is None and getattr(stored, name) is not None}
