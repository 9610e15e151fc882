"""``python -m lakenodes`` is the ``lakenodes`` command; :func:`console` is its entry point."""

import sys


def console() -> None:
    """The ``lakenodes`` command. A Ctrl-C while the CLI loads (its imports are a third of a short
    cron job) ends as one line and exit 130, as one during a command does, not as a traceback."""
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    main()


if __name__ == "__main__":
    console()
