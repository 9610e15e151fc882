"""An S3 lake's pyarrow filesystem is made ahead of its first use (``prepare_filesystem``, begun by
every table open: the AWS SDK's set-up overlaps delta-rs reading the log). Made once per process and
options whoever asks first, its failure is the first use's error, and a forked child makes its own."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
import threading

import pyarrow as pa
import pytest

from lakenodes import Lake
from lakenodes.lake import location
from lakenodes.lake.location import lake_filesystem, prepare_filesystem
from lakenodes.lake.store import TableStore

pytestmark = pytest.mark.s3

_distinct = itertools.count(1)


def _fresh_lake(s3_server, **extra: str) -> Lake:
    """A lake whose options no filesystem of this process was made for (an own request timeout)."""
    bucket = s3_server.create_bucket()
    return Lake(f"s3://{bucket}/lake", storage_options={**s3_server.storage_options,
                                                       "timeout": f"{100 + next(_distinct)}s", **extra})


def test_the_filesystem_begun_ahead_is_the_one_every_caller_gets_made_once(s3_server) -> None:
    lake = _fresh_lake(s3_server)
    options = location._s3_key(lake)
    prepare_filesystem(lake)
    prepare_filesystem(lake)  # begun already: no second thread
    got: list[object] = []
    callers = [threading.Thread(target=lambda: got.append(lake_filesystem(lake, f"{lake.uri}/tables/t")[0]))
               for _ in range(8)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    made = [id_ for id_, made_for in location._s3_options_of.items() if made_for == options]
    assert len(made) == 1
    assert [id(filesystem) for filesystem in got] == made * 8
    filesystem, root = lake_filesystem(lake, f"{lake.uri}/marks")
    with filesystem.open_output_stream(f"{root}/a") as stream:  # it reaches the store, as the lake's identity
        stream.write(b"x")
    assert filesystem.get_file_info(f"{root}/a").size == 1


def test_a_table_open_makes_the_filesystem_its_commit_stamp_uses_ahead(s3_server, monkeypatch) -> None:
    lake = _fresh_lake(s3_server)
    options = location._s3_key(lake)
    begun: list[str] = []
    real = threading.Thread.start

    def noted(thread: threading.Thread) -> None:
        begun.append(thread.name)
        real(thread)

    monkeypatch.setattr(threading.Thread, "start", noted)
    store = TableStore(lake, "prices_0123")
    assert store.table() is None  # nothing there yet: the open still began making it
    assert "lakenodes-s3-filesystem" in begun
    store.ensure_created(pa.schema([("time_index", pa.timestamp("us", "UTC")), ("unique_identifier", pa.string()),
                                    ("close", pa.float64())]), ("time_index", "unique_identifier"))
    assert store.table() is not None
    assert location._s3_cache[options] is lake_filesystem(lake, store.uri)[0]
    assert begun.count("lakenodes-s3-filesystem") == 1


def test_beginning_one_lakes_filesystem_never_waits_for_another_lakes_being_made(s3_server) -> None:
    """A first table open only starts a thread: it must not wait while another lake's filesystem is
    made (the lock making one is held for the AWS SDK's whole set-up)."""
    lake = _fresh_lake(s3_server)
    location._s3_making.acquire()  # as a thread making another lake's filesystem holds it
    try:
        begun = threading.Thread(target=prepare_filesystem, args=(lake,))
        begun.start()
        begun.join(10)
        assert not begun.is_alive()
        assert location._s3_key(lake) in location._s3_prepared
    finally:
        location._s3_making.release()
    assert lake_filesystem(lake, f"{lake.uri}/tables/t")[0] is location._s3_cache[location._s3_key(lake)]


def test_a_filesystem_that_cannot_be_made_ahead_fails_its_first_use_with_the_real_error(s3_server, caplog) -> None:
    lake = _fresh_lake(s3_server, proxy_url="not a proxy")
    with caplog.at_level("DEBUG", logger="lakenodes.lake.location"):
        prepare_filesystem(lake)
        for thread in threading.enumerate():
            if thread.name == "lakenodes-s3-filesystem":
                thread.join(30)
    assert "could not make the S3 filesystem ahead of its first use" in caplog.text
    for _ in range(2):  # nothing half-made was kept: each use tries again, and says why it failed
        with pytest.raises(pa.ArrowInvalid, match="Cannot parse URI: 'not a proxy'"):
            lake_filesystem(lake, f"{lake.uri}/tables/t")


def test_a_child_forked_while_the_filesystem_was_being_made_makes_its_own() -> None:
    """The parent's making thread holds the lock when it forks: the child, which has no such thread,
    must not wait for it forever."""
    script = textwrap.dedent("""
        import os, sys
        from lakenodes.lake import location
        options = (("AWS_ACCESS_KEY_ID", "x"), ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
                   ("AWS_REGION", "us-east-1"), ("AWS_SECRET_ACCESS_KEY", "y"))
        location._s3_making.acquire()  # as the making thread holds it
        location._s3_prepared.add(options)
        child = os.fork()
        if child == 0:
            location._s3_filesystem(options)
            os._exit(0 if options not in location._s3_prepared else 3)
        _, status = os.waitpid(child, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    """)
    done = subprocess.run([sys.executable, "-c", script], timeout=120, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
