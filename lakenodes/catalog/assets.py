"""Assets: the things rows of an asset table are about, keyed by ``unique_identifier``.

Stored in the lake catalog (``_catalog/assets``); registration is idempotent and blind-append
based, so concurrent registrations never conflict.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from .._internal.deferred import pa
from ..core.hashing import HashedAsUid
from ..core.identity_values import describe_value, partition_value_problem
from ..core.lookups import exactly_one, matches_lookups, prepared_lookups, split_lookup
from ..errors import LakenodesUserError
from ..lake.ledger import Ledger
from ..lake.location import Lake, LakeLike, lake_or_current

SNAPSHOT_FIELDS = ("ticker", "name", "figi", "isin", "exchange_code", "security_type", "currency")


class Asset(BaseModel):
    """One asset. ``unique_identifier`` may hold any printable text up to 255 characters
    (``BRK/B``, ``A B``, ``é=1%``, ``日本`` all round-trip) that an asset table can store as a partition
    value: not ``__HIVE_DEFAULT_PARTITION__`` or ``null`` (folder-name readers read them back as null),
    and at most 255 bytes once encoded as the folder name ``unique_identifier=<percent-encoded>``
    (237 ASCII letters, 39 × ``é``); see :mod:`lakenodes.core.identity_values`.

    Example:
        >>> Asset(unique_identifier="BRK/B", ticker="BRK.B").unique_identifier
        'BRK/B'
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    unique_identifier: str
    ticker: str | None = None
    name: str | None = None
    figi: str | None = None
    isin: str | None = None
    exchange_code: str | None = None
    security_type: str | None = None
    currency: str | None = None

    @field_validator("unique_identifier")
    @classmethod
    def _valid_identifier(cls, value: str) -> str:
        # asset tables are partitioned by unique_identifier: refuse what a run could never write
        problem = partition_value_problem("unique_identifier", value)
        if problem:
            raise ValueError(f"unique_identifier {describe_value(value)}: {problem}")
        return value

    def __hash__(self) -> int:
        return hash(self.unique_identifier)

    @classmethod
    def filter(cls, *, lake: LakeLike | None = None, **lookups: Any) -> list[Asset]:
        """Registered assets matching Django-style lookups, e.g. ``Asset.filter(ticker__in=["NVDA"])``.
        A field of some assets' snapshots only (``sector``) is missing, so null, in the others.
        ``lake``: a Lake, a folder path or an s3:// URI (None: the lake in effect)."""
        assets, lookups = _all_assets(lake_or_current(lake)), prepared_lookups(lookups)
        fields = set(cls.model_fields) | {name for asset in assets for name in asset.model_extra or {}}
        for key in lookups:
            name = split_lookup(key)[0]
            if name not in fields:
                raise LakenodesUserError(f"unknown field {name!r} in lookup {key!r}; asset fields are {sorted(fields)}")
        return [asset for asset in assets if matches_lookups({**dict.fromkeys(fields), **asset.model_dump()}, lookups)]

    @classmethod
    def get(cls, *, lake: LakeLike | None = None, **lookups: Any) -> Asset:
        """The one asset matching ``lookups`` (NotFoundError when none, error when several); ``lake``: as for ``filter``."""
        return exactly_one(cls.filter(lake=lake, **lookups), lookups, "asset")

    @classmethod
    def batch_get_or_register_custom_assets(
        cls, assets: Sequence[Mapping[str, Any]], *, lake: LakeLike | None = None
    ) -> list[Asset]:
        """Register assets given as ``{"unique_identifier": ..., "snapshot": {...}}`` (idempotent).

        Existing assets are returned unchanged unless their snapshot differs, in which case the
        new snapshot is recorded. Returns the assets in the order given. ``assets``: a list of such
        dicts (or ``Asset`` objects), even for one asset; ``lake``: as for ``filter``.
        """
        if isinstance(assets, (str, bytes, Mapping)) or not isinstance(assets, Iterable):
            # iterated, it gave "got 'N'" or "got 'unique_identifier'"; None was "'NoneType' object is not iterable"
            raise LakenodesUserError(
                f"assets must be a list of asset dicts, got a {type(assets).__name__} {assets!r}; wrap a single "
                "asset as [{'unique_identifier': ..., 'snapshot': {...}}]")
        lake = lake_or_current(lake)
        wanted = [_asset_from_spec(spec) for spec in assets]
        by_uid: dict[str, Asset] = {}
        for asset in wanted:  # twice alike is harmless; two snapshots of one asset: which one was meant?
            first = by_uid.setdefault(asset.unique_identifier, asset)
            if first != asset:
                raise LakenodesUserError(
                    f"asset {asset.unique_identifier!r} is given twice with different snapshots "
                    f"({_snapshot_text(first)} and {_snapshot_text(asset)}): give each asset once; nothing was registered")
        existing = {asset.unique_identifier: asset for asset in _all_assets(lake)}
        changed = [asset for asset in by_uid.values() if existing.get(asset.unique_identifier) != asset]
        _ledger(lake).append([
            {"unique_identifier": asset.unique_identifier, "snapshot": _snapshot_text(asset)} for asset in changed])
        return wanted


def _snapshot_text(asset: Asset) -> str:
    """What the catalog stores of an asset besides its identifier (JSON, keys sorted)."""
    try:
        return json.dumps(asset.model_dump(exclude={"unique_identifier"}, exclude_none=True), sort_keys=True)
    except TypeError as error:  # a date, a Decimal...: read back it would not be the value given
        raise LakenodesUserError(
            f"asset {asset.unique_identifier!r}: its snapshot cannot be stored ({error}); the catalog keeps "
            "snapshots as JSON: give text, numbers, booleans, lists or mappings; nothing was registered") from None


HashedAsUid.register(Asset)  # configurations hash an asset as its unique_identifier


def _asset_from_spec(spec: Mapping[str, Any]) -> Asset:
    if isinstance(spec, Asset):
        return spec
    if not isinstance(spec, Mapping) or "unique_identifier" not in spec:
        hint = f": {{'unique_identifier': {spec!r}}}" if isinstance(spec, str) else ""
        raise LakenodesUserError(f"each asset needs a 'unique_identifier', got {spec!r}{hint}")
    snapshot = spec.get("snapshot") or {}
    if not isinstance(snapshot, Mapping):
        raise LakenodesUserError(f"'snapshot' must be a mapping, got {type(snapshot).__name__}")
    extra = {k: v for k, v in spec.items() if k not in ("unique_identifier", "snapshot")}
    fields = {**extra, **snapshot}
    if fields.pop("unique_identifier", spec["unique_identifier"]) != spec["unique_identifier"]:
        raise LakenodesUserError(f"asset {spec['unique_identifier']!r}: its snapshot names another unique_identifier "
                                 f"{snapshot['unique_identifier']!r}")
    return Asset(unique_identifier=spec["unique_identifier"], **fields)


def _ledger(lake: Lake) -> Ledger:
    return Ledger(lake, "assets", pa.schema([("unique_identifier", pa.string()), ("snapshot", pa.string())]), key=("unique_identifier",))


def _all_assets(lake: Lake) -> list[Asset]:
    """Every registered asset. Stored rows were validated when registered and are not re-validated,
    so an identifier refused by a later, stricter rule still lists (a run then names the problem)."""
    return [
        Asset.model_construct(unique_identifier=row["unique_identifier"], **json.loads(row["snapshot"] or "{}"))
        for row in _ledger(lake).latest()
    ]
