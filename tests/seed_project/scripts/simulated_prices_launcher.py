from src.data_nodes.prices_nodes import PriceSimulConfig, SimulatedPrices

from lakenodes import Asset

assets = Asset.filter(ticker__in=["NVDA", "AAPL"])
config = PriceSimulConfig(asset_list=assets)

batch_2_assets = Asset.filter(ticker__in=["JPM", "GS"])
config_2 = PriceSimulConfig(asset_list=batch_2_assets)

node_1 = SimulatedPrices(config=config)
node_1.run(debug_mode=True, force_update=True)

node_2 = SimulatedPrices(config=config_2)
node_2.run(debug_mode=True, force_update=True)
