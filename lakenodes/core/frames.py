"""Validation and normalization of what ``update()`` returns (polars, pandas or Arrow → Arrow).

Every rule of the frame contract is checked here, before anything touches storage, so a
rejected frame always leaves the table exactly as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import polars as pl

from .._internal.datetimes import is_utc_zone
from .._internal.deferred import pa, pc
from .._internal.plain_arrow import cast_column, polars_series
from ..errors import FrameValidationError
from .column_names import column_name_problem, identity_name_problem
from .config import RecordDefinition
from .datetime_range import check_python_range
from .frame_index import TIME_INDEX, bounds_and_uniqueness, check_unique_index, index_bounds
from .frame_pandas import UNIQUE_IDENTIFIER, pandas_column_type, pandas_schema_hint, pandas_to_arrow
from .frame_schema import (
    SchemaHint,
    cast_to_records,
    check_against_records,
    conform_table,
    no_value,
    refuse_untyped_nulls,
    unsupported_column,
)
from .identity_values import describe_value, identity_value_problem, partition_value_problem

logger = logging.getLogger(__name__)

def timestamp_type() -> pa.DataType:
    """The Arrow type of every stored ``time_index``: microseconds, UTC."""
    return pa.timestamp("us", tz="UTC")


TIME_DTYPE = pl.Datetime("us", "UTC")  # the polars type of every stored ``time_index``


@dataclass(frozen=True)
class NormalizedFrame:
    """A validated frame: Arrow data with the index columns first, plus its index names."""

    table: pa.Table
    index_names: tuple[str, ...]
    from_pandas: bool = False  # a pandas frame: its schema errors hint at pandas' dtypes

    @property
    def schema_hint(self) -> SchemaHint | None:
        return pandas_schema_hint if self.from_pandas else None

    @property
    def identity_dimensions(self) -> tuple[str, ...]:
        return self.index_names[1:]

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    @cached_property
    def identity_bounds(self) -> pl.DataFrame:
        """One row per identity tuple (its dimensions as columns; one row when there are none):
        row count ``n`` and first/last ``lo``/``hi`` time. Computed once per frame (the write's
        watermark decisions and progress bookkeeping all start from it)."""
        return index_bounds(self.table, self.index_names)


def normalize_frame(
    frame: Any,
    declared_dimensions: Sequence[str] = (),
    records: Sequence[RecordDefinition] | None = None,
    *,
    keep_untyped_nulls: bool = False,
    keep_empty: bool = False,
    log: logging.Logger | logging.LoggerAdapter = logger,
) -> NormalizedFrame | None:
    """Validate ``frame`` and return it as Arrow, or ``None`` when it is empty (nothing new).

    An empty frame with columns is checked like any other (index, names, types, ``records``), so an
    update whose quiet days return a wrong schema fails on the first of them, not on the next busy
    one; a column without a type (pandas ``object``, polars ``Null``: it has no value) passes. Only a
    frame without columns (``pl.DataFrame()``, ``pd.DataFrame()``) is not checked. ``keep_empty``
    returns the empty frame validated instead of ``None`` (the caller checks it against the stored
    schema too).

    ``declared_dimensions`` are the class's ``IDENTITY_DIMENSIONS`` (used for polars/Arrow input,
    where the index is given by column names). A value column holding only nulls is typed by its
    ``records`` declaration, else refused, unless ``keep_untyped_nulls`` (the caller conforms the
    frame to a stored schema, which types it, or calls ``refuse_untyped_nulls``). ``log`` gets the
    warnings of values stored otherwise than given (a run passes its node's logger).

    Example:
        >>> import polars as pl, datetime as dt
        >>> frame = pl.DataFrame({"time_index": [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)], "x": [1.0]})
        >>> normalize_frame(frame).index_names
        ('time_index',)
    """
    if frame is None:
        raise FrameValidationError("update() returned None: return an empty frame when there is nothing new")
    library = _library(frame)
    table, index_names = _to_arrow(frame, library, declared_dimensions)
    if table.num_columns == 0:  # nothing new, and no schema to check
        return None
    _check_column_names(table.column_names, index_names)
    if table.num_rows == 0:
        table = _typed_empty_index(table, index_names)
    index = pa.table([_normalize_time_index(table.column(TIME_INDEX)),
                      *(_normalize_identity(name, table.column(name)) for name in index_names[1:])], names=index_names)
    bounds, unique = bounds_and_uniqueness(index, index_names)
    for position, name in enumerate(index_names[1:]):  # the first one partitions: its values are folder names too
        _check_identity_values(name, bounds[name].unique().to_list(), partition=position == 0)
    values = [name for name in table.column_names if name not in index_names]
    holds = _user_types(frame, library)
    normalized = pa.table([*index.columns, *(_normalize_value(name, table.column(name), log, holds) for name in values)],
                          names=[*index_names, *values])
    if not unique:
        check_unique_index(normalized, index_names, bounds)
    result = NormalizedFrame(normalized, tuple(index_names), from_pandas=library == "pandas")
    if records:
        check_against_records(normalized, index_names, records, result.schema_hint)
        result = replace(result, table=cast_to_records(normalized, records))
    if normalized.num_rows == 0 and not keep_empty:
        return None
    if not keep_untyped_nulls and normalized.num_rows:
        refuse_untyped_nulls(result.table)
    return _with_bounds(result, bounds)


def _with_bounds(frame: NormalizedFrame, bounds: pl.DataFrame) -> NormalizedFrame:
    """``frame`` with its ``identity_bounds`` already known (they depend on the index columns only)."""
    frame.__dict__["identity_bounds"] = bounds
    return frame


def _library(frame: Any) -> str | None:
    """"pandas" or "polars" by the library of the frame's class or of a class it derives from
    (lakenodes' reads hand out a polars subclass; a read frame returned as it is must be accepted)."""
    libraries = {cls.__module__.split(".")[0] for cls in type(frame).__mro__}
    return "pandas" if "pandas" in libraries else "polars" if "polars" in libraries else None


def _to_arrow(frame: Any, module: str | None, declared_dimensions: Sequence[str]) -> tuple[pa.Table, list[str]]:
    if module == "pandas":
        table, index_names = pandas_to_arrow(frame)
        if table.num_columns:
            _check_declared_levels(index_names, declared_dimensions)
        return table, index_names
    if module == "polars":
        if isinstance(frame, pl.LazyFrame):
            frame = frame.collect()
        if not isinstance(frame, pl.DataFrame):
            raise FrameValidationError(f"update() returned a polars {type(frame).__name__}; return a DataFrame")
        table = _polars_to_arrow(frame)
    elif isinstance(frame, pa.RecordBatch):
        table = pa.Table.from_batches([frame])
    elif isinstance(frame, pa.Table):
        table = frame
    else:
        raise FrameValidationError(
            f"update() returned {type(frame).__name__}; return a polars DataFrame, a pandas DataFrame or a pyarrow Table"
        )
    if table.num_columns == 0:
        return table, [TIME_INDEX]
    index_names = [TIME_INDEX]
    if UNIQUE_IDENTIFIER in table.column_names and UNIQUE_IDENTIFIER not in declared_dimensions:
        index_names.append(UNIQUE_IDENTIFIER)
    index_names += list(declared_dimensions)
    missing = [name for name in index_names if name not in table.column_names]
    if missing:
        raise FrameValidationError(f"index column(s) {missing} missing from the frame; columns are {table.column_names}")
    return table, index_names


def _check_declared_levels(index_names: Sequence[str], declared: Sequence[str]) -> None:
    """A pandas index names its levels itself; when the class declares ``IDENTITY_DIMENSIONS`` they must be
    those, in that order (``unique_identifier`` may lead them, as a polars frame's column does)."""
    if not declared:
        return
    allowed = [[TIME_INDEX, *declared]]
    if UNIQUE_IDENTIFIER not in declared:
        allowed.append([TIME_INDEX, UNIQUE_IDENTIFIER, *declared])
    if list(index_names) in allowed:
        return
    wanted = next((names for names in allowed if set(names) == set(index_names)), allowed[-1])
    missing = [name for name in wanted if name not in index_names]
    extra = [name for name in index_names if name not in wanted]
    how = "; ".join([*([f"add the level(s) {missing} (frame.set_index({missing}, append=True))"] if missing else []),
                     *([f"move the level(s) {extra} to columns (frame.reset_index({extra}))"] if extra else [])]
                    ) or f"frame.reorder_levels({wanted})"
    raise FrameValidationError(
        f"the pandas frame's index levels {list(index_names)} are not the class's IDENTITY_DIMENSIONS "
        f"{tuple(declared)}: index it by {wanted} ({how})")


def _user_types(frame: Any, library: str | None) -> Callable[[str], str]:
    """What a value column of ``frame`` holds, in the terms of the user's library (for errors)."""
    if library == "pandas":
        return lambda name: pandas_column_type(frame[name])
    if library == "polars":
        return lambda name: f"values of polars dtype {frame.collect_schema()[name]}"
    return lambda name: f"values of Arrow type {frame.schema.field(name).type}"


def _polars_to_arrow(frame: pl.DataFrame) -> pa.Table:
    try:
        return frame.to_arrow()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:  # Int128/UInt128, which Arrow cannot take
        name = next((name for name in frame.columns if not _converts(frame, name)), None)
        if name is None:
            raise FrameValidationError(f"frame cannot be converted to Arrow: {error}") from error
        dtype = frame.schema[name]
        why = ("Arrow has no 128-bit ints: cast it to Int64, or to Float64 or String for values beyond int64"
               if dtype in (pl.Int128, getattr(pl, "UInt128", pl.Int128)) else f"Arrow cannot hold it ({error})")
        raise unsupported_column(name, f"values of polars dtype {dtype}", why) from error


def _converts(frame: pl.DataFrame, name: str) -> bool:
    try:
        frame.select(name).to_arrow()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _typed_empty_index(table: pa.Table, index_names: Sequence[str]) -> pa.Table:
    """An empty frame's index columns that have no type (pandas ``object``, polars ``Null``) typed as
    stored: without a value, nothing contradicts that type."""
    for name in index_names:
        if pa.types.is_null(table.schema.field(name).type):
            kind = timestamp_type() if name == TIME_INDEX else pa.string()
            table = table.set_column(table.schema.get_field_index(name), name, pa.chunked_array([], kind))
    return table


def _check_column_names(names: Sequence[str], index_names: Sequence[str]) -> None:
    if names and names[0] != TIME_INDEX and TIME_INDEX not in names:
        raise FrameValidationError(f"the frame has no 'time_index'; columns are {list(names)}")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise FrameValidationError(f"column name {name!r} appears more than once")
        seen.add(name)
        problem = column_name_problem(name)
        if problem:
            raise FrameValidationError(problem)
    for name in index_names[1:]:
        problem = identity_name_problem(name)
        if problem:
            raise FrameValidationError(problem)
    value_columns = [name for name in names if name not in index_names]
    if not value_columns:
        raise FrameValidationError("the frame has index columns but no value column")


def _normalize_time_index(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if not pa.types.is_timestamp(kind):
        raise FrameValidationError(f"'time_index' must be a timezone-aware UTC datetime, got {kind}{_time_hint(kind)}")
    if kind.tz is None:
        raise FrameValidationError(
            "'time_index' is timezone-naive (never shifted silently): if its times are UTC, localize them (pandas: "
            "frame.tz_localize('UTC', level='time_index'); polars: pl.col('time_index').dt.replace_time_zone('UTC')); "
            "if they are local times, localize them in their zone, then convert (pandas: frame.tz_localize("
            "'America/New_York', level='time_index').tz_convert('UTC', level='time_index'); polars: pl.col("
            "'time_index').dt.replace_time_zone('America/New_York').dt.convert_time_zone('UTC'))")
    if not is_utc_zone(kind.tz):
        raise FrameValidationError(
            f"'time_index' is in time zone {kind.tz!r}: convert it to UTC first (pandas: frame.tz_convert('UTC', "
            "level='time_index'); polars: pl.col('time_index').dt.convert_time_zone('UTC'))")
    if column.null_count:
        raise FrameValidationError(f"'time_index' has {column.null_count} null/NaT value(s)")
    check_python_range(TIME_INDEX, column)
    return _to_microseconds("time_index", column)


def _time_hint(kind: pa.DataType) -> str:
    """How to make a ``time_index`` of dates, text or epoch numbers the UTC datetimes it must be."""
    if pa.types.is_date(kind):
        return (": dates, so each day as its UTC midnight (pandas: pd.to_datetime(dates, utc=True); polars: "
                "pl.col('time_index').cast(pl.Datetime('us', 'UTC')))")
    if _is_text(kind):
        return ": text, so parse it (pandas: pd.to_datetime(values, utc=True); polars: .str.to_datetime(time_zone='UTC'))"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return (": numbers, so say their epoch unit (pandas: pd.to_datetime(values, unit='s', utc=True); polars: "
                "pl.from_epoch('time_index', time_unit='s').dt.replace_time_zone('UTC'))")
    return ""


def _zone_hint(name: str, kind: pa.DataType) -> str:
    """How to make a value column of naive or zoned times storable (a time is never shifted silently)."""
    if kind.tz is not None:
        return (f": convert it to UTC first (pandas: frame[{name!r}].dt.tz_convert('UTC'); polars: "
                f"pl.col({name!r}).dt.convert_time_zone('UTC'))")
    return (f", timezone-naive: localize it if its times are UTC (pandas: frame[{name!r}].dt.tz_localize('UTC'); "
            f"polars: pl.col({name!r}).dt.replace_time_zone('UTC')), in their zone, then convert, if they are local "
            f"times (pandas: frame[{name!r}].dt.tz_localize('America/New_York').dt.tz_convert('UTC'); polars: "
            f"pl.col({name!r}).dt.replace_time_zone('America/New_York').dt.convert_time_zone('UTC')), or, if it "
            f"holds dates, make them dates (pandas: frame[{name!r}].dt.date; polars: pl.col({name!r}).dt.date())")


def _to_microseconds(name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
    target = pa.timestamp("us", tz="UTC")
    if column.type.unit == "ns":
        micros = pc.cast(column, target, safe=False)
        if not pc.all(pc.equal(pc.cast(micros, pa.timestamp("ns", tz="UTC")), column), min_count=0).as_py():
            raise FrameValidationError(
                f"{name!r} has sub-microsecond values; Delta stores microseconds: round them first"
            )
        return micros
    return cast_column(column, target)


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _normalize_identity(name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
    """An identity level as non-null strings (its values are checked by ``_check_identity_values``)."""
    kind = column.type  # a polars Categorical/Enum, a pandas category: of strings (a category of ints is ints)
    if not _is_text(kind.value_type if pa.types.is_dictionary(kind) else kind):
        raise FrameValidationError(f"index level {name!r} must hold strings, got {kind}")
    column = cast_column(column, pa.string())
    if column.null_count:
        raise FrameValidationError(f"index level {name!r} has {column.null_count} null value(s)")
    return column


def _check_identity_values(name: str, values: Sequence[str], *, partition: bool) -> None:
    """The distinct values of an identity level can be stored; ``partition``: as folder names too."""
    for value in values:
        problem = partition_value_problem(name, value) if partition else identity_value_problem(value)
        if problem:
            raise FrameValidationError(f"index level {name!r} value {describe_value(value)}: {problem}")


def _normalize_value(name: str, column: pa.ChunkedArray, log: logging.Logger | logging.LoggerAdapter,
                     holds: Callable[[str], str]) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_floating(kind):
        column = cast_column(column, pa.float64())
        if not polars_series(column).is_infinite().any():  # no infinity: neither pyarrow.compute nor pa.scalar() (pandas)
            return column
        infinite = pc.is_inf(column)
        log.warning("column %r: %d infinite value(s) stored as NaN", name, pc.sum(infinite).as_py())
        return pc.if_else(infinite, pa.scalar(float("nan")), column)
    if pa.types.is_integer(kind):
        if pa.types.is_uint64(kind) and (pc.max(column).as_py() or 0) > 2**63 - 1:  # None: no value (only nulls)
            raise FrameValidationError(f"column {name!r} holds unsigned values beyond int64")
        return cast_column(column, pa.int64())
    if pa.types.is_boolean(kind):
        return column
    if _is_text(kind):
        return cast_column(column, pa.string())
    if pa.types.is_dictionary(kind):  # polars Categorical/Enum, pandas category (of text, ints, dates...): its values
        try:
            values = pc.cast(column, kind.value_type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # e.g. pd.cut's intervals
            raise unsupported_column(name, holds(name), f"unsupported type {kind}") from None
        return _normalize_value(name, values, log, holds)
    if pa.types.is_date(kind):
        check_python_range(name, column)
        return pc.cast(column, pa.date32())
    if pa.types.is_timestamp(kind):
        if not is_utc_zone(kind.tz):
            if no_value(column):  # only NaT (pandas' is naive): no time to shift
                return pa.chunked_array([pa.nulls(len(column), timestamp_type())])
            raise FrameValidationError(f"datetime column {name!r} must be timezone-aware UTC, got {kind}{_zone_hint(name, kind)}")
        check_python_range(name, column)
        return _to_microseconds(name, column)
    if pa.types.is_null(kind):  # typed later by the records or the stored schema, else refused
        return column
    raise unsupported_column(name, holds(name), f"unsupported type {kind}")


def conform_to_schema(frame: NormalizedFrame, stored: pa.Schema, stored_index: Sequence[str]) -> NormalizedFrame:
    """Check ``frame`` against the stored table schema and cast it to it (the schema is a contract;
    see :mod:`lakenodes.core.frame_schema`)."""
    conformed = replace(frame, table=conform_table(frame.table, frame.index_names, stored, stored_index,
                                                   frame.schema_hint))
    return _with_bounds(conformed, frame.identity_bounds) if "identity_bounds" in frame.__dict__ else conformed
