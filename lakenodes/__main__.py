"""``python -m lakenodes`` is the ``lakenodes`` command; :func:`console` is its entry point."""

import os
import sys

from ._internal.collector import pause_collection


def console() -> None:
    """The ``lakenodes`` command. A Ctrl-C while the CLI loads (its imports are a third of a short
    cron job) ends as one line and exit 130, as one during a command does, not as a traceback.

    Before deltalake loads (its logger reads ``RUST_LOG`` once), the process's Rust logging is set
    so the AWS SDK's "failed to load region from IMDS" warnings (three lines before a
    missing-credentials error, on any machine outside EC2) stay off stderr; delta-rs' own warnings
    still show, and a ``RUST_LOG`` the user set wins. Only here, in the command's own process:
    importing ``lakenodes.cli`` changes no environment. The garbage collector is paused while the
    command starts up (see :mod:`lakenodes._internal.collector`).
    """
    os.environ.setdefault("RUST_LOG", "warn,aws_config=error")
    pause_collection()
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    main()


if __name__ == "__main__":
    console()
