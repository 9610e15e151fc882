"""Running one node: statistics → update → validation → write, reported to run hooks
(:mod:`lakenodes.runtime.hooks`: the catalog recorder, progress); the runner itself knows no catalog.

Every phase failure is raised as NodeRunError naming the node, the phase and the cause; a
failure before the write leaves the table untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, wait
from typing import Any

import polars as pl
from deltalake import DeltaTable

from .._internal.afterwards import afterwards
from .._internal.background import in_background
from .._internal.event_loops import outside_event_loop
from ..core.frame_schema import refuse_untyped_nulls, warn_valueless_columns
from ..core.frame_stream import FrameStream, is_stream
from ..core.frames import NormalizedFrame, conform_to_schema, normalize_frame
from ..core.hashing import hash_namespace
from ..errors import NodeRunError, RowsStoredError, WatermarkMovedError, one_line
from ..lake.location import use_lake
from ..lake.progress import TableProgress, persist_append, read_progress, remember_append
from ..lake.store import WriteResult
from ..lake.stream_write import write_stream
from ..lake.versions import table_history
from ..nodes.node import DataNode
from ..nodes.statistics import UpdateStatistics
from .hooks import RunHooks, RunInfo, tell_each

logger = logging.getLogger(__name__)
# statistics -> update -> validation, at most this often per run: again when a watermark moved between
# the statistics update() used and the write (a concurrent tail delete; a concurrent append to a stream)
COMPUTATIONS = 3


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """What one run of one node did: its ``update_hash``, ``storage_hash`` and ``run_id``, rows
    written (``rows_appended`` blind, ``rows_upserted`` by a merge), the ``table_version`` it
    committed (None when it wrote nothing), when it started and ``duration_s``;
    ``rows_unchanged``: rows update() returned that equal the stored row of their index, which
    are never rewritten (when every row is, nothing is committed). ``frame`` holds the rows
    update() returned, all now stored, only when they were asked for
    (``run_many(..., return_frames=True)``): summaries are what travels back from executor
    workers by default.

    Example:
        >>> import datetime
        >>> RunSummary("a_1", "a_2", "r", 0, 0, None, datetime.datetime(2026, 1, 1), 0.5).rows_written
        0
    """

    update_hash: str
    storage_hash: str
    run_id: str
    rows_appended: int
    rows_upserted: int
    table_version: int | None
    started_at: datetime.datetime
    duration_s: float
    frame: pl.DataFrame | None = dataclasses.field(default=None, repr=False, compare=False)
    rows_unchanged: int = 0

    @property
    def rows_written(self) -> int:
        return self.rows_appended + self.rows_upserted


@contextlib.contextmanager
def node_context(node: DataNode) -> Iterator[None]:
    """Re-activate the node's namespace (production's ``""`` too) and lake so dependencies built during the
    run inherit them, whatever namespace block the run is called in."""
    with use_lake(node.lake), hash_namespace(node.hash_namespace):
        yield


@contextlib.contextmanager
def _in_background(function: Callable[[], Any], then: Callable[[Any], Any] | None = None) -> Iterator[Future]:
    """``function()``, then ``then(its result)`` in the same thread (unless it failed), started in a
    pooled thread (in this context: the node's lake and namespace), waited for on exit; yields the
    future of ``function()``. The first statistics and the opening of the table are reads: they
    overlap the hooks' registration (the catalog's identifier claim), a few storage round trips each."""
    first: Future = Future()

    def job() -> None:
        try:
            result = function()
        except BaseException as error:  # noqa: BLE001 - handed to whoever waits for the result
            first.set_exception(error)
            return
        first.set_result(result)
        if then is not None:
            then(result)

    done = in_background(job)
    try:
        yield first
    finally:
        wait([done])


def _prepare_write(node: DataNode, stats: UpdateStatistics) -> None:
    """Open the node's table and work out its progress, which the write needs (from the first
    statistics' snapshot when the table is at that version); nothing when the statistics found no
    table. A failure here is only logged: the write opens the table itself and reports what goes wrong."""
    if stats.progress.version < 0:  # no table at the statistics: nothing to open
        return
    try:
        table = node.store.table(refresh=False)
        if table is not None:
            read_progress(table, node.lake)
    except Exception as error:  # noqa: BLE001 - the write meets the same fault and reports it
        logger.debug("opening %s ahead of the write failed: %s", node.store.uri, error)


def _enter(hooks: Sequence[RunHooks], node: DataNode, phase: str) -> str:
    logger.debug("%r: %s phase", node, phase)
    for hook in hooks:
        hook.phase_started(node, phase)
    return phase


def _registered(hooks: Sequence[RunHooks], node: DataNode) -> None:
    """Wait for the registration the hooks began in the background (see ``RunHooks.registered``)."""
    for hook in hooks:
        hook.registered(node)


def _first_failure(hooks: Sequence[RunHooks], node: DataNode, phase: str,
                   error: Exception, settled: bool) -> tuple[str, Exception]:
    """The failure to report for ``error`` in ``phase``: a failure of the registration still under
    way (not ``settled``), which began first (an identifier conflict; a store timing out for both),
    else ``error``."""
    if not settled and phase != "registration":
        try:
            _registered(hooks, node)
        except Exception as registration:  # noqa: BLE001 - reported instead, as the run's failure
            return "registration", registration
    return phase, error


def report_failure(hooks: Sequence[RunHooks], node: DataNode, run: RunInfo, phase: str, error: BaseException) -> None:
    """Tell ``hooks`` that ``run`` of ``node`` failed in ``phase``; a hook's own failure is logged, never raised."""
    tell_each(hooks, lambda hook: hook.run_failed(node, run, phase, error), "could not record the failed run of %s: %s",
              node.update_hash)


