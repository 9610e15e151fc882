"""When a row equals the stored row of its index: what restatements skip and diffs leave out.

A value is unchanged when both are null, both NaN, or both equal and not null; so null vs a value,
NaN vs null and NaN vs a number are changes, and so is a zero whose sign flipped (-0.0 vs 0.0:
polars alone calls them equal). A restatement writes only the rows that change (see
``lakenodes.lake._row_rewrites``), and ``lakenodes.lake.diff`` reports exactly those rows.

Example:
    >>> import polars as pl
    >>> frame = pl.DataFrame({"a": [float("nan"), -0.0, None, 1.0], "b": [float("nan"), 0.0, None, 1.0]})
    >>> frame.select(values_differ(pl.col("a"), pl.col("b"), pl.Float64)).to_series().to_list()
    [False, True, False, False]
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from .._internal.deferred import np, pa

_ROW = "__lakenodes_row"  # "__" names are reserved for lakenodes: no column of a frame has one
_STORED = "__lakenodes_stored"


def values_differ(new: pl.Expr, stored: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """True where ``new`` is another value than ``stored`` (see the module doc); never null."""
    differ = new.ne_missing(stored)
    if dtype.is_float():  # polars: NaN == NaN (kept) and -0.0 == 0.0 (a change: 1/x tells the signs apart)
        differ = differ | ((new == 0) & ((1 / new) != (1 / stored))).fill_null(False)
    return differ


def unchanged_rows(new: pa.Table, stored: pa.Table, index: Sequence[str]) -> pa.Array:
    """A boolean mask over ``new``'s rows: True where ``stored`` (same columns, plain types) holds
    exactly one row with the same index, with the same values. An index stored more than once
    (rows another engine appended) is a change whatever the values: its rewrite leaves one row."""
    index = list(index)
    values = [name for name in new.column_names if name not in index]
    rows = pl.from_arrow(new).with_row_index(_ROW)
    # the stored values under "__" names (reserved: no column has one), numbered: ``<name>_stored`` may be a column
    stored_as = {name: f"{_STORED}_{position}" for position, name in enumerate(values)}
    old = pl.from_arrow(stored.select(new.column_names)).rename(stored_as)
    joined = rows.join(old, on=index, how="inner", nulls_equal=True)
    differ = [values_differ(pl.col(name), pl.col(stored_as[name]), rows.schema[name]) for name in values]
    unique = ~pl.col(_ROW).is_duplicated()  # a row of ``new`` met one stored row of its index
    same = joined.filter(unique & ~pl.any_horizontal(differ)) if differ else joined.filter(unique)
    mask = np.zeros(new.num_rows, dtype=bool)
    mask[same[_ROW].to_numpy()] = True
    return pa.array(mask)
