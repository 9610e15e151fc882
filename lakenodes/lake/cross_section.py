"""A time-ordered copy of a table version for cross-sectional reads (one date across every identity).

Partitioning by the first identity puts each identity in files of its own, so a read of one date
over N identities opens N files. ``optimize_table(..., cross_section=True)`` also writes every row
of the version it leaves, sorted by the index, to ``_lakenodes/cross_section.parquet`` in small
row groups (a date is then one or two row groups of one file), and the list of the data files it
holds to ``_lakenodes/cross_section.files.parquet``. A read with a time window and no identity
filter uses the copy while every one of those files is still live in the version read (same URI
and ``metaData.id``, a version at or after the copy's, see ``_scan.version_key``): the rows of
that version are then the copy's plus those of the files appended since, which the read opens
as usual (pruned by their time statistics, so old dates read the copy alone). A commit that
removes a file (a restatement, a delete, a compaction) retires the copy until the next optimize.
Delta readers and vacuum ignore ``_``-prefixed folders; the copy costs about the table's size again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import polars as pl
from deltalake import DeltaTable

from .._internal.caches import register_cache
from .._internal.deferred import pa, pds
from ._scan import Snapshot, index_names_of, parquet_format, read_whole, snapshot_of, version_key
from ._whole_file import write_whole
from .location import Lake, lake_filesystem

logger = logging.getLogger(__name__)

PATH = "_lakenodes/cross_section.parquet"
FILES_PATH = "_lakenodes/cross_section.files.parquet"  # the data files the copy holds the rows of
ROW_GROUP_ROWS = 8_192
_KEY = b"lakenodes.cross_section"
VersionKey = tuple[str, str, int]


@dataclass(frozen=True)
class CrossSection:
    """The copy usable for one table version: its fragment and the paths of the data files it holds."""

    fragment: pds.Fragment
    covered: pl.Series

    def remaining(self, files: pl.DataFrame) -> pl.DataFrame:
        """The rows of ``files`` (a ``Snapshot.files`` selection) the copy does not hold: appended since."""
        return files.filter(~pl.col("path").is_in(self.covered.implode()))


# table root -> (version key read, its CrossSection or None); (root, copy's version key) -> covered paths
_copies: dict[str, tuple[VersionKey, CrossSection | None]] = register_cache("cross_section.copies", {})
_covered: dict[tuple[str, VersionKey], pl.Series] = register_cache("cross_section.covered", {})


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
    stamp = {_KEY: json.dumps(list(version_key(table))).encode()}
    paths = pa.table({"path": snapshot.files["path"].to_arrow()}).replace_schema_metadata(stamp)
    write_whole(filesystem, f"{root}/{FILES_PATH}", paths)  # first: a copy is only used with its own file list
    write_whole(filesystem, f"{root}/{PATH}", rows.replace_schema_metadata(stamp), row_group_size=ROW_GROUP_ROWS)
    _copies.pop(root, None)
    return rows.num_rows


def cross_section_of(table: DeltaTable, lake: Lake, snapshot: Snapshot) -> CrossSection | None:
    """The copy usable for ``table``'s current version (whose file list is ``snapshot``), or None:
    no copy, a copy of another table or of a later version, or a file it holds no longer live."""
    filesystem, root = lake_filesystem(lake, table.table_uri)
    key = version_key(table)
    known = _copies.get(root)
    if known is not None and known[0] == key:
        return known[1]
    usable = None
    fragment: pds.Fragment = parquet_format().make_fragment(f"{root}/{PATH}", filesystem=filesystem)
    written_for = _stamp_of(fragment, root)
    if written_for[:2] == key[:2] and written_for[2] <= key[2]:
        covered = _covered_paths(filesystem, root, written_for)
        live = snapshot.files["path"]
        if covered is not None and (written_for == key or covered.is_in(live.implode()).all()):
            usable = CrossSection(fragment, covered)
    if len(_copies) > 256:
        _copies.clear()
        _covered.clear()
    _copies[root] = (key, usable)
    return usable


def _stamp_of(fragment: pds.Fragment, root: str) -> tuple:
    """The version key a copy (or file list) was written for; () when there is none."""
    try:
        fragment.ensure_complete_metadata()
        return tuple(json.loads((fragment.physical_schema.metadata or {}).get(_KEY, b"null")) or ())
    except (OSError, pa.ArrowException, ValueError) as error:  # no copy (never optimized with one)
        logger.debug("no cross-section copy for %s: %s", root, error)
        return ()


def _covered_paths(filesystem: Any, root: str, written_for: VersionKey) -> pl.Series | None:
    """The data files the copy written for ``written_for`` holds (None when its list is missing or
    was written for another version: a concurrent optimize replaced one of the two files)."""
    cached = _covered.get((root, written_for))
    if cached is not None:
        return cached
    fragment = parquet_format().make_fragment(f"{root}/{FILES_PATH}", filesystem=filesystem)
    if _stamp_of(fragment, root) != written_for:
        return None
    covered = pl.Series(fragment.to_table().column("path"))
    _covered[(root, written_for)] = covered
    return covered


def is_cross_sectional(values: Any, windows: Any) -> bool:
    """A read with a time bound and no identity filter (``Pruning.values`` / ``Pruning.windows``)."""
    return not values and any(low is not None or high is not None for low, high in windows)
