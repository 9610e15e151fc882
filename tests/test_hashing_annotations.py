"""A nested model's class enters its hash only where its field's annotation does not fix it.

Each shape of annotation below fixes the class at every place (a tuple position, a mapping's
values, an alias, ``Annotated``, a dataclass field): such configurations keep the hashes they had
before class names were hashed at all (pinned from that release). Where the annotation leaves the
class open (a union of models at one place, a subclass), two equal-fielded models hash apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Annotated, Any, NewType, Optional, TypeVar

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypeAliasType

from lakenodes import DataNodeConfiguration
from lakenodes.core.hashing import canonical_value, compute_hash


class Leg(BaseModel):
    weight: float = 1.0


class Hedge(BaseModel):
    ratio: float = 0.5


class Twin(BaseModel):  # Hedge's fields under another name
    ratio: float = 0.5


class HeavyLeg(Leg):
    pass


LegList = TypeAliasType("LegList", list[Leg])
EitherHedge = TypeAliasType("EitherHedge", Hedge | Twin)


@dataclasses.dataclass
class Basket:
    leg: Leg
    legs: list[Leg]


class Positional(DataNodeConfiguration):
    pair: tuple[Leg, Hedge] = (Leg(), Hedge())


class Keyed(DataNodeConfiguration):
    book: dict[str, Leg] | Hedge = {"a": Leg(weight=2.0)}


class Aliased(DataNodeConfiguration):
    legs: LegList = [Leg(), Leg(weight=3.0)]


class Annotated_(DataNodeConfiguration):
    leg: Annotated[Leg, Field(description="one leg")] = Leg()


class OptionalList(DataNodeConfiguration):
    legs: Optional[list[Leg]] = [Leg()]  # noqa: UP045 - the spelling under test


class Variadic(DataNodeConfiguration):
    legs: tuple[Leg, ...] = (Leg(), Leg(weight=4.0))


class Sequenced(DataNodeConfiguration):
    legs: Sequence[Leg] = (Leg(),)


class Dataclassed(DataNodeConfiguration):
    basket: Basket = Basket(leg=Leg(), legs=[Leg(weight=5.0)])


# computed by the release before nested models' classes were hashed (commit 326f30f)
PINNED = {
    Positional: ("positional_18813a23a855025d511165d8a0016670", "positional_18ab68e5deb4a79a8551d3a6ccd23535"),
    Keyed: ("keyed_2b4662f126d19952034f900a644297d1", "keyed_9338f38c66cf0ff651ae9ead4c5e22c5"),
    Aliased: ("aliased_57049195ab42376ceaaaa913b8c83bb0", "aliased_8842c0bedbb380652ab65a454d7ddfa0"),
    Annotated_: ("annotated_eb9fb1a06b01efdc727a0c928eb5178a", "annotated_b51f5e08e6031c312f82479e3ff5bc45"),
    OptionalList: ("optionallist_e1b0231b8b939d03826dd3b037db8e8d", "optionallist_ec56e220cf53f46f7ada0b244cb77ec1"),
    Variadic: ("variadic_8485238b243119dafad8352cb97ed4eb", "variadic_1e38420f07861b13ee075e7e70ad82ec"),
    Sequenced: ("sequenced_91da2e01770e750c5f5d85240b0a4987", "sequenced_e1f2043e87dd659c983403386159f6dc"),
    Dataclassed: ("dataclassed_6266a979d38a69300f76ccf388d6bf8e", "dataclassed_b5610e8e1179332c2ebada24c2efb012"),
}


@pytest.mark.parametrize("config_class", list(PINNED), ids=lambda cls: cls.__name__)
def test_models_of_the_classes_their_annotation_fixes_keep_their_earlier_hashes(config_class):
    """Regression: every model class named anywhere in an annotation was merged, so a
    ``tuple[Leg, Hedge]``, a ``dict[str, Leg] | Hedge`` or an aliased field changed its table."""
    config = config_class()
    assert (compute_hash(config_class, config, "storage"), compute_hash(config_class, config, "update")) == \
        PINNED[config_class]
    assert "__model__" not in repr(canonical_value(config, "storage"))


class Open(DataNodeConfiguration):
    pair: tuple[Leg, Hedge | Twin] = (Leg(), Hedge())
    book: dict[str, Hedge | Twin] = {}
    aliased: EitherHedge = Hedge()
    legs: list[Leg] = []
    anything: Any = None


@pytest.mark.parametrize("field, first, second", [
    ("pair", (Leg(), Hedge()), (Leg(), Twin())),
    ("book", {"a": Hedge()}, {"a": Twin()}),
    ("aliased", Hedge(), Twin()),
    ("legs", [Leg()], [HeavyLeg()]),
    ("anything", Hedge(), Twin()),
])
def test_models_the_annotation_leaves_open_hash_apart(field, first, second):
    one, other = Open(**{field: first}), Open(**{field: second})
    assert compute_hash(Open, one, "storage") != compute_hash(Open, other, "storage")
    assert compute_hash(Open, one, "update") != compute_hash(Open, other, "update")


def test_only_the_open_place_records_a_class():
    payload = canonical_value(Open(pair=(Leg(), Twin())), "storage")
    assert payload["pair"] == [{"weight": 1.0}, {"ratio": 0.5, "__model__": "Twin"}]


LegType = NewType("LegType", Leg)
LegsType = NewType("LegsType", list[Leg])
T = TypeVar("T")
Pair = TypeAliasType("Pair", tuple[T, T], type_params=(T,))


class NewTyped(DataNodeConfiguration):
    leg: LegType = LegType(Leg())
    legs: LegsType = LegsType([Leg()])
    pair: Pair[Leg] = (Leg(), Leg(weight=2.0))


def test_newtypes_and_generic_aliases_are_seen_through():
    """Regression (review): NewType and a generic alias applied to a model hid the declared class."""
    assert "__model__" not in repr(canonical_value(NewTyped(), "storage"))
    assert (compute_hash(NewTyped, NewTyped(), "storage"), compute_hash(NewTyped, NewTyped(), "update")) == (
        "newtyped_20511f1d5ccb9e9295c45ec8c4e6271d", "newtyped_11530ac27b63b920ce1c44c70c8fe2bc")  # as 326f30f


def test_a_dataclass_field_whose_annotation_cannot_be_resolved_leaves_the_others_exact():
    """Regression (review): one unresolvable string annotation (a class defined in a function) made
    every field of the dataclass unresolved, so an ``Any`` field's models hashed alike."""
    def define():
        class Local(BaseModel):
            weight: float = 1.0

        @dataclasses.dataclass
        class Basket:
            leg: Local  # a string under `from __future__ import annotations`, naming a class gone with define()
            other: Any = None

        class Holder(DataNodeConfiguration):
            basket: Basket

        return Local, Basket, Holder

    local, basket, holder = define()
    with_hedge = canonical_value(holder(basket=basket(local(), Hedge())), "storage")["basket"]
    with_twin = canonical_value(holder(basket=basket(local(), Twin())), "storage")["basket"]
    assert with_hedge["leg"] == {"weight": 1.0}  # unresolved: hashed as before class names were hashed
    assert with_hedge["other"] != with_twin["other"]
