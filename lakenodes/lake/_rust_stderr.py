"""Keep a known, harmless delta-rs panic off stderr.

When delta-rs fails to upload a data file (a full disk, a read-only file system, a path too long,
an S3 PUT refused), its Parquet writer cleans up twice: the second ``BufWriter::abort()`` of
object_store 0.13.2 finds the writer already shut down and panics ("Already shut down",
``object_store-0.13.2/src/buffered.rs:369``). The panic happens inside a tokio task: tokio
catches it and delta-rs still raises the real error (lakenodes maps it to a ``StorageError``),
but Rust's default panic hook has already printed the panic and its backtrace to file
descriptor 2, which Python cannot intercept (``sys.stderr`` is never involved).

So while lakenodes runs delta-rs write operations it points file descriptor 2 at a pipe; a
thread copies every line to the real stderr as it arrives, except the blocks of that one panic,
which go to the ``lakenodes`` log at DEBUG. Any other panic or output passes through unchanged.
Nested and concurrent uses (threads) share one pipe. ``LAKENODES_RUST_PANIC_FILTER=0`` turns the
filter off. A partial line (no newline yet, e.g. a progress bar's ``\\r``) waits for its newline
or for the end of the operation.

Example:
    >>> with quiet_delta_panics():
    ...     pass  # a delta-rs write whose failed upload would print "Already shut down"
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator

logger = logging.getLogger("lakenodes.storage")

_PANIC_HEADER = re.compile(rb"^thread '[^']*'( \(\d+\))? panicked at .*object_store[^/]*/src/buffered\.rs:\d+:\d+:$")
_PANIC_MESSAGE = b"Already shut down"
_PANIC_TAIL = re.compile(rb"^(stack backtrace:|note: .*backtrace.*|\s+\d+: .*|\s+at \S.*)$")

_lock = threading.Lock()
_users = 0
_saved_fd: int | None = None
_reader: threading.Thread | None = None


class PanicFilter:
    r"""Stderr bytes in, the same bytes out minus the "Already shut down" panics of object_store's
    ``BufWriter`` (with the blank line Rust prints before a panic and the backtrace lines after it).

    Lines are released as soon as they are complete, except a blank line or a panic header, which
    wait for the next line (it decides whether they belong to the panic).

    Example:
        >>> panic = PanicFilter()
        >>> panic.feed(b"before\n\nthread 'tokio-rt-worker' (7) panicked at "
        ...            b"/x/object_store-0.13.2/src/buffered.rs:369:41:\nAlready shut down\n")
        b'before\n'
        >>> panic.feed(b"stack backtrace:\n   0: <unknown>\nafter\npartial")
        b'after\n'
        >>> panic.finish(), len(panic.dropped)
        (b'partial', 5)
    """

    def __init__(self) -> None:
        self.dropped: list[bytes] = []
        self._pending = b""
        self._panics = 0

    def feed(self, chunk: bytes) -> bytes:
        """The complete lines of ``chunk`` (and of earlier held-back bytes) that are not a panic."""
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        held: list[bytes] = []
        while lines and (lines[-1] == b"" or _PANIC_HEADER.match(lines[-1])):
            held.insert(0, lines.pop())
        if held:
            self._pending = b"\n".join([*held, self._pending])
        return self._release(lines)

    def finish(self) -> bytes:
        """Everything still held back (the stream ended)."""
        *lines, rest = self._pending.split(b"\n")
        self._pending = b""
        return self._release(lines) + rest

    def _release(self, lines: list[bytes]) -> bytes:
        # Two tokio workers panicking at once interleave their lines, so once a panic was seen,
        # backtrace lines (and the blank line before them) are dropped wherever they come.
        kept: list[bytes] = []
        index = 0
        while index < len(lines):
            line, following = lines[index], lines[index + 1] if index + 1 < len(lines) else None
            if _PANIC_HEADER.match(line) and following == _PANIC_MESSAGE:
                self.dropped.extend((line, following))
                self._panics += 1
                index += 2
                continue
            starts_panic = following is not None and (
                _PANIC_HEADER.match(following) or (self._panics and _PANIC_TAIL.match(following)))
            if (self._panics and _PANIC_TAIL.match(line)) or (line == b"" and starts_panic):
                self.dropped.append(line)
            else:
                kept.append(line)
            index += 1
        return b"".join(line + b"\n" for line in kept)


def _forward(read_fd: int, target_fd: int) -> None:
    """Copy the pipe to ``target_fd`` until every writer closed it, minus the panics (logged)."""
    panic = PanicFilter()
    with open(read_fd, "rb", buffering=0) as pipe, open(target_fd, "wb", buffering=0) as target:
        while chunk := pipe.read(65536):
            _write(target, panic.feed(chunk))
            _log(panic)
        _write(target, panic.finish())
        _log(panic)


def _write(target: object, data: bytes) -> None:
    if data:
        with contextlib.suppress(OSError):
            target.write(data)  # type: ignore[attr-defined]


def _log(panic: PanicFilter) -> None:
    if panic.dropped:
        text = " | ".join(line.decode(errors="replace").strip() for line in panic.dropped if line.strip())
        panic.dropped.clear()
        logger.debug("delta-rs panicked after a failed upload (harmless: the error itself is raised): %s", text)


def _enabled() -> bool:
    return os.environ.get("LAKENODES_RUST_PANIC_FILTER", "1").strip().lower() not in {"0", "false", "no", "off"}


def _start() -> None:
    global _saved_fd, _reader
    read_fd, write_fd = os.pipe()
    saved = os.dup(2)
    forward_to = os.dup(2)  # owned (and closed) by the thread, which may outlive this use
    _flush_python_stderr()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    _saved_fd = saved
    _reader = threading.Thread(target=_forward, args=(read_fd, forward_to), name="lakenodes-stderr", daemon=True)
    _reader.start()


def _stop() -> None:
    global _saved_fd, _reader
    _flush_python_stderr()
    assert _saved_fd is not None and _reader is not None
    os.dup2(_saved_fd, 2)  # the pipe's last writer in this process is gone: the thread drains it and ends
    os.close(_saved_fd)
    # a child started meanwhile may still hold the pipe: then the thread keeps forwarding for it
    _reader.join(timeout=0.5)
    _saved_fd, _reader = None, None


def _flush_python_stderr() -> None:
    with contextlib.suppress(Exception):
        sys.stderr.flush()


@contextlib.contextmanager
def quiet_delta_panics() -> Iterator[None]:
    """Run the body with the "Already shut down" panic blocks filtered out of file descriptor 2
    (a no-op when the filter is off or fd 2 cannot be redirected)."""
    global _users
    active = False
    if _enabled():
        with _lock:
            try:
                if _users == 0:
                    _start()
                _users += 1
                active = True
            except OSError as error:  # e.g. fd 2 closed: run unfiltered
                logger.debug("cannot filter stderr: %s", error)
    try:
        yield
    finally:
        if active:
            with _lock:
                _users = max(0, _users - 1)
                if _users == 0 and _saved_fd is not None:
                    _stop()


def restore_stderr() -> None:
    """Point file descriptor 2 back at the real stderr now and forward what the pipe still holds,
    even while delta-rs calls of other threads run (before ``os._exit``, which would end the
    forwarding thread with lines of this process's last words still in the pipe)."""
    global _users
    with _lock:
        if _saved_fd is not None:
            _users = 0
            _stop()
