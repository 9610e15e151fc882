"""The log clean-up delta-rs runs after a commit is asked for only on the commits that write a
checkpoint (it can only remove log files older than the latest checkpoint): the same files go,
without a listing of the whole log on every commit (one more LIST request per run on S3)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from faultproxy import FaultProxy
from test_daily_path import ASSETS, Daily, DailyConfig

from lakenodes import Lake


def log_versions(node: Daily) -> list[int]:
    log = Path(node.store.uri) / "_delta_log"
    return sorted(int(name.split(".")[0]) for name in os.listdir(log) if name.endswith(".json"))


def test_expired_log_files_go_with_the_next_checkpoint_not_before(tmp_path) -> None:
    node = Daily(DailyConfig(), lake=Lake(tmp_path / "lake"))
    while node.store.table() is None or node.store.table().version() < 11:  # a checkpoint at 9
        node.run()
    month_ago = time.time() - 40 * 86_400  # older than the default log retention (30 days)
    for version in log_versions(node):
        os.utime(Path(node.store.uri) / "_delta_log" / f"{version:020d}.json", (month_ago, month_ago))

    while node.store.table().version() < 18:
        node.run()
        assert log_versions(node)[0] == 0  # no checkpoint written: nothing cleaned up
    node.run()  # version 19: a checkpoint, then the clean-up of what it makes unneeded
    assert node.store.table().version() == 19
    assert 0 < log_versions(node)[0] <= 9
    assert len(node.get_df_between_dates()) == 20 * len(ASSETS)  # versions 0..19: one run each


def test_a_table_that_keeps_its_log_keeps_it(tmp_path) -> None:
    """``delta.enableExpiredLogCleanup=false`` (its owner wants the history) is respected."""
    node = Daily(DailyConfig(), lake=Lake(tmp_path / "lake"))
    node.run()
    node.store.table().alter.set_table_properties({"delta.enableExpiredLogCleanup": "false"})
    month_ago = time.time() - 40 * 86_400
    for version in log_versions(node):
        os.utime(Path(node.store.uri) / "_delta_log" / f"{version:020d}.json", (month_ago, month_ago))
    while node.store.table().version() < 20:  # through the checkpoint at 19
        node.run()
    assert log_versions(node)[0] == 0


def test_a_run_on_s3_does_not_list_the_whole_log(s3_server) -> None:
    with FaultProxy(s3_server.endpoint_url, seed=1) as proxy:
        lake = Lake(f"s3://{s3_server.create_bucket()}/lake",
                    storage_options={**s3_server.storage_options, "AWS_ENDPOINT_URL": proxy.endpoint_url})
        node = Daily(DailyConfig(), lake=lake)
        for _ in range(3):
            node.run()
        proxy.requests.clear()
        node.run()  # version 4: no checkpoint due
        listings = [path for method, path in proxy.requests
                    if method == "GET" and "list-type=2" in path and "_delta_log" in path]
        whole_log = [path for path in listings if "start-after" not in path and re.search(r"tables%2F[^&]*_delta_log", path)]
        assert whole_log == []
