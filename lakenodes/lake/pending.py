"""Rows waiting to be folded into a ledger (:mod:`lakenodes.lake.ledger`): a cheaper durable record
than a Delta commit for a write made on every run (the catalog's successful runs).

``put`` writes one small immutable JSON file under ``<ledger>/_lakenodes/pending/`` (one PUT on an
object store; a temp file renamed locally: a file is whole or absent; the format:
:mod:`lakenodes.lake._pending_file`). Readers (``rows``) merge
the pending rows with the ledger's, one row per key. Now and then (about one put in
``fold_every``, ``LAKENODES_CATALOG_FOLD_EVERY``, default 20) the writer folds every pending file
into the ledger in one commit, then deletes them.

Nothing is lost or doubled: a file is deleted only after a commit holding its rows landed; that
commit records each file it folds (``Ledger.append_batches``), so a fold after a crash between the
commit and the deletes skips what was folded and deletes it; a reader lists the pending files
before it reads the ledger (a file folded and deleted meanwhile is then in the ledger it reads),
and two folds of the same files at the same instant are hidden by the per-key merge.

A pending file changed outside lakenodes (cut short by a disk or a sync tool, overwritten) cannot be
read: readers skip it, with one warning per process naming it, and the next fold moves it aside to
``<ledger>/_lakenodes/unreadable/`` (kept, for whoever wants to look at it) instead of failing. Its
rows are lost; for ``_catalog/runs`` the run it recorded committed rows whose commit info names it,
so ``lakenodes updates reconcile`` records it again (status ``recovered``).

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
from .._internal.deferred import pa, pafs
from .._internal.threads import in_threads, storage_threads
from ..errors import UnreadableFileError, one_line
from . import _pending_file as pending_file
from ._storage_errors import storage_errors
from ._whole_file import write_whole_bytes
from .ledger import RECORDED_AT, Ledger, conform_columns, latest_rows, utcnow
from .location import Lake, delete_file, file_exists, lake_filesystem, write_small_file

logger = logging.getLogger(__name__)

PENDING_DIR = "_lakenodes/pending"
UNREADABLE_DIR = "_lakenodes/unreadable"  # pending files that could not be read, set aside by a fold

# (ledger root, file name) -> the rows of that pending file (immutable: read once per process)
_read: dict[tuple[str, str], pa.Table] = register_cache("pending.files", {})
_read_lock = threading.Lock()
_warned: set[str] = set()  # the unreadable pending files this process warned about (once each)


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
            now = utcnow()
            data = pending_file.encode([{RECORDED_AT: now, **row} for row in rows], self.ledger.schema)
            write_whole_bytes(self._filesystem, f"{self._folder}/{uuid.uuid4().hex}{pending_file.SUFFIX}", data)
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
        pending, unreadable = self._listed_rows()
        if unreadable:
            self._set_aside(unreadable)
        if not pending:
            self.ledger.append(rows)
            return 0
        batches = {_batch_name(name): data for name, data in pending.items()}
        if rows:
            batches[uuid.uuid4().hex] = self.ledger.stamped(rows)
        self.ledger.append_batches(batches)
        # every one is in the ledger now (appended here, or by an earlier fold); on S3 each is a DELETE
        in_threads(self._delete, list(pending), max_threads=8)
        logger.debug("folded %d pending file(s) into _catalog/%s", len(pending), self.ledger.name)
        return len(pending)

    def _set_aside(self, names: list[str]) -> None:
        """Move the unreadable pending files ``names`` to ``UNREADABLE_DIR`` (best effort: a file
        left in place is skipped again by readers and set aside by the next fold)."""
        where = f"{self.ledger.uri}/{UNREADABLE_DIR}"
        for name in names:
            try:
                set_aside(self._filesystem, self._folder, name)
            except Exception as error:  # the fold's own rows matter more: record them anyway
                logger.warning("could not move the unreadable pending file %s aside to %s: %s", self._uri(name), where,
                               one_line(error))
            else:
                logger.warning("moved the unreadable pending file %s aside to %s/%s", self._uri(name), where, name)

    def _pending(self) -> dict[str, pa.Table]:
        """The rows of each pending file now listed, by file name (a file deleted by a fold since the
        listing is left out: its rows are in the ledger; an unreadable one too)."""
        return self._listed_rows()[0]

    def _listed_rows(self) -> tuple[dict[str, pa.Table], list[str]]:
        """``_pending()``, and the names of the files listed that are unreadable."""
        with storage_errors(f"{self.ledger.uri}/{PENDING_DIR}", f"read _catalog/{self.ledger.name}", self.ledger.lake):
            return self._read_pending()

    def _read_pending(self) -> tuple[dict[str, pa.Table], list[str]]:
        names = _listed(self._filesystem, self._folder)
        with _read_lock:
            for key in [key for key in _read if key[0] == self._folder and key[1] not in names]:
                del _read[key]  # folded: never listed again
            known = {name: _read[(self._folder, name)] for name in names if (self._folder, name) in _read}
        new = [name for name in names if name not in known]
        unreadable: list[str] = []
        if new:
            threads = storage_threads(self._filesystem, 8)  # on S3 each is a GET
            contents = dict(zip(new, in_threads(self._read_bytes, new, max_threads=threads), strict=True))
            decoded = pending_file.decode_all({f"{self._folder}/{name}": data for name, data in contents.items()
                                               if data is not None})  # None: folded since the listing
            read = {name: self._conformed(name, decoded[f"{self._folder}/{name}"])
                    for name in new if contents[name] is not None}
            unreadable = [name for name, rows in read.items() if rows is _UNREADABLE]
            read = {name: rows for name, rows in read.items() if rows is not _UNREADABLE}
            with _read_lock:
                _read.update({(self._folder, name): rows for name, rows in read.items()})
            known.update(read)
        return {name: known[name] for name in names if name in known}, unreadable

    def _delete(self, name: str) -> None:
        try:
            delete_file(self._filesystem, f"{self._folder}/{name}")
        except FileNotFoundError:
            pass  # deleted by another fold

    def _uri(self, name: str) -> str:
        """The pending file ``name`` as the user names it (``s3://...`` on S3, where the filesystem's path has no scheme)."""
        return f"{self.ledger.uri}/{PENDING_DIR}/{name}"

    def _read_bytes(self, name: str) -> bytes | None:
        """The bytes of the pending file ``name``; None when a fold deleted it since the listing."""
        try:
            with self._filesystem.open_input_stream(f"{self._folder}/{name}") as source:
                return source.read()
        except FileNotFoundError:
            return None

    def _conformed(self, name: str, rows: pa.Table | UnreadableFileError) -> Any:
        """The rows of the pending file ``name`` in the ledger's columns; ``_UNREADABLE`` when it is
        cut short or no pending record (warned about once per process)."""
        if not isinstance(rows, UnreadableFileError):
            return conform_columns(rows, self.ledger.schema)
        error, path = rows, f"{self._folder}/{name}"
        with _read_lock:
            first = path not in _warned
            _warned.add(path)
        uri = self._uri(name)
        if first:
            recover = " (`lakenodes updates reconcile` records its run again from its table's commit history)" \
                if self.ledger.name == "runs" else ""
            logger.warning("skipped the pending record %s of _catalog/%s: it is unreadable (%s); its rows are "
                           "lost%s, and the next fold moves the file aside to %s/%s", uri, self.ledger.name,
                           "cut short or not a pending record: changed outside lakenodes", recover, self.ledger.uri,
                           UNREADABLE_DIR)
            logger.debug("reading %s: %s", uri, error)
        return _UNREADABLE


_UNREADABLE = object()  # _conformed's answer for a file that is not (or no longer entirely) a pending record


def _batch_name(file_name: str) -> str:
    """The name a fold records a pending file's rows under (its id, whatever its format)."""
    for suffix in pending_file.SUFFIXES:
        file_name = file_name.removesuffix(suffix)
    return file_name


def set_aside(filesystem: Any, folder: str, name: str) -> None:
    """Move the pending file ``name`` of ``folder`` to ``UNREADABLE_DIR`` beside it (a copy and a
    delete: one request each on an object store); a file moved by another fold already is no error."""
    root = folder.removesuffix(f"/{PENDING_DIR}")
    try:
        with filesystem.open_input_stream(f"{folder}/{name}") as source:
            data = source.read()
    except FileNotFoundError:
        return
    write_small_file(filesystem, f"{root}/{UNREADABLE_DIR}/{name}", data)
    try:
        delete_file(filesystem, f"{folder}/{name}")
    except FileNotFoundError:
        pass


def _listed(filesystem: Any, folder: str) -> list[str]:
    """The names of the pending files in ``folder``, sorted (temp files of a write under way left out)."""
    listing = filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    return sorted(info.base_name for info in listing
                  if info.base_name.endswith(pending_file.SUFFIXES) and not info.base_name.startswith("."))


def pending_files(lake: Lake, name: str) -> list[str]:
    """The pending files of the catalog table ``_catalog/<name>`` (rows not folded into it yet)."""
    filesystem, root = lake_filesystem(lake, lake.catalog_uri(name))
    return _listed(filesystem, f"{root}/{PENDING_DIR}")


def fold_pending(lake: Lake, name: str) -> int:
    """Fold the pending rows of the catalog table ``_catalog/<name>`` into it (with the schema they
    were written with); returns how many files were folded (0 when none are pending)."""
    uri = lake.catalog_uri(name)
    filesystem, root = lake_filesystem(lake, uri)
    folder = f"{root}/{PENDING_DIR}"
    names = pending_files(lake, name)
    schema = None
    for pending in names:  # the schema of the first readable one
        try:
            schema = pending_file.schema_of(filesystem, f"{folder}/{pending}")
            break
        except (FileNotFoundError, UnreadableFileError):
            continue  # folded since the listing, or unreadable (set aside below)
    if schema is None:  # none readable: nothing to fold, and no schema to read another with
        for pending in names:
            if file_exists(filesystem, f"{folder}/{pending}"):
                logger.warning("moving the unreadable pending file %s/%s/%s aside to %s/%s", uri, PENDING_DIR, pending,
                               uri, UNREADABLE_DIR)
                set_aside(filesystem, folder, pending)
        return 0
    return Pending(Ledger(lake, name, schema, key=()), fold_every=0).fold()
