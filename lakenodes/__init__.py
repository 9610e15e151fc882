"""lakenodes: incremental, time-indexed DataNodes on an open Delta lakehouse.

The package is layered (see docs/architecture.md); imports go down only: errors and
``_internal`` → ``core`` → ``lake`` → ``catalog`` → ``nodes`` → ``runtime`` and ``search`` →
``facade`` → ``cli`` and ``testing``. This module re-exports the public API.

Example:
    >>> from lakenodes import DataNode, DataNodeConfiguration, Lake, use_lake
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from .errors import (
    ConcurrentCreationError,
    ConfigurationError,
    CorruptTableError,
    DependencyCycleError,
    FileTooLargeError,
    ForkedProcessError,
    FrameValidationError,
    IdentifierConflictError,
    LakeConfigurationError,
    LakenodesError,
    LakenodesUserError,
    NodeRunError,
    NotFoundError,
    PathTooLongError,
    ReadOnlyStorageError,
    RowsStoredError,
    SchemaMismatchError,
    StorageError,
    StorageFullError,
    StoragePermissionError,
    UnreadableFileError,
    VersionUnavailableError,
)

if TYPE_CHECKING:
    from ._internal.caches import clear_caches
    from .catalog.assets import Asset
    from .catalog.assets import Asset as AssetMixin
    from .catalog.catalog import repoint_identifier
    from .core.config import DataFrequency, DataNodeConfiguration, DataNodeMetaData, RecordDefinition
    from .core.frame_kind import default_frame, set_default_frame
    from .core.hashing import hash_namespace
    from .facade.meta_table import TimeIndexMetaTable
    from .facade.node import DataNode
    from .lake.location import Lake, current_lake, use_lake
    from .nodes.api_node import APIDataNode
    from .nodes.statistics import UpdateStatistics
    from .runtime.run import RunSummary
    from .runtime.schedule import run_many

# Public names loaded on first use (PEP 562), so ``import lakenodes`` stays cheap: the module each
# comes from, and its name there (``AssetMixin`` is the seeds' name for ``Asset``).
_LAZY: dict[str, tuple[str, str]] = {
    "clear_caches": ("._internal.caches", "clear_caches"),
    "Asset": (".catalog.assets", "Asset"),
    "AssetMixin": (".catalog.assets", "Asset"),
    "repoint_identifier": (".catalog.catalog", "repoint_identifier"),
    **{name: (".core.config", name)
       for name in ("DataFrequency", "DataNodeConfiguration", "DataNodeMetaData", "RecordDefinition")},
    "default_frame": (".core.frame_kind", "default_frame"),
    "set_default_frame": (".core.frame_kind", "set_default_frame"),
    "hash_namespace": (".core.hashing", "hash_namespace"),
    "TimeIndexMetaTable": (".facade.meta_table", "TimeIndexMetaTable"),
    "DataNode": (".facade.node", "DataNode"),
    **{name: (".lake.location", name) for name in ("Lake", "current_lake", "use_lake")},
    "APIDataNode": (".nodes.api_node", "APIDataNode"),
    "UpdateStatistics": (".nodes.statistics", "UpdateStatistics"),
    "RunSummary": (".runtime.run", "RunSummary"),
    "run_many": (".runtime.schedule", "run_many"),
}


# the platform's names a port of the seeds meets, with what stands in for each here
_PLATFORM_ONLY = {
    "PlatformTimeIndexMetaTable": "the platform's table of a table; here the Delta table's schema is the contract "
                                  "(drop it, and storage_table=, from the node)",
    "TableMetaData": "use DataNodeMetaData (identifier, description, data_frequency_id, labels)",
    "ColumnMetaData": "use RecordDefinition (column_name, dtype, label, description), as get_column_metadata() returns",
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use (``from lakenodes import DataNode`` works as always).

    A platform name a port of the seeds imports is an ImportError saying what to use instead
    (an AttributeError would reach ``from lakenodes import ...`` as Python's bare "cannot import").

    Example:
        >>> from lakenodes import TableMetaData
        Traceback (most recent call last):
        ImportError: Main Sequence's TableMetaData has no counterpart in lakenodes: use DataNodeMetaData (identifier, description, data_frequency_id, labels)
    """
    if name in _PLATFORM_ONLY:
        raise ImportError(f"Main Sequence's {name} has no counterpart in lakenodes: {_PLATFORM_ONLY[name]}",
                          name=__name__)
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "APIDataNode",
    "Asset",
    "AssetMixin",
    "ConcurrentCreationError",
    "ConfigurationError",
    "CorruptTableError",
    "DataFrequency",
    "DataNode",
    "DataNodeConfiguration",
    "DataNodeMetaData",
    "DependencyCycleError",
    "FileTooLargeError",
    "ForkedProcessError",
    "FrameValidationError",
    "IdentifierConflictError",
    "Lake",
    "LakeConfigurationError",
    "LakenodesError",
    "LakenodesUserError",
    "NodeRunError",
    "NotFoundError",
    "PathTooLongError",
    "ReadOnlyStorageError",
    "RecordDefinition",
    "RowsStoredError",
    "RunSummary",
    "SchemaMismatchError",
    "StorageError",
    "StorageFullError",
    "StoragePermissionError",
    "TimeIndexMetaTable",
    "UnreadableFileError",
    "UpdateStatistics",
    "VersionUnavailableError",
    "clear_caches",
    "current_lake",
    "default_frame",
    "hash_namespace",
    "repoint_identifier",
    "run_many",
    "set_default_frame",
    "use_lake",
]
