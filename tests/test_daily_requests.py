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

JOB = ("import json, sys; sys.path.insert(0, sys.argv[3]); import test_daily_requests as nodes; "
       "from lakenodes import Lake; getattr(nodes, sys.argv[4])(nodes.DailyConfig(), "
       "lake=Lake(sys.argv[1], storage_options=json.loads(sys.argv[2]))).run()")


class Published(Daily):
    """The daily node publishing an identifier, as the tutorials' nodes do."""

    def get_table_metadata(self) -> DataNodeMetaData:
        return DataNodeMetaData(identifier="daily_prices")


class PublishedAnew(Published):
    """Another table (its class name is hashed), published under a name of its own."""

    def get_table_metadata(self) -> DataNodeMetaData:
        return DataNodeMetaData(identifier="daily_prices_anew")

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


def run_through_proxy(s3_server, lake: Lake, node_class: str = "Published") -> list[tuple[str, str]]:
    """The requests of one run of ``node_class`` in a fresh process, as the recording proxy saw them."""
    with FaultProxy(s3_server.endpoint_url) as proxy:
        options = {**lake.storage_options, "AWS_ENDPOINT_URL": proxy.endpoint_url}
        # no fold of the pending run records: about one run in 20 makes one (lakenodes.lake.pending)
        environment = {**os.environ, "LAKENODES_CATALOG_FOLD_EVERY": "0"}
        subprocess.run([sys.executable, "-c", JOB, lake.uri, json.dumps(options), str(Path(__file__).parent),
                        node_class],
                       check=True, capture_output=True, timeout=120, env=environment)
        return list(proxy.requests)


def test_a_daily_run_asks_the_catalog_only_what_it_must(s3_server) -> None:
    lake = s3_server.new_lake()
    for _ in range(2):  # recorded, claimed, and run once by a process that knew all that already
        Published(DailyConfig(), lake=lake).run()
    requests = run_through_proxy(s3_server, lake)
    asked = collections.Counter(filter(None, (kind(method, path) for method, path in requests)))
    assert asked == EXPECTED, f"catalog requests of a daily run: {sorted(asked.items())}"
    assert Published(DailyConfig(), lake=Lake(lake.uri, storage_options=lake.storage_options)).get_df_between_dates().height == 9


def test_a_first_run_does_not_read_back_the_claim_it_made(s3_server) -> None:
    """The first run of a new table claims its identifier (version 0 of the claim's table, put if
    absent) while it computes its rows; recording the table then must not read that claim again.
    It did: finding the table missing made the run forget what it knew of the table, this run's
    claim included (three requests more, after the rows were written)."""
    lake = s3_server.new_lake()
    Published(DailyConfig(), lake=lake).run()  # the catalog exists
    requests = [kind(method, path) for method, path in run_through_proxy(s3_server, lake, "PublishedAnew")]
    claims = [request for request in requests if request and "_catalog/claims/" in request[1]]
    commit = ("PUT", "_catalog/claims/identifiers/*/_delta_log/00000000000000000000.json")
    assert commit in claims, f"the first run made no claim: {claims}"
    after = claims[claims.index(commit) + 1:]
    assert not [request for request in after if request[0] == "HEAD"], f"the claim was read back: {after}"
