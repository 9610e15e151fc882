"""Claims: Delta's put-if-absent first commit as a race-safe, lock-free "first writer wins"
primitive (a name within a scope, e.g. an identifier within a namespace, owned by one table).

A claim is a small append-only table under ``<root>/_catalog/claims/<scope>/``: its version 0 is
the claim, later ``reassign`` rows repoint it (the latest wins).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError

from .._internal.arrow_rows import arrow_table, python_rows
from .._internal.deferred import pa, pafs
from ._delta_log import COMMIT_FILE, log_names, read_commit
from ._retry import default_retry
from ._rust_stderr import quiet_delta_panics
from ._storage_errors import guarded, storage_errors
from .ledger import RECORDED_AT, read_unpartitioned, utcnow
from .location import Lake, lake_filesystem
from .store import TableStore
from .table_removal import remove_table_folder

logger = logging.getLogger(__name__)

CLAIM_KIND = "kind"
CLAIM_METADATA = "lakenodes.claim"  # version 0's commit info: its claim row (JSON)


def claim(lake: Lake, scope: str, name: str, row: Mapping[str, Any], schema: pa.Schema) -> dict[str, Any]:
    """Claim ``name`` within ``scope`` for ``row``; return the current owner's row.

    The first commit (version 0) of a Delta table is put-if-absent, so when several processes
    claim the same name at once exactly one version 0 lands: its row is the claim. A loser's
    write is never retried at a later version, and even if one landed there it would not count.
    Later ``reassign`` rows repoint the claim (the latest one wins). An existing claim is read
    without attempting the write (a daily run re-checks its claim in every fresh process).
    """
    owner = claim_owner(lake, scope, name)
    if owner is not None:
        return owner
    uri = claim_uri(lake, scope, name)
    data = arrow_table([{RECORDED_AT: utcnow(), CLAIM_KIND: "claim", **row}], schema)
    claimed = python_rows(data)[0]
    recorded = json.dumps(claimed, default=lambda value: value.isoformat())  # see _sole_claim
    try:
        with quiet_delta_panics():  # a refused upload: delta-rs's "Already shut down" panic off stderr
            write_deltalake(uri, data, mode="error", storage_options=lake.storage_options or None,
                            commit_properties=CommitProperties(max_commit_retries=0,
                                                               custom_metadata={CLAIM_METADATA: recorded}))
    except (DeltaError, OSError) as error:
        logger.debug("claim %s/%s already exists or raced: %s", scope, name, error)
        failure = error
    else:  # version 0 landed (no retry, no existing table): it is ours, no need to read it back
        return claimed
    for _ in range(default_retry().attempts):
        owner = claim_owner(lake, scope, name)
        if owner is not None:
            return owner
        time.sleep(0.05)
    with storage_errors(uri, "claim", lake):  # no claim landed, ours or another's: the write's own failure says why
        raise failure


def reassign(lake: Lake, scope: str, name: str, row: Mapping[str, Any], schema: pa.Schema) -> None:
    """Point an existing claim at a new owner (an appended ``reassign`` row; the latest wins)."""
    data = arrow_table([{RECORDED_AT: utcnow(), CLAIM_KIND: "reassign", **row}], schema)
    uri = claim_uri(lake, scope, name)
    guarded(lambda: write_deltalake(uri, data, mode="append", storage_options=lake.storage_options or None),
            uri, "reassign claim", lake)


def release(lake: Lake, scope: str, name: str) -> None:
    """Give up the claim of ``name`` within ``scope``: its table is removed, version 0 first (see
    ``table_removal``), so the next ``claim`` lands a version 0 of its own. A release stopped after
    version 0 went but before the later reassignments did leaves a claim that can be neither read
    nor made until a second release removes the rest."""
    remove_table_folder(lake, claim_uri(lake, scope, name))


def identifier_scopes(lake: Lake) -> list[str]:
    """The claims folder (``identifier_scope``) of every namespace in which an identifier was ever claimed."""
    uri = lake.catalog_uri("claims/identifiers")
    filesystem, root = lake_filesystem(lake, uri)
    with storage_errors(uri, "list", lake):
        listing = filesystem.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    return sorted(f"identifiers/{info.base_name}" for info in listing if info.type == pafs.FileType.Directory)


def claim_owner(lake: Lake, scope: str, name: str) -> dict[str, Any] | None:
    """The current owner row of a claim (latest reassignment, else the version-0 claim), or None."""
    uri, options = claim_uri(lake, scope, name), lake.storage_options or None
    sole = _sole_claim(lake, uri)
    if sole is _NO_LOG:
        return None
    if sole is not None:
        return sole
    table = TableStore(lake, name, uri=uri).table()
    if table is None:
        return None
    rows = python_rows(read_unpartitioned(lake, table).sort_by([(RECORDED_AT, "ascending")]))
    reassigned = [row for row in rows if row.get(CLAIM_KIND) == "reassign"]
    if reassigned:
        return reassigned[-1]
    if table.version() > 0:  # the claim is what version 0 committed, whatever landed later
        rows = python_rows(read_unpartitioned(lake, DeltaTable(uri, version=0, storage_options=options)))
    return rows[0] if rows else None


_NO_LOG: dict[str, Any] = {}  # _sole_claim's answer when the claim table has no log at all: no claim


def _sole_claim(lake: Lake, uri: str) -> dict[str, Any] | None:
    """The claim row version 0 recorded in its commit info, while version 0 is the claim table's
    only commit (nothing repointed it): one log listing and one small read, where opening the
    table and reading its file takes several. ``_NO_LOG`` when the table has no log entry at all
    (never claimed); None when the claim is not known this way (a later commit, a claim written
    without the record): the caller reads the table."""
    filesystem, root = lake_filesystem(lake, uri)
    try:
        names = log_names(filesystem, root)
        if not names:
            return _NO_LOG
        if [name for name in names if COMMIT_FILE.match(name)] != [f"{0:020d}.json"]:
            return None
        _, info = read_commit(filesystem, root, 0)
        if CLAIM_METADATA not in info:
            return None
        row = json.loads(info[CLAIM_METADATA])
    except (OSError, ValueError) as error:  # ValueError: a commit cut short or garbage (the table's read names it)
        logger.debug("claim %s: reading its first commit failed (%s): reading the table", uri, error)
        return None
    return {**row, RECORDED_AT: datetime.datetime.fromisoformat(row[RECORDED_AT])}


def claim_uri(lake: Lake, scope: str, name: str) -> str:
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:40]
    return lake.catalog_uri(f"claims/{scope}/{digest}")


# a namespace used as it is as the folder of its claims: a plain name of moderate length; any other
# (a '/', '..', a space, a leading '_' like '_default' itself, 100+ characters) is digested
_PLAIN_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def identifier_scope(namespace: str) -> str:
    """The claims folder of ``namespace``'s identifiers: ``_default`` for the production tables, a
    plain namespace's own name, else ``_ns-`` and its digest (a leading ``_`` no plain name has).

    Example:
        >>> [identifier_scope(name) for name in ("", "ci", "_default")][:2], identifier_scope("_default")[:16]
        (['identifiers/_default', 'identifiers/ci'], 'identifiers/_ns-')
        >>> len({identifier_scope(name) for name in ("c", "c/", "./c", "a/../c", "../c")})
        5
    """
    if not namespace:
        return "identifiers/_default"
    if _PLAIN_NAMESPACE.match(namespace):
        return f"identifiers/{namespace}"
    return f"identifiers/_ns-{hashlib.sha256(namespace.encode('utf-8')).hexdigest()[:40]}"
