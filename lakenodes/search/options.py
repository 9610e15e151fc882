"""Storage options for LanceDB: delta-rs style keys (``AWS_ENDPOINT_URL``...) translated to LanceDB's.

Example:
    >>> lance_storage_options({"AWS_REGION": "eu-west-1", "AWS_S3_ALLOW_UNSAFE_RENAME": "true"})
    {'aws_region': 'eu-west-1'}
"""

from __future__ import annotations

from ..lake.storage_options import lance_retry_options

__all__ = ["lance_storage_options"]

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
