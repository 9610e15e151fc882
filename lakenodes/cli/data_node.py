"""``lakenodes data-node ...``: the tables (DataNode storages) in the catalog.

``list``, ``detail``, ``org-unique-identifiers``, ``run-query``, ``history``, ``diff``, ``delete-after-date``, ``restore``,
``add-label``/``remove-label`` and ``refresh-search-index``; ``drop`` is in :mod:`lakenodes.cli.data_node_drop`;
``data-node search`` is ``lakenodes search`` (see :mod:`lakenodes.cli.search`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._internal.datetimes import iso_z, parse_datetime
from ..catalog import catalog
from ..core.lookup_parsing import parse_dimension_filters, parse_label, parse_lookups, parse_new_label
from ..errors import LakenodesUserError, NotFoundError, StorageError, VersionUnavailableError
from ..facade.meta_table import TimeIndexMetaTable
from ..facade.table_refs import lost_catalog, resolve_table, table_name
from ..lake.read_snippets import read_snippets
from ..lake.restore import refuse_catalog_table
from ..lake.sql import MAX_ROWS_LIMIT
from ._confirm import confirm
from ._groups import FAILURE, USER_ERROR, CommandFailed, group
from ._render import rows_table, table, text, updaters_table
from ._session import NamespaceOption, Session, TableArgument, TableFilterOption, command

if TYPE_CHECKING:
    from rich.console import Console  # imported by the commands that render

app = group("Tables (DataNode storages) in the catalog.", root_commands=("search",))


@command(app, "list")
def data_node_list(session: Session, filters: TableFilterOption = None) -> None:
    """List tables (optionally filtered) with their index and last index value."""
    lookups = parse_lookups(filters, TimeIndexMetaTable)
    tables = sorted(TimeIndexMetaTable.filter(lake=session.lake, **lookups),
                    key=lambda t: (t.namespace, t.identifier or "", t.storage_hash))
    stats: dict[str, dict] = {}
    for t in tables:  # one damaged table (a commit cut short, a file deleted) must not hide the others
        try:
            stats[t.storage_hash] = t.stats(earliest=False)
        except StorageError as error:
            session.warn(f"table {table_name(t)}: {error}")
            stats[t.storage_hash] = {"last_time_index_value": None, "row_count": None}
    if not tables and not lookups and (lost := lost_catalog(session.lake, "tables", "the lake's tables")) is not None:
        session.warn(lost.reason)
    document = {"count": len(tables), "results": [
        {**t.model_dump(mode="json"), "last_index_value": stats[t.storage_hash]["last_time_index_value"],
         "row_count": stats[t.storage_hash]["row_count"]} for t in tables]}

    def render(console: Console) -> None:
        if not tables:
            console.print(f"no tables in {session.lake.uri}" + (f" match {lookups}" if lookups else ""))
            return
        view = table("UID", "Identifier", "Namespace", "Storage hash", "Frequency", "Index", "Columns",
                     "Last index value", no_wrap=("UID", "Identifier", "Storage hash", "Last index value"))
        for t in tables:
            values = [c.column_name for c in t.columns if c.column_name not in t.index_names]
            view.add_row(t.uid, t.identifier or "", t.namespace, t.storage_hash, t.data_frequency_id or "",
                         ", ".join(t.index_names), ", ".join(values),
                         stats[t.storage_hash]["last_time_index_value"]
                         or ("(empty)" if stats[t.storage_hash]["row_count"] is not None else "(unreadable)"))
        console.print(view)

    session.output(document, render)


AsOfOption = Annotated[str | None, typer.Option(
    "--as-of", help="The table as it was at this version (an integer) or moment (ISO-8601).")]


def _version_or_moment(value: str | None, option: str) -> Any:
    """A ``--as-of`` / ``--from`` / ``--to`` value: a version (digits) or an ISO-8601 moment."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("-") and text[1:].isdigit():
        raise LakenodesUserError(f"{option}={value!r} is not a version: versions count up from 0 (see `history`)")
    return int(text) if text.isdigit() else parse_datetime(value, option)


