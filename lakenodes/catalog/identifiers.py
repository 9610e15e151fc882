"""Identifier claims: a published identifier points at one table per namespace; claiming,
repointing and resolving it.

Example:
    >>> resolve_identifier(example.lake, "example_prices") == example.table.storage_hash
    True
"""

from __future__ import annotations

from typing import Any

from deltalake import DeltaTable

from .._internal.arrow_rows import python_rows
from ..core.config import checked_identifier
from ..core.hashing import HashedAsUpdateHash, checked_namespace
from ..errors import ConfigurationError, IdentifierConflictError, NotFoundError
from ..lake.claims import CLAIM_KIND, claim, claim_owner, claim_uri, identifier_scope, reassign
from ..lake.ledger import read_unpartitioned
from ..lake.location import Lake, LakeLike, current_lake, lake_argument
from ..lake.store import TableStore
from .ledgers import _known_claims, _schemas
from .tables import save_table_record, table_record


def identifier_claimed(lake: Lake, identifier: str, namespace: str, storage_hash: str) -> bool:
    """Whether this process saw ``storage_hash`` hold ``identifier`` in ``namespace`` (no I/O)."""
    return (lake.cache_key, namespace, identifier, storage_hash) in _known_claims


def claim_identifier(lake: Lake, identifier: str, namespace: str, storage_hash: str) -> bool:
    """Claim ``identifier`` in ``namespace`` for ``storage_hash``; re-claiming your own is a no-op.

    Returns True when ``storage_hash`` holds the identifier, False when it held it once and the
    identifier was since repointed elsewhere (``repoint_identifier``): that table keeps its data
    but no longer its name. Raises IdentifierConflictError when another storage holds it and
    ``storage_hash`` never did.
    """
    if identifier_claimed(lake, identifier, namespace, storage_hash):
        return True
    owner = claim(
        lake, identifier_scope(namespace), identifier,
        {"identifier": identifier, "namespace": namespace, "storage_hash": storage_hash}, _schemas()["claims"],
    )
    if owner["storage_hash"] != storage_hash:
        if storage_hash in _identifier_holders(lake, identifier, namespace):
            return False
        where = f" in namespace {namespace!r}" if namespace else ""
        raise IdentifierConflictError(
            f"identifier {identifier!r}{where} is already used by table {owner['storage_hash']}; "
            "choose another identifier (e.g. add a project suffix), or give it to this table before its first run: "
            f"lakenodes.repoint_identifier({identifier!r}, node) (docs/identity.md)"
        )
    _known_claims.add((lake.cache_key, namespace, identifier, storage_hash))
    return True


def _identifier_holders(lake: Lake, identifier: str, namespace: str) -> set[str]:
    """Every storage an identifier ever pointed at: its first claim (version 0, as in
    ``claims.claim_owner``) and each ``repoint_identifier`` target."""
    uri = claim_uri(lake, identifier_scope(namespace), identifier)
    table = TableStore(lake, identifier, uri=uri).table()
    if table is None:
        return set()
    rows = python_rows(read_unpartitioned(lake, table))
    holders = {row["storage_hash"] for row in rows if row.get(CLAIM_KIND) == "reassign"}
    if table.version() > 0:
        table = DeltaTable(uri, version=0, storage_options=lake.storage_options or None)
    first = python_rows(read_unpartitioned(lake, table))
    return holders | {row["storage_hash"] for row in first[:1]}


def repoint_identifier(identifier: str, target: Any, *, namespace: str | None = None, lake: LakeLike | None = None) -> None:
    """Point a published identifier at another table without changing any hash.

    ``target`` is the storage hash of a table in the lake, or a DataNode, whose table need not exist
    yet: repointing to a node before its first run is how a new version of a table (a schema change
    is a new table) takes over the name (docs/identity.md). For a node, ``namespace`` and ``lake``
    default to the node's.
    """
    identifier = checked_identifier(identifier)
    node = target if isinstance(target, HashedAsUpdateHash) else None
    if node is None and not isinstance(target, str):
        raise ConfigurationError(f"repoint_identifier takes a DataNode or a storage hash, got {type(target).__name__}")
    storage_hash = target.storage_hash if node is not None else target
    if namespace is None:
        namespace = node.hash_namespace if node is not None else ""
    namespace = checked_namespace(namespace)
    lake = lake_argument(lake) or (node.lake if node is not None else current_lake())
    record = table_record(lake, storage_hash)
    if record is None and node is None:
        raise NotFoundError(f"no table with storage hash {storage_hash!r} in {lake.uri}; to repoint the identifier "
                            "to a node whose table is not written yet, pass the node itself")
    if node is not None:
        _check_publishes(identifier, node)
    elif record.identifier not in (None, identifier) and resolve_identifier(lake, record.identifier, namespace) == \
            storage_hash:
        raise ConfigurationError(
            f"table {storage_hash} is published as {record.identifier!r}, and its updater claims that name on every "
            f"run: give its node node_metadata identifier={identifier!r} (no hash changes), then repoint from "
            f"Python: repoint_identifier({identifier!r}, node)")
    previous = resolve_identifier(lake, identifier, namespace)
    _known_claims.difference_update({key for key in _known_claims if key[:3] == (lake.cache_key, namespace, identifier)})
    reassign(lake, identifier_scope(namespace), identifier,
             {"identifier": identifier, "namespace": namespace, "storage_hash": storage_hash}, _schemas()["claims"])
    if record is not None:  # else the node's first run records its table under the identifier
        save_table_record(lake, record.model_copy(update={"identifier": identifier, "namespace": namespace}))
    if previous and previous != storage_hash:
        old = table_record(lake, previous)
        if old is not None and old.identifier == identifier:
            save_table_record(lake, old.model_copy(update={"identifier": None}))


def _check_publishes(identifier: str, node: Any) -> None:
    """Refuse a node that publishes another name (or none): its runs would record its table under
    that, and ``identifier`` would point at a table no catalog record names."""
    metadata = node.get_table_metadata()
    own = metadata.identifier if metadata is not None else None
    if own != identifier:
        publishes = f"publishes identifier {own!r}" if own else "publishes no identifier"
        raise ConfigurationError(
            f"{type(node).__name__} {publishes}: give it node_metadata identifier={identifier!r} "
            f"(no hash changes) before repointing {identifier!r} to it")


def resolve_identifier(lake: Lake, identifier: str, namespace: str = "") -> str | None:
    """Storage hash an identifier points at in ``namespace`` (None when unclaimed)."""
    owner = claim_owner(lake, identifier_scope(namespace), identifier)
    return owner["storage_hash"] if owner else None
