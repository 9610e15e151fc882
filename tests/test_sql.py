"""Tests for lakenodes.sql.run_readonly_query on real Delta tables (local and moto S3)."""

from __future__ import annotations

import datetime as dt
import doctest
import json
import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from deltalake import DeltaTable, write_deltalake

import lakenodes.lake.sql as sql_module
from lakenodes import (
    DataNode,
    DataNodeConfiguration,
    DataNodeMetaData,
    TimeIndexMetaTable,
)
from lakenodes.lake import _sql_limits, _sql_sandbox
from lakenodes.lake._sql_limits import MEMORY_ENV, TIMEOUT_ENV, parse_bytes, resolve_limits
from lakenodes.lake.sql import run_readonly_query

IDENT = "simulated_prices_tutorial_local"
HASH = "simulatedprices_0123abcd"
NAMES = [IDENT, HASH]
UIDS = ["BRK/B", "A B", "é=1%"]
DAYS = 5
N_ROWS = DAYS * len(UIDS)
ENVELOPE_KEYS = {"ok", "query_id", "meta_table_uid", "results", "truncated", "max_rows", "row_count", "error"}


def _close(day: int, k: int) -> float:
    return math.nan if (day, k) == (3, 1) else float(day * 10 + k)


def _prices() -> pa.Table:
    rows = [
        (dt.datetime(2024, 1, day, tzinfo=dt.UTC), uid, _close(day, k))
        for day in range(1, DAYS + 1)
        for k, uid in enumerate(UIDS)
    ]
    return pa.table(
        {
            "time_index": pa.array([r[0] for r in rows], pa.timestamp("us", "UTC")),
            "unique_identifier": pa.array([r[1] for r in rows], pa.string()),
            "close": pa.array([r[2] for r in rows], pa.float64()),
        }
    )


@pytest.fixture
def table_uri(tmp_path: Path) -> str:
    uri = str(tmp_path / "lake" / "prices")
    write_deltalake(uri, _prices(), partition_by=["unique_identifier"])
    return uri


def _query(uri: str, sql: object, **kwargs: object) -> dict:
    kwargs.setdefault("table_names", NAMES)
    envelope = run_readonly_query(uri, sql, **kwargs)  # type: ignore[arg-type]
    assert set(envelope) == ENVELOPE_KEYS
    json.dumps(envelope, allow_nan=False)  # always JSON-safe
    return envelope


def _ok(uri: str, sql: str, **kwargs: object) -> list[dict]:
    envelope = _query(uri, sql, **kwargs)
    assert envelope["ok"], envelope["error"]
    assert envelope["error"] is None
    return envelope["results"]


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


# --- reads -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref", [IDENT, HASH, HASH.upper(), f'"{IDENT}"', f"public.{HASH}", f"datafusion.public.{IDENT}"]
)
def test_select_by_each_registered_name(table_uri: str, ref: str) -> None:
    rows = _ok(table_uri, f"SELECT count(*) AS n FROM {ref}")
    assert rows == [{"n": N_ROWS}]


def test_envelope_fields_and_json_values(table_uri: str) -> None:
    env = _query(
        table_uri,
        f"SELECT * FROM {IDENT} WHERE unique_identifier = 'A B' ORDER BY time_index",
        meta_table_uid="uid-123",
        query_id="q-1",
        max_rows=10,
    )
    assert env["ok"] and env["query_id"] == "q-1" and env["meta_table_uid"] == "uid-123"
    assert env["max_rows"] == 10 and env["row_count"] == DAYS and env["truncated"] is False
    assert env["results"][0] == {
        "time_index": "2024-01-01T00:00:00+00:00",
        "unique_identifier": "A B",
        "close": 11.0,
    }
    assert env["results"][2]["close"] == "NaN"  # valid JSON, and not the null of a missing value
    assert len(_query(table_uri, "SELECT 1 AS x")["query_id"]) == 32  # generated uuid4 hex


