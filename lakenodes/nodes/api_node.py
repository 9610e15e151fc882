"""``APIDataNode``: a read-only node over a published table (found by its identifier), usable
as a dependency of DataNodes as in Main Sequence's ``mainsequence.meta_tables``."""

from __future__ import annotations

from typing import Any

from .._internal.deferred import pa
from ..catalog.catalog import resolve_identifier
from ..core.config import checked_identifier
from ..core.hashing import checked_namespace, current_hash_namespace
from ..errors import ConfigurationError, NotFoundError
from ..lake.location import LakeLike, block_lake, lake_argument, lake_or_current
from ..lake.progress import read_progress
from .node import BaseNode
from .statistics import UpdateStatistics


class APIDataNode(BaseNode):
    """A read-only node over a published table; usable as a dependency.

    Example (``example``: a temporary lake with one table, see conftest.py):
        >>> prices = APIDataNode.build_from_identifier("example_prices", lake=example.lake)
        >>> prices.get_df_between_dates(start_date="2026-03-30", end_date="2026-03-30")["unique_identifier"].to_list()
        ['AAPL', 'MSFT']
    """

    def __init__(self, storage_hash: str, *, lake: LakeLike | None = None, identifier: str | None = None):
        """``storage_hash``: the table's storage hash (``TimeIndexMetaTable.storage_hash``); a table
        is opened by its published identifier with ``build_from_identifier``. ``lake``: a Lake, a folder
        path or an s3:// URI (None: the ``use_lake`` block it is created in); ``identifier``: its name,
        for messages."""
        if not isinstance(storage_hash, str):
            raise ConfigurationError(f"APIDataNode takes a storage hash string, got {type(storage_hash).__name__} "
                                     f"{storage_hash!r} (to open a table by its identifier: "
                                     "APIDataNode.build_from_identifier('my_identifier'))")
        self.storage_hash = storage_hash
        self.update_hash = f"api:{storage_hash}"
        self.identifier = identifier
        self.lake = lake_argument(lake) or block_lake()
        self.hash_namespace = current_hash_namespace()

    @classmethod
    def build_from_identifier(cls, identifier: str, *, namespace: str | None = None, lake: LakeLike | None = None) -> APIDataNode:
        """Resolve ``identifier``, a published table's name (active namespace first, then the default one, unless
        ``namespace`` names one); ``lake``: a Lake, a folder path or an s3:// URI, else the lake in effect."""
        identifier = checked_identifier(identifier)
        if namespace is not None:
            namespace = checked_namespace(namespace)
        lake = lake_or_current(lake)
        namespaces = [namespace] if namespace is not None else list(dict.fromkeys([current_hash_namespace(), ""]))
        for candidate in namespaces:
            storage_hash = resolve_identifier(lake, identifier, candidate)
            if storage_hash is not None:
                return cls(storage_hash, lake=lake, identifier=identifier)
        raise NotFoundError(f"no table is published as {identifier!r} in {lake.uri} (namespaces tried: {namespaces})")

    def dependencies(self) -> dict[str, Any]:
        return {}

    def get_asset_list(self) -> None:
        """None: a published table is read whole, not scoped to assets (as in Main Sequence)."""
        return None

    def _declared_schema(self) -> tuple[pa.Schema, tuple[str, ...]]:
        """What a read gives when it finds no table: nothing, as a published table declares no columns,
        so a read of a table that does not exist (a mistyped storage hash, another lake) fails, naming
        it, as the statistics do (a read ``as_of`` before the table existed stays empty)."""
        if self.store.table() is None:
            raise self._missing()
        return super()._declared_schema()

    def _missing(self) -> NotFoundError:
        hint = ""
        namespaces = dict.fromkeys([self.hash_namespace, ""])
        if self.identifier is None and any(resolve_identifier(self.lake, self.storage_hash, ns) for ns in namespaces):
            # APIDataNode("my_identifier"): the constructor takes a storage hash
            hint = f"; {self.storage_hash!r} is an identifier: APIDataNode.build_from_identifier({self.storage_hash!r})"
        return NotFoundError(f"{self!r}: no such table in {self.lake.uri} (never written there, or deleted){hint}")

    def get_update_statistics(self) -> UpdateStatistics:
        """The table's statistics now: the last stored ``time_index`` of each identity (Main
        Sequence's ``APIDataNode.get_update_statistics()``; ``update_statistics`` is the same).

        Example (``example``: a temporary lake with one table, see conftest.py):
            >>> prices = APIDataNode.build_from_identifier("example_prices", lake=example.lake)
            >>> prices.update_statistics.max_time_index_value.date().isoformat()
            '2026-04-02'
        """
        table = self.store.table()
        if table is None:
            raise self._missing()
        return UpdateStatistics(read_progress(table, self.lake))

    @property
    def update_statistics(self) -> UpdateStatistics:
        """``get_update_statistics()``: what a dependent node reads of its watermarks."""
        return self.get_update_statistics()

    def __repr__(self) -> str:
        return f"APIDataNode(identifier={self.identifier!r}, storage_hash={self.storage_hash!r})"
