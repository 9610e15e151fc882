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
import collections
import collections.abc
import contextvars
import dataclasses
import datetime
import decimal
import enum
import hashlib
import json
import math
import re
import sys
import types
import typing
import unicodedata
import uuid
from collections.abc import Iterator, Mapping
from pathlib import PurePath
from typing import Any, Literal

from pydantic import BaseModel

from .._internal.blocks import with_block
from .._internal.datetimes import as_utc
from ..errors import ConfigurationError
from .config import model_markers

Scope = Literal["storage", "update"]
MAX_HASH_LENGTH = 63
HASH_NAME_ATTRIBUTE = "HASH_NAME"
_HEX_LENGTH = 32
_PREFIX_LENGTH = MAX_HASH_LENGTH - _HEX_LENGTH - 1
_FALLBACK_PREFIX = "node"
_CLASS_KEY = "__model__"  # a nested model's class, when its field does not determine it
_MAPPINGS = {dict, collections.abc.Mapping, collections.abc.MutableMapping, collections.OrderedDict,
             collections.defaultdict}
_COLLECTIONS = {list, set, frozenset, collections.abc.Sequence, collections.abc.MutableSequence,
                collections.abc.Set, collections.abc.MutableSet, collections.abc.Collection,
                collections.abc.Iterable, collections.deque}
_NOT_PREFIX_CHARACTERS = re.compile(r"[^a-z0-9_]+")

_active_namespace: contextvars.ContextVar[str] = contextvars.ContextVar("lakenodes_hash_namespace", default="")


