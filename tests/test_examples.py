"""The ported tutorial nodes (examples/tutorial_nodes.py) end to end, and the run_tutorial.py job."""

from __future__ import annotations

import datetime as dt
import math
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from examples.run_tutorial import TUTORIAL_ASSETS  # noqa: E402
from examples.tutorial_nodes import (  # noqa: E402
    SIMULATED_PRICES_IDENTIFIER,
    DailyRandomAddition,
    DailyRandomAdditionConfig,
    DailyRandomNumber,
    PriceSimulConfig,
    RandomDataNodeConfig,
    SimulatedPrices,
    VolatilityConfig,
)
from lakenodes import APIDataNode, Asset, Lake, TimeIndexMetaTable, hash_namespace  # noqa: E402

UTC = dt.UTC
BACKFILL_DAYS = 3


def yesterday_midnight() -> dt.datetime:
    return dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)


def narrow_offset() -> dt.datetime:
    """An offset_start that makes SimulatedPrices backfill exactly BACKFILL_DAYS days per asset."""
    return yesterday_midnight() - dt.timedelta(days=BACKFILL_DAYS)


def version(node) -> int:
    return DeltaTable(node.table_uri, storage_options=node.lake.storage_options or None).version()


def stored_rows(node) -> int:
    table = DeltaTable(node.table_uri, storage_options=node.lake.storage_options or None)
    return pa.table(table.to_pyarrow_table()).num_rows


def price_batches() -> list[list[Asset]]:
    Asset.batch_get_or_register_custom_assets(TUTORIAL_ASSETS)
    Asset.batch_get_or_register_custom_assets(TUTORIAL_ASSETS)  # idempotent
    return [Asset.filter(ticker__in=["NVDA", "AAPL"]), Asset.filter(ticker__in=["JPM", "GS", "BRK.B"])]


def test_random_number_nodes(any_lake: Lake) -> None:
    low = DailyRandomNumber(RandomDataNodeConfig(mean=0.0, std=VolatilityConfig(center=0.5, skew=False)))
    high = DailyRandomNumber(RandomDataNodeConfig(mean=0.0, std=VolatilityConfig(center=2.0, skew=True)))
    assert low.storage_hash == high.storage_hash and low.update_hash != high.update_hash

    _, first = low.run(debug_mode=True, force_update=True)
    _, second = high.run(debug_mode=True, force_update=True)
    assert first.height == 1 and second.height == 0  # two updaters, one table, one row per day
    today = dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert low.get_df_between_dates()["time_index"].to_list() == [today]

    addition = DailyRandomAddition(DailyRandomAdditionConfig(mean=0.0, std=1.0))
    assert addition.dependencies()["number_generator"].storage_hash == low.storage_hash
    _, added = addition.run(debug_mode=True, force_update=True)
    assert added.height == 1 and math.isfinite(added["random_number"][0])
    assert stored_rows(low) == 1

    versions = [version(low), version(addition)]
    assert addition.run()[1].height == 0  # incremental: nothing new today
    assert low.run()[1].height == 0
    assert [version(low), version(addition)] == versions
    published = APIDataNode.build_from_identifier("example_random_number_local")
    assert published.storage_hash == low.storage_hash