def test_other_value_types_are_json_safe(table_uri: str) -> None:
    rows = _ok(
        table_uri,
        "SELECT x'00ff' AS b, CAST(1.5 AS DECIMAL(10, 2)) AS d, DATE '2024-01-02' AS day, "
        "CAST('inf' AS DOUBLE) AS inf, to_timestamp('2024-01-01T00:00:00') AS naive, "
        "INTERVAL '1 hour' AS i, arrow_cast(90, 'Duration(Second)') AS secs, [1.0, 'NaN'::double] AS l",
    )
    assert rows == [
        {
            "b": "AP8=",
            "d": "1.50",
            "day": "2024-01-02",
            "inf": "Infinity",
            "naive": "2024-01-01T00:00:00",
            "i": {"months": 0, "days": 0, "nanoseconds": 3_600_000_000_000},
            "secs": 90.0,
            "l": [1.0, "NaN"],
        }
    ]


def test_with_and_subqueries(table_uri: str) -> None:
    rows = _ok(
        table_uri,
        f"""
        WITH last AS (SELECT unique_identifier, max(time_index) AS t FROM {IDENT} GROUP BY unique_identifier)
        SELECT p.unique_identifier, p.close FROM {HASH} p JOIN last
          ON p.unique_identifier = last.unique_identifier AND p.time_index = last.t
        WHERE p.close > (SELECT min(close) FROM {IDENT})
        ORDER BY p.unique_identifier;""",
    )
    assert rows == [
        {"unique_identifier": "A B", "close": 51.0},
        {"unique_identifier": "BRK/B", "close": 50.0},
        {"unique_identifier": "é=1%", "close": 52.0},
    ]


def test_aggregates(table_uri: str) -> None:
    rows = _ok(
        table_uri,
        f"""SELECT unique_identifier AS uid, count(*) AS n, min(time_index) AS first,
        max(close) AS hi, sum(close) FILTER (WHERE NOT isnan(close)) AS total
        FROM {IDENT} GROUP BY unique_identifier ORDER BY uid""",
    )
    assert rows == [
        {
            "uid": "A B",
            "n": 5,
            "first": "2024-01-01T00:00:00+00:00",
            "hi": 51.0,
            "total": 11.0 + 21 + 41 + 51,
        },
        {"uid": "BRK/B", "n": 5, "first": "2024-01-01T00:00:00+00:00", "hi": 50.0, "total": 150.0},
        {"uid": "é=1%", "n": 5, "first": "2024-01-01T00:00:00+00:00", "hi": 52.0, "total": 160.0},
    ]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("unique_identifier = 'BRK/B'", 5),
        ("unique_identifier = 'A B'", 5),
        ("unique_identifier = 'é=1%'", 5),
        ("unique_identifier IN ('BRK/B', 'é=1%')", 10),
        ("unique_identifier LIKE 'BRK/%'", 5),
        ("time_index >= '2024-01-02'", 12),
        ("time_index >= TIMESTAMP '2024-01-04 00:00:00+00:00'", 6),
        ("time_index < '2024-01-03T00:00:00Z' AND unique_identifier = 'BRK/B'", 2),
        ("time_index BETWEEN '2024-01-02' AND '2024-01-03' AND unique_identifier = 'é=1%'", 2),
        ("unique_identifier = 'nope'", 0),
    ],
)
def test_filters_on_time_and_identifier(table_uri: str, where: str, expected: int) -> None:
    rows = _ok(table_uri, f"SELECT time_index, unique_identifier FROM {HASH} WHERE {where}")
    assert len(rows) == expected


@pytest.mark.parametrize(
    ("sql", "max_rows", "row_count", "truncated"),
    [
        (f"SELECT * FROM {IDENT}", N_ROWS, N_ROWS, False),
        (f"SELECT * FROM {IDENT}", N_ROWS - 1, N_ROWS - 1, True),
        (f"SELECT * FROM {IDENT}", 1, 1, True),
        (f"SELECT * FROM {IDENT}", 100_000, N_ROWS, False),
        (f"SELECT * FROM {IDENT} LIMIT 3", 3, 3, False),
        (f"SELECT * FROM {IDENT} ORDER BY close DESC LIMIT 4", 3, 3, True),
        (f"SELECT * FROM {IDENT} WHERE false", 1, 0, False),
    ],
)
def test_max_rows_truncation(
    table_uri: str, sql: str, max_rows: int, row_count: int, truncated: bool
) -> None:
    env = _query(table_uri, sql, max_rows=max_rows)
    assert env["ok"], env["error"]
    assert (env["row_count"], len(env["results"]), env["truncated"]) == (row_count, row_count, truncated)


