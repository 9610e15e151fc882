"""Writing a small Parquet file of lakenodes' own beside a table (file facts, the cross-section
copy, pending catalog rows) so that no reader ever sees half of it.

Locally the file is written under a temporary name, then renamed; on an object store a PUT is
atomic already. The temporary name starts with a dot: listings of such files skip it.

Example:
    >>> import pyarrow as pa, pyarrow.fs as pafs, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> write_whole(pafs.LocalFileSystem(), f"{folder}/sub/rows.parquet", pa.table({"a": [1]}))
    >>> sorted(info.base_name for info in pafs.LocalFileSystem().get_file_info(pafs.FileSelector(f"{folder}/sub")))
    ['rows.parquet']
"""

from __future__ import annotations

import uuid
from typing import Any

from .._internal.deferred import pa, pafs, pq


def write_whole(filesystem: Any, target: str, rows: pa.Table, **options: Any) -> None:
    """Write ``rows`` to the Parquet file ``target`` all at once (``options``: ``pq.write_table``'s)."""
    if isinstance(filesystem, pafs.LocalFileSystem):
        folder, name = target.rsplit("/", 1)
        filesystem.create_dir(folder, recursive=True)
        temporary = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
        pq.write_table(rows, temporary, filesystem=filesystem, **options)
        filesystem.move(temporary, target)
    else:
        pq.write_table(rows, target, filesystem=filesystem, **options)
