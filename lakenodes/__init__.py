"""lakenodes: incremental, time-indexed DataNodes on an open Delta lakehouse.

The package is layered (see docs/architecture.md); imports go down only: errors and
``_internal`` → ``core`` → ``lake`` → ``catalog`` → ``nodes`` → ``runtime`` and ``search`` →
``facade`` → ``cli`` and ``testing``. This module re-exports the public API.

Example:
    >>> from lakenodes import DataNode, DataNodeConfiguration, Lake, use_lake
"""

from __future__ import annotations

import logging

from ._internal.caches import clear_caches
from .catalog.assets import Asset
from .catalog.catalog import repoint_identifier
from .core.config import DataFrequency, DataNodeConfiguration, DataNodeMetaData, RecordDefinition
from .core.frame_kind import default_frame, set_default_frame
from .core.hashing import hash_namespace
from .errors import (
    ConfigurationError,
    CorruptTableError,
    DependencyCycleError,
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
    VersionUnavailableError,
)
from .facade.meta_table import TimeIndexMetaTable
from .facade.node import DataNode
from .lake.location import Lake, current_lake, use_lake
from .nodes.node import APIDataNode
from .nodes.statistics import UpdateStatistics
from .runtime.run import RunSummary
from .runtime.schedule import run_many

logging.getLogger(__name__).addHandler(logging.NullHandler())

AssetMixin = Asset  # the seeds' name for the asset type (``list[msc.AssetMixin]``)

__version__ = "0.1.0"

__all__ = [
    "APIDataNode",
    "Asset",
    "AssetMixin",
    "ConfigurationError",
    "CorruptTableError",
    "DataFrequency",
    "DataNode",
    "DataNodeConfiguration",
    "DataNodeMetaData",
    "DependencyCycleError",
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
