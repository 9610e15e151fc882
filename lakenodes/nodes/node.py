"""The core DataNode (identity, statistics; ``run()`` is the facade's, lakenodes.facade.node) and
APIDataNode (a read-only node over a published table); the reads every node has: lakenodes.nodes.reads."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel

from .._internal.datetimes import refuse_clock_problem
from .._internal.deferred import pa
from ..core.column_names import identity_name_problem
from ..core.config import DataNodeConfiguration, DataNodeMetaData, RecordDefinition, canonical_dtype
from ..core.frames import TIME_INDEX, UNIQUE_IDENTIFIER, timestamp_type
from ..core.hashing import (
    HashedAsUpdateHash,
    checked_namespace,
    class_path,
    compute_hash,
    current_hash_namespace,
)
from ..errors import ConfigurationError
from ..lake._tables import seen_version
from ..lake.location import Lake, LakeLike, block_lake, current_lake, lake_argument
from ..lake.progress import NO_TABLE, persisted_progress, read_progress
from ..lake.store import TableStore
from .namespaced_init import TEST_NAMESPACE, NamespacedConstruction
from .node_logging import NodeLogger
from .read_arguments import asset_list_argument
from .reads import TableReads
from .statistics import DEFAULT_OFFSET_START, UpdateStatistics


def _arrow_type(dtype: str) -> pa.DataType:
    """The Arrow type of a record's canonical dtype name."""
    types = {"float64": pa.float64(), "int64": pa.int64(), "bool": pa.bool_(), "string": pa.string(),
             "date": pa.date32(), "datetime": timestamp_type()}
    return types[dtype]


class BaseNode(TableReads):
    """What every node can do: locate its table and read it (the reads: :mod:`lakenodes.nodes.reads`).

    Its lake is the ``lake=`` it was given, else the ``use_lake`` block it was created in; a node
    created outside every block follows the lake in effect where it is used (the ``use_lake`` block
    it runs or reads in, else ``LAKENODES_URI``, else ``./lake``).
    """

    storage_hash: str
    _lake: Lake | None = None
    IDENTITY_DIMENSIONS: ClassVar[tuple[str, ...]] = ()

    @property
    def lake(self) -> Lake:
        """The node's lake: its own (``lake=``, or the block it was created in), else the one in effect here."""
        return self._lake or current_lake()

    @lake.setter
    def lake(self, value: Lake | None) -> None:
        self._lake = value

    @property
    def store(self) -> TableStore:
        return TableStore(self.lake, self.storage_hash)

    @property
    def table_uri(self) -> str:
        return self.lake.table_uri(self.storage_hash)

    def _declared_schema(self) -> tuple[pa.Schema, tuple[str, ...]]:
        """Schema to return before the first write: the index plus declared records."""
        return pa.schema([(TIME_INDEX, timestamp_type())]), (TIME_INDEX,)


HashedAsUpdateHash.register(BaseNode)  # configurations hash a node as its update_hash


_SET_BY_INIT = frozenset({"config", "hash_namespace", "storage_hash", "update_hash", "logger",
                          "_update_statistics", "_statistics_lake"})


