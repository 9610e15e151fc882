"""Reading many small files of a table with polars' Parquet reader.

A read of one date across every asset of a table as ``run()`` wrote it (one file per asset and
backfill, more per daily append) opens every file. On a local disk polars reads them about twice
as fast as pyarrow's dataset scanner (~0.1 against ~0.25 ms a file here, ``python -m benchmarks
--only reads``).

On S3 polars reads a small file in about one request, where pyarrow's scanner first reads its
footer, then its data: a new process reading the latest row of 100 assets on moto took 0.77 s
through polars, 1.09 s through pyarrow (10 assets x 1 year, 10 files: 0.45 against 1.4 s). Once
pyarrow has read the footers (``_scan`` keeps them) it reads each file in one request, and faster
than polars (0.33 against 0.39 s): files whose footers this process holds are left to it, and so
are files polars read before in this process (a process that reads the same files twice, a
notebook or a scheduler, will read them again, and pays for their footers once). polars reaches S3
through object_store with the lake's storage options, as delta-rs does.

Small files (``SMALL_FILE_BYTES``) are read whole and filtered afterwards: polars' filter pushed
down to each file costs more than it saves there (the latest row of 200 assets: ~30% less CPU).

Only for reads both engines answer the same way: many files (on S3, two or more), a time window
as the only row filter on them (an identity filter on the partition column chooses the files:
``filters_files_only``), and column types polars hands back unchanged. Anything else (or any
failure) returns None: the caller scans with pyarrow.

Example (``example``: a temporary lake with one table, see conftest.py; it has too few files):
    >>> import datetime
    >>> from lakenodes.lake._scan import Pruning, snapshot_of
    >>> table = example.node.store.table()
    >>> snapshot = snapshot_of(table, ("time_index", "unique_identifier"))
    >>> window = TimeWindow(datetime.datetime(2026, 3, 31), True, None, True)
    >>> files = snapshot.candidates(Pruning.of(window.start, None, None, None))
    >>> scan_many(example.lake, table, window, ["time_index"], snapshot, files) is None
    True
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from deltalake import DeltaTable

from .._internal.caches import register_cache
from .._internal.datetimes import epoch_micros
from .._internal.deferred import pa
from ..core.frames import TIME_DTYPE, TIME_INDEX
from ._scan import Pruning, Snapshot, data_file_path, footers_kept, plain_schema
from .client_options import polars_storage_options
from .location import Lake, lake_filesystem, store_path

logger = logging.getLogger(__name__)

MANY_FILES = 32  # fewer local files: pyarrow's scanner is as quick (measured at 10 files)
MANY_FILES_ON_S3 = 2  # a request saved per file counts from two (see module doc)
# files this small are read whole, then filtered: polars' pushed-down filter costs more per file than it
# saves (64 files: 12.0 against 14.8 ms at 5 KB each, polars 2.1; 13.4 against 25.8 with 1.34; even at
# 300 KB; 2x slower at 3 MB, where it skips row groups)
SMALL_FILE_BYTES = 64 * 1024
# the files of an object store scan_many read (``_first_read``): a second read leaves them to pyarrow (see module doc)
_polars_read: set[str] = register_cache("polars_scan.read_files", set())
_PATH = "__lakenodes_file"  # "__" names are reserved for lakenodes: no column of a frame has one


@dataclass(frozen=True)
class TimeWindow:
    """A read's bounds on ``time_index`` (None: unbounded on that side)."""

    start: datetime.datetime | None
    start_inclusive: bool
    end: datetime.datetime | None
    end_inclusive: bool

    def expression(self) -> pl.Expr:
        condition = pl.lit(True)
        column = pl.col(TIME_INDEX)
        if self.start is not None:
            bound = _instant(self.start)
            condition = condition & (column >= bound if self.start_inclusive else column > bound)
        if self.end is not None:
            bound = _instant(self.end)
            condition = condition & (column <= bound if self.end_inclusive else column < bound)
        return condition


def filters_files_only(dimension_filters: Mapping[str, Sequence[Any]] | None, index_names: Sequence[str]) -> bool:
    """True when a read's identity filters (if any) select files, not rows: they are on the partition
    column (the first identity of ``index_names``) alone, by text value, so the files chosen for the
    read hold only rows they allow (each holds one partition value) and a time window is all that
    is left to filter on.

    Example:
        >>> names = ("time_index", "unique_identifier", "sector")
        >>> filters_files_only({"unique_identifier": ["A"]}, names)
        True
        >>> filters_files_only({"sector": ["tech"]}, names)
        False
    """
    if not dimension_filters:
        return True
    partition = index_names[1:2]
    return list(dimension_filters) == list(partition) and Pruning.chooses_files(dimension_filters[partition[0]])


