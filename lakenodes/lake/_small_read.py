"""Reading a few small local files whole, without pyarrow's dataset scanner.

An asset-scoped read (10 assets x 1 year of daily rows: 10 files, ~200 KB) spent most of its time
in the scanner's set-up, not in the files: reading each file whole with the footer lakenodes keeps
(``_scan.fragments_of``), then keeping the rows of the time window with one compute kernel per
bound, takes 2.0 ms where the scanner took 6.0 ms (``python -m benchmarks --only reads``). Only for
reads whose rows the files and a time window select exactly (``_polars_scan.filters_files_only``),
under 1 MiB of files: over many files polars' reader, in its threads, is quicker (at 1,000 files on
2 idle cores, 106 ms in one benchmark run, 126 ms read whole in the next).

Example (``example``: a temporary lake with one table, see conftest.py):
    >>> import datetime
    >>> from lakenodes.lake._scan import Pruning, fragments_of, snapshot_of
    >>> from lakenodes.lake.location import lake_filesystem
    >>> table = example.node.store.table()
    >>> snapshot = snapshot_of(table, ("time_index", "unique_identifier"))
    >>> day = datetime.datetime(2026, 3, 31, tzinfo=datetime.timezone.utc)
    >>> window = TimeWindow(day, True, day, True)
    >>> files = snapshot.candidates(Pruning.of(day, day, {"unique_identifier": ["MSFT"]}, None))
    >>> filesystem, root = lake_filesystem(example.lake, table.table_uri)
    >>> fragments = fragments_of(filesystem, root, snapshot.partition, files)
    >>> read_whole_files(fragments, files["partition"].to_list(), snapshot, ["time_index", "unique_identifier"],
    ...                  window).to_pydict()["unique_identifier"]
    ['MSFT']
"""

from __future__ import annotations

from collections.abc import Sequence

from .._internal.deferred import np, pa, pc, pds, pq
from ..core.frames import TIME_INDEX
from ._polars_scan import TimeWindow
from ._scan import Snapshot, plain_schema


def read_whole_files(fragments: Sequence[pds.ParquetFileFragment], values: Sequence[str | None], snapshot: Snapshot,
                     columns: Sequence[str], window: TimeWindow) -> pa.Table:
    """The rows of ``fragments`` (their footers read: see ``_scan.fragments_of``; ``values``: each
    one's partition value) within ``window``, as ``columns`` of the snapshot's plain schema."""
    schema = plain_schema(snapshot.schema)
    target = pa.schema([schema.field(name) for name in columns])
    bounded = window.start is not None or window.end is not None  # a catalog ledger has no time index
    needed = [*columns, *([TIME_INDEX] if bounded and TIME_INDEX not in columns else [])]  # the window is on it
    stored = pa.schema([schema.field(name) for name in needed if name != snapshot.partition])
    parts = [_file_rows(fragment, stored) for fragment in fragments]
    rows = (pa.concat_tables(parts) if parts else stored.empty_table()).combine_chunks()
    if snapshot.partition in columns:  # each file's value, as a dictionary until the rows are chosen
        which = np.repeat(np.arange(len(parts), dtype=np.int32), [part.num_rows for part in parts])
        rows = rows.append_column(snapshot.partition, pa.DictionaryArray.from_arrays(
            which, pa.array(values, target.field(snapshot.partition).type)))
    keep = _within(rows.column(TIME_INDEX), window) if bounded else None
    return (rows if keep is None else rows.filter(keep)).select(list(columns)).cast(target)


def _file_rows(fragment: pds.ParquetFileFragment, stored: pa.Schema) -> pa.Table:
    """One file's rows as ``stored`` (columns it lacks as nulls)."""
    present = set(fragment.physical_schema.names)
    with fragment.filesystem.open_input_file(fragment.path) as source:
        rows = pq.ParquetFile(source, metadata=fragment.metadata).read(
            columns=[name for name in stored.names if name in present], use_threads=False)
    if rows.schema == stored:
        return rows
    return pa.Table.from_arrays([rows.column(field.name).cast(field.type) if field.name in present
                                 else pa.nulls(rows.num_rows, field.type) for field in stored], schema=stored)


def _within(times: pa.Array, window: TimeWindow) -> pa.Array | None:
    """Which of ``times`` are within ``window`` (None: it bounds nothing)."""
    keep = None
    for bound, inclusive, after in ((window.start, window.start_inclusive, True),
                                    (window.end, window.end_inclusive, False)):
        if bound is None:
            continue
        scalar = pa.scalar(bound, times.type)
        test = (pc.greater_equal if inclusive else pc.greater) if after else (pc.less_equal if inclusive else pc.less)
        term = test(times, scalar)
        keep = term if keep is None else pc.and_(keep, term)
    return keep
