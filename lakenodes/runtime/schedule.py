"""Scheduling a run: the dependency graph (:mod:`lakenodes.runtime.graph`) run serially or on any
``concurrent.futures.Executor``; each node once, dependencies first, through
:func:`lakenodes.runtime.run.run_single`.
"""

from __future__ import annotations

import logging
import pickle
import sys
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import Literal, overload

import polars as pl

from .._internal.forks import refuse_if_forked_after_threads
from ..core.config import DataNodeConfiguration
from ..core.frame_kind import chosen_frame, set_default_frame
from ..errors import (
    ConfigurationError,
    DependencyCycleError,
    LakeConfigurationError,
    NodeRunError,
    one_line,
)
from ..lake.existence import lake_problem
from ..lake.location import Lake, use_lake
from ..nodes.node import BaseNode, DataNode
from ..nodes.node_logging import show_logs_by_default, shown_by_default
from .graph import collect_dependencies, described
from .hooks import PhaseReporter, RunHooks, RunInfo, tell_each
from .recorder import default_hooks
from .run import RunSummary, node_context, report_failure, run_single

logger = logging.getLogger(__name__)

PhaseListener = Callable[[DataNode, str], None]


def run_tree(root: DataNode, *, update_tree: bool = True, executor: Executor | None = None,
             return_frame: bool = True) -> tuple[bool, RunSummary]:
    """Run ``root`` (and, with ``update_tree``, its dependency tree first); see ``DataNode.run``.
    Only ``root``'s written rows travel back (in its summary's ``frame``), when ``return_frame``."""
    with node_context(root):  # alone, ``root`` runs in this process: nothing to fan out
        summaries = _schedule([root], executor if update_tree else None, None, None,
                              {root.update_hash} if return_frame else (), update_tree=update_tree)
    return False, summaries[root.update_hash]


ProgressCallback = Callable[[int, int, "DataNode | None"], None]


@overload
def run_many(nodes: Sequence[DataNode], *, executor: Executor | None = ..., on_progress: ProgressCallback | None = ...,
             on_phase: PhaseListener | None = ..., return_frames: Literal[False] = ...,
             update_tree: bool = ...) -> dict[str, RunSummary]: ...


@overload
def run_many(nodes: Sequence[DataNode], *, executor: Executor | None = ..., on_progress: ProgressCallback | None = ...,
             on_phase: PhaseListener | None = ..., return_frames: Literal[True],
             update_tree: bool = ...) -> dict[str, pl.DataFrame]: ...


def run_many(
    nodes: Sequence[DataNode], *, executor: Executor | None = None, on_progress: ProgressCallback | None = None,
    on_phase: PhaseListener | None = None, return_frames: bool = False, update_tree: bool = True,
) -> dict[str, RunSummary] | dict[str, pl.DataFrame]:
    """Run several trees together: ``nodes`` is a list of DataNode instances (even for one: ``[node]``), each
    run once, dependencies first; returns a
    :class:`~lakenodes.runtime.run.RunSummary` per update_hash (rows written, table version,
    timings), or with ``return_frames=True`` the rows each node wrote (every frame then travels
    back from the executor's workers: a backfill's whole data in the driver).

    With an ``executor`` (a spawn process pool, a Dask ``distributed`` client's executor, …)
    independent branches and sharded updaters of one table run in parallel; a node starts when
    all its dependencies finished. Results are identical to a serial run. ``on_progress(done,
    total, node)`` is called once before the first node (``node=None``) and after each one;
    ``on_phase(node, phase)`` as each node run in this process enters a phase (nodes run on an
    executor report no phases). ``update_tree=False`` runs the given nodes only, not their
    dependencies (which are read as their tables stand), as ``node.run(update_tree=False)`` does.

    A failing node does not stop the nodes that do not depend on it. Once all have finished or
    been skipped, the first failure is raised (the others are logged); it carries the whole run:
    ``error.completed`` (the summaries of the nodes that finished) and ``error.failures``.

    On a process pool, the node classes must be importable by the workers (defined in a module),
    e.g. ``with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
    run_many([SimulatedPrices(batch_1), SimulatedPrices(batch_2)], executor=pool)``.

    Example (``example``: a temporary lake with one table, see conftest.py):
        >>> summaries = run_many([example.node])  # its update() returns its 8 rows again
        >>> summary = summaries[example.node.update_hash]  # rows equal to the stored ones are left as they are
        >>> summary.rows_written + summary.rows_unchanged
        8
        >>> run_many([example.node], return_frames=True)[example.node.update_hash].columns  # none persisted: no rows
        ['time_index', 'unique_identifier', 'close']
    """
    if not isinstance(update_tree, bool):  # "no" would run the whole tree
        raise ConfigurationError(f"run_many(update_tree=...) must be True or False, got {update_tree!r}")
    summaries = _schedule(_checked_nodes(nodes), executor, on_progress, on_phase, None if return_frames else (),
                          update_tree=update_tree)
    if return_frames:
        return {key: summary.frame if summary.frame is not None else pl.DataFrame() for key, summary in summaries.items()}
    return summaries