@command(app, "detail")
def data_node_detail(
    session: Session, ref: TableArgument, as_of: AsOfOption = None, namespace: NamespaceOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help=(
        "List the first and last time of at most this many identities (assets); --json always lists "
        "them all."))] = 20,
) -> None:
    """Everything about one table: record, columns, statistics (--as-of: as they were then),
    updaters and read snippets. The table view lists the first --limit identities (20 by default)
    and says how many more there are; --json carries every identity in stats.multi_index_stats."""
    found = resolve_table(session.lake, ref, namespace)
    stats = found.stats(as_of=_version_or_moment(as_of, "--as-of"))
    if as_of is not None and stats["version"] is None:
        first = found.history()[-1:]
        since = f": its first version was written at {iso_z(first[0]['timestamp'])}" if first else " (nothing written yet)"
        raise VersionUnavailableError(f"{table_name(found)} did not exist at --as-of {as_of}{since}")
    updaters = [u for u in catalog.update_processes(session.lake) if u["storage_hash"] == found.storage_hash]
    snippets = read_snippets(found.table_uri, session.lake.storage_options,
                             version=stats["version"] if as_of is not None else None)  # the rows shown above
    document = {"table": found.model_dump(mode="json"), "stats": stats, "table_uri": found.table_uri,
                "update_processes": updaters, "read_snippets": snippets}

    def render(console: Console) -> None:
        fields = table("Field", "Value", no_wrap=("Field",))
        for key in ("uid", "identifier", "namespace", "storage_hash", "description", "labels", "data_frequency_id",
                    "index_names", "source_class", "table_uri", "recorded_at"):
            fields.add_row(key, text(getattr(found, key)))
        fields.add_row("build_configuration", text(found.build_configuration))
        for key in ("version", "row_count", "earliest_index_value", "last_time_index_value"):
            fields.add_row(key, text(stats[key]))
        console.print(fields)
        columns = table("Column", "Dtype", "Label", "Description", no_wrap=("Column", "Dtype"))
        for column in found.columns:
            columns.add_row(column.column_name, column.dtype, column.label or "", column.description or "")
        console.print(columns)
        if stats.get("multi_index_stats"):
            dimensions = list(found.index_names[1:])  # a column each: values may hold any separator
            per_identity = table(*dimensions, "First", "Last", no_wrap=("First", "Last"))
            identities = list(_flatten_identity_stats(stats["multi_index_stats"]))
            for identity, first, last in identities[:limit]:
                per_identity.add_row(*identity, first or "", last or "")
            console.print(per_identity)
            if len(identities) > limit:
                console.print(f"… and {len(identities) - limit:,} more of {len(identities):,} identities "
                              "(--limit N lists more; --json lists them all)")
        if updaters:
            updaters_table(console, updaters, {found.storage_hash: found.identifier})
        for engine, snippet in snippets.items():
            console.print(f"\n# read with {engine}", style="bold")
            console.print(snippet, markup=False, soft_wrap=True)

    session.output(document, render)


