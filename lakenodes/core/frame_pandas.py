"""A pandas frame as Arrow: its index levels (the seeds' ``time_index`` or a ``(time_index,
unique_identifier, ...)`` MultiIndex) become the leading columns; names, levels and values pandas
allows but a table cannot hold are refused here (see :mod:`lakenodes.core.frames`).

pandas is imported only when a pandas frame arrives (the ``pandas`` extra).
"""

from __future__ import annotations

import datetime
from typing import Any

from .._internal.datetimes import is_utc_zone
from .._internal.deferred import pa, pc
from ..errors import FrameValidationError
from .frame_index import TIME_INDEX
from .frame_schema import unsupported_column

UNIQUE_IDENTIFIER = "unique_identifier"


def pandas_to_arrow(frame: Any) -> tuple[pa.Table, list[str]]:
    import pandas as pd  # the pandas extra: imported only for a pandas frame

    if not isinstance(frame, pd.DataFrame):
        raise FrameValidationError(f"update() returned a pandas {type(frame).__name__}; return a DataFrame")
    unindexed = isinstance(frame.index, pd.RangeIndex) and frame.index.name is None
    if len(frame) == 0 and (len(frame.columns) == 0 or unindexed):
        # pd.DataFrame() or pd.DataFrame(columns=[...]): pandas' idiom for nothing new, no index to check
        return pa.table({}), [TIME_INDEX]
    index_names = [name for name in frame.index.names]
    if any(name is None for name in index_names):
        hint = (f"; '{TIME_INDEX}' is a column: make it the index, frame.set_index('{TIME_INDEX}') (and "
                f"set_index(['{TIME_INDEX}', '{UNIQUE_IDENTIFIER}']) for one row per asset)"
                if TIME_INDEX in frame.columns else "")
        raise FrameValidationError(
            f"every index level must be named (first 'time_index'); got index names {index_names}{hint}"
        )
    if index_names[0] != TIME_INDEX:
        order = [TIME_INDEX, *(name for name in index_names if name != TIME_INDEX)]
        hint = (f": put it first, frame.reorder_levels({order}) (an index built asset first, as ArcticDB's or a "
                "groupby's, has it second)" if TIME_INDEX in index_names else "")
        raise FrameValidationError(
            f"the first index level must be named 'time_index', got {index_names[0]!r}{hint}")
    if len(set(index_names)) != len(index_names):
        raise FrameValidationError(f"index level names must be unique, got {index_names}")
    clash = [str(name) for name in frame.columns if name in index_names]
    if clash:
        raise FrameValidationError(f"column(s) {clash} have the same name as an index level")
    if UNIQUE_IDENTIFIER in frame.columns:  # a polars or Arrow frame's unique_identifier column is its identity
        raise FrameValidationError(
            f"'{UNIQUE_IDENTIFIER}' is a column of the pandas frame, not a level of its index {index_names}: an "
            f"identity belongs in the index (frame.set_index('{UNIQUE_IDENTIFIER}', append=True)); as a value column "
            "it would make a table indexed by time alone")
    bad_names = [name for name in frame.columns if not isinstance(name, str)]
    if bad_names:
        raise FrameValidationError(f"column names must be strings, got {bad_names!r}")
    repeated = sorted({name for name in frame.columns if list(frame.columns).count(name) > 1})
    if repeated:
        raise FrameValidationError(f"column name {repeated[0]!r} appears more than once")
    flat = frame.reset_index()
    try:
        table = _pandas_table(flat)
    except _conversion_errors() as error:  # OverflowError: an int beyond int64; TypeError: a sparse column
        column = _pandas_bad_column(flat)
        if column is None:
            raise FrameValidationError(f"frame cannot be converted to Arrow: {error}") from error
        raise _unconvertible(column, flat[column], error) from error
    _check_object_times(flat, table)
    return table.replace_schema_metadata(None), [str(name) for name in index_names]


def _pandas_table(flat: Any) -> pa.Table:
    """``pa.Table.from_pandas`` with the timezone-aware datetime columns converted here.

    pyarrow reads such a column through ``Series.values``, which pandas 3.1 deprecates (a
    ``Pandas4Warning``: it drops the time zone). Its UTC values and its zone are handed to Arrow
    instead, giving the type ``from_pandas`` gives (NaT → null); a category of such times (read the
    same way) as its times.
    """
    zoned = [_zoned(dtype) for dtype in flat.dtypes]
    if not any(zoned):
        return pa.Table.from_pandas(flat, preserve_index=False)
    plain = flat.iloc[:, [position for position, is_zoned in enumerate(zoned) if not is_zoned]]
    rest = iter(pa.Table.from_pandas(plain, preserve_index=False).columns)
    arrays = [_zoned_array(flat.iloc[:, position]) if is_zoned else next(rest)
              for position, is_zoned in enumerate(zoned)]
    return pa.Table.from_arrays(arrays, names=[str(name) for name in flat.columns])


def _zoned(dtype: Any) -> bool:
    """Whether a column of ``dtype`` holds timezone-aware times (or is a category of them)."""
    import pandas as pd

    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
    return isinstance(dtype, pd.DatetimeTZDtype)


def _zoned_array(column: Any) -> pa.Array:
    import pandas as pd

    if isinstance(column.dtype, pd.CategoricalDtype):  # a category of times: its times (stored as values anyway)
        column = column.astype(column.dtype.categories.dtype)
    zone = pa.lib.tzinfo_to_string(column.dtype.tz)
    utc = column.dt.tz_convert(None).to_numpy()  # datetime64 UTC values: what an Arrow timestamp holds
    return pa.array(utc, type=pa.timestamp(column.dtype.unit, tz=zone), from_pandas=True)


