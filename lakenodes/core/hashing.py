"""Canonical serialization of configurations and the two hashes derived from it.

``storage_hash`` names the table (class name + config without update_only/runtime_only fields +
namespace); ``update_hash`` names one updater (class name + config without runtime_only fields +
namespace). Both are ``<prefix>_<32 hex>`` and identical in every process on every machine.

A class is identified by its own ``HASH_NAME`` class attribute when it sets one, else by its
``__qualname__`` -- never by its module, so a node hashes alike when run as a script
(``__main__``), imported, or loaded by ``lakenodes run path/to/file.py:Class``. The prefix is the
last dotted part of that name, lowercased and restricted to ``[a-z0-9_]`` (it names a folder).
See ``docs/identity.md``.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import dataclasses
import datetime
import decimal
import enum
import hashlib
import json
import math
import re
import unicodedata
import uuid
from collections.abc import Iterator, Mapping
from pathlib import PurePath
from typing import Any, Literal

from pydantic import BaseModel

from .._internal.datetimes import as_utc
from ..errors import ConfigurationError
from .config import field_markers

Scope = Literal["storage", "update"]
MAX_HASH_LENGTH = 63
HASH_NAME_ATTRIBUTE = "HASH_NAME"
_HEX_LENGTH = 32
_PREFIX_LENGTH = MAX_HASH_LENGTH - _HEX_LENGTH - 1
_FALLBACK_PREFIX = "node"
_NOT_PREFIX_CHARACTERS = re.compile(r"[^a-z0-9_]+")

_active_namespace: contextvars.ContextVar[str] = contextvars.ContextVar("lakenodes_hash_namespace", default="")


@contextlib.contextmanager
def hash_namespace(namespace: str) -> Iterator[str]:
    """Isolate every DataNode built (and run) inside the block in its own tables and updaters.

    A non-empty namespace changes both ``storage_hash`` and ``update_hash``.

    Example:
        >>> with hash_namespace("pytest_smoke"):
        ...     current_hash_namespace()
        'pytest_smoke'
    """
    if not isinstance(namespace, str):
        raise TypeError(f"hash_namespace expects a string, got {type(namespace).__name__}")
    namespace = checked_namespace(namespace)
    token = _active_namespace.set(namespace)
    try:
        yield namespace
    finally:
        _active_namespace.reset(token)


def checked_namespace(namespace: str) -> str:
    """``namespace`` without surrounding whitespace; one of only whitespace is refused: taken as
    ``""`` it would write to the production tables a namespace is there to keep apart.

    Example:
        >>> checked_namespace(" ci "), checked_namespace("")
        ('ci', '')
    """
    if namespace and not namespace.strip():
        raise ConfigurationError(
            f"hash namespace {namespace!r} is only whitespace: pass '' for the production tables or a name to isolate")
    return namespace.strip()


def current_hash_namespace() -> str:
    """The namespace of the innermost ``hash_namespace`` block ("" outside any block)."""
    return _active_namespace.get()


def class_path(cls: type) -> str:
    """Import path of a class, e.g. ``examples.nodes.DailyRandomNumber`` (for people; never hashed)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def class_identity(cls: type) -> str:
    """The name that identifies a class in both hashes: its own ``HASH_NAME``, else ``__qualname__``.

    ``HASH_NAME`` is read from the class itself only (a subclass does not inherit its parent's), so
    setting it keeps a class's hashes when it is moved to another module or renamed.

    Example:
        >>> class DailyRates:
        ...     pass
        >>> class Renamed:
        ...     HASH_NAME = "DailyRates"
        >>> class_identity(DailyRates), class_identity(Renamed)
        ('DailyRates', 'DailyRates')
    """
    override = cls.__dict__.get(HASH_NAME_ATTRIBUTE)
    if override is None:
        return cls.__qualname__
    if not isinstance(override, str) or not override.strip():
        raise ConfigurationError(
            f"{cls.__qualname__}.{HASH_NAME_ATTRIBUTE} must be a non-empty string, got {override!r}"
        )
    return override


