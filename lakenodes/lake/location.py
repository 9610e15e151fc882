"""The lake root: where tables and the catalog live, and how to reach it.

Resolution order: an explicit ``Lake(uri=...)`` > the innermost ``use_lake(...)`` block >
the ``LAKENODES_URI`` environment variable > ``./lake``.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .._internal.blocks import with_block
from .._internal.deferred import pafs as fs
from .._internal.forks import refuse_if_forked_after_threads
from ..errors import LakeConfigurationError, remember_secrets
from ._lake_uri import normalize_uri
from .client_options import pyarrow_s3_options, with_timeout_defaults
from .storage_options import SECRET_OPTIONS, normalize_s3_options

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_LAKE_PATH = "./lake"

logger = logging.getLogger(__name__)

LakeKey = tuple[str, str]  # Lake.cache_key: (URI, storage options as sorted JSON)

_active_lake: contextvars.ContextVar[Lake | None] = contextvars.ContextVar("lakenodes_lake", default=None)


class Lake:
    """A lake root: a local folder or an ``s3://bucket/prefix``.

    Example:
        >>> lake = Lake("/tmp/my-lake")
        >>> lake.table_uri("dailyrandomnumber_0123")
        '/tmp/my-lake/tables/dailyrandomnumber_0123'
    """

    def __init__(self, uri: str | os.PathLike[str] | None = None, storage_options: Mapping[str, str] | None = None):
        """``uri``: a folder (a ``str`` or ``pathlib.Path``, relative ones against the working directory)
        or ``s3://bucket/prefix``; None resolves it (``use_lake`` block, ``LAKENODES_URI``, ``./lake``).
        ``storage_options``: a dict of option names to values (S3: ``AWS_REGION``, ``AWS_ENDPOINT_URL``, ...)."""
        if isinstance(uri, os.PathLike):
            uri = os.fspath(uri)
        if uri is not None and not isinstance(uri, str):
            # str() of it was taken as a folder: Lake(5) was ./5, Lake(lake) the folder "./Lake('/data/lake')"
            hint = ": use that Lake as it is" if isinstance(uri, Lake) else ""
            raise LakeConfigurationError(f"the lake URI must be a folder path (str or pathlib.Path) or an s3:// URI, "
                                         f"got {type(uri).__name__} {uri!r}{hint}")
        if storage_options is not None and not isinstance(storage_options, Mapping):
            raise LakeConfigurationError("storage_options must be a dict of option names to values, e.g. "
                                         f"{{'AWS_REGION': 'eu-west-1'}}, got {type(storage_options).__name__} "
                                         f"{storage_options!r}")
        if uri is None:
            active = _active_lake.get()
            if active is not None and storage_options is None:
                uri, storage_options = active.uri, active.storage_options
            else:
                uri = os.environ.get("LAKENODES_URI") or DEFAULT_LAKE_PATH
        self.uri = normalize_uri(uri)
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
        """A location inside the lake. Every table and catalog path is made here, so a process forked
        with deltalake's or polars' threads refuses here, before it reads or writes anything."""
        refuse_if_forked_after_threads()
        return "/".join([self.uri.rstrip("/"), *parts])

    @property
    def cache_key(self) -> LakeKey:
        """What tells this lake from every other in the process (the key of its caches): its URI and its
        options, as the tables' own cache keys them, since two stores may each hold ``s3://lake/prod``."""
        return self.uri, options_key(self.storage_options)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lake) and (self.uri, self.storage_options) == (other.uri, other.storage_options)

    def __hash__(self) -> int:
        return hash(self.uri)

    def __repr__(self) -> str:
        return f"Lake({self.uri!r})"

    def __setstate__(self, state: dict[str, Any]) -> None:  # a process pool's worker hides the secrets too
        self.__dict__.update(state)
        _remember_secrets_of(self.storage_options)


LakeLike = Lake | str | os.PathLike[str]  # what a ``lake=`` argument takes (see ``lake_argument``)


def options_key(options: Mapping[str, str] | None) -> str:
    """Storage options as sorted JSON: what tells one store from another in a cache key (two stores,
    e.g. a staging MinIO and AWS, may each hold a bucket of the same name; ``{}`` for a local folder).

    Example:
        >>> options_key({"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://minio:9000"})
        '{"AWS_ENDPOINT_URL": "http://minio:9000", "AWS_REGION": "eu-west-1"}'
        >>> options_key(None)
        '{}'
    """
    return json.dumps(dict(options or {}), sort_keys=True)


def current_lake() -> Lake:
    """The lake in effect here: the innermost ``use_lake`` block, else ``LAKENODES_URI``, else ``./lake``."""
    return _active_lake.get() or Lake()


