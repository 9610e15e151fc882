"""Whether a lake URI names a lake, asked before a command works on it: a typo in a bucket or a
prefix must be one clear line, not an empty listing (or a search index written into a stranger's
folder), nor a storage error a scheduler retries forever.

A lake is a folder or an S3 prefix holding ``_catalog/`` (written by its first run) or
``tables/``; an empty local folder counts too (made for a lake). On S3 the check lists the markers
when a lake must exist, and asks for the bucket (one request) when it is still in doubt.

Example:
    >>> import tempfile
    >>> lake_problem(Lake(tempfile.mkdtemp()), require_lake=True) is None  # an empty folder
    True
    >>> lake_problem(Lake("/no/such/folder"), require_lake=True)
    'no lake at /no/such/folder'
"""

from __future__ import annotations

import os

from .._internal.deferred import pafs
from .location import Lake, lake_filesystem

_MARKERS = ("_catalog", "tables")


def lake_problem(lake: Lake, *, require_lake: bool) -> str | None:
    """Why ``lake`` cannot be used (its location is a file; with ``require_lake``, nothing there
    is a lake, or its bucket does not exist), or None. A probe storage refuses or cannot answer
    (credentials, network) says nothing: the command's own calls report that, in their words."""
    outer = _outer_lake(lake)
    if outer is not None:
        return outer
    if lake.is_local:
        return _local_problem(lake.uri, require_lake)
    filesystem, root = lake_filesystem(lake, lake.uri)
    bucket = root.split("/", 1)[0]
    try:
        if require_lake and any(filesystem.get_file_info(f"{root}/{marker}").type != pafs.FileType.NotFound
                                for marker in _MARKERS):
            return None
        if filesystem.get_file_info(bucket).type == pafs.FileType.NotFound:
            return f"no bucket {bucket!r} for {lake.uri}"
    except OSError:
        return None
    return f"no lake at {lake.uri}: nothing under it holds a _catalog" if require_lake else None


def _outer_lake(lake: Lake) -> str | None:
    """Why ``lake`` is inside another lake's ``tables/`` or ``_catalog/`` folder (``--lake /data/lake/_catalog``,
    or a table's folder from ``data-node detail``), or None: a run there wrote a second lake inside the first,
    its tables in the folder of the catalog's own Delta table. Probed only for a location under such a name."""
    parts = lake.uri.split("/")
    for depth in range(len(parts) - 1, 0, -1):
        outer = "/".join(parts[:depth])
        if parts[depth] not in _MARKERS or outer.endswith(":/") or not outer:
            continue
        filesystem, root = lake_filesystem(lake, f"{outer}/_catalog")
        try:
            is_lake = filesystem.get_file_info(root).type == pafs.FileType.Directory
        except OSError:  # a probe storage refuses or cannot answer says nothing (see lake_problem)
            is_lake = False
        if is_lake:
            return f"{lake.uri} is inside the lake {outer} (in its {parts[depth]}/ folder): give the lake's own " \
                   f"folder, {outer}"
    return None


def _local_problem(path: str, require_lake: bool) -> str | None:
    existing = path  # the lake's folder, else its nearest existing parent (a run creates the rest)
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        under = "" if existing == path else f" (and {path} would be under it)"
        return f"{existing} is a file{under}: a lake is a folder (or s3://bucket/prefix)"
    if not require_lake:
        return None
    if not os.path.isdir(path):
        return f"no lake at {path}"
    if os.listdir(path) and not any(os.path.isdir(os.path.join(path, marker)) for marker in _MARKERS):
        return f"no lake at {path}: the folder holds other files and no _catalog"
    return None
