"""lakenodes as a Jupyter notebook meets it, reproduced without Jupyter: a notebook cell runs inside
the kernel's asyncio event loop (here: a coroutine run by an event loop in the test's thread, which,
as the kernel's, leaves SIGINT to Python's handler: ``asyncio.run`` would take it over)."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa
import pytest

from lakenodes import DataNode, DataNodeConfiguration, Lake, TimeIndexMetaTable, current_lake, use_lake
from lakenodes._internal.event_loops import outside_event_loop
from lakenodes.catalog.catalog import run_history

T = TypeVar("T")
DAY = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def in_cell(cell: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``cell()`` as a notebook runs a cell: inside an event loop running in this thread."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(cell())
    finally:
        loop.close()


class FetchConfig(DataNodeConfiguration):
    source: str = "api"


class AsyncFetch(DataNode):
    """An update() that drives an async client with ``asyncio.run``, as a script would."""

    seen_lakes: list[str] = []

    def dependencies(self) -> dict[str, DataNode]:
        return {}

    async def fetch(self) -> float:
        await asyncio.sleep(0)
        return 1.5

    def update(self) -> pl.DataFrame:
        self.seen_lakes.append(current_lake().uri)
        return pl.DataFrame({"time_index": [DAY], "value": [asyncio.run(self.fetch())]})


def test_update_calling_asyncio_run_works_in_a_notebook_cell(tmp_path: Path) -> None:
    """In a notebook, ``node.run()`` failed during update with ``RuntimeError: asyncio.run() cannot be
    called from a running event loop`` (the kernel's loop runs in the cell's thread) while the same
    node ran as a script. update() now runs where no loop runs, in the run's lake."""
    node = AsyncFetch(FetchConfig())  # made outside every block: it runs in the block it is run in

    async def cell() -> tuple[bool, pl.DataFrame]:
        with use_lake(tmp_path / "lake"):
            return node.run()

    err, written = in_cell(cell)
    assert err is False and written["value"].to_list() == [1.5]
    assert AsyncFetch.seen_lakes == [str(tmp_path / "lake")]
    with use_lake(tmp_path / "lake"):
        assert node.get_df_between_dates()["value"].to_list() == [1.5]


class StreamedFetch(DataNode):
    """A streamed update(): its batches come from a generator that drives an async client."""

    def dependencies(self) -> dict[str, DataNode]:
        return {}

    def update(self) -> pa.RecordBatchReader:
        schema = pa.schema([("time_index", pa.timestamp("us", "UTC")), ("value", pa.float64())])

        def batches() -> Iterator[pa.RecordBatch]:
            for day in range(2):
                value = asyncio.run(asyncio.sleep(0, float(day)))
                yield pa.record_batch([pa.array([DAY + dt.timedelta(days=day)], schema.field(0).type),
                                       pa.array([value])], schema=schema)

        return pa.RecordBatchReader.from_batches(schema, batches())


def test_a_streamed_update_calling_asyncio_run_works_in_a_notebook_cell(local_lake: Lake) -> None:
    """update() ran outside the cell's event loop, but the batches of the stream it returned were
    read in the cell's thread: a generator calling ``asyncio.run`` failed there (``failed during
    write: RuntimeError: asyncio.run() cannot be called from a running event loop``). Each batch is now
    taken outside the loop too."""
    node = StreamedFetch(FetchConfig(source="stream"))

    async def cell() -> tuple[bool, pl.DataFrame]:
        return node.run()

    err, _ = in_cell(cell)
    assert err is False and node.get_df_between_dates()["value"].to_list() == [0.0, 1.0]


class SlowConfig(DataNodeConfiguration):
    name: str = "slow"


class Slow(DataNode):
    """An update() that runs until interrupted, the first time; the rows at once afterwards."""

    started = threading.Event()
    finished = threading.Event()
    interrupted = True

    def dependencies(self) -> dict[str, DataNode]:
        return {}

    def update(self) -> pl.DataFrame:
        try:
            while type(self).interrupted:
                type(self).started.set()
                time.sleep(0.01)
        finally:
            type(self).finished.set()
        return pl.DataFrame({"time_index": [DAY], "value": [2.0]})


