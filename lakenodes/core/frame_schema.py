"""A validated frame against the schema it must have: the configuration's declared ``records`` or
the stored table's schema (a contract: never changed by a write).

Columns holding only nulls carry no type of their own (a ``Null`` column), or one no value backs (a
pandas column of only NaN is float64, of only NaT a datetime, whatever it holds on other days); the
declaration or the stored schema gives them theirs, and a ``Null`` column without either is refused.
An int column is stored in a float64 column only when every value is exactly representable.

Example:
    >>> import pyarrow as pa
    >>> table = pa.table({"close": pa.array([None, None], pa.null())})
    >>> conform_table(table, (), pa.schema([("close", pa.float64())]), ()).schema.field("close").type
    DataType(double)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from .._internal.deferred import pa
from .._internal.plain_arrow import cast_column
from ..errors import FrameValidationError, SchemaMismatchError
from .config import RecordDefinition, canonical_dtype

# (column, dtype it must have, the frame's column) -> what to add to the error ("" for nothing): the
# frame's library knows why its columns may arrive with another type (pandas: ints with a NaN)
SchemaHint = Callable[[str, str, "pa.ChunkedArray"], str]  # a string: pyarrow loads on first use
STORABLE_TYPES = "float, int, bool, string, date or UTC datetime"
_ARROW_TYPES = {"float64": "float64", "int64": "int64", "bool": "bool_", "string": "string", "date": "date32"}


def logical_dtype(kind: pa.DataType) -> str:
    """The lakenodes dtype name of an Arrow type (float64, int64, bool, string, date, datetime)."""
    if pa.types.is_floating(kind):
        return "float64"
    if pa.types.is_integer(kind):
        return "int64"
    if pa.types.is_boolean(kind):
        return "bool"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_timestamp(kind):
        return "datetime"
    return "string"


def arrow_type(dtype: str) -> pa.DataType:
    """The Arrow type lakenodes stores a dtype as (``datetime``: microseconds, UTC)."""
    name = canonical_dtype(dtype)
    return pa.timestamp("us", tz="UTC") if name == "datetime" else getattr(pa, _ARROW_TYPES[name])()


def check_against_records(table: pa.Table, index_names: Sequence[str], records: Sequence[RecordDefinition],
                          hint: SchemaHint | None = None) -> None:
    """The frame's value columns must be exactly the declared ``records`` with matching dtypes."""
    declared = {record.column_name: canonical_dtype(record.dtype) for record in records}
    present = [name for name in table.column_names if name not in index_names]
    undeclared = [name for name in present if name not in declared]
    missing = [name for name in declared if name not in present]
    if undeclared:
        raise FrameValidationError(f"column(s) {undeclared} are not declared in the configuration's records")
    if missing:
        raise FrameValidationError(f"declared record column(s) {missing} are missing from the frame")
    for name in present:
        actual = logical_dtype(table.schema.field(name).type)
        if no_value(table.column(name)) or actual == declared[name] or (declared[name] == "float64" and actual == "int64"):
            continue
        raise FrameValidationError(f"column {name!r} is declared {declared[name]} but the frame holds {actual}"
                                   f"{_hint(hint, name, declared[name], table.column(name)) or _date_hint(name, declared[name], actual)}")


def cast_to_records(table: pa.Table, records: Sequence[RecordDefinition]) -> pa.Table:
    """Store the declared type: int values of a float64 column as floats, only-null columns typed."""
    for record in records:
        position = table.schema.get_field_index(record.column_name)
        kind, wanted = table.schema.field(position).type, arrow_type(record.dtype)
        if no_value(table.column(position)) or (pa.types.is_integer(kind) and pa.types.is_floating(wanted)):
            table = table.set_column(position, record.column_name,
                                     _cast(record.column_name, table.column(position), wanted, "declared"))
    return table


