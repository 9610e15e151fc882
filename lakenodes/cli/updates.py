"""``lakenodes updates ...``: update processes (updaters) and their run history
(the seeds' ``project data-node-updates``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import one_line
from ..facade.table_refs import reconcile_runs, run_history, update_processes
from ._groups import group
from ._render import table, text, updaters_table
from ._session import NamespaceOption, Session, command

if TYPE_CHECKING:
    from rich.console import Console  # imported by the commands that render

app = group("Update processes (updaters) and their run history (the seeds' `project data-node-updates`).")


@command(app, "list")
def updates_list(session: Session) -> None:
    """Update processes: which updater writes which table, and how its last run went."""
    processes = update_processes(session.lake)
    identifiers = {p["storage_hash"]: p["identifier"] for p in processes}
    session.output({"count": len(processes), "results": processes},
                   lambda console: updaters_table(console, processes, identifiers,
                                                  empty=f"no update processes in {session.lake.uri}"))


@command(app, "runs")
def updates_runs(
    session: Session,
    update_hash: Annotated[str | None, typer.Argument(metavar="[UPDATE_HASH]", help="Only this update process.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show the most recent N runs.")] = 50,
) -> None:
    """Run history (most recent last): status, rows written, duration and error of every run."""
    every = run_history(session.lake, update_hash)
    runs = every[-limit:]

    def render(console: Console) -> None:
        scope = f" of {update_hash}" if update_hash else ""
        view = table("Started", "Update hash", "Status", "Rows", "Seconds", "Host", "Error",
                     no_wrap=("Started", "Update hash"), empty=f"no runs{scope} recorded in {session.lake.uri}")
        for run in runs:
            seconds = (run["finished_at"] - run["started_at"]).total_seconds() if run["finished_at"] else None
            view.add_row(text(run["started_at"]), run["update_hash"], run["status"], text(run["rows_written"]),
                         f"{seconds:.2f}" if seconds is not None else "", run["host"] or "", one_line(run["error"] or ""))
        console.print(view)
        if len(every) > len(runs):
            console.print(f"the last {len(runs)} of {len(every)} runs (--limit N shows more)")

    session.output({"count": len(runs), "total": len(every), "truncated": len(every) > len(runs), "results": runs},
                   render)


@command(app, "reconcile")
def updates_reconcile(
    session: Session,
    tables: Annotated[list[str] | None, typer.Argument(
        metavar="TABLE", show_default=False,
        help="Tables (uid, identifier or storage hash); default: every table of the lake.")] = None,
    namespace: NamespaceOption = None,
) -> None:
    """Recover runs that committed rows but never recorded themselves (the process was killed, or the
    disk filled, between its commit and its run record): every commit in a table's Delta history
    whose lakenodes.run_id has no run record becomes a run with status "recovered" (rows from the
    commit, times from its timestamp). Idempotent: a run is never recorded twice. Run it after a
    crash; a run whose own record failed is also recovered by the next run of its table in the same
    process (docs/reliability.md)."""
    done = reconcile_runs(session.lake, tables, namespace)
    recovered = [{"table": item["storage_hash"], **run} for item in done for run in item["recovered"]]

    def render(console: Console) -> None:
        view = table("Table", "Run id", "Update hash", "Committed at", "Rows", no_wrap=("Table", "Run id"))
        for run in recovered:
            view.add_row(run["table"], run["run_id"], run["update_hash"] or "", text(run["finished_at"]),
                         text(run["rows_written"]))
        if recovered:
            console.print(view)
        console.print(f"checked {len(done)} table(s), {sum(item['commits_checked'] for item in done)} run "
                      f"commit(s): recovered {len(recovered)} run(s)")

    session.output({"count": len(recovered), "tables": [{k: v for k, v in item.items() if k != "recovered"}
                                                        for item in done], "results": recovered}, render)
