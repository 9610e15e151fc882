"""``lakenodes updates ...``: update processes (updaters) and their run history
(the seeds' ``project data-node-updates``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .._internal.datetimes import parse_datetime
from ..catalog.run_retention import older_than as parse_age
from ..errors import LakenodesUserError, one_line
from ..facade.table_refs import clean_runs, reconcile_runs, run_history, update_processes
from ._confirm import confirm
from ._groups import group
from ._render import table, text, updaters_table
from ._session import NamespaceOption, Session, command, optional_metavar

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
    update_hash: Annotated[str | None, typer.Argument(metavar=optional_metavar("UPDATE_HASH"), help="Only this update process.")] = None,
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


@command(app, "clean")
def updates_clean(
    session: Session,
    before: Annotated[str | None, typer.Option(
        "--before", metavar="DATE", help="Remove runs that finished before DATE (ISO-8601, UTC if naive).")] = None,
    older_than: Annotated[str | None, typer.Option(
        "--older-than", metavar="AGE", help="Remove runs that finished longer ago than AGE: 90d, 36h, 2w (s, m, h, d, w).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what it would remove; remove nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove old runs from the run history (_catalog/runs), so it does not grow forever: every run that
    finished before --before DATE (or longer ago than --older-than AGE), except each update process's
    last run, which `updates list` keeps showing. Unless --yes or --dry-run, it counts them and asks.
    `updates reconcile` never recovers a removed run (docs/reliability.md)."""
    if (before is None) == (older_than is None):  # the options' names, not the library's arguments
        raise LakenodesUserError("give exactly one of --before DATE (e.g. 2026-01-01) and --older-than AGE (e.g. 90d)")
    before, age = parse_datetime(before, "--before"), None if older_than is None else parse_age(older_than, "--older-than")
    counted = clean_runs(session.lake, before, older=age, dry_run=True) if dry_run or not yes else None
    if dry_run:
        done = counted
    elif counted is not None and not counted["removed"]:  # nothing to remove: nothing to ask, nothing changed
        done = {**counted, "dry_run": False}
    else:
        if counted is not None:  # the same cutoff as counted, asked on stderr (stdout keeps --json's document)
            confirm(f"Remove {counted['removed']} run(s) that finished before {text(counted['before'])}?", "remove runs",
                    "nothing was removed")
            before, age = counted["before"], None
        done = clean_runs(session.lake, before, older=age)

    def render(console: Console) -> None:
        view = table("Update hash", "Table", "Runs removed", "Runs kept", "Oldest removed", "Newest removed",
                     no_wrap=("Update hash",))
        for entry in done["updaters"]:
            view.add_row(entry["update_hash"] or "", entry["identifier"] or entry["storage_hash"] or "",
                         text(entry["removed"]), text(entry["kept"]), text(entry["oldest"]), text(entry["newest"]))
        if done["updaters"]:
            console.print(view)
        verb = "would remove" if done["dry_run"] else "removed"
        console.print(f"{verb} {done['removed']} run(s) that finished before {text(done['before'])}; "
                      f"{done['kept']} run(s) kept (each update process keeps its last run)")

    session.output({**{k: v for k, v in done.items() if k != "updaters"}, "count": len(done["updaters"]),
                    "results": done["updaters"]}, render)
