"""Read-only SQL over exactly one Delta table.

:func:`run_readonly_query` runs one ``SELECT`` (or ``WITH ... SELECT``) against a single Delta table
with DataFusion and returns a JSON-safe envelope; it never raises for bad input or failing queries.

Example (``run_readonly_query`` never raises; check ``ok``)::

    env = run_readonly_query(
        "/lake/prices",
        "SELECT unique_identifier, max(close) AS hi FROM prices WHERE time_index >= '2024-01-02' GROUP BY 1",
        table_names=["prices", "simulatedprices_0123abcd"],
        max_rows=100,
    )
    env["ok"], env["row_count"], env["truncated"]   # True, 3, False (or False + env["error"]["kind"/"message"])

Naming: the table is registered under every name in ``table_names`` *as given* and *lower-cased*, so an
unquoted identifier matches whatever its case (DataFusion lower-cases unquoted identifiers). Names must
match ``[A-Za-z_][A-Za-z0-9_-]*``; names with ``-`` have to be double-quoted in SQL. No alias such as
``this`` is added automatically - pass it in ``table_names`` if wanted. ``public.<name>`` and
``datafusion.public.<name>`` also resolve to the table.

Security model (defence in depth; any refusal happens before anything is executed):

1. A small lexer (strings, ``E'..'``, ``$$..$$``, quoted identifiers, nested comments) requires exactly one
   statement (one optional trailing ``;``) that starts with ``SELECT`` or ``WITH`` and contains none of the
   statement keywords in ``FORBIDDEN_KEYWORDS`` outside strings/quoted identifiers (a column really named
   e.g. ``set`` must be double-quoted). ``WITH RECURSIVE`` and ``SELECT ... INTO`` are refused.
2. DataFusion plans it with DDL, DML and statements (``SET``, ...) disabled, in a fresh session whose only
   tables are the registered names: ``information_schema`` is off, URL/file tables (``FROM 'x.parquet'``)
   are off, and no file-reading table functions (``read_parquet`` ...) exist.
3. The logical plan (subqueries included) may scan only the registered table; table functions such as
   ``generate_series()`` are refused as ``forbidden_table``.

Limits: every query runs in a separate worker process (:mod:`lakenodes.lake._sql_sandbox`) under a wall-clock
``timeout_s`` and a ``memory_limit`` (arguments, else ``LAKENODES_SQL_TIMEOUT`` / ``LAKENODES_SQL_MEMORY_LIMIT``
read at call time, else 30 s / 1 GiB; see :mod:`lakenodes.lake._sql_limits`). DataFusion's memory pool refuses
operators past the limit; a worker past the deadline, or whose memory grows past the limit plus a slack,
is killed (DataFusion work cannot be interrupted in-process), so a runaway query stops for real.

Error kinds: ``invalid_argument``, ``syntax_error``, ``forbidden_statement``, ``forbidden_table``,
``table_not_found``, ``storage_error``, ``execution_error``, ``timeout`` and ``resources_exhausted``.
``retryable`` is True only for transient storage failures (timeouts, connection errors, throttling) and a
worker process that could not start or died unexpectedly; a query that hit a limit will hit it again.

Engine note: local tables are registered through deltalake's DataFusion (FFI) table provider. Remote tables
(``s3://`` ...) are registered as the pyarrow dataset of the table's current snapshot, because with
deltalake 1.6 / datafusion 55 the FFI provider cannot reach remote object stores at scan time
(delta-io/delta-rs#4623, apache/datafusion#24733). Such datasets cannot read tables that need deletion
vectors or other unsupported reader features; that surfaces as ``execution_error``.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from .._internal.deferred import datafusion, pa
from ..errors import plain_message
from . import _sql_sandbox
from ._retry import transient_message
from ._sql_limits import Refusal, resolve_limits
from ._storage_errors import as_storage_error
from ._unreadable import unreadable_file, unreadable_reason
from .location import Lake

__all__ = ["run_readonly_query", "MAX_ROWS_LIMIT", "FORBIDDEN_KEYWORDS"]

logger = logging.getLogger("lakenodes.sql")  # one logger for the SQL modules (and the worker's stderr)

MAX_ROWS_LIMIT = 100_000
MAX_SQL_CHARS = 100_000
TABLE_NAME_PATTERN = _NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}$")

#: Statement keywords that may never appear (unquoted) in a read-only query.
FORBIDDEN_KEYWORDS = frozenset(
    """INSERT UPDATE DELETE MERGE UPSERT TRUNCATE COPY CREATE DROP ALTER RENAME SET RESET EXPLAIN ANALYZE
    DESCRIBE SHOW ATTACH DETACH INSTALL PRAGMA GRANT REVOKE VACUUM PREPARE EXECUTE DEALLOCATE INTO
    RECURSIVE""".split()
)
_READ_STARTS = ("SELECT", "WITH")

_DOLLAR_TAG_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


_Refusal = Refusal


def run_readonly_query(
    table_uri: str,
    sql: str,
    *,
    table_names: list[str],
    storage_options: dict[str, str] | None = None,
    max_rows: int = 1000,
    meta_table_uid: str | None = None,
    query_id: str | None = None,
    timeout_s: float | None = None,
    memory_limit: int | str | None = None,
    version: int | None = None,
) -> dict:
    """Run one read-only SQL query against the Delta table at ``table_uri``.

    Returns ``{"ok", "query_id", "meta_table_uid", "results", "truncated", "max_rows", "row_count",
    "error"}``; ``results`` holds at most ``max_rows`` JSON-safe row dicts, ``truncated`` tells whether more
    rows existed, ``error`` is ``None`` or ``{"kind", "message", "retryable"}``. See the module docstring.

    ``timeout_s`` (seconds) and ``memory_limit`` (bytes, or a string such as ``"512MiB"``) bound the query;
    ``None`` reads ``LAKENODES_SQL_TIMEOUT`` / ``LAKENODES_SQL_MEMORY_LIMIT`` now, else 30 s and 1 GiB.
    A query past either limit is stopped (its worker process is killed) and refused as ``timeout`` or
    ``resources_exhausted``. ``version`` queries that table version (time travel) instead of the latest.
    """
    query_id = query_id if isinstance(query_id, str) and query_id else uuid.uuid4().hex
    envelope: dict[str, Any] = {
        "ok": False,
        "query_id": query_id,
        "meta_table_uid": meta_table_uid,
        "results": [],
        "truncated": False,
        "max_rows": max_rows if isinstance(max_rows, int) else None,
        "row_count": 0,
        "error": None,
    }
    started = time.monotonic()
    try:
        names = _check_arguments(table_uri, sql, table_names, storage_options, max_rows)
        limits = resolve_limits(timeout_s, memory_limit)
        _lex_check(sql)
        request = dict(
            uri=table_uri, sql=sql, names=names, storage_options=storage_options, max_rows=max_rows, version=version
        )
        rows = _sql_sandbox.run_in_worker(request, limits)
    except _Refusal as exc:
        envelope["error"] = {"kind": exc.kind, "message": exc.message, "retryable": exc.retryable}
        level = logging.WARNING if exc.kind.startswith("forbidden") or exc.retryable else logging.INFO
        logger.log(level, "query %s refused/failed: %s: %s", query_id, exc.kind, exc.message)
        logger.debug("query %s sql: %r", query_id, sql)
        return envelope
    except Exception as exc:  # never raise: unexpected failures become an execution_error envelope
        logger.exception("query %s failed unexpectedly", query_id)
        envelope["error"] = {"kind": "execution_error", "message": _clean(exc), "retryable": False}
        return envelope
    envelope.update(ok=True, truncated=len(rows) > max_rows, results=rows[:max_rows])
    envelope["row_count"] = len(envelope["results"])
    logger.info(
        "query %s ok: rows=%d truncated=%s in %.3fs",
        query_id,
        envelope["row_count"],
        envelope["truncated"],
        time.monotonic() - started,
    )
    return envelope


def _check_arguments(
    table_uri: Any, sql: Any, table_names: Any, storage_options: Any, max_rows: Any
) -> list[str]:
    """Validate the arguments; return the distinct names to register."""
    if not isinstance(table_uri, str) or not table_uri.strip():
        raise _Refusal("invalid_argument", "table_uri must be a non-empty string")
    if not isinstance(sql, str):
        raise _Refusal("invalid_argument", f"sql must be a string, got {type(sql).__name__}")
    if not sql.strip():
        raise _Refusal("invalid_argument", "sql is empty")
    if len(sql) > MAX_SQL_CHARS:
        raise _Refusal("invalid_argument", f"sql is longer than {MAX_SQL_CHARS} characters")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or not 1 <= max_rows <= MAX_ROWS_LIMIT:
        raise _Refusal(
            "invalid_argument", f"max_rows must be an integer in 1..{MAX_ROWS_LIMIT}, got {max_rows!r}"
        )
    if storage_options is not None and not (
        isinstance(storage_options, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in storage_options.items())
    ):
        raise _Refusal("invalid_argument", "storage_options must be a dict of str to str")
    if isinstance(table_names, str) or not isinstance(table_names, (list, tuple)) or not table_names:
        raise _Refusal("invalid_argument", "table_names must be a non-empty list of names")
    names: list[str] = []
    for name in table_names:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise _Refusal("invalid_argument", f"invalid table name {name!r}: must match {_NAME_RE.pattern}")
        names += [name, name.lower()]
    return list(dict.fromkeys(names))


def _lex_check(sql: str) -> None:
    """Refuse anything that is not exactly one SELECT/WITH statement without statement keywords."""
    tokens = _tokenize(sql)
    if not tokens:
        raise _Refusal("invalid_argument", "sql contains only comments")
    if tokens[-1] == ";":
        tokens = tokens[:-1]
    if ";" in tokens:
        raise _Refusal(
            "forbidden_statement", "multiple statements are not allowed (found ';' before the end)"
        )
    first = next((t for t in tokens if t != "("), "")
    if first not in _READ_STARTS:
        raise _Refusal(
            "forbidden_statement", f"only SELECT or WITH queries are allowed, got {first or 'nothing'!r}"
        )
    bad = sorted({t for t in tokens if t in FORBIDDEN_KEYWORDS})
    if bad:
        raise _Refusal(
            "forbidden_statement",
            f"forbidden keyword(s) in a read-only query: {', '.join(bad)} "
            "(double-quote identifiers that use these names)",
        )


def _tokenize(sql: str) -> list[str]:
    """Significant tokens of ``sql``: upper-cased bare words and punctuation; literals become ``'``/``"``."""
    tokens: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif c == "'" or (c in "eE" and sql.startswith("'", i + 1)):
            backslash = c != "'"
            i = _skip_quoted(sql, i + (1 if backslash else 0), "'", backslash)
            tokens.append("'")
        elif c in '"`':
            i = _skip_quoted(sql, i, c, False)
            tokens.append('"')
        elif c == "$" and (m := _DOLLAR_TAG_RE.match(sql, i)):
            end = sql.find(m.group(0), m.end())
            if end < 0:
                raise _Refusal("syntax_error", "unterminated dollar-quoted string")
            i = end + len(m.group(0))
            tokens.append("'")
        elif c.isalpha() or c == "_":
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] in "_$"):
                j += 1
            tokens.append(sql[i:j].upper())
            i = j
        elif c.isdigit():
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] in "._"):
                j += 1
            tokens.append("0")
            i = j
        else:
            tokens.append(c)
            i += 1
    return tokens


