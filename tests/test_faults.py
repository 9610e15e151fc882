"""Storage faults: runs against moto behind a fault-injecting proxy (500s, 503s, dropped connections,
lost responses, slow answers) either succeed or fail with a NodeRunError naming the phase; the table
is never corrupted, and a later run with the faults off completes the data exactly.

The proxy (tests/faultproxy.py) sits between every lakenodes client (delta-rs, pyarrow) and moto;
checks read the bucket directly, past the proxy.
"""

from __future__ import annotations

import logging
from collections import Counter

import pytest
from faultproxy import FaultProxy
from test_concurrency import SPAWN, RetryCounter, appender, assert_table_exact, assets, stored_rows

from lakenodes import Lake, NodeRunError, use_lake
from lakenodes.catalog import catalog

pytestmark = [pytest.mark.slow, pytest.mark.s3]

BATCH = assets(4)
# (runs, fault probabilities per request): moderate faults first, then heavy ones that make runs fail
FAULT_LEVELS = (
    (8, {"error": 0.04, "throttle": 0.03, "drop": 0.02, "lost_response": 0.03, "slow": 0.03, "slow_seconds": 0.3}),
    (6, {"error": 0.12, "throttle": 0.08, "drop": 0.05, "lost_response": 0.08, "slow": 0.04, "slow_seconds": 0.3}),
)
RUNS = sum(runs for runs, _ in FAULT_LEVELS)
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
        node = appender(BATCH)  # one updater, one new day per run
    outcomes: Counter[str] = Counter()
    days = 0
    levels = [faults for runs, faults in FAULT_LEVELS for _ in range(runs)]
    with FaultProxy(s3_server.endpoint_url, seed=20240101) as proxy:
        faulty = through(proxy, direct, s3_server, **STORAGE_TUNING)
        for faults in levels:
            proxy.configure(**faults)
            with use_lake(faulty):
                try:
                    appender(BATCH).run()
                    succeeded = True
                except NodeRunError as error:
                    assert error.phase in PHASES and f"failed during {error.phase}: " in str(error)
                    succeeded = False
                    outcomes[f"failed during {error.phase}"] += 1
                    print(f"\nrun failed: {error}")
            proxy.off()  # check past the faults: a failed run left all its rows or none
            previous, days = days, assert_consistent(direct, node)
            assert days == previous + 1 if succeeded else days in (previous, previous + 1)
            outcomes["success" if succeeded else "failed"] += 1
            outcomes["failed after its commit"] += not succeeded and days == previous + 1
            successes = [r for r in catalog.run_history(direct, node.update_hash) if r["status"] == "success"]
            assert len(successes) == outcomes["success"]  # one record per successful run, never two
        injected = dict(proxy.counts)

        proxy.off()
        with use_lake(faulty):
            appender(BATCH, days_per_run=RUNS, last_day=RUNS).run()  # faults off: catch up to day RUNS
    rows = assert_table_exact(direct, node, BATCH, RUNS)
    print(f"\nfault figures: runs={RUNS} rows={rows.height} outcomes={dict(outcomes)} proxy={injected}")
    assert injected["requests"] > injected["error"] > 0


def test_storage_timeouts_and_retries_are_configurable(s3_server):
    """``timeout``/``max_retries`` reach the storage clients: against a store answering in 0.5 s, a 0.1 s
    timeout without retries fails clearly and writes nothing; 5 s succeeds through occasional slowness."""
    direct = s3_server.new_lake()
    with use_lake(direct):
        node = appender(BATCH)
    with FaultProxy(s3_server.endpoint_url, slow=1.0, slow_seconds=0.5) as proxy:
        impatient = through(proxy, direct, s3_server, timeout="100ms", max_retries="0", retry_timeout="1s")
        with use_lake(impatient), pytest.raises(NodeRunError, match=r"(?is)failed during registration: .*timed? ?out"):
            appender(BATCH).run()
        assert not node.store.exists()
        proxy.configure(slow=0.1)
        patient = through(proxy, direct, s3_server, timeout="5s", max_retries="1")
        with use_lake(patient):
            appender(BATCH).run()
        assert proxy.counts["slow"] > 1
    assert_table_exact(direct, node, BATCH, 1)


