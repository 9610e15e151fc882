"""Configuration models: what a DataNode is built from, and the field markers that steer hashing.

Mark a field ``json_schema_extra={"update_only": True}`` when it scopes one updater (it changes
``update_hash`` but not ``storage_hash``), or ``{"runtime_only": True}`` when it is descriptive
only (it changes neither hash). A marker set by a base class sticks to the field in every
subclass, however the subclass re-declares it (see ``docs/identity.md``).
"""

from __future__ import annotations

import datetime
import enum
import typing
import weakref
from collections.abc import Iterator, Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .._internal.caches import register_cache
from .._internal.datetimes import refuse_clock_problem
from ..errors import ConfigurationError
from .column_names import column_name_problem

UPDATE_ONLY = "update_only"
RUNTIME_ONLY = "runtime_only"


class DataFrequency(str, enum.Enum):
    """Observation frequency of a table (the seeds' values); plain strings like ``"1d"`` work too."""

    one_m = "1m"
    five_m = "5m"
    fifteen_m = "15m"
    one_h = "1h"
    one_d = "1d"
    one_w = "1w"
    one_mo = "1mo"
    one_q = "1q"
    one_y = "1y"

    def __str__(self) -> str:
        return self.value


_DTYPE_ALIASES = {
    "float": "float64", "float64": "float64", "float32": "float64", "double": "float64",
    "int": "int64", "int64": "int64", "int32": "int64", "int16": "int64", "int8": "int64", "integer": "int64",
    "bool": "bool", "boolean": "bool",
    "str": "string", "string": "string", "object": "string", "utf8": "string",
    "date": "date", "date32": "date", "datetime": "datetime", "timestamp": "datetime",
    "datetime64[ns, utc]": "datetime", "datetime64[us, utc]": "datetime", "datetime64[ms, utc]": "datetime",
}


def canonical_dtype(dtype: str) -> str:
    """Map a user dtype spelling (``float64``, ``str``, ``datetime64[ns, UTC]``…) to a lakenodes dtype."""
    key = str(dtype).strip().lower()
    if key not in _DTYPE_ALIASES:
        raise ConfigurationError(
            f"unknown dtype {dtype!r}: use one of float64, int64, bool, string, date, datetime"
        )
    return _DTYPE_ALIASES[key]


class RecordDefinition(BaseModel):
    """One value column of a table: its name, dtype and human description. ``dtype``: a name
    (``"float64"``, ``"int64"``, ``"bool"``, ``"string"``, ``"date"``, ``"datetime"``, or an alias such as
    ``"float"``, ``"str"``) or a type standing for one (``float``, ``numpy.int64``, ``polars.Float64``).

    Example:
        >>> RecordDefinition(column_name="close", dtype="float64", label="Close", description="Daily close")
        RecordDefinition(column_name='close', dtype='float64', label='Close', description='Daily close')
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    column_name: str
    dtype: str = "float64"
    label: str | None = Field(default=None, json_schema_extra={RUNTIME_ONLY: True})
    description: str | None = Field(default=None, json_schema_extra={RUNTIME_ONLY: True})

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype_named(cls, value: Any) -> Any:
        """A type stands for its name (``float``, ``numpy.float64``, ``polars.Float64``; ``pyarrow.float64()``
        for its text): was pydantic's "Input should be a valid string"; an unknown one is refused by name."""
        if isinstance(value, type):
            return value.__name__
        return value if isinstance(value, str) or value is None else str(value)

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str) -> str:
        return canonical_dtype(value)  # one spelling per dtype, so equivalent declarations hash alike

    @field_validator("column_name")
    @classmethod
    def _storable_name(cls, value: str) -> str:
        problem = column_name_problem(value)  # else no frame could ever match the declaration
        if problem:
            raise ValueError(problem)
        return value


class DataNodeMetaData(BaseModel):
    """Published table metadata: identifier, description, frequency and labels (never part of a hash).

    Example:
        >>> DataNodeMetaData(identifier="fx_ecb_daily_rates", data_frequency_id="1d").data_frequency_id
        '1d'
    """

    model_config = ConfigDict(extra="forbid")

    identifier: str | None = None
    description: str | None = None
    data_frequency_id: str | None = None
    labels: list[str] = Field(default_factory=list)

    @field_validator("data_frequency_id", mode="before")
    @classmethod
    def _frequency_value(cls, value: Any) -> Any:
        if isinstance(value, DataFrequency):
            return value.value
        if value is not None and str(value) not in {member.value for member in DataFrequency}:
            raise ValueError(f"unknown data_frequency_id {value!r}: use one of {[m.value for m in DataFrequency]}")
        return value

    @field_validator("identifier")
    @classmethod
    def _identifier_shape(cls, value: str | None) -> str | None:
        return None if value is None else checked_identifier(value)


