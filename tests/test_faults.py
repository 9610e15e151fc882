"""Storage faults: runs against moto behind a fault-injecting proxy (500s, 503s, dropped connections,
lost responses, slow answers) either succeed or fail with a NodeRunError naming the phase; the table
is never corrupted, and a later run with the faults off completes the data exactly.

The proxy (tests/faultproxy.py) sits between every lakenodes client (delta-rs, pyarrow) and moto;
checks read the bucket directly, past the proxy.
"""

from __future__ import annotations

from collections import Counter

import pytest
from faultproxy import FaultProxy
from test_concurrency import appender, assert_table_exact, assets, day, original, stored_rows

from lakenodes import Lake, NodeRunError, catalog, use_lake

pytestmark = [pytest.mark.slow, pytest.mark.s3]

RUNS = 30
BATCH = assets(4)
FAULTS = {"error": 0.04, "throttle": 0.03, "drop": 0.02, "lost_response": 0.03, "slow": 0.03, "slow_seconds": 0.3}
# object_store (delta-rs) client settings, passed through Lake(storage_options=...): fail fast, retry a little
STORAGE_TUNING = {"timeout": "3s", "connect_timeout": "1s", "max_retries": "2", "retry_timeout": "10s"}
PHASES = {"registration", "statistics", "update", "validation", "write", "catalog"}


def through(proxy: FaultProxy, lake: Lake, s3_server, **tuning: str) -> Lake:
    """The same lake, reached through ``proxy``."""
    return Lake(lake.uri, storage_options={**s3_server.storage_options, "AWS_ENDPOINT_URL": proxy.endpoint_url,
                                           **tuning})


def assert_consistent(direct: Lake, node) -> int:
    """Readable, no duplicates, every asset holds days 1..k with their original values; returns k."""
    if not node.store.exists():
        return 0
    rows = stored_rows(direct, node)
    days = rows.height // len(BATCH)
    assert_table_exact(direct, node, BATCH, days)
    return days


def test_runs_under_storage_faults_fail_clearly_and_lose_nothing(s3_server):
    direct = s3_server.new_lake()
    with use_lake(direct):
        node = appender(BATCH)
    outcomes: Counter[str] = Counter()
    with FaultProxy(s3_server.endpoint_url, seed=20240101, **FAULTS) as proxy:
        faulty = through(proxy, direct, s3_server, **STORAGE_TUNING)
        for i in range(1, RUNS + 1):
            with use_lake(faulty):
                run = appender(BATCH, last_day=i, days_per_run=i)
                try:
                    run.run()
                    succeeded = True
                    outcomes["success"] += 1
                except NodeRunError as error:
                    assert error.phase in PHASES and f"failed during {error.phase}: " in str(error)
                    succeeded = False
                    outcomes[f"failed during {error.phase}"] += 1
                    print(f"run {i}: {str(error)[:300]}")
            proxy.off()  # check past the faults
            days = assert_consistent(direct, node)
            assert days == i or not succeeded
            history = catalog.run_history(direct, run.update_hash)
            print(f"run {i}: days={days} history={[r['status'] for r in history]}")
            successes = [record for record in history if record["status"] == "success"]
            assert len(successes) == 1 if succeeded else len(successes) <= 1, history
            proxy.configure(**FAULTS)
        faults = dict(proxy.counts)

        proxy.off()
        with use_lake(faulty):
            appender(BATCH, last_day=RUNS, days_per_run=RUNS).run()
    rows = assert_table_exact(direct, node, BATCH, RUNS)
    assert rows.filter(rows["time_index"] == day(RUNS))["close"].to_list() == [original(u, day(RUNS)) for u in BATCH]
    print(f"\nfault figures: runs={RUNS} outcomes={dict(outcomes)} proxy={faults}")
    assert faults["requests"] > faults.get("error", 0) > 0


def test_storage_timeouts_and_retries_are_configurable(s3_server):
    """``timeout``/``max_retries`` reach delta-rs: against a store that answers in 1 s, a 0.2 s timeout
    with no retries fails clearly and writes nothing; a 5 s timeout succeeds."""
    direct = s3_server.new_lake()
    with use_lake(direct):
        node = appender(BATCH)
    with FaultProxy(s3_server.endpoint_url, slow=1.0, slow_seconds=1.0) as proxy:
        impatient = through(proxy, direct, s3_server, timeout="200ms", max_retries="0", retry_timeout="1s")
        with use_lake(impatient), pytest.raises(NodeRunError, match="failed during registration: .*(?i:timed? ?out)"):
            appender(BATCH, last_day=1).run()
        assert not node.store.exists()
        patient = through(proxy, direct, s3_server, timeout="5s", max_retries="1")
        with use_lake(patient):
            appender(BATCH, last_day=1).run()
        assert proxy.counts["slow"] > 0
    assert_table_exact(direct, node, BATCH, 1)
