"""``lakenodes optimize`` and ``lakenodes vacuum``: table maintenance, one table at a time.

A table that fails does not stop the others; the command then exits 1 naming every failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import LakenodesUserError
from ..facade.table_refs import maintenance_names
from ..lake import maintenance
from ..lake.maintenance_batch import Operation, failures, over_tables
from ..lake.retention import DEFAULT_RETENTION_HOURS, MIN_RETENTION_HOURS, check_retention
from ._groups import FAILURE, CommandFailed
from ._render import progress_bar, table, text
from ._session import NamespaceOption, Session, command, optional_metavar

if TYPE_CHECKING:
    from rich.console import Console  # imported by the commands that render

app = typer.Typer()

MaintenanceTargets = Annotated[list[str] | None, typer.Argument(
    metavar=optional_metavar("UID", repeated=True), show_default=False,
    help="Tables (uid, identifier, storage hash or _catalog/<name>) [default: every table, catalog included].")]


@command(app, "optimize")
def optimize(
    session: Session,
    refs: MaintenanceTargets = None,
    target_size: Annotated[float | None, typer.Option("--target-size", metavar="MB", show_default=False,
                                                      help="Target file size in MB [default: delta-rs's, 100 MB].")] = None,
    namespace: NamespaceOption = None,
    cross_section: Annotated[bool, typer.Option(
        "--cross-section", help="Also write a time-ordered copy: a date across every asset reads one file "
                                "(costs the table's size again; later appends are read next to it; a commit "
                                "that removes a file retires it; kept when already of the table's "
                                "version).")] = False,
) -> None:
    """Compact small files one partition at a time (safe while updaters append) and checkpoint."""
    if target_size is not None and not 1 <= target_size * 2**20 < 2**63:  # checked before any table is touched
        raise LakenodesUserError(f"--target-size must be a number of MB from one byte (1e-06) to 2^63 bytes, "
                                 f"got {target_size:g}")
    size = None if target_size is None else int(target_size * 2**20)
    results = _maintain(session, maintenance_names(session.lake, refs, namespace), "optimize",
                        lambda name, progress: maintenance.optimize_table(session.lake, name, target_size=size,
                                                                          progress=progress,
                                                                          cross_section=cross_section))

    def render(console: Console) -> None:
        copies = ("Cross-section",) if cross_section else ()
        view = table("Table", "Compacted", "Files", "Checkpoint", *copies, no_wrap=("Table", "Files"),
                     empty=f"no tables in {session.lake.uri}")
        for r in results:
            files = f"{r['files_before']} -> {r['files_after']}" if "error" not in r else "failed"  # why: on stderr
            copy = (_copy_cell(r),) if cross_section else ()
            view.add_row(r["table"], text(r.get("partitions")), files, text(r.get("checkpoint_version")), *copy)
        console.print(view)

    _finish(session, "optimize", results, render)


@command(app, "vacuum")
def vacuum(
    session: Session,
    refs: MaintenanceTargets = None,
    retention_hours: Annotated[int, typer.Option(
        "--retention-hours", metavar="H",
        help=f"Keep files removed less than H hours ago (minimum {MIN_RETENTION_HOURS}).")] = DEFAULT_RETENTION_HOURS,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the files that would be deleted.")] = False,
    force_unsafe_retention: Annotated[bool, typer.Option(
        "--force-unsafe-retention",
        help=f"Allow a retention below {MIN_RETENTION_HOURS} h. DANGEROUS: breaks readers and writers still using "
             "older versions.")] = False,
    namespace: NamespaceOption = None,
) -> None:
    """Delete data files no longer part of any table version younger than the retention."""
    warning = check_retention(retention_hours, force_unsafe_retention or dry_run, hours_name="--retention-hours",
                              force_name="--force-unsafe-retention")  # a dry run deletes nothing
    if warning:
        session.warn(warning)
    results = _maintain(session, maintenance_names(session.lake, refs, namespace, pending=not dry_run), "vacuum",
                        lambda name, progress: maintenance.vacuum_table(
                            session.lake, name, retention_hours, dry_run, force_unsafe_retention=force_unsafe_retention))

    def render(console: Console) -> None:
        if not results:  # said nothing at all, as if it had not run
            console.print(f"no tables in {session.lake.uri}")
        verb = "would delete" if dry_run else "deleted"
        for r in results:
            if "error" in r:
                console.print(f"{r['table']}: failed")  # why: the error line on stderr
                continue
            reach = "would reach" if dry_run else "reaches"
            console.print(f"{r['table']}: {verb} {r['file_count']} file(s); time travel {reach} back to version "
                          f"{r['oldest_readable_version']} ({text(r['oldest_readable_timestamp'])})")
            if dry_run:
                for path in r["files"]:
                    console.print(f"  {path}", markup=False)

    _finish(session, "vacuum", results, render)


def _copy_cell(result: dict[str, Any]) -> str:
    """What optimize did with a table's cross-section copy, for the table's row."""
    state = {"written": "written", "current": "already current"}.get(result.get("cross_section") or "")
    return "" if state is None else f"{state} ({result['cross_section_rows']} rows)"


def _maintain(session: Session, names: list[str], what: str, operation: Operation) -> list[dict[str, Any]]:
    """``operation`` over ``names`` with a progress bar over the tables (and their partitions)."""
    with progress_bar(not session.json, what, total=len(names)) as update:

        def report(name: str, done: int | None, parts: int | None) -> None:
            update(description=f"{what} {name}" + (f" ({done}/{parts} partitions)" if parts else ""))
            if done is None:
                update(advance=1)

        return over_tables(names, what, operation, report)


def _finish(session: Session, what: str, results: list[dict[str, Any]], render: Callable[[Console], None]) -> None:
    failed = failures(results)
    session.output({"ok": not failed, "count": len(results), "results": results}, render)
    if failed:
        raise CommandFailed(FAILURE, f"{what} failed for {len(failed)} table(s): "
                            + "; ".join(f"{r['table']}: {r['error']}" for r in failed), reported=session.json)