def scan_many(lake: Lake, table: DeltaTable, window: TimeWindow, columns: Sequence[str], snapshot: Snapshot,
              files: pl.DataFrame) -> pa.Table | None:
    """The rows of ``files`` (of ``snapshot``, the table's current version) within ``window``, as
    ``columns`` of its plain schema; None when this read is not one for polars (see module doc)."""
    if files.height < (MANY_FILES if lake.is_local else MANY_FILES_ON_S3):
        return None
    first_read = None if lake.is_local else _first_read(lake, table, files)  # None: local files, read every time
    if first_read is not None and not first_read:  # read before by this process: pyarrow reads them
        return None
    schema = plain_schema(snapshot.schema)
    target = pa.schema([schema.field(name) for name in columns])
    if not all(_round_trips(field.type) for field in target):
        return None
    partition = snapshot.partition
    read = [name for name in columns if name != partition]
    largest = files["size"].max()
    try:
        scanned, paths = _scan_paths(lake, table, files, pa.schema([target.field(name) for name in read]))
        # filtered and collected before the partition column is joined: a lazy join made polars read
        # every file whole (~1.5x slower, measured); small files are read whole, then filtered, in
        # a query of its own: DataFrame.filter took 6-13 ms on 730,000 rows of 1,000 files, a query 2-5 ms
        scanned, wanted = scanned.select(*read, _PATH), window.expression()
        small = largest is not None and largest <= SMALL_FILE_BYTES
        rows = scanned.collect().lazy().filter(wanted).collect() if small else scanned.filter(wanted).collect()
    except (pl.exceptions.PolarsError, OSError, ValueError, TypeError) as error:  # e.g. a file of another layout: pyarrow reads it
        logger.debug("polars could not read %d files of %s (%s): scanning them with pyarrow", files.height,
                     table.table_uri, error)
        return None
    if first_read:
        _remember(first_read)
    if partition is not None and partition in columns:
        rows = rows.join(pl.DataFrame({_PATH: paths, partition: files["partition"]}), on=_PATH, how="left")
    return rows.select(columns).to_arrow().cast(target)


def _first_read(lake: Lake, table: DeltaTable, files: pl.DataFrame) -> list[str]:
    """The keys (paths led by their store, ``store_path``) of ``files`` to remember once polars
    read them; empty when this process read every one before (see module doc): pyarrow's scanner
    holds their footers, or polars read them."""
    filesystem, root = lake_filesystem(lake, table.table_uri)
    paths = [f"{root}/{data_file_path(path)}" for path in files["path"].to_list()]
    if footers_kept(filesystem, paths):
        return []
    keys = [store_path(filesystem, path) for path in paths]
    return [] if _polars_read.issuperset(keys) else keys


def _remember(keys: list[str]) -> None:
    if len(_polars_read) + len(keys) > 20_000:  # as _scan's footers: a bounded memory
        _polars_read.clear()
    _polars_read.update(keys)


def files_scan(lake: Lake, table: DeltaTable, partition: str | None, files: pl.DataFrame) -> pl.LazyFrame:
    """The rows of ``files`` (rows of a ``Snapshot``: path, partition value) as one LazyFrame read by
    polars from their real paths, with the partition column."""
    rows, paths = _scan_paths(lake, table, files)
    if partition is not None:
        rows = rows.join(pl.LazyFrame({_PATH: paths, partition: files["partition"]}), on=_PATH, how="left")
    return rows.drop(_PATH)


def _scan_paths(lake: Lake, table: DeltaTable, files: pl.DataFrame,
                columns: pa.Schema | None = None) -> tuple[pl.LazyFrame, list[str]]:
    """Polars' scan of ``files`` from their real paths (each row with its file's path in ``_PATH``),
    and those paths. ``columns``: the only columns to read, typed as the files hold them (a file
    holding one otherwise fails the scan); given, polars plans the scan without reading any file
    first (on S3, 100 files of the latest-row read: 116 requests without it, 100 with it)."""
    _, root = lake_filesystem(lake, table.table_uri)  # decoded: delta-rs hands table URIs percent-encoded
    prefix = root if lake.is_local else f"s3://{root}"
    paths = [f"{prefix}/{data_file_path(path)}" for path in files["path"].to_list()]
    known: dict[str, Any] = {} if columns is None else {
        "schema": pl.from_arrow(columns.empty_table()).schema, "extra_columns": "ignore"}
    return pl.scan_parquet(paths, include_file_paths=_PATH, hive_partitioning=False, glob=False,
                           storage_options=None if lake.is_local else polars_storage_options(lake.storage_options),
                           **known), paths


def _instant(value: datetime.datetime) -> pl.Expr:
    return pl.lit(epoch_micros(value), pl.Int64).cast(TIME_DTYPE)


def _round_trips(kind: pa.DataType) -> bool:
    """Types polars reads from Parquet and hands back to Arrow as they were (after the plain cast)."""
    return (pa.types.is_integer(kind) or pa.types.is_float32(kind) or pa.types.is_float64(kind)
            or pa.types.is_boolean(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)
            or pa.types.is_date32(kind) or (pa.types.is_timestamp(kind) and kind.unit in ("ms", "us", "ns")))