def _flatten_identity_stats(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    """``(identity tuple, first, last)`` for each leaf of ``multi_index_stats``."""
    for key, value in tree.items():
        if isinstance(value, dict) and set(value) == {"min", "max"}:
            yield (*prefix, key), value["min"], value["max"]
        elif isinstance(value, dict):
            yield from _flatten_identity_stats(value, (*prefix, key))


@command(app, "org-unique-identifiers")
def data_node_identifiers(session: Session) -> None:
    """Identifiers in use: identifier, namespace and the storage each points at."""
    tables = sorted((t for t in catalog.all_tables(session.lake) if t.identifier),
                    key=lambda t: (t.namespace, t.identifier or ""))
    rows = [{"identifier": t.identifier, "namespace": t.namespace, "storage_hash": t.storage_hash, "uid": t.uid}
            for t in tables]

    def render(console: Console) -> None:
        view = table("Identifier", "Namespace", "Storage hash", "UID", no_wrap=("Identifier", "Storage hash", "UID"),
                     empty=f"no identifiers in use in {session.lake.uri}")
        for row in rows:
            view.add_row(row["identifier"], row["namespace"], row["storage_hash"], row["uid"])
        console.print(view)

    session.output({"count": len(rows), "results": rows}, render)


@command(app, "run-query")
def data_node_run_query(
    session: Session,
    ref: TableArgument,
    sql: Annotated[str, typer.Argument(help="One SELECT/WITH; name the table by its identifier or storage hash.")],
    max_rows: Annotated[int, typer.Option("--max-rows", min=1, max=MAX_ROWS_LIMIT,
                                          help="Return at most this many rows.")] = 1000,
    as_of: AsOfOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Run one read-only SQL query over a table (DDL, DML and other tables are refused)."""
    envelope = resolve_table(session.lake, ref, namespace).run_query(
        sql, max_rows=max_rows, as_of=_version_or_moment(as_of, "--as-of"))
    if envelope["ok"] or session.json:
        session.output(envelope, lambda console: rows_table(console, envelope))
    if not envelope["ok"]:
        error = envelope["error"] or {}
        code = FAILURE if error.get("kind") == "storage_error" else USER_ERROR
        raise CommandFailed(code, f"{error.get('kind')}: {error.get('message')}", str(error.get("kind")),
                            reported=session.json)


@command(app, "history")
def data_node_history(
    session: Session,
    ref: TableArgument,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Show at most this many versions.")] = None,
    namespace: NamespaceOption = None,
) -> None:
    """The versions of a table, newest first: when, which operation, which run wrote them, rows changed."""
    found = resolve_table(session.lake, ref, namespace)
    entries = [{**entry, "timestamp": iso_z(entry["timestamp"])} for entry in found.history(limit)]
    if not entries:  # every table the catalog records was created: its folder is gone (or was never written)
        raise NotFoundError(f"{table_name(found)} is in the catalog but has no Delta table at {found.table_uri}")

    def render(console: Console) -> None:
        view = table("Version", "Timestamp", "Operation", "Update hash", "Run id", "Rows added", "Rows updated",
                     "Rows deleted", no_wrap=("Timestamp", "Update hash", "Run id"))
        for entry in entries:
            view.add_row(*("" if entry[key] is None else str(entry[key]) for key in (
                "version", "timestamp", "operation", "update_hash", "run_id", "rows_added", "rows_updated",
                "rows_deleted")))
        console.print(view)

    session.output({"count": len(entries), "results": entries}, render)


@command(app, "diff")
def data_node_diff(
    session: Session,
    ref: TableArgument,
    from_version: Annotated[str, typer.Option("--from", help="The earlier version (an integer) or moment (ISO-8601).")],
    to_version: Annotated[str | None, typer.Option(
        "--to", help="The later version or moment (default: the latest version).")] = None,
    max_rows: Annotated[int, typer.Option("--max-rows", min=1,
                                          help="Show at most this many rows of each kind.")] = 1000,
    namespace: NamespaceOption = None,
) -> None:
    """The rows added, deleted and changed (keyed by the index) between two versions of a table."""
    found = resolve_table(session.lake, ref, namespace)
    change = found.diff(_version_or_moment(from_version, "--from"), _version_or_moment(to_version, "--to"))
    parts = {"added": change.added, "deleted": change.deleted, "changed": change.changed}
    max_rows = min(max_rows, max(part.height for part in parts.values()))  # polars' head() overflowed on 20 digits
    document = {**change.summary(), "truncated": any(part.height > max_rows for part in parts.values()),
                **{f"{name}_rows": part.head(max_rows).to_dicts() for name, part in parts.items()}}

    def render(console: Console) -> None:
        console.print(f"{table_name(found)} from version {text(change.from_version) or '(before it existed)'} to "
                      f"{change.to_version}: {len(change.added)} added, {len(change.deleted)} deleted, "
                      f"{len(change.changed)} changed")
        for name, part in parts.items():
            if part.height:
                view = table(*part.columns)
                for row in part.head(max_rows).iter_rows():
                    view.add_row(*(text(value) for value in row))
                console.print(f"\n{name}" + (f" (first {max_rows} of {part.height})" if part.height > max_rows else ""),
                              style="bold")
                console.print(view)

    session.output(document, render)


@command(app, "delete-after-date")
def data_node_delete_after_date(
    session: Session,
    ref: TableArgument,
    date: Annotated[str, typer.Argument(metavar="DATE", help="Delete rows with time_index >= DATE (ISO-8601, UTC if naive).")],
    dimension_filters: Annotated[list[str] | None, typer.Option(
        "--dimension-filter", "-d", metavar="K=V", show_default=False,
        help="Only delete these identities, repeatable: unique_identifier=AAPL; a comma list means any of its "
             "values (unique_identifier=NVDA,AAPL; spaces around each value are dropped), a JSON list keeps "
             "them exact (unique_identifier='[\"A,B\"]').")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count the rows it would delete; delete nothing.")] = False,
    namespace: NamespaceOption = None,
) -> None:
    """Delete the tail of a table (rows at or after DATE), optionally for some identities only.
    Unless --yes, it counts the rows first and asks."""
    found = resolve_table(session.lake, ref, namespace)
    cutoff = parse_datetime(date, "DATE", round_up=True)  # rows at or after it
    scope = parse_dimension_filters(dimension_filters, found.index_names, table_name(found))
    what = f"of {table_name(found)} with time_index >= {iso_z(cutoff)}" + (f" where {scope}" if scope else "")
    delete = functools.partial(found.delete_after_date, cutoff, dimension_filters=scope or None)
    counted = delete(dry_run=True) if dry_run or not yes else None  # the answer, or what the question states
    if counted is not None and scope:  # what each value matched: a typo in a list matches nothing, visibly
        counted["matched"] = {dim: {value: delete(dry_run=True, dimension_filters={**scope, dim: [value]})["deleted_count"]
                                    for value in values} for dim, values in scope.items()}
        what += " (" + "; ".join(f"{dim}={value}: {count} row(s)" for dim, counts in counted["matched"].items()
                                 for value, count in counts.items()) + ")"
    if dry_run:
        result = counted
    elif counted is not None and not counted["deleted_count"]:  # no row matches: nothing to ask, nothing deleted
        result = {**counted, "dry_run": False}
    else:
        if counted is not None:  # asked on stderr: with --json, stdout keeps the one JSON document
            confirm(f"Delete {counted['deleted_count']} row(s) {what}?")
        result = delete()

    def render(console: Console) -> None:
        if result["dry_run"]:
            console.print(f"would delete {result['deleted_count']} row(s) {what}")
            return
        if not result["deleted_count"]:
            console.print(f"deleted 0 row(s) {what}: no row matched, the table is unchanged")
            return
        console.print(f"deleted {result['deleted_count']} row(s) {what}; last index value now "
                      f"{result['stats']['last_time_index_value']}" + (" (table is empty)" if result["table_empty"] else ""))

    session.output(result, render)


@command(app, "restore")
def data_node_restore(
    session: Session,
    ref: TableArgument,
    to_version: Annotated[int | None, typer.Option("--to-version", metavar="N", show_default=False,
                                                   help="The version to go back to (see `data-node history`).")] = None,
    to_timestamp: Annotated[str | None, typer.Option("--to-timestamp", metavar="T", show_default=False,
                                                     help="Go back to the version current at T (ISO-8601, UTC if naive).")] = None,
    to: Annotated[str | None, typer.Option("--to", metavar="V", show_default=False, help=(
        "A version (an integer) or moment (ISO-8601), as `data-node diff --to` takes it."))] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what it would change; change nothing.")] = False,
    namespace: NamespaceOption = None,
) -> None:
    """Undo writes: put a table back as it was at a version (or moment), as one new version; the
    versions in between stay readable with --as-of until vacuum. Unless --yes, it says what changes and asks."""
    refuse_catalog_table(ref)  # before the lookup, which would not find it among the data tables
    if [to_version, to_timestamp, to].count(None) != 2:
        raise LakenodesUserError("give exactly one of --to-version N or --to-timestamp T (or --to V: either)")
    moment = parse_datetime(to_timestamp, "--to-timestamp")  # named as the user typed it
    if to is not None:  # diff's spelling: a version or a moment
        target = _version_or_moment(to, "--to")
        to_version, moment = (target, None) if isinstance(target, int) else (None, target)
    found = resolve_table(session.lake, ref, namespace)
    restore = functools.partial(found.restore, to_version, to_timestamp=moment)
    planned = restore(dry_run=True) if dry_run or not yes else None

    def changes(done: dict[str, Any]) -> str:
        return (f"{done['rows_added']} row(s) in {done['files_added']} file(s) back, {done['rows_removed']} row(s) in "
                f"{done['files_removed']} file(s) removed")

    if planned is not None and not dry_run:
        confirm(f"Restore {table_name(found)} (version {planned['from_version']}) to version {planned['to_version']}: "
                f"{changes(planned)}?", "restore", "nothing was changed")
    result = planned if dry_run else restore()

    def render(console: Console) -> None:
        if result["dry_run"]:
            console.print(f"would restore {table_name(found)} from version {result['from_version']} to version "
                          f"{result['to_version']}: {changes(result)}")
            return
        console.print(f"restored {table_name(found)} to version {result['to_version']} as version "
                      f"{result['new_version']}: {changes(result)}")

    session.output(result, render)


LabelArgument = Annotated[str, typer.Argument(metavar="LABEL", help="A label, e.g. daily (labels never change identity).")]


@command(app, "add-label")
def data_node_add_label(session: Session, ref: TableArgument, label: LabelArgument, namespace: NamespaceOption = None) -> None:
    """Add a label to a table (labels never change its identity)."""
    _show_labels(session, resolve_table(session.lake, ref, namespace).add_label(parse_new_label(label)))


@command(app, "remove-label")
def data_node_remove_label(session: Session, ref: TableArgument, label: LabelArgument,
                           namespace: NamespaceOption = None) -> None:
    """Remove a label from a table. A label it does not have (a typo?) is a warning, not an error:
    the table is without it either way, so a script removing it twice still succeeds."""
    found, label = resolve_table(session.lake, ref, namespace), parse_label(label)
    if label not in found.labels:
        session.warn(f"{table_name(found)} has no label {label!r}: nothing removed")
    _show_labels(session, found.remove_label(label))


def _show_labels(session: Session, changed: TimeIndexMetaTable) -> None:
    session.output(changed.model_dump(mode="json"), lambda console: console.print(
        f"labels of {table_name(changed)}: {', '.join(changed.labels) or '(none)'}"))


@command(app, "repoint")
def data_node_repoint(
    session: Session,
    identifier: Annotated[str, typer.Argument(help="The published identifier to move.")],
    ref: TableArgument,
    namespace: NamespaceOption = None,
) -> None:
    """Give a published IDENTIFIER to another table (uid, storage hash or identifier); no hash changes.
    For a table not written yet, repoint in Python before its first run: repoint_identifier(identifier, node)."""
    found = resolve_table(session.lake, ref, namespace)
    previous = catalog.resolve_identifier(session.lake, identifier, found.namespace)
    catalog.repoint_identifier(identifier, found.storage_hash, namespace=found.namespace, lake=session.lake)
    document = {"identifier": identifier, "storage_hash": found.storage_hash, "previous": previous}
    session.output(document, lambda console: console.print(
        f"{identifier} -> {found.storage_hash}" + (f" (was {previous})" if previous else "")))


@command(app, "refresh-search-index")
def data_node_refresh_search_index(session: Session, ref: TableArgument, namespace: NamespaceOption = None) -> None:
    """Re-index one table's metadata for search."""
    found = resolve_table(session.lake, ref, namespace)
    found.refresh_table_search_index()
    session.output({"meta_table_uid": found.uid},
                   lambda console: console.print(f"search index refreshed for {table_name(found)}"))
