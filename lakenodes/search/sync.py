"""Keep the search index (under ``<root>/_catalog/search``) in line with the catalog.

The index is derived data, kept out of the write path: every search first brings it up to date
with the catalog. The last catch-up is recorded next to the index (catalog version and data files,
index version). When neither the catalog's table records nor the index changed since, a catch-up
costs two version checks, whatever the size of the catalog. When only the catalog changed, the
records of its new data files (what was saved since) are compared with the index: the cost is what
changed (after a catalog compaction, every record). Otherwise (first search, the index written by
someone else, a new catalog) every record is compared by digest (upserting records whose digest
changed, dropping tables no longer there, rebuilding an index that is missing, unreadable or of an
older format). So registering a table or changing its metadata is visible to the next search, a
run never waits on LanceDB, and a broken index can never break a run.

The embedder is a recorded property of the index: without ``embedding_model`` the index keeps the
one it was built with; asking for another one is an :class:`~.errors.EmbedderMismatchError`, never
a silent rebuild (:func:`rebuild_index` switches embedders).

A lake this process may read but not write (a read-only mount, a folder or an S3 key without write
permission) cannot store the index: :func:`searchable_index` then searches an index built in memory
from the catalog (kept for the process while the catalog does not change) and says so with a
:class:`~.errors.SearchIndexNotStoredWarning`; building the stored index is for someone who can write.

Example:
    >>> import tempfile
    >>> from lakenodes import Lake
    >>> from lakenodes.catalog.catalog import save_table_record
    >>> from lakenodes.catalog.records import TableRecord
    >>> lake = Lake(tempfile.mkdtemp())
    >>> save_table_record(lake, TableRecord(
    ...     uid="u1", storage_hash="prices_01", identifier="daily_prices",
    ...     description="Daily close prices", table_uri=lake.table_uri("prices_01")))
    >>> catch_up(lake).count()
    1
    >>> rebuild_index(lake, "hashing")
    1
    >>> catch_up(lake).embedder.name
    'hashing-v1-384'
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import warnings
from collections.abc import Iterator
from typing import Any

from .._internal.caches import register_cache
from .._internal.deferred import pafs as fs
from ..catalog.catalog import tables_since, tables_version
from ..catalog.records import TableRecord
from ..errors import LakenodesUserError, ReadOnlyStorageError, StoragePermissionError, plain_message
from ..lake._retry import RetryPolicy
from ..lake._storage_errors import storage_errors
from ..lake.location import Lake, LakeKey, lake_filesystem, write_small_file
from .documents import table_document
from .errors import EmbedderMismatchError, SearchIndexNotStoredWarning, storage_refusal
from .index import SearchIndex

log = logging.getLogger(__name__)

__all__ = ["catch_up", "rebuild_index", "refresh_tables", "search_index", "searchable_index"]

# {"catalog": [table id, version], "index": version, "files": [catalog data files]}: the last catch-up
_MARKER = "catalog_version.json"
# Searches in several processes at once each catch a new or stale index up: the writes are
# idempotent (merge on uid, indexes replaced), so a commit another process's won is simply redone
CONFLICT_ATTEMPTS = 5


def search_index(lake: Lake, embedding_model: Any = None) -> SearchIndex:
    """The search index of ``lake`` (nothing is opened until it is used).

    >>> search_index(Lake("/tmp/my-lake")).uri
    '/tmp/my-lake/_catalog/search'
    """
    return SearchIndex(lake.catalog_uri("search"), lake.storage_options or None, embedder=embedding_model)


def catch_up(lake: Lake, records: list[TableRecord] | None = None, embedding_model: Any = None) -> SearchIndex:
    """Bring the index in line with the catalog (``records``, read when needed) and return it.

    ``embedding_model`` (None: the index's own) must be the embedder the index was built with.
    """
    index = search_index(lake, embedding_model)
    stored = index.stored_embedder()
    if embedding_model is not None and stored is not None and stored != index.embedder.name:
        raise EmbedderMismatchError(
            f"the search index of {lake.uri} was built with embedder {stored!r}, not {index.embedder.name!r}: "
            "rebuild it to switch (`lakenodes search --refresh --embedder SPEC`, or in Python "
            "TimeIndexMetaTable.rebuild_search_index(embedding_model=...)), or search with the index's own "
            "embedder (no --embedder, no embedding_model)"
        )
    backoff = RetryPolicy(attempts=CONFLICT_ATTEMPTS, base_delay=0.1)  # an index build takes ~1 s: up to 3 s of waits
    for attempt in range(1, CONFLICT_ATTEMPTS):
        try:
            return _catch_up_once(lake, index, records)
        except Exception as error:
            if not _lost_to_another_writer(error):
                raise
            log.info("search index %s: another process changed it meanwhile (%s): catching up again (%d of %d)",
                     index.uri, plain_message(error).split(", /")[0], attempt + 1, CONFLICT_ATTEMPTS)
        time.sleep(backoff.delay(attempt))
        index = search_index(lake, embedding_model)  # its open tables are from before the other's commit
    return _catch_up_once(lake, index, records)  # the last attempt: whatever it raises is the caller's


def _lost_to_another_writer(error: Exception) -> bool:
    """Whether ``error`` is LanceDB refusing a commit because another writer's landed first
    ("Retryable commit conflict ... preempted", "incompatible with concurrent transaction"), or
    LanceDB panicking in that race: creating a table another process is creating too ends, now and
    then, in "entered unreachable code" (lancedb 0.40 ``database/listing.rs``), a ``RustPanic``."""
    text = str(error)
    return "commit conflict" in text or "concurrent transaction" in text or type(error).__name__ == "RustPanic"


def _catch_up_once(lake: Lake, index: SearchIndex, records: list[TableRecord] | None) -> SearchIndex:
    catalog = tables_version(lake)
    state = {"catalog": list(catalog) if catalog else None, "index": index.version()}
    marker = _read_marker(lake, index)
    if catalog is not None and marker is not None and {k: marker.get(k) for k in state} == state:
        return index
    if records is not None:  # the caller's view of the catalog: compare it all
        _sync(index, records, complete=True)
        files = None
    else:
        incremental = _incremental(marker, state)
        changed, files = tables_since(lake, (marker or {}).get("files", ()) if incremental else ())
        if incremental and not _sync(index, changed, complete=False):  # the index cannot tell its digests
            changed, files = tables_since(lake, ())
            incremental = False
        if not incremental:
            _sync(index, changed, complete=True)
    _write_marker(lake, index, {"catalog": state["catalog"], "index": index.version(), "files": files})
    return index


# lake.cache_key -> (catalog state, embedder name, index): the in-memory index of a lake that refused
# to store one, the newest only (an index of an older catalog state is dropped when a newer is built)
_in_memory: dict[LakeKey, tuple[Any, str, SearchIndex]] = register_cache("search.in_memory_indexes", {})


def searchable_index(lake: Lake, embedding_model: Any = None) -> SearchIndex:
    """:func:`catch_up`, or, when the lake refuses the index's writes (read-only storage, permission
    denied), an index built in memory from the catalog (a :class:`~.errors.SearchIndexNotStoredWarning`
    says so when it is built; it is reused in this process until the catalog changes)."""
    try:
        return catch_up(lake, embedding_model=embedding_model)
    except LakenodesUserError:
        raise
    except Exception as error:
        refused = storage_refusal(error, search_index(lake).uri, "search index update")
        if refused is None:
            raise
    stored = search_index(lake, embedding_model)
    catalog = tables_version(lake)
    held = _in_memory.get(lake.cache_key)
    if held is not None and held[:2] == (catalog, stored.embedder.name):
        return held[2]
    records, _ = _live_tables(lake)
    memory = SearchIndex("memory://", embedder=stored.embedder)
    if records:
        memory.rebuild([table_document(record) for record in records])
    _in_memory[lake.cache_key] = (catalog, stored.embedder.name, memory)
    state = "is behind the catalog" if _stored(lake, stored) else "is not built"
    warnings.warn(
        f"the search index of {lake.uri} {state} and cannot be stored ({refused.reason}): searched an index "
        f"built in memory from the catalog ({len(records)} tables, about 6 ms each, again in every new process); "
        "to store it, run `lakenodes search --refresh` as someone who may write to the lake",
        SearchIndexNotStoredWarning, stacklevel=2)
    return memory


def _live_tables(lake: Lake) -> tuple[list[TableRecord], list[str]]:
    """Every table of the catalog not deleted, and the catalog data files read (what an index built
    from scratch holds, and what its marker records)."""
    records, files = tables_since(lake, ())
    return [record for record in records if not record.deleted], files


def _stored(lake: Lake, index: SearchIndex) -> bool:
    """Whether anything is stored at the index's location (whether or not it can be opened)."""
    filesystem, root = lake_filesystem(lake, index.uri)
    try:
        return filesystem.get_file_info(root).type != fs.FileType.NotFound
    except OSError:  # cannot tell: say it is behind rather than missing
        return True


