"""The data files of a table version that can hold matching rows, and a scan of just those files.

Files are chosen from the snapshot's add actions (partition value, millisecond time statistics
widened by 1 ms); the caller's filter then selects rows exactly. Parquet fragments are cached by
path (data files are immutable), so their footers are read once per process.

Every scan returns plain Arrow types (``string``, never ``string_view``/``large_string``), even
over files whose embedded Arrow schema uses view types (written by delta-rs MERGE/DELETE, e.g. by
older lakenodes versions): pyarrow has no kernel comparing ``string`` with ``string_view``, so
such files are read whole, cast to the table schema, and filtered in memory.
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import polars as pl
from deltalake import DeltaTable

from .._internal.caches import register_cache
from .._internal.datetimes import epoch_micros, from_epoch_micros
from .._internal.deferred import np, pa, pds
from .._internal.threads import in_threads, storage_threads
from ..core.frames import TIME_DTYPE, TIME_INDEX
from ..errors import LakenodesUserError
from ._foreign_features import refuse_foreign_features
from .location import options_key

logger = logging.getLogger(__name__)

StoreVersionKey = tuple[str, str, str, int]  # (storage options, table URI, metaData.id, version)

SLACK = datetime.timedelta(milliseconds=1)  # Delta statistics truncate timestamps to ms (or round up)


def minus_slack(moment: datetime.datetime) -> datetime.datetime:
    """``moment - SLACK``, no earlier than the first representable moment (datetime.min as a bound)."""
    return moment - SLACK if moment - datetime.datetime.min.replace(tzinfo=moment.tzinfo) >= SLACK else moment


def _plus_slack(moment: datetime.datetime) -> datetime.datetime:
    """``moment + SLACK``, no later than the last representable moment (datetime.max as a bound)."""
    return moment + SLACK if datetime.datetime.max.replace(tzinfo=moment.tzinfo) - moment >= SLACK else moment


@functools.cache
def parquet_format() -> pds.ParquetFileFormat:
    """The Parquet format of every scan (column chunks pre-buffered: fewer, larger reads)."""
    return pds.ParquetFileFormat(default_fragment_scan_options=pds.ParquetFragmentScanOptions(pre_buffer=True))


def plain_type(kind: pa.DataType) -> pa.DataType:
    """``string`` for any string type, ``binary`` for any binary type; other types unchanged."""
    if pa.types.is_string_view(kind) or pa.types.is_large_string(kind):
        return pa.string()
    if pa.types.is_binary_view(kind) or pa.types.is_large_binary(kind):
        return pa.binary()
    return kind


def plain_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with plain string/binary types (what every file lakenodes writes holds)."""
    return pa.schema([field.with_type(plain_type(field.type)) for field in schema], metadata=schema.metadata)


def is_plain(schema: pa.Schema) -> bool:
    """True when no field of ``schema`` is a view or large string/binary type."""
    return all(plain_type(field.type) == field.type for field in schema)


def to_plain(table: pa.Table) -> pa.Table:
    """``table`` cast to plain string/binary types (a no-op when it already has them)."""
    return table if is_plain(table.schema) else table.cast(plain_schema(table.schema))


