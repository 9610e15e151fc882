"""Which file of a Delta log makes a version unreadable, and what the user can do about it.

delta-rs reports a damaged log without naming the file: a garbage commit as ``Kernel error: Json
error: ...``, a checkpoint cut short as ``Parquet error: Invalid Parquet file. Corrupt footer``, a
``_last_checkpoint`` naming a checkpoint that is gone as ``Invalid Checkpoint: Had a
_last_checkpoint hint but didn't find any checkpoints``, a missing commit as a gap in the log
segment. A version is read from the newest checkpoint at or before it and the commits after that
checkpoint: ``find_log_damage`` checks those files (local folder or S3, through lakenodes' native
pyarrow filesystems) and returns the first one that cannot be read, with the remedy.

Example:
    >>> import tempfile
    >>> find_log_damage(tempfile.mkdtemp()) is None  # no log at all: nothing damaged
    True
"""

from __future__ import annotations

import logging
import re
from typing import Any, NamedTuple

from .._internal.deferred import pq
from ..errors import CorruptTableError
from ._delta_log import COMMIT_FILE, commit_path, commit_problem, log_names, read_last_checkpoint
from ._unreadable import is_missing
from .location import Lake, lake_filesystem

__all__ = ["CHECKPOINT_FILE", "LogDamage", "corrupt_log_error", "find_log_damage", "log_damage"]

logger = logging.getLogger("lakenodes.storage")

# ``<version>.checkpoint.parquet``, a multi-part ``<version>.checkpoint.<part>.<parts>.parquet``
# or a v2 ``<version>.checkpoint.<uuid>.parquet``; group 1: the version
CHECKPOINT_FILE = re.compile(r"^(\d{20})\.checkpoint(?:\.[^/]+)?\.parquet$")
MAX_COMMITS_CHECKED = 10_000
_NEVER_REPAIRS = "lakenodes never repairs a log"


class LogDamage(NamedTuple):
    """A log file that makes versions unreadable: the version it belongs to, its path, what is
    wrong with it and what to do (one clause each)."""

    version: int
    log_file: str
    problem: str
    remedy: str


def find_log_damage(table_uri: str, lake: Any = None, version: int | None = None,
                    whole_log: bool = False) -> LogDamage | None:
    """The first damaged file among those ``version`` (the latest when None) is read from, or, with
    ``whole_log``, among every commit in the log (the history reads them all); None when nothing
    was found damaged, or the log cannot be listed."""
    try:
        filesystem, root = lake_filesystem(lake if lake is not None else Lake(table_uri), table_uri)
    except Exception as error:  # noqa: BLE001 - a diagnosis must never replace the error it explains
        logger.debug("could not inspect the Delta log of %s: %s", table_uri, error)
        return None
    return log_damage(filesystem, root, version, whole_log)


def log_damage(filesystem: Any, root: str, version: int | None = None, whole_log: bool = False) -> LogDamage | None:
    """``find_log_damage`` for the table at ``root`` of ``filesystem``."""
    try:
        return _first_damage(filesystem, root, version, whole_log)
    except Exception as error:  # noqa: BLE001 - a diagnosis must never replace the error it explains
        logger.debug("could not inspect the Delta log of %s: %s", root, error)
    return None


