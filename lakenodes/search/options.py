"""LanceDB settings: delta-rs style storage options (``AWS_ENDPOINT_URL``...) translated to LanceDB's
keys, and the level of LanceDB's native logger.

Example:
    >>> lance_storage_options({"AWS_REGION": "eu-west-1", "AWS_S3_ALLOW_UNSAFE_RENAME": "true"})
    {'aws_region': 'eu-west-1'}
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from ..lake.client_options import lance_retry_options

__all__ = ["lance_storage_options", "native_log_level"]

# delta-rs / object_store environment-style keys -> LanceDB (object_store) keys.
_S3_KEYS = {
    "aws_endpoint_url": "aws_endpoint",
    "aws_endpoint": "aws_endpoint",
    "endpoint_url": "aws_endpoint",
    "aws_access_key_id": "aws_access_key_id",
    "aws_secret_access_key": "aws_secret_access_key",
    "aws_session_token": "aws_session_token",
    "aws_region": "aws_region",
    "aws_default_region": "aws_region",
    "aws_allow_http": "allow_http",
    "allow_http": "allow_http",
    "aws_virtual_hosted_style_request": "aws_virtual_hosted_style_request",
}
# delta-rs commit-coordination options that mean nothing to Lance.
_DELTA_ONLY = frozenset(
    {
        "aws_s3_allow_unsafe_rename",
        "aws_s3_locking_provider",
        "aws_conditional_put",
        "delta_dynamo_table_name",
        "aws_copy_if_not_exists",
    }
)


def lance_storage_options(options: dict[str, str] | None) -> dict[str, str]:
    """Translate delta-rs style storage options (``AWS_ENDPOINT_URL``...) to LanceDB's keys.

    >>> lance_storage_options({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ALLOW_HTTP": "true"})
    {'aws_endpoint': 'http://127.0.0.1:9000', 'allow_http': 'true'}
    """
    out: dict[str, str] = {}
    for key, value in (options or {}).items():
        k = key.lower()
        if k in _DELTA_ONLY:
            continue
        out[_S3_KEYS.get(k, k)] = str(value)
    out.update(lance_retry_options(options))  # max_retries/retry_timeout in LanceDB's spelling
    return out


@contextlib.contextmanager
def native_log_level(level: str) -> Iterator[None]:
    """LanceDB's Rust logger writes WARN lines (e.g. "No existing dataset") straight to stderr; its
    level can only be set through ``LANCEDB_LOG``, read once when the native module starts its
    logger. Set it for that moment only (unless the program set it) and leave the environment as
    it was."""
    if "LANCEDB_LOG" in os.environ:
        yield
        return
    os.environ["LANCEDB_LOG"] = level
    try:
        yield
    finally:
        os.environ.pop("LANCEDB_LOG", None)