def _check_object_times(flat: Any, table: pa.Table) -> None:
    """A column of Python datetimes (pandas dtype ``object``) holds them in one time zone, or all
    naive, and a column of dates no datetime: Arrow types such a column by its first value, then takes
    naive values as in its zone (a naive time among UTC ones was stored as UTC, silently) and cuts a
    datetime among dates to its date."""
    import pandas as pd

    for position, kind in enumerate(table.schema.types):
        timestamps = pa.types.is_timestamp(kind)
        if not (timestamps or pa.types.is_date(kind)) or not pd.api.types.is_object_dtype(flat.dtypes.iloc[position]):
            continue
        name, values = flat.columns[position], flat.iloc[:, position]
        if not timestamps:  # (the types of a million values in ~20 ms; NaT is a datetime too)
            if any(issubclass(value_type, datetime.datetime) and value_type is not type(pd.NaT)
                   for value_type in set(map(type, values.to_numpy()))):
                raise _unconvertible(str(name), values, TypeError())
            continue
        zones = {_zone_name(zone) for zone in {getattr(value, "tzinfo", None) for value in values.dropna()}}
        if len(zones) < 2:
            continue  # one zone (or none: all naive) is checked as the column's zone
        where = f"'{name}'" if name == TIME_INDEX else f"column {name!r}"
        if None in zones:
            raise FrameValidationError(
                f"{where} mixes timezone-naive and timezone-aware datetimes (pandas dtype object): the naive ones would "
                "be stored as if UTC; make every value aware UTC first (pd.to_datetime(values, utc=True) if the naive "
                "ones are UTC)")
        raise FrameValidationError(
            f"{where} holds datetimes in several time zones ({', '.join(sorted(zones))}; pandas dtype object): "
            "convert them to UTC first (pd.to_datetime(values, utc=True))")


def _zone_name(zone: Any) -> str | None:
    """The Arrow name of a value's ``tzinfo`` (every name of UTC as "UTC"); None for a naive value."""
    if zone is None:
        return None
    try:
        name = pa.lib.tzinfo_to_string(zone)
    except (NotImplementedError, ValueError, TypeError):  # a tzinfo Arrow cannot name
        name = str(zone)
    return "UTC" if is_utc_zone(name) else name


def _conversion_errors() -> tuple[type[Exception], ...]:
    """What converting a pandas column may raise (a function: pyarrow loads on first use)."""
    return pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError


def pandas_column_type(column: Any) -> str:
    """What a pandas column holds, in the user's terms: its dtype, and for ``object`` the Python types
    of its values.

    Example:
        >>> import pandas as pd
        >>> pandas_column_type(pd.Series([1, "a", None], dtype=object))
        'Python objects of mixed types int, str (pandas dtype object)'
    """
    if column.dtype != object:
        return f"values of pandas dtype {column.dtype}"
    types = sorted({type(value).__name__ for value in column.dropna()})
    if len(types) > 1:
        return f"Python objects of mixed types {', '.join(types)} (pandas dtype object)"
    if types == ["object"]:
        return "plain Python objects (pandas dtype object)"
    return f"Python {types[0] if types else 'None'} objects (pandas dtype object)"


def _unconvertible(name: str, column: Any, error: Exception) -> FrameValidationError:
    holds = pandas_column_type(column)
    if "mixed types" in holds:
        why = (f"a column holds one type; convert its values to one (frame[{name!r}].astype(str), "
               f"pd.to_numeric(frame[{name!r}]), ...)")
    elif isinstance(error, OverflowError):
        why = "an int beyond int64, the largest int a table stores (store such values as float or str)"
    else:
        why = "unsupported type"
    return unsupported_column(name, holds, why)


def _pandas_bad_column(flat: Any) -> str | None:
    for name in flat.columns:
        if _zoned(flat[name].dtype):
            continue  # converted by _zoned_array, never the column at fault
        try:
            pa.Table.from_pandas(flat[[name]], preserve_index=False)  # as the whole frame was converted
        except _conversion_errors():
            return str(name)
    return None


def pandas_schema_hint(name: str, wanted: str, column: pa.ChunkedArray) -> str:
    """What to add to a pandas frame's schema error: an int column arrives as float64 when it holds a
    missing value (NumPy ints have no NaN), which a whole-number float column most likely is.

    Example:
        >>> pandas_schema_hint("count", "int64", pa.chunked_array([[1.0, None]]))[:56]
        ". Column 'count' holds whole numbers and 1 missing value"
    """
    if wanted != "int64" or not pa.types.is_floating(column.type) or not len(column):
        return ""
    present = pc.filter(column, pc.invert(pc.is_nan(column)))  # drops the nulls (pandas' NaN) and NaN
    missing = len(column) - len(present)
    if len(present) and not (pc.all(pc.equal(pc.floor(present), present)).as_py()
                             and -(2**63) <= pc.min(present).as_py() and pc.max(present).as_py() < 2**63):
        return ""  # fractions, or beyond int64: a float column indeed
    cast = f"frame[{name!r}] = frame[{name!r}].astype('Int64')"
    if not missing:
        return (f". Column {name!r} holds only whole numbers: give it pandas' nullable 'Int64' dtype ({cast}), "
                "which keeps ints whole whether or not a value is missing")
    holds = f"whole numbers and {missing} missing value(s)" if len(present) else f"only missing values ({missing})"
    return (f". Column {name!r} holds {holds}: pandas makes an int column with a missing value float64; use "
            f"pandas' nullable 'Int64' dtype ({cast}), or return a polars frame, whose ints keep their nulls")
