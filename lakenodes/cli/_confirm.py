"""The question a destructive command asks before it deletes (``--yes`` skips it)."""

from __future__ import annotations

import sys

from ..errors import LakenodesUserError
from ._groups import FAILURE, CommandFailed


def confirm(question: str, action: str = "delete", unchanged: str = "nothing was deleted") -> None:
    """Ask on stderr, read the answer from stdin; no answer (no stdin: cron, a pipe) is a user mistake,
    "no" a failure saying ``unchanged``, and so is Ctrl-D at a terminal (the person asked declined).
    (click's prompt wrote a space to stdout, before the one JSON document of --json.)"""
    while True:
        sys.stderr.write(f"{question} [y/N]: ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            sys.stderr.write("\n")
            if not sys.stdin.isatty():
                raise LakenodesUserError(f"no confirmation on stdin: pass --yes to {action} without asking")
            line = "n"  # Ctrl-D at the question in a terminal: the person asked declined
        answer = line.strip().lower()
        if answer in ("y", "yes"):
            return
        if answer in ("", "n", "no"):
            raise CommandFailed(FAILURE, f"not confirmed; {unchanged}", "not_confirmed")
        sys.stderr.write("answer y or n\n")