def test_truncation_keeps_order(table_uri: str) -> None:
    rows = _ok(
        table_uri, f"SELECT time_index FROM {IDENT} ORDER BY time_index DESC, unique_identifier", max_rows=2
    )
    assert [r["time_index"] for r in rows] == ["2024-01-05T00:00:00+00:00"] * 2


def test_quoting_in_sql_does_not_confuse_the_lexer(table_uri: str) -> None:
    rows = _ok(
        table_uri,
        f"""SELECT 'it''s; DROP TABLE x' AS a, $$; DELETE$$ AS b, E'\\'; COPY' AS c,
        "close" AS "select; update" /* ; nested /* comment */ ; */ FROM {IDENT} -- ; DROP
        WHERE unique_identifier = 'BRK/B' LIMIT 1;""",
    )
    assert rows == [{"a": "it's; DROP TABLE x", "b": "; DELETE", "c": "'; COPY", "select; update": 10.0}]


def test_duplicate_column_names_are_suffixed(table_uri: str) -> None:
    rows = _ok(
        table_uri,
        f"SELECT a.close, b.close FROM {IDENT} a JOIN {IDENT} b USING (time_index, "
        "unique_identifier) WHERE a.unique_identifier = 'BRK/B' ORDER BY a.time_index LIMIT 1",
    )
    assert rows == [{"close": 10.0, "close_2": 10.0}]


def test_names_are_registered_lowercase_and_as_given(table_uri: str) -> None:
    assert _ok(table_uri, "SELECT count(*) AS n FROM prices_v2", table_names=["Prices_V2"]) == [{"n": N_ROWS}]
    assert _ok(table_uri, 'SELECT count(*) AS n FROM "Prices_V2"', table_names=["Prices_V2"]) == [
        {"n": N_ROWS}
    ]
    assert _ok(table_uri, 'SELECT count(*) AS n FROM "my-table"', table_names=["my-table"]) == [{"n": N_ROWS}]


# --- refusals ----------------------------------------------------------------------------------------------

