"""Catalog records: what the catalog stores about a table (``TableRecord``) and its columns."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from .._internal.deferred import pa
from ..core.frame_schema import logical_dtype
from ..lake.location import Lake, current_lake

_JSON_FIELDS = ("labels", "index_names", "columns", "build_configuration")


def table_uid(storage_hash: str) -> str:
    """Stable uid of a table: the same storage hash always gets the same uid."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"lakenodes:{storage_hash}"))


class ColumnMetadata(BaseModel):
    column_name: str
    dtype: str
    label: str | None = None
    description: str | None = None


class TableRecord(BaseModel):
    """Catalog record of one stored table (data only; ``lakenodes.TimeIndexMetaTable`` adds the
    seeds' methods in :mod:`lakenodes.facade.meta_table`).

    Example:
        >>> record = TableRecord(uid=table_uid("prices_0f3c"), storage_hash="prices_0f3c",
        ...                      table_uri="/lake/tables/prices_0f3c", labels=["fx"])
        >>> TableRecord.from_row(record.to_row()) == record
        True
    """

    model_config = ConfigDict(extra="ignore")

    uid: str
    storage_hash: str
    identifier: str | None = None
    namespace: str = ""
    description: str | None = None
    labels: list[str] = Field(default_factory=list)
    data_frequency_id: str | None = None
    index_names: list[str] = Field(default_factory=list)
    columns: list[ColumnMetadata] = Field(default_factory=list)
    source_class: str | None = None
    source_doc: str | None = None
    build_configuration: dict[str, Any] = Field(default_factory=dict)
    table_uri: str
    recorded_at: datetime.datetime | None = None
    deleted: bool = False

    _lake: Lake | None = PrivateAttr(default=None)

    @property
    def lake(self) -> Lake:
        """The lake this record was read from (its tables live there, wherever the lake was moved)."""
        if self._lake is not None:
            return self._lake
        root = self.table_uri.rsplit("/tables/", 1)[0]
        current = current_lake()
        return current if current.uri == root else Lake(root)

    def bound_to(self, lake: Lake) -> Self:
        """This record as read from ``lake``: its table URI is rebased onto the lake's root."""
        self.table_uri = lake.table_uri(self.storage_hash)
        self._lake = lake
        return self

    def to_row(self) -> dict[str, Any]:
        row = self.model_dump(exclude={"recorded_at"})
        row["columns"] = [column.model_dump() for column in self.columns]
        for name in _JSON_FIELDS:
            row[name] = json.dumps(row[name], sort_keys=True, default=str)
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        data = dict(row)
        for name in _JSON_FIELDS:
            data[name] = json.loads(data[name]) if data.get(name) else None
        data = {key: value for key, value in data.items() if value is not None}
        return cls(**data)


def columns_metadata(schema: pa.Schema, index_names: Sequence[str], records: Sequence[Any] | None) -> list[ColumnMetadata]:
    """Column metadata of a table: its schema's columns with the declared labels and descriptions."""
    declared = {record.column_name: record for record in records or []}
    columns = []
    for field in schema:
        record = declared.get(field.name)
        columns.append(ColumnMetadata(
            column_name=field.name,
            dtype=logical_dtype(field.type),
            label=record.label if record else None,
            description=record.description if record else ("index" if field.name in index_names else None),
        ))
    return columns
