"""``lakenodes updates ...``: update processes (updaters) and their run history
(the seeds' ``project data-node-updates``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import one_line
from ..facade.table_refs import run_history, update_processes
from ._groups import group
from ._render import table, text, updaters_table
from ._session import Session, command

if TYPE_CHECKING:
    from rich.console import Console  # imported by the commands that render

app = group("Update processes (updaters) and their run history (the seeds' `project data-node-updates`).")


@command(app, "list")
def updates_list(session: Session) -> None:
    """Update processes: which updater writes which table, and how its last run went."""
    processes = update_processes(session.lake)
    identifiers = {p["storage_hash"]: p["identifier"] for p in processes}
    session.output({"count": len(processes), "results": processes},
                   lambda console: updaters_table(console, processes, identifiers))


@command(app, "runs")
def updates_runs(
    session: Session,
    update_hash: Annotated[str | None, typer.Argument(metavar="[UPDATE_HASH]", help="Only this update process.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show the most recent N runs.")] = 50,
) -> None:
    """Run history (most recent last): status, rows written, duration and error of every run."""
    runs = run_history(session.lake, update_hash, limit)

    def render(console: Console) -> None:
        view = table("Started", "Update hash", "Status", "Rows", "Seconds", "Host", "Error",
                     no_wrap=("Started", "Update hash"))
        for run in runs:
            seconds = (run["finished_at"] - run["started_at"]).total_seconds() if run["finished_at"] else None
            view.add_row(text(run["started_at"]), run["update_hash"], run["status"], text(run["rows_written"]),
                         f"{seconds:.2f}" if seconds is not None else "", run["host"] or "", one_line(run["error"] or ""))
        console.print(view)

    session.output({"count": len(runs), "results": runs}, render)
