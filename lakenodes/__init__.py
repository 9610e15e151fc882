"""lakenodes: incremental, time-indexed DataNodes on an open Delta lakehouse.

Example:
    >>> from lakenodes import DataNode, DataNodeConfiguration, Lake, use_lake
"""

from __future__ import annotations

import logging

from .assets import Asset
from .catalog import TimeIndexMetaTable, repoint_identifier
from .config import DataFrequency, DataNodeConfiguration, DataNodeMetaData, RecordDefinition
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
)
from .frame_kind import default_frame, set_default_frame
from .hashing import hash_namespace
from .lake import Lake, current_lake, use_lake
from .node import APIDataNode, DataNode
from .runner import run_many
from .statistics import UpdateStatistics

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
    "SchemaMismatchError",
    "StorageError",
    "StorageFullError",
    "StoragePermissionError",
    "TimeIndexMetaTable",
    "UpdateStatistics",
    "current_lake",
    "default_frame",
    "hash_namespace",
    "repoint_identifier",
    "run_many",
    "set_default_frame",
    "use_lake",
]