@dataclass(frozen=True)
class Snapshot:
    """The data files of one table version: path, size, partition value, ms ``min``/``max`` time_index."""

    files: pl.DataFrame
    partition: str | None
    schema: pa.Schema

    def candidates(self, pruning: Pruning) -> pl.DataFrame:
        """The files that can hold rows ``pruning`` allows (conservative by 1 ms): those of its
        partition values (looked up: a read of a few assets among thousands of files), then of its
        time windows (on integer bounds: a polars filter costs ~0.5 ms even on a few rows)."""
        allowed = pruning.allowed(self.partition)
        if allowed is None:
            positions = np.arange(self.files.height)
        else:
            found = [self._positions[value] for value in allowed if value in self._positions]
            positions = np.sort(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)
        lows, highs = self._bounds
        keep = np.ones(len(positions), dtype=bool)
        for low, high in pruning.windows:
            if low is not None:
                keep &= highs[positions] >= epoch_micros(minus_slack(low))
            if high is not None:
                keep &= lows[positions] <= epoch_micros(_plus_slack(high))
        return self.files[positions[keep]]

    @functools.cached_property
    def last_row_starts(self) -> dict[str | None, datetime.datetime]:
        """Each partition value's largest ``max`` statistic less ``SLACK``: no later than the
        latest row of its files (kept with the snapshot: a warm process asks again per read).
        Only for a snapshot whose files all have statistics (``last_rows`` checks that first)."""
        highs = self._bounds[1]
        return {value: minus_slack(from_epoch_micros(int(highs[positions].max())))
                for value, positions in self._positions.items()}

    @functools.cached_property
    def _positions(self) -> dict[str | None, np.ndarray]:
        """The rows of ``files`` by partition value."""
        positions: dict[str | None, list[int]] = {}
        for position, value in enumerate(self.files["partition"].to_list()):
            positions.setdefault(value, []).append(position)
        return {value: np.array(rows, dtype=np.int64) for value, rows in positions.items()}

    @functools.cached_property
    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Each file's ``min``/``max`` in µs; a file without statistics bounds nothing (it may hold any time)."""
        lows = self.files["min"].dt.epoch("us").fill_null(np.iinfo(np.int64).min).to_numpy()
        highs = self.files["max"].dt.epoch("us").fill_null(np.iinfo(np.int64).max).to_numpy()
        return lows, highs


_snapshots: dict[StoreVersionKey, Snapshot] = register_cache("scan.snapshots", {})
_fragment_cache: dict[tuple[int, str], pds.Fragment] = register_cache("scan.fragments", {})
# full path -> its embedded Arrow schema has plain types only
_plain_files: dict[str, bool] = register_cache("scan.plain_files", {})


def version_key(table: DeltaTable) -> tuple[str, str, int]:
    """What identifies the content of ``table``'s current version for caches: its URI, its
    ``metaData.id`` (a table removed and created again at the same URI has a new one) and version."""
    return table.table_uri, table.metadata().id, table.version()


def store_version_key(table: DeltaTable) -> StoreVersionKey:
    """``version_key`` led by the store ``table`` reads (its storage options, see ``options_key``): the key
    of what this process caches of a version. Two stores may each hold ``s3://lake/prod/tables/t`` (a
    staging MinIO and AWS) with one ``metaData.id`` (one is a copy of the other) and versions that
    differ since, so a version is only the same version in the same store."""
    return (options_key(table._storage_options), *version_key(table))  # the options it was opened with


def add_actions(table: DeltaTable) -> pa.Table:
    """The add actions of ``table``'s current version, one row per data file: ``path``, ``size_bytes``,
    ``num_records``, ``partition.<col>``, ``min.<col>``, ``max.<col>`` (the one place they are read, so
    a table with deletion vectors or renamed columns is refused here, see ``refuse_foreign_features``;
    delta-rs returns an arro3 table, imported here through the Arrow C stream: ``pa.table()`` of a
    non-dict object asks pyarrow's pandas shim first, which imports pandas, ~0.15 s of a cron job)."""
    refuse_foreign_features(table)
    return pa.RecordBatchReader.from_stream(table.get_add_actions(flatten=True)).read_all()


def snapshot_of(table: DeltaTable, index_names: Sequence[str]) -> Snapshot:
    """The (cached) file list of ``table``'s current version."""
    key = store_version_key(table)
    cached = _snapshots.get(key)
    if cached is None:
        actions = add_actions(table)
        partition = index_names[1] if len(index_names) > 1 else None

        def column(name: str, dtype: pl.DataType) -> pl.Series:
            if name not in actions.column_names:
                return pl.Series([None] * actions.num_rows, dtype=dtype)
            return pl.Series(actions.column(name)).cast(dtype)

        files = pl.DataFrame({
            "path": column("path", pl.String),
            "size": column("size_bytes", pl.Int64),
            "partition": column(f"partition.{partition}", pl.String),
            "min": column(f"min.{TIME_INDEX}", TIME_DTYPE),
            "max": column(f"max.{TIME_INDEX}", TIME_DTYPE),
        })
        cached = Snapshot(files, partition if f"partition.{partition}" in actions.column_names else None,
                          plain_schema(pa.schema(table.schema().to_arrow())))
        if store_version_key(table) != key:  # another thread advanced a shared object meanwhile: do not cache
            return cached
        if len(_snapshots) > 64:
            _snapshots.clear()
        _snapshots[key] = cached
    return cached


