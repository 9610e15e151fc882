"""The ``lakenodes`` command line: browse and search the catalog, query and trim tables, run
DataNodes from a scheduler, and maintain the lake.

Every command accepts ``--lake URI`` (else ``$LAKENODES_URI``, else ``./lake``), ``--json`` (one
JSON document on stdout, led by ``"ok"``, nothing else) and ``--verbose`` (INFO logs on stderr),
before or after the command name. Exit codes: 0 success; 1 failure (a node run, storage, a
refused confirmation); 2 user mistake, reported as one ``error: ...`` line on stderr without a
traceback. Nothing assumes a terminal, so the commands fit cron, Airflow and Kubernetes jobs.
Commands also answer to the seeds' underscore spellings (``data_node run_query``); ``--version``
prints the version.

One module per command group, joined here with ``app.add_typer()``: :mod:`.search`,
:mod:`.run`, :mod:`.maintenance` (``optimize``, ``vacuum``) add root commands;
:mod:`.data_node` (its ``drop`` in :mod:`.data_node_drop`), :mod:`.updates` and :mod:`.assets` are
groups. Commands call the library and render its results (:mod:`._render`); :mod:`._session` gives them the lake and the exit codes.

Example:
    $ lakenodes data-node list --filter identifier__contains=example_random_number_
    $ lakenodes --json data-node detail example_random_number_local
    $ lakenodes run examples.tutorial_nodes:DailyRandomNumber --config '{"mean": 0.0}'
    $ lakenodes optimize && lakenodes vacuum --dry-run
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import Annotated

import typer

from .._internal.stops import relay_stops
from ..errors import raise_terminated
from ..lake._rust_stderr import restore_stderr
from . import assets, data_node, data_node_drop, maintenance, run, search, updates  # noqa: F401 (registers drop)
from ._groups import FAILURE, SUCCESS, OneLineErrorGroup, SeedSpellingGroup, exit_code_of
from ._render import json_document
from ._session import GlobalOptions, LakeOption, VerboseOption

__all__ = ["app", "main", "version_text"]

app = typer.Typer(
    cls=OneLineErrorGroup, name="lakenodes", no_args_is_help=True, add_completion=False,
    pretty_exceptions_enable=False, rich_markup_mode=None,
    help="Incremental, time-indexed DataNodes on a Delta lake: catalog, search, SQL, runs, maintenance.",
)
app.add_typer(search.app)
app.add_typer(run.app)
app.add_typer(maintenance.app)
app.add_typer(data_node.app, name="data-node")
app.add_typer(updates.app, name="updates")
app.add_typer(assets.app, name="assets")
# the seeds' `project data-node-updates list` (and `data-node-updates list`): hidden spellings of `updates`
_project = typer.Typer(cls=SeedSpellingGroup, help="The seeds' `project` commands.")
_project.add_typer(updates.app, name="data-node-updates")
app.add_typer(_project, name="project", hidden=True)
app.add_typer(updates.app, name="data-node-updates", hidden=True)


def version_text() -> str:
    """``lakenodes <version>`` of the installed distribution."""
    try:
        version = importlib.metadata.version("lakenodes")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        version = "(not installed)"
    return f"lakenodes {version}"


_VERSION_ASKED = "lakenodes.version_asked"


def _version_option(ctx: typer.Context, value: bool) -> None:
    """``--version``: printed once ``--json`` is known (both options are eager; either may come first)."""
    if value:
        ctx.meta[_VERSION_ASKED] = True
        if "json_output" in ctx.params:
            _print_version(ctx.params["json_output"])


def _json_option(ctx: typer.Context, value: bool) -> bool:
    if ctx.meta.get(_VERSION_ASKED):
        _print_version(value)
    return value


def _print_version(as_json: bool) -> None:
    text = version_text()
    typer.echo(json_document({"name": "lakenodes", "version": text.split(" ", 1)[1]}) if as_json else text)
    raise typer.Exit(SUCCESS)


@app.callback()
def _root(ctx: typer.Context, lake: LakeOption = None,
          json_output: Annotated[bool, typer.Option("--json", is_eager=True, callback=_json_option,
                                                    help="Print one machine-readable JSON document on stdout.")] = False,
          verbose: VerboseOption = False,
          version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version_option,
                                                help="Print the lakenodes version and exit.")] = False) -> None:
    ctx.obj = GlobalOptions(lake, json_output, verbose)


def main(argv: Sequence[str] | None = None, *, standalone_mode: bool = True) -> int:
    """Console entry point (``lakenodes``, ``python -m lakenodes``): run the app and exit with its code.

    With ``standalone_mode=False`` the exit code is returned instead (for calling the CLI
    in-process; nothing raises ``SystemExit``). Standalone, it ends the process with ``os._exit``
    after flushing: with deltalake 1.6 and pyarrow 26 the interpreter sometimes aborts at
    shutdown ("terminate called without an active exception", exit 134) after a pyarrow dataset
    over a Delta table was read, which would turn a successful command into a failed cron/Airflow task.
    """
    if standalone_mode and threading.current_thread() is threading.main_thread():
        relay_stops(raise_terminated)  # a scheduler's stop: recorded and said, as Ctrl-C, whatever thread caught it
    try:
        result = app(args=list(argv) if argv is not None else None, prog_name="lakenodes", standalone_mode=False)
        code = result if isinstance(result, int) else SUCCESS
    except SystemExit as exit_:  # user code may call sys.exit
        code = exit_code_of(exit_)
    except BaseException as error:  # a bug in lakenodes: show it, fail
        if not (standalone_mode or isinstance(error, Exception)):
            raise  # in-process: KeyboardInterrupt and the like belong to the caller
        traceback.print_exc()
        code = FAILURE
    if not standalone_mode:
        return code
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    restore_stderr()  # a background delta-rs call may have fd 2 in its panic filter's pipe
    os._exit(code)
