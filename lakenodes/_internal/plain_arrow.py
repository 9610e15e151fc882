"""Arrow casts, and Arrow columns as polars Series, without importing ``pyarrow.compute``.

A daily run in a cron job never needs ``pyarrow.compute`` (its import takes ~30-40 ms; the raw
``write_deltalake`` job does not pay it), yet any ``.cast()`` of an Arrow array or table imports it,
even to the type the data already has, and so does polars' ``pl.Series(arrow)`` (its DataFrame path
does not). Here a cast returns data already of the asked type as it is, narrows ``large_string``
(what polars hands out) to ``string`` by rewriting its offsets, and leaves every other cast, and
every error, to ``pyarrow.compute``; ``polars_series`` goes through a one-column table.
``tests/test_import_time.py`` keeps a daily run free of ``pyarrow.compute``.

Example:
    >>> strings = pa.chunked_array([pa.array(["a", None, "bc"], pa.large_string()).slice(1)])
    >>> cast_column(strings, pa.string()).to_pylist()
    [None, 'bc']
    >>> polars_series(strings, "s").to_list()
    [None, 'bc']
"""

from __future__ import annotations

import polars as pl

from .deferred import np, pa, pc

_INT32_MAX = 2**31 - 1


def polars_series(column: pa.Array | pa.ChunkedArray, name: str = "") -> pl.Series:
    """``pl.Series(name, column)`` (no copy of numbers and times), without ``pyarrow.compute``."""
    return pl.from_arrow(pa.Table.from_arrays([column], names=[name])).to_series()  # type: ignore[union-attr]


def cast_column(column: pa.ChunkedArray, kind: pa.DataType) -> pa.ChunkedArray:
    """``pc.cast(column, kind)`` (a safe cast): ``column`` itself when it is of type ``kind``."""
    if column.type == kind:
        return column
    if kind == pa.string() and pa.types.is_large_string(column.type):
        narrowed = [_narrow_strings(chunk) for chunk in column.chunks]
        if None not in narrowed:
            return pa.chunked_array(narrowed, pa.string())
    return pc.cast(column, kind)


def cast_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table.cast(schema)``: each column cast by ``cast_column`` (``table`` itself when it has
    ``schema``, metadata included); pyarrow's own cast when it would refuse (other names, nulls
    in a non-nullable field), so its errors stay as they were."""
    if table.schema.equals(schema, check_metadata=True):
        return table
    if table.schema.names != schema.names or any(
            not field.nullable and column.null_count for field, column in zip(schema, table.columns, strict=True)):
        return table.cast(schema)
    return pa.Table.from_arrays([cast_column(column, field.type) for field, column in zip(schema, table.columns,
                                                                                          strict=True)], schema=schema)


def narrow_strings(table: pa.Table) -> pa.Table:
    """``table`` with its ``large_string`` columns (what polars hands out) as ``string``, what a
    read of a table returns; ``table`` itself when it has none.

    Example:
        >>> narrow_strings(pa.table({"s": pa.array(["a"], pa.large_string())})).schema.field("s").type
        DataType(string)
    """
    schema = pa.schema([field.with_type(pa.string()) if pa.types.is_large_string(field.type) else field
                        for field in table.schema], metadata=table.schema.metadata)
    return cast_table(table, schema)


def _narrow_strings(chunk: pa.Array) -> pa.Array | None:
    """A ``large_string`` array as ``string`` (its values and nulls shared, its offsets made int32),
    or None when its offsets do not fit in int32 (``pyarrow.compute`` then says so)."""
    validity, offsets, data = chunk.buffers()
    if offsets is None or offsets.size < 8 * (chunk.offset + len(chunk) + 1):  # an empty array may have none
        return None
    wide = np.frombuffer(offsets, dtype=np.int64, count=chunk.offset + len(chunk) + 1)
    if wide[-1] > _INT32_MAX:
        return None
    return pa.Array.from_buffers(pa.string(), len(chunk), [validity, pa.py_buffer(wide.astype(np.int32)),
                                                          data if data is not None else pa.py_buffer(b"")],
                                 null_count=chunk.null_count, offset=chunk.offset)
