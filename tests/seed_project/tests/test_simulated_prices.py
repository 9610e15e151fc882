from src.data_nodes.prices_nodes import PriceSimulConfig, SimulatedPrices

import lakenodes as msc
from lakenodes import hash_namespace


def test_simulated_prices_smoke():
    assets = msc.Asset.batch_get_or_register_custom_assets(
        [
            {"unique_identifier": "TEST_SIM_A", "snapshot": {"name": "TEST_SIM_A", "ticker": "TEST_SIM_A"}},
            {"unique_identifier": "TEST_SIM_B", "snapshot": {"name": "TEST_SIM_B", "ticker": "TEST_SIM_B"}},
        ]
    )

    config = PriceSimulConfig(
        asset_list=assets,
        offset_start="2025-01-01T00:00:00+00:00",
    )

    with hash_namespace("pytest_simulated_prices_smoke"):
        node = SimulatedPrices(config=config)
        err, df = node.run(debug_mode=True, force_update=True)

    assert err is False
    assert df is not None
    assert not df.empty
    assert df.index.names == ["time_index", "unique_identifier"]
