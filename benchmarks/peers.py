"""The peer the read benchmarks compare with: ArcticDB (LMDB locally, S3 on the moto server)."""

from __future__ import annotations

import datetime
from typing import Any

from benchmarks.node import BenchPrices


class ArcticTwin:
    """The read benchmark's rows in ArcticDB: one symbol per asset and one multi-index symbol."""

    def __init__(self, library: Any, backend: str):
        self.library = library
        self.backend = backend

    @classmethod
    def create(cls, uri: str, node: BenchPrices, uids: list[str]) -> ArcticTwin | None:
        try:
            import arcticdb
        except ImportError:
            return None
        arctic = arcticdb.Arctic(uri)
        name = f"reads_{node.storage_hash[-8:]}"
        if name in arctic.list_libraries():
            arctic.delete_library(name)
        library = arctic.create_library(name)
        frame = node.get_df_between_dates(frame="pandas").reset_index()
        frame = frame.set_index("time_index")
        library.write("multi", frame)
        payloads = [arcticdb.WritePayload(uid, group.drop(columns=["unique_identifier"]))
                    for uid, group in frame.groupby("unique_identifier", sort=False)]
        for chunk in range(0, len(payloads), 500):
            library.write_batch(payloads[chunk:chunk + 500])
        return cls(library, "LMDB" if uri.startswith("lmdb") else "S3")

    def per_asset(self, uids: list[str], start: datetime.datetime, end: datetime.datetime) -> Any:
        import arcticdb
        import pandas as pd

        requests = [arcticdb.ReadRequest(uid, date_range=(pd.Timestamp(start), pd.Timestamp(end))) for uid in uids]
        frames = [item.data for item in self.library.read_batch(requests)]
        return pd.concat(frames)

    def latest(self, uids: list[str]) -> Any:
        """The last row of each asset's symbol."""
        import arcticdb
        import pandas as pd

        return pd.concat(item.data for item in self.library.read_batch(
            [arcticdb.ReadRequest(uid, row_range=(-1, None)) for uid in uids]))

    def multi(self, uids: list[str] | None, start: datetime.datetime, end: datetime.datetime) -> Any:
        import arcticdb
        import pandas as pd

        query = None
        if uids is not None:
            query = arcticdb.QueryBuilder()
            query = query[query["unique_identifier"].isin(uids)]
        return self.library.read("multi", date_range=(pd.Timestamp(start), pd.Timestamp(end)), query_builder=query).data


def arctic_s3_uri(server: Any, bucket: str) -> str:
    host_port = server.endpoint_url.split("://", 1)[1]
    host, port = host_port.rsplit(":", 1)
    options = server.storage_options
    return (f"s3://{host}:{bucket}?port={port}&access={options['AWS_ACCESS_KEY_ID']}"
            f"&secret={options['AWS_SECRET_ACCESS_KEY']}&region={options['AWS_REGION']}")


def arcticdb_available() -> bool:
    try:
        import arcticdb  # noqa: F401
    except ImportError:
        return False
    return True