def _first_damage(filesystem: Any, root: str, version: int | None, whole_log: bool) -> LogDamage | None:
    names = log_names(filesystem, root)
    commits = {int(name[:20]) for name in names if COMMIT_FILE.match(name)}
    checkpoints: dict[int, list[str]] = {}
    for name in names:
        if CHECKPOINT_FILE.match(name):
            checkpoints.setdefault(int(name[:20]), []).append(name)
    if not commits and not checkpoints:
        return None
    target = max(commits | set(checkpoints)) if version is None else version
    hint = _last_checkpoint(filesystem, root)
    if hint is not None and hint <= target and hint not in checkpoints:
        return LogDamage(hint, f"{root}/_delta_log/_last_checkpoint", f"names checkpoint {hint}, which is not in the log",
                         _without_checkpoint(hint, commits, checkpoints, "_last_checkpoint out of _delta_log (keep it)"))
    start = max((v for v in checkpoints if v <= target), default=-1)
    if whole_log:
        start = min(commits, default=start + 1) - 1
    moved = "it and _last_checkpoint out of _delta_log (keep them)" if hint == start else "it out of _delta_log (keep it)"
    for name in checkpoints.get(start, []):
        path = f"{root}/_delta_log/{name}"
        try:
            pq.read_metadata(path, filesystem=filesystem)
        except Exception as error:  # noqa: BLE001 - any failure to read its footer: gone, cut short or not Parquet
            problem = ("is listed, but storage answers that it does not exist" if is_missing(error)
                       else "is unreadable (cut short or not Parquet)")
            return LogDamage(start, path, problem, _without_checkpoint(start, commits, checkpoints, moved))
    latest = max(commits, default=-1)
    for number in range(start + 1, target + 1)[:MAX_COMMITS_CHECKED]:
        path = commit_path(root, number)
        if number not in commits:
            if number < min(commits | set(checkpoints)):
                return None  # cleaned up (log retention): that version is gone, the log is not damaged
            return LogDamage(number, path, "is missing (the log has a gap there)",
                             f"{_NEVER_REPAIRS}: restore that file from a backup")
        with filesystem.open_input_stream(path) as stream:
            problem = commit_problem(stream.read().decode("utf-8", errors="replace"))
        if problem is not None:
            return LogDamage(number, path, problem, _commit_remedy(number, latest))
    return None


def _last_checkpoint(filesystem: Any, root: str) -> int | None:
    try:
        return read_last_checkpoint(filesystem, root)
    except Exception:  # noqa: BLE001 - unreadable: delta-rs ignores it too and lists the log
        return None


def _commit_remedy(version: int, latest: int) -> str:
    """What to do about a damaged commit: only the last one may be a commit that never completed."""
    if version != latest:
        return f"{_NEVER_REPAIRS}: restore that file from a backup"
    back = f"to return the table to version {version - 1}" if version else "(the table is then as if never created)"
    return (f"{_NEVER_REPAIRS}: restore that file from a backup, or, if it is the last commit and never completed (cut "
            f"short, or a stray file), move it out of _delta_log (keep it) {back}")


def _without_checkpoint(version: int, commits: set[int], checkpoints: dict[int, list[str]], moved: str) -> str:
    """What to do about checkpoint ``version``, damaged or gone while ``_last_checkpoint`` names it
    (``moved``: the files to move aside, ``_last_checkpoint`` only when it names that checkpoint):
    without it the table is read from the previous checkpoint, or commit 0, and the commits after
    that, when they are all still in the log."""
    previous = max((v for v in checkpoints if v < version), default=-1)
    restore = f"{_NEVER_REPAIRS}: restore checkpoint {version} from a backup"
    if not all(number in commits for number in range(previous + 1, version + 1)):
        return f"{restore} (the commits it summarizes were cleaned up from the log: the table cannot be read without it)"
    source = f"checkpoint {previous} and commits {previous + 1}..{version}" if previous >= 0 else f"commits 0..{version}"
    return f"{restore}, or move {moved}: the table is then read from {source}, all still in the log"


def corrupt_log_error(damage: LogDamage, detail: str, path: str, operation: str,
                      prefix: str = "", suffix: str = "") -> CorruptTableError:
    """The one-line error for ``damage`` (``detail``: delta-rs's own words, or ''), naming the file.

    Example:
        >>> damage = LogDamage(3, "/t/_delta_log/00000000000000000003.json", "line 2 is not valid JSON",
        ...                    "lakenodes never repairs a log: restore that file from a backup")
        >>> str(corrupt_log_error(damage, "", "/t", "open"))  # doctest: +NORMALIZE_WHITESPACE
        'open failed: corrupt Delta log: commit 3 (_delta_log/00000000000000000003.json) line 2 is not valid JSON;
        lakenodes never repairs a log: restore that file from a backup: /t'
    """
    name = damage.log_file.rsplit("/", 1)[-1]
    kind = "checkpoint" if CHECKPOINT_FILE.match(name) else "commit"
    label = f"_delta_log/{name}" if name == "_last_checkpoint" else f"{kind} {damage.version} (_delta_log/{name})"
    quoted = f" ({detail})" if detail else ""
    return CorruptTableError(
        f"{prefix}corrupt Delta log: {label} {damage.problem}{quoted}; {damage.remedy}{suffix}",
        path=path, operation=operation, version=damage.version, log_file=damage.log_file)