def _incremental(marker: dict[str, Any] | None, state: dict[str, Any]) -> bool:
    """Whether only the catalog moved on since ``marker``: same catalog table, index untouched."""
    return (
        marker is not None and state["catalog"] is not None and isinstance(marker.get("catalog"), list)
        and marker["catalog"][0] == state["catalog"][0] and marker.get("index") == state["index"]
        and isinstance(marker.get("files"), list)
    )


def _sync(index: SearchIndex, records: list[TableRecord], *, complete: bool) -> bool:
    """Upsert the records whose digest the index does not hold and drop the deleted ones; with
    ``complete`` (``records`` is the whole catalog) also drop indexed tables not in ``records``, and
    rebuild an index that cannot tell its digests (without, return False for that)."""
    documents = {record.uid: table_document(record) for record in records if not record.deleted}
    indexed = index.digests()  # one scan of two short columns
    if indexed is None:
        if not complete:
            return False
        if documents or index.exists():  # an unreadable index exists: rebuild() replaces it
            log.info("rebuilding the search index from the catalog (%d tables)", len(documents))
            index.rebuild(list(documents.values()))
        return True
    changed = [doc for uid, doc in documents.items() if indexed.get(uid) != doc["digest"]]
    removed = [uid for uid in indexed if uid not in documents] if complete else \
        [record.uid for record in records if record.deleted and record.uid in indexed]
    if changed:
        index.upsert_tables(changed)
    if removed:
        index.delete_tables(removed)
    return True


