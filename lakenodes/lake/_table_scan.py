"""Reading a table's rows from only the files that can hold them: the snapshot's candidates
(pruned by partition value and time statistics), the cross-section copy when a read spans every
identity, polars for a time window over many files, each file read whole for one over a few small
ones; ``TableStore.read`` filters and sorts what this returns.

Example (``example``: a temporary lake with one table, see conftest.py):
    >>> from lakenodes.lake._scan import index_names_of
    >>> table = example.node.store.table()
    >>> names = index_names_of(table)
    >>> scan_table(example.lake, table, names, Pruning.of(None, None, None, None), list(names), None).num_rows > 0
    True
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from deltalake import DeltaTable

from .._internal.deferred import pa, pds
from ..errors import one_line
from ._foreign_features import refuse_foreign_features
from ._polars_scan import TimeWindow, scan_many
from ._scan import Pruning, fragments_of, scan, snapshot_of
from ._small_read import read_whole_files
from .cross_section import cross_section_of, forget_cross_section, is_cross_sectional
from .location import Lake, lake_filesystem

logger = logging.getLogger(__name__)

# below this many bytes of local files a read is scanned in the calling thread (10 files of a year
# of daily rows: 3.8 against 4.0 ms with pyarrow's threads, measured)
SMALL_READ_BYTES = 1 << 20


def scan_table(lake: Lake, table: DeltaTable, index_names: Sequence[str], pruning: Pruning, columns: Sequence[str],
               expression: pds.Expression | None, window: TimeWindow | None = None) -> pa.Table:
    """Matching rows from only the files that can hold them (plain types whatever the files hold).

    Files are chosen from the snapshot's add actions (partition value, millisecond time
    statistics widened by 1 ms); ``expression`` (or ``window``, the same rows, when it is
    all the read filters on) then selects rows exactly.
    """
    refuse_foreign_features(table)
    expected_partitions = list(index_names[1:2])
    if table.protocol().min_reader_version > 1 or table.metadata().partition_columns != expected_partitions:
        dataset = table.to_pyarrow_dataset()  # e.g. column mapping or a foreign layout: let delta-rs decide
        return scan(list(dataset.get_fragments()), dataset.schema, dataset.filesystem, columns, expression,
                    dataset.format)
    snapshot = snapshot_of(table, index_names)
    filesystem, root = lake_filesystem(lake, table.table_uri)
    files = snapshot.candidates(pruning)
    copy = (cross_section_of(table, lake, snapshot)
            if is_cross_sectional(pruning.values, pruning.windows) else None)
    if copy is None and window is not None:
        rows = scan_many(lake, table, window, columns, snapshot, files)
        if rows is not None:
            return rows
    remaining = files if copy is None else copy.remaining(files)  # the copy holds the rest: one file, not N
    fragments = ([] if copy is None else [copy.fragment]) + (
        fragments_of(filesystem, root, snapshot.partition, remaining) if remaining.height else [])
    # a few small local files (an asset-scoped read): the scanner costs more than the files
    small = lake.is_local and copy is None and remaining["size"].sum() < SMALL_READ_BYTES
    if small and window is not None:
        return read_whole_files(fragments, remaining["partition"].to_list(), snapshot, columns, window)
    try:
        return scan(fragments, snapshot.schema, filesystem, columns, expression, use_threads=not small)
    except (OSError, pa.ArrowException) as error:
        if copy is None:
            raise
        # superseded long ago and deleted, or cut short by a killed optimize: the data files hold the rows
        logger.warning("the cross-section copy of %s is unreadable (%s): reading its data files", table.table_uri,
                       one_line(error))
        forget_cross_section(lake, table.table_uri)
        return scan(fragments_of(filesystem, root, snapshot.partition, files), snapshot.schema, filesystem,
                    columns, expression)
