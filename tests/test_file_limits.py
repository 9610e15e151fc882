"""A file the storage refuses for its size (EFBIG) fails at once with one line, like a full disk.

Real fault: a child process whose file size limit (``RLIMIT_FSIZE``, ``ulimit -f``) is below the
size of the data files it writes, with SIGXFSZ ignored so that the write fails with EFBIG ("File too
large", errno 27) instead of killing the process. Before the fix the write was retried 12 times
(about 10 s) and failed with a three-line ``OSError``.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).parent

CHILD = textwrap.dedent("""
    import json, logging, resource, signal, sys, time
    sys.path.insert(0, sys.argv[2])
    from test_concurrency import appender, assets
    from lakenodes import Lake, NodeRunError, use_lake

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    warnings = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: warnings.append(record.getMessage())
    logging.getLogger("lakenodes").addHandler(handler)
    with use_lake(Lake(sys.argv[1])):
        appender(assets(2)).run()
        resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))
        started = time.monotonic()
        try:
            appender(assets(400), days_per_run=30).run()
            print(json.dumps({"outcome": "ok"}))
        except NodeRunError as error:
            cause = error.cause
            print(json.dumps({"outcome": "failed", "phase": error.phase, "message": str(error),
                              "cause": type(cause).__name__, "errno": getattr(cause, "errno", None),
                              "seconds": time.monotonic() - started, "warnings": warnings}))
""")


def test_a_file_over_the_size_limit_fails_at_once_with_one_line(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    done = subprocess.run([sys.executable, "-c", CHILD, str(lake), str(TESTS)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["outcome"] == "failed", report
    assert (report["phase"], report["cause"], report["errno"]) == ("write", "FileTooLargeError", errno.EFBIG), report
    message = report["message"]
    assert "\n" not in message and "\x1b[" not in message, message
    assert "file too large" in message and f"{lake}/tables/" in message, message
    assert not [line for line in report["warnings"] if "retrying" in line], report["warnings"]
    assert report["seconds"] < 5, report
