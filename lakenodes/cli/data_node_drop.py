"""``lakenodes data-node drop``: remove a table from the lake (see :mod:`lakenodes.catalog.drop`)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..facade.table_refs import resolve_table, table_name
from ..lake.restore import refuse_catalog_table
from ._confirm import confirm
from ._session import NamespaceOption, Session, TableArgument, command
from .data_node import app

if TYPE_CHECKING:
    from rich.console import Console  # imported by the commands that render


def removed(plan: dict[str, Any]) -> str:
    """What a drop removes, in words.

    Example:
        >>> removed({"rows": 4, "files": 3, "bytes": 2048, "update_processes": ["u"], "runs": 2,
        ...          "identifiers_freed": [{"identifier": "fx", "namespace": ""}, {"identifier": "fx", "namespace": "ci"}]})
        "4 row(s), 3 file(s) (2048 bytes), 1 updater(s) and 2 run(s) from the catalog; frees identifier 'fx', 'fx' in namespace 'ci'"
    """
    rows = "an unreadable number of rows" if plan["rows"] is None else f"{plan['rows']} row(s)"
    claims = [repr(claimed["identifier"]) + (f" in namespace {claimed['namespace']!r}" if claimed["namespace"] else "")
              for claimed in plan["identifiers_freed"]]
    freed = f"; frees identifier {', '.join(claims)}" if claims else ""
    return (f"{rows}, {plan['files']} file(s) ({plan['bytes']} bytes), {len(plan['update_processes'])} updater(s) "
            f"and {plan['runs']} run(s) from the catalog{freed}")


@command(app, "drop")
def data_node_drop(
    session: Session,
    ref: TableArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what it would remove; remove nothing.")] = False,
    force: Annotated[bool, typer.Option("--force", help=(
        "Drop it even though another recorded table's configuration names it (a dependency), or rows were "
        "written to it after a drop of it that stopped began.")) ] = False,
    namespace: NamespaceOption = None,
) -> None:
    """Remove a table from the lake: its data and log files, its catalog record, updaters and runs,
    its identifier (another table may claim it then) and its search entry; its node's next run
    starts it afresh. Unless --yes, it says what goes and asks. A drop stopped half-way is finished
    by running it again (unless a run wrote to the table since: then it refuses without --force)."""
    refuse_catalog_table(ref, verb="dropped")  # before the lookup, which would not find it among the data tables
    found = resolve_table(session.lake, ref, namespace, dropped=True)
    drop = functools.partial(found.drop, force=force)
    planned = drop(dry_run=True) if dry_run or not yes else None
    if planned is not None and not dry_run:
        confirm(f"Drop {table_name(found)} ({found.storage_hash}): remove {removed(planned)}?", "drop",
                "nothing was removed")
    result = planned if dry_run else drop()

    def render(console: Console) -> None:
        verb = "would drop" if result["dry_run"] else "dropped"
        console.print(f"{verb} {table_name(found)} ({found.storage_hash}): {removed(result)}", soft_wrap=True)

    session.output(result, render)
