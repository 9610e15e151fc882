"""Arrow tables to Python rows without importing pandas.

pyarrow asks its pandas shim (which imports pandas when it is installed, ~0.15 s) on many calls:
``pa.array``/``pa.scalar`` of Python or NumPy values, ``pa.table`` of a non-dict, ``as_py`` of a
tz-aware timestamp, ``Table.group_by``, ``import pyarrow.dataset``. A daily run in a cron job
avoids them on its path (``tests/test_import_time.py``); tables become rows through polars here.

Example:
    >>> import polars as pl
    >>> import pyarrow as pa
    >>> table = arrow_table([{"a": 1}, {"a": 2, "b": 0}], pa.schema([("a", pa.int64())]))
    >>> table.schema
    a: int64
    >>> python_rows(table)
    [{'a': 1}, {'a': 2}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from .datetimes import epoch_micros
from .deferred import pa
from .plain_arrow import cast_table


def python_rows(table: pa.Table) -> list[dict[str, Any]]:
    """``table.to_pylist()`` (tz-aware timestamps as ``datetime`` in their zone) without pandas."""
    return pl.from_arrow(table).to_dicts() if table.num_rows else []


def python_values(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """``column.to_pylist()`` without pandas."""
    return pl.Series(column).to_list()


def arrow_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """``pa.Table.from_pylist(rows, schema=schema)`` without pandas (keys not in ``schema`` are
    ignored, missing ones are null; naive datetimes are taken as UTC)."""
    dtypes = pl.from_arrow(empty_table(schema)).schema
    columns: dict[str, pl.Series] = {}
    for field in schema:
        values = [row.get(field.name) for row in rows]
        if pa.types.is_timestamp(field.type) and field.type.unit == "us":  # as integers: polars converts
            micros = [None if value is None else epoch_micros(value) for value in values]
            columns[field.name] = pl.Series(field.name, micros, pl.Int64).cast(dtypes[field.name])  # datetimes slowly
        else:
            columns[field.name] = pl.Series(field.name, values, dtypes[field.name])
    return cast_table(pl.DataFrame(columns).to_arrow(), schema)  # a dict, in threads: see below


# Polars before 2.0 builds a DataFrame from a *list* (of Series, arrays, ...) through a functools.singledispatch
# that registers the element's type on its first use, unlocked: two threads building their first such frame at
# once could raise "RuntimeError: dictionary changed size during iteration" (pola-rs/polars#29121, fixed in
# 2.0.0 by #29132; it failed a run's catalog phase after its commit). lakenodes, whose runs write the catalog
# from threads, builds frames of Series from a dict (``pl.DataFrame({name: series})``), which never dispatches.


def empty_table(schema: pa.Schema) -> pa.Table:
    """``schema.empty_table()`` without pandas."""
    return pa.Table.from_batches([], schema=schema)