def run_single(node: DataNode, hooks: Sequence[RunHooks], keep_frame: bool = True) -> RunSummary:
    """Run one node (not its dependencies), reporting to ``hooks``; return its summary (with the
    rows it persisted when ``keep_frame``)."""
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.perf_counter()
    run_id = uuid.uuid4().hex

    def summary(rows: Any, version: int | None, frame: pl.DataFrame, unchanged: int = 0) -> RunSummary:
        return RunSummary(node.update_hash, node.storage_hash, run_id, rows[0], rows[1], version, started,
                          time.perf_counter() - clock, frame if keep_frame else None, unchanged)

    rows_written = 0
    committed = False
    settled = False  # the registration the hooks began in the background awaited (it precedes any commit)

    def settle_registration() -> None:
        nonlocal phase, settled
        if not settled:
            phase, resumed = "registration", phase
            _registered(hooks, node)
            phase, settled = resumed, True

    phase = _enter(hooks, node, "registration")
    try:
        with node_context(node), _in_background(node.compute_update_statistics,
                                                   lambda stats: _prepare_write(node, stats)) as first_statistics:
            for hook in hooks:
                hook.run_started(node)
            for computation in range(1, COMPUTATIONS + 1):  # again when a tail delete moved watermarks back
                phase = _enter(hooks, node, "statistics")
                node.update_statistics = (first_statistics.result() if computation == 1
                                          else node.compute_update_statistics())
                stats = node.update_statistics
                if stats.asset_list is not None and len(stats.asset_list) == 0:
                    node.logger.warning(
                        "get_asset_list() returned no assets, so there is nothing to update; on a fresh lake the "
                        "asset registry is empty: register assets first (Asset.batch_get_or_register_custom_assets)")
                phase = _enter(hooks, node, "update")
                output = outside_event_loop(node.update)  # asyncio.run in update() works in a notebook
                phase = _enter(hooks, node, "validation")
                frame = _validate(node, output)
                persisted = _persisted(node, frame, keep_frame)
                if not isinstance(frame, FrameStream):  # a stream's files upload meanwhile; it settles before committing
                    settle_registration()
                result = None
                checked: list[TableProgress] = []
                if frame is not None:
                    phase = _enter(hooks, node, "write")  # a stream is validated while it is written
                    try:
                        result = _write(node, hooks, frame, checked, stats.progress.last, run_id, settle_registration)
                    except WatermarkMovedError as moved:
                        if computation == COMPUTATIONS:
                            raise
                        node.logger.warning("%s: computing the rows again (%d of %d)", moved, computation + 1,
                                            COMPUTATIONS)
                        continue
                if result is None:
                    settle_registration()  # an empty stream: before the catalog phase
                    node.logger.info("no new rows (watermark %s)", stats.max_time_index_value)
                    phase = _enter(hooks, node, "catalog")
                    for hook in hooks:
                        hook.run_succeeded(node, RunInfo(run_id, started, 0))
                    return summary((0, 0), None, pl.DataFrame(node._no_rows()))  # the columns, no rows
                break
            if result.version is None:  # every row equals the stored row of its index: nothing committed
                node.logger.info("no changed rows: the %d rows returned equal the stored ones (no commit, table "
                                 "version unchanged)", result.rows_unchanged)
                phase = _enter(hooks, node, "catalog")
                for hook in hooks:
                    hook.run_succeeded(node, RunInfo(run_id, started, 0))
                return summary((0, 0), None, persisted().clear(), result.rows_unchanged)  # none persisted
            rows_written = result.rows_written
            committed = True
            with _remembering(node, frame, checked, result, run_id) as after:
                _log_window(node, stats, frame, result)
                phase = _enter(hooks, node, "catalog")
                if after is None:  # from the snapshot the write left cached, at its commit: no refresh
                    after = read_progress(node.store.table(refresh=False), node.lake)
                node.update_statistics = UpdateStatistics(after, asset_list=stats.asset_list,
                                                          offset_start=stats.offset_start)
                for hook in hooks:
                    hook.run_succeeded(node, RunInfo(run_id, started, rows_written))
            return summary((result.rows_appended, result.rows_upserted), result.version,
                           result.without_unchanged(persisted()), result.rows_unchanged)
    except (KeyboardInterrupt, SystemExit) as stop:  # recorded, then passed on as it is: the caller asked to stop
        if phase == "write" and not committed:
            rows_written = _rows_committed_before(node, run_id, stop)
        report_failure(hooks, node, RunInfo(run_id, started, rows_written), phase, stop)
        raise
    except Exception as failure:
        phase, error = _first_failure(hooks, node, phase, failure, settled)
        report_failure(hooks, node, RunInfo(run_id, started, rows_written), phase, error)
        if committed:
            cause = error.cause if isinstance(error, NodeRunError) else error
            raise RowsStoredError(repr(node), phase, cause, rows_written) from error
        if error is failure and isinstance(error, NodeRunError):
            raise
        raise NodeRunError(repr(node), phase, error) from error