def conform_table(table: pa.Table, index_names: Sequence[str], stored: pa.Schema,
                  stored_index: Sequence[str], hint: SchemaHint | None = None) -> pa.Table:
    """``table`` checked against the stored table schema and cast to it (the schema is a contract)."""
    if tuple(stored_index) != tuple(index_names):
        raise SchemaMismatchError(
            f"index changed: the table is indexed by {list(stored_index)}, the frame by {list(index_names)}"
        )
    stored_names, frame_names = set(stored.names), set(table.column_names)
    if stored_names != frame_names:
        added = [f"{name!r} (table: absent, frame: {_frame_dtype(table.schema.field(name).type)})"
                 for name in sorted(frame_names - stored_names)]
        removed = [f"{name!r} (table: {logical_dtype(stored.field(name).type)}, frame: absent)"
                   for name in sorted(stored_names - frame_names)]
        raise SchemaMismatchError(
            f"columns changed: new {', '.join(added) or 'none'}; missing {', '.join(removed) or 'none'}; "
            "a schema change needs a new table (new storage_hash)"
        )
    columns = []
    for field in stored:
        column = table.column(field.name)
        old, new = logical_dtype(field.type), logical_dtype(column.type)
        if old != new and not (old == "float64" and new == "int64") and not no_value(column):
            raise SchemaMismatchError(f"column {field.name!r} was {old} and is now {new}; nothing was written"
                                      f"{_hint(hint, field.name, old, column) or _date_hint(field.name, old, new)}")
        columns.append(_cast(field.name, column, field.type, "stored"))
    return pa.table(columns, schema=stored)


def _date_hint(name: str, wanted: str, holds: str) -> str:
    """How to give a date column its dates when the frame holds datetimes (pandas has no date dtype)."""
    return (f": make them dates (pandas: frame[{name!r}].dt.date; polars: pl.col({name!r}).dt.date())"
            if (wanted, holds) == ("date", "datetime") else "")


def _frame_dtype(kind: pa.DataType) -> str:
    """A frame column's dtype name, "only nulls" for a column without one (pandas' None, polars' Null)."""
    return "only nulls" if pa.types.is_null(kind) else logical_dtype(kind)


def _hint(hint: SchemaHint | None, name: str, wanted: str, column: pa.ChunkedArray) -> str:
    return hint(name, wanted, column) if hint else ""


def unsupported_column(name: str, holds: str, why: str) -> FrameValidationError:
    """The error for a value column a table cannot store, naming what the user's frame holds there
    (``holds``: e.g. "Python Foo objects (pandas dtype object)", "values of polars dtype Int128")."""
    return FrameValidationError(f"column {name!r} holds {holds}: {why}; use {STORABLE_TYPES}")


def refuse_untyped_nulls(table: pa.Table) -> None:
    """Refuse a column that holds only nulls when nothing (records, a stored table) gives its type."""
    for field in table.schema:
        if pa.types.is_null(field.type):
            raise FrameValidationError(
                f"column {field.name!r} holds only nulls, so its type is unknown: give it a dtype (or declare it "
                "in the configuration's records)")


def warn_valueless_columns(table: pa.Table, log: logging.Logger | logging.LoggerAdapter) -> None:
    """Warn of each column without a value in the write that creates a table (no ``records``): its type
    is then only the frame's dtype (pandas' float64 for a column of only NaN), yet the table keeps it.

    Example:
        >>> warn_valueless_columns(pa.table({"note": pa.array([None], pa.float64())}), logging.getLogger("doc"))
    """
    for field, column in zip(table.schema, table.columns, strict=True):
        if no_value(column):
            log.warning("column %r has no value in the table's first write, which makes it %s for good (the "
                        "schema is a contract): if it holds another type, declare it in the configuration's "
                        "records", field.name, logical_dtype(field.type))


def no_value(column: pa.ChunkedArray) -> bool:
    """Whether ``column`` has no type of its own (``Null``), or rows that are all null: no value of it
    says what it holds, so the declared or stored type is its type.

    Example:
        >>> no_value(pa.chunked_array([[None, None]], pa.float64())), no_value(pa.chunked_array([[1.0, None]]))
        (True, False)
    """
    return pa.types.is_null(column.type) or 0 < len(column) == column.null_count


def _cast(name: str, column: pa.ChunkedArray, kind: pa.DataType, as_what: str) -> pa.ChunkedArray:
    if no_value(column) and column.type != kind:  # (Arrow casts float64 to no date: nulls are nulls of any type)
        return pa.chunked_array([pa.nulls(len(column), kind)])
    try:
        return cast_column(column, kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:  # e.g. an int beyond 2**53 into float64
        raise SchemaMismatchError(
            f"column {name!r} is {logical_dtype(kind)} ({as_what}) and cannot hold the frame's values exactly: "
            f"{error}; nothing was written") from None