def _skip_block_comment(sql: str, i: int) -> int:
    depth, i = 1, i + 2
    while depth:
        nxt_open, nxt_close = sql.find("/*", i), sql.find("*/", i)
        if nxt_close < 0:
            raise _Refusal("syntax_error", "unterminated /* comment")
        if 0 <= nxt_open < nxt_close:
            depth, i = depth + 1, nxt_open + 2
        else:
            depth, i = depth - 1, nxt_close + 2
    return i


def _skip_quoted(sql: str, i: int, quote: str, backslash: bool) -> int:
    """Index just past the literal/identifier opening at ``sql[i] == quote`` (doubled quote escapes)."""
    j = i + 1
    while j < len(sql):
        if backslash and sql[j] == "\\":
            j += 2
        elif sql[j] == quote:
            if sql.startswith(quote, j + 1):
                j += 2
            else:
                return j + 1
        else:
            j += 1
    raise _Refusal(
        "syntax_error", f"unterminated {'string literal' if quote == chr(39) else 'quoted identifier'}"
    )


def _execute(
    uri: str,
    sql: str,
    names: list[str],
    storage_options: dict[str, str] | None,
    max_rows: int,
    memory_limit: int,
    version: int | None = None,
) -> pa.Table:
    """Plan ``sql`` in a locked-down session, check its table scans and fetch at most max_rows + 1 rows.

    Runs in the worker process. Operators that track memory (joins, sorts, aggregations...) share a pool of
    ``memory_limit`` bytes; spilling to disk is disabled, so exceeding it fails as ``resources_exhausted``.
    """
    provider = _open_table(uri, storage_options, version)
    config = datafusion.SessionConfig().with_information_schema(False)
    runtime = datafusion.RuntimeEnvBuilder().with_disk_manager_disabled().with_greedy_memory_pool(memory_limit)
    ctx = datafusion.SessionContext(config, runtime)  # URL tables stay disabled: enable_url_table() is never called
    schema = ctx.catalog().schema()
    for name in names:
        schema.register_table(name, provider)
    options = datafusion.SQLOptions().with_allow_ddl(False).with_allow_dml(False).with_allow_statements(False)
    try:
        df = ctx.sql_with_options(sql, options)
        _check_scans(df.logical_plan().display_indent(), names)
        return df.limit(max_rows + 1).to_arrow_table()
    except _Refusal:
        raise
    except Exception as exc:  # DataFusion raises ValueError/Exception with the engine's message
        raise _classify(_clean(exc), names, uri) from None