REFUSED = [
    # DDL
    (f"CREATE TABLE copy AS SELECT * FROM {IDENT}", "forbidden_statement", "create"),
    ("CREATE VIEW v AS SELECT 1", "forbidden_statement", "create"),
    ("CREATE EXTERNAL TABLE ext STORED AS PARQUET LOCATION '{table}'", "forbidden_statement", "create"),
    (f"DROP TABLE {IDENT}", "forbidden_statement", "drop"),
    (f"ALTER TABLE {IDENT} ADD COLUMN x INT", "forbidden_statement", "alter"),
    (f"TRUNCATE {IDENT}", "forbidden_statement", "truncate"),
    # DML
    (f"INSERT INTO {IDENT} VALUES (now(), 'X', 1.0)", "forbidden_statement", "insert"),
    (f"UPDATE {IDENT} SET close = 0", "forbidden_statement", "update"),
    (f"DELETE FROM {IDENT}", "forbidden_statement", "delete"),
    (f"MERGE INTO {IDENT} USING {HASH} s ON true WHEN MATCHED THEN DELETE", "forbidden_statement", "merge"),
    (f"WITH d AS (DELETE FROM {IDENT} RETURNING *) SELECT * FROM d", "forbidden_statement", "delete"),
    (f"SELECT * INTO newtable FROM {IDENT}", "forbidden_statement", "into"),
    # writing files
    (f"COPY (SELECT * FROM {IDENT}) TO '{{out}}.parquet'", "forbidden_statement", "copy"),
    (f"COPY {IDENT} TO '{{out}}.csv' STORED AS CSV", "forbidden_statement", "copy"),
    # several statements, hidden statements
    (f"SELECT 1; DROP TABLE {IDENT}", "forbidden_statement", "multiple statements"),
    ("SELECT 1; SELECT 2", "forbidden_statement", "multiple statements"),
    (f"SELECT 1 /* ; */ ; -- done\nDELETE FROM {IDENT}", "forbidden_statement", "multiple statements"),
    (f"-- harmless comment\nDELETE FROM {IDENT}", "forbidden_statement", "delete"),
    (f"/* SELECT */ DROP TABLE {IDENT}", "forbidden_statement", "drop"),
    (f"SELECT 1;; DELETE FROM {IDENT}", "forbidden_statement", "multiple statements"),
    # statements
    ("SET datafusion.catalog.information_schema = true", "forbidden_statement", "set"),
    ("SET datafusion.catalog.information_schema TO true", "forbidden_statement", "set"),
    (f"EXPLAIN ANALYZE SELECT * FROM {IDENT}", "forbidden_statement", "explain"),
    (f"EXPLAIN SELECT * FROM {IDENT}", "forbidden_statement", "explain"),
    ("SHOW TABLES", "forbidden_statement", "show"),
    (f"DESCRIBE {IDENT}", "forbidden_statement", "describe"),
    ("VALUES (1)", "forbidden_statement", "only select"),
    (
        "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) SELECT * FROM r",
        "forbidden_statement",
        "recursive",
    ),
    # reading files and other tables
    ("SELECT * FROM '{parquet}'", "forbidden_table", "forbidden table"),
    ("SELECT * FROM '{csv}'", "forbidden_table", "forbidden table"),
    ("SELECT * FROM '{table}'", "forbidden_table", "forbidden table"),
    ("SELECT * FROM read_parquet('{parquet}')", "forbidden_table", "read_parquet"),
    ("SELECT * FROM read_csv('{csv}')", "forbidden_table", "read_csv"),
    ("SELECT * FROM other_table", "forbidden_table", "other_table"),
    (f"SELECT * FROM {IDENT} JOIN secrets ON true", "forbidden_table", "secrets"),
    ("SELECT * FROM information_schema.tables", "forbidden_table", "information_schema"),
    ("SELECT * FROM information_schema.df_settings", "forbidden_table", "information_schema"),
    ("SELECT * FROM generate_series(1, 10)", "forbidden_table", "generate_series"),
    (f"SELECT close FROM {IDENT} WHERE close > (SELECT count(*) FROM range(5))", "forbidden_table", "range"),
    # syntax
    (f"SELECT * FROM {IDENT} WHERE (", "syntax_error", "expected"),
    ("SELECT 'unterminated", "syntax_error", "unterminated string"),
    ("SELECT 1 /* open comment", "syntax_error", "unterminated"),
    (f'SELECT "unterminated FROM {IDENT}', "syntax_error", "unterminated quoted identifier"),
    # bad arguments
    ("", "invalid_argument", "empty"),
    ("   \n\t  ", "invalid_argument", "empty"),
    ("-- only a comment\n/* and another */", "invalid_argument", "only comments"),
    (None, "invalid_argument", "must be a string"),
    (42, "invalid_argument", "must be a string"),
    (b"SELECT 1", "invalid_argument", "must be a string"),
    ("SELECT " + "1," * 60_000 + "1", "invalid_argument", "longer than"),
    # user mistakes that reach the engine
    (f"SELECT nosuch FROM {IDENT}", "execution_error", "nosuch"),
    (f"SELECT close + 'a' FROM {IDENT}", "execution_error", ""),
]


