"""The ``lakenodes`` command line: browse and search the catalog, query and trim tables, run
DataNodes from a scheduler, and maintain the lake.

Every command accepts ``--lake URI`` (else ``$LAKENODES_URI``, else ``./lake``), ``--json`` (one
JSON document on stdout, nothing else) and ``--verbose`` (INFO logs on stderr), before or after
the command name. Exit codes: 0 success; 1 failure (a node run, storage, a refused confirmation);
2 user mistake, reported as one ``error: ...`` line on stderr without a traceback. Nothing
assumes a terminal, so the commands fit cron, Airflow and Kubernetes jobs. Commands also answer
to the seeds' underscore spellings (``data_node run_query``); ``--version`` prints the version.

Example:
    $ lakenodes data-node list --filter identifier__contains=example_random_number_
    $ lakenodes --json data-node detail example_random_number_local
    $ lakenodes run examples.tutorial_nodes:DailyRandomNumber --config '{"mean": 0.0}'
    $ lakenodes optimize && lakenodes vacuum --dry-run
"""

import contextlib
import dataclasses
import datetime
import enum
import functools
import importlib
import importlib.metadata
import inspect
import json
import logging
import multiprocessing
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

try:  # typer >= 0.20 vendors click
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer on top of click
    from click.exceptions import NoArgsIsHelpError, UsageError

from . import catalog, maintenance
from .assets import Asset
from .catalog import TimeIndexMetaTable
from .errors import LakenodesUserError, NodeRunError, NotFoundError
from .lake import Lake, use_lake
from .launch import build_config
from .lookups import OPERATORS, split_lookup

logger = logging.getLogger(__name__)

FAILURE = 1
USER_ERROR = 2
LIST_HINT = "list tables with `lakenodes data-node list`"


# -- errors and the root group ------------------------------------------------------------------
class CommandFailed(Exception):
    """A command outcome that ends the process with ``code`` after one ``error:`` line."""

    def __init__(self, code: int, message: str, kind: str = "error", *, reported: bool = False):
        super().__init__(message)
        self.code, self.kind, self.reported = code, kind, reported


def one_line(message: object) -> str:
    """``message`` squeezed onto one line (pydantic and delta-rs messages span several)."""
    return re.sub(r"\s*\n\s*", " ", str(message)).strip()


def _print_error(message: object) -> None:
    typer.echo(f"error: {one_line(message)}", err=True)


class _SeedSpellingGroup(TyperGroup):
    """A command group whose commands also answer to the seeds' underscore spelling
    (``data_node``, ``run_query``): hidden aliases, not listed in ``--help``."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        if found is None and "_" in cmd_name:
            found = super().get_command(ctx, cmd_name.replace("_", "-"))
        return found

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, found, rest = super().resolve_command(ctx, args)
        return (found.name if found is not None else name), found, rest  # usage lines use the canonical name


class _OneLineErrorGroup(_SeedSpellingGroup):
    """Root group: click usage errors become one ``error: ...`` line and exit code 2."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except NoArgsIsHelpError as error:  # a bare group: show its help
            typer.echo(error.format_message(), err=True)
            code = USER_ERROR
        except typer.TyperException as error:
            context = getattr(error, "ctx", None)
            hint = f" (see `{context.command_path} --help`)" if context is not None else ""
            _print_error(f"{error.format_message()}{hint}")
            code = USER_ERROR if isinstance(error, UsageError) else error.exit_code
        except typer.Abort:
            _print_error("aborted")
            code = FAILURE
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=_OneLineErrorGroup, name="lakenodes", no_args_is_help=True, add_completion=False,
    pretty_exceptions_enable=False, rich_markup_mode=None,
    help="Incremental, time-indexed DataNodes on a Delta lake: catalog, search, SQL, runs, maintenance.",
)
data_node_app = typer.Typer(cls=_SeedSpellingGroup, no_args_is_help=True,
                            help="Tables (DataNode storages) in the catalog.")
updates_app = typer.Typer(cls=_SeedSpellingGroup, no_args_is_help=True,
                          help="Update processes (updaters) and their run history (the seeds' "
                               "`project data-node-updates`).")
assets_app = typer.Typer(cls=_SeedSpellingGroup, no_args_is_help=True, help="The asset registry.")
app.add_typer(data_node_app, name="data-node")
app.add_typer(updates_app, name="updates")
app.add_typer(assets_app, name="assets")

LakeOption = Annotated[str | None, typer.Option(
    "--lake", metavar="URI", show_default=False,
    help="Lake root: a folder or s3://bucket/prefix [default: $LAKENODES_URI, else ./lake].")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one machine-readable JSON document on stdout.")]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO level to stderr.")]
NamespaceOption = Annotated[str | None, typer.Option(
    "--namespace", "-n", show_default=False, help="Namespace in which an IDENTIFIER is resolved [default: none].")]
TableArgument = Annotated[str, typer.Argument(metavar="UID", help="Table uid, identifier or storage hash.")]
FilterOption = Annotated[list[str] | None, typer.Option(
    "--filter", "-f", metavar="K=V", show_default=False,
    help="Django-style lookup, repeatable: identifier__contains=px, labels__contains=daily, namespace=, "
         "ticker__in='[\"NVDA\",\"AAPL\"]' (or ticker__in=NVDA,AAPL).")]


