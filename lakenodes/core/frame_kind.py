"""Which kind of frame reads and ``run()`` return: polars by default, pandas (the seeds' shape) on request.

One switch for a whole program: ``LAKENODES_FRAME=pandas`` in the environment, or
``lakenodes.set_default_frame("pandas")`` (which wins over the environment). A ``frame=`` argument
on a read wins over both.

Example:
    >>> set_default_frame("arrow")
    >>> default_frame()
    'arrow'
    >>> set_default_frame(None)  # back to the environment / polars
    >>> default_frame()
    'polars'
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from .._internal.deferred import pa
from ..errors import LakenodesUserError

if TYPE_CHECKING:
    import pandas as pd

FrameKind = Literal["polars", "pandas", "arrow"]
FRAME_KINDS: tuple[str, ...] = ("polars", "pandas", "arrow")
FRAME_ENV = "LAKENODES_FRAME"
_chosen: str | None = None

# pandas names a user porting seed code reaches for on a polars frame
_PANDAS_ONLY = frozenset({
    "iloc", "loc", "at", "iat", "xs", "empty", "index", "set_index", "reset_index",
    "iterrows", "itertuples", "groupby", "sort_index", "dropna", "fillna", "merge", "droplevel",
    "swaplevel", "unstack", "stack", "resample", "values", "astype", "apply",
})


def set_default_frame(kind: FrameKind | None) -> None:
    """Make ``kind`` the frame every read and ``run()`` returns in this program (None: back to
    ``LAKENODES_FRAME`` or polars)."""
    global _chosen
    if kind is not None:
        _check(kind, "set_default_frame")
    _chosen = kind


def chosen_frame() -> str | None:
    """The kind ``set_default_frame`` chose in this program (None: none chosen), which a run sends
    to the worker processes it submits nodes to (a spawned process starts without it)."""
    return _chosen


def default_frame() -> str:
    """The frame kind in effect: ``set_default_frame`` > ``LAKENODES_FRAME`` > ``"polars"``."""
    if _chosen is not None:
        return _chosen
    from_env = os.environ.get(FRAME_ENV, "").strip().lower()
    if not from_env:
        return "polars"
    return _check(from_env, FRAME_ENV)


def resolve_frame(kind: str | None) -> str:
    """An explicit ``frame=`` argument, else the program's default."""
    return default_frame() if kind is None else _check(kind, "frame")


def as_frame(data: pa.Table, index_names: Sequence[str], kind: str | None = None) -> Any:
    """``data`` as the requested kind: polars (index columns first), pandas with the seeds' index
    (``time_index`` or a ``(time_index, unique_identifier, ...)`` MultiIndex), or Arrow."""
    kind = resolve_frame(kind)
    if kind == "arrow":
        return data
    if kind == "pandas":
        return to_pandas(data, index_names)
    return polars_frame(pl.from_arrow(data))


def to_pandas(data: pa.Table, index_names: Sequence[str]) -> pd.DataFrame:
    """The seeds' pandas shape: ``time_index`` (or a MultiIndex of the index names) as the index.
    Int and bool columns holding nulls become pandas' nullable ``Int64``/``boolean`` (NumPy's would
    be float64, which cannot hold every int64 exactly, and object)."""
    import pandas as pd

    frame = data.to_pandas()
    with_nulls = [name for name, column in zip(data.column_names, data.columns, strict=True)
                  if column.null_count and (pa.types.is_integer(column.type) or pa.types.is_boolean(column.type))]
    if with_nulls:
        nullable = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
        exact = data.select(with_nulls).to_pandas(types_mapper=nullable.get)
        for name in with_nulls:
            frame[name] = exact[name]
    present = [name for name in index_names if name in frame.columns]
    return frame.set_index(present) if present else frame


def polars_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """A polars frame whose pandas-only attributes (``.iloc``, ``.empty``, ``.xs`` …) fail with a hint
    at the pandas switch instead of a bare AttributeError."""
    return _PolarsWithHint._from_pydf(frame._df)


class _PolarsWithHint(pl.DataFrame):
    def __getattr__(self, name: str) -> Any:
        if name in _PANDAS_ONLY:
            raise AttributeError(
                f"polars DataFrame has no attribute {name!r} (a pandas name): lakenodes returns polars frames "
                f"by default; set {FRAME_ENV}=pandas or call lakenodes.set_default_frame('pandas') for the "
                "seeds' pandas frames, or pass frame='pandas' to this read"
            )
        fallback = getattr(pl.DataFrame, "__getattr__", None)  # polars < 2 has none of its own
        if fallback is None:
            raise AttributeError(f"'DataFrame' object has no attribute {name!r}")
        return fallback(self, name)


def _meant_kind(kind: Any) -> str | None:
    """The frame kind a near miss names: ``"Polars"``, ``" pandas"``, the module ``pl`` or the class
    ``pd.DataFrame`` (what a REPL user passes); None for anything else.

    Example:
        >>> _meant_kind("Polars"), _meant_kind(pl.DataFrame), _meant_kind("excel")
        ('polars', 'polars', None)
    """
    name = kind.strip().lower() if isinstance(kind, str) else (
        getattr(kind, "__module__", None) or getattr(kind, "__name__", "")).split(".")[0]
    aliases = {"pyarrow": "arrow", "pl": "polars", "pd": "pandas", "pa": "arrow"}
    meant = aliases.get(name, name)
    return meant if meant in FRAME_KINDS else None


def _check(kind: str, where: str) -> str:
    if kind not in FRAME_KINDS:
        meant = _meant_kind(kind)
        hint = f": pass the name {meant!r}" if meant else ""
        if "lazy" in (kind if isinstance(kind, str) else getattr(kind, "__name__", "")).lower():
            hint = ": a polars LazyFrame of a read comes from node.scan(...), which takes the same filters"
        raise LakenodesUserError(f"{where} must be 'polars', 'pandas' or 'arrow', got {kind!r}{hint}")
    if kind == "pandas" and importlib.util.find_spec("pandas") is None:  # a plain install has no pandas
        raise LakenodesUserError(
            f"{where} asks for pandas frames, but pandas is not installed: pip install \"lakenodes[pandas]\"")
    return kind
