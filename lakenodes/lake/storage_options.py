"""S3 storage options in one canonical form, so delta-rs and lakenodes' native pyarrow reads agree.

delta-rs hands ``storage_options`` to object_store, which accepts many spellings of one setting
(``AWS_ENDPOINT_URL``, ``aws_endpoint``, ``endpoint_url``, ``endpoint``...; see object_store's
``AmazonS3ConfigKey::from_str`` and ``ClientConfigKey::from_str``), plus delta-rs' own keys
(``AWS_S3_LOCKING_PROVIDER``, ``max_retries``...). :func:`normalize_s3_options` maps every
spelling, case-insensitively, to one canonical key; ``client_options.pyarrow_s3_options`` turns the
canonical options into ``pyarrow.fs.S3FileSystem`` arguments. An option that would change where
or how data is reached and that the pyarrow reads cannot follow is a
:class:`~lakenodes.errors.LakeConfigurationError` naming the key, never a silent default.

:mod:`.client_options` gives the canonical options in the other clients' spellings (pyarrow's S3
filesystem, LanceDB) and the timeouts lakenodes sets by default.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import LakeConfigurationError
from ._durations import write_durations_as_object_store_reads_them

logger = logging.getLogger(__name__)

# What lakenodes does with a setting on its native pyarrow reads.
READ = "read"  # honoured (mapped to S3FileSystem arguments or checked)
IGNORE = "ignore"  # write-side or tuning only: passed to delta-rs, irrelevant to reads
REFUSE = "refuse"  # changes how S3 is reached in a way the reads cannot follow
REFUSE_IF_TRUE = "refuse_if_true"  # a switch that is harmless off, unfollowable on


@dataclass(frozen=True)
class _Setting:
    canonical: str
    aliases: tuple[str, ...]
    kind: str
    hint: str = ""


def _aws(name: str, *aliases: str, kind: str = IGNORE, hint: str = "") -> _Setting:
    """An object_store/delta-rs AWS setting ``AWS_<NAME>`` (also accepted without the prefix)."""
    canonical = f"AWS_{name.upper()}"
    return _Setting(canonical, (canonical.lower(), name.lower(), *aliases), kind, hint)


def _client(name: str, kind: str = IGNORE, hint: str = "") -> _Setting:
    """An object_store HTTP client option (``timeout``...), also accepted as ``aws_<name>``."""
    return _Setting(name, (name, f"aws_{name}"), kind, hint)


def _plain(canonical: str, *aliases: str, kind: str = IGNORE, hint: str = "") -> _Setting:
    return _Setting(canonical, (canonical.lower(), *aliases), kind, hint)


_ENV_HINT = "lakenodes' pyarrow reads cannot use it; set it as an environment variable instead"


def profile_advice(profile: str) -> str:
    """What to do with the AWS profile ``profile`` that gave no credentials: delta-rs resolves
    profiles through the AWS SDK only for AWS itself, not once an endpoint is set (MinIO, moto, R2),
    unless ``AWS_FORCE_CREDENTIAL_LOAD`` is set; pyarrow's reads follow ``AWS_PROFILE`` either way.

    Example:
        >>> print(profile_advice("prod"))  # doctest: +NORMALIZE_WHITESPACE
        with an endpoint set, Delta Lake's Rust engine reads AWS profiles only when AWS_FORCE_CREDENTIAL_LOAD=true
        is set too: set it, or export the profile's keys:
        eval "$(aws configure export-credentials --profile prod --format env)"
    """
    return ("with an endpoint set, Delta Lake's Rust engine reads AWS profiles only when AWS_FORCE_CREDENTIAL_LOAD=true "
            "is set too: set it, or export the profile's keys: "
            f'eval "$(aws configure export-credentials --profile {profile} --format env)"')


_SETTINGS: tuple[_Setting, ...] = (
    # where and as whom: honoured by the native reads
    _aws("access_key_id", kind=READ),
    _aws("secret_access_key", kind=READ),
    _aws("session_token", "aws_token", "token", kind=READ),
    _aws("region", kind=READ),
    _aws("default_region", kind=READ),
    _aws("endpoint_url", "aws_endpoint", "endpoint", kind=READ),
    _aws("allow_http", "allow_http", kind=READ),
    _aws("virtual_hosted_style_request", kind=READ),
    _plain("AWS_S3_ADDRESSING_STYLE", kind=READ),
    _aws("skip_signature", kind=READ),
    _aws("bucket", "aws_bucket_name", "bucket_name", kind=READ),
    _client("timeout", READ),
    _client("connect_timeout", READ),
    _client("proxy_url", READ),
    _plain("max_retries", "aws_max_retries", kind=READ),
    _plain("retry_timeout", "aws_retry_timeout", kind=READ),
    _plain("certificate_path", kind=READ),
    # credentials from somewhere the reads cannot follow
    _aws("profile", kind=REFUSE, hint="lakenodes' pyarrow reads cannot use it; set AWS_PROFILE={value} in the "
         "environment instead (with an endpoint set, also AWS_FORCE_CREDENTIAL_LOAD=true)"),
    _aws("role_arn", kind=REFUSE, hint=_ENV_HINT),
    _aws("role_session_name", kind=REFUSE, hint=_ENV_HINT),
    _aws("web_identity_token_file", kind=REFUSE, hint=_ENV_HINT),
    _aws("container_credentials_relative_uri", kind=REFUSE, hint=_ENV_HINT),
    _aws("container_credentials_full_uri", kind=REFUSE, hint=_ENV_HINT),
    _aws("container_authorization_token_file", kind=REFUSE, hint=_ENV_HINT),
    _aws("endpoint_url_sts", kind=REFUSE, hint=_ENV_HINT),
    _aws("metadata_endpoint", kind=REFUSE, hint=_ENV_HINT),
    _aws("iam_role_arn", kind=REFUSE, hint="lakenodes' pyarrow reads cannot assume a role for delta-rs"),
    _aws("s3_assume_role_arn", kind=REFUSE, hint="lakenodes' pyarrow reads cannot assume a role for delta-rs"),
    _aws("iam_role_session_name", kind=REFUSE, hint="lakenodes' pyarrow reads cannot assume a role"),
    _aws("s3_role_session_name", kind=REFUSE, hint="lakenodes' pyarrow reads cannot assume a role"),
    _aws("sse_customer_key_base64", kind=REFUSE, hint="lakenodes' pyarrow reads cannot send SSE-C keys"),
    _client("proxy_ca_certificate", REFUSE, "lakenodes' pyarrow reads cannot trust a proxy CA"),
    _client("proxy_excludes", REFUSE, "lakenodes' pyarrow reads cannot exclude hosts from the proxy"),
    _aws("s3_express", kind=REFUSE_IF_TRUE, hint="lakenodes' pyarrow reads cannot address S3 Express"),
    _aws("request_payer", kind=REFUSE_IF_TRUE, hint="lakenodes' pyarrow reads cannot pay for requests"),
    _client("allow_invalid_certificates", REFUSE_IF_TRUE, "lakenodes' pyarrow reads always verify TLS"),
    # write-side, commit coordination and tuning: delta-rs' business only
    _aws("imdsv1_fallback"), _aws("unsigned_payload"), _aws("checksum_algorithm"),
    _aws("copy_if_not_exists"), _aws("conditional_put"), _aws("disable_tagging"),
    _aws("server_side_encryption"), _aws("sse_kms_key_id"), _aws("sse_bucket_key_enabled"),
    _aws("force_credential_load"), _aws("s3_locking_provider"), _aws("endpoint_url_dynamodb"),
    _aws("s3_allow_unsafe_rename"),
    _aws("s3_pool_idle_timeout_seconds"), _aws("sts_pool_idle_timeout_seconds"),
    _aws("s3_get_internal_server_error_retries"), _aws("ec2_metadata_disabled"), _aws("ec2_metadata_timeout"),
    _plain("DELTA_DYNAMO_TABLE_NAME"), _plain("DELTA_DYNAMO_BILLING_MODE"),
    _plain("DELTA_DYNAMO_MAX_ELAPSED_REQUEST_TIME"),
    _plain("OBJECT_STORE_CONCURRENCY_LIMIT", "concurrency_limit"), _plain("MOUNT_ALLOW_UNSAFE_RENAME"),
    _plain("backoff_config.init_backoff", "init_backoff", "backoff.init_backoff"),
    _plain("backoff_config.max_backoff", "max_backoff", "backoff.max_backoff"),
    _plain("backoff_config.base", "base", "backoff.base"),
    *(_client(name) for name in (
        "default_content_type", "http1_only", "http2_only", "http2_keep_alive_interval",
        "http2_keep_alive_timeout", "http2_keep_alive_while_idle", "http2_max_frame_size",
        "pool_idle_timeout", "pool_max_idle_per_host", "randomize_addresses", "user_agent",
    )),
)
# what no message, log line or output may show (``lakenodes.errors.hide_secrets``)
SECRET_OPTIONS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_BY_ALIAS: dict[str, _Setting] = {alias: setting for setting in _SETTINGS for alias in setting.aliases}
# Environment variables copied into a lake's options (so both readers see them): the ones delta-rs
# reads from the environment that change where or how data is reached. Credential providers that
# pyarrow's AWS SDK also reads from the environment (profile, web identity, containers) stay there.
_FROM_ENV = {s.canonical for s in _SETTINGS if s.kind in (READ, REFUSE_IF_TRUE) and s.canonical != "AWS_BUCKET"}
_FROM_ENV |= {"AWS_IAM_ROLE_ARN", "AWS_S3_ASSUME_ROLE_ARN"}
_TRUE = {"true", "1", "on", "yes", "y"}
_FALSE = {"false", "0", "off", "no", "n"}


def normalize_s3_options(
    explicit: Mapping[str, Any] | None, environ: Mapping[str, str], bucket: str
) -> dict[str, str]:
    """Canonical S3 options for a lake in ``bucket``: ``explicit`` over the standard AWS variables.

    Keys are matched case-insensitively against every spelling object_store and delta-rs accept;
    an unknown key, or one lakenodes' native reads cannot follow, raises ``LakeConfigurationError``.

    Example:
        >>> normalize_s3_options({"endpoint": "http://127.0.0.1:9000", "region": "eu-west-1"}, {}, "b")
        {'AWS_ENDPOINT_URL': 'http://127.0.0.1:9000', 'AWS_REGION': 'eu-west-1', 'AWS_ALLOW_HTTP': 'true'}
    """
    given = _fold_region(_canonical((explicit or {}).items(), source="storage option"))
    env_items = [(key, value) for key, value in environ.items() if value and _is_copied_from_env(key)]
    options = _fold_region(_canonical(env_items, source="environment variable", skip=given.keys()))
    options.update(given)
    _check_reads_can_follow(options, bucket)
    write_durations_as_object_store_reads_them(options)  # and checks them
    logger.debug("S3 storage options for bucket %s: %s", bucket, sorted(options))  # names only, never secrets
    if options.get("AWS_ENDPOINT_URL", "").lower().startswith("http://"):
        options.setdefault("AWS_ALLOW_HTTP", "true")
        if not _flag(options, "AWS_ALLOW_HTTP"):
            raise LakeConfigurationError(
                f"storage option AWS_ENDPOINT_URL {options['AWS_ENDPOINT_URL']!r} is plain http but AWS_ALLOW_HTTP is "
                f"{options['AWS_ALLOW_HTTP']!r}: set it to 'true' or use https"
            )
    return options


def hide_credentials(url: str) -> str:
    """``url`` with the user and password before its host shown as ``***`` (what messages may quote).

    A secret key may hold "/", so a URL holds credentials when text precedes its first "@" that
    names no folder first (``s3://bucket/team@x`` is a prefix, ``s3://AKIA:wJa/K7@bucket`` a key
    pair). A password may hold "@" too: everything up to the last "@" is masked (a prefix holding
    one is masked with it: better than showing the end of a password).

    Example:
        >>> hide_credentials("http://minio:wJalr/K7MDENG@127.0.0.1:9000")
        'http://***@127.0.0.1:9000'
        >>> hide_credentials("http://minio:p@ss@127.0.0.1:9000")
        'http://***@127.0.0.1:9000'
        >>> hide_credentials("s3://bucket/team@x/lake")
        's3://bucket/team@x/lake'
    """
    scheme, separator, rest = url.partition("://")
    user, at, _ = rest.partition("@")
    if not separator or not at or ("/" in user and ":" not in user.split("/", 1)[0]):
        return url
    return f"{scheme}://***@{rest.rpartition('@')[2]}"



def _is_copied_from_env(name: str) -> bool:
    setting = _BY_ALIAS.get(name.lower())
    return name.startswith("AWS_") and setting is not None and setting.canonical in _FROM_ENV


def _canonical(items: Iterable[tuple[Any, Any]], source: str, skip: Iterable[str] = ()) -> dict[str, str]:
    """Canonical key -> value; two spellings of one setting must agree (``skip``: settings given elsewhere)."""
    skipped = set(skip)
    if "AWS_REGION" in skipped:
        skipped.add("AWS_DEFAULT_REGION")
    options: dict[str, str] = {}
    spelled: dict[str, str] = {}
    for key, value in items:
        if not isinstance(key, str):
            raise LakeConfigurationError(f"{source} names must be strings, got {key!r}")
        setting = _BY_ALIAS.get(key.strip().lower())
        if setting is None:
            raise LakeConfigurationError(
                f"{source} {key!r} is not an S3 option delta-rs or lakenodes knows "
                "(e.g. AWS_ENDPOINT_URL/endpoint, AWS_REGION/region, AWS_ACCESS_KEY_ID/access_key_id)"
            )
        if value is None:
            raise LakeConfigurationError(f"{source} {key!r} has no value")
        if setting.canonical in skipped:
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if setting.kind == REFUSE or (setting.kind == REFUSE_IF_TRUE and _flag({key: text}, key)):
            hint = setting.hint.replace("{value}", text)
            raise LakeConfigurationError(f"{source} {key!r} ({setting.canonical}) is not supported: {hint}")
        previous = spelled.get(setting.canonical)
        if previous is not None and options[setting.canonical] != text:
            raise LakeConfigurationError(
                f"{source}s {previous!r} and {key!r} both set {setting.canonical} to different values"
            )
        spelled[setting.canonical] = key
        options[setting.canonical] = text
    return options


def _fold_region(options: dict[str, str]) -> dict[str, str]:
    """object_store: an explicit region wins over the default region, whatever the order."""
    default = options.pop("AWS_DEFAULT_REGION", None)
    if default and "AWS_REGION" not in options:
        options["AWS_REGION"] = default
    return options


def _flag(options: Mapping[str, str], key: str) -> bool:
    """A boolean option as object_store reads it; anything else is an error naming the key."""
    value = options.get(key)
    if value is None:
        return False
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise LakeConfigurationError(f"storage option {key} = {value!r} is not a boolean (use 'true' or 'false')")


def _check_reads_can_follow(options: Mapping[str, str], bucket: str) -> None:
    if options.get("AWS_BUCKET", bucket) != bucket:
        raise LakeConfigurationError(
            f"storage option AWS_BUCKET {options['AWS_BUCKET']!r} differs from the lake URI's bucket {bucket!r}"
        )
    endpoint = options.get("AWS_ENDPOINT_URL")
    if endpoint is not None:
        if hide_credentials(endpoint) != endpoint:  # S3 signs requests with the key pair: a URL's user is no login
            raise LakeConfigurationError(
                f"storage option AWS_ENDPOINT_URL {hide_credentials(endpoint)!r} holds credentials: an S3 endpoint is "
                "scheme://host[:port]; give them as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        parts = urlsplit(endpoint)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise LakeConfigurationError(f"storage option AWS_ENDPOINT_URL {endpoint!r} is not an http(s):// URL")
        if parts.path.strip("/") or parts.query or parts.fragment:
            raise LakeConfigurationError(
                f"storage option AWS_ENDPOINT_URL {endpoint!r} has a path; give scheme://host[:port] only"
            )
    style = options.get("AWS_S3_ADDRESSING_STYLE", "path").strip().lower()
    if style not in ("path", "virtual"):
        raise LakeConfigurationError(f"storage option AWS_S3_ADDRESSING_STYLE {style!r} is neither 'path' nor 'virtual'")
    virtual = style == "virtual" or _flag(options, "AWS_VIRTUAL_HOSTED_STYLE_REQUEST")
    if virtual and endpoint is not None:
        raise LakeConfigurationError(
            "storage options ask for virtual-hosted-style requests to a custom AWS_ENDPOINT_URL, which "
            "lakenodes' pyarrow reads cannot address the same way; use path-style requests"
        )
    if ("AWS_ACCESS_KEY_ID" in options) != ("AWS_SECRET_ACCESS_KEY" in options):
        missing = "AWS_SECRET_ACCESS_KEY" if "AWS_ACCESS_KEY_ID" in options else "AWS_ACCESS_KEY_ID"
        raise LakeConfigurationError(f"storage options give only one of the key pair: {missing} is missing")
    _flag(options, "AWS_SKIP_SIGNATURE")
    if "max_retries" in options and not options["max_retries"].strip().isdigit():
        raise LakeConfigurationError(f"storage option max_retries {options['max_retries']!r} is not a whole number")