@dataclasses.dataclass
class _GlobalOptions:
    lake: str | None = None
    json: bool = False
    verbose: bool = False


def version_text() -> str:
    """``lakenodes <version>`` of the installed distribution."""
    try:
        version = importlib.metadata.version("lakenodes")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        version = "(not installed)"
    return f"lakenodes {version}"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit(0)


@app.callback()
def _root(ctx: typer.Context, lake: LakeOption = None, json_output: JsonOption = False,
          verbose: VerboseOption = False,
          version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                                help="Print the lakenodes version and exit.")] = False) -> None:
    ctx.obj = _GlobalOptions(lake, json_output, verbose)


# -- one command invocation ---------------------------------------------------------------------
@dataclasses.dataclass
class Session:
    """What every command gets: the resolved lake and the output mode."""

    lake: Lake
    json: bool
    verbose: bool

    def output(self, document: Any, render: Callable[[Console], None]) -> None:
        """``document`` as JSON with ``--json``, else ``render`` for humans."""
        if self.json:
            typer.echo(to_json(document))
        else:
            render(_console())


def to_json(document: Any) -> str:
    return json.dumps(document, default=_json_default, indent=2, ensure_ascii=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _console() -> Console:
    wide = None if sys.stdout.isatty() else 1000  # no wrapping or truncation in pipes and logs
    return Console(highlight=False, width=wide, soft_wrap=False)


_COMMON_PARAMETERS = [
    inspect.Parameter("typer_context", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
    inspect.Parameter("lake", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=LakeOption),
    inspect.Parameter("json_output", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOption),
    inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=VerboseOption),
]


def command(group: typer.Typer, name: str, *, lake_must_exist: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func(session, ...)`` as ``group name`` with the common options added.

    The wrapper resolves the lake, sets up logging and turns errors into exit codes.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        parameters = list(inspect.signature(func, eval_str=True).parameters.values())[1:]

        @functools.wraps(func)
        def wrapper(*args: Any, typer_context: typer.Context, lake: str | None = None, json_output: bool = False,
                    verbose: bool = False, **kwargs: Any) -> None:
            options = typer_context.find_object(_GlobalOptions) or _GlobalOptions()
            json_mode, verbose = json_output or options.json, verbose or options.verbose
            with _logging_to_stderr(verbose), _errors_to_exit_codes(json_mode, verbose):
                session = Session(_open_lake(lake or options.lake, lake_must_exist), json_mode, verbose)
                with use_lake(session.lake):
                    func(session, *args, **kwargs)

        wrapper.__signature__ = inspect.Signature([*parameters, *_COMMON_PARAMETERS])  # type: ignore[attr-defined]
        group.command(name)(wrapper)
        return func

    return decorate


def _open_lake(uri: str | None, must_exist: bool) -> Lake:
    lake = Lake(uri)
    if must_exist and lake.is_local and not os.path.isdir(lake.uri):
        raise LakenodesUserError(
            f"no lake at {lake.uri}: pass --lake URI or set LAKENODES_URI (a lake is created by its first run)"
        )
    return lake


@contextlib.contextmanager
def _logging_to_stderr(verbose: bool) -> Iterator[None]:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    level = logging.INFO if verbose else logging.ERROR
    handler.setLevel(level)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@contextlib.contextmanager
def _errors_to_exit_codes(json_mode: bool, verbose: bool) -> Iterator[None]:
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except CommandFailed as failure:
        _fail(failure.code, failure.kind, str(failure), json_mode and not failure.reported, verbose)
    except NodeRunError as error:
        _fail(FAILURE, "run_error", str(error), json_mode, verbose)
    except LakenodesUserError as error:
        _fail(USER_ERROR, "user_error", str(error), json_mode, verbose)
    except Exception as error:  # storage and other failures: one line, traceback with --verbose
        _fail(FAILURE, "error", f"{type(error).__name__}: {error}", json_mode, verbose)


def _fail(code: int, kind: str, message: str, json_document: bool, verbose: bool) -> None:
    if verbose and sys.exc_info()[0] is not None:
        traceback.print_exc(file=sys.stderr)
    if json_document:
        typer.echo(to_json({"ok": False, "error": {"kind": kind, "message": one_line(message)}}))
    _print_error(message)
    raise typer.Exit(code)


# -- argument parsing ---------------------------------------------------------------------------
def parse_pairs(pairs: Sequence[str] | None, option: str) -> list[tuple[str, str]]:
    """``["k=v", ...]`` → ``[("k", "v"), ...]``; the value may be empty or contain ``=``."""
    parsed = []
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise LakenodesUserError(f"{option} {pair!r} is not K=V (e.g. {option} identifier__contains=prices)")
        parsed.append((key.strip(), value))
    return parsed


def parse_lookups(pairs: Sequence[str] | None, model: type[BaseModel] | None = None) -> dict[str, Any]:
    """``--filter`` values → lookups: ``__in`` takes a JSON list (``["NVDA","AAPL"]``) or a comma
    list (``NVDA,AAPL``), ``__isnull`` and bool fields take true/false; with ``model``, unknown
    fields are refused up front."""
    lookups: dict[str, Any] = {}
    for key, value in parse_pairs(pairs, "--filter"):
        field, operator = split_lookup(key)
        if operator not in OPERATORS:
            raise LakenodesUserError(f"unknown lookup operator in {key!r}: use one of {', '.join(OPERATORS)}")
        if model is not None and field not in model.model_fields:
            raise LakenodesUserError(f"unknown field {field!r} in --filter {key!r}; fields are {', '.join(model.model_fields)}")
        if key in lookups:
            raise LakenodesUserError(f"--filter {key} is given twice")
        annotation = model.model_fields[field].annotation if model is not None else None
        if operator == "in":
            lookups[key] = parse_in_values(value, key)
        elif operator == "isnull" or (annotation is bool and operator == "exact"):
            lookups[key] = _parse_bool(value, key)
        else:
            lookups[key] = value
    return lookups


def parse_in_values(value: str, key: str) -> list[Any]:
    """The values of an ``__in`` filter: a JSON list of scalars, or else a comma-separated list."""
    if not value.lstrip().startswith("["):
        return value.split(",")
    example = f'{key}=\'["NVDA","AAPL"]\' or {key}=NVDA,AAPL'
    try:
        values = json.loads(value)
    except (ValueError, RecursionError):
        raise LakenodesUserError(f"--filter {key}={value!r} is not a JSON list; write {example}") from None
    if not isinstance(values, list) or not all(isinstance(item, (str, int, float, bool)) for item in values):
        raise LakenodesUserError(f"--filter {key}={value!r} must be a list of strings or numbers; write {example}")
    return values


def _parse_bool(value: str, key: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise LakenodesUserError(f"--filter {key}={value!r}: expected true or false")


def resolve_table(lake: Lake, ref: str, namespace: str | None = None) -> TimeIndexMetaTable:
    """A table by uid, storage hash, or identifier (in ``namespace``, default the empty one)."""
    tables = catalog.all_tables(lake)
    found = [table for table in tables if ref in (table.uid, table.storage_hash)]
    found = found or [table for table in tables if table.identifier == ref and table.namespace == (namespace or "")]
    if found:
        return found[0]
    elsewhere = sorted({repr(table.namespace) for table in tables if table.identifier == ref})
    hint = f" (identifier {ref!r} exists in namespace {', '.join(elsewhere)}: pass --namespace)" if elsewhere else ""
    where = f" in namespace {namespace!r}" if namespace else ""
    raise NotFoundError(f"no table with uid, identifier or storage hash {ref!r}{where} in {lake.uri}{hint}; {LIST_HINT}")


def _name(table: TimeIndexMetaTable) -> str:
    return table.identifier or table.storage_hash


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    return str(value)


def _table(*columns: str, no_wrap: Sequence[str] = ()) -> Table:
    table = Table(show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column, no_wrap=column in no_wrap, overflow="fold")
    return table


# -- data-node ----------------------------------------------------------------------------------
@command(data_node_app, "list")
def data_node_list(session: Session, filters: FilterOption = None) -> None:
    """List tables (optionally filtered) with their index and last index value."""
    lookups = parse_lookups(filters, TimeIndexMetaTable)
    tables = sorted(TimeIndexMetaTable.filter(lake=session.lake, **lookups),
                    key=lambda t: (t.namespace, t.identifier or "", t.storage_hash))
    stats = {table.storage_hash: table.stats() for table in tables}
    document = {"count": len(tables), "results": [
        {**table.model_dump(mode="json"), "last_index_value": stats[table.storage_hash]["last_time_index_value"],
         "row_count": stats[table.storage_hash]["row_count"]} for table in tables]}

    def render(console: Console) -> None:
        if not tables:
            console.print(f"no tables in {session.lake.uri}" + (f" match {lookups}" if lookups else ""))
            return
        view = _table("UID", "Identifier", "Namespace", "Storage hash", "Frequency", "Index", "Columns",
                      "Last index value", no_wrap=("UID", "Identifier", "Storage hash", "Last index value"))
        for table in tables:
            values = [c.column_name for c in table.columns if c.column_name not in table.index_names]
            view.add_row(table.uid, table.identifier or "", table.namespace, table.storage_hash,
                         table.data_frequency_id or "", ", ".join(table.index_names), ", ".join(values),
                         stats[table.storage_hash]["last_time_index_value"] or "(empty)")
        console.print(view)

    session.output(document, render)


@command(data_node_app, "detail")
def data_node_detail(session: Session, ref: TableArgument, namespace: NamespaceOption = None) -> None:
    """Everything about one table: record, columns, statistics, updaters and read snippets."""
    table = resolve_table(session.lake, ref, namespace)
    stats = table.stats()
    updaters = [u for u in catalog.update_processes(session.lake) if u["storage_hash"] == table.storage_hash]
    snippets = read_snippets(table.table_uri)
    document = {"table": table.model_dump(mode="json"), "stats": stats, "table_uri": table.table_uri,
                "update_processes": updaters, "read_snippets": snippets}

    def render(console: Console) -> None:
        fields = _table("Field", "Value", no_wrap=("Field",))
        for key in ("uid", "identifier", "namespace", "storage_hash", "description", "labels", "data_frequency_id",
                    "index_names", "source_class", "table_uri", "recorded_at"):
            fields.add_row(key, _text(getattr(table, key)))
        fields.add_row("build_configuration", _text(table.build_configuration))
        for key in ("row_count", "earliest_index_value", "last_time_index_value"):
            fields.add_row(key, _text(stats[key]))
        console.print(fields)
        columns = _table("Column", "Dtype", "Label", "Description", no_wrap=("Column", "Dtype"))
        for column in table.columns:
            columns.add_row(column.column_name, column.dtype, column.label or "", column.description or "")
        console.print(columns)
        if stats.get("multi_index_stats"):
            per_identity = _table("Identity", "First", "Last", no_wrap=("First", "Last"))
            for identity, first, last in _flatten_identity_stats(stats["multi_index_stats"]):
                per_identity.add_row(" / ".join(identity), first or "", last or "")
            console.print(per_identity)
        if updaters:
            _print_updaters(console, updaters, {table.storage_hash: table.identifier})
        for engine, snippet in snippets.items():
            console.print(f"\n# read with {engine}", style="bold")
            console.print(snippet, markup=False, soft_wrap=True)

    session.output(document, render)


def _flatten_identity_stats(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    for key, value in tree.items():
        if isinstance(value, dict) and set(value) == {"min", "max"}:
            yield (*prefix, key), value["min"], value["max"]
        elif isinstance(value, dict):
            yield from _flatten_identity_stats(value, (*prefix, key))


def read_snippets(table_uri: str) -> dict[str, str]:
    """Copy-paste code to read a table without lakenodes (polars, DuckDB, Spark)."""
    remote = table_uri.startswith("s3://")
    credentials = "# credentials and endpoint come from the standard AWS_* environment variables\n" if remote else ""
    duckdb_secret = "CREATE SECRET (TYPE s3, PROVIDER credential_chain);\n" if remote else ""
    spark_uri = "s3a://" + table_uri[len("s3://"):] if remote else table_uri
    return {
        "polars": f'{credentials}import polars as pl\ndf = pl.scan_delta("{table_uri}").collect()',
        "duckdb": f"{credentials.replace('#', '--')}INSTALL delta; LOAD delta;\n{duckdb_secret}"
                  f"SELECT * FROM delta_scan('{table_uri}') LIMIT 10;",
        "spark": f'df = spark.read.format("delta").load("{spark_uri}")',
    }


@command(data_node_app, "org-unique-identifiers")
def data_node_identifiers(session: Session) -> None:
    """Identifiers in use: identifier, namespace and the storage each points at."""
    tables = sorted((t for t in catalog.all_tables(session.lake) if t.identifier),
                    key=lambda t: (t.namespace, t.identifier or ""))
    rows = [{"identifier": t.identifier, "namespace": t.namespace, "storage_hash": t.storage_hash, "uid": t.uid}
            for t in tables]

    def render(console: Console) -> None:
        view = _table("Identifier", "Namespace", "Storage hash", "UID", no_wrap=("Identifier", "Storage hash", "UID"))
        for row in rows:
            view.add_row(row["identifier"], row["namespace"], row["storage_hash"], row["uid"])
        console.print(view)

    session.output({"count": len(rows), "results": rows}, render)


@command(data_node_app, "run-query")
def data_node_run_query(
    session: Session,
    ref: TableArgument,
    sql: Annotated[str, typer.Argument(help="One SELECT/WITH; name the table by its identifier or storage hash.")],
    max_rows: Annotated[int, typer.Option("--max-rows", help="Return at most this many rows.")] = 1000,
    namespace: NamespaceOption = None,
) -> None:
    """Run one read-only SQL query over a table (DDL, DML and other tables are refused)."""
    table = resolve_table(session.lake, ref, namespace)
    envelope = table.run_query(sql, max_rows=max_rows)
    if envelope["ok"] or session.json:
        session.output(envelope, lambda console: _print_rows(console, envelope))
    if not envelope["ok"]:
        error = envelope["error"] or {}
        code = FAILURE if error.get("kind") == "storage_error" else USER_ERROR
        raise CommandFailed(code, f"{error.get('kind')}: {error.get('message')}", str(error.get("kind")),
                            reported=session.json)


def _print_rows(console: Console, envelope: dict[str, Any]) -> None:
    rows = envelope["results"]
    if rows:
        view = _table(*rows[0].keys())
        for row in rows:
            view.add_row(*(_text(value) for value in row.values()))
        console.print(view)
    more = f" (truncated at --max-rows {envelope['max_rows']})" if envelope["truncated"] else ""
    console.print(f"{envelope['row_count']} row(s){more}")


@command(data_node_app, "delete-after-date")
def data_node_delete_after_date(
    session: Session,
    ref: TableArgument,
    date: Annotated[str, typer.Argument(metavar="DATE", help="Delete rows with time_index >= DATE (ISO-8601, UTC if naive).")],
    dimension_filters: Annotated[list[str] | None, typer.Option(
        "--dimension-filter", "-d", metavar="K=V", show_default=False,
        help="Only delete these identities, repeatable: unique_identifier=AAPL.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    namespace: NamespaceOption = None,
) -> None:
    """Delete the tail of a table (rows at or after DATE), optionally for some identities only."""
    from .node import parse_datetime

    table = resolve_table(session.lake, ref, namespace)
    cutoff = parse_datetime(date, "DATE")
    scope: dict[str, list[str]] = {}
    for key, value in parse_pairs(dimension_filters, "--dimension-filter"):
        scope.setdefault(key, []).append(value)
    unknown = sorted(set(scope) - set(table.index_names[1:]))
    if unknown:
        raise LakenodesUserError(f"{', '.join(unknown)} is not an identity dimension of {_name(table)}; "
                                 f"its dimensions are {table.index_names[1:]}")
    if not (yes or session.json):
        where = f" where {scope}" if scope else ""
        try:
            confirmed = typer.confirm(f"Delete rows of {_name(table)} with time_index >= {cutoff.isoformat()}{where}?",
                                      default=False, err=True)
        except typer.Abort:
            typer.echo(err=True)
            raise LakenodesUserError("no confirmation on stdin: pass --yes to delete without asking") from None
        if not confirmed:
            raise CommandFailed(FAILURE, "not confirmed; nothing was deleted", "not_confirmed")
    result = table.delete_after_date(cutoff, dimension_filters=scope or None)

    def render(console: Console) -> None:
        console.print(f"deleted {result['deleted_count']} row(s) of {_name(table)} with time_index >= "
                      f"{cutoff.isoformat()}; last index value now {result['stats']['last_time_index_value']}"
                      + (" (table is empty)" if result["table_empty"] else ""))

    session.output(result, render)


@command(data_node_app, "add-label")
def data_node_add_label(session: Session, ref: TableArgument, label: str, namespace: NamespaceOption = None) -> None:
    """Add a label to a table (labels never change its identity)."""
    _change_label(session, resolve_table(session.lake, ref, namespace).add_label(_label(label)))


@command(data_node_app, "remove-label")
def data_node_remove_label(session: Session, ref: TableArgument, label: str, namespace: NamespaceOption = None) -> None:
    """Remove a label from a table."""
    _change_label(session, resolve_table(session.lake, ref, namespace).remove_label(_label(label)))


def _label(label: str) -> str:
    if not label.strip():
        raise LakenodesUserError("LABEL must not be empty")
    return label


def _change_label(session: Session, table: TimeIndexMetaTable) -> None:
    session.output(table, lambda console: console.print(f"labels of {_name(table)}: {', '.join(table.labels) or '(none)'}"))


# -- search ---------------------------------------------------------------------------------------
class SearchMode(enum.StrEnum):
    both = "both"
    description = "description"
    column = "column"


def search(
    session: Session,
    query: Annotated[str | None, typer.Argument(metavar="Q", help="What you are looking for, in words.")] = None,
    mode: Annotated[SearchMode, typer.Option("--mode", help="Rank by description, by columns, or show both.")] = SearchMode.both,
    trigram_k: Annotated[int, typer.Option("--trigram-k", help="Trigram (full-text) candidates.")] = 200,
    embed_k: Annotated[int, typer.Option("--embed-k", help="Embedding candidates.")] = 200,
    w_trgm: Annotated[float, typer.Option("--w-trgm", help="Weight of the trigram score.")] = 0.65,
    w_emb: Annotated[float, typer.Option("--w-emb", help="Weight of the embedding score.")] = 0.35,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many tables per mode.")] = 20,
    filters: Annotated[list[str] | None, typer.Option(
        "--filter", "-f", metavar="K=V", show_default=False,
        help="namespace=, data_frequency_id=, labels__contains=, identifier__contains= (repeatable).")] = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Rebuild the search index from the catalog first.")] = False,
) -> None:
    """Find tables by meaning: description (trigram + embedding blend) and column search."""
    search_filters = dict(parse_pairs(filters, "--filter"))
    refreshed = TimeIndexMetaTable.rebuild_search_index(lake=session.lake) if refresh else None
    if not query or not query.strip():
        if refresh:
            session.output({"ok": True, "refreshed": refreshed},
                           lambda console: console.print(f"search index rebuilt from the catalog ({refreshed} tables)"))
            return
        raise LakenodesUserError("give a search query Q (or --refresh to rebuild the index)")
    pages: dict[str, Any] = {}
    if mode in (SearchMode.both, SearchMode.description):
        pages["description"] = TimeIndexMetaTable.description_search(
            query, trigram_k=trigram_k, embed_k=embed_k, w_trgm=w_trgm, w_emb=w_emb, limit=limit,
            lake=session.lake, **search_filters)
    if mode in (SearchMode.both, SearchMode.column):
        pages["column"] = TimeIndexMetaTable.column_search(query, limit=limit, lake=session.lake, **search_filters)

    def render(console: Console) -> None:
        for kind, page in pages.items():
            console.print(f"{kind} search for {query!r}: {page['count']} match(es)", style="bold")
            view = _table("Score", "Identifier", "Namespace", "Storage hash", "Matched columns", "Description",
                          no_wrap=("Score", "Identifier", "Storage hash"))
            for hit in page["results"]:
                view.add_row(f"{hit['score']:.3f}", hit.get("identifier") or "", hit.get("namespace") or "",
                             hit["storage_hash"], _text(hit.get("matched_columns")), hit.get("description") or "")
            console.print(view)

    session.output({"query": query, "mode": mode.value, **pages}, render)


command(app, "search")(search)
command(data_node_app, "search")(search)


@command(data_node_app, "refresh-search-index")
def data_node_refresh_search_index(session: Session, ref: TableArgument, namespace: NamespaceOption = None) -> None:
    """Re-index one table's metadata for search."""
    table = resolve_table(session.lake, ref, namespace)
    table.refresh_table_search_index()
    session.output({"ok": True, "meta_table_uid": table.uid},
                   lambda console: console.print(f"search index refreshed for {_name(table)}"))


# -- updates and assets -------------------------------------------------------------------------
@command(updates_app, "list")
def updates_list(session: Session) -> None:
    """Update processes: which updater writes which table, and how its last run went."""
    processes = catalog.update_processes(session.lake)
    identifiers = {t.storage_hash: t.identifier for t in catalog.all_tables(session.lake)}
    for process in processes:
        process["identifier"] = identifiers.get(process["storage_hash"])
    session.output({"count": len(processes), "results": processes},
                   lambda console: _print_updaters(console, processes, identifiers))


def _print_updaters(console: Console, processes: list[dict[str, Any]], identifiers: dict[str, str | None]) -> None:
    view = _table("Update hash", "Storage hash", "Identifier", "Namespace", "Last run", "Status", "Rows", "Runs",
                  no_wrap=("Update hash", "Storage hash", "Last run"))
    for p in processes:
        view.add_row(p["update_hash"], p["storage_hash"], identifiers.get(p["storage_hash"]) or "", p["namespace"] or "",
                     _text(p["last_run_at"]), p["last_status"] or "never run", _text(p["last_rows_written"]),
                     str(p["runs"]))
    console.print(view)


@command(updates_app, "runs")
def updates_runs(
    session: Session,
    update_hash: Annotated[str | None, typer.Argument(metavar="[UPDATE_HASH]", help="Only this update process.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show the most recent N runs.")] = 50,
) -> None:
    """Run history (most recent last): status, rows written, duration and error of every run."""
    if update_hash and not any(p["update_hash"] == update_hash for p in catalog.update_processes(session.lake)):
        raise NotFoundError(f"no update process {update_hash!r} in {session.lake.uri}; "
                            "list them with `lakenodes updates list`")
    runs = catalog.run_history(session.lake, update_hash)[-limit:]

    def render(console: Console) -> None:
        view = _table("Started", "Update hash", "Status", "Rows", "Seconds", "Host", "Error",
                      no_wrap=("Started", "Update hash"))
        for run in runs:
            seconds = (run["finished_at"] - run["started_at"]).total_seconds() if run["finished_at"] else None
            view.add_row(_text(run["started_at"]), run["update_hash"], run["status"], _text(run["rows_written"]),
                         f"{seconds:.2f}" if seconds is not None else "", run["host"] or "", one_line(run["error"] or ""))
        console.print(view)

    session.output({"count": len(runs), "results": runs}, render)


@command(assets_app, "list")
def assets_list(session: Session, filters: FilterOption = None) -> None:
    """Registered assets (optionally filtered, e.g. ticker__in=NVDA,AAPL)."""
    assets = sorted(Asset.filter(lake=session.lake, **parse_lookups(filters)), key=lambda a: a.unique_identifier)
    columns = list(Asset.model_fields)

    def render(console: Console) -> None:
        view = _table(*columns, no_wrap=("unique_identifier",))
        for asset in assets:
            view.add_row(*(_text(getattr(asset, column)) for column in columns))
        console.print(view)

    session.output({"count": len(assets), "results": [a.model_dump(mode="json") for a in assets]}, render)


# -- run ----------------------------------------------------------------------------------------
@command(app, "run", lake_must_exist=False)
def run_node(
    session: Session,
    target: Annotated[str, typer.Argument(metavar="MODULE:CLASS",
                                          help="A DataNode class: dotted.module:Class or path/to/file.py:Class.")],
    config: Annotated[str, typer.Option("--config", "-c", metavar="JSON",
                                        help="The node's configuration as JSON, or @file.json (at most 1 MiB); "
                                             "omitted fields take the configuration class's defaults.")] = "{}",
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", show_default=False,
                                                  help="Hash namespace: write to an isolated table.")] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1,
                                         help="Run independent dependency branches in N spawn processes.")] = 1,
) -> None:
    """Run a DataNode (and its dependencies) once, e.g. from cron, Airflow or a k8s job.

    --config is validated into the node's configuration class: its `Config` attribute, else the
    `config` annotation of its own `__init__`, else its `config: MyConfig` class annotation.
    Exit code 0 on success, 1 when the run fails, 2 for a bad class, configuration or argument.
    A progress bar over the nodes of the tree shows on an interactive terminal.
    """
    node_class = load_node_class(target)
    node_config = build_config(node_class, config)
    try:
        node = node_class(node_config, **({"hash_namespace": namespace} if namespace is not None else {}))
    except LakenodesUserError:
        raise
    except Exception as error:
        raise LakenodesUserError(f"could not build {node_class.__name__}: {type(error).__name__}: {error}") from error
    # user code may print: keep stdout for the one JSON document
    with contextlib.redirect_stdout(sys.stderr) if session.json else contextlib.nullcontext():
        written = _run_with_progress(session, node, workers)
    document = {"ok": True, "node": node.source_class, "update_hash": node.update_hash,
                "storage_hash": node.storage_hash, "namespace": node.hash_namespace, "table_uri": node.table_uri,
                "rows_written": written.height}
    session.output(document, lambda console: console.print(
        f"{node_class.__name__} {node.update_hash} -> {node.storage_hash}: {written.height} row(s) written"))


def _run_with_progress(session: Session, node: Any, workers: int) -> Any:
    """Run the node's tree (on a spawn pool when ``workers > 1``) with a progress bar over its nodes."""
    from .runner import run_many

    with contextlib.ExitStack() as stack:
        executor = None
        if workers > 1:
            context = multiprocessing.get_context("spawn")  # forking after delta-rs started hangs
            executor = stack.enter_context(ProcessPoolExecutor(workers, mp_context=context))
        results = run_many([node], executor=executor, on_progress=stack.enter_context(_node_progress(session)))
    return results[node.update_hash]


@contextlib.contextmanager
def _node_progress(session: Session) -> Iterator[Callable[[int, int, Any], None]]:
    """``on_progress(done, total, node)`` drawing a bar over a run's nodes on an interactive stderr;
    in-process nodes also show their current phase (statistics, update, validation, write…)."""
    from .runner import watch_phases

    console = Console(stderr=True)
    if session.json or not console.is_terminal:
        yield lambda done, total, node: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("running", total=None)

        def on_progress(done: int, total: int, node: Any) -> None:
            label = f"ran {type(node).__name__}" if node is not None else "running"
            bar.update(task, completed=done, total=total, description=label)

        with watch_phases(lambda node, phase: bar.update(task, description=f"{type(node).__name__}: {phase}")):
            yield on_progress


def load_node_class(target: str) -> type:
    """Import ``module:Class`` or ``path/to/file.py:Class`` (cwd is importable) and check it is a DataNode."""
    from .node import DataNode

    module_ref, sep, class_name = target.rpartition(":")
    if not sep or not module_ref.strip() or not class_name.strip():
        raise LakenodesUserError(f"{target!r} is not MODULE:CLASS (e.g. examples.tutorial_nodes:DailyRandomNumber "
                                 "or path/to/nodes.py:MyNode)")
    module = _import(module_ref.strip())
    node_class: Any = module
    for part in class_name.strip().split("."):
        node_class = getattr(node_class, part, None)
    if not (isinstance(node_class, type) and issubclass(node_class, DataNode)):
        available = sorted(name for name, value in vars(module).items()
                           if isinstance(value, type) and issubclass(value, DataNode) and value is not DataNode)
        what = "is not a DataNode class" if node_class is not None else "does not exist"
        raise LakenodesUserError(f"{class_name!r} in {module.__name__} {what}; DataNode classes there: "
                                 f"{', '.join(available) or 'none'}")
    return node_class


def _import(module_ref: str) -> Any:
    if module_ref.endswith(".py") or "/" in module_ref or os.sep in module_ref:
        module_name, search_root = _module_name_for_file(Path(module_ref))
    else:
        module_name, search_root = module_ref, Path.cwd()
    if str(search_root) not in sys.path:
        sys.path.insert(0, str(search_root))
    try:
        return importlib.import_module(module_name)
    except Exception as error:
        raise LakenodesUserError(f"cannot import {module_ref!r} (from {search_root}): {type(error).__name__}: {error}") from error


def _module_name_for_file(path: Path) -> tuple[str, Path]:
    """Dotted module name of a file (inside its package, so its classes hash as when imported)."""
    path = path.expanduser().resolve()
    if not path.is_file() or path.suffix != ".py":
        raise LakenodesUserError(f"no Python file at {path}")
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts), folder


# -- maintenance --------------------------------------------------------------------------------
MaintenanceTargets = Annotated[list[str] | None, typer.Argument(
    metavar="[UID]...", show_default=False,
    help="Tables (uid, identifier, storage hash or _catalog/<name>) [default: every table, catalog included].")]


def _maintenance_names(session: Session, refs: Sequence[str] | None, namespace: str | None) -> list[str]:
    if not refs:
        return maintenance.maintenance_targets(session.lake)
    names = []
    for ref in refs:
        if ref.startswith(maintenance.CATALOG_PREFIX):
            if ref not in maintenance.CATALOG_TABLES:
                raise LakenodesUserError(f"unknown catalog table {ref!r}; catalog tables are "
                                         f"{', '.join(maintenance.CATALOG_TABLES)}")
            names.append(ref)
        else:
            names.append(resolve_table(session.lake, ref, namespace).storage_hash)
    return names


@contextlib.contextmanager
def _progress(session: Session, what: str, total: int) -> Iterator[Callable[[str, int | None, int | None], None]]:
    """``report(table, done, total_partitions)``: a rich progress bar on an interactive stderr, else nothing."""
    console = Console(stderr=True)
    if session.json or not console.is_terminal:
        yield lambda table, done, parts: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task(what, total=total)

        def report(table: str, done: int | None, parts: int | None) -> None:
            detail = f" ({done}/{parts} partitions)" if parts else ""
            bar.update(task, description=f"{what} {table}{detail}")
            if done is None:
                bar.advance(task)

        yield report


def _maintain(session: Session, names: list[str], what: str,
              operation: Callable[[str, Callable[[int, int], None]], dict[str, Any]]) -> list[dict[str, Any]]:
    """Run ``operation`` on each table; storage failures are collected so one table cannot block the rest."""
    results = []
    with _progress(session, what, len(names)) as report:
        for name in names:
            try:
                results.append(operation(name, lambda done, parts, name=name: report(name, done, parts)))
            except LakenodesUserError:
                raise
            except Exception as error:
                logger.error("%s of %s failed: %s", what, name, error)
                results.append({"table": name, "error": f"{type(error).__name__}: {one_line(error)}"})
            report(name, None, None)
    return results


def _finish_maintenance(session: Session, what: str, results: list[dict[str, Any]], render: Callable[[Console], None]) -> None:
    failed = [result for result in results if "error" in result]
    session.output({"ok": not failed, "count": len(results), "results": results}, render)
    if failed:
        raise CommandFailed(FAILURE, f"{what} failed for {len(failed)} table(s): "
                            + "; ".join(f"{r['table']}: {r['error']}" for r in failed), reported=session.json)


@command(app, "optimize")
def optimize(
    session: Session,
    refs: MaintenanceTargets = None,
    target_size: Annotated[float | None, typer.Option("--target-size", metavar="MB", show_default=False,
                                                      help="Target file size in MB [default: delta-rs's, 100 MB].")] = None,
    namespace: NamespaceOption = None,
) -> None:
    """Compact small files one partition at a time (safe while updaters append) and checkpoint."""
    names = _maintenance_names(session, refs, namespace)
    size = int(target_size * 1024 * 1024) if target_size is not None else None
    results = _maintain(session, names, "optimize",
                        lambda name, progress: maintenance.optimize_table(session.lake, name, target_size=size, progress=progress))

    def render(console: Console) -> None:
        view = _table("Table", "Compacted", "Files", "Checkpoint", no_wrap=("Table", "Files"))
        for r in results:
            files = f"{r['files_before']} -> {r['files_after']}" if "error" not in r else f"failed: {r['error']}"
            view.add_row(r["table"], _text(r.get("partitions")), files, _text(r.get("checkpoint_version")))
        console.print(view)

    _finish_maintenance(session, "optimize", results, render)


@command(app, "vacuum")
def vacuum(
    session: Session,
    refs: MaintenanceTargets = None,
    retention_hours: Annotated[int, typer.Option("--retention-hours", metavar="H",
                                                 help="Keep files removed less than H hours ago (minimum 168).")] = maintenance.DEFAULT_RETENTION_HOURS,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the files that would be deleted.")] = False,
    force_unsafe_retention: Annotated[bool, typer.Option(
        "--force-unsafe-retention",
        help="Allow a retention below 168 h. DANGEROUS: breaks readers and writers still using older versions.")] = False,
    namespace: NamespaceOption = None,
) -> None:
    """Delete data files no longer part of any table version younger than the retention."""
    if retention_hours < maintenance.MIN_RETENTION_HOURS and not force_unsafe_retention:
        raise LakenodesUserError(f"--retention-hours {retention_hours} is below the {maintenance.MIN_RETENTION_HOURS} h "
                                 "minimum (it can break running readers and writers); add --force-unsafe-retention "
                                 "only if nothing else uses these tables")
    if force_unsafe_retention and retention_hours < maintenance.MIN_RETENTION_HOURS:
        typer.echo(f"warning: UNSAFE vacuum with {retention_hours} h retention: readers and writers still using "
                   "older table versions may fail", err=True)
    names = _maintenance_names(session, refs, namespace)
    results = _maintain(session, names, "vacuum", lambda name, progress: maintenance.vacuum_table(
        session.lake, name, retention_hours, dry_run, force_unsafe_retention=force_unsafe_retention))

    def render(console: Console) -> None:
        verb = "would delete" if dry_run else "deleted"
        for r in results:
            if "error" in r:
                console.print(f"{r['table']}: failed: {r['error']}")
                continue
            console.print(f"{r['table']}: {verb} {r['file_count']} file(s)")
            if dry_run:
                for path in r["files"]:
                    console.print(f"  {path}", markup=False)

    _finish_maintenance(session, "vacuum", results, render)


# -- entry point --------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point (``lakenodes``, ``python -m lakenodes``): run the app and exit with its code.

    It ends the process with ``os._exit`` after flushing: with deltalake 1.6 and pyarrow 26 the
    interpreter sometimes aborts at shutdown ("terminate called without an active exception",
    exit 134) after a pyarrow dataset over a Delta table was read, which would turn a successful
    command into a failed cron/Airflow task.
    """
    code = 0
    try:
        app(args=list(argv) if argv is not None else None, prog_name="lakenodes")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else FAILURE)
    except BaseException:  # a bug in lakenodes: show it, fail
        traceback.print_exc()
        code = FAILURE
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