def checked_records(records: list[RecordDefinition] | None) -> list[RecordDefinition] | None:
    """``records`` when they declare value columns: at least one, each once, no index column.

    Example:
        >>> checked_records([RecordDefinition(column_name="time_index", dtype="datetime")])
        Traceback (most recent call last):
        ...
        ValueError: records declares index column(s) ['time_index']: records are the value columns only
    """
    if records is None:
        return None
    if not records:
        raise ValueError("records is empty: declare the value columns, or leave records unset to take the frame's")
    names = [record.column_name for record in records]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"records declares column(s) {repeated} more than once")
    indexes = sorted(set(names) & {"time_index", "unique_identifier"})
    if indexes:
        raise ValueError(f"records declares index column(s) {indexes}: records are the value columns only")
    return records


def checked_identifier(identifier: Any) -> str:
    """``identifier`` when it can name a table: a string of 1-255 printable characters, not only spaces.

    Example:
        >>> checked_identifier("fx_rates_daily")
        'fx_rates_daily'
        >>> checked_identifier(" ")
        Traceback (most recent call last):
        ...
        lakenodes.errors.ConfigurationError: identifier ' ' must be 1-255 printable characters, not only spaces
    """
    if not isinstance(identifier, str):
        raise ConfigurationError(f"an identifier is a string, got {type(identifier).__name__} {identifier!r}")
    if not identifier.strip() or len(identifier) > 255 or any(ord(ch) < 32 for ch in identifier):
        raise ConfigurationError(f"identifier {identifier!r} must be 1-255 printable characters, not only spaces")
    return identifier


def check_field_markers(model: type[BaseModel], _seen: set[type] | None = None) -> None:
    """Check the markers of every field of ``model`` and of the models nested in its fields."""
    seen = set() if _seen is None else _seen
    if model in seen:
        return
    seen.add(model)
    for name, info in model.model_fields.items():
        field_markers(model, name)
        for nested in _nested_models(info.annotation):
            check_field_markers(nested, seen)


def _nested_models(annotation: Any) -> Iterator[type[BaseModel]]:
    """Pydantic models named by an annotation (``Inner``, ``list[Inner] | None``, ``dict[str, Inner]``…)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for argument in typing.get_args(annotation):
        yield from _nested_models(argument)


# model class -> (the ``__pydantic_fields__`` dicts along its MRO when read, {field: markers}). Keyed by
# the class object, weakly: a class redefined in a notebook, or built by ``create_model``, is a new
# key and a dropped class leaves; a rebuild (forward references resolved) replaces the fields
# dicts, so the entry is read again.
_markers_of: weakref.WeakKeyDictionary[type, tuple[tuple[Any, ...], dict[str, tuple[bool, bool]]]] = register_cache(
    "config.field_markers", weakref.WeakKeyDictionary()
)


def model_markers(model: type[BaseModel]) -> dict[str, tuple[bool, bool]]:
    """``{field: (update_only, runtime_only)}`` for every field of ``model``, read once per class
    (and again after the class is rebuilt); see :func:`field_markers`.

    Example:
        >>> model_markers(DataNodeConfiguration)["offset_start"]
        (True, False)
    """
    fields_dicts = tuple(owner.__dict__.get("__pydantic_fields__") for owner in model.__mro__)
    cached = _markers_of.get(model)
    if cached is not None and len(cached[0]) == len(fields_dicts) and all(
        seen is now for seen, now in zip(cached[0], fields_dicts, strict=True)
    ):
        return cached[1]
    markers = {name: _read_field_markers(model, name) for name in model.model_fields}
    _markers_of[model] = (fields_dicts, markers)
    return markers


def field_markers(model: type[BaseModel], name: str) -> tuple[bool, bool]:
    """Return ``(update_only, runtime_only)`` for a field, inherited along the class's MRO.

    A field keeps the marker any base class gives it however a subclass re-declares it (a plain
    default drops pydantic's ``json_schema_extra``, not lakenodes' marker). Both markers on one
    field, or a re-declaration that contradicts a base class's marker, is a ConfigurationError.

    Example:
        >>> class Tuned(DataNodeConfiguration):
        ...     offset_start: datetime.datetime | None = None  # still update_only
        >>> field_markers(Tuned, "offset_start")
        (True, False)
    """
    markers = model_markers(model)
    return markers[name] if name in markers else _read_field_markers(model, name)


def _read_field_markers(model: type[BaseModel], name: str) -> tuple[bool, bool]:
    """:func:`field_markers` read from the class and its bases' field definitions (uncached)."""
    marked_by: dict[str, type] = {}  # marker -> the most basic class that sets it (its origin)
    for owner in model.__mro__:
        fields = owner.__dict__.get("__pydantic_fields__")
        info = fields.get(name) if isinstance(fields, dict) else None
        for extra in (getattr(info, "json_schema_extra", None), *_alias_extras(getattr(info, "annotation", None))):
            for marker in (UPDATE_ONLY, RUNTIME_ONLY):
                if isinstance(extra, dict) and extra.get(marker):
                    marked_by[marker] = owner
    if len(marked_by) == 2:
        update_owner, runtime_owner = marked_by[UPDATE_ONLY], marked_by[RUNTIME_ONLY]
        if update_owner is runtime_owner:
            raise ConfigurationError(
                f"{model.__name__}.{name} is marked both update_only and runtime_only: choose one"
            )
        raise ConfigurationError(
            f"{model.__name__}.{name} is marked update_only by {update_owner.__name__} and runtime_only by "
            f"{runtime_owner.__name__}: a re-declared field keeps its base class's marker, so drop the conflicting one"
        )
    return UPDATE_ONLY in marked_by, RUNTIME_ONLY in marked_by


