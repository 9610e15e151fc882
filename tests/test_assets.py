"""Asset registry: registration is idempotent and concurrency-safe; lookups; identifiers round-trip."""

from __future__ import annotations

import datetime
import multiprocessing

import pytest
from pydantic import ValidationError

from lakenodes import Asset, Lake, LakenodesUserError, NotFoundError
from lakenodes.catalog.assets import _ledger

ODD_UIDS = ["BRK/B", "A B", "é=1%", "x'y", "a=b/c", "日本", "0700"]
LONGEST_UIDS = ["x" * 237, "é" * 39, "日" * 26]  # partition folder names of 255, 252 and 252 bytes


def specs(uids):
    return [{"unique_identifier": uid, "snapshot": {"ticker": uid.upper(), "name": f"name {uid}"}} for uid in uids]


def test_register_filter_get(any_lake):
    registered = Asset.batch_get_or_register_custom_assets(specs(["NVDA", "AAPL", *ODD_UIDS]))
    assert [a.unique_identifier for a in registered] == ["NVDA", "AAPL", *ODD_UIDS]
    assert {a.unique_identifier for a in Asset.filter(ticker__in=["NVDA", "AAPL"])} == {"NVDA", "AAPL"}
    assert Asset.get(unique_identifier="é=1%").name == "name é=1%"
    assert {a.unique_identifier for a in Asset.filter(unique_identifier__in=ODD_UIDS)} == set(ODD_UIDS)
    with pytest.raises(NotFoundError):
        Asset.get(ticker="MSFT")
    with pytest.raises(LakenodesUserError, match="unknown field 'colour'"):
        Asset.filter(colour="red")


def test_registration_is_idempotent(local_lake):
    twice = Asset.batch_get_or_register_custom_assets(specs(["NVDA", "AAPL", "NVDA"]))  # alike twice: harmless
    assert [a.unique_identifier for a in twice] == ["NVDA", "AAPL", "NVDA"] and len(Asset.filter()) == 2
    versions = _ledger(local_lake)._store.table().version()
    again = Asset.batch_get_or_register_custom_assets(specs(["NVDA", "AAPL"]))
    assert [a.unique_identifier for a in again] == ["NVDA", "AAPL"]
    assert _ledger(local_lake)._store.table().version() == versions  # nothing committed
    Asset.batch_get_or_register_custom_assets([{"unique_identifier": "NVDA", "snapshot": {"ticker": "NVDA", "name": "NVIDIA Corp"}}])
    assert Asset.get(unique_identifier="NVDA").name == "NVIDIA Corp"
    assert len(Asset.filter()) == 2


@pytest.mark.parametrize("bad, message", [
    ({"snapshot": {}}, "unique_identifier"),
    ({"unique_identifier": ""}, "empty"),
    ({"unique_identifier": "x" * 300}, "limit is 255"),
    ({"unique_identifier": "../etc"}, "path segments"),
    ({"unique_identifier": "a\nb"}, "control characters"),
    ({"unique_identifier": "__HIVE_DEFAULT_PARTITION__"}, "'__HIVE_DEFAULT_PARTITION__': reserved: folder-name readers"),
    ({"unique_identifier": "NULL"}, "'NULL': reserved: .*read it back as null"),
    ({"unique_identifier": "x" * 238}, "unique_identifier=xxx.* would be 256 bytes; the limit is 255"),
    ({"unique_identifier": "é" * 40}, "258 bytes"),
    ({"unique_identifier": "日" * 27}, "261 bytes"),
    ({"unique_identifier": "ok", "snapshot": "not a dict"}, "mapping"),
    # regressions: raw TypeErrors
    ({"unique_identifier": "ok", "snapshot": {"listed": datetime.date(2020, 1, 2)}},
     "asset 'ok': its snapshot cannot be stored .*date is not JSON serializable.*nothing was registered"),
    ({"unique_identifier": "ok", "snapshot": {"unique_identifier": "other"}},
     "asset 'ok': its snapshot names another unique_identifier 'other'"),
    # regression: both were returned while only the second was stored
    ({"unique_identifier": "AAPL", "snapshot": {"ticker": "AAPL2"}},
     r"asset 'AAPL' is given twice with different snapshots \(\{.*\"ticker\": \"AAPL\"\} and \{.*\"ticker\": \"AAPL2\"\}\)"),
])
def test_bad_assets_rejected_and_nothing_stored(local_lake, bad, message):
    Asset.batch_get_or_register_custom_assets(specs(["NVDA"]))
    before = _ledger(local_lake)._store.table().version()
    with pytest.raises((LakenodesUserError, ValidationError), match=message):
        Asset.batch_get_or_register_custom_assets([*specs(["AAPL"]), bad])
    assert [a.unique_identifier for a in Asset.filter()] == ["NVDA"]
    assert _ledger(local_lake)._store.table().version() == before