def hash_prefix(name: str) -> str:
    """The readable start of a hash: the last dotted part of ``name``, safe as a folder name.

    Lowercase ``[a-z0-9_]`` only, starting with a letter, at most 30 characters, never empty.

    Example:
        >>> hash_prefix("mymod.DailyRates"), hash_prefix("../../escaped"), hash_prefix("Ünïcode"), hash_prefix("42")
        ('dailyrates', 'escaped', 'unicode', 'node_42')
    """
    last = name.rsplit(".", 1)[-1] or name
    ascii_name = "".join(ch for ch in unicodedata.normalize("NFKD", last) if not unicodedata.combining(ch))
    prefix = _NOT_PREFIX_CHARACTERS.sub("_", ascii_name.lower()).strip("_")
    if not prefix[:1].isalpha():
        prefix = f"{_FALLBACK_PREFIX}_{prefix}" if prefix else _FALLBACK_PREFIX
    return prefix[:_PREFIX_LENGTH].rstrip("_")


def canonical_value(value: Any, scope: Scope) -> Any:
    """Reduce ``value`` to JSON-ready data that is identical for identical inputs, everywhere.

    Fields marked runtime_only are dropped in both scopes; update_only ones in the storage scope.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, enum.Enum):
        return canonical_value(value.value, scope)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return repr(value)
        return float(repr(value))
    if _is_asset(value):
        return value.unique_identifier
    if _is_node(value):
        return value.update_hash
    if isinstance(value, BaseModel):
        return _model_payload(value, scope)
    if isinstance(value, datetime.datetime):
        return as_utc(value).isoformat()
    if isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
        return value.isoformat() if not isinstance(value, datetime.timedelta) else value.total_seconds()
    if isinstance(value, (decimal.Decimal, uuid.UUID, PurePath)):
        return str(value)
    if isinstance(value, type):
        return class_identity(value)
    if dataclasses.is_dataclass(value):
        return canonical_value(dataclasses.asdict(value), scope)
    if isinstance(value, Mapping):
        return {str(key): canonical_value(item, scope) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if items and all(_is_asset(item) for item in items):
            return sorted({item.unique_identifier for item in items})
        canonical = [canonical_value(item, scope) for item in items]
        if isinstance(value, (set, frozenset)):
            canonical.sort(key=lambda item: json.dumps(item, sort_keys=True))
        return canonical
    raise TypeError(
        f"cannot hash a value of type {type(value).__name__}: use JSON-like values, pydantic models, "
        "assets, datetimes or DataNodes in a configuration"
    )


def _model_payload(model: BaseModel, scope: Scope) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for name in type(model).model_fields:
        update_only, runtime_only = field_markers(type(model), name)
        if runtime_only or (update_only and scope == "storage"):
            continue
        payload[name] = canonical_value(getattr(model, name), scope)
    return payload


def compute_hash(node_class: type, config: BaseModel, scope: Scope, namespace: str = "") -> str:
    """Hash of a node class and its configuration in one scope (``storage`` or ``update``).

    Example:
        >>> from lakenodes.core.config import DataNodeConfiguration
        >>> compute_hash(DataNodeConfiguration, DataNodeConfiguration(), "storage")[:22]
        'datanodeconfiguration_'
    """
    identity = class_identity(node_class)
    document: dict[str, Any] = {"class": identity, "config": canonical_value(config, scope)}
    if namespace:
        document["namespace"] = namespace
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:_HEX_LENGTH]
    return f"{hash_prefix(identity)}_{digest}"


class HashedAsUid(abc.ABC):  # noqa: B024 - a marker: assets are registered, nothing is abstract
    """Values hashed as their ``unique_identifier`` (a collection of them as a sorted set): assets,
    registered by :mod:`lakenodes.catalog.assets` (core cannot import the layers above it)."""


class HashedAsUpdateHash(abc.ABC):  # noqa: B024 - a marker: nodes are registered
    """Values hashed as their ``update_hash``: nodes, registered by :mod:`lakenodes.nodes.node`."""


def _is_asset(value: Any) -> bool:
    return isinstance(value, HashedAsUid)


def _is_node(value: Any) -> bool:
    return isinstance(value, HashedAsUpdateHash)
