"""Rows waiting to be folded into a ledger (:mod:`lakenodes.lake.ledger`): a cheaper durable record
than a Delta commit for a write made on every run (the catalog's successful runs).

``put`` writes one small immutable Parquet file under ``<ledger>/_lakenodes/pending/`` (one PUT on
an object store; a temp file renamed locally: a file is whole or absent). Readers (``rows``) merge
the pending rows with the ledger's, one row per key. Now and then (about one put in
``fold_every``, ``LAKENODES_CATALOG_FOLD_EVERY``, default 20) the writer folds every pending file
into the ledger in one commit, then deletes them.

Nothing is lost or doubled: a file is deleted only after a commit holding its rows landed; that
commit records each file it folds (``Ledger.append_batches``), so a fold after a crash between the
commit and the deletes skips what was folded and deletes it; a reader lists the pending files
before it reads the ledger (a file folded and deleted meanwhile is then in the ledger it reads),
and two folds of the same files at the same instant are hidden by the per-key merge.

Other engines read the ledger's Delta table only: they see pending rows after the next fold
(Delta readers and vacuum ignore folders whose name starts with ``_``).

Example:
    >>> schema = pa.schema([("name", pa.string()), ("value", pa.string())])
    >>> notes = Pending(Ledger(example.lake, "notes", schema, key=("name",)), fold_every=0)
    >>> notes.put([{"name": "a", "value": "1"}])
    >>> notes.rows().column("value").to_pylist()
    ['1']
"""

from __future__ import annotations

import logging
import os
import random
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .._internal.caches import register_cache
from .._internal.deferred import pa, pafs, pq
from .._internal.threads import in_threads
from ..errors import one_line
from ._storage_errors import storage_errors
from ._whole_file import write_whole
from .ledger import Ledger, latest_rows, read_small_file
from .location import Lake, delete_file, lake_filesystem

logger = logging.getLogger(__name__)

PENDING_DIR = "_lakenodes/pending"
_SUFFIX = ".parquet"

# (ledger root, file name) -> the rows of that pending file (immutable: read once per process)
_read: dict[tuple[str, str], pa.Table] = register_cache("pending.files", {})
_read_lock = threading.Lock()


def _fold_every_from_env() -> int:
    value = os.environ.get("LAKENODES_CATALOG_FOLD_EVERY", "20").strip()
    try:
        return max(0, int(value))
    except ValueError:
        logger.warning("LAKENODES_CATALOG_FOLD_EVERY=%r is not a number: using 20", value)
        return 20


