"""Run read-only queries in a separate worker process that can be killed (private to :mod:`lakenodes.lake.sql`).

Why a process: DataFusion work cannot be interrupted from Python. Constant folding at planning time
(``range(1, 3000000000)``) and single huge scalar evaluations never yield, are not counted by DataFusion's
memory pool, and keep running after a thread stops waiting for them. A process can be stopped for real.

How: a small pool keeps (at most ``MAX_IDLE``) warm worker processes (:mod:`lakenodes.lake._sql_worker`, started
on the first query, never at import; they import only the SQL modules, not the whole package). Each query is sent to one worker; the caller waits for the
answer while polling the worker's resident memory every ``POLL_S`` seconds:

* past the deadline the worker is killed (SIGKILL): ``timeout``;
* inside the worker, DataFusion's memory pool holds ``memory_limit`` bytes: operators that track memory
  (joins, sorts, aggregations) fail cleanly with ``resources_exhausted`` and the worker is reused;
* memory nobody tracks (scalar functions such as ``range()`` or ``repeat()``, batches in flight, allocator
  caches) is bounded from outside: when the worker's resident memory grows more than ``memory_limit`` plus
  ``hard_cap_slack(memory_limit)`` above its size before the query, it is killed: ``resources_exhausted``;
* on Linux the address space is capped too (see :mod:`lakenodes.lake._sql_worker`), so one giant allocation
  fails at once instead of being watched.

A killed worker is replaced by a fresh one on the next query (about 1-3 s to start). Workers exit when the
parent closes their stdin (parent exit) or after ``IDLE_S`` idle seconds.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import pickle
import queue
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from ._sql_limits import QueryLimits, Refusal

__all__ = [
    "hard_cap_slack",
    "read_frame",
    "resident_bytes",
    "run_in_worker",
    "shutdown_workers",
    "write_frame",
]

logger = logging.getLogger("lakenodes.sql")

POLL_S = 0.02
IDLE_S = 300.0
START_TIMEOUT_S = 120.0
MAX_IDLE = 1
RETIRE_GROWTH = 512 << 20  # a worker that kept this much more memory than at start is not reused
_HEADER = struct.Struct(">Q")
_EOF = object()
# Import lakenodes' SQL modules without running lakenodes/__init__.py (pandas, polars, lancedb: seconds).
_BOOTSTRAP = (
    "import sys, types; package = types.ModuleType('lakenodes'); package.__path__ = [sys.argv[1]]; "
    "sys.modules['lakenodes'] = package; from lakenodes.lake._sql_worker import main; sys.exit(main(sys.argv[2:]))"
)


def write_frame(stream: IO[bytes], obj: Any) -> None:
    """Write one length-prefixed pickle frame and flush."""
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """Read one frame written by :func:`write_frame`; raise EOFError at end of stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        raise EOFError
    return pickle.loads(body)  # noqa: S301 - frames come from our own worker process


def hard_cap_slack(memory_limit: int) -> int:
    """Resident memory a worker may use beyond ``memory_limit`` (untracked overhead) before it is killed.

    >>> hard_cap_slack(1 << 30) >> 20
    320
    """
    return (64 << 20) + memory_limit // 4


