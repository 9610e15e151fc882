"""Tail deletes scoped by many identity coordinates (``delete_after_date(index_coordinates=...)``):
exact against rows selected in plain Python. The filter was one term per coordinate, which took
minutes past a few hundred coordinates; it is now one term per set of dimensions."""

from __future__ import annotations

import datetime as dt
import random

import polars as pl
import pytest

from lakenodes import DataNode, DataNodeConfiguration, Lake, TimeIndexMetaTable

UTC = dt.timezone.utc
DAYS = [dt.datetime(2024, 1, day, tzinfo=UTC) for day in range(1, 5)]
VENUES = ["V1", "V2", "X", "X:1"]
ASSETS = [f"A{i}" for i in range(800)] + ["1:Y", "Y", "Y:2", "2:Y"]  # keys a plain "venue:asset" join would confuse


class BookConfig(DataNodeConfiguration):
    name: str = "book"


class Book(DataNode):
    """Daily rows of every (venue, asset), partitioned by venue."""

    IDENTITY_DIMENSIONS = ("venue", "unique_identifier")

    def dependencies(self) -> dict:
        return {}

    def update(self) -> pl.DataFrame:
        rows = [(day, venue, asset, float(n)) for n, (day, venue, asset) in
                enumerate((day, venue, asset) for day in DAYS for venue in VENUES for asset in ASSETS)]
        return pl.DataFrame(rows, schema=["time_index", "venue", "unique_identifier", "close"], orient="row")


def coordinates(seed: int) -> list[dict[str, str]]:
    """2,000 (venue, asset) pairs, a few assets on every venue, and the keys a join could confuse."""
    plain = [(venue, asset) for venue in VENUES for asset in ASSETS if asset.startswith("A")]
    chosen = [{"venue": venue, "unique_identifier": asset} for venue, asset in random.Random(seed).sample(plain, 2000)]
    chosen += [{"unique_identifier": asset} for asset in ("A7", "A11", "Y:2")]
    # ("X", "1:Y") but not ("X:1", "Y"): both are "X:1:Y" joined with ":"
    chosen.append({"unique_identifier": "1:Y", "venue": "X"})
    return chosen


def selected_in_python(rows: list[dict], cut: dt.datetime, scope: list[dict[str, str]]) -> list[dict]:
    """The rows a delete of ``scope`` from ``cut`` removes, by plain Python comparisons."""
    keys: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for coordinate in scope:
        dims = tuple(sorted(coordinate))
        keys.setdefault(dims, set()).add(tuple(coordinate[dim] for dim in dims))
    return [row for row in rows if row["time_index"] >= cut
            and any(tuple(row[dim] for dim in dims) in values for dims, values in keys.items())]


def by_index(rows: list[dict]) -> list[tuple]:
    return sorted((row["time_index"], row["venue"], row["unique_identifier"], row["close"]) for row in rows)


@pytest.mark.parametrize("seed", [1, 2])
def test_delete_after_date_with_2000_coordinates_deletes_exactly_their_rows(local_lake: Lake, seed: int) -> None:
    node = Book(BookConfig())
    node.run()
    before = node.get_df_between_dates().to_dicts()
    table = TimeIndexMetaTable.get(storage_hash=node.storage_hash)
    cut, scope = DAYS[2], coordinates(seed)
    expected = selected_in_python(before, cut, scope)
    assert 2000 < len(expected) < len(before) // 2  # a real share of the rows, not all of them
    assert {(row["venue"], row["unique_identifier"]) for row in expected if "Y" in row["unique_identifier"]} == \
        {("X", "1:Y"), *((venue, "Y:2") for venue in VENUES)}

    counted = table.delete_after_date(cut, index_coordinates=scope, dry_run=True)
    assert counted["deleted_count"] == len(expected)
    done = table.delete_after_date(cut, index_coordinates=scope)

    assert done["deleted_count"] == len(expected)
    gone = set(by_index(expected))
    assert by_index(node.get_df_between_dates().to_dicts()) == [row for row in by_index(before) if row not in gone]


def test_many_coordinates_are_one_filter_term_per_set_of_dimensions() -> None:
    """The delete's filter for 2,000 coordinates: one ``is_in`` per set of dimensions (was 2,004
    terms, one per coordinate: evaluated term by term on every file's rows)."""
    from lakenodes.lake._ranges import coordinates_filter

    expression = str(coordinates_filter(coordinates(1)))
    assert expression.count("is_in(") == 2 and expression.count(" or ") == 1, expression[:300]
    assert coordinates_filter([{"unique_identifier": "A1"}, {}]) is None  # an empty coordinate: every identity
