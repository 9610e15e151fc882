"""``lakenodes run MODULE:CLASS --config JSON``: run a DataNode tree once from a scheduler."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer

from .._internal.collector import resume_collection
from ..runtime.launch import build_node, loaded_node_class, run_tree
from ._outcome import node_ran
from ._render import ProgressUpdate, progress_bar
from ._session import Session, command

app = typer.Typer()
log = logging.getLogger(__name__)
MAX_WORKERS = 1024  # a 20-digit count failed in the process pool: "OverflowError: ... to C int"


@command(app, "run", lake_must_exist=False, resumes_collection=False)
def run_node(
    session: Session,
    target: Annotated[str, typer.Argument(metavar="MODULE:CLASS",
                                          help="A DataNode class: dotted.module:Class or path/to/file.py:Class.")],
    config: Annotated[str, typer.Option("--config", "-c", metavar="JSON",
                                        help="The node's configuration as JSON, or @file.json (at most 1 MiB); "
                                             "omitted fields take the configuration class's defaults.")] = "{}",
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", show_default=False,
                                                  help="Hash namespace: write to an isolated table.")] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, max=MAX_WORKERS,
                                         help="Run independent dependency branches in N spawn processes.")] = 1,
    no_deps: Annotated[bool, typer.Option(
        "--no-deps", help="Run this node only, not its dependencies: it reads their tables as they stand "
                          "(Python's node.run(update_tree=False)); --workers then starts no processes.")] = False,
) -> None:
    """Run a DataNode (and its dependencies, unless --no-deps) once, e.g. from cron, Airflow or a k8s job.

    --config is validated into the node's configuration class: its `Config` attribute, else the
    `config` annotation of its own `__init__`, else its `config: MyConfig` class annotation.
    Exit code 0 on success, 1 when the run fails, 2 for a bad class, configuration or argument.
    A progress bar over the nodes of the tree shows on an interactive terminal.
    """
    log.info("lake %s (%s)", session.lake.uri, session.lake_origin)
    with loaded_node_class(target) as node_class:
        node = build_node(node_class, config, namespace=namespace)
        resume_collection()  # set up: the user's module and lakenodes' runtime are loaded
        # user code may print: keep stdout for the one JSON document
        ran: dict[str, Any] = {}  # the tree's nodes by update hash, as they finish
        with (_stdout_to_stderr() if session.json else contextlib.nullcontext(),
              _node_progress(not session.json) as (on_progress, on_phase)):
            summaries = run_tree(node, workers=workers, on_progress=_recording(ran, on_progress), on_phase=on_phase,
                                 update_tree=not no_deps)
    written = summaries[node.update_hash]
    dependencies = [(ran[key], summary) for key, summary in summaries.items() if key != node.update_hash and key in ran]
    document = {"node": node.source_class, "lake": session.lake.uri, "update_hash": node.update_hash,
                "storage_hash": node.storage_hash, "namespace": node.hash_namespace, "table_uri": node.table_uri,
                "rows_written": written.rows_written, "table_version": written.table_version,
                "duration_s": round(written.duration_s, 3),
                "dependencies": [node_ran(dependency, summary) for dependency, summary in dependencies]}
    session.output_line(document, "\n".join(_written_line(ran_node, summary)
                                             for ran_node, summary in [*dependencies, (node, written)]))


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """What the run writes to stdout goes to stderr: Python's ``print()`` and, at file descriptor 1,
    subprocesses, C code and spawned workers (which inherit it); stdout is back for the document after."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # stdout closed: nothing to keep clean
        saved = None
    if saved is not None:
        os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def _recording(ran: dict[str, Any], on_progress: Callable[[int, int, Any], None]) -> Callable[[int, int, Any], None]:
    def on_node_done(done: int, total: int, node: Any) -> None:
        if node is not None:
            ran[node.update_hash] = node
        on_progress(done, total, node)

    return on_node_done


def _written_line(node: Any, summary: Any) -> str:
    return f"{type(node).__name__} {node.update_hash} -> {node.storage_hash}: {summary.rows_written} row(s) written"


@contextlib.contextmanager
def _node_progress(enabled: bool) -> Iterator[tuple[Callable[[int, int, Any], None], Callable[[Any, str], None]]]:
    """``(on_progress(done, total, node), on_phase(node, phase))`` moving the progress bar over a
    run's nodes; nodes that run in this process also show their current phase (statistics, update,
    validation, write…)."""
    with progress_bar(enabled, "running") as update:
        yield _nodes_done(update), lambda node, phase: update(description=f"{type(node).__name__}: {phase}")


def _nodes_done(update: ProgressUpdate) -> Callable[[int, int, Any], None]:
    """``run_many``'s ``on_progress(done, total, node)`` drawing on ``update``."""

    def on_progress(done: int, total: int, node: Any) -> None:
        label = f"ran {type(node).__name__}" if node is not None else "running"
        update(completed=done, total=total, description=label)

    return on_progress
