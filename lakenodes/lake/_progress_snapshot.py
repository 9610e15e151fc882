"""A table's progress at one version, persisted in the metadata of its file-facts file
(``_lakenodes/file_facts.parquet``), so a process that has not opened the table yet gets exact
statistics from one listing of the log and one small read instead of a log replay.

Only a cache: it is trusted for the version it names alone, and only while that version's
commit file is still the one it was computed from (same size and modification time, the check
``lakenodes._tables`` uses to detect a table reset); anything else falls back to the log.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Mapping
from typing import Any

from .._internal.caches import register_cache
from .._internal.datetimes import epoch_micros, from_epoch_micros
from .._internal.deferred import pa, pq
from ._delta_log import Stamp, commit_stamp, commit_versions
from .location import store_path

logger = logging.getLogger(__name__)
# store_path(file path) -> its bytes as read_latest read them, until file_bytes takes them
_files_read: dict[str, bytes] = register_cache("progress.snapshot_files", {})

KEY = b"lakenodes.progress"
NO_LOG: Any = ()  # read_latest's answer when the table has no log at all: no table there (then)


def latest_stamp(filesystem: Any, root: str) -> Stamp | None:
    """The stamp of the newest commit in the log (one listing and one stat), or None without a log."""
    versions = commit_versions(filesystem, root)
    return commit_stamp(filesystem, root, versions[-1]) if versions else None


def read_latest(filesystem: Any, root: str, path: str) -> tuple[Stamp, dict[str, Any], bytes] | None:
    """The persisted progress of the newest version (its stamp, the decoded payload, the raw
    metadata value) from the file at ``path`` under the table root; None when there is none,
    ``NO_LOG`` when the table has no log (no table, a look its opening would repeat)."""
    try:
        stamp = latest_stamp(filesystem, root)
        if stamp is None:
            return NO_LOG
        with filesystem.open_input_stream(f"{root}/{path}") as source:  # whole (small): the facts come next
            buffer = source.read()
        metadata = pq.read_schema(pa.BufferReader(buffer)).metadata
    except (OSError, pa.ArrowException) as error:  # absent or unreadable: the log then
        logger.debug("no persisted progress for %s: %s", root, error)
        return None
    if len(_files_read) >= 64:
        _files_read.clear()
    _files_read[store_path(filesystem, f"{root}/{path}")] = buffer
    payload = None if stamp is None else decode(metadata, stamp)
    return None if payload is None else (stamp, payload, metadata[KEY])


def file_bytes(filesystem: Any, root: str, path: str) -> bytes:
    """The bytes of the file at ``path`` under the table root: those ``read_latest`` read last
    (once), else read now. The file is a cache of immutable facts: a copy read a moment ago is as
    good as a new one."""
    buffer = _files_read.pop(store_path(filesystem, f"{root}/{path}"), None)
    if buffer is None:
        with filesystem.open_input_stream(f"{root}/{path}") as source:
            buffer = source.read()
    return buffer


def encode(stamp: Stamp, index_names: tuple[str, ...], row_count: int,
           last: Mapping[tuple[str, ...], datetime.datetime],
           first: Mapping[tuple[str, ...], datetime.datetime] | None) -> dict[bytes, bytes]:
    """Schema metadata holding the progress of the version ``stamp`` names."""
    def entries(values: Mapping[tuple[str, ...], datetime.datetime]) -> list[list[Any]]:
        return [[*identity, epoch_micros(ts)] for identity, ts in values.items()]

    payload = {"stamp": list(stamp), "index_names": list(index_names), "row_count": row_count,
               "last": entries(last), "first": None if first is None else entries(first)}
    return {KEY: json.dumps(payload, separators=(",", ":")).encode()}


def version_of(metadata: Mapping[bytes, bytes] | None) -> int | None:
    """The version of the snapshot in ``metadata`` (None when there is none)."""
    raw = (metadata or {}).get(KEY)
    return None if raw is None else int(json.loads(raw)["stamp"][0])


def decode(metadata: Mapping[bytes, bytes] | None, stamp: Stamp) -> dict[str, Any] | None:
    """The persisted progress when it is that of ``stamp``'s version (else None): ``index_names``,
    ``row_count``, ``last`` and ``first`` (None when it was not persisted) as identity -> datetime."""
    raw = (metadata or {}).get(KEY)
    if raw is None:
        return None
    payload = json.loads(raw)
    if tuple(payload["stamp"]) != tuple(stamp):
        return None

    def values(entries: list[list[Any]]) -> dict[tuple[str, ...], datetime.datetime]:
        return {tuple(entry[:-1]): from_epoch_micros(entry[-1]) for entry in entries}

    first = payload["first"]
    return {"index_names": tuple(payload["index_names"]), "row_count": payload["row_count"],
            "last": values(payload["last"]), "first": None if first is None else values(first)}