def resident_bytes(pid: int) -> int | None:
    """Resident memory of process ``pid`` in bytes (Linux /proc, else psutil if installed), else None."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import psutil  # optional: macOS / Windows

        return int(psutil.Process(pid).memory_info().rss)
    except Exception:  # psutil missing or the process is gone
        return None


class _Worker:
    """One worker process and the thread that reads its answers into a queue."""

    def __init__(self) -> None:
        package_dir = str(Path(__file__).resolve().parent.parent)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, package_dir, str(IDLE_S)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise Refusal("execution_error", f"cannot start the SQL worker process: {exc}", True) from None
        with _lock:
            _all.add(self)
        self.answers: queue.Queue[Any] = queue.Queue()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=3)
        threading.Thread(target=self._read, name=f"lakenodes-sql-{self.proc.pid}", daemon=True).start()
        self.stderr_reader = threading.Thread(
            target=self._log_stderr, name="lakenodes-sql-stderr", daemon=True
        )
        self.stderr_reader.start()
        self.last_used = time.monotonic()
        self.killed_for: str | None = None
        answer = self._wait(time.monotonic() + START_TIMEOUT_S, None)
        if answer != ("ready", self.proc.pid):
            self.kill("start")
            raise Refusal("execution_error", f"the SQL worker process did not start ({answer!r})", True)
        self.start_rss = resident_bytes(self.proc.pid) or 0
        logger.debug("SQL worker %d started", self.proc.pid)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            while True:
                self.answers.put(read_frame(self.proc.stdout))
        except Exception:  # EOF or a broken pipe: the worker is gone
            self.answers.put(_EOF)
        finally:
            self.proc.stdout.close()

    def _log_stderr(self) -> None:
        """Route the worker's stderr (engine warnings, Rust abort messages) to logging."""
        assert self.proc.stderr is not None
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.stderr_tail.append(line)
                logger.debug("SQL worker %d stderr: %s", self.proc.pid, line)
        self.proc.stderr.close()

    def alive(self) -> bool:
        return self.proc.poll() is None and self.killed_for is None

    def kill(self, reason: str) -> None:
        """Stop the worker now (SIGKILL) and reap it."""
        self.killed_for = reason
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
            logger.error("SQL worker %d did not exit after SIGKILL", self.proc.pid)
        try:
            if self.proc.stdin:
                self.proc.stdin.close()  # the reader threads close stdout/stderr at EOF
        except OSError:
            pass
        logger.debug("SQL worker %d stopped (%s)", self.proc.pid, reason)
        _forget(self)

    def _wait(self, deadline: float, rss_cap: int | None) -> Any:
        """Next answer, or ``("killed", reason)`` after killing the worker at the deadline / memory cap."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill("timeout")
                return ("killed", "timeout")
            try:
                answer = self.answers.get(timeout=min(POLL_S, remaining))
            except queue.Empty:
                rss = resident_bytes(self.proc.pid) if rss_cap is not None else None
                if rss is not None and rss > rss_cap:  # type: ignore[operator]
                    logger.debug("SQL worker %d at %d bytes, cap %d", self.proc.pid, rss, rss_cap)
                    self.kill("memory")
                    return ("killed", "memory")
                continue
            if answer is _EOF:  # it closed stdout: it exited or is exiting
                try:
                    return ("died", self.proc.wait(timeout=10))
                except subprocess.TimeoutExpired:  # pragma: no cover
                    self.kill("hung after closing stdout")
                    return ("died", self.proc.returncode)
            return answer

    def run(self, request: dict[str, Any], limits: QueryLimits) -> list[dict[str, Any]]:
        """Send one query; return its rows or raise :class:`Refusal`."""
        before = resident_bytes(self.proc.pid)
        assert self.proc.stdin is not None
        write_frame(self.proc.stdin, {**request, "memory_limit": limits.memory_limit})
        cap = None if before is None else before + limits.memory_limit + hard_cap_slack(limits.memory_limit)
        answer = self._wait(time.monotonic() + limits.timeout_s, cap)
        self.last_used = time.monotonic()
        return _interpret(answer, limits, self)


def _interpret(answer: Any, limits: QueryLimits, worker: _Worker) -> list[dict[str, Any]]:
    kind = answer[0]
    if kind == "ok":
        return answer[1]
    if kind == "error":
        _, error_kind, message, retryable = answer
        if error_kind == "resources_exhausted":
            logger.debug("SQL worker %d: %s", worker.proc.pid, message)
            pool = re.search(r"resources exhausted|memory pool", message, re.IGNORECASE)
            raise Refusal(
                error_kind, limits.memory_message("DataFusion memory pool" if pool else "allocation failed")
            )
        raise Refusal(error_kind, message, retryable)
    if answer == ("killed", "timeout"):
        raise Refusal("timeout", limits.timeout_message())
    if answer == ("killed", "memory"):
        raise Refusal("resources_exhausted", limits.memory_message("process memory"))
    code = answer[1]  # ("died", returncode)
    if code in (-signal.SIGABRT, -getattr(signal, "SIGKILL", 9)):  # allocation refused / OOM killer
        raise Refusal("resources_exhausted", limits.memory_message(f"allocation failed, worker exit {code}"))
    worker.stderr_reader.join(timeout=1)
    last = f": {worker.stderr_tail[-1]}" if worker.stderr_tail else ""
    raise Refusal("execution_error", f"the SQL worker process exited unexpectedly (code {code}){last}", True)


_lock = threading.Lock()
_changed = threading.Condition(_lock)  # notified when a worker becomes idle or a start ends
_idle: list[_Worker] = []
_all: set[_Worker] = set()
_starting = 0


def _forget(worker: _Worker) -> None:
    with _lock:
        _all.discard(worker)
        if worker in _idle:
            _idle.remove(worker)


def _checkout() -> _Worker:
    """An idle fresh worker, else the one being started in the background, else a new one."""
    stale: list[_Worker] = []
    found = None
    with _changed:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            while _idle and found is None:
                worker = _idle.pop()
                if worker.alive() and time.monotonic() - worker.last_used < IDLE_S - 30:
                    found = worker
                else:
                    stale.append(worker)
            if found is not None or not _starting or not _changed.wait(max(0.0, deadline - time.monotonic())):
                break
    for worker in stale:
        worker.kill("idle")
    return found or _Worker()


def _checkin(worker: _Worker) -> None:
    """Keep a healthy worker for the next query (up to MAX_IDLE), else stop it."""
    grown = (resident_bytes(worker.proc.pid) or 0) - worker.start_rss
    with _changed:
        if worker.alive() and len(_idle) < MAX_IDLE and grown < RETIRE_GROWTH:
            _idle.append(worker)
            _changed.notify_all()
            return
    if worker.alive():
        worker.kill("retired")


def _prestart() -> None:
    """Start a replacement worker in the background (after one was killed) unless one is idle."""
    global _starting
    with _lock:
        if _idle or _starting:
            return
        _starting += 1

    def start() -> None:
        global _starting
        try:
            _checkin(_Worker())
        except Exception as exc:  # the next query starts its own worker and reports the failure
            logger.debug("background start of a SQL worker failed: %s", exc)
        finally:
            with _changed:
                _starting -= 1
                _changed.notify_all()

    threading.Thread(target=start, name="lakenodes-sql-prestart", daemon=True).start()


def run_in_worker(request: dict[str, Any], limits: QueryLimits) -> list[dict[str, Any]]:
    """Run ``lakenodes.lake._sql_worker.execute_rows(**request)`` in a worker under ``limits``.

    Returns the rows; raises :class:`Refusal` for refusals, failures, ``timeout`` and
    ``resources_exhausted`` (the worker is killed for the last two).
    """
    for attempt in (1, 2):
        worker = _checkout()
        try:
            rows = worker.run(request, limits)
        except (BrokenPipeError, OSError) as exc:  # the worker died while idle: retry once on a fresh one
            worker.kill("broken")
            if attempt == 2:
                raise Refusal(
                    "execution_error", f"cannot reach the SQL worker process: {exc}", True
                ) from None
            continue
        except Refusal:
            if worker.alive():
                _checkin(worker)
            else:
                _prestart()
            raise
        _checkin(worker)
        return rows
    raise AssertionError("unreachable")  # pragma: no cover


@atexit.register
def shutdown_workers() -> None:
    """Kill every worker process of this process (also run at interpreter exit)."""
    with _lock:
        workers = list(_all)
    for worker in workers:
        worker.kill("shutdown")
