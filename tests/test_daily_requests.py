"""What a cron job's daily run asks of S3 besides its own table: each catalog request is a round
trip every run pays (tens of milliseconds on S3), so a new one must be a choice, not an accident.
A fresh process runs one more day of an unchanged node through a recording proxy (tests/faultproxy.py)
in front of the moto server; its requests to ``_catalog/`` are counted by what they do."""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from faultproxy import FaultProxy
from test_daily_path import Daily, DailyConfig

from lakenodes import DataNodeMetaData, Lake

pytestmark = pytest.mark.s3

JOB = ("import json, sys; sys.path.insert(0, sys.argv[3]); from test_daily_requests import Published, DailyConfig; "
       "from lakenodes import Lake; Published(DailyConfig(), lake=Lake(sys.argv[1], storage_options=json.loads(sys.argv[2]))).run()")


class Published(Daily):
    """The daily node publishing an identifier, as the tutorials' nodes do."""

    def get_table_metadata(self) -> DataNodeMetaData:
        return DataNodeMetaData(identifier="daily_prices")

# what the run of an unchanged node asks of the catalog, and why
EXPECTED = collections.Counter({
    ("HEAD", "_catalog/updates/_lakenodes/marks/*"): 1,  # its updater is recorded as it is
    ("HEAD", "_catalog/tables/_lakenodes/marks/*"): 1,  # its table record is stored as it is
    ("LIST", "_catalog/claims/identifiers/*/_delta_log"): 1,  # its identifier's claim exists ...
    ("HEAD", "_catalog/claims/identifiers/*/_delta_log/00000000000000000000.json"): 1,  # ... and is its own
    ("GET", "_catalog/claims/identifiers/*/_delta_log/00000000000000000000.json"): 1,
    ("PUT", "_catalog/runs/_lakenodes/pending/*"): 1,  # its run record
})


def kind(method: str, path: str) -> tuple[str, str] | None:
    """A catalog request as (method, path with its names generalised); None for any other request."""
    if "list-type=2" in path:
        prefix = re.search(r"prefix=([^&]*)", path)
        path, method = (prefix.group(1).replace("%2F", "/") if prefix else ""), "LIST"
    path = path.split("?")[0]
    if "_catalog/" not in path:
        return None
    path = path[path.index("_catalog/"):]
    path = re.sub(r"/(marks|pending)/.+$", r"/\1/*", path)
    path = re.sub(r"identifiers/.*?(/_delta_log/|$)", lambda m: "identifiers/*" + m.group(1), path)
    return method, path.rstrip("/")


def test_a_daily_run_asks_the_catalog_only_what_it_must(s3_server) -> None:
    lake = s3_server.new_lake()
    for _ in range(2):  # recorded, claimed, and run once by a process that knew all that already
        Published(DailyConfig(), lake=lake).run()
    with FaultProxy(s3_server.endpoint_url) as proxy:
        options = {**lake.storage_options, "AWS_ENDPOINT_URL": proxy.endpoint_url}
        # no fold of the pending run records: about one run in 20 makes one (lakenodes.lake.pending)
        environment = {**os.environ, "LAKENODES_CATALOG_FOLD_EVERY": "0"}
        subprocess.run([sys.executable, "-c", JOB, lake.uri, json.dumps(options), str(Path(__file__).parent)],
                       check=True, capture_output=True, timeout=120, env=environment)
        requests = list(proxy.requests)
    asked = collections.Counter(filter(None, (kind(method, path) for method, path in requests)))
    assert asked == EXPECTED, f"catalog requests of a daily run: {sorted(asked.items())}"
    assert Published(DailyConfig(), lake=Lake(lake.uri, storage_options=lake.storage_options)).get_df_between_dates().height == 9