def test_interrupting_a_notebook_cell_stops_the_update_and_the_cell_runs_again(local_lake: Lake) -> None:
    """The notebook's interrupt (SIGINT to the kernel) during an update() that runs outside the
    cell's event loop: the cell gets KeyboardInterrupt once the update has stopped (nothing of it
    goes on behind the next cell), the run is recorded as interrupted, nothing is written, and
    running the cell again writes the rows."""
    node = Slow(SlowConfig())
    main = threading.main_thread().ident
    assert main is not None and threading.get_ident() == main

    def press_interrupt() -> None:
        Slow.started.wait()
        signal.pthread_kill(main, signal.SIGINT)

    async def cell() -> tuple[bool, pl.DataFrame]:
        return node.run()

    threading.Thread(target=press_interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        in_cell(cell)
    assert Slow.finished.is_set()  # the update stopped before the cell got the interrupt
    [record] = run_history(local_lake, node.update_hash)
    assert record["status"] == "error" and record["error"].startswith("update: KeyboardInterrupt")
    assert TimeIndexMetaTable.filter(storage_hash=node.storage_hash) == []
    Slow.interrupted = False
    err, written = in_cell(cell)
    assert written["value"].to_list() == [2.0]


def test_a_ctrl_c_after_the_update_finished_interrupts_the_cell_not_the_finished_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: a Ctrl-C that landed after update() had returned, before the cell noticed, was
    passed on to the helper thread as it finished, which printed ``Exception in thread
    lakenodes-outside-loop``. The cell gets KeyboardInterrupt (the user pressed stop); the helper
    thread ends quietly. The key is pressed from the helper thread as it signals the end of the call
    (its ``ended.set()``, seen by a profile hook), which waits until the cell waits for it again."""
    main = threading.main_thread().ident
    assert main is not None and threading.get_ident() == main
    thread_errors: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: thread_errors.append(args.exc_value))
    returned = threading.Event()

    def update() -> str:
        returned.set()
        return "rows"

    def cell_waits_again(line_pressed: int) -> bool:
        frame: Any = sys._current_frames()[main]
        names = []
        while frame is not None:
            names.append(frame.f_code.co_name)
            if frame.f_code.co_name == "outside_event_loop":
                return "_wait_for" in names and frame.f_lineno != line_pressed
            frame = frame.f_back
        return False

    def press_ctrl_c_as_the_call_ends(frame: Any, event: str, arg: object) -> None:
        if event != "call" or frame.f_code is not threading.Event.set.__code__ or not returned.is_set():
            return
        sys.setprofile(None)
        waiting: Any = sys._current_frames()[main]
        while waiting.f_code.co_name != "outside_event_loop":
            waiting = waiting.f_back
        line_pressed = waiting.f_lineno
        signal.pthread_kill(main, signal.SIGINT)
        deadline = time.monotonic() + 30  # never hang the suite: the assertions below then fail instead
        while not cell_waits_again(line_pressed) and time.monotonic() < deadline:
            time.sleep(0.001)

    async def cell() -> str:
        return outside_event_loop(update)

    threading.setprofile(press_ctrl_c_as_the_call_ends)
    try:
        with pytest.raises(KeyboardInterrupt):
            in_cell(cell)
    finally:
        threading.setprofile(None)
    helper = [thread for thread in threading.enumerate() if thread.name == "lakenodes-outside-loop"]
    for thread in helper:
        thread.join()
    assert returned.is_set() and thread_errors == []

class Dep(DataNode):
    """A dependency a node builds in its ``__init__``, named from the node's module globals."""

    def dependencies(self) -> dict[str, DataNode]:
        return {}

    def update(self) -> pl.DataFrame:
        return pl.DataFrame()


def test_editing_a_nodes_init_in_place_as_autoreload_does_runs_the_edit_in_the_namespace() -> None:
    """Regression: in a notebook under ``%autoreload 2`` (IPython 9), editing a node's ``__init__``
    broke the next construction with ``NameError: name 'Dep' is not defined``: autoreload sets the
    edited code on the function the class holds, which was lakenodes' namespace wrapper, so the
    user's code ran with lakenodes' module globals. The class now holds the user's own function."""

    class Built(DataNode):
        def __init__(self, config: DataNodeConfiguration) -> None:
            self.dep = Dep(DataNodeConfiguration())
            super().__init__(config)

        def dependencies(self) -> dict[str, DataNode]:
            return {"dep": self.dep}

    class EditedSource:  # the edited class body, as autoreload compiles it (zero-argument super() and all)
        def __init__(self, config: DataNodeConfiguration) -> None:
            self.dep = Dep(DataNodeConfiguration())
            self.edited = True
            super().__init__(config)  # type: ignore[call-arg]

    init = Built.__dict__["__init__"]
    assert init.__globals__ is globals()  # the user's function, with the user module's globals
    init.__code__ = EditedSource.__init__.__code__  # what autoreload does to the function the class holds
    node = Built(DataNodeConfiguration(), hash_namespace="ci")  # type: ignore[call-arg]  # the class call takes it
    assert node.edited is True and Built.__dict__["__init__"] is init
    assert node.hash_namespace == node.dep.hash_namespace == "ci"  # the namespace still covers __init__
    assert node.dep.storage_hash == Dep(DataNodeConfiguration(), hash_namespace="ci").storage_hash
    assert Built(DataNodeConfiguration(), test_node=True).dep.hash_namespace == "test"  # type: ignore[call-arg]
    assert Built(DataNodeConfiguration()).dep.hash_namespace == ""