@pytest.mark.parametrize("bad", ["AAPL", {"unique_identifier": "AAPL", "snapshot": {"ticker": "AAPL"}}])
def test_one_asset_not_wrapped_in_a_list_is_named_as_such(local_lake, bad):
    """Regression: a bare string or a single asset dict was iterated: the error said "each asset needs a
    'unique_identifier', got 'A'" (or "got 'unique_identifier'")."""
    Asset.batch_get_or_register_custom_assets(specs(["NVDA"]))
    before = _ledger(local_lake)._store.table().version()
    with pytest.raises(LakenodesUserError, match=f"assets must be a list of asset dicts, got a {type(bad).__name__} "):
        Asset.batch_get_or_register_custom_assets(bad)
    assert [a.unique_identifier for a in Asset.filter()] == ["NVDA"]
    assert _ledger(local_lake)._store.table().version() == before


def test_longest_identifiers_register_and_round_trip(local_lake):
    Asset.batch_get_or_register_custom_assets(specs(LONGEST_UIDS))
    assert sorted(a.unique_identifier for a in Asset.filter()) == sorted(LONGEST_UIDS)


def test_identifiers_stored_before_a_stricter_rule_still_list(local_lake):
    """Registry reads never re-validate: a uid registered before it was refused does not break lookups."""
    _ledger(local_lake).append([{"unique_identifier": "NULL", "snapshot": '{"ticker": "NUL"}'}])
    Asset.batch_get_or_register_custom_assets(specs(["NVDA"]))
    assert sorted(a.unique_identifier for a in Asset.filter()) == ["NULL", "NVDA"]
    assert Asset.get(ticker="NUL").unique_identifier == "NULL"


def _register(uri, uids, start, results):
    start.wait()
    Asset.batch_get_or_register_custom_assets(specs(uids), lake=Lake(uri))
    results.put("ok")


def test_concurrent_registration_loses_nothing(tmp_path):
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(3), context.Queue()
    uri = str(tmp_path / "lake")
    batches = [["A", "B", "C"], ["B", "C", "D"], ["E", "A"]]
    processes = [context.Process(target=_register, args=(uri, batch, start, results)) for batch in batches]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [results.get(timeout=5) for _ in processes] == ["ok"] * 3
    assert sorted(a.unique_identifier for a in Asset.filter(lake=Lake(uri))) == ["A", "B", "C", "D", "E"]


def test_lookups_take_any_iterable_and_fields_some_snapshots_lack(local_lake):
    """Regression: an ``__in`` generator was used up by the first asset (one match instead of two),
    and a field only some snapshots hold (``sector``) was an "unknown field" error."""
    Asset.batch_get_or_register_custom_assets([*specs(["NVDA", "AAPL"]),
                                               {"unique_identifier": "TSLA", "snapshot": {"sector": "Auto"}}])
    assert [a.unique_identifier for a in Asset.filter(unique_identifier__in=(u for u in ["NVDA", "AAPL"]))] == [
        "NVDA", "AAPL"]
    assert [a.unique_identifier for a in Asset.filter(sector="Auto")] == ["TSLA"]
    assert [a.unique_identifier for a in Asset.filter(sector__isnull=True)] == ["NVDA", "AAPL"]
    with pytest.raises(LakenodesUserError, match="unknown field 'colour' in lookup 'colour'; asset fields are"):
        Asset.filter(colour="red")
    with pytest.raises(LakenodesUserError, match="__in expects a list, got 'NVDA'"):
        Asset.filter(unique_identifier__in="NVDA")