def lake_argument(lake: LakeLike | None) -> Lake | None:
    """A ``lake=`` argument as a Lake (None stays None): a Lake, or a folder path or an s3:// URI,
    as ``use_lake`` takes; anything else is refused, naming it.

    Example:
        >>> lake_argument("/tmp/my-lake")
        Lake('/tmp/my-lake')
        >>> lake_argument(5)
        Traceback (most recent call last):
        lakenodes.errors.LakeConfigurationError: lake= must be a Lake, a folder path or an s3:// URI, got int 5
    """
    if lake is None or isinstance(lake, Lake):
        return lake
    if not isinstance(lake, (str, os.PathLike)):
        raise LakeConfigurationError(f"lake= must be a Lake, a folder path or an s3:// URI, got {type(lake).__name__} {lake!r}")
    return Lake(lake)


def lake_or_current(lake: LakeLike | None) -> Lake:
    """A ``lake=`` argument as a Lake (see ``lake_argument``), else the lake in effect here."""
    return lake_argument(lake) or current_lake()


def block_lake() -> Lake | None:
    """The lake of the innermost ``use_lake`` block around the caller, None outside every block.

    Example:
        >>> with use_lake("/tmp/my-lake"):
        ...     block_lake()
        Lake('/tmp/my-lake')
        >>> block_lake() is None
        True
    """
    return _active_lake.get()


@with_block
def use_lake(lake: Lake | str | os.PathLike[str], storage_options: dict[str, str] | None = None) -> Iterator[Lake]:
    """Make ``lake`` (a Lake, a folder path or an s3:// URI) the default for everything created or run
    inside the block; ``storage_options`` (a dict) go with a path or URI, as for ``Lake``.

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


def _storage_options_for(uri: str, explicit: Mapping[str, str] | None) -> dict[str, str]:
    """Local lakes keep their options as given; S3 lakes get them in canonical form (see
    ``lakenodes.lake.storage_options``), the standard AWS variables filling what ``explicit`` leaves out and
    ``DEFAULT_TIMEOUTS`` what both leave out (so a silent store fails a run in seconds, not minutes)."""
    if "://" not in uri:
        return dict(explicit or {})
    bucket = uri.split("://", 1)[1].split("/", 1)[0]
    options = with_timeout_defaults(normalize_s3_options(explicit, os.environ, bucket))
    _remember_secrets_of(options)
    return options


def _remember_secrets_of(options: Mapping[str, str]) -> None:
    """Hide the secret key, the session token and a proxy's password from lakenodes' messages (an S3
    answer quoting them, a run record of a failed dependency in another lake)."""
    secrets = [options[key] for key in SECRET_OPTIONS if key in options]
    proxy_password = urlsplit(options.get("proxy_url", "")).password
    remember_secrets([*secrets, proxy_password] if proxy_password else secrets)


# -- native pyarrow filesystems (reads never go through delta-rs's Python filesystem handler) ---------
def lake_filesystem(lake: Lake, table_uri: str) -> tuple[Any, str]:
    """A pyarrow filesystem for the lake and the table root path within it (one object per
    lake kind and options, so callers may key caches by it)."""
    if lake.is_local or "://" not in table_uri or table_uri.startswith("file://"):
        # a table's own URI (``DeltaTable.table_uri``) is a file URL: percent-encoded ("My%20Documents")
        path = unquote(table_uri[len("file://"):]) if table_uri.startswith("file://") else table_uri
        return _local_filesystem(), path.rstrip("/")
    # unquoted: a table's own URI is percent-encoded ("My%20Documents"); lakenodes' hold no "%" (see _lake_uri._openable)
    return _s3_filesystem(_s3_key(lake)), unquote(table_uri.split("://", 1)[1]).rstrip("/")


@functools.cache
def _local_filesystem() -> Any:
    return fs.LocalFileSystem()


_s3_cache: dict[tuple, Any] = {}


_s3_options_of: dict[int, tuple[tuple[str, str], ...]] = {}  # id of a cached S3 filesystem -> its options
_s3_making = threading.Lock()  # held while a filesystem is made: a second caller waits for it, not makes another
_s3_prepared: set[tuple[tuple[str, str], ...]] = set()  # the options prepare_filesystem began making one of
_s3_preparing = threading.Lock()  # guards _s3_prepared (not _s3_making: another lake's making would hold it ~30 ms)


def _s3_key(lake: Lake) -> tuple[tuple[str, str], ...]:
    """The key of an S3 lake's filesystem in ``_s3_cache``: its options, sorted."""
    return tuple(sorted(lake.storage_options.items()))