def test_simulated_prices_two_batches_into_one_table(any_lake: Lake) -> None:
    batches = price_batches()
    assert [[a.unique_identifier for a in batch] for batch in batches] == [["NVDA", "AAPL"], ["JPM", "GS", "BRK/B"]]
    nodes = [SimulatedPrices(PriceSimulConfig(asset_list=batch, offset_start=narrow_offset())) for batch in batches]
    assert nodes[0].storage_hash == nodes[1].storage_hash and nodes[0].update_hash != nodes[1].update_hash

    written = [node.run(debug_mode=True, force_update=True)[1] for node in nodes]
    assert [frame.height for frame in written] == [2 * BACKFILL_DAYS, 3 * BACKFILL_DAYS]
    assert stored_rows(nodes[0]) == 5 * BACKFILL_DAYS
    progress = nodes[1].update_statistics.index_progress
    assert progress == {uid: yesterday_midnight() for uid in ("BRK/B", "GS", "JPM")}
    assert set(nodes[0].update_statistics.index_progress) == {"AAPL", "NVDA"}

    current = version(nodes[0])
    again = [SimulatedPrices(PriceSimulConfig(asset_list=batch, offset_start=narrow_offset())) for batch in batches]
    assert [node.run()[1].height for node in again] == [0, 0]
    assert version(nodes[0]) == current

    record = TimeIndexMetaTable.get(identifier=SIMULATED_PRICES_IDENTIFIER)
    assert record.storage_hash == nodes[0].storage_hash
    prices = APIDataNode.build_from_identifier(SIMULATED_PRICES_IDENTIFIER)
    brk = prices.get_df_between_dates(unique_identifier_list=["BRK/B"], frame="pandas")
    assert len(brk) == BACKFILL_DAYS and (brk["close"] > 0).all()


def test_namespaced_runs_write_to_separate_tables(any_lake: Lake) -> None:
    batch = price_batches()[0]
    default = SimulatedPrices(PriceSimulConfig(asset_list=batch, offset_start=narrow_offset()))
    default.run()
    with hash_namespace("pytest_examples"):
        isolated = SimulatedPrices(PriceSimulConfig(asset_list=batch, offset_start=narrow_offset()))
    tested = SimulatedPrices(PriceSimulConfig(asset_list=batch, offset_start=narrow_offset()), test_node=True)
    hashes = {default.storage_hash, isolated.storage_hash, tested.storage_hash}
    assert len(hashes) == 3

    assert isolated.run()[1].height == 2 * BACKFILL_DAYS  # its own, empty table: a full backfill
    assert tested.run()[1].height == 2 * BACKFILL_DAYS
    assert stored_rows(default) == stored_rows(isolated) == stored_rows(tested) == 2 * BACKFILL_DAYS
    assert TimeIndexMetaTable.get(identifier=SIMULATED_PRICES_IDENTIFIER).storage_hash == default.storage_hash
    assert TimeIndexMetaTable.get(identifier=SIMULATED_PRICES_IDENTIFIER, namespace="test").storage_hash == \
        tested.storage_hash

    addition = DailyRandomAddition(DailyRandomAdditionConfig(mean=0.0, std=1.0), test_node=True)
    addition.run()
    generator = addition.dependencies()["number_generator"]
    assert generator.hash_namespace == "test"
    plain = DailyRandomNumber(RandomDataNodeConfig(mean=0.0))
    assert generator.storage_hash != plain.storage_hash
    assert stored_rows(generator) == 1
    assert plain.get_df_between_dates().height == 0  # the default table was never written


def run_script(env_overrides: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "LAKENODES_"))}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / "run_tutorial.py")],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def test_run_tutorial_script_on_a_local_lake(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "tutorial-lake")
    result = run_script({"LAKENODES_URI": lake.uri}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"lake: {lake.uri}" in result.stdout
    tables = sorted(p.name.split("_")[0] for p in (tmp_path / "tutorial-lake" / "tables").iterdir())
    assert tables == ["dailyrandomaddition", "dailyrandomnumber", "simulatedprices"]
    assert not (tmp_path / "lake").exists()

    again = run_script({"LAKENODES_URI": lake.uri}, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count(": 0 new rows") == 2


@pytest.mark.s3
def test_run_tutorial_script_on_an_s3_lake(tmp_path: Path, s3_server) -> None:
    uri = f"s3://{s3_server.create_bucket()}/tutorial"
    result = run_script({"LAKENODES_URI": uri, **s3_server.env}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    prices = TimeIndexMetaTable.get(identifier=SIMULATED_PRICES_IDENTIFIER, lake=Lake(uri, s3_server.storage_options))
    table = DeltaTable(prices.table_uri, storage_options=s3_server.storage_options)
    assert sorted(set(pa.table(table.to_pyarrow_table()).column("unique_identifier").to_pylist())) == sorted(
        asset["unique_identifier"] for asset in TUTORIAL_ASSETS)
    assert not (tmp_path / "lake").exists()
