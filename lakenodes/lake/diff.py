"""What changed in a table between two versions, row by row, keyed by its index.

Example:
    >>> import polars as pl
    >>> old = pl.DataFrame({"time_index": [1, 2], "close": [1.0, 2.0]})
    >>> new = pl.DataFrame({"time_index": [2, 3], "close": [2.5, 3.0]})
    >>> change = diff_frames(old, new, ["time_index"])
    >>> change.added["time_index"].to_list(), change.deleted["time_index"].to_list(), change.changed.columns
    ([3], [1], ['time_index', 'close_from', 'close_to'])
    >>> diff_frames(old.with_columns(close_to=0), new.with_columns(close_to=1), ["time_index"]).changed.columns
    ['time_index', 'close_from', 'close_to', 'close_to_from', 'close_to_to']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from ._same_rows import values_differ
from .store import TableStore


@dataclass(frozen=True)
class TableDiff:
    """Rows ``added`` (only in the later version), ``deleted`` (only in the earlier one) and
    ``changed`` (same index, another value, see ``lakenodes.lake._same_rows``: the index, then ``<column>_from`` / ``<column>_to``
    for every value column), each sorted by the index."""

    from_version: int | None
    to_version: int | None
    added: pl.DataFrame
    deleted: pl.DataFrame
    changed: pl.DataFrame

    def summary(self) -> dict[str, Any]:
        return {"from_version": self.from_version, "to_version": self.to_version, "added": self.added.height,
                "deleted": self.deleted.height, "changed": self.changed.height}


def diff_versions(store: TableStore, from_version: Any, to_version: Any = None) -> TableDiff:
    """The rows that differ between the table at ``from_version`` and at ``to_version`` (versions
    or moments, see lakenodes.lake.versions; None is the latest version)."""
    index = list(store.index_names() or ())
    before, after = (pl.from_arrow(store.read(as_of=as_of)) for as_of in (from_version, to_version))
    change = diff_frames(before, after, index)
    versions = [store.table_as_of(as_of) for as_of in (from_version, to_version)]
    return TableDiff(*(None if table is None else table.version() for table in versions),
                     change.added, change.deleted, change.changed)


def diff_frames(before: pl.DataFrame, after: pl.DataFrame, index: Sequence[str]) -> TableDiff:
    """``diff_versions`` of two frames with the same columns (versions unknown)."""
    index = list(index)
    values = [name for name in after.columns if name not in index]
    # both sides renamed before the join: a join suffix would collide with a column already named
    # ``<column>_to`` (columns ``px`` and ``px_to``); the renames of one side are applied at once
    joined = before.rename({name: f"{name}_from" for name in values}).join(
        after.rename({name: f"{name}_to" for name in values}), on=index, how="inner", nulls_equal=True)
    differs = pl.any_horizontal([values_differ(pl.col(f"{name}_to"), pl.col(f"{name}_from"), after.schema[name])
                                 for name in values]) if values else pl.lit(False)
    changed = joined.filter(differs).select(*index, *[c for name in values for c in (f"{name}_from", f"{name}_to")])
    return TableDiff(None, None, after.join(before, on=index, how="anti", nulls_equal=True).sort(index),
                     before.join(after, on=index, how="anti", nulls_equal=True).sort(index), changed.sort(index))