class DataNode(BaseNode, metaclass=NamespacedConstruction):
    """The core of a DataNode: identity (hashes), ``dependencies()``, ``update()``, statistics and
    reads. User code subclasses ``lakenodes.DataNode`` (:mod:`lakenodes.facade.node`), which adds
    ``run()``; the runtime works with this class.

    Example:
        >>> class DailyNumber(DataNode):
        ...     def dependencies(self):
        ...         return {}
        ...     def update(self):
        ...         return pl.DataFrame()
        >>> DailyNumber(DataNodeConfiguration()).update_hash.startswith("dailynumber_")
        True
    """

    OFFSET_START: ClassVar[datetime.datetime] = DEFAULT_OFFSET_START

    def __init__(
        self,
        config: DataNodeConfiguration,
        *,
        hash_namespace: str | None = None,
        test_node: bool = False,
        lake: LakeLike | None = None,
        **platform: Any,
    ):
        """``config``: an instance of the node's ``DataNodeConfiguration`` subclass (not the class, not a
        dict); ``hash_namespace``: a string isolating the node's tables (``""``: none); ``test_node=True``:
        the namespace ``"test"``; ``lake``: a Lake, a folder path or an s3:// URI (None: the ``use_lake``
        block it is created in, else the lake in effect where it runs)."""
        if platform:  # the seeds' constructor passes the platform's table object
            named = ", ".join(f"{key}=" for key in platform)
            raise ConfigurationError(
                f"{type(self).__name__}(...) got {named}: lakenodes' DataNode takes config, hash_namespace=, "
                "test_node= and lake= (storage_table= is Main Sequence's platform table: drop it, the Delta "
                "table's schema is the contract)")
        if not isinstance(config, BaseModel):
            raise ConfigurationError(
                f"{type(self).__name__} needs a DataNodeConfiguration instance, got {type(config).__name__}"
            )
        if isinstance(config, (DataNodeMetaData, RecordDefinition)):  # ran, storing none of it (no identifier)
            field = "node_metadata" if isinstance(config, DataNodeMetaData) else "records"
            raise ConfigurationError(
                f"{type(self).__name__} got a {type(config).__name__} as its config: it belongs in the "
                f"configuration's {field} field, e.g. MyConfig({field}=...), and the node takes MyConfig(...)")
        if not isinstance(test_node, bool):  # "no" is truthy: it would write to the "test" namespace
            raise ConfigurationError(f"test_node must be True or False, got {test_node!r}")
        if hash_namespace is not None and not isinstance(hash_namespace, str):
            raise ConfigurationError(f"hash_namespace must be a string, got {type(hash_namespace).__name__}")
        self.config = config
        if hash_namespace is not None:
            self.hash_namespace = checked_namespace(hash_namespace)
        elif test_node:
            self.hash_namespace = TEST_NAMESPACE
        else:
            self.hash_namespace = current_hash_namespace()
        self.lake = lake_argument(lake) or block_lake()
        self._check_identity_dimensions()
        self.storage_hash = compute_hash(type(self), config, "storage", self.hash_namespace)
        self.update_hash = compute_hash(type(self), config, "update", self.hash_namespace)
        self.logger = NodeLogger(type(self).__name__, self.update_hash)
        self._update_statistics: UpdateStatistics | None = None
        self._statistics_lake: Lake | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for a process pool without its computed statistics (a worker computes its own)."""
        return {**self.__dict__, "_update_statistics": None}

    def __getattr__(self, name: str) -> Any:
        """Only called for an attribute not found: one ``__init__`` sets is missing when a subclass's
        ``__init__`` never called ``super().__init__(config)``; say so instead of an AttributeError.
        Python also calls it when a property's getter raised an AttributeError."""
        if name in _SET_BY_INIT:
            raise ConfigurationError(f"{type(self).__name__}.__init__ must call super().__init__(config, **kwargs) "
                                     f"before the node is used ({name!r} is not set)")
        descriptor = getattr(type(self), name, None)
        if isinstance(descriptor, property) and descriptor.fget is not None:
            # the property exists and raised an AttributeError (e.g. a typo in get_asset_list, which
            # update_statistics calls): run it again so that error propagates, not "no attribute <name>"
            return descriptor.fget(self)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _check_identity_dimensions(self) -> None:
        dims = self.IDENTITY_DIMENSIONS
        if isinstance(dims, str) or len(set(dims)) != len(dims) or TIME_INDEX in dims:
            raise ConfigurationError(
                f"{type(self).__name__}.IDENTITY_DIMENSIONS must be a tuple of distinct names other than time_index"
            )
        for name in dims:
            problem = identity_name_problem(name)
            if problem:
                raise ConfigurationError(f"{type(self).__name__}.IDENTITY_DIMENSIONS: {problem}")
        declared = {record.column_name for record in getattr(self.config, "records", None) or []}
        indexes = [name for name in dims if name in declared]
        if indexes:
            raise ConfigurationError(
                f"{type(self).__name__}: records declare {indexes}, index level(s) by its IDENTITY_DIMENSIONS: "
                "records are the value columns only, so remove them from records")

    # -- to implement ---------------------------------------------------------------------------
    def dependencies(self) -> Mapping[str, BaseNode]:
        """The nodes this one reads, by a short name; they run first. (A Mapping, not ``dict``, so that
        the seeds' ``-> dict[str, Union["DataNode", "APIDataNode"]]`` is a valid override for mypy.)"""
        raise NotImplementedError(f"{type(self).__name__} must implement dependencies() (return {{}} if none)")

    def update(self) -> Any:
        """Return only the new rows since ``self.update_statistics``."""
        raise NotImplementedError(f"{type(self).__name__} must implement update()")

    def get_asset_list(self) -> list[Any] | None:
        """The assets this updater is responsible for (scopes its statistics); None = all."""
        return None

    def get_table_metadata(self) -> DataNodeMetaData | None:
        """The table's published metadata (identifier, description, frequency, labels); by default
        the configuration's ``node_metadata``. Override it for custom logic: what it returns is
        what the catalog records and the identifier the run claims."""
        return getattr(self.config, "node_metadata", None)

    def get_column_metadata(self) -> list[RecordDefinition] | None:
        """The columns' declared types, labels and descriptions; by default the configuration's
        ``records``. Override it for custom logic: the catalog records what it returns."""
        return getattr(self.config, "records", None)

    def checked_metadata(self) -> DataNodeMetaData | None:
        """``get_table_metadata()``, with it and ``get_column_metadata()`` checked: called before any
        write, so an override returning another shape (a dict, the platform's ``ColumnMetaData``)
        fails naming what to return, with nothing stored."""
        name = type(self).__name__
        table = self.get_table_metadata()
        if table is not None and not isinstance(table, DataNodeMetaData):
            raise ConfigurationError(
                f"{name}.get_table_metadata() must return a DataNodeMetaData or None, got {type(table).__name__}: "
                "e.g. DataNodeMetaData(identifier=..., description=..., data_frequency_id=...)")
        columns = self.get_column_metadata()
        if columns is not None and (not isinstance(columns, (list, tuple))
                                    or not all(isinstance(column, RecordDefinition) for column in columns)):
            shapes = sorted({type(column).__name__ for column in columns}) if isinstance(columns, (list, tuple)) else []
            got = f"a list of {', '.join(shapes)}" if shapes else type(columns).__name__
            raise ConfigurationError(
                f"{name}.get_column_metadata() must return a list of RecordDefinition (column_name, dtype, label, "
                f"description) or None, got {got}")
        return table

    @property
    def update_statistics(self) -> UpdateStatistics:
        """Statistics of this updater's scope; computed before ``update()`` and refreshed after the write.

        Computed again when this process has seen its table move on since (another instance of the
        node, or another updater of the table, wrote it: a dependency built twice in one tree, a
        driver running the tree every day), so a dependent never reads a stale watermark."""
        seen = None if self._update_statistics is None else self._seen_version()
        if (self._update_statistics is None or self._statistics_lake != self.lake  # another block's lake
                or (seen is not None and seen > self._update_statistics.progress.version)):
            self.update_statistics = self.compute_update_statistics()
        return self._update_statistics

    @update_statistics.setter
    def update_statistics(self, value: UpdateStatistics) -> None:
        self._update_statistics, self._statistics_lake = value, self.lake

    def _seen_version(self) -> int | None:
        """The version of the table this process last saw (no I/O), None when it has none open."""
        return seen_version(self.lake.table_uri(self.storage_hash), self.lake.storage_options)

    def compute_update_statistics(self, *, as_of: Any = None) -> UpdateStatistics:
        """Statistics of this updater's scope from the table's Delta metadata; ``as_of`` (a version
        or a datetime, as for reads) gives what the table held then (empty before it existed)."""
        offset_start = getattr(self.config, "offset_start", None) or self.OFFSET_START
        if not isinstance(offset_start, datetime.datetime):  # a class attribute is not validated (a string, a date)
            raise ConfigurationError(f"{type(self).__name__}.OFFSET_START must be a timezone-aware datetime, got "
                                     f"{type(offset_start).__name__} {offset_start!r}: e.g. "
                                     "datetime(2020, 1, 1, tzinfo=timezone.utc)")
        if offset_start.tzinfo is None:  # the config's field refuses naive values
            raise ConfigurationError(f"{type(self).__name__}.OFFSET_START {offset_start!r} has no time zone: "
                                     "give it one, e.g. datetime(2020, 1, 1, tzinfo=timezone.utc)")
        refuse_clock_problem(f"{type(self).__name__}.OFFSET_START", offset_start, ConfigurationError)
        try:  # the statistics' times are UTC, as the config's offset_start is
            offset_start = offset_start.astimezone(datetime.timezone.utc)
        except OverflowError:
            raise ConfigurationError(f"{type(self).__name__}.OFFSET_START {offset_start.isoformat()} is outside "
                                     "0001-01-01 .. 9999-12-31 in UTC") from None
        asset_list = asset_list_argument(self.get_asset_list(), f"{type(self).__name__}.get_asset_list()")
        no_table = False
        if as_of is None and not self.store.is_open():  # a cold process: the newest version's persisted progress
            progress = persisted_progress(self.lake, self.store.uri, lambda: read_progress(self.store.table(), self.lake).first)
            no_table = progress is NO_TABLE  # its log listing found no table: opening it would look again
            if no_table:
                self.store.note_missing()
            elif progress is not None:
                return UpdateStatistics(progress, asset_list=asset_list, offset_start=offset_start)
        table = None if no_table else self.store.table() if as_of is None else self.store.table_as_of(as_of)
        if table is None:
            _, index_names = self._declared_schema()
            return UpdateStatistics.empty(index_names, asset_list=asset_list, offset_start=offset_start,
                                          dimensions_known=bool(self.IDENTITY_DIMENSIONS))
        return UpdateStatistics(read_progress(table, self.lake), asset_list=asset_list, offset_start=offset_start)

    def _declared_schema(self) -> tuple[pa.Schema, tuple[str, ...]]:
        index_names: tuple[str, ...] = (TIME_INDEX,)
        asset_list = self.get_asset_list()
        if asset_list is not None and UNIQUE_IDENTIFIER not in self.IDENTITY_DIMENSIONS:
            index_names += (UNIQUE_IDENTIFIER,)
        index_names += tuple(self.IDENTITY_DIMENSIONS)
        fields = [(TIME_INDEX, timestamp_type())] + [(name, pa.string()) for name in index_names[1:]]
        for record in getattr(self.config, "records", None) or []:
            fields.append((record.column_name, _arrow_type(canonical_dtype(record.dtype))))
        return pa.schema(fields), index_names

    @property
    def source_class(self) -> str:
        return class_path(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(update_hash={self.update_hash!r}, storage_hash={self.storage_hash!r})"