def _open_table(uri: str, storage_options: dict[str, str] | None, version: int | None = None) -> Any:
    """Open the Delta table (at ``version``): the FFI provider for local paths, the pyarrow dataset for remote stores."""
    try:
        table = DeltaTable(uri, version=version, storage_options=storage_options)
        is_local = "://" not in uri or uri.startswith("file://")
        return table if is_local else table.to_pyarrow_dataset()
    except TableNotFoundError as exc:
        raise _Refusal("table_not_found", f"no Delta table at {uri}: {_clean(exc)}") from None
    except Exception as exc:
        # e.g. a commit or checkpoint cut short: named (found with the table's own storage options), with what to do
        mapped = as_storage_error(exc, uri, "open", Lake(uri, storage_options=storage_options))
        if mapped is not None:
            raise _Refusal("storage_error", f"table {uri}: {mapped.reason}") from None
        message = _clean(exc)
        transient = transient_message(message)
        kind = "storage_error" if transient or isinstance(exc, OSError) else "execution_error"
        raise _Refusal(kind, f"cannot open Delta table at {uri}: {message}", transient) from None


def _check_scans(plan_text: str, names: list[str]) -> None:
    allowed = {p + n for n in names for p in ("", "public.", "datafusion.public.")}
    for scanned in re.findall(r"TableScan: (\S+)", plan_text):
        if scanned not in allowed:
            raise _Refusal(
                "forbidden_table", f"query reads {scanned!r}; only {', '.join(names)} may be queried"
            )


