"""Output of the ``lakenodes`` commands: JSON documents, rich tables for humans, and the one
progress bar (on an interactive stderr only, never with ``--json``).

Nothing here assumes a terminal: in pipes and logs tables are neither wrapped nor truncated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .._internal.datetimes import iso_z
from .._internal.json_values import json_ready
from ..errors import one_line

if TYPE_CHECKING:  # rich is imported by the commands that render (``lakenodes --help`` stays quick)
    from rich.console import Console
    from rich.table import Table

ProgressUpdate = Callable[..., None]
"""``update(description=..., completed=..., total=..., advance=...)`` of a progress bar."""


def to_json(document: Any) -> str:
    """``document`` as indented JSON (models, datetimes, dataclasses and sets included; NaN and
    infinities as the strings ``"NaN"``, ``"Infinity"``: always valid JSON, see ``json_values``).
    Datetimes are UTC with ``Z``, as pydantic writes the catalog records' and tables show them.

    Example:
        >>> print(to_json({"at": datetime.datetime(2026, 12, 3, 9, 30, tzinfo=datetime.UTC), "rows": [1.5]}))
        {
          "at": "2026-12-03T09:30:00Z",
          "rows": [
            1.5
          ]
        }
    """
    return json.dumps(json_ready(document), default=_json_default, indent=2, ensure_ascii=False, allow_nan=False)


def json_document(document: Mapping[str, Any], warnings: Sequence[str] = ()) -> str:
    """What ``--json`` prints when a command finished: ``document`` led by ``"ok"``, true unless the
    document says otherwise (a maintenance run with a failed table, a refused query), and followed
    by the command's ``warnings`` when it gave any.

    Example:
        >>> json.loads(json_document({"count": 0})), json.loads(json_document({"ok": False, "count": 1}))
        ({'ok': True, 'count': 0}, {'ok': False, 'count': 1})
        >>> json.loads(json_document({"labels": []}, ["no label 'x'"]))
        {'ok': True, 'labels': [], 'warnings': ["no label 'x'"]}
    """
    return to_json({"ok": True, **document, **({"warnings": list(warnings)} if warnings else {})})


def error_document(kind: str, message: str, rows_stored: bool | None = None,
                   details: Mapping[str, Any] | None = None) -> str:
    """What ``--json`` prints when a command failed or was refused: ``"ok": false`` and the error,
    then the ``details`` (a tree run's nodes: succeeded, failed, skipped).

    A run's failure (``rows_stored`` given) says whether the failed node's rows were committed before
    it failed (a ``RowsStoredError``): a scheduler reads it instead of parsing "rows ARE stored".

    Example:
        >>> json.loads(error_document("run_error", "Node(x) failed during catalog: ...", rows_stored=True))
        {'ok': False, 'error': {'kind': 'run_error', 'message': 'Node(x) failed during catalog: ...', 'rows_stored': True}}
        >>> json.loads(error_document("user_error", "no table 'x'"))
        {'ok': False, 'error': {'kind': 'user_error', 'message': "no table 'x'"}}
    """
    error: dict[str, Any] = {"kind": kind, "message": one_line(message)}
    if rows_stored is not None:
        error["rows_stored"] = rows_stored
    return to_json({"ok": False, "error": error, **(details or {})})


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return json_ready(value.model_dump(mode="json"))
    if isinstance(value, datetime.datetime):
        return text(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_ready(dataclasses.asdict(value))
    if isinstance(value, (set, frozenset, tuple)):
        return json_ready(list(value))
    return str(value)


def stdout_console() -> Console:
    """A console on stdout; wide and unwrapped when stdout is not a terminal."""
    from rich.console import Console

    wide = None if sys.stdout.isatty() else 1000  # no wrapping or truncation in pipes and logs
    console = Console(highlight=False, width=wide, soft_wrap=False, markup=False)  # values print as they are
    console.on_broken_pipe = _stdout_closed  # type: ignore[method-assign]
    return console


def _stdout_closed() -> None:
    """What a console does when the reader of stdout closed it (``lakenodes ... | head``): raise it
    as the ``BrokenPipeError`` it is, which click ends quietly, instead of rich's ``SystemExit(1)``
    (reported as if a node's code had called ``sys.exit``)."""
    raise BrokenPipeError(errno.EPIPE, "stdout was closed by its reader")


def text(value: Any) -> str:
    """A value as a table cell, exact and as ``--json`` writes it: UTC datetimes in ISO-8601 with
    ``Z`` (and their microseconds when they have any), floats as their shortest exact form (NaN and
    infinities as ``NaN``, ``Infinity``, ``-Infinity``), joined lists, JSON dicts.

    Example:
        >>> text(datetime.datetime(2024, 1, 2, 9, 30, 0, 1000, tzinfo=datetime.UTC)), text(1234567.891)
        ('2024-01-02T09:30:00.001000Z', '1234567.891')
        >>> text(datetime.datetime(2024, 1, 2, 9, 30))  # naive: taken as UTC
        '2024-01-02T09:30:00Z'
        >>> text(float("nan")), text(float("-inf"))
        ('NaN', '-Infinity')
    """
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):  # naive: UTC, as every lakenodes input takes it
        return iso_z(value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value.astimezone(datetime.UTC))
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else json_ready(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(text(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(json_ready(value), default=_json_default, ensure_ascii=False)
    return str(value)


def table(*columns: str, no_wrap: Sequence[str] = (), empty: str | None = None) -> FittingTable:
    """An empty table with these columns (``no_wrap`` ones, such as hashes, are never wrapped);
    add rows with ``add_row`` and print it with a rich console. Printed without rows, it is the
    line ``empty`` (e.g. "no runs recorded in ./lake") when given, not a box of headers."""
    return FittingTable(columns, no_wrap, empty)


class FittingTable:
    """A table that is printed whole: as columns when they fit the console, else one record a row
    (each value on its own line, as ``psql`` does in its expanded mode). A table squeezed into a
    narrow terminal would cut hashes and timestamps and hide whole columns.

    Example:
        >>> import io
        >>> from rich.console import Console
        >>> view = table("Update hash", "Status", "Rows", no_wrap=("Update hash",), empty="no runs recorded")
        >>> narrow = Console(width=40, file=io.StringIO())
        >>> narrow.print(view)
        >>> view.add_row("dailyrandomnumber_1a945de9", "success", "12")
        >>> narrow.print(view)
        >>> print(narrow.file.getvalue().strip())  # doctest: +NORMALIZE_WHITESPACE
        no runs recorded
        Update hash  dailyrandomnumber_1a945de9
        Status       success
        Rows         12
    """

    def __init__(self, columns: Sequence[str], no_wrap: Sequence[str] = (), empty: str | None = None):
        self.columns, self.no_wrap, self.empty = tuple(columns), frozenset(no_wrap), empty
        self.rows: list[tuple[str, ...]] = []

    def add_row(self, *cells: str) -> None:
        self.rows.append(cells)

    def __rich_console__(self, console: Console, options: Any) -> Iterator[Any]:
        if not self.rows and self.empty is not None:
            yield self.empty
            return
        columns = self._columns()
        if columns.__rich_measure__(console, options).minimum <= options.max_width:
            yield columns
            return
        for number, row in enumerate(self.rows):
            if number:
                yield ""
            yield self._record(row)

    def _columns(self) -> Table:
        from rich.table import Table

        view = Table(show_lines=False, header_style="bold")
        for column in self.columns:
            view.add_column(column, no_wrap=column in self.no_wrap, overflow="fold")
        for row in self.rows:
            view.add_row(*row)
        return view

    def _record(self, row: tuple[str, ...]) -> Table:
        from rich.table import Table

        record = Table.grid(padding=(0, 2))
        record.add_column(style="bold", no_wrap=True)
        record.add_column(overflow="fold")
        for name, value in zip(self.columns, row, strict=False):
            record.add_row(name, value)
        return record


def rows_table(console: Console, envelope: dict[str, Any]) -> None:
    """Print the rows of a ``run_query`` envelope and how many there are."""
    rows = envelope["results"]
    if rows:
        view = table(*rows[0].keys())
        for row in rows:
            view.add_row(*(text(value) for value in row.values()))
        console.print(view)
    more = f" (truncated at --max-rows {envelope['max_rows']})" if envelope["truncated"] else ""
    console.print(f"{envelope['row_count']} row(s){more}")


def updaters_table(console: Console, processes: list[dict[str, Any]], identifiers: dict[str, str | None],
                   empty: str | None = None) -> None:
    """Print update processes: update hash, storage, identifier, last run, status, rows, runs
    (``empty``: the line printed when there are none), then why each last run that did not succeed
    failed or was skipped (its error's first ``REASON_WIDTH`` characters)."""
    view = table("Update hash", "Storage hash", "Identifier", "Namespace", "Last run", "Status", "Rows", "Runs",
                 no_wrap=("Update hash", "Storage hash", "Last run"), empty=empty)
    for p in processes:
        view.add_row(p["update_hash"], p["storage_hash"], identifiers.get(p["storage_hash"]) or "", p["namespace"] or "",
                     text(p["last_run_at"]), p["last_status"] or "never run", text(p["last_rows_written"]),
                     str(p["runs"]))
    console.print(view)
    for p in processes:
        if p.get("last_error") and p["last_status"] != "success":
            reason = one_line(p["last_error"])
            reason = reason if len(reason) <= REASON_WIDTH else reason[:REASON_WIDTH - 1] + "…"
            console.print(f"{p['update_hash']} {p['last_status']}: {reason}", markup=False, highlight=False)


REASON_WIDTH = 240
"""The characters of a last run's error shown under the updaters' table (``updates runs HASH`` shows it all)."""


def _ignore(**_: Any) -> None:
    """The progress update of a bar that is not shown."""


def in_a_notebook() -> bool:
    """Whether this process runs under a Jupyter kernel (a notebook's ``!lakenodes ...``): its output
    goes to a cell, which shows a live bar's every repaint, although IPython gives ``!`` commands a
    pseudo-terminal. jupyter_client sets ``JPY_PARENT_PID`` for the kernels it starts and ipykernel
    ``MPLBACKEND`` to its inline backend; what the kernel runs inherits both (seen in Jupyter)."""
    return "JPY_PARENT_PID" in os.environ or os.environ.get("MPLBACKEND", "").endswith("backend_inline")


@contextlib.contextmanager
def progress_bar(enabled: bool, description: str, total: int | None = None) -> Iterator[ProgressUpdate]:
    """A rich progress bar on stderr when ``enabled`` and stderr is a terminal, not a notebook's; yields
    its ``update(description=, completed=, total=, advance=)`` (a no-op when no bar is shown)."""
    if not enabled or not sys.stderr.isatty() or in_a_notebook():  # e.g. under cron: no bar, no rich to import
        yield _ignore
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        yield _ignore
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(description, total=total)
        yield lambda **changes: bar.update(task, **changes)