def _alias_extras(annotation: Any) -> Iterator[Any]:
    """The ``json_schema_extra`` of each ``Field(...)`` inside the type alias annotating a field, which pydantic
    keeps off the field (``type Batch = Annotated[list[str], Field(json_schema_extra={"update_only": True})]``).

    Example:
        >>> from typing_extensions import TypeAliasType
        >>> list(_alias_extras(TypeAliasType("Batch", typing.Annotated[list[str], Field(json_schema_extra={"a": 1})])))
        [{'a': 1}]
    """
    while True:
        if type(annotation).__name__ == "TypeAliasType":  # the `type` statement's, or typing_extensions'
            annotation = annotation.__value__
        elif typing.get_origin(annotation) is typing.Annotated:
            yield from (getattr(item, "json_schema_extra", None) for item in annotation.__metadata__)
            annotation = typing.get_args(annotation)[0]
        else:
            return


class DataNodeConfiguration(BaseModel):
    """Base class of every DataNode configuration (pydantic v2, unknown fields are rejected).

    Example:
        >>> class PricesConfig(DataNodeConfiguration):
        ...     window: int = 20
        >>> PricesConfig(window=5).window
        5
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    offset_start: datetime.datetime | None = Field(default=None, json_schema_extra={UPDATE_ONLY: True})
    records: list[RecordDefinition] | None = None
    node_metadata: DataNodeMetaData | None = Field(default=None, json_schema_extra={RUNTIME_ONLY: True})

    @classmethod
    def __pydantic_on_complete__(cls) -> None:
        # Called once the fields are resolved: at class definition, or at the rebuild that resolves
        # forward references (nested models are checked too).
        super().__pydantic_on_complete__()
        check_field_markers(cls)

    @field_validator("records", mode="before")
    @classmethod
    def _records_listed(cls, records: Any) -> Any:
        """One record where the list goes was read as its fields: pydantic's four "records.0 Input should
        be a valid dictionary" errors, each naming a (field, value) pair."""
        if isinstance(records, (RecordDefinition, Mapping, str)):
            raise ValueError(f"records must be a list of RecordDefinition, got one {type(records).__name__}: "
                             "wrap it, records=[RecordDefinition(...)]")
        return records

    @field_validator("records")
    @classmethod
    def _value_columns(cls, records: list[RecordDefinition] | None) -> list[RecordDefinition] | None:
        return checked_records(records)

    @model_validator(mode="after")
    def _checked_defaults(self) -> Self:
        """pydantic validates no default: records declared as the class's default (the seeds'
        ``Field(default_factory=lambda: [...])``), and an ``offset_start`` default (seed 000's
        ``Field(default=datetime(2024, 1, 1, tzinfo=pytz.utc))``), are checked here as given ones are."""
        if "records" not in self.model_fields_set:
            checked_records(self.records)
        if "offset_start" not in self.model_fields_set and self.offset_start is not None:
            if not isinstance(self.offset_start, datetime.datetime):
                raise ValueError(f"offset_start's default must be a timezone-aware datetime, got "
                                 f"{type(self.offset_start).__name__} {self.offset_start!r}: e.g. "
                                 "datetime(2024, 1, 1, tzinfo=timezone.utc)")
            self.__dict__["offset_start"] = aware_offset_start(self.offset_start)  # not marked as given
        return self

    @field_validator("offset_start")
    @classmethod
    def _aware_offset_start(cls, value: datetime.datetime | None) -> datetime.datetime | None:
        return aware_offset_start(value)


def aware_offset_start(value: datetime.datetime | None) -> datetime.datetime | None:
    """``offset_start`` in UTC; a naive one, one no UTC time can hold, or one its zone's clocks never
    showed (``clock_problem``) is a ValueError naming it.

    Example:
        >>> aware_offset_start(datetime.datetime(2024, 1, 1))
        Traceback (most recent call last):
        ...
        ValueError: offset_start must be timezone-aware (UTC), e.g. '2024-01-01T00:00:00+00:00'
    """
    if value is not None and value.tzinfo is None:
        raise ValueError("offset_start must be timezone-aware (UTC), e.g. '2024-01-01T00:00:00+00:00'")
    if value is not None:
        refuse_clock_problem("offset_start", value, ValueError)
    try:
        return value.astimezone(datetime.timezone.utc) if value is not None else None
    except OverflowError:  # year 1 east of UTC (or 9999 west of it) is no UTC time Python holds
        raise ValueError(f"offset_start {value.isoformat()} is outside 0001-01-01 .. 9999-12-31 in UTC") from None