def data_file_path(path: str) -> str:
    """A data file's path relative to the table root, from an add action's (URL-encoded) path."""
    return unquote(path) if "%" in path else path


def fragments_of(filesystem: Any, root: str, partition: str | None, files: pl.DataFrame) -> list[pds.Fragment]:
    """Parquet fragments of ``files`` with their partition value; new ones read their footer once
    (in threads on S3, where each is a GET) so later scans skip it."""
    fragments, new = [], []
    for path, value, size in zip(files["path"].to_list(), files["partition"].to_list(), files["size"].to_list(),
                                 strict=True):
        full = f"{root}/{data_file_path(path)}"
        fragment = _fragment_cache.get((id(filesystem), full))
        if fragment is None:
            fragment = parquet_format().make_fragment(full, filesystem=filesystem, partition_expression=_partition_expression(
                partition, value), file_size=size)
            new.append(((id(filesystem), full), fragment))
        fragments.append(fragment)
    if new:
        in_threads(lambda item: item[1].ensure_complete_metadata(), new, max_threads=storage_threads(filesystem, 16))
        if len(_fragment_cache) + len(new) > 20_000:
            _fragment_cache.clear()
            _plain_files.clear()
        _fragment_cache.update(new)
        _plain_files.update({key[1]: is_plain(fragment.physical_schema) for key, fragment in new})
    return fragments


def footers_kept(filesystem: Any, paths: Sequence[str]) -> bool:
    """Whether this process holds the footer of every file of ``paths`` (full paths of ``filesystem``,
    read by ``fragments_of``): a scan of them then reads each in one request (no I/O here)."""
    return all((id(filesystem), path) in _fragment_cache for path in paths)


def plain_flags(fragments: Sequence[pds.Fragment]) -> list[bool]:
    """Per fragment: does its file's embedded Arrow schema hold plain types only (cached per path)."""
    flags = []
    for fragment in fragments:
        known = _plain_files.get(fragment.path)
        flags.append(known if known is not None else is_plain(fragment.physical_schema))
    return flags


def scan(
    fragments: Sequence[pds.Fragment],
    schema: pa.Schema,
    filesystem: Any,
    columns: Sequence[str],
    expression: pds.Expression | None,
    use_threads: bool = True,
) -> pa.Table:
    """Rows of ``fragments`` matching ``expression``, as ``columns`` of the plain ``schema``
    (``use_threads``: pyarrow's scanner threads; for a few small local files they cost more than they save).

    Files with view types in their embedded Arrow schema are read whole, cast, then filtered
    (pushing the filter into them fails: ``'equal' has no kernel matching (string, string_view)``).
    """
    schema = plain_schema(schema)
    target = pa.schema([schema.field(name) for name in columns])
    flags = plain_flags(fragments)
    plain = [fragment for fragment, flag in zip(fragments, flags, strict=True) if flag]
    legacy = [fragment for fragment, flag in zip(fragments, flags, strict=True) if not flag]
    dataset = pds.FileSystemDataset(plain, schema, parquet_format(), filesystem)
    parts = [dataset.scanner(columns=list(columns), filter=expression, fragment_readahead=16,
                             use_threads=use_threads).to_table()]
    if legacy:
        logger.debug("reading %d file(s) with view-typed columns whole (no filter pushdown)", len(legacy))
    for fragment in legacy:
        rows = fragment.to_table(schema=schema)
        if expression is not None:
            rows = rows.filter(expression)
        parts.append(rows.select(list(columns)))
    return pa.concat_tables([part.cast(target) for part in parts])


def read_whole(filesystem: Any, root: str, partition: str | None, files: pl.DataFrame, schema: pa.Schema) -> pa.Table:
    """Every row of ``files`` (plain types, partition column filled in) plus ``_file``: the
    position of the row's file in ``files``."""
    schema = plain_schema(schema)
    fragments = fragments_of(filesystem, root, partition, files)

    def read(position: int) -> pa.Table:
        rows = fragments[position].to_table(schema=schema)
        return rows.append_column("_file", pa.array([position] * rows.num_rows, pa.int32()))

    if not fragments:
        return schema.empty_table().append_column("_file", pa.array([], pa.int32()))
    with ThreadPoolExecutor(max_workers=min(16, len(fragments))) as pool:
        return pa.concat_tables(list(pool.map(read, range(len(fragments)))))


