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
    >>> answers = decode_all({"pending/r1.json": data, "pending/r2.json": data[:-5]})
    >>> rows = answers["pending/r1.json"]
    >>> rows.schema == schema, rows.column("run_id").to_pylist(), rows.column("at")[0].value == at.timestamp() * 1e6
    (True, ['r1'], True)
    >>> print(answers["pending/r2.json"])  # cut short
    read failed: file pending/r2.json is unreadable (cut short or not a pending record of lakenodes): it was changed outside lakenodes
"""

from __future__ import annotations

import base64
import datetime
import itertools
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


def decode_all(files: Mapping[str, bytes]) -> dict[str, pa.Table | UnreadableFileError]:
    """The rows of each pending file's bytes (JSON, or Parquet from an earlier version) by its
    path, as the schema they were written with, or the ``UnreadableFileError`` naming it. The JSON
    files of one schema become one Arrow table, sliced per file: building a table costs far more
    than its few rows (21 run records: ~1 ms at once, ~10 one by one).

    Example:
        >>> schema = pa.schema([("run_id", pa.string())])
        >>> answers = decode_all({f"{name}.json": encode([{"run_id": name}], schema) for name in "abc"})
        >>> [answers[f"{name}.json"].column("run_id").to_pylist() for name in "abc"]
        [['a'], ['b'], ['c']]
    """
    answers: dict[str, pa.Table | UnreadableFileError] = {}
    by_schema: dict[str, tuple[pa.Schema, list[tuple[str, list[dict[str, Any]]]]]] = {}
    for file, data in files.items():
        if not file.endswith(SUFFIX):
            answers[file] = _parquet_rows(file, data)
            continue
        try:
            document = json.loads(data)
            schema = by_schema[document["schema"]][0] if document["schema"] in by_schema else _schema(document["schema"])
            rows = [_parsed(row, schema) for row in document["rows"]]
        except (ValueError, KeyError, TypeError, pa.ArrowException) as error:
            answers[file] = _unreadable(file)
            answers[file].__cause__ = error
            continue
        by_schema.setdefault(document["schema"], (schema, []))[1].append((file, rows))
    for schema, members in by_schema.values():
        table = arrow_table([row for _, rows in members for row in rows], schema)
        offsets = [0, *itertools.accumulate(len(rows) for _, rows in members)]
        answers.update({file: table.slice(start, end - start)
                        for (file, _), start, end in zip(members, offsets, offsets[1:], strict=False)})
    return answers


def _parquet_rows(file: str, data: bytes) -> pa.Table | UnreadableFileError:
    try:
        with naming_unreadable(file):  # pyarrow's message names no file
            return pq.ParquetFile(pa.BufferReader(data)).read()  # (pq.read_table would import pandas)
    except UnreadableFileError as error:
        return error


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