@with_block
def hash_namespace(namespace: str) -> Iterator[str]:
    """Isolate every DataNode built (and run) inside the block in its own tables and updaters.

    A non-empty namespace changes both ``storage_hash`` and ``update_hash``.

    Example:
        >>> from lakenodes.core.hashing import current_hash_namespace
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
    """``namespace``, refused (``ConfigurationError``) when only whitespace (taken as ``""`` it would
    write to the production tables a namespace is there to keep apart) or when whitespace surrounds
    it (``"ci "``, a stray space in a scheduler's command: silently ``"ci"`` or a namespace apart).

    Example:
        >>> checked_namespace("ci"), checked_namespace("")
        ('ci', '')
        >>> checked_namespace("ci ")
        Traceback (most recent call last):
        ...
        lakenodes.errors.ConfigurationError: hash namespace 'ci ' starts or ends with whitespace: pass 'ci'
    """
    if not isinstance(namespace, str):  # repoint_identifier(..., namespace=5) raised AttributeError 'strip'
        raise ConfigurationError(f"hash namespace must be a string, got {type(namespace).__name__} {namespace!r}")
    if namespace and not namespace.strip():
        raise ConfigurationError(
            f"hash namespace {namespace!r} is only whitespace: pass '' for the production tables or a name to isolate")
    if namespace != namespace.strip():
        raise ConfigurationError(f"hash namespace {namespace!r} starts or ends with whitespace: pass {namespace.strip()!r}")
    return namespace


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
    A nested model whose class is not the one its field declares (a union's member, a subclass, a
    model in an ``Any`` field) is hashed with its class, so different models never share a table.
    NumPy scalars hash as the Python values they equal. Raises ConfigurationError naming the
    value's place for a value that cannot be hashed.

    Example:
        >>> canonical_value({"b": [2.0, -0.0], "a": datetime.date(2026, 1, 31)}, "storage")
        {'b': [2.0, 0.0], 'a': '2026-01-31'}
    """
    try:
        return _canonical(value, scope, None)
    except _Unhashable as error:
        where = f" at {''.join(reversed(error.path)).lstrip('.')}" if error.path else ""
        raise ConfigurationError(
            f"cannot hash the configuration value{where}: {error}; use JSON-like values, pydantic models, "
            "assets, datetimes or DataNodes in a configuration") from None


class _Unhashable(TypeError):
    """A value ``canonical_value`` cannot reduce; ``path`` is filled in (innermost first) on the way out."""

    def __init__(self, message: str):
        super().__init__(message)
        self.path: list[str] = []


def _canonical(value: Any, scope: Scope, declared: tuple[Any, ...] | None) -> Any:
    """``canonical_value``; ``declared``: the alternatives the annotation allows at this place
    (see ``_alternatives``), None for the configuration itself."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, enum.Enum):
        return _canonical(value.value, scope, None)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return repr(float(value))
        return float(repr(float(value))) if value else 0.0  # -0.0 == 0.0; np.float64 as the float it equals
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):  # np.int64(5) == 5; an array as its list
        return _canonical(value.tolist(), scope, declared)
    if _is_asset(value):
        return value.unique_identifier
    if _is_node(value):
        return value.update_hash
    if isinstance(value, BaseModel):
        payload = _model_payload(value, scope)
        if declared is not None and _model_classes(declared) != {type(value)}:
            payload[_CLASS_KEY] = class_identity(type(value))
        return payload
    if isinstance(value, datetime.datetime):
        return as_utc(value).isoformat()
    if isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
        return value.isoformat() if not isinstance(value, datetime.timedelta) else value.total_seconds()
    if isinstance(value, (decimal.Decimal, uuid.UUID, PurePath)):
        return str(value)
    if isinstance(value, type):
        return class_identity(value)
    if dataclasses.is_dataclass(value):
        return {field.name: _within(f".{field.name}", getattr(value, field.name), scope, declared_field)
                for field, declared_field in _dataclass_fields(type(value))}
    if isinstance(value, Mapping):
        items_declared = _inner(declared, _mapping_value)
        return {str(key): _within(f"[{key!r}]", item, scope, items_declared) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if items and all(_is_asset(item) for item in items):
            return sorted({item.unique_identifier for item in items})
        canonical = [_within(f"[{index}]", item, scope, _inner(declared, lambda arm, i=index: _collection_item(arm, i)))
                     for index, item in enumerate(items)]
        if isinstance(value, (set, frozenset)):
            canonical.sort(key=lambda item: json.dumps(item, sort_keys=True))
        return canonical
    raise _Unhashable(f"a value of type {type(value).__name__} ({value!r})")


def _within(step: str, value: Any, scope: Scope, declared: tuple[Any, ...] | None) -> Any:
    try:
        return _canonical(value, scope, declared)
    except _Unhashable as error:
        error.path.append(step)
        raise


def _model_payload(model: BaseModel, scope: Scope) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    markers = model_markers(type(model))
    for name, field in type(model).model_fields.items():
        update_only, runtime_only = markers[name]
        if runtime_only or (update_only and scope == "storage"):
            continue
        payload[name] = _within(f".{name}", getattr(model, name), scope, _alternatives(field.annotation))
    return payload


def _alternatives(annotation: Any) -> tuple[Any, ...]:
    """The types an annotation allows at one place: unions, ``Annotated`` and type aliases seen through.

    Example:
        >>> _alternatives(typing.Annotated[int | None, "note"])
        (<class 'int'>, <class 'NoneType'>)
    """
    annotation = _unaliased(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _alternatives(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return tuple(arm for argument in typing.get_args(annotation) for arm in _alternatives(argument))
    return (annotation,)


def _unaliased(annotation: Any) -> Any:
    """``annotation`` with type aliases (``type X = ...``, ``TypeAliasType``, generic ones applied to
    their arguments) and ``NewType``\\ s replaced by what they stand for."""
    while True:
        origin = typing.get_origin(annotation)
        if type(annotation).__name__ == "TypeAliasType":
            annotation = annotation.__value__
        elif type(origin).__name__ == "TypeAliasType":  # Pair[Leg] of `type Pair[T] = tuple[T, T]`
            try:
                annotation = origin.__value__[typing.get_args(annotation)]
            except TypeError:  # an alias of a value that takes no arguments
                return annotation
        elif isinstance(annotation, typing.NewType):
            annotation = annotation.__supertype__
        else:
            return annotation


def _inner(declared: tuple[Any, ...] | None, item_annotation: Any) -> tuple[Any, ...]:
    """What ``declared`` allows one level down (a mapping's values, a collection's n-th item)."""
    found: list[Any] = []
    for arm in declared or ():
        annotation = item_annotation(arm)
        if annotation is not None:
            found.extend(_alternatives(annotation))
    return tuple(found)


def _mapping_value(arm: Any) -> Any:
    arguments = typing.get_args(arm)
    return arguments[1] if typing.get_origin(arm) in _MAPPINGS and len(arguments) == 2 else None


def _collection_item(arm: Any, index: int) -> Any:
    origin, arguments = typing.get_origin(arm), typing.get_args(arm)
    if origin is tuple and arguments:
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return arguments[0]
        return arguments[index] if index < len(arguments) else None
    return arguments[0] if origin in _COLLECTIONS and arguments else None


def _model_classes(declared: tuple[Any, ...]) -> set[type]:
    return {arm for arm in declared if isinstance(arm, type) and issubclass(arm, BaseModel)}


def _dataclass_fields(cls: type) -> Iterator[tuple[dataclasses.Field, tuple[Any, ...] | None]]:
    """Each field of a dataclass with what its annotation allows; None (no class recorded, as for
    a configuration itself) when its annotation is a string that cannot be resolved here."""
    module = sys.modules.get(cls.__module__)
    namespace = {**(vars(module) if module is not None else {}), **vars(cls)}
    for field in dataclasses.fields(cls):
        if not isinstance(field.type, str):
            yield field, _alternatives(field.type)
            continue
        try:  # `from __future__ import annotations`: each field on its own, as typing.get_type_hints would
            declared = _alternatives(eval(field.type, namespace))  # noqa: S307
        except Exception:  # noqa: BLE001 - a name of a scope gone (a class defined in a function)
            declared = None
        yield field, declared


def compute_hash(node_class: type, config: BaseModel, scope: Scope, namespace: str = "") -> str:
    """Hash of a node class and its configuration in one scope (``storage`` or ``update``).

    Example:
        >>> from lakenodes.core.config import DataNodeConfiguration
        >>> compute_hash(DataNodeConfiguration, DataNodeConfiguration(), "storage")[:22]
        'datanodeconfiguration_'
    """
    return _hash_as(class_identity(node_class), config, scope, namespace)


def import_path_hash(node_class: type, config: BaseModel, scope: Scope, namespace: str = "") -> str | None:
    """The hash lakenodes gave a node before classes were identified without their module (the
    class's import path in place of its ``HASH_NAME`` or ``__qualname__``, as ``HASH_NAME`` set to
    that path reproduces); None when the class sets ``HASH_NAME`` (docs/identity.md, "Upgrading").

    Example:
        >>> from lakenodes.core.config import DataNodeConfiguration
        >>> old = import_path_hash(DataNodeConfiguration, DataNodeConfiguration(), "storage")
        >>> old[:22], old == compute_hash(DataNodeConfiguration, DataNodeConfiguration(), "storage")
        ('datanodeconfiguration_', False)
    """
    if HASH_NAME_ATTRIBUTE in node_class.__dict__:
        return None
    return _hash_as(class_path(node_class), config, scope, namespace)


def _hash_as(identity: str, config: BaseModel, scope: Scope, namespace: str) -> str:
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
