"""Field markers are read once per configuration class, not once per hashed instance; a class
redefined under the same name and models built by ``create_model`` each hash with their own
markers."""

from __future__ import annotations

from typing import Any

from pydantic import Field, create_model

from lakenodes import DataNodeConfiguration
from lakenodes.core.hashing import compute_hash


class CountingExtra(dict[str, Any]):
    """A ``json_schema_extra`` that counts how often its markers are looked up."""

    lookups = 0

    def get(self, key: str, default: Any = None) -> Any:
        type(self).lookups += 1
        return super().get(key, default)


class Owner:
    """The node class the hashes are computed for."""


def test_markers_are_read_once_per_class_not_once_per_hashed_instance() -> None:
    class Counted(DataNodeConfiguration):
        window: int = Field(5, json_schema_extra=CountingExtra(update_only=True))
        name: str = "x"

    CountingExtra.lookups = 0
    first = compute_hash(Owner, Counted(window=1), "update")
    after_one = CountingExtra.lookups
    hashes = [compute_hash(Owner, Counted(window=1, name=f"n{i}"), scope) for i in range(50)
              for scope in ("storage", "update")]

    assert CountingExtra.lookups == after_one
    assert first == compute_hash(Owner, Counted(window=1), "update")
    assert len(set(hashes)) == 100
    assert compute_hash(Owner, Counted(window=1), "storage") == compute_hash(Owner, Counted(window=9), "storage")


def _same_name_class(marker: str) -> type[DataNodeConfiguration]:
    class Tuned(DataNodeConfiguration):
        window: int = Field(5, json_schema_extra={marker: True})

    return Tuned


def test_a_class_redefined_under_the_same_name_hashes_with_its_own_markers() -> None:
    update_only, runtime_only = _same_name_class("update_only"), _same_name_class("runtime_only")
    assert update_only.__qualname__ == runtime_only.__qualname__

    for scope in ("storage", "update"):
        compute_hash(Owner, update_only(window=1), scope)  # read (and keep) the first class's markers
    assert compute_hash(Owner, runtime_only(window=1), "update") == compute_hash(Owner, runtime_only(window=2), "update")
    assert compute_hash(Owner, update_only(window=1), "update") != compute_hash(Owner, update_only(window=2), "update")


def test_models_built_by_create_model_hash_with_their_own_markers() -> None:
    models = [
        create_model("Dynamic", __base__=DataNodeConfiguration, window=(int, Field(5, json_schema_extra=extra)))
        for extra in ({}, {"update_only": True}, {"runtime_only": True})
    ]
    changed = [
        (compute_hash(Owner, model(window=1), "storage") != compute_hash(Owner, model(window=2), "storage"),
         compute_hash(Owner, model(window=1), "update") != compute_hash(Owner, model(window=2), "update"))
        for model in models
    ]
    assert changed == [(True, True), (False, True), (False, False)]
