"""The main job: run the tutorial DataNodes on the lake in effect (default ./lake).

    python examples/run_tutorial.py            # local lake ./lake
    LAKENODES_URI=s3://bucket/lake python examples/run_tutorial.py
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.tutorial_nodes import (  # noqa: E402
    DailyRandomAddition,
    DailyRandomAdditionConfig,
    DailyRandomNumber,
    PriceSimulConfig,
    RandomDataNodeConfig,
    SimulatedPrices,
    VolatilityConfig,
)
from lakenodes import Asset, current_lake  # noqa: E402

TUTORIAL_ASSETS = [
    {"unique_identifier": uid, "snapshot": {"ticker": ticker, "name": name}}
    for uid, ticker, name in [
        ("NVDA", "NVDA", "NVIDIA"), ("AAPL", "AAPL", "Apple"), ("JPM", "JPM", "JPMorgan Chase"),
        ("GS", "GS", "Goldman Sachs"), ("BRK/B", "BRK.B", "Berkshire Hathaway B"),
    ]
]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(f"lake: {current_lake().uri}")

    low_vol, high_vol = VolatilityConfig(center=0.5, skew=False), VolatilityConfig(center=2.0, skew=True)
    for std in (low_vol, high_vol):  # two updaters, one table (std is update_only)
        DailyRandomNumber(config=RandomDataNodeConfig(mean=0.0, std=std)).run(debug_mode=True, force_update=True)
    DailyRandomAddition(config=DailyRandomAdditionConfig(mean=0.0, std=1.0)).run(debug_mode=True, force_update=True)

    Asset.batch_get_or_register_custom_assets(TUTORIAL_ASSETS)
    batches = [Asset.filter(ticker__in=["NVDA", "AAPL"]), Asset.filter(ticker__in=["JPM", "GS", "BRK.B"])]
    for assets in batches:  # two updaters (asset_list is update_only) writing one table
        node = SimulatedPrices(config=PriceSimulConfig(asset_list=assets))
        err, df = node.run(debug_mode=True, force_update=True)
        print(f"{node.update_hash} -> {node.storage_hash}: {df.height} new rows")
    print("done: try `lakenodes data-node list` and `lakenodes updates list`")


if __name__ == "__main__":
    main()