def _checked_nodes(nodes: object) -> Sequence[DataNode]:
    """``run_many``'s ``nodes``, or ``ConfigurationError`` naming what is not a sequence of DataNodes (one node,
    a configuration, a class), instead of an AttributeError from deep inside the run."""
    if isinstance(nodes, BaseNode) or not isinstance(nodes, Iterable) or isinstance(nodes, (str, bytes, Mapping)):
        raise ConfigurationError(f"run_many takes a list of DataNodes, got {described(nodes)}"
                                 + (": run_many([node]), or node.run()" if isinstance(nodes, BaseNode) else ""))
    nodes = list(nodes)
    for position, node in enumerate(nodes):
        if not isinstance(node, BaseNode):
            raise ConfigurationError(f"run_many: nodes[{position}] is {described(node)}, not a DataNode"
                                     + (" (build the node from it: MyNode(config))"
                                        if isinstance(node, DataNodeConfiguration) else ""))
    return [node for node in nodes if isinstance(node, DataNode)]  # an APIDataNode is a table: nothing to run


def _schedule(nodes: Sequence[DataNode], executor: Executor | None, on_progress: ProgressCallback | None,
              on_phase: PhaseListener | None, frames_of: Collection[str] | None,
              update_tree: bool = True) -> dict[str, RunSummary]:
    """``run_many``'s run; the summaries of the update hashes in ``frames_of`` (None: all) keep their frame.
    Without ``update_tree``, the ``nodes`` alone (their dependencies are not collected)."""
    refuse_if_forked_after_threads()  # before any node begins: a forked child fails with the fix, not a run error
    if executor is not None and (isinstance(executor, type) or not callable(getattr(executor, "submit", None))):
        # was an AttributeError ('str' object has no attribute 'submit') after the tree was collected
        raise ConfigurationError(
            f"executor must be a concurrent.futures.Executor (one with submit()), got {described(executor)}"
            f"{'' if isinstance(executor, type) else f' {executor!r}'}: e.g. "
            "ProcessPoolExecutor(mp_context=multiprocessing.get_context('spawn')), or None")
    graph: dict[str, DataNode] = {}
    needs: dict[str, set[str]] = {}
    lakes: dict[str, Lake] = {}  # each node's lake where its tree was collected, as in root.run()
    broken: dict[str, NodeRunError] = {}  # nodes whose dependencies() failed: they fail, their dependents are skipped
    for root in nodes:
        with node_context(root):
            if update_tree:
                collect_dependencies(root, graph, needs, broken)
            else:
                graph.setdefault(root.update_hash, root)
                needs[root.update_hash] = set()
            for key, node in graph.items():
                lakes.setdefault(key, node.lake)  # its own lake=, else its root's
    _refuse_unusable_lakes(lakes.values())
    keep = {key: frames_of is None or key in frames_of for key in graph}
    report = on_progress or (lambda done, total, node: None)
    report(0, len(graph), None)
    hooks = default_hooks()  # with an executor, the workers have their own: these record the skipped nodes
    for key, error in broken.items():  # never run, as their dependencies() failed: recorded as failed runs
        _record_not_run(hooks, graph[key], error)
    try:
        if executor is None:
            hooks += (PhaseReporter(on_phase),) if on_phase is not None else ()
            results, failures = _run_serially(graph, needs, lakes, report, hooks, keep, broken)
        else:
            results, failures = _run_on_executor(graph, needs, lakes, executor, report, hooks, keep, broken)
    finally:
        tell_each(hooks, lambda hook: hook.tree_finished(), "could not finish the run's records: %s")
    if failures:
        first, *others = {id(error): error for error in failures.values()}.values()  # skipped nodes share it
        for other in others:
            logger.error("also failed: %s", other)
        first.completed, first.failures, first.nodes = results, failures, graph
        raise first
    return results


def _refuse_unusable_lakes(lakes: Collection[Lake]) -> None:
    """Raise ``LakeConfigurationError`` (the CLI's one line for ``--lake notes.txt/lake``) before anything
    is written when a local lake is a file or under one; S3 lakes are left to the run (no probe)."""
    for lake in set(lakes):
        problem = lake_problem(lake, require_lake=False) if lake.is_local else None
        if problem:
            raise LakeConfigurationError(problem)


