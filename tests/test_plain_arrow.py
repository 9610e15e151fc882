"""The casts a daily run makes without ``pyarrow.compute`` give what pyarrow's own casts give,
values, nulls, types and errors alike (``lakenodes/_internal/plain_arrow.py``)."""

from __future__ import annotations

import datetime
import re

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lakenodes._internal.plain_arrow import cast_column, cast_table, polars_series

DAY = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)

COLUMNS = {
    "strings": pa.chunked_array([pa.array(["a", None, "", "é\u00e9", "xyz"], pa.large_string())]),
    "sliced": pa.chunked_array([pa.array(["skip", "me", None, "kept", ""], pa.large_string()).slice(2, 2)]),
    "chunks": pa.chunked_array([pa.array(["a"], pa.large_string()), pa.array([], pa.large_string()),
                                pa.array([None, "bc"], pa.large_string())]),
    "only_empty": pa.chunked_array([pa.array(["", ""], pa.large_string())]),
    "no_chunks": pa.chunked_array([], pa.large_string()),
    "views": pa.chunked_array([pa.array(["a", None], pa.string_view())]),
    "floats": pa.chunked_array([pa.array([1.5, None, -2.0], pa.float32())]),
    "zoned": pa.chunked_array([pa.array([DAY, None], pa.timestamp("us", "+00:00"))]),
}
TARGETS = {"strings": pa.string(), "sliced": pa.string(), "chunks": pa.string(), "only_empty": pa.string(),
           "no_chunks": pa.string(), "views": pa.string(), "floats": pa.float64(),
           "zoned": pa.timestamp("us", "UTC")}


@pytest.mark.parametrize("name", list(COLUMNS))
def test_a_cast_holds_what_pyarrows_cast_holds(name: str) -> None:
    column, kind = COLUMNS[name], TARGETS[name]
    cast = cast_column(column, kind)
    cast.validate(full=True)
    assert cast.type == kind and cast.equals(pc.cast(column, kind))
    assert cast.null_count == column.null_count


def test_a_column_of_its_type_is_kept_as_it_is() -> None:
    column = pa.chunked_array([pa.array([1, 2], pa.int64())])
    assert cast_column(column, pa.int64()) is column


def test_a_cast_that_loses_values_fails_as_pyarrows_does() -> None:
    column = pa.chunked_array([pa.array([2**40], pa.int64())])
    with pytest.raises(pa.ArrowInvalid) as theirs:
        pc.cast(column, pa.int32())
    with pytest.raises(pa.ArrowInvalid, match="^" + re.escape(str(theirs.value)) + "$"):
        cast_column(column, pa.int32())


def test_a_table_cast_holds_what_pyarrows_holds_and_keeps_its_refusals() -> None:
    schema = pa.schema([("path", pa.string()), ("n", pa.int64())], metadata={b"k": b"v"})
    table = pa.table({"path": pa.array(["a", None], pa.large_string()), "n": pa.array([1, 2], pa.int32())})
    cast = cast_table(table, schema)
    assert cast.schema.equals(schema, check_metadata=True) and cast.equals(table.cast(schema))
    assert cast_table(cast, schema) is cast
    strict = pa.schema([("path", pa.string(), False), ("n", pa.int64())])
    with pytest.raises(ValueError, match="non-nullable"):
        cast_table(table, strict)
    with pytest.raises(ValueError, match="field names"):
        cast_table(table, pa.schema([("other", pa.string()), ("n", pa.int64())]))


def test_a_polars_series_of_an_arrow_column_holds_its_values() -> None:
    times = pa.chunked_array([pa.array([DAY, None], pa.timestamp("us", "UTC"))])
    series = polars_series(times, "t")
    assert series.name == "t" and str(series.dtype) == "Datetime(time_unit='us', time_zone='UTC')"
    assert series.to_list() == [DAY, None]
