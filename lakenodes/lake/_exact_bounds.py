"""The exact time bounds of a table's data files, which Delta statistics give only to the millisecond:
known to this process (``FILE_FACTS``), held in the table's facts file (``_facts_file``), or read
from the Parquet footers (exact); learned from this process's own commits without a read, and saved
to the facts file for other processes.
"""

from __future__ import annotations

import datetime
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import polars as pl

from .._internal.arrow_rows import arrow_table, empty_table
from .._internal.caches import register_cache
from .._internal.deferred import pa, pafs
from .._internal.plain_arrow import cast_table
from .._internal.threads import in_threads, storage_threads
from ..core.frames import TIME_DTYPE, TIME_INDEX
from . import _facts_file as facts_file
from ._delta_log import added_files, read_commit
from ._file_facts import FileFacts, Identity
from ._file_frame import identities_and_paths, sizes_by_path
from .location import Lake, lake_filesystem, store_path
from .store import data_file_path

logger = logging.getLogger(__name__)

# footers read from an object store whose saved requests (one HEAD each, 16 at a time) repay the
# first import of pyarrow.dataset
FOOTERS_REPAYING_AN_IMPORT = 128

# store_path of the roots whose facts-file rows, as loaded, this process has learned the bounds of (the rows it adds
# itself are learned as it adds them): a pruning learns them once, not on every pruning
facts_learned: set[str] = register_cache("progress.facts_learned", set())
FILE_FACTS = register_cache("progress.file_facts", FileFacts(on_forget=facts_learned.clear))  # relearned once forgotten


def learn_file_bounds(lake: Lake, table_uri: str, bounds: Mapping[str, tuple[datetime.datetime, datetime.datetime]]) -> None:
    """Remember the exact time bounds of data files this process wrote (paths relative to the table)."""
    _, root = lake_filesystem(lake, table_uri)
    FILE_FACTS.learn_many({f"{root}/{path}": known for path, known in bounds.items()})

def exact_bounds(
    files: pl.DataFrame, keys: Sequence[str], filesystem: Any, root: str, persist: Iterable[str] | None
) -> list[tuple[Identity, tuple[datetime.datetime, datetime.datetime]]]:
    """Exact (first, last) of each file (cached, persisted or from its footer), with its identity.

    When footers had to be read, the known bounds of ``persist`` (all boundary files; None: nothing
    is saved) are saved."""
    pairs = list(identities_and_paths(files, keys))
    if resolve_bounds(filesystem, root, files) and persist is not None:
        persist_facts(filesystem, root, persist)
    return [(identity, FILE_FACTS.bounds(filesystem, f"{root}/{path}")) for identity, path in pairs]

def resolve_bounds(filesystem: Any, root: str, files: pl.DataFrame) -> bool:
    """Make the exact bounds of ``files`` (``file_frame`` rows) known: from this process's cache, else
    the table's persisted facts file, else the Parquet footers (their sizes known: one request each
    on object stores). True when footers had to be read."""
    sizes = sizes_by_path(files)
    missing = [path for path in sizes if not FILE_FACTS.has_bounds(f"{root}/{path}")]
    if missing:
        _load_persisted_facts(filesystem, root)
        missing = [path for path in missing if not FILE_FACTS.has_bounds(f"{root}/{path}")]
    passed = sizes if sizes_worth_passing(filesystem, len(missing)) else {}
    in_threads(lambda path: FILE_FACTS.bounds(filesystem, f"{root}/{path}", passed.get(path)), missing,
               max_threads=storage_threads(filesystem, 16))
    return bool(missing)

def sizes_worth_passing(filesystem: Any, footers: int) -> bool:
    """Whether ``footers`` footers to read from ``filesystem`` are read with their file sizes known
    (``footer_time_bounds``): on an object store, where it saves a request a file, once
    ``pyarrow.dataset`` is imported or the requests saved repay its import (~0.2 s: a cron job's
    daily run imports neither it nor the pandas it loads).

    Example:
        >>> import pyarrow.fs as pafs
        >>> sizes_worth_passing(pafs.LocalFileSystem(), 1000)  # a local file's length costs no request
        False
    """
    if isinstance(filesystem, pafs.LocalFileSystem):
        return False
    return "pyarrow.dataset" in sys.modules or footers >= FOOTERS_REPAYING_AN_IMPORT


def _load_persisted_facts(filesystem: Any, root: str) -> None:
    learn_facts_rows(filesystem, root, facts_file.load(filesystem, root))