def run_once(uri: str, storage_options: dict[str, str], results) -> None:
    """Child body: one appender run; reports (outcome, phase, message, commit attempts, retries)."""
    from lakenodes.lake._retry import default_retry

    retries = RetryCounter()
    logging.getLogger("lakenodes").addHandler(retries)
    try:
        with use_lake(Lake(uri, storage_options=storage_options)):
            appender(BATCH).run()
        results.put(("ok", "", "", default_retry().attempts, retries.count))
    except NodeRunError as error:
        results.put(("failed", error.phase, str(error), default_retry().attempts, retries.count))
    except Exception as error:  # anything else is a finding: report it rather than hang the parent
        results.put(("escaped", "", f"{type(error).__name__}: {error}", default_retry().attempts, retries.count))


def test_write_outage_fails_in_write_phase_and_changes_nothing(s3_server, monkeypatch):
    """Reads work, every PUT fails: the run fails naming the write phase after LAKENODES_COMMIT_ATTEMPTS
    attempts, the table is exactly as before, and the next run (outage over) completes the data."""
    direct = s3_server.new_lake()
    with use_lake(direct):
        node = appender(BATCH)
    with FaultProxy(s3_server.endpoint_url, seed=3) as proxy:
        faulty = through(proxy, direct, s3_server, **STORAGE_TUNING)
        with use_lake(faulty):
            appender(BATCH).run()  # day 1; the catalog knows the table and its updater
        before = node.store.table().version()

        proxy.configure(error=1.0, methods=("PUT",))
        monkeypatch.setenv("LAKENODES_COMMIT_ATTEMPTS", "3")  # read when the child imports lakenodes
        monkeypatch.setenv("LAKENODES_COMMIT_MAX_DELAY", "0.2")
        results = SPAWN.Queue()
        child = SPAWN.Process(target=run_once, args=(faulty.uri, faulty.storage_options, results))
        child.start()
        outcome, phase, message, attempts, retries = results.get(timeout=300)
        child.join(30)
        assert (outcome, phase, attempts) == ("failed", "write", 3), message
        assert "failed during write: " in message and "InternalError" in message and "injected fault" in message
        assert retries >= 2  # the write was retried (attempts - 1 times) before giving up
        assert proxy.counts["error"] > 0
        assert stored_rows(direct, node).height == len(BATCH) and node.store.table().version() == before

        proxy.off()
        with use_lake(faulty):
            appender(BATCH).run()
    assert_table_exact(direct, node, BATCH, 2)


@pytest.mark.parametrize("fault", ["drop", "slow"])
def test_a_brief_connection_loss_during_a_write_is_retried(s3_server, fault):
    """The endpoint drops (or stalls past the request timeout on) the first two PUTs of a write, and
    object_store does not retry them itself: delta-rs reports "HTTP error: error sending request",
    which lakenodes retries; the run succeeds and the table holds each row once."""
    direct = s3_server.new_lake()
    with use_lake(direct):
        node = appender(BATCH)
        node.run()  # day 1: the table exists; day 2 is written through the faults
    retries = RetryCounter()
    logging.getLogger("lakenodes").addHandler(retries)
    try:
        with FaultProxy(s3_server.endpoint_url, **{fault: 1.0}, slow_seconds=4.0, methods=("PUT",),
                        paths=(f"/{node.storage_hash}/",), limit=2) as proxy:
            faulty = through(proxy, direct, s3_server, timeout="3s", max_retries="0", retry_timeout="3s")
            with use_lake(faulty):
                appender(BATCH).run()
    finally:
        logging.getLogger("lakenodes").removeHandler(retries)
    assert proxy.counts[fault] == 2 and retries.count >= 1
    assert_table_exact(direct, node, BATCH, 2)


def test_retry_warnings_are_one_plain_line(s3_server, caplog):
    """delta-rs words a lost commit request over several lines with terminal colour codes
    ("Generic S3 error\\n  \\x1b[31m↳\\x1b[0m Error performing PUT ..."): the retry warning (what
    ``lakenodes -v`` prints) quotes it on one line, without the codes."""
    direct = s3_server.new_lake()
    with use_lake(direct):
        node = appender(BATCH)
        node.run()
    caplog.set_level(logging.WARNING, logger="lakenodes")
    with FaultProxy(s3_server.endpoint_url, drop=1.0, methods=("PUT",), paths=("/_delta_log/",), limit=1) as proxy:
        with use_lake(through(proxy, direct, s3_server, max_retries="0")):
            appender(BATCH).run()
    retries = [record.getMessage() for record in caplog.records if "retrying" in record.getMessage()]
    assert proxy.counts["drop"] == 1 and retries, caplog.text
    assert all("\x1b" not in message and "\n" not in message for message in retries), retries
    assert any("error sending request" in message for message in retries), retries
    assert_table_exact(direct, node, BATCH, 2)
