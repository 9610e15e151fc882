"""The canonical S3 options (:func:`~lakenodes.lake.storage_options.normalize_s3_options`) as the
other clients need them: :func:`with_timeout_defaults` bounds how long one storage operation may wait
(``DEFAULT_TIMEOUTS``) where neither the options nor the environment say otherwise (object_store's own
defaults, 30 s per request retried for up to 3 minutes, let a store that accepts connections and never
answers hold a run for minutes); :func:`pyarrow_s3_options` gives ``pyarrow.fs.S3FileSystem`` arguments
reaching the same endpoint as delta-rs; :func:`polars_storage_options` the options polars' readers
take; :func:`lance_retry_options` gives LanceDB the same retry budget in its spelling.

Example:
    >>> sorted(DEFAULT_TIMEOUTS)
    ['connect_timeout', 'retry_timeout', 'timeout']
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from .._internal.deferred import pafs as fs
from ._durations import duration_seconds
from .storage_options import _BY_ALIAS, _flag

logger = logging.getLogger(__name__)

# How long one storage operation may wait, unless the options or the environment (AWS_CONNECT_TIMEOUT,
# AWS_TIMEOUT, AWS_RETRY_TIMEOUT) say otherwise. A request with no complete answer after `timeout` fails;
# failures are retried (with backoff) only while the operation is younger than `retry_timeout`, so a
# request that hung for its whole `timeout` is not repeated: each operation against a silent store fails
# after ~10 s (a failing run makes about three, ~30 s), while quick errors (503 SlowDown, resets) are
# retried for 10 s. Slow links moving big files may need a longer `timeout` (docs/interop.md, "Timeouts").
DEFAULT_TIMEOUTS: Mapping[str, str] = MappingProxyType(
    {"connect_timeout": "5s", "timeout": "10s", "retry_timeout": "10s"}
)
# object_store's own values where an option is absent (what delta-rs and LanceDB then use)
_OBJECT_STORE_DEFAULTS: dict[str, float] = {"timeout": 30.0, "retry_timeout": 180.0, "max_retries": 10}


def with_timeout_defaults(options: Mapping[str, str]) -> dict[str, str]:
    """``options`` (canonical, from :func:`normalize_s3_options`) plus ``DEFAULT_TIMEOUTS`` for what they leave unset.

    Example:
        >>> with_timeout_defaults({"timeout": "60s"})
        {'timeout': '60s', 'connect_timeout': '5s', 'retry_timeout': '10s'}
    """
    completed = dict(options)
    defaulted = [key for key in DEFAULT_TIMEOUTS if key not in completed]
    completed.update((key, DEFAULT_TIMEOUTS[key]) for key in defaulted)
    if defaulted:
        logger.debug("S3 timeouts not set, using lakenodes' defaults: %s", {key: completed[key] for key in defaulted})
    return completed


def pyarrow_s3_options(options: Mapping[str, str]) -> dict[str, Any]:
    """``pyarrow.fs.S3FileSystem`` arguments reaching the same endpoint, as the same identity, as delta-rs.

    ``options`` must come from :func:`normalize_s3_options`.

    Example:
        >>> pyarrow_s3_options({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_REGION": "eu-west-1"})["endpoint_override"]
        '127.0.0.1:9000'
    """
    endpoint = options.get("AWS_ENDPOINT_URL")
    anonymous = _flag(options, "AWS_SKIP_SIGNATURE")
    kwargs: dict[str, Any] = {
        "access_key": None if anonymous else options.get("AWS_ACCESS_KEY_ID"),
        "secret_key": None if anonymous else options.get("AWS_SECRET_ACCESS_KEY"),
        "session_token": None if anonymous else options.get("AWS_SESSION_TOKEN"),
        "anonymous": anonymous,
        "region": options.get("AWS_REGION", "us-east-1"),  # object_store's default too
        "scheme": urlsplit(endpoint).scheme.lower() if endpoint else "https",
        "endpoint_override": urlsplit(endpoint).netloc if endpoint else None,
    }
    if options.get("timeout"):
        kwargs["request_timeout"] = duration_seconds(options["timeout"], "timeout")
    if options.get("connect_timeout"):
        kwargs["connect_timeout"] = duration_seconds(options["connect_timeout"], "connect_timeout")
    attempts = _pyarrow_attempts(options)
    if attempts is not None:
        kwargs["retry_strategy"] = fs.AwsStandardS3RetryStrategy(max_attempts=attempts)
    if options.get("proxy_url"):
        kwargs["proxy_options"] = options["proxy_url"]
    if options.get("certificate_path"):
        kwargs["tls_ca_file_path"] = options["certificate_path"]
    return kwargs


def _pyarrow_attempts(options: Mapping[str, str]) -> int | None:
    """Attempts per pyarrow request matching object_store's retry budget (None: none of it is set).

    pyarrow counts attempts where object_store also stops retrying after ``retry_timeout``: a request
    that hangs is repeated as long as object_store would repeat it, and at least once (pyarrow cannot
    tell a hang from a ``503 SlowDown`` worth retrying) unless ``max_retries`` is 0.
    """
    if not any(options.get(key) for key in ("timeout", "retry_timeout", "max_retries")):
        return None
    retries = int(options.get("max_retries") or _OBJECT_STORE_DEFAULTS["max_retries"])
    timeout, budget = (duration_seconds(options[key], key) if options.get(key) else _OBJECT_STORE_DEFAULTS[key]
                       for key in ("timeout", "retry_timeout"))
    return min(retries + 1, max(2, math.ceil(budget / max(timeout, 0.001))))


def polars_storage_options(options: Mapping[str, str]) -> dict[str, Any]:
    """``options`` (canonical) as the installed polars' readers take them: object_store's settings
    as they are, but ``max_retries`` as a number where polars reads that key itself (polars 2:
    ``"3"`` is a ValueError there; polars 1 hands it to object_store, as text, and refuses a number).

    Example:
        >>> polars_storage_options({"AWS_REGION": "eu-west-1"})
        {'AWS_REGION': 'eu-west-1'}
    """
    converted: dict[str, Any] = dict(options)
    if "max_retries" in converted and _polars_counts_retries():
        converted["max_retries"] = int(str(converted["max_retries"]).strip())
    return converted


@functools.cache
def _polars_counts_retries() -> bool:
    """Whether the installed polars reads ``max_retries`` itself (a number) rather than passing it on."""
    try:
        from polars.io.cloud._utils import POLARS_STORAGE_CONFIG_KEYS
    except ImportError:  # polars 1.x: every storage option goes to object_store
        return False
    return "max_retries" in POLARS_STORAGE_CONFIG_KEYS


def lance_retry_options(options: Mapping[str, str] | None) -> dict[str, str]:
    """LanceDB's spelling of the retry budget in ``options`` (any spelling lakenodes accepts).

    LanceDB reads ``timeout``/``connect_timeout`` as object_store does, but ignores ``max_retries`` and
    ``retry_timeout``: it has ``client_max_retries`` and ``client_retry_timeout`` (whole seconds) instead.

    Example:
        >>> lance_retry_options({"max_retries": "3", "retry_timeout": "1m 30s", "timeout": "5s"})
        {'client_max_retries': '3', 'client_retry_timeout': '90'}
    """
    canonical = {}
    for key, value in (options or {}).items():
        setting = _BY_ALIAS.get(str(key).strip().lower())
        if setting is not None and setting.canonical in ("max_retries", "retry_timeout"):
            canonical[setting.canonical] = str(value)
    lance: dict[str, str] = {}
    if "max_retries" in canonical:
        lance["client_max_retries"] = canonical["max_retries"].strip()
    if "retry_timeout" in canonical:
        lance["client_retry_timeout"] = str(math.ceil(duration_seconds(canonical["retry_timeout"], "retry_timeout")))
    return lance


