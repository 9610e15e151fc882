"""Find the commit that makes a Delta log unreadable (only after delta-rs refused to load it).

delta-rs reports a garbage ``_delta_log/<version>.json`` as ``Kernel error: Json error: ...``
without naming the file. ``find_bad_commit`` reads the commits after the last checkpoint (local
folder or S3, through lakenodes' native pyarrow filesystems) and returns the first one that is
not a sequence of JSON Delta actions.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from .._internal.deferred import pafs as fs
from .location import Lake, lake_filesystem

logger = logging.getLogger("lakenodes.storage")

_COMMIT = re.compile(r"^(\d{20})\.json$")
_ACTIONS = {"add", "remove", "metaData", "protocol", "commitInfo", "txn", "cdc", "domainMetadata",
            "checkpointMetadata", "sidecar"}
# fields every add/remove action must carry, with their JSON types (what delta-rs refuses otherwise)
_REQUIRED = {"add": {"path": str, "partitionValues": dict, "size": int, "modificationTime": int, "dataChange": bool},
             "remove": {"path": str}}
MAX_COMMITS_CHECKED = 10_000


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


def find_bad_commit(table_uri: str, lake: Any = None) -> tuple[int, str, str] | None:
    """``(version, log file path, problem)`` of the first unreadable commit after the last
    checkpoint of the table at ``table_uri``, or None (not found, or the log cannot be listed)."""
    try:
        filesystem, root = _filesystem(table_uri, lake)
        log = f"{root}/_delta_log"
        names = sorted(info.base_name for info in filesystem.get_file_info(fs.FileSelector(log))
                       if _COMMIT.match(info.base_name))
        start = _last_checkpoint(filesystem, log)
        candidates = [name for name in names if int(name[:20]) > start][:MAX_COMMITS_CHECKED]
        for name in candidates:
            with filesystem.open_input_stream(f"{log}/{name}") as stream:
                problem = commit_problem(stream.read().decode("utf-8", errors="replace"))
            if problem is not None:
                return int(name[:20]), f"{log}/{name}", problem
    except Exception as error:  # noqa: BLE001 - a diagnosis must never replace the error it explains
        logger.debug("could not inspect the Delta log of %s: %s", table_uri, error)
    return None


def _last_checkpoint(filesystem: Any, log: str) -> int:
    try:
        with filesystem.open_input_stream(f"{log}/_last_checkpoint") as stream:
            return int(json.loads(stream.read())["version"])
    except Exception:  # noqa: BLE001 - absent or unreadable: check every commit
        return -1


def _filesystem(table_uri: str, lake: Any) -> tuple[Any, str]:
    return lake_filesystem(lake if lake is not None else Lake(table_uri), table_uri)