@pytest.mark.parametrize(("sql", "kind", "fragment"), REFUSED)
def test_refused_inputs_change_nothing(
    tmp_path: Path, table_uri: str, sql: object, kind: str, fragment: str
) -> None:
    table = DeltaTable(table_uri)
    parquet = next(Path(table_uri).rglob("*.parquet"))
    csv = tmp_path / "data.csv"
    pa_csv.write_csv(pa.table({"a": [1, 2]}), csv)
    if isinstance(sql, str):
        sql = sql.replace("{table}", table_uri).replace("{parquet}", str(parquet)).replace("{csv}", str(csv))
        sql = sql.replace("{out}", str(tmp_path / "copied"))
    before = _snapshot(tmp_path)
    env = _query(table_uri, sql)
    assert env["ok"] is False and env["results"] == [] and env["row_count"] == 0
    assert env["error"]["kind"] == kind, env["error"]
    assert fragment in env["error"]["message"].lower()
    assert env["error"]["retryable"] is False
    assert _snapshot(tmp_path) == before  # nothing written, nothing deleted
    assert not list(tmp_path.glob("copied*"))
    assert DeltaTable(table_uri).version() == table.version()
    assert DeltaTable(table_uri).to_pyarrow_table().num_rows == N_ROWS


@pytest.mark.parametrize("max_rows", [0, -1, 100_001, 10**12, True, "10", 1.5, None])
def test_absurd_max_rows(table_uri: str, max_rows: object) -> None:
    env = _query(table_uri, f"SELECT * FROM {IDENT}", max_rows=max_rows)
    assert env["ok"] is False and env["error"]["kind"] == "invalid_argument"
    assert "max_rows" in env["error"]["message"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"table_names": []},
        {"table_names": IDENT},
        {"table_names": ["bad name"]},
        {"table_names": ["a.b"]},
        {"table_names": ['x"y']},
        {"table_names": [None]},
        {"storage_options": {"AWS_REGION": 1}},
    ],
)
def test_invalid_arguments(table_uri: str, kwargs: dict) -> None:
    env = _query(table_uri, f"SELECT * FROM {IDENT}", **kwargs)
    assert env["ok"] is False and env["error"]["kind"] == "invalid_argument"


def test_engine_layer_refuses_writes_even_without_the_lexer(
    tmp_path: Path, table_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: with the lexer check disabled, DataFusion's SQLOptions still refuse."""
    monkeypatch.setattr(sql_module, "_lex_check", lambda sql: None)
    out = tmp_path / "copied.parquet"
    cases = [
        (f"COPY (SELECT * FROM {IDENT}) TO '{out}'", "forbidden_statement"),
        (f"INSERT INTO {IDENT} VALUES (now(), 'X', 1.0)", "forbidden_statement"),
        (f"DELETE FROM {IDENT}", "forbidden_statement"),
        (f"CREATE EXTERNAL TABLE ext STORED AS PARQUET LOCATION '{table_uri}'", "forbidden_statement"),
        (f"SELECT * INTO t2 FROM {IDENT}", "forbidden_statement"),
        ("SET datafusion.execution.batch_size = 1", "forbidden_statement"),
        (f"SELECT 1; DROP TABLE {IDENT}", "forbidden_statement"),
        (
            "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) SELECT * FROM r",
            "forbidden_table",
        ),
    ]
    for sql, kind in cases:
        env = _query(table_uri, sql)
        assert (env["ok"], env["error"]["kind"]) == (False, kind), (sql, env["error"])
    assert not out.exists()
    assert DeltaTable(table_uri).to_pyarrow_table().num_rows == N_ROWS


def test_missing_table_is_not_retryable(tmp_path: Path) -> None:
    env = _query(str(tmp_path / "nope"), "SELECT 1")
    assert env["error"]["kind"] == "table_not_found" and env["error"]["retryable"] is False


def test_unreachable_store_is_retryable() -> None:
    options = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
        "max_retries": "0",
    }
    env = _query("s3://lake-bucket/tables/t", "SELECT 1", storage_options=options)
    assert env["error"]["kind"] == "storage_error" and env["error"]["retryable"] is True


def test_refusals_are_logged(table_uri: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="lakenodes.sql"):
        _query(table_uri, f"DELETE FROM {IDENT}", query_id="q-log")
        _query(table_uri, f"SELECT 1 AS x FROM {IDENT} LIMIT 1", query_id="q-ok")
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert any(
        level == logging.WARNING and "q-log" in m and "forbidden_statement" in m for level, m in messages
    )
    assert any(level == logging.INFO and "q-ok" in m for level, m in messages)


