"""Writing a small file of lakenodes' own beside a table (file facts, the cross-section copy,
pending catalog rows) so that no reader ever sees half of it.

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
from .location import write_small_file


def write_whole(filesystem: Any, target: str, rows: pa.Table, **options: Any) -> None:
    """Write ``rows`` to the Parquet file ``target`` all at once (``options``: ``pq.write_table``'s)."""
    sink = pa.BufferOutputStream()
    pq.write_table(rows, sink, **options)
    write_whole_bytes(filesystem, target, sink.getvalue())


def write_whole_bytes(filesystem: Any, target: str, data: bytes | pa.Buffer) -> None:
    """Write ``data`` to the file ``target`` all at once."""
    if not isinstance(filesystem, pafs.LocalFileSystem):
        write_small_file(filesystem, target, data)
        return
    folder, name = target.rsplit("/", 1)
    temporary = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
    write_small_file(filesystem, temporary, data)  # its folder created first
    filesystem.move(temporary, target)