def learn_facts_rows(filesystem: Any, root: str, stored: pa.Table | None) -> None:
    """Learn the exact bounds held by rows of the table's facts file (none when ``stored`` is None)."""
    if stored is None:
        return
    # naive µs values read as UTC: far cheaper than converting 1,000s of aware datetimes one by one
    naive = stored.cast(pa.schema([("path", pa.string()), ("min", pa.timestamp("us")), ("max", pa.timestamp("us"))]))
    lows, highs = (pl.Series(naive.column(name)).dt.replace_time_zone("UTC").to_list() for name in ("min", "max"))
    paths = naive.column("path").to_pylist()
    FILE_FACTS.learn_many({f"{root}/{path}": bounds for path, bounds in zip(paths, zip(lows, highs, strict=True), strict=True)})
    facts_learned.add(store_path(filesystem, root))

def persist_facts(filesystem: Any, root: str, paths: Iterable[str],
                   snapshot: tuple[int, dict[bytes, bytes]] | None = None) -> None:
    """Write the known exact bounds of ``paths`` (relative to the table root) to the facts file,
    with the newest progress snapshot known for the table (``snapshot``, else the last one seen)."""
    rows = {path: FILE_FACTS.known_bounds(f"{root}/{path}") for path in paths}
    rows = {path: bounds for path, bounds in rows.items() if bounds is not None}
    data = arrow_table([{"path": path, "min": low, "max": high} for path, (low, high) in rows.items()],
                       facts_file.facts_schema())
    facts_file.write(filesystem, root, data, snapshot)

def summary_of(rows: pa.Table, dims: Sequence[str]) -> pl.DataFrame:
    """Row count ``n`` and exact ``lo``/``hi`` time of ``rows`` per value of ``dims`` (one row if none)."""
    frame = pl.from_arrow(rows.select([*dims, TIME_INDEX]))
    aggregates = [pl.len().alias("n"), pl.col(TIME_INDEX).min().alias("lo"), pl.col(TIME_INDEX).max().alias("hi")]
    return frame.group_by(list(dims)).agg(aggregates) if dims else frame.select(aggregates)

def learn_own_commit(filesystem: Any, root: str, version: int, run_id: str | None, summary: pl.DataFrame,
                      partition_dims: Sequence[str]) -> pa.Table:
    """Exact bounds of the files our append committed at ``version``, from the rows' ``summary``,
    learned and returned as facts rows (path relative to ``root``, min, max).

    A file holds exactly the rows of its partition when it is the commit's only file of that
    partition and its record count matches, so its bounds are those rows' min/max."""
    nothing = empty_table(facts_file.facts_schema())
    try:
        lines, info = read_commit(filesystem, root, version)
    except OSError as error:
        logger.debug("could not read commit %d of %s: %s", version, root, error)
        return nothing
    if run_id is not None and info.get("lakenodes.run_id") != run_id:
        return nothing
    partition = partition_dims[0] if partition_dims else None
    adds = added_files(lines, partition)
    files_per_value = Counter(value for _, value, _ in adds)
    row_of = {value: row for row, value in enumerate(summary[partition].to_list() if partition else [None])}
    counts = summary["n"].to_list()
    learned = {data_file_path(path): row_of[value] for path, value, count in adds
               if files_per_value[value] == 1 and value in row_of and count == counts[row_of[value]]}
    paths, rows = list(learned), pl.Series(list(learned.values()), dtype=pl.UInt32)
    lows, highs = (_in_utc(summary[name]).gather(rows) for name in ("lo", "hi"))  # Series: no query to plan
    FILE_FACTS.learn_many(dict(zip([f"{root}/{path}" for path in paths],
                               zip(lows.to_list(), highs.to_list(), strict=True), strict=True)))
    return cast_table(pa.table({"path": pl.Series(paths, dtype=pl.String).to_arrow(), "min": lows.to_arrow(),
                               "max": highs.to_arrow()}), facts_file.facts_schema())

def _in_utc(times: pl.Series) -> pl.Series:
    """``times`` in UTC at microseconds (naive values are read as UTC, as ``as_utc`` does)."""
    if times.dtype == TIME_DTYPE:  # a normalized frame's times already are
        return times
    if times.dtype.time_zone is None:  # type: ignore[attr-defined]
        times = times.dt.replace_time_zone("UTC")
    return times.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
