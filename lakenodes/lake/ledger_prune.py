"""Rows removed from a catalog ledger (:mod:`lakenodes.lake.ledger`), e.g. old run records.

A ledger only ever grows by blind appends; removing rows rewrites the data files that hold them
(their other rows go to one new file) and removes those files in ONE Delta commit, written the way
catalog compaction writes its own (:mod:`lakenodes.lake.housekeeping`):

- the commit sets the ledger's compaction app transaction, so it fails, and is retried on a fresh
  snapshot, when a compaction or another removal committed since its snapshot (delta-rs 1.6.6 does
  not notice a file removed twice: both commits would land and the rows would be live twice);
- blind appends (a run recorded meanwhile, a fold of pending records) add new files, which this
  commit never removes: they are kept whatever their rows;
- it also sets an app transaction of its own, so a retry after a commit that landed although its
  answer was lost does not remove twice.

Example:
    >>> schema = pa.schema([("name", pa.string()), ("value", pa.string())])
    >>> notes = Ledger(example.lake, "prune_notes", schema, key=("name",))
    >>> notes.append([{"name": "a", "value": "1"}, {"name": "b", "value": "2"}])
    >>> remove_rows(notes, "name", {"a", "z"})
    {'a'}
    >>> notes.latest()[0]["name"]
    'b'
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection

from deltalake import CommitProperties, Transaction

from .._internal.deferred import pa, pc
from ._rewrite import RemovedFile, commit_rewrite, write_files
from ._scan import plain_schema
from .housekeeping import COMPACTION_APP_ID
from .ledger import Ledger, live_files, read_files
from .location import lake_filesystem
from .store import TableStore

logger = logging.getLogger(__name__)


def remove_rows(ledger: Ledger, column: str, values: Collection[str]) -> set[str]:
    """Remove every row of ``ledger`` whose ``column`` is one of ``values`` (rows appended while this
    runs are kept, whatever their values); returns the values whose rows it removed (not those
    removed by someone else meanwhile). Retried on commit conflicts as every catalog write is
    (``TableStore.with_retries``)."""
    store = TableStore(ledger.lake, ledger.name, uri=ledger.uri)
    wanted = pa.array(sorted(set(values)), pa.string())
    write_id = f"lakenodes-prune-{uuid.uuid4().hex}"
    removed: list[set[str]] = []  # the values of each attempt that reached its commit

    def attempt() -> set[str]:
        table = store.table()
        if table is None or not len(wanted):
            return set()
        if removed and table.transaction_version(write_id) is not None:
            return removed[-1]  # an earlier attempt landed although it reported a failure
        sizes = live_files(table)
        schema = plain_schema(pa.schema(table.schema().to_arrow()))
        doomed, kept, found = [], [], set()
        for path, rows in zip(sizes, read_files(ledger.lake, table, list(sizes), schema), strict=True):
            matches = pc.is_in(rows.column(column), value_set=wanted)
            if pc.any(matches).as_py():
                doomed.append(RemovedFile(path, sizes[path], None))
                kept.append(rows.filter(pc.invert(matches)))
                found.update(rows.column(column).filter(matches).to_pylist())
        if not doomed:
            return set()
        filesystem, root = lake_filesystem(ledger.lake, ledger.uri)
        adds = write_files(filesystem, root, pa.concat_tables(kept), schema, None)
        now = int(time.time() * 1000)
        guard = (table.transaction_version(COMPACTION_APP_ID) or 0) + 1
        properties = CommitProperties(
            app_transactions=[Transaction(write_id, 1, last_updated=now),
                              Transaction(COMPACTION_APP_ID, guard, last_updated=now)],
            custom_metadata={"lakenodes.operation": f"catalog rows removed ({column})"},
        )
        removed.append(found)
        commit_rewrite(table, filesystem, root, adds, doomed, properties, write_id)
        return found

    found = store.with_retries(attempt, what=f"remove rows from _catalog/{ledger.name}")
    logger.info("removed the rows of %d %s(s) from _catalog/%s", len(found), column, ledger.name)
    return found
