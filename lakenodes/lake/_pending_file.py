"""The format of a pending ledger file (:mod:`lakenodes.lake.pending`): one small JSON document
holding its rows and the Arrow schema they were written with.

A successful run writes one such file; as JSON it costs the run about a tenth of a millisecond,
where a one-row Parquet file cost it about one (the Arrow table built without pandas, then the
Parquet writer). Only readers and folds turn the rows into Arrow. Timestamps are ISO 8601 text (a
naive one is taken as UTC, as ``arrow_table`` takes it). Pending files written by earlier versions
of lakenodes are Parquet: they are still read, and folded like the others.

Example:
    >>> import datetime
    >>> schema = pa.schema([("run_id", pa.string()), ("at", pa.timestamp("us", "UTC"))])
    >>> at = datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC)
    >>> data = encode([{"run_id": "r1", "at": at}], schema)
    >>> rows = decode(data, "pending/r1.json")
    >>> rows.schema == schema, rows.column("run_id").to_pylist(), rows.column("at")[0].value == at.timestamp() * 1e6
    (True, ['r1'], True)
    >>> decode(data[:-5], "pending/r1.json")  # cut short
    Traceback (most recent call last):
    lakenodes.errors.UnreadableFileError: read failed: file pending/r1.json is unreadable (cut short or not a pending record of lakenodes): it was changed outside lakenodes
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._internal.arrow_rows import arrow_table
from .._internal.deferred import pa, pq
from ..errors import UnreadableFileError
from ._unreadable import naming_unreadable

SUFFIX = ".json"
PARQUET_SUFFIX = ".parquet"  # the pending files of earlier versions
SUFFIXES = (SUFFIX, PARQUET_SUFFIX)


def encode(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> bytes:
    """``rows`` (of ``schema``'s columns) as the bytes of one pending file."""
    schema_text = base64.b64encode(schema.serialize().to_pybytes()).decode()
    return json.dumps({"schema": schema_text, "rows": list(rows)}, default=_json_value,
                      separators=(",", ":")).encode()


def decode(data: bytes, file: str) -> pa.Table:
    """The rows of a pending file's bytes, as the schema they were written with; an
    ``UnreadableFileError`` naming ``file`` when they are not a whole pending file."""
    try:
        document = json.loads(data)
        schema = _schema(document["schema"])
        rows = [_parsed(row, schema) for row in document["rows"]]
    except (ValueError, KeyError, TypeError, pa.ArrowException) as error:
        raise _unreadable(file) from error
    return arrow_table(rows, schema)


def read(filesystem: Any, path: str) -> pa.Table:
    """The rows of the pending file ``path`` (JSON, or Parquet from an earlier version), as the
    schema they were written with."""
    with filesystem.open_input_stream(path) as source:
        data = source.read()
    if path.endswith(SUFFIX):
        return decode(data, path)
    with naming_unreadable(path):  # pyarrow's message names no file
        return pq.ParquetFile(pa.BufferReader(data)).read()  # (pq.read_table would import pandas)


def schema_of(filesystem: Any, path: str) -> pa.Schema:
    """The schema the rows of the pending file ``path`` were written with."""
    if not path.endswith(SUFFIX):
        with naming_unreadable(path):
            return pq.read_schema(path, filesystem=filesystem).remove_metadata()
    with filesystem.open_input_stream(path) as source:
        data = source.read()
    try:
        return _schema(json.loads(data)["schema"])
    except (ValueError, KeyError, TypeError, pa.ArrowException) as error:
        raise _unreadable(path) from error


def _unreadable(file: str) -> UnreadableFileError:
    return UnreadableFileError(f"file {file} is unreadable (cut short or not a pending record of lakenodes): it "
                               f"was changed outside lakenodes", operation="read", file=file)


def _schema(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text, validate=True)))


def _json_value(value: Any) -> str:
    if isinstance(value, datetime.date):  # datetimes too
        return value.isoformat()
    raise TypeError(f"a pending record holds no {type(value).__name__} value ({value!r})")


def _parsed(row: Mapping[str, Any], schema: pa.Schema) -> dict[str, Any]:
    """``row`` with its ISO 8601 texts of timestamp and date columns as datetimes and dates."""
    parsed = dict(row)
    for field in schema:
        value = parsed.get(field.name)
        if isinstance(value, str) and pa.types.is_timestamp(field.type):
            parsed[field.name] = datetime.datetime.fromisoformat(value)
        elif isinstance(value, str) and pa.types.is_date(field.type):
            parsed[field.name] = datetime.date.fromisoformat(value)
    return parsed
