"""``UpdateStatistics``: what an updater's scope already holds (the seeds' statistics API), built
on the table progress read from Delta metadata (:mod:`lakenodes.lake.progress`)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from ..core.frames import UNIQUE_IDENTIFIER
from ..errors import LakenodesUserError
from ..lake.progress import Identity, TableProgress, keep_min
from .read_arguments import asset_list_argument, list_argument, uid_of

UTC = datetime.timezone.utc
DEFAULT_OFFSET_START = datetime.datetime(2018, 1, 1, tzinfo=UTC)


class UpdateStatistics:
    """What an updater's scope already holds, from Delta metadata (never a scan of the rows).

    ``index_progress`` follows the identity dimensions in order; leaves are UTC datetimes.
    Assets never written fall back to ``offset_start``.

    Example:
        >>> import datetime
        >>> stats = UpdateStatistics.empty(("time_index",), offset_start=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
        >>> stats.max_time_index_value is None
        True
    """

    def __init__(
        self,
        progress: TableProgress,
        *,
        asset_list: list[Any] | None = None,
        offset_start: datetime.datetime = DEFAULT_OFFSET_START,
        dimensions_known: bool = True,
    ):
        self._progress = progress
        # False before a first write whose identity dimensions the node does not declare: the
        # first frame decides them (``index_names`` is then a guess)
        self._dimensions_known = dimensions_known or progress.version >= 0
        self.index_names = progress.index_names
        self.identity_dimensions = progress.index_names[1:]
        self.asset_list = asset_list_argument(asset_list, "asset_list")  # a string would scope its characters
        self.offset_start = offset_start
        self._scope = None if self.asset_list is None else {uid_of(asset) for asset in self.asset_list}
        position = self._asset_position()
        self._last = {
            identity: ts for identity, ts in progress.last.items()
            if self._scope is None or not identity or identity[position] in self._scope
        }

    @property
    def progress(self) -> TableProgress:
        """The table progress (per-identity first/last ``time_index``) these statistics were computed from."""
        return self._progress

    @classmethod
    def empty(cls, index_names: Sequence[str], **kwargs: Any) -> UpdateStatistics:
        return cls(TableProgress(version=-1, index_names=tuple(index_names)), **kwargs)

    def _asset_position(self) -> int:
        dims = self.identity_dimensions
        return dims.index(UNIQUE_IDENTIFIER) if UNIQUE_IDENTIFIER in dims else 0

    @property
    def max_time_index_value(self) -> datetime.datetime | None:
        """Latest stored ``time_index`` within this updater's scope (None when nothing is stored)."""
        return max(self._last.values(), default=None)

    @property
    def min_time_index_value(self) -> datetime.datetime | None:
        firsts = [ts for identity, ts in self._progress.first.items() if identity in self._last]
        return min(firsts, default=None)

    @property
    def is_empty(self) -> bool:
        return not self._last

    @property
    def index_progress(self) -> dict[str, Any] | datetime.datetime | None:
        """Nested ``{dim1: {dim2: ... datetime}}`` following the identity dimensions in order."""
        if not self.identity_dimensions:
            return self.max_time_index_value
        nested: dict[str, Any] = {}
        for identity, ts in sorted(self._last.items()):
            level = nested
            for value in identity[:-1]:
                level = level.setdefault(value, {})
            level[identity[-1]] = ts
        return nested

    def _asset_last(self, uid: str) -> list[datetime.datetime]:
        position = self._asset_position()
        return [ts for identity, ts in self._last.items() if identity and identity[position] == uid]

    def get_last_update_index_2d(self, uid: str) -> datetime.datetime:
        """Latest stored time of ``uid``, one unique_identifier (a string or an ``Asset``; ``offset_start``
        when it has none)."""
        return max(self._asset_last(uid_of(uid, "uid")), default=self.offset_start)

    def get_asset_earliest_multiindex_update(self, asset: Any) -> datetime.datetime:
        """The earliest of the per-coordinate watermarks of ``asset`` (an ``Asset`` or a
        unique_identifier string; ``offset_start`` if none).

        For a 2-level table this is the asset's last stored time; with more dimensions it is the
        one lagging furthest behind, so an update starting there misses nothing.
        """
        return min(self._asset_last(uid_of(asset, "asset")), default=self.offset_start)

    def _scope_uids(self) -> list[str]:
        if self._scope is not None:
            return sorted(self._scope)
        position = self._asset_position()
        return sorted({identity[position] for identity in self._last if identity})

    def get_update_range_map_great_or_equal(
        self, extra_time_delta: datetime.timedelta | None = None
    ) -> dict[str, dict[str, Any]]:
        """``{uid: {"start_date": last, "start_date_operand": ">="}}`` for every asset in scope.

        ``extra_time_delta`` (a ``datetime.timedelta``) moves each start back (e.g. to fetch a rolling window).
        """
        delta = _delta_argument(extra_time_delta)
        return {
            uid: {"start_date": _moved_back(self.get_asset_earliest_multiindex_update(uid), delta), "start_date_operand": ">="}
            for uid in self._scope_uids()
        }

    def get_dimension_range_map_great_or_equal(
        self,
        identity_dimensions: Sequence[str] | None = None,
        extra_time_delta: datetime.timedelta | None = None,
    ) -> list[dict[str, Any]]:
        """``[{"coordinate": {dim: value}, "start_date": dt, "start_date_operand": ">="}, ...]``.

        ``identity_dimensions``: a list of dimension names (``["unique_identifier"]``), None for all;
        ``extra_time_delta``: a ``datetime.timedelta`` moving each start back, as in
        ``get_update_range_map_great_or_equal``.

        Coordinates are the stored identity tuples in scope (projected onto
        ``identity_dimensions``, keeping the earliest watermark of each projection), plus in-scope
        assets never written, which start at ``offset_start``. Before the first write of a node that
        does not declare its dimensions (``IDENTITY_DIMENSIONS``; its first frame will), any
        dimensions may be asked for: nothing is stored, so only in-scope assets have a start.

        Example:
            >>> stats = UpdateStatistics.empty(("time_index",), dimensions_known=False)
            >>> stats.get_dimension_range_map_great_or_equal(["account_uid", "unique_identifier"])
            []
        """
        delta = _delta_argument(extra_time_delta)
        dims = list_argument(identity_dimensions or self.identity_dimensions, "identity_dimensions")
        unknown = [dim for dim in dims if dim not in self.identity_dimensions]
        if unknown and not self._dimensions_known:
            return []
        if unknown:
            raise LakenodesUserError(f"unknown identity dimension(s) {unknown}; the table has {list(self.identity_dimensions)}")
        positions = [self.identity_dimensions.index(dim) for dim in dims]
        starts: dict[Identity, datetime.datetime] = {}
        for identity, ts in self._last.items():
            keep_min(starts, tuple(identity[p] for p in positions), ts)
        if self._scope is not None and dims == [UNIQUE_IDENTIFIER]:
            for uid in self._scope:
                starts.setdefault((uid,), self.offset_start)
        return [
            {"coordinate": dict(zip(dims, key, strict=True)), "start_date": _moved_back(ts, delta), "start_date_operand": ">="}
            for key, ts in sorted(starts.items())
        ]

    def __repr__(self) -> str:
        return (
            f"UpdateStatistics(max_time_index_value={self.max_time_index_value}, "
            f"identities={len(self._last)}, asset_list={None if self.asset_list is None else len(self.asset_list)})"
        )


_EARLIEST = datetime.datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.datetime.max.replace(tzinfo=UTC)


def _delta_argument(delta: Any) -> datetime.timedelta:
    """``extra_time_delta``: a ``timedelta`` (pandas' ``Timedelta`` is one), None for none; a number
    (days? seconds?) or a string was a raw TypeError from the subtraction.

    Example:
        >>> _delta_argument(5)
        Traceback (most recent call last):
        lakenodes.errors.LakenodesUserError: extra_time_delta must be a datetime.timedelta, got int 5: e.g. datetime.timedelta(days=5)
    """
    if delta is None:
        return datetime.timedelta(0)
    if type(delta).__name__ == "timedelta64":  # numpy's: subtracted from a datetime as the timedelta it holds
        delta = delta.astype("timedelta64[us]").item()
    if not isinstance(delta, datetime.timedelta):
        raise LakenodesUserError(f"extra_time_delta must be a datetime.timedelta, got {type(delta).__name__} {delta!r}: "
                                 "e.g. datetime.timedelta(days=5)")
    return delta


def _moved_back(start: datetime.datetime, delta: datetime.timedelta) -> datetime.datetime:
    """``start - delta``, kept within the years Python holds (an ``offset_start`` of year 1 moved
    back further starts at year 1: no row is earlier).

    Example:
        >>> _moved_back(_EARLIEST, datetime.timedelta(days=5)) == _EARLIEST
        True
    """
    try:
        return start - delta
    except OverflowError:
        return _EARLIEST if delta > datetime.timedelta(0) else _LATEST
