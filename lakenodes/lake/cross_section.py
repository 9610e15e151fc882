"""A time-ordered copy of a table version for cross-sectional reads (one date across every identity).

Partitioning by the first identity puts each identity in files of its own, so a read of one date
over N identities opens N files. ``optimize_table(..., cross_section=True)`` also writes every row
of the version it leaves, sorted by the index, to ``_lakenodes/cross_section.parquet`` in small
row groups (a date is then one or two row groups of one file). A read with a time window and no
identity filter uses it while the table is still at exactly that version (URI, ``metaData.id``
and version, see ``_scan.version_key``), and the per-identity files otherwise: any later commit
(an append, a restatement, a delete) retires it until the next optimize. Delta readers and vacuum
ignore ``_``-prefixed folders; the copy costs about the table's size again.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from deltalake import DeltaTable

from .._internal.caches import register_cache
from .._internal.deferred import pa, pafs, pds, pq
from ._scan import index_names_of, parquet_format, read_whole, snapshot_of, version_key
from .location import Lake, lake_filesystem

logger = logging.getLogger(__name__)

PATH = "_lakenodes/cross_section.parquet"
ROW_GROUP_ROWS = 8_192
_KEY = b"lakenodes.cross_section"
# table root -> (version key, the copy's fragment, or None when that version has no copy)
_copies: dict[str, tuple[tuple[str, str, int], pds.Fragment | None]] = register_cache("cross_section.copies", {})


def write_cross_section(table: DeltaTable, lake: Lake) -> int:
    """Write the time-ordered copy of ``table``'s current version; returns its row count.

    Example (``example``: a temporary lake with one table, see conftest.py):
        >>> write_cross_section(example.node.store.table(), example.lake) > 0
        True
    """
    index = index_names_of(table)
    snapshot = snapshot_of(table, index)
    filesystem, root = lake_filesystem(lake, table.table_uri)
    rows = read_whole(filesystem, root, snapshot.partition, snapshot.files, snapshot.schema).drop_columns(["_file"])
    rows = rows.sort_by([(name, "ascending") for name in index])
    rows = rows.replace_schema_metadata({_KEY: json.dumps(list(version_key(table))).encode()})
    target = f"{root}/{PATH}"
    if isinstance(filesystem, pafs.LocalFileSystem):  # write then rename: readers never see half a file
        filesystem.create_dir(target.rsplit("/", 1)[0], recursive=True)
        temporary = f"{target}.{uuid.uuid4().hex}.tmp"
        pq.write_table(rows, temporary, filesystem=filesystem, row_group_size=ROW_GROUP_ROWS)
        filesystem.move(temporary, target)
    else:  # an object store PUT is atomic
        pq.write_table(rows, target, filesystem=filesystem, row_group_size=ROW_GROUP_ROWS)
    _copies.pop(root, None)
    return rows.num_rows


def cross_section_of(table: DeltaTable, lake: Lake) -> pds.Fragment | None:
    """The copy of ``table``'s current version (footer cached per version), or None when there is none."""
    filesystem, root = lake_filesystem(lake, table.table_uri)
    key = version_key(table)
    known = _copies.get(root)
    if known is not None and known[0] == key:
        return known[1]
    fragment: pds.Fragment | None = parquet_format().make_fragment(f"{root}/{PATH}", filesystem=filesystem)
    try:
        fragment.ensure_complete_metadata()
        written_for = tuple(json.loads((fragment.physical_schema.metadata or {}).get(_KEY, b"null")) or ())
    except (OSError, pa.ArrowException, ValueError) as error:  # no copy (never optimized with one)
        logger.debug("no cross-section copy for %s: %s", root, error)
        written_for = ()
    if written_for != key:
        fragment = None
    if len(_copies) > 256:
        _copies.clear()
    _copies[root] = (key, fragment)
    return fragment


def is_cross_sectional(values: Any, windows: Any) -> bool:
    """A read with a time bound and no identity filter (``Pruning.values`` / ``Pruning.windows``)."""
    return not values and any(low is not None or high is not None for low, high in windows)
