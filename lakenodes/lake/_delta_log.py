"""The files of a Delta log as lakenodes reads them itself: commit file names, the stamp of a
commit file, the last checkpoint's version, whether a commit file is a sequence of JSON Delta
actions (``commit_problem``; ``_log_damage`` finds the damaged file of a log with it), and the app
transactions recent commits set (``app_ids_committed_since``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection
from typing import Any

from .._internal.deferred import pafs as fs
from .._internal.threads import in_threads, storage_threads

COMMIT_FILE = re.compile(r"^(\d{20})\.json$")  # ``_delta_log/<version>.json``; group 1: the version
Stamp = tuple[int, int | None, int | None]  # (version, size, mtime_ns) of that version's commit file
_ACTIONS = {"add", "remove", "metaData", "protocol", "commitInfo", "txn", "cdc", "domainMetadata",
            "checkpointMetadata", "sidecar"}
# fields every add/remove action must carry, with their JSON types (what delta-rs refuses otherwise)
_REQUIRED = {"add": {"path": str, "partitionValues": dict, "size": int, "modificationTime": int, "dataChange": bool},
             "remove": {"path": str}}


def commit_problem(text: str) -> str | None:
    """Why ``text`` is not a valid Delta commit file, or None.

    Example:
        >>> commit_problem('{"commitInfo": {}}\\n{"add": {"path": "a", "partitionValues": {}, "size": 1, '
        ...                '"modificationTime": 0, "dataChange": true}}\\n') is None
        True
        >>> commit_problem("this is not a delta commit\\n")
        'line 1 is not valid JSON'
        >>> commit_problem('{"add": {"path": 5}}')
        "line 1: action 'add' lacks a valid 'path'"
    """
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            action = json.loads(line)
        except ValueError:
            return f"line {number} is not valid JSON"
        if not isinstance(action, dict) or len(action) != 1 or next(iter(action)) not in _ACTIONS:
            return f"line {number} is not a Delta action"
        kind, body = next(iter(action.items()))
        if not isinstance(body, dict):
            return f"line {number}: action {kind!r} is not an object"
        for field, kind_of in _REQUIRED.get(kind, {}).items():
            value = body.get(field)
            if not isinstance(value, kind_of) or (kind_of is int and isinstance(value, bool)):
                return f"line {number}: action {kind!r} lacks a valid {field!r}"
    return None


def log_names(filesystem: Any, root: str) -> list[str]:
    """The names of the entries of the table's log folder ([] without one). A local log is listed
    by name only: pyarrow's listing stats every entry, hundreds in a long log (~1 ms).

    Example:
        >>> import tempfile
        >>> log_names(fs.LocalFileSystem(), tempfile.mkdtemp())
        []
    """
    log = f"{root}/_delta_log"
    if isinstance(filesystem, fs.LocalFileSystem):
        try:
            return os.listdir(log)
        except (FileNotFoundError, NotADirectoryError):
            return []
    return [info.base_name for info in filesystem.get_file_info(fs.FileSelector(log, allow_not_found=True))]


def commit_versions(filesystem: Any, root: str) -> list[int]:
    """The versions of the commit files in the table's log, ascending ([] without a log).

    Example:
        >>> import tempfile
        >>> commit_versions(fs.LocalFileSystem(), tempfile.mkdtemp())
        []
    """
    return sorted(int(name[:20]) for name in log_names(filesystem, root) if COMMIT_FILE.match(name))


def commit_path(root: str, version: int) -> str:
    """The commit file of ``version`` of the table at ``root``.

    Example:
        >>> commit_path("/lake/t", 3)
        '/lake/t/_delta_log/00000000000000000003.json'
    """
    return f"{root}/_delta_log/{version:020d}.json"


def read_commit(filesystem: Any, root: str, version: int) -> tuple[list[str], dict[str, Any]]:
    """The lines of the commit file of ``version`` and its ``commitInfo`` ({} when it has none);
    OSError when the file cannot be read."""
    with filesystem.open_input_stream(commit_path(root, version)) as handle:
        lines = handle.read().decode().splitlines()
    info = next((json.loads(line)["commitInfo"] for line in lines if line.startswith('{"commitInfo"')), {})
    return lines, info


_NUM_RECORDS = re.compile(r'"numRecords"\s*:\s*(\d+)')


def record_count(stats: str | None) -> int | None:
    """``numRecords`` of an add action's statistics JSON (None when it has none), found without
    parsing the rest of it (most of a commit's bytes).

    Example:
        >>> record_count('{"numRecords":3,"minValues":{}}'), record_count(None)
        (3, None)
    """
    found = _NUM_RECORDS.search(stats or "")
    return None if found is None else int(found.group(1))


def commit_stamp(filesystem: Any, root: str, version: int) -> Stamp:
    """``(version, size, mtime_ns)`` of the commit file of ``version`` (size and mtime None when it
    is missing): Delta never rewrites a commit file, so a different stamp means a different table."""
    info = filesystem.get_file_info(commit_path(root, version))
    return version, info.size, info.mtime_ns


def read_last_checkpoint(filesystem: Any, root: str) -> int | None:
    """Version of the table's latest checkpoint (from ``_delta_log/_last_checkpoint``), None if none."""
    path = f"{root}/_delta_log/_last_checkpoint"
    try:
        with filesystem.open_input_stream(path) as stream:
            return int(json.loads(stream.read())["version"])
    except (FileNotFoundError, KeyError, ValueError):
        return None
    except OSError as error:  # S3 reports a missing key as a generic OSError
        if filesystem.get_file_info(path).type == fs.FileType.NotFound:
            return None
        raise error


# S3 stamps objects to the second: a commit and the file it folded may carry the same second
_MTIME_SLACK_NS = 2_000_000_000


def app_ids_committed_since(filesystem: Any, root: str, version: int, app_ids: Collection[str],
                            since_ns: int) -> set[str] | None:
    """Which of ``app_ids`` the commits up to ``version`` written since ``since_ns`` (the storage's
    own clock: a file's mtime) set as app transactions, read from those commit files (a few, at
    once); None when the log no longer reaches back to ``since_ns`` (older commits cleaned up after
    a checkpoint), so that a commit of that time may be gone.

    delta-rs answers one app id at a time (``DeltaTable.transaction_version``), each answer a replay
    of the log: ~58 ms per id against moto, where rows written at a known time can only have been
    appended by commits written after it.

    Example:
        >>> import tempfile
        >>> app_ids_committed_since(fs.LocalFileSystem(), tempfile.mkdtemp(), 0, ["a"], 0) is None
        True
    """
    wanted = set(app_ids)
    times = _commit_times(filesystem, root, version)
    cutoff = since_ns - _MTIME_SLACK_NS
    recent = [committed for committed, mtime in times.items() if mtime >= cutoff]
    if not (0 in times or any(mtime < cutoff for mtime in times.values())):
        return None  # every commit listed is newer: older ones, maybe of that time, were cleaned up

    def app_ids_of(committed: int) -> set[str]:
        lines, _ = read_commit(filesystem, root, committed)
        return {json.loads(line)["txn"]["appId"] for line in lines if line.startswith('{"txn"')} & wanted

    try:
        found = in_threads(app_ids_of, recent, max_threads=storage_threads(filesystem, 8))
    except FileNotFoundError:  # cleaned up since the listing
        return None
    return set().union(*found)


def _commit_times(filesystem: Any, root: str, version: int) -> dict[int, int]:
    """The mtime (ns) of each commit file of the table's log up to ``version``."""
    listing = filesystem.get_file_info(fs.FileSelector(f"{root}/_delta_log", allow_not_found=True))
    versions = {info.base_name: int(info.base_name[:20]) for info in listing if COMMIT_FILE.match(info.base_name)}
    return {versions[info.base_name]: info.mtime_ns for info in listing
            if info.base_name in versions and versions[info.base_name] <= version}
