"""Delta add actions as a polars frame of data files, and the files that may hold an identity's
exact first or last time (the millisecond statistics narrow them down, footers decide).

Example:
    >>> import pyarrow as pa
    >>> actions = pa.table({"path": ["a.parquet", "b.parquet"], "partition.uid": ["x", "x"],
    ...                     "min.time_index": pa.array([0, 10_000_000], pa.timestamp("us", "UTC")),
    ...                     "max.time_index": pa.array([5_000_000, 20_000_000], pa.timestamp("us", "UTC"))})
    >>> files = file_frame(actions, ["uid"])
    >>> last, first = boundary_candidates(files, ["_i0"])
    >>> last["path"].to_list(), first["path"].to_list()
    (['b.parquet'], ['a.parquet'])
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence

import polars as pl

from .._internal.deferred import pa
from .._internal.plain_arrow import polars_series
from ..core.frames import TIME_DTYPE, TIME_INDEX
from ._file_facts import Identity, null_index_error
from .store import data_file_path

_MILLISECOND = datetime.timedelta(milliseconds=1)


def file_frame(actions: pa.Table, dims: Sequence[str], table_uri: str = "the table") -> pl.DataFrame:
    """One row per data file: path, size (bytes; null where the log has none), partition values ``_p<k>``, identity ``_i<k>`` (null when the file
    mixes several values of that dimension) and the millisecond ``min``/``max`` time statistics.

    Raises when a file's statistics (or partition value) show rows with a null index value, which
    only another engine can have written: no identity or time could be told for them."""
    names = set(actions.column_names)

    def column(name: str, dtype: pl.DataType) -> pl.Series:
        if name not in names:
            return pl.Series(name, [None] * actions.num_rows, dtype=dtype)
        return polars_series(actions.column(name), name).cast(dtype)

    for name in (TIME_INDEX, *dims):
        nulls = column(f"partition.{name}", pl.String).is_null() if f"partition.{name}" in names else (
            column(f"null_count.{name}", pl.Int64).fill_null(0) > 0)
        if nulls.any():
            raise null_index_error(table_uri, name, column("path", pl.String).filter(nulls)[0])

    data = {"path": column("path", pl.String), "size": column("size_bytes", pl.Int64), "min": column(f"min.{TIME_INDEX}", TIME_DTYPE),
            "max": column(f"max.{TIME_INDEX}", TIME_DTYPE)}
    for k, dim in enumerate(dims):
        partition = column(f"partition.{dim}", pl.String)
        low, high = column(f"min.{dim}", pl.String), column(f"max.{dim}", pl.String)
        stated = pl.select(pl.when(low == high).then(low).otherwise(None)).to_series()
        data[f"_p{k}"] = partition
        data[f"_i{k}"] = partition if f"partition.{dim}" in names else stated
    return pl.DataFrame(data)


def split_by_identity(files: pl.DataFrame, dims: Sequence[str]) -> tuple[list[str], pl.DataFrame, pl.DataFrame]:
    """The identity columns of ``file_frame``'s rows (``_i<k>``), the files of one identity each,
    and the files mixing several values of a dimension."""
    keys = [f"_i{k}" for k in range(len(dims))]
    identified = pl.all_horizontal([pl.col(key).is_not_null() for key in keys]) if keys else pl.lit(True)
    return keys, files.filter(identified), files.filter(~identified)


def paths_of(*frames: pl.DataFrame) -> set[str]:
    """The data files of ``frames`` (``file_frame`` rows), relative to the table root."""
    return {data_file_path(path) for frame in frames for path in frame["path"].to_list()}


def boundary_candidates(files: pl.DataFrame, keys: Sequence[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Files that may hold the exact last / first time of their identity.

    Statistics are millisecond-truncated (and may be rounded up), so every file whose statistic
    is within 1 ms of its identity's best statistic is a candidate; files without statistics
    always are.
    """
    best = [pl.col("max").max().alias("_best_max"), pl.col("min").min().alias("_best_min")]
    ranked = files.join(files.group_by(keys).agg(best), on=keys, how="left") if keys else files.with_columns(best)
    slack = pl.lit(_MILLISECOND)
    last = ranked.filter(pl.col("max").is_null() | (pl.col("max") >= pl.col("_best_max") - slack))
    first = ranked.filter(pl.col("min").is_null() | (pl.col("min") <= pl.col("_best_min") + slack))
    return last, first


def sizes_by_path(files: pl.DataFrame) -> dict[str, int | None]:
    """The size in bytes of each file of ``files`` (``file_frame`` rows), by path relative to the table root."""
    return dict(zip((data_file_path(path) for path in files["path"].to_list()), files["size"].to_list(), strict=True))


def identities_and_paths(files: pl.DataFrame, keys: Sequence[str]) -> Iterable[tuple[Identity, str]]:
    paths = [data_file_path(path) for path in files["path"].to_list()]
    if not keys:
        return [((), path) for path in paths]
    identities = zip(*[files[key].to_list() for key in keys], strict=True)
    return zip(identities, paths, strict=True)