def _rows_committed_before(node: DataNode, run_id: str, stop: BaseException) -> int:
    """The rows this run's commit stored when it was stopped during its write (0 when it had not
    committed). Python raises a Ctrl-C or SIGTERM once delta-rs' call returns: a signal that
    arrived while the rows were written is raised after their commit. Noted on ``stop``."""
    try:
        commits = [commit for commit in table_history(node.store.table(), limit=20) if commit["run_id"] == run_id]
    except Exception as error:  # noqa: BLE001 - the interrupt is reported whatever this finds
        logger.debug("could not look for the commit of run %s: %s", run_id, one_line(error))
        return 0
    rows = sum((commit["rows_added"] or 0) + (commit["rows_updated"] or 0) for commit in commits)
    if commits:
        stop.add_note(f"{node!r} was stopped after its commit (table version {commits[0]['version']}): its "
                      f"{rows} row(s) ARE stored")
    return rows


# From this many rows, the polars frame run() returns is converted while the rows are written:
# ~15 ms for a million rows (the identity strings are copied), against a write of hundreds of ms
BACKGROUND_CONVERSION_ROWS = 50_000


def _persisted(node: DataNode, frame: NormalizedFrame | FrameStream | None,
               keep_frame: bool) -> Callable[[], pl.DataFrame]:
    """What gives the summary's frame of the rows persisted (called once they are): a large
    frame's conversion to polars starts now, in a pooled thread, and overlaps the write."""
    if not keep_frame or frame is None:
        return pl.DataFrame
    if isinstance(frame, FrameStream):  # its rows were never all in memory: only their columns
        return lambda: pl.from_arrow(node.store.schema().empty_table())
    if frame.num_rows < BACKGROUND_CONVERSION_ROWS:
        return lambda: pl.from_arrow(frame.table)
    return in_background(lambda: pl.from_arrow(frame.table)).result


@contextlib.contextmanager
def _remembering(node: DataNode, frame: NormalizedFrame | FrameStream, checked: list[TableProgress],
                 result: WriteResult, run_id: str) -> Iterator[TableProgress | None]:
    """The progress after a blind append we committed ourselves, exact without any I/O (None for
    any other write). Its file facts, a cache for other processes, are saved once the block is done
    (the run recorded; a failure is only logged): on a local disk in this thread before run() returns
    (the folder may be removed as soon as it does, e.g. a ``TemporaryDirectory`` block ending; a
    thread beside the run record's costs more in GIL switches than it overlaps); on an object store
    after run() returns (:mod:`lakenodes._internal.afterwards`): a few round trips nobody waits for."""
    if not (isinstance(frame, NormalizedFrame) and checked and result.rows_appended == frame.num_rows):
        yield None
        return
    table = node.store.table(refresh=False)  # the snapshot at our own commit: a later one would make it unknowable
    after = remember_append(table, checked[-1], frame.table, frame.identity_bounds)
    if after is None:
        yield None
        return
    first_rows = not checked[-1].last

    def save() -> None:
        persist_append(node.lake, table, after, frame.table, run_id, frame.identity_bounds, first_rows=first_rows)

    failure = "could not save the file facts of %s: %s"
    try:
        yield after
    finally:  # the facts hold for the commit whatever becomes of its catalog record
        if node.lake.is_local:
            try:
                save()
            except Exception as error:  # noqa: BLE001 - a cache's save: logged, never the run's error
                logger.warning(failure, node.storage_hash, error)
        else:
            afterwards(save, failure, node.storage_hash)