class Pending:
    """The pending rows of ``ledger``; about one ``put`` in ``fold_every`` folds them (0: only ``fold()``)."""

    def __init__(self, ledger: Ledger, fold_every: int | None = None):
        self.ledger = ledger
        self.fold_every = _fold_every_from_env() if fold_every is None else fold_every
        self._filesystem, root = lake_filesystem(ledger.lake, ledger.uri)
        self._folder = f"{root}/{PENDING_DIR}"

    def put(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Record ``rows`` (``recorded_at`` is filled in) in one new pending file; then, now and
        then, fold the pending files into the ledger (best effort: the rows are recorded already)."""
        where, lake = f"{self.ledger.uri}/{PENDING_DIR}", self.ledger.lake
        with storage_errors(where, f"record in _catalog/{self.ledger.name}", lake):
            write_whole(self._filesystem, f"{self._folder}/{uuid.uuid4().hex}{_SUFFIX}", self.ledger.stamped(rows))
        if self.fold_every and random.random() * self.fold_every < 1:
            try:
                self.fold()
            except Exception as error:  # the rows are recorded: a later fold will take them
                logger.warning("could not fold the pending rows of _catalog/%s: %s", self.ledger.name,
                               one_line(error))

    def rows(self) -> pa.Table:
        """Every row of the ledger and of the pending files, the latest row per key."""
        pending = self._pending()  # before the ledger: a file folded meanwhile is in the ledger read next
        stored = self.ledger.current()  # e.g. a run recorded as a success, then as failed: failed
        parts = [stored, *(rows.select(stored.column_names).cast(stored.schema) for rows in pending.values())]
        return latest_rows(pa.concat_tables(parts), self.ledger.key) if pending else stored

    def fold(self, rows: Sequence[Mapping[str, Any]] = ()) -> int:
        """Append every pending file, and ``rows`` (``recorded_at`` filled in), to the ledger in one
        commit, then delete those files; returns how many files were folded."""
        pending = self._pending()
        if not pending:
            self.ledger.append(rows)
            return 0
        batches = {name.removesuffix(_SUFFIX): data for name, data in pending.items()}
        if rows:
            batches[uuid.uuid4().hex] = self.ledger.stamped(rows)
        self.ledger.append_batches(batches)
        # every one is in the ledger now (appended here, or by an earlier fold); on S3 each is a DELETE
        in_threads(self._delete, list(pending), max_threads=8)
        logger.debug("folded %d pending file(s) into _catalog/%s", len(pending), self.ledger.name)
        return len(pending)

    def _pending(self) -> dict[str, pa.Table]:
        """The rows of each pending file now listed, by file name (a file deleted by a fold since the
        listing is left out: its rows are in the ledger)."""
        with storage_errors(f"{self.ledger.uri}/{PENDING_DIR}", f"read _catalog/{self.ledger.name}", self.ledger.lake):
            return self._read_pending()

    def _read_pending(self) -> dict[str, pa.Table]:
        names = _listed(self._filesystem, self._folder)
        with _read_lock:
            for key in [key for key in _read if key[0] == self._folder and key[1] not in names]:
                del _read[key]  # folded: never listed again
            known = {name: _read[(self._folder, name)] for name in names if (self._folder, name) in _read}
        new = [name for name in names if name not in known]
        if new:
            read = dict(zip(new, in_threads(self._read_file, new, max_threads=8), strict=True))  # on S3 each is a GET
            with _read_lock:
                _read.update({(self._folder, name): rows for name, rows in read.items() if rows is not None})
            known.update({name: rows for name, rows in read.items() if rows is not None})
        return {name: known[name] for name in names if name in known}

    def _delete(self, name: str) -> None:
        try:
            delete_file(self._filesystem, f"{self._folder}/{name}")
        except FileNotFoundError:
            pass  # deleted by another fold

    def _read_file(self, name: str) -> pa.Table | None:
        try:
            return read_small_file(self._filesystem, f"{self._folder}/{name}", self.ledger.schema)
        except FileNotFoundError:
            return None


def _listed(filesystem: Any, folder: str) -> list[str]:
    """The names of the pending files in ``folder``, sorted (temp files of a write under way left out)."""
    listing = filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    return sorted(info.base_name for info in listing
                  if info.base_name.endswith(_SUFFIX) and not info.base_name.startswith("."))


def pending_files(lake: Lake, name: str) -> list[str]:
    """The pending files of the catalog table ``_catalog/<name>`` (rows not folded into it yet)."""
    filesystem, root = lake_filesystem(lake, lake.catalog_uri(name))
    return _listed(filesystem, f"{root}/{PENDING_DIR}")


def fold_pending(lake: Lake, name: str) -> int:
    """Fold the pending rows of the catalog table ``_catalog/<name>`` into it (with the schema they
    were written with); returns how many files were folded (0 when none are pending)."""
    filesystem, root = lake_filesystem(lake, lake.catalog_uri(name))
    folder = f"{root}/{PENDING_DIR}"
    names = pending_files(lake, name)
    if not names:
        return 0
    schema = pq.read_schema(f"{folder}/{names[0]}", filesystem=filesystem).remove_metadata()
    return Pending(Ledger(lake, name, schema, key=()), fold_every=0).fold()
