"""Delta commits lakenodes writes itself, for the one rewrite delta-rs cannot express.

A remove action must carry exactly the path string of the add action it removes: readers match
the two by the raw string in the log (delta-kernel does not decode them). delta-rs decodes every
path it reads and re-encodes every path it writes (``create_write_transaction`` included),
always percent-encoding non-ASCII bytes, spaces and a few ASCII characters. Spark leaves
non-ASCII characters raw (``unique_identifier=日本/part-...``), so a delta-rs remove of such a
file (``unique_identifier=%E6%97%A5%E6%9C%AC/...``) matches nothing: the old file stays live and
its rows are duplicated. When a rewrite removes such a file, lakenodes writes the commit file
itself: the same actions delta-rs would write (commit info with the custom metadata, app
transactions, adds in delta-rs' encoding), the removes with the add's path verbatim, created
only if that version does not exist yet (a hard link on a local disk, ``If-None-Match: *`` on
S3). When the version exists, a concurrent commit won: ``CommitFailedError``, and the caller
retries from a fresh snapshot, as after a delta-rs conflict.

Example:
    >>> delta_rs_path("unique_identifier=日本/a b.parquet")
    'unique_identifier=%E6%97%A5%E6%9C%AC/a%20b.parquet'
    >>> written_by_delta_rs("unique_identifier=日本/f.parquet"), written_by_delta_rs("x=%25E6/f.parquet")
    (False, True)
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction

from .._internal.deferred import pafs
from ..errors import LakenodesUserError
from ._delta_log import commit_path

_ENCODED = frozenset(b' \\{^}%`]">[<#|*?')  # besides control characters and non-ASCII bytes


def delta_rs_path(path: str) -> str:
    """The string delta-rs writes in the log for a data file at ``path`` (relative to the root)."""
    return "".join(chr(byte) if 0x20 <= byte < 0x7F and byte not in _ENCODED else f"%{byte:02X}"
                   for byte in path.encode())


def written_by_delta_rs(log_path: str) -> bool:
    """Whether delta-rs can write ``log_path`` (an add action's path as recorded) in a remove."""
    return delta_rs_path(unquote(log_path)) == log_path


def commit_actions(table: DeltaTable, filesystem: Any, root: str, adds: Sequence[AddAction],
                   removes: Sequence[tuple[str, int | None, dict[str, str | None]]], properties: CommitProperties,
                   data_change: bool) -> None:
    """Commit ``adds`` and ``removes`` (log path verbatim, size, partition values) as the version
    after ``table``'s; ``CommitFailedError`` when that version was committed meanwhile. Only for
    tables of writer protocol 2 or lower that are not append-only (the features this commit honours)."""
    protocol = table.protocol()
    if protocol.min_writer_version > 2 or protocol.writer_features or \
            str(table.metadata().configuration.get("delta.appendOnly", "false")).lower() == "true":
        raise LakenodesUserError(
            f"cannot rewrite files another engine added to {table.table_uri}: their paths need a commit lakenodes "
            f"writes itself, which supports writer protocol 2 without append-only (the table has writer protocol "
            f"{protocol.min_writer_version}, features {protocol.writer_features or []})")
    now = int(time.time() * 1000)
    info = {"timestamp": now, "operation": "WRITE", "operationParameters": {"mode": "Append"},
            "readVersion": table.version(), "clientVersion": "lakenodes", **(properties.custom_metadata or {})}
    actions: list[dict[str, Any]] = [{"commitInfo": info}]
    actions += [{"txn": {"appId": txn.app_id, "version": txn.version, "lastUpdated": txn.last_updated}}
                for txn in properties.app_transactions or ()]
    actions += [{"add": {"path": delta_rs_path(add.path), "partitionValues": add.partition_values, "size": add.size,
                         "modificationTime": add.modification_time, "dataChange": add.data_change, "stats": add.stats}}
                for add in adds]
    actions += [{"remove": {"path": path, "dataChange": data_change, "deletionTimestamp": now,
                            "extendedFileMetadata": True, "partitionValues": values, "size": size}}
                for path, size, values in removes]
    body = "".join(json.dumps(action, ensure_ascii=False) + "\n" for action in actions).encode()
    _create(table, filesystem, commit_path(root, table.version() + 1), body)


def _create(table: DeltaTable, filesystem: Any, path: str, body: bytes) -> None:
    """Write ``path`` unless it exists (atomically); CommitFailedError when it does."""
    if isinstance(filesystem, pafs.LocalFileSystem):
        staged = f"{os.path.dirname(path)}/_lakenodes_commit_{uuid.uuid4().hex}.json.tmp"
        with open(staged, "wb") as stream:
            stream.write(body)
            stream.flush()
            os.fsync(stream.fileno())
        try:
            os.link(staged, path)
        except FileExistsError:
            raise CommitFailedError(f"a concurrent commit created {path} first") from None
        finally:
            os.unlink(staged)
        return
    _create_on_s3(table, path, body)


def _create_on_s3(table: DeltaTable, path: str, body: bytes) -> None:
    try:
        import boto3  # only here: a niche path (see module doc), so not a dependency of every install
    except ImportError:
        raise LakenodesUserError(
            f"removing a file another engine wrote with a path delta-rs cannot write ({table.table_uri}) needs "
            "boto3 on S3 (pip install boto3)") from None
    options = {key.upper(): value for key, value in (getattr(table, "_storage_options", None) or {}).items()}
    client = boto3.client(
        "s3", endpoint_url=options.get("AWS_ENDPOINT_URL"), region_name=options.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=options.get("AWS_ACCESS_KEY_ID"), aws_secret_access_key=options.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=options.get("AWS_SESSION_TOKEN"))
    bucket, key = path.split("/", 1)
    try:
        client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"PreconditionFailed", "ConditionalRequestConflict"}:
            raise CommitFailedError(f"a concurrent commit created s3://{path} first") from None
        raise