def _progress_reader(node: DataNode, hooks: Sequence[RunHooks], checked: list[TableProgress],
                     frame: NormalizedFrame | FrameStream) -> Callable[[DeltaTable | None], dict]:
    """The write's watermark callback: the stored progress of the snapshot a write attempt decides
    from, remembered in ``checked`` (the last one is the snapshot of the attempt that committed).
    Its first call with a table tells the hooks the table is ready (it exists: the attempt created
    it if new). Called with None by a write creating the table with its rows: nothing is stored,
    and no hook is told (the table exists only once the rows are committed)."""

    def watermarks(table: DeltaTable | None) -> dict:
        if table is None:
            checked.append(TableProgress(-1, frame.index_names))
            return {}
        if all(progress.version < 0 for progress in checked):  # none read from a table yet
            for hook in hooks:
                hook.table_ready(node)
        checked.append(read_progress(table, node.lake))
        return checked[-1].last

    return watermarks


def _write(node: DataNode, hooks: Sequence[RunHooks], frame: NormalizedFrame | FrameStream,
           checked: list[TableProgress], seen: dict, run_id: str,
           settle_registration: Callable[[], None]) -> WriteResult | None:
    metadata = {"lakenodes.update_hash": node.update_hash, "lakenodes.run_id": run_id}
    watermarks = _progress_reader(node, hooks, checked, frame)
    if isinstance(frame, FrameStream):
        return write_stream(node.store, frame, watermarks, seen=seen, metadata=metadata,
                            before_commit=settle_registration)
    return node.store.write(frame, watermarks=watermarks, seen=seen, metadata=metadata)


def _validate(node: DataNode, output: Any) -> NormalizedFrame | FrameStream | None:
    """The validated frame; a stream (RecordBatchReader, LazyFrame) is validated batch by batch as
    it is written. Typed and ordered as the stored table when there is one now (another writer may
    have created it while ``update()`` ran: the statistics' view is not enough)."""
    records = getattr(node.config, "records", None)
    store = node.store
    if is_stream(output):
        stored_schema = store.schema()
        stored = None if stored_schema is None else (stored_schema, store.index_names())
        return FrameStream(output, node.IDENTITY_DIMENSIONS, records, stored, log=node.logger)
    # meanwhile the table opens (_prepare_write); its schema types the columns holding only nulls
    frame = normalize_frame(output, node.IDENTITY_DIMENSIONS, records, keep_untyped_nulls=True, keep_empty=True,
                            log=node.logger)
    if frame is None:
        return None
    stored_schema = store.schema()
    if stored_schema is not None:
        frame = conform_to_schema(frame, stored_schema, store.index_names())
    elif frame.num_rows:
        refuse_untyped_nulls(frame.table)
        if not records:  # the columns records would have typed
            warn_valueless_columns(frame.table, node.logger)
    return frame if frame.num_rows else None  # an empty frame is nothing new once its schema is checked


def _log_window(node: DataNode, stats: Any, frame: NormalizedFrame | FrameStream, result: Any) -> None:
    if not node.logger.isEnabledFor(logging.INFO):  # its figures cost a few passes over the bounds
        return
    bounds, dims = frame.identity_bounds, frame.identity_dimensions
    # the values of the first identity dimension: the bounds hold one row per identity tuple
    identities = bounds.height if len(dims) == 1 else bounds[dims[0]].n_unique() if dims else 1
    unchanged = f"; {result.rows_unchanged} unchanged rows left as stored" if result.rows_unchanged else ""
    node.logger.info(
        "wrote %d rows (%d appended, %d upserted%s) for %d %s, window %s .. %s (previous watermark %s)",
        result.rows_written, result.rows_appended, result.rows_upserted, unchanged, identities,
        dims[0] if dims else "series",
        bounds["lo"].min(), bounds["hi"].max(), stats.max_time_index_value,
    )