# --- limits: time and memory ------------------------------------------------------------------------------

# Before the limits this took 3 GB of memory in 3 s and kept growing; the 3-way cross join ran past 60 s.
HUGE_UNNEST = "SELECT sum(i) AS s FROM (SELECT unnest(range(1, 3000000000)) AS i)"
# Small in memory (240 MB at most) but DataFusion's constant folding of it runs for minutes, uninterruptibly.
SLOW_UNNEST = "SELECT sum(i) AS s FROM (SELECT unnest(range(1, 30000000)) AS i)"
CROSS_JOIN = "SELECT sum(a.x * b.x + c.x) AS s FROM numbers a, numbers b, numbers c"
N_NUMBERS = 2000


@pytest.fixture
def numbers_uri(tmp_path: Path) -> str:
    uri = str(tmp_path / "lake" / "numbers")
    write_deltalake(uri, pa.table({"x": pa.array(range(N_NUMBERS), pa.int64())}))
    return uri


@pytest.fixture
def warm_worker(table_uri: str) -> set[int]:
    """Have a worker process ready (timings then measure the query, not a process start); its pid."""
    assert _ok(table_uri, f"SELECT count(*) AS n FROM {IDENT}") == [{"n": N_ROWS}]
    with _sql_sandbox._lock:
        return {worker.proc.pid for worker in _sql_sandbox._idle}


def _refused_within(uri: str, sql: str, kind: str, seconds: float, **kwargs: object) -> str:
    started = time.monotonic()
    env = _query(uri, sql, **kwargs)
    elapsed = time.monotonic() - started
    assert (env["ok"], env["results"], env["row_count"]) == (False, [], 0)
    assert env["error"]["kind"] == kind, env["error"]
    assert env["error"]["retryable"] is False
    assert elapsed < seconds, f"refused after {elapsed:.1f}s"
    assert "\n" not in env["error"]["message"]
    return env["error"]["message"]


def _assert_stopped(pids: set[int]) -> None:
    """The worker processes are gone (killed and reaped), so they burn no CPU or memory any more."""
    assert pids
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_huge_unnest_is_refused_under_a_small_memory_limit(table_uri: str, warm_worker: set[int]) -> None:
    message = _refused_within(
        table_uri, HUGE_UNNEST, "resources_exhausted", 8, memory_limit="64MiB", timeout_s=8
    )
    assert "64 MiB" in message and "memory_limit=" in message and MEMORY_ENV in message
    # the default limits refuse it too (before: gigabytes, then minutes)
    assert "1 GiB" in _refused_within(table_uri, HUGE_UNNEST, "resources_exhausted", 30)
    assert _ok(table_uri, f"SELECT count(*) AS n FROM {IDENT}") == [{"n": N_ROWS}]


def test_uninterruptible_planning_is_stopped_by_the_timeout(table_uri: str, warm_worker: set[int]) -> None:
    message = _refused_within(table_uri, SLOW_UNNEST, "timeout", 6, timeout_s=1, memory_limit="2GiB")
    assert "1 s" in message and "timeout_s=" in message and TIMEOUT_ENV in message
    _assert_stopped(warm_worker)


def test_three_way_self_cross_join_is_stopped_by_the_timeout(numbers_uri: str, warm_worker: set[int]) -> None:
    names = ["numbers"]
    message = _refused_within(numbers_uri, CROSS_JOIN, "timeout", 6, table_names=names, timeout_s=1.5)
    assert "1.5 s" in message
    _assert_stopped(warm_worker)
    # the next query gets a fresh worker
    assert _ok(numbers_uri, "SELECT count(*) AS n, max(x) AS m FROM numbers", table_names=names) == [
        {"n": N_NUMBERS, "m": N_NUMBERS - 1}
    ]


