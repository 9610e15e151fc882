"""Remove a Delta table's folder (its log, data files and lakenodes' own files beside them), in an
order that makes it stop being a table first.

The log goes first: ``_last_checkpoint``, the checkpoints, then the commit files from version 0
up. Once version 0 (and every checkpoint) is gone no reader or writer can open the table
("no table metadata"), and once the whole log is gone the folder holds no table: a writer that
looks for it creates a new one at version 0. The data files and ``_lakenodes/`` follow. A
removal stopped half-way (a killed process) leaves files that a second removal takes away. A
writer committing while the folder is removed leaves new files; they are removed in a next
round, and a folder still refilled after a few rounds is an error naming the writer's table.

Example:
    >>> import tempfile
    >>> import pyarrow as pa
    >>> from deltalake import write_deltalake
    >>> from lakenodes.lake.location import Lake
    >>> lake = Lake(tempfile.mkdtemp())
    >>> write_deltalake(lake.table_uri("t_0"), pa.table({"a": [1]}))
    >>> len(stored_files(lake, lake.table_uri("t_0")))
    2
    >>> remove_table_folder(lake, lake.table_uri("t_0"))[0], stored_files(lake, lake.table_uri("t_0"))
    (2, [])
"""

from __future__ import annotations

import errno
import logging
from typing import Any

from .._internal.deferred import pafs
from .._internal.threads import in_threads, storage_threads
from ..errors import StorageError
from ._delta_log import COMMIT_FILE
from ._storage_errors import errno_of, storage_errors
from .location import Lake, delete_file, lake_filesystem

logger = logging.getLogger(__name__)

ROUNDS = 5  # removals of what a concurrent writer committed meanwhile, before giving up


def stored_files(lake: Lake, uri: str) -> list[tuple[str, int]]:
    """Every file under the folder ``uri`` (path relative to it, size in bytes), the log first, in
    the order :func:`remove_table_folder` removes them; [] when there is no such folder."""
    filesystem, root = lake_filesystem(lake, uri)
    with storage_errors(uri, "list", lake):
        listing = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    files = [(info.path[len(root) + 1:], info.size or 0) for info in listing if info.type == pafs.FileType.File]
    return sorted(files, key=lambda file: _removal_order(file[0]))


def _removal_order(path: str) -> tuple[int, str]:
    """The log first (its pointer to the last checkpoint, the checkpoints, the commits from version 0
    up), then every other file."""
    folder, _, name = path.rpartition("/")
    if folder != "_delta_log":
        return 4, path
    if name == "_last_checkpoint":
        return 0, name
    if ".checkpoint" in name:
        return 1, name
    return (2 if COMMIT_FILE.match(name) else 3), name


def remove_table_folder(lake: Lake, uri: str) -> tuple[int, int]:
    """Remove every file under ``uri`` (see the module doc for the order), again while a concurrent
    writer adds files; returns (files, bytes) removed. A local folder is removed too."""
    filesystem, root = lake_filesystem(lake, uri)
    removed = [0, 0]
    for _ in range(ROUNDS):
        files = stored_files(lake, uri)
        if not files and _folder_removed(filesystem, root, uri, lake):
            break
        log = [path for path, _ in files if _removal_order(path)[0] < 4]
        rest = [path for path, _ in files if _removal_order(path)[0] == 4]
        with storage_errors(uri, "delete", lake):
            for path in log:  # one by one, in order: version 0 goes before the later commits
                _delete(filesystem, f"{root}/{path}")
            in_threads(lambda path: _delete(filesystem, f"{root}/{path}"), rest,
                       max_threads=storage_threads(filesystem, 16))
        removed = [removed[0] + len(files), removed[1] + sum(size for _, size in files)]
    else:
        if stored_files(lake, uri):
            raise StorageError(f"files were added to the table while it was removed, {ROUNDS} times: a writer keeps "
                               "committing to it; stop its updaters and remove it again", path=uri, operation="drop")
    logger.info("removed %d file(s), %d byte(s) under %s", removed[0], removed[1], uri)
    return removed[0], removed[1]


def _folder_removed(filesystem: Any, root: str, uri: str, lake: Lake) -> bool:
    """Remove the folder ``root`` and its empty folders (only a local disk has folders); False when
    a file appeared in it meanwhile (a writer re-creating the table: "Directory not empty"), for
    the caller's next round to remove."""
    if not isinstance(filesystem, pafs.LocalFileSystem) or filesystem.get_file_info(root).type != pafs.FileType.Directory:
        return True
    try:
        filesystem.delete_dir(root)
    except OSError as error:
        if errno_of(error) == errno.ENOTEMPTY:
            return False
        with storage_errors(uri, "delete", lake):
            raise
    return True


def _delete(filesystem: Any, path: str) -> None:
    try:
        delete_file(filesystem, path)
    except FileNotFoundError:  # removed meanwhile (by another removal, a vacuum)
        pass