def _partition_expression(partition: str | None, value: str | None) -> pds.Expression | None:
    if partition is None:
        return None
    return pds.field(partition).is_null() if value is None else pds.field(partition) == value


@dataclass(frozen=True)
class Pruning:
    """What a read can rule out from file metadata alone: identity values and time windows (all must hold)."""

    values: tuple[tuple[str, frozenset[str]], ...] = ()
    windows: tuple[tuple[datetime.datetime | None, datetime.datetime | None], ...] = ()

    @classmethod
    def of(cls, start: datetime.datetime | None, end: datetime.datetime | None,
           dimension_filters: Mapping[str, Sequence[str]] | None,
           ranges: Sequence[Any] | None) -> Pruning:
        """From a read's time window, ``{dim: values}`` filters and ``RangeFilter`` list."""
        values = [(dim, frozenset(allowed)) for dim, allowed in (dimension_filters or {}).items()
                  if cls.chooses_files(allowed)]
        windows = [(start, end)]
        if ranges:
            windows.append(outer_window(ranges))
            for dim in set.intersection(*[set(r.coordinate) for r in ranges]):
                if cls.chooses_files([r.coordinate[dim] for r in ranges]):
                    values.append((dim, frozenset(r.coordinate[dim] for r in ranges)))
        return cls(tuple(values), tuple(windows))

    @staticmethod
    def chooses_files(values: Iterable[Any]) -> bool:
        """Whether filtering the partition column to ``values`` chooses files by their partition value
        alone: every value is text, as a partition value is (any other is matched against the rows).

        Example:
            >>> Pruning.chooses_files(["AAPL", "MSFT"]), Pruning.chooses_files(["AAPL", 1])
            (True, False)
        """
        return all(isinstance(value, str) for value in values)

    def allowed(self, partition: str | None) -> frozenset[str] | None:
        """The partition values files must have (None: any)."""
        sets = [allowed for dim, allowed in self.values if dim == partition]
        return frozenset.intersection(*sets) if partition is not None and sets else None


def outer_window(ranges: Sequence[Any]) -> tuple[datetime.datetime | None, datetime.datetime | None]:
    """The earliest start and the latest end of ``ranges`` (``RangeFilter``s; None: one of them is
    unbounded on that side): the one window that holds every range's rows."""
    starts, ends = [r.start for r in ranges], [r.end for r in ranges]
    return None if None in starts else min(starts), None if None in ends else max(ends)


# -- lakenodes table layout -------------------------------------------------------------------------
def index_names_of(table: DeltaTable) -> tuple[str, ...]:
    """Index names of a lakenodes table (stored in its description; ``time_index`` otherwise)."""
    description = table.metadata().description
    try:
        return tuple(json.loads(description)["index_names"])
    except (TypeError, ValueError, KeyError):
        return (TIME_INDEX,)


def empty_table(schema: pa.Schema, index_names: Sequence[str], columns: Sequence[str] | None) -> pa.Table:
    names = list(index_names) + [n for n in schema.names if n not in index_names and (columns is None or n in columns)]
    return pa.schema([schema.field(n) for n in names]).empty_table()


def check_dimensions(index_names: Sequence[str], dimensions: Sequence[str]) -> None:
    unknown = sorted(set(dimensions) - set(index_names[1:]))
    if unknown:
        raise LakenodesUserError(
            f"unknown identity dimension(s) {unknown}; the table is indexed by {list(index_names)}"
        )


def selected_columns(index_names: Sequence[str], table: DeltaTable, columns: Sequence[str] | None) -> list[str]:
    available = [field.name for field in table.schema().fields]
    if columns is None:
        return list(index_names) + [name for name in available if name not in index_names]
    unknown = [name for name in columns if name not in available]
    if unknown:
        raise LakenodesUserError(f"unknown column(s) {unknown}; the table has {available}")
    return list(index_names) + [name for name in dict.fromkeys(columns) if name not in index_names]  # once each