def test_operator_memory_is_refused_by_the_pool_without_killing_the_worker(
    numbers_uri: str, warm_worker: set[int]
) -> None:
    sql = "SELECT count(DISTINCT a.x * 3000 + b.x) AS k FROM numbers a, numbers b"
    message = _refused_within(
        numbers_uri, sql, "resources_exhausted", 10, table_names=["numbers"], memory_limit="32MiB"
    )
    assert "32 MiB" in message and "memory pool" in message
    with _sql_sandbox._lock:
        assert {worker.proc.pid for worker in _sql_sandbox._idle} == warm_worker  # reused, not killed
    small = "SELECT count(DISTINCT a.x) AS k FROM numbers a, numbers b WHERE b.x < 10"
    assert _ok(numbers_uri, small, table_names=["numbers"], memory_limit="32MiB") == [{"k": N_NUMBERS}]


def test_a_runaway_query_does_not_block_other_queries(numbers_uri: str, warm_worker: set[int]) -> None:
    names = ["numbers"]
    with ThreadPoolExecutor(max_workers=1) as pool:
        runaway = pool.submit(_query, numbers_uri, CROSS_JOIN, table_names=names, timeout_s=3)
        time.sleep(0.2)
        assert _ok(numbers_uri, "SELECT count(*) AS n FROM numbers", table_names=names) == [{"n": N_NUMBERS}]
        assert runaway.result(timeout=30)["error"]["kind"] == "timeout"
    _assert_stopped(warm_worker)


def test_normal_queries_work_under_limits(table_uri: str) -> None:
    sql = f"SELECT unique_identifier, count(*) AS n FROM {IDENT} GROUP BY 1 ORDER BY 1"
    expected = [{"unique_identifier": u, "n": DAYS} for u in sorted(UIDS)]
    assert _ok(table_uri, sql) == expected
    assert _ok(table_uri, sql, timeout_s=20, memory_limit="128MiB") == expected
    assert _ok(table_uri, sql, timeout_s="20s", memory_limit=256 << 20) == expected


def test_limits_are_read_from_the_environment_at_call_time(
    table_uri: str, warm_worker: set[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MEMORY_ENV, "48MiB")
    assert "48 MiB" in _refused_within(table_uri, HUGE_UNNEST, "resources_exhausted", 8)
    monkeypatch.setenv(TIMEOUT_ENV, "0.5")
    assert "0.5 s" in _refused_within(table_uri, SLOW_UNNEST, "timeout", 6, memory_limit="2GiB")
    monkeypatch.setenv(TIMEOUT_ENV, "soon")
    env = _query(table_uri, f"SELECT count(*) AS n FROM {IDENT}")
    assert env["error"]["kind"] == "invalid_argument" and TIMEOUT_ENV in env["error"]["message"]
    # keyword arguments win over the environment
    assert _ok(table_uri, f"SELECT count(*) AS n FROM {IDENT}", timeout_s=30, memory_limit="1GiB") == [
        {"n": N_ROWS}
    ]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"timeout_s": 0}, "timeout"),
        ({"timeout_s": -1}, "timeout"),
        ({"timeout_s": math.nan}, "timeout"),
        ({"timeout_s": math.inf}, "timeout"),
        ({"timeout_s": "soon"}, "timeout_s"),
        ({"timeout_s": True}, "timeout_s"),
        ({"memory_limit": "lots"}, "memory_limit"),
        ({"memory_limit": 1}, "memory limit"),
        ({"memory_limit": -5}, "memory limit"),
        ({"memory_limit": True}, "memory_limit"),
        ({"memory_limit": "2TiB"}, "memory limit"),
    ],
)
def test_invalid_limits_are_refused(table_uri: str, kwargs: dict, fragment: str) -> None:
    env = _query(table_uri, f"SELECT count(*) AS n FROM {IDENT}", **kwargs)
    assert env["ok"] is False and env["error"]["kind"] == "invalid_argument"
    assert fragment in env["error"]["message"]