def _marker_path(lake: Lake, index: SearchIndex) -> tuple[Any, str]:
    filesystem, root = lake_filesystem(lake, index.uri)
    return filesystem, f"{root}/{_MARKER}"


# Lake.cache_key -> the last catch-up's marker, when the lake refused to store it (read-only, permission);
# keyed by the store too: two stores may each hold s3://lake/prod, and a copy's catalog the same version
_unstored_markers: dict[LakeKey, dict[str, Any]] = register_cache("search.unstored_markers", {})


def _read_marker(lake: Lake, index: SearchIndex) -> dict[str, Any] | None:
    """The last catch-up's marker: this process's own when the lake refused to store it, else the stored one."""
    if lake.cache_key in _unstored_markers:
        return _unstored_markers[lake.cache_key]
    filesystem, path = _marker_path(lake, index)
    try:
        with filesystem.open_input_stream(path) as stream:
            marker = json.loads(stream.read())
    except (OSError, ValueError):  # missing or unreadable: catch up by digest
        return None
    return marker if isinstance(marker, dict) else None


def _write_marker(lake: Lake, index: SearchIndex, state: dict[str, Any]) -> None:
    """Record the catch-up ``state`` beside the index (best effort: without it, the next search
    catches up by digest again). A lake that refuses the write (read-only, no permission: a reader
    whose stored index is current, its marker behind after a catalog compaction) keeps it in this
    process instead, so its next searches are two version checks again, with no write retried."""
    filesystem, path = _marker_path(lake, index)
    where = f"{index.uri}/{_MARKER}"  # as the user names it (s3://...)
    try:
        write_small_file(filesystem, path, json.dumps(state).encode())
    except OSError as error:
        refused = storage_refusal(error, where, "search index marker write")
        if refused is None:
            log.warning("cannot record the search index's catalog version at %s: %s", where, error)
            return
        log.debug("the search index is current but its catalog version cannot be stored at %s (%s): "
                  "kept in this process", where, refused.reason)
        _unstored_markers[lake.cache_key] = state
    else:
        _unstored_markers.pop(lake.cache_key, None)


# what a refused index write (a read-only lake, a key that may only read) leaves its user to do
_WHEN_REFUSED = ("; a search works without it (`lakenodes search Q` builds the index in memory); "
                 "to store the index, refresh it as someone who may write to the lake")


@contextlib.contextmanager
def _storing_index(uri: str, operation: str) -> Iterator[None]:
    """``storage_errors`` for a write of the index at ``uri``; a refusal (read-only storage, permission
    denied) says how to search anyway and who can store it."""
    try:
        with storage_errors(uri, operation):
            yield
    except (ReadOnlyStorageError, StoragePermissionError) as refused:
        refused.args = (f"{refused}{_WHEN_REFUSED}",)
        raise


def refresh_tables(lake: Lake, records: list[TableRecord]) -> None:
    """Re-index ``records`` from their catalog records as they are now (a read-only lake: one
    ``ReadOnlyStorageError`` line naming the index, as :func:`rebuild_index` gives)."""
    index = search_index(lake)
    with _storing_index(index.uri, "search index refresh"):
        index.upsert_tables([table_document(record) for record in records])


def rebuild_index(lake: Lake, embedding_model: Any = None) -> int:
    """Rebuild the whole index from the catalog (with ``embedding_model``, switching the index to that
    embedder; without, keeping the index's own); returns the number of tables indexed."""
    catalog = tables_version(lake)
    records, files = _live_tables(lake)
    index = search_index(lake, embedding_model)
    with _storing_index(index.uri, "search index rebuild"):  # a read-only lake: one line naming it
        index.rebuild([table_document(record) for record in records])
    _write_marker(lake, index, {"catalog": list(catalog) if catalog else None, "index": index.version(),
                                "files": files})
    return len(records)
