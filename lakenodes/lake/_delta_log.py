"""The files of a Delta log as lakenodes reads them itself: commit file names, the stamp of a
commit file, the last checkpoint's version, whether a commit file is a sequence of JSON Delta
actions (``commit_problem``; ``_log_damage`` finds the damaged file of a log with it), and the app
transactions of a version (``app_ids_in_log``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Sequence
from typing import Any

from .._internal.deferred import pa, pq
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
# An add action as delta-rs writes it: path, partition values (none or one), size, time, dataChange,
# then statistics starting with the record count. Such a line is matched, not parsed (its statistics,
# most of a commit's bytes, are JSON text inside a JSON string: slow to decode); any other is parsed.
_ADD_LINE = re.compile(r'\{"add":\{"path":"([^"\\]*)","partitionValues":\{(?:"([^"\\]*)":"([^"\\]*)")?\},'
                       r'"size":\d+,"modificationTime":\d+,"dataChange":(?:true|false),"stats":"\{\\"numRecords\\":(\d+)')


def added_files(lines: Sequence[str], partition: str | None) -> list[tuple[str, str | None, int | None]]:
    """The path (as the log holds it), value of ``partition`` and record count (None: no
    statistics) of each add action among a commit file's ``lines``.

    Example:
        >>> added_files(['{"commitInfo":{}}', '{"add":{"path":"p=a/f.parquet","partitionValues":{"p":"a"},"size":9,'
        ...              '"modificationTime":1,"dataChange":true,"stats":"{\\\\"numRecords\\\\":3}"}}'], "p")
        [('p=a/f.parquet', 'a', 3)]
        >>> added_files(['{"add": {"path": "p=b/g.parquet", "partitionValues": {"p": "b"}, "size": 9}}'], "p")
        [('p=b/g.parquet', 'b', None)]
    """
    found = []
    for line in lines:
        if not line.startswith('{"add"'):
            continue
        match = _ADD_LINE.match(line)
        if match is not None and (partition is None or match[2] == partition):
            found.append((match[1], match[3] if partition else None, int(match[4])))
            continue
        add = json.loads(line)["add"]
        records = _NUM_RECORDS.search(add.get("stats") or "")
        found.append((add["path"], (add.get("partitionValues") or {}).get(partition) if partition else None,
                      None if records is None else int(records.group(1))))
    return found


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


def app_ids_in_log(filesystem: Any, root: str, version: int, app_ids: Collection[str]) -> set[str] | None:
    """Which of ``app_ids`` are app transactions of the table's ``version``: the ``txn`` column of
    the latest checkpoint at or before it and the commit files after that one, read once (the
    commits at once); None when the log is not laid out so (a checkpoint newer than ``version``, or
    one in parts or of another format), for the caller to ask delta-rs.

    delta-rs answers one app id at a time (``DeltaTable.transaction_version``), each answer a replay
    of the log: ~58 ms per id against moto, where this reads the log once for all of them.

    Example:
        >>> import pyarrow as pa, tempfile
        >>> from deltalake import CommitProperties, Transaction, write_deltalake
        >>> root = tempfile.mkdtemp()
        >>> write_deltalake(root, pa.table({"a": [1]}), commit_properties=CommitProperties(
        ...     app_transactions=[Transaction("batch-1", 1)]))
        >>> sorted(app_ids_in_log(fs.LocalFileSystem(), root, 0, ["batch-1", "batch-2"]))
        ['batch-1']
    """
    wanted = set(app_ids)
    checkpoint = read_last_checkpoint(filesystem, root)
    found: set[str] = set()
    if checkpoint is not None:
        if checkpoint > version:
            return None
        try:
            with filesystem.open_input_file(f"{root}/_delta_log/{checkpoint:020d}.checkpoint.parquet") as source:
                read = pq.ParquetFile(source).read(columns=["txn"])
        except FileNotFoundError:  # in parts, or a V2 checkpoint
            return None
        if "txn" in read.column_names:  # (a checkpoint holding no app transaction may lack the column)
            found = {app_id for app_id in _struct_field(read.column("txn"), "appId") if app_id in wanted}

    def app_ids_of(committed: int) -> set[str]:
        lines, _ = read_commit(filesystem, root, committed)
        return {json.loads(line)["txn"]["appId"] for line in lines if line.startswith('{"txn"')} & wanted

    commits = list(range(0 if checkpoint is None else checkpoint + 1, version + 1))
    try:
        return found.union(*in_threads(app_ids_of, commits, max_threads=storage_threads(filesystem, 8)))
    except FileNotFoundError:  # cleaned up meanwhile
        return None


def _struct_field(column: pa.ChunkedArray, name: str) -> list[Any]:
    """The values of field ``name`` of a struct column (null where the struct is), as
    ``pc.struct_field(...).to_pylist()`` gives them without importing ``pyarrow.compute``.

    Example:
        >>> txn = pa.StructArray.from_arrays([pa.array(["a", "b"])], ["appId"], mask=pa.array([False, True]))
        >>> _struct_field(pa.chunked_array([txn]), "appId")
        ['a', None]
    """
    position = column.type.get_field_index(name)
    return [value for chunk in column.chunks for value in chunk.flatten()[position].to_pylist()]