class _Steps(DataNode):
    """Three daily values: a real catalogued table for TimeIndexMetaTable.run_query."""

    def dependencies(self) -> dict:
        return {}

    def update(self) -> pl.DataFrame:
        days = [dt.datetime(2024, 1, d, tzinfo=dt.UTC) for d in (1, 2, 3)]
        return pl.DataFrame({"time_index": days, "value": [1.0, 2.0, 3.0]})


def test_time_index_meta_table_run_query_takes_the_limits(local_lake: object) -> None:
    metadata = DataNodeMetaData(identifier="sql_limit_steps", data_frequency_id="1d")
    _Steps(DataNodeConfiguration(node_metadata=metadata)).run()
    table = TimeIndexMetaTable.get(identifier="sql_limit_steps")
    env = table.run_query("SELECT sum(value) AS s FROM sql_limit_steps", timeout_s=20, memory_limit="256MiB")
    assert (env["ok"], env["results"], env["meta_table_uid"]) == (True, [{"s": 6.0}], table.uid)
    env = table.run_query(HUGE_UNNEST, memory_limit="64MiB")
    assert env["error"]["kind"] == "resources_exhausted" and "64 MiB" in env["error"]["message"]


def test_limit_parsing() -> None:
    sizes = ("1024", "1k", "1KiB", "1.5MB", "2G", " 3 gib ")
    assert [parse_bytes(v) for v in sizes] == [1024, 1024, 1024, 3 << 19, 2 << 30, 3 << 30]
    assert resolve_limits(environ={}) == resolve_limits(timeout_s=30, memory_limit="1GiB", environ={})
    limits = resolve_limits(environ={TIMEOUT_ENV: "500ms", MEMORY_ENV: "64m"})
    assert (limits.timeout_s, limits.memory_limit) == (0.5, 64 << 20)
    assert resolve_limits(timeout_s="2m", environ={TIMEOUT_ENV: ""}).timeout_s == 120
    for module in (_sql_limits, _sql_sandbox):
        assert doctest.testmod(module).failed == 0


# --- S3 (moto) ---------------------------------------------------------------------------------------------


@pytest.fixture
def s3_options(s3_server):
    """Storage options of a moto S3 server (lakenodes.testing) with a bucket named lake-bucket."""
    s3_server.create_bucket("lake-bucket")
    return s3_server.storage_options


@pytest.mark.s3
def test_s3_table(s3_options: dict[str, str]) -> None:
    uri = "s3://lake-bucket/tables/t"
    write_deltalake(uri, _prices(), partition_by=["unique_identifier"], storage_options=s3_options)
    run = dict(storage_options=s3_options)

    rows = _ok(uri, f"SELECT count(*) AS n FROM {HASH}", **run)
    assert rows == [{"n": N_ROWS}]
    rows = _ok(
        uri,
        f"SELECT time_index, close FROM {IDENT} WHERE unique_identifier = 'BRK/B' "
        "AND time_index >= '2024-01-04' ORDER BY time_index",
        **run,
    )
    assert rows == [
        {"time_index": "2024-01-04T00:00:00+00:00", "close": 40.0},
        {"time_index": "2024-01-05T00:00:00+00:00", "close": 50.0},
    ]
    rows = _ok(uri, f"SELECT unique_identifier, count(*) AS n FROM {IDENT} GROUP BY 1 ORDER BY 1", **run)
    assert rows == [{"unique_identifier": u, "n": DAYS} for u in sorted(UIDS)]
    env = _query(uri, f"SELECT * FROM {IDENT}", max_rows=4, **run)
    assert (env["ok"], env["row_count"], env["truncated"]) == (True, 4, True)

    env = _query(uri, f"DELETE FROM {IDENT}", **run)
    assert env["error"]["kind"] == "forbidden_statement"
    env = _query(uri, "SELECT * FROM information_schema.tables", **run)
    assert env["error"]["kind"] == "forbidden_table"
    assert DeltaTable(uri, storage_options=s3_options).to_pyarrow_table().num_rows == N_ROWS

    env = _query("s3://lake-bucket/tables/missing", "SELECT 1", **run)
    assert env["error"]["kind"] == "table_not_found" and env["error"]["retryable"] is False
