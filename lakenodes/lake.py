"""The lake root: where tables and the catalog live, and how to reach it.

Resolution order: an explicit ``Lake(uri=...)`` > the innermost ``use_lake(...)`` block >
the ``LAKENODES_URI`` environment variable > ``./lake``.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pyarrow import fs

from .errors import LakeConfigurationError

DEFAULT_LAKE_PATH = "./lake"

# Standard AWS variables delta-rs understands; read from the environment for s3:// lakes.
_AWS_ENV_KEYS = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ALLOW_HTTP",
)

_active_lake: contextvars.ContextVar[Lake | None] = contextvars.ContextVar("lakenodes_lake", default=None)


class Lake:
    """A lake root: a local folder or an ``s3://bucket/prefix``.

    Example:
        >>> lake = Lake("/tmp/my-lake")
        >>> lake.table_uri("dailyrandomnumber_0123")
        '/tmp/my-lake/tables/dailyrandomnumber_0123'
    """

    def __init__(self, uri: str | os.PathLike[str] | None = None, storage_options: dict[str, str] | None = None):
        if uri is None:
            active = _active_lake.get()
            if active is not None and storage_options is None:
                uri, storage_options = active.uri, active.storage_options
            else:
                uri = os.environ.get("LAKENODES_URI") or DEFAULT_LAKE_PATH
        self.uri = _normalize_uri(str(uri))
        self.storage_options = _storage_options_for(self.uri, storage_options)

    @property
    def is_local(self) -> bool:
        return "://" not in self.uri

    def table_uri(self, storage_hash: str) -> str:
        """Location of the Delta table that stores ``storage_hash``."""
        return self.join("tables", storage_hash)

    def catalog_uri(self, name: str) -> str:
        """Location of one of lakenodes' own catalog tables (``_catalog/<name>``)."""
        return self.join("_catalog", name)

    def join(self, *parts: str) -> str:
        return "/".join([self.uri.rstrip("/"), *parts])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lake) and (self.uri, self.storage_options) == (other.uri, other.storage_options)

    def __hash__(self) -> int:
        return hash(self.uri)

    def __repr__(self) -> str:
        return f"Lake({self.uri!r})"


def current_lake() -> Lake:
    """The lake in effect here: the innermost ``use_lake`` block, else ``LAKENODES_URI``, else ``./lake``."""
    return _active_lake.get() or Lake()


@contextlib.contextmanager
def use_lake(lake: Lake | str | os.PathLike[str], storage_options: dict[str, str] | None = None) -> Iterator[Lake]:
    """Make ``lake`` the default for everything created or run inside the block.

    Example:
        >>> with use_lake("/tmp/my-lake") as lake:
        ...     lake.uri
        '/tmp/my-lake'
    """
    resolved = lake if isinstance(lake, Lake) else Lake(lake, storage_options)
    token = _active_lake.set(resolved)
    try:
        yield resolved
    finally:
        _active_lake.reset(token)


def _normalize_uri(uri: str) -> str:
    if not uri.strip():
        raise LakeConfigurationError("the lake URI is empty")
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if "://" in uri:
        scheme = uri.split("://", 1)[0].lower()
        if scheme not in ("s3", "s3a"):
            raise LakeConfigurationError(f"unsupported lake URI scheme {scheme!r} in {uri!r}: use a local path or s3://")
        rest = uri.split("://", 1)[1]
        bucket_and_prefix = rest.strip("/")
        if not bucket_and_prefix or rest.startswith("/"):
            raise LakeConfigurationError(f"the lake URI {uri!r} names no bucket")
        return f"s3://{bucket_and_prefix}"
    return str(Path(uri).expanduser().resolve())


def _storage_options_for(uri: str, explicit: dict[str, str] | None) -> dict[str, str]:
    if "://" not in uri:
        return dict(explicit or {})
    options = {key: os.environ[key] for key in _AWS_ENV_KEYS if os.environ.get(key)}
    if "AWS_REGION" not in options and "AWS_DEFAULT_REGION" in options:
        options["AWS_REGION"] = options["AWS_DEFAULT_REGION"]
    options.pop("AWS_DEFAULT_REGION", None)
    options.update({key: str(value) for key, value in (explicit or {}).items()})
    if options.get("AWS_ENDPOINT_URL", "").startswith("http://"):
        options.setdefault("AWS_ALLOW_HTTP", "true")
    return options


# -- native pyarrow filesystems (reads never go through delta-rs's Python filesystem handler) ---------
def lake_filesystem(lake: Lake, table_uri: str) -> tuple[Any, str]:
    """A pyarrow filesystem for the lake and the table root path within it (one object per
    lake kind and options, so callers may key caches by it)."""
    if lake.is_local or "://" not in table_uri or table_uri.startswith("file://"):
        path = table_uri[len("file://"):] if table_uri.startswith("file://") else table_uri
        return _LOCAL_FILESYSTEM, path.rstrip("/")
    return _s3_filesystem(tuple(sorted(lake.storage_options.items()))), table_uri.split("://", 1)[1].rstrip("/")


_LOCAL_FILESYSTEM = fs.LocalFileSystem()
_s3_cache: dict[tuple, Any] = {}


def _s3_filesystem(options: tuple[tuple[str, str], ...]) -> Any:
    if options not in _s3_cache:
        opts = dict(options)
        endpoint = opts.get("AWS_ENDPOINT_URL", "")
        scheme = "http" if endpoint.startswith("http://") else "https"
        # the object_store client options delta-rs honours apply to these native reads too
        tuning: dict[str, Any] = {}
        if opts.get("timeout"):
            tuning["request_timeout"] = duration_seconds(opts["timeout"])
        if opts.get("connect_timeout"):
            tuning["connect_timeout"] = duration_seconds(opts["connect_timeout"])
        if opts.get("max_retries"):
            tuning["retry_strategy"] = fs.AwsStandardS3RetryStrategy(max_attempts=int(opts["max_retries"]) + 1)
        _s3_cache[options] = fs.S3FileSystem(
            access_key=opts.get("AWS_ACCESS_KEY_ID"),
            secret_key=opts.get("AWS_SECRET_ACCESS_KEY"),
            session_token=opts.get("AWS_SESSION_TOKEN"),
            region=opts.get("AWS_REGION", "us-east-1"),
            endpoint_override=endpoint.split("://", 1)[-1] if endpoint else None,
            scheme=scheme,
            **tuning,
        )
    return _s3_cache[options]


_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
                   "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0}


def duration_seconds(value: str) -> float:
    """Seconds in an object_store duration such as ``"5s"``, ``"250ms"`` or ``"2 min"`` (plain numbers: seconds).

    Example:
        >>> duration_seconds("250ms")
        0.25
    """
    text = str(value).strip().lower()
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz ").strip()
    unit = text[len(number):].strip() or "s"
    try:
        return float(number) * _DURATION_UNITS[unit]
    except (KeyError, ValueError):
        raise LakeConfigurationError(f"storage option duration {value!r} is not like '5s', '250ms' or '2min'") from None
