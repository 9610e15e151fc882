import datetime
import os
from typing import Union

import numpy as np
import pandas as pd
import pytz
from pydantic import Field

import lakenodes as msc
from lakenodes import (
    APIDataNode,
    DataNode,
    DataNodeConfiguration,
    DataNodeMetaData,
    RecordDefinition,
)

PROJECT_ID = os.getenv("MAIN_SEQUENCE_PROJECT_ID", "local").strip() or "local"
SIMULATED_PRICES_IDENTIFIER = f"simulated_prices_tutorial_{PROJECT_ID}"


class SimulatedPricesManager:
    def __init__(self, owner: DataNode):
        self.owner = owner

    @staticmethod
    def _get_last_price(obs_df: pd.DataFrame, unique_id: str, fallback: float) -> float:
        if obs_df.empty:
            return fallback
        try:
            slice_df = obs_df.xs(unique_id, level="unique_identifier")["close"]
            return float(slice_df.iloc[-1])
        except (KeyError, IndexError):
            return fallback

    def update(self) -> pd.DataFrame:
        initial_price = 100.0
        mu = 0.0
        sigma = 0.01

        update_statistics = self.owner.update_statistics
        asset_list = update_statistics.asset_list or self.owner.get_asset_list() or []
        if not asset_list:
            return pd.DataFrame()

        range_descriptor = update_statistics.get_update_range_map_great_or_equal()
        last_observation = self.owner.get_ranged_data_per_asset(
            range_descriptor=range_descriptor
        )

        yesterday_midnight = datetime.datetime.now(pytz.utc).replace(
            hour=0, minute=0, second=0, microsecond=0
        ) - datetime.timedelta(days=1)

        df_list: list[pd.DataFrame] = []
        for asset in asset_list:
            last_update = update_statistics.get_asset_earliest_multiindex_update(asset=asset)
            start_time = (last_update + datetime.timedelta(days=1)).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            if start_time > yesterday_midnight:
                continue

            time_range = pd.date_range(
                start=start_time,
                end=yesterday_midnight,
                freq="D",
                tz=pytz.utc,
            )
            if time_range.empty:
                continue

            last_price = self._get_last_price(
                obs_df=last_observation,
                unique_id=asset.unique_identifier,
                fallback=initial_price,
            )
            random_returns = np.random.lognormal(mean=mu, sigma=sigma, size=len(time_range))
            simulated_prices = last_price * np.cumprod(random_returns)

            df_asset = pd.DataFrame(
                {
                    "close": simulated_prices,
                    "unique_identifier": asset.unique_identifier,
                },
                index=time_range,
            )
            df_list.append(df_asset)

        if not df_list:
            return pd.DataFrame()

        data = pd.concat(df_list).sort_index()
        data.index.name = "time_index"
        data = data.set_index("unique_identifier", append=True)
        self.owner.logger.info(
            f"simulated_prices rows={len(data)} assets={len(df_list)} end={yesterday_midnight.isoformat()}"
        )
        return data


class PriceSimulConfig(DataNodeConfiguration):
    offset_start: datetime.datetime | None = Field(
        default=datetime.datetime(2024, 1, 1, tzinfo=pytz.utc),
        description="First-run fallback start date for tutorial backfills.",
        json_schema_extra={"update_only": True},
    )
    asset_list: list[msc.AssetMixin] = Field(
        ...,
        title="Asset List",
        description="List of assets to simulate",
        json_schema_extra={"update_only": True},
    )
    records: list[RecordDefinition] = Field(
        default_factory=lambda: [
            RecordDefinition(
                column_name="close",
                dtype="float64",
                label="Close",
                description="Simulated daily close price",
            )
        ]
    )
    node_metadata: DataNodeMetaData = Field(
        default_factory=lambda: DataNodeMetaData(
            identifier=SIMULATED_PRICES_IDENTIFIER,
            data_frequency_id=msc.DataFrequency.one_d,
            description="Simulated daily close prices for tutorial assets.",
        ),
        json_schema_extra={"runtime_only": True},
    )


class SimulatedPrices(DataNode):
    """Simulates daily close prices for a fixed batch of assets."""

    def __init__(
        self,
        config: PriceSimulConfig,
        *,
        hash_namespace: str | None = None,
        test_node: bool = False,
    ):
        self.asset_list = config.asset_list
        super().__init__(
            config=config,
            hash_namespace=hash_namespace,
            test_node=test_node,
        )

    def dependencies(self) -> dict[str, Union["DataNode", "APIDataNode"]]:
        return {}

    def update(self) -> pd.DataFrame:
        return SimulatedPricesManager(self).update()

    def get_asset_list(self):
        return self.asset_list
