"""A lake at another location: a local lake folder uploaded to an S3 prefix as it is (every file
copied, as ``aws s3 sync`` does). Shared by the tests of moved and copied lakes."""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs

from lakenodes import Lake
from lakenodes.lake.location import lake_filesystem


def upload(folder: Path, lake: Lake) -> int:
    """Copy every file under ``folder`` to the same relative key under the S3 lake ``lake``; how many."""
    filesystem, root = lake_filesystem(lake, lake.uri)
    files = [path for path in folder.rglob("*") if path.is_file()]
    for path in files:
        pafs.copy_files(str(path), f"{root}/{path.relative_to(folder).as_posix()}",
                        source_filesystem=pafs.LocalFileSystem(), destination_filesystem=filesystem)
    return len(files)


def copy_lake(source: Lake, destination: Lake) -> int:
    """Copy every object of the S3 lake ``source`` to the same key under ``destination`` (another
    store, as ``aws s3 sync`` between two endpoints does); how many."""
    source_filesystem, root = lake_filesystem(source, source.uri)
    destination_filesystem, destination_root = lake_filesystem(destination, destination.uri)
    files = [info.path for info in source_filesystem.get_file_info(pafs.FileSelector(root, recursive=True))
             if info.type == pafs.FileType.File]
    for path in files:
        pafs.copy_files(path, destination_root + path[len(root):], source_filesystem=source_filesystem,
                        destination_filesystem=destination_filesystem)
    return len(files)