def _run_serially(
    graph: dict[str, DataNode], needs: dict[str, set[str]], lakes: dict[str, Lake], report: ProgressCallback,
    hooks: Sequence[RunHooks], keep: dict[str, bool], broken: dict[str, NodeRunError],
) -> tuple[dict[str, RunSummary], dict[str, NodeRunError]]:
    results: dict[str, RunSummary] = {}
    failures: dict[str, NodeRunError] = {}
    for key, node in graph.items():
        if key in broken:
            failures[key] = broken[key]
        elif not _skipped_for_failed_dependency(key, needs, failures, graph, hooks):
            try:
                with use_lake(lakes[key]):
                    results[key] = run_single(node, hooks, keep[key])
            except NodeRunError as error:
                failures[key] = error
        report(len(results) + len(failures), len(graph), node)
    return results, failures


def _run_on_executor(
    graph: dict[str, DataNode], needs: dict[str, set[str]], lakes: dict[str, Lake], executor: Executor,
    report: ProgressCallback, hooks: Sequence[RunHooks], keep: dict[str, bool], broken: dict[str, NodeRunError],
) -> tuple[dict[str, RunSummary], dict[str, NodeRunError]]:
    """A node starts when its dependencies succeeded; a failure skips only the nodes that depend on
    it (told to ``hooks`` here), so independent nodes still finish."""
    results: dict[str, RunSummary] = {}
    failures: dict[str, NodeRunError] = dict(broken)
    running: dict[Future, str] = {}
    pending = {key: deps for key, deps in needs.items() if key not in broken}
    for key in broken:
        report(len(results) + len(failures), len(graph), graph[key])
    try:
        while pending or running:
            finished = results.keys() | failures.keys()  # once a pass: per pending node, a tree of N nodes costs N^3
            for key in [key for key, deps in pending.items() if deps <= finished]:
                del pending[key]
                if _skipped_for_failed_dependency(key, needs, failures, graph, hooks):
                    report(len(results) + len(failures), len(graph), graph[key])
                    continue
                # a fresh argument per submission: executors that cache by arguments (Dask's default
                # pure=True) would otherwise hand back an earlier run's result without running
                # the lake goes along: an executor pickles outside this use_lake block (in a feeder thread);
                # so does the frame kind set_default_frame chose (a spawned worker starts without it)
                try:
                    future = executor.submit(run_submission, _as_submitted(graph[key], executor), uuid.uuid4().hex,
                                             keep[key], lakes[key], chosen_frame(), shown_by_default())
                except Exception as error:  # noqa: BLE001 - the node would not pickle (a local class, a lock), or
                    # the pool broke (a worker running another node died) since its dependencies finished
                    failures[key] = NodeRunError(repr(graph[key]), "executor", error)
                    _record_not_run(hooks, graph[key], failures[key])
                    report(len(results) + len(failures), len(graph), graph[key])
                    continue
                running[future] = key
            if not running:
                if any(deps <= results.keys() | failures.keys() for deps in pending.values()):
                    continue  # a node failed at its submission: its dependents are skipped next
                if pending:
                    raise DependencyCycleError(f"dependency cycle among {sorted(pending)}")
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                try:
                    results[key] = future.result()
                except NodeRunError as error:
                    failures[key] = error
                    if error.phase == "executor":  # a worker could not load the node (_PickledNode): it never ran
                        _record_not_run(hooks, graph[key], error)
                except Exception as error:  # noqa: BLE001 - the executor's own: its worker died (BrokenProcessPool)
                    failures[key] = NodeRunError(repr(graph[key]), "executor", error)
                    _record_not_run(hooks, graph[key], failures[key])  # a dead worker recorded nothing
                report(len(results) + len(failures), len(graph), graph[key])
    finally:
        for future in running:
            future.cancel()
    return results, failures


def _record_not_run(hooks: Sequence[RunHooks], node: DataNode, error: NodeRunError) -> None:
    """Tell ``hooks`` that ``node`` failed where no run record is written: before ``run_single`` began
    (its ``dependencies()`` raised, or a process pool could not take it), or in a worker process that
    died (killed, out of memory) with the run, or before its turn."""
    report_failure(hooks, node, RunInfo.beginning_now(), error.phase, error.cause)