def _s3_filesystem(options: tuple[tuple[str, str], ...]) -> Any:
    filesystem = _s3_cache.get(options)
    if filesystem is None:
        with _s3_making:
            filesystem = _s3_cache.get(options)
            if filesystem is None:
                # delayed open: a file lakenodes writes (data files of streams and rewrites, file facts) is
                # one PutObject instead of a 3-request multipart upload (~2.5x faster per small file)
                filesystem = fs.S3FileSystem(**pyarrow_s3_options(dict(options)), allow_delayed_open=True)
                _s3_options_of[id(filesystem)] = options
                _s3_cache[options] = filesystem
    return filesystem


def prepare_filesystem(lake: Lake) -> None:
    """Begin making the pyarrow filesystem of an S3 lake in a thread, once per process and options:
    its first use then waits less. Making it sets up the AWS SDK, ~30 ms of a fresh process mostly
    outside the GIL, which overlaps the first table open (delta-rs reads the log meanwhile), the
    step just before that first use. A failure there is left for the first use to raise. Nothing
    for a local lake.

    Example:
        >>> prepare_filesystem(Lake("/tmp/my-lake"))  # a local folder: nothing to prepare
    """
    if lake.is_local:
        return
    options = _s3_key(lake)
    if options in _s3_cache or options in _s3_prepared:
        return
    with _s3_preparing:
        if options in _s3_prepared:
            return
        _s3_prepared.add(options)
    threading.Thread(target=_make_quietly, args=(options,), name="lakenodes-s3-filesystem", daemon=True).start()


def _make_quietly(options: tuple[tuple[str, str], ...]) -> None:
    try:
        _s3_filesystem(options)
    except Exception as error:  # noqa: BLE001 - the first use makes it again, and raises this in its caller
        logger.debug("could not make the S3 filesystem ahead of its first use: %s", error)


def _forget_preparations_in_child() -> None:
    """A forked child starts with the locks free (a thread that held one is not copied) and makes its own."""
    global _s3_making, _s3_preparing
    _s3_making, _s3_preparing = threading.Lock(), threading.Lock()
    _s3_prepared.clear()


os.register_at_fork(after_in_child=_forget_preparations_in_child)


def store_path(filesystem: Any, path: str) -> str:
    """``path`` (a path of ``lake_filesystem``'s filesystem) as the key of what a process caches of that
    file or folder: led by the store on an object store, where two stores (a staging MinIO, AWS) may each
    hold ``lake/prod/...``; a local path is its own key (``Lake`` resolves links and relative folders).

    Example:
        >>> store_path(fs.LocalFileSystem(), "/data/lake/tables/t")
        '/data/lake/tables/t'
    """
    options = _s3_options_of.get(id(filesystem))
    return path if options is None else f"{options_key(dict(options))}:{path}"


def delete_file(filesystem: Any, path: str) -> None:
    """Delete the file ``path`` (``lake_filesystem``'s filesystem and path). On S3 a missing file is
    no error, and the delete goes through object_store: pyarrow's deletes PUT an empty "folder/"
    marker object when they remove a folder's last file.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> write_small_file(fs.LocalFileSystem(), f"{folder}/a/x")
        >>> delete_file(fs.LocalFileSystem(), f"{folder}/a/x")
        >>> file_exists(fs.LocalFileSystem(), f"{folder}/a/x")
        False
    """
    options = _s3_options_of.get(id(filesystem))
    if options is None:
        filesystem.delete_file(path)
        return
    bucket, _, key = path.partition("/")
    _object_store(bucket, options).delete_file(key)


@functools.cache
def _object_store(bucket: str, options: tuple[tuple[str, str], ...]) -> Any:
    """object_store's client of ``bucket`` (as delta-rs itself deletes), made once: a fold deletes
    its pending files in threads, each of which would otherwise build a client and its credentials."""
    from deltalake.fs import DeltaStorageHandler

    return DeltaStorageHandler(f"s3://{bucket}", dict(options) or None)


def write_small_file(filesystem: Any, path: str, data: bytes | pa.Buffer = b"") -> None:
    """Write ``data`` to ``path`` in one request. Only a local folder is created first: an object
    store has no folders, and creating one there PUTs an empty marker object per level.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> write_small_file(fs.LocalFileSystem(), f"{folder}/a/b/mark")
        >>> fs.LocalFileSystem().get_file_info(f"{folder}/a/b/mark").size
        0
    """
    if isinstance(filesystem, fs.LocalFileSystem):
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(path) as stream:
        stream.write(data)


def file_exists(filesystem: Any, path: str) -> bool:
    """Whether the file ``path`` exists: one request (on S3 a HEAD; ``get_file_info`` of a missing
    key also lists its prefix, looking for a folder).

    Example:
        >>> import tempfile
        >>> file_exists(fs.LocalFileSystem(), f"{tempfile.mkdtemp()}/missing")
        False
    """
    try:
        filesystem.open_input_file(path).close()
    except FileNotFoundError:
        return False
    return True