def _classify(message: str, names: list[str], uri: str = "") -> _Refusal:
    if "ParserError" in message or "TokenizerError" in message:
        return _Refusal("syntax_error", message)
    if re.search(
        r"(DDL|DML|Statement) not supported|only supports a single SQL statement|Unsupported SQL statement",
        message,
    ):
        return _Refusal("forbidden_statement", message)
    if m := re.search(r"table (function )?'([^']*)' not found", message):
        named = re.sub(r"^(datafusion\.)?public\.", "", m.group(2))  # DataFusion's catalog, not the user's words
        return _Refusal(
            "forbidden_table",
            f"unknown or forbidden table{' function' if m.group(1) else ''} "
            f"{named!r}; only {', '.join(names)} may be queried",
        )
    if re.search(r"Resources exhausted|memory pool|Failed to allocate", message, re.IGNORECASE):
        return _Refusal("resources_exhausted", message)
    if found := unreadable_file(message):  # deleted or cut short outside vacuum: no retry brings it back
        logger.debug("unreadable file of %s: %s", uri, message)
        file, missing = found  # DataFusion drops a local path's leading "/"
        file = f"/{file}" if uri.startswith("/") and not file.startswith("/") else file
        return _Refusal("storage_error", f"table {uri}: {unreadable_reason(file, missing)}")
    if transient_message(message):
        return _Refusal("storage_error", message, True)
    return _Refusal("execution_error", message)


def _clean(exc: BaseException) -> str:
    """One-line, colour-free engine message without DataFusion's 'file a bug' boilerplate."""
    text = plain_message(exc).replace("↳", " ")
    text = text.split("This issue was likely caused by a bug")[0]
    text = " ".join(text.split())
    return text[:1000] or type(exc).__name__