class _PickledNode:
    """A node pickled where it is submitted to a process pool, rebuilt by the task in the worker: a
    worker that cannot import the node's class (defined under ``if __name__ == "__main__":``)
    then fails that node's task, naming the class, instead of dying and breaking the whole pool
    (``BrokenProcessPool`` blamed on every node it was running)."""

    def __init__(self, node: DataNode) -> None:
        self.name, self.text, self.fix = repr(node), pickle.dumps(node), _import_fix(type(node))

    def load(self) -> DataNode:
        try:
            node: DataNode = pickle.loads(self.text)
        except (AttributeError, ImportError) as error:
            raise NodeRunError(self.name, "executor", ImportError(
                f"the pool's worker process cannot import the node's class ({one_line(str(error))}): {self.fix}")) from None
        return node


def _import_fix(cls: type) -> str:
    """What makes ``cls`` importable by a spawned worker, said where the node is submitted: a class
    of an interactive ``__main__`` (a notebook cell, the REPL, ``python -c``: no file a worker could
    re-import) needs another home than a script's class does."""
    if cls.__module__ != "__main__":
        return f"the workers must be able to import {cls.__module__!r} (their sys.path, PYTHONPATH)"
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if not main_file or main_file.startswith("<"):
        return (f"{cls.__qualname__} is defined in an interactive session (a notebook cell, the REPL, "
                "`python -c`), which spawned workers cannot import: move it into a .py module and import it "
                "from there, or run without a process pool (no executor)")
    return ("define node classes at the top level of a module the workers import, not in the script's "
            "`if __name__ == \"__main__\":` block")


def _as_submitted(node: DataNode, executor: Executor) -> DataNode | _PickledNode:
    """``node`` as handed to ``executor``: pickled here for a process pool (see ``_PickledNode``)."""
    pools = sys.modules.get("concurrent.futures.process")  # never imported: no process pool (nor its import)
    return _PickledNode(node) if pools and isinstance(executor, pools.ProcessPoolExecutor) else node


def run_submission(node: DataNode | _PickledNode, submission_id: str, keep_frame: bool = False,
                   lake: Lake | None = None, frame: str | None = None, show_logs: bool = False) -> RunSummary:
    """``run_single`` as submitted to an executor, in ``lake`` (that of the node where it was
    submitted) with ``frame`` (the kind ``set_default_frame`` chose there, if any) as this
    process's default; ``submission_id`` makes every submission distinct. With ``show_logs`` (the
    submitter showed node lines without a logging configuration) a worker that has none shows them too."""
    if show_logs:
        show_logs_by_default()
    if isinstance(node, _PickledNode):
        node = node.load()
    logger.debug("running submission %s of %r", submission_id, node)
    if frame is not None and frame != chosen_frame():
        set_default_frame(frame)  # a worker process's own default: what its submitter's was
    with use_lake(lake or node.lake):
        try:
            return run_single(node, default_hooks(), keep_frame)
        except NodeRunError as error:
            travelling = portable(error)
            if travelling is error:  # re-raised as it is: `from error` would replace its cause (the user's traceback)
                raise
            raise travelling from error


def portable(error: NodeRunError) -> NodeRunError:
    """``error`` as it can travel to the submitting process: when its cause would not survive
    pickling (an exception whose ``__init__`` pickle cannot call again, one holding a lock), the
    cause becomes a ``RuntimeError`` holding the cause's type and message. Otherwise the process
    pool broke, and the failure was blamed on whichever node was running beside it.

    Example:
        >>> class Odd(Exception):
        ...     def __init__(self, code, detail):
        ...         super().__init__(f"code={code}")
        >>> str(portable(NodeRunError("Node()", "update", Odd(42, "x"))))
        'Node() failed during update: RuntimeError: Odd: code=42 (the original exception could not be pickled)'
    """
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - whatever pickling raised, the stand-in below travels
        cls, arguments = error.__reduce__()[:2]
        stand_in = RuntimeError(f"{type(error.cause).__name__}: {one_line(error.cause)} "
                                "(the original exception could not be pickled)")
        return cls(*arguments[:2], stand_in, *arguments[3:])
    return error


def _skipped_for_failed_dependency(
    key: str, needs: dict[str, set[str]], failures: dict[str, NodeRunError], graph: dict[str, DataNode],
    hooks: Sequence[RunHooks],
) -> bool:
    """Whether node ``key`` is skipped, as a dependency of it failed or was skipped: then it shares that
    failure in ``failures`` and the hooks are told (the catalog records a ``skipped`` run)."""
    failed = sorted(needs[key] & failures.keys())
    if failed:
        error = failures[key] = failures[failed[0]]
        error.skipped.append(key)
        error.stopped_by[key] = failed[0]
        logger.warning("skipping %r: its dependency %s failed", graph[key], failed[0])
        run = RunInfo.beginning_now()
        tell_each(hooks, lambda hook: hook.run_skipped(graph[key], run, failed[0], error),
                  "could not record the skipped run of %s: %s", key)
    return bool(failed)
