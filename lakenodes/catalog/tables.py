"""The catalog's table records (``TableRecord``): reading, finding and saving them.

Example:
    >>> [table.identifier for table in all_tables(example.lake)]
    ['example_prices']
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from .._internal.arrow_rows import python_rows
from .._internal.deferred import pc
from ..core.lookups import matches_lookups, prepared_lookups, split_lookup
from ..lake.location import Lake
from .ledgers import _known_records, tables_ledger
from .records import TableRecord


def all_tables(lake: Lake, include_deleted: bool = False, rows: pc.Expression | None = None) -> list[TableRecord]:
    """Every table record (``rows`` narrows the stored rows first, e.g. to one identifier)."""
    current = tables_ledger(lake).current()
    if rows is not None:
        current = current.filter(rows)
    tables = [TableRecord.from_row(row).bound_to(lake) for row in current.to_pylist()]
    return [table for table in tables if include_deleted or not table.deleted]


def table_states(lake: Lake) -> tuple[dict[str, str | None], set[str]]:
    """``{storage_hash: identifier}`` of every live table, and the storage hashes of the tables
    dropped or being dropped (``catalog.drop``), from one read of three stored columns: no record is built."""
    rows = python_rows(tables_ledger(lake).current().select(["storage_hash", "identifier", "deleted"]))
    live = {row["storage_hash"]: row["identifier"] for row in rows if not row["deleted"]}
    return live, {row["storage_hash"] for row in rows if row["deleted"]}


def table_identifiers(lake: Lake) -> dict[str, str | None]:
    """``{storage_hash: identifier}`` of every live table (see :func:`table_states`)."""
    return table_states(lake)[0]


def dropped_tables(lake: Lake) -> set[str]:
    """Storage hashes of the tables dropped, or being dropped (see :func:`table_states`)."""
    return table_states(lake)[1]


def tables_version(lake: Lake) -> tuple[str, int] | None:
    """Identity and version of the catalog's table records (None before the first): it changes
    whenever a record is saved, so a derived view (the search index) knows when to catch up."""
    return tables_ledger(lake).version()


def tables_since(lake: Lake, seen_files: Collection[str]) -> tuple[list[TableRecord], list[str]]:
    """The table records saved since the catalog's data files were ``seen_files`` (the files of an
    earlier call; deleted records included), and its current data files."""
    rows, files = tables_ledger(lake).latest_since(seen_files)
    return [TableRecord.from_row(row).bound_to(lake) for row in rows.to_pylist()], files


_PUSHED_DOWN = ("uid", "storage_hash", "identifier", "source_class", "data_frequency_id")


def find_tables(lake: Lake, lookups: Mapping[str, Any]) -> list[TableRecord]:
    """Tables matching Django-style lookups (``identifier__contains``, ``labels__contains``, …)."""
    lookups = prepared_lookups(lookups)
    return [table for table in all_tables(lake, rows=_row_filter(lookups)) if matches_lookups(table, lookups)]


def _row_filter(lookups: Mapping[str, Any]) -> pc.Expression | None:
    """The part of ``lookups`` Arrow applies to stored rows exactly as ``matches_lookups`` would
    (``exact``/``contains`` with a string on plain string columns), so only matching rows become
    records; the full lookups are still checked on the records."""
    expression = None
    for key, expected in lookups.items():
        name, operator = split_lookup(key)
        if name not in _PUSHED_DOWN or not isinstance(expected, str) or operator not in ("exact", "contains"):
            continue
        condition = pc.field(name) == expected if operator == "exact" else pc.match_substring(pc.field(name), expected)
        expression = condition if expression is None else expression & condition
    return expression


def table_record(lake: Lake, storage_hash: str) -> TableRecord | None:
    rows = stored_table_rows(lake, storage_hash)
    return TableRecord.from_row(rows[0]).bound_to(lake) if rows else None


def stored_table_rows(lake: Lake, storage_hash: str) -> list[dict[str, Any]]:
    """The stored catalog row of the table ``storage_hash`` (none before it was first registered),
    as ``register_table`` compares a record with it: a run creating a table reads it ahead
    (``register_table(..., stored=)``), while its rows are written."""
    return tables_ledger(lake).latest(where={"storage_hash": storage_hash})


def save_table_record(lake: Lake, record: TableRecord) -> None:
    """Append the record's new state to the catalog (the search index catches up on its next search)."""
    tables_ledger(lake).append([record.to_row()])
    _known_records[(lake.cache_key, record.storage_hash)] = _digest(record)




def _digest(record: TableRecord) -> str:
    return json.dumps(record.to_row(), sort_keys=True)


DROP_MARKS = "drops"  # the group of drop marks: a drop removes the ungrouped marks of older releases, not these


def drop_mark(storage_hash: str, table_id: str) -> str:
    """The mark (in the group ``DROP_MARKS``) beside ``_catalog/tables`` that a drop
    (``catalog.drop``) leaves before it marks the table with ``metaData.id`` ``table_id`` deleted:
    a run registering that very table takes it back."""
    return f"dropping\n{storage_hash}\n{table_id}"


def being_dropped(lake: Lake, storage_hash: str, table_id: str) -> bool:
    """Whether a drop of this very table (not one created afresh since) began and did not finish."""
    return bool(table_id) and tables_ledger(lake).marked(drop_mark(storage_hash, table_id), group=DROP_MARKS)
