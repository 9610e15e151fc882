"""A lake URI checked and normalized: what ``Lake(uri)`` holds, or why the URI would not reach the
lake its user meant (a typo, credentials in it, characters Delta Lake's engine cannot open).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

from ..errors import LakeConfigurationError
from .storage_options import hide_credentials

# "s3:/bucket/lake", "s3:bucket/lake": a scheme (two characters or more, so not a Windows drive) without "//"
_SCHEME_WITHOUT_SLASHES = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):(?!//)")


def normalize_uri(uri: str) -> str:
    """``uri`` as a Lake holds it: an absolute folder (``~`` expanded, links resolved) or
    ``s3://bucket/prefix``; a URI that would not reach the lake meant is refused, naming why.

    Example:
        >>> normalize_uri("S3://bucket/lake/")
        's3://bucket/lake'
        >>> normalize_uri("s3:/bucket/lake")
        Traceback (most recent call last):
        lakenodes.errors.LakeConfigurationError: the lake URI 's3:/bucket/lake' has no '//' after 's3:' (an S3 lake is s3://bucket/prefix; a local folder of that name is ./s3:/bucket/lake)
    """
    if not uri.strip():
        raise LakeConfigurationError("the lake URI is empty")
    _refuse_credentials_in(uri)
    if uri != uri.strip():  # "s3://bucket/lake\n" was another prefix; " /data/lake" the folder "./ /data/lake"
        raise LakeConfigurationError(f"the lake URI {uri!r} starts or ends with whitespace: remove it (a value read "
                                     "from a file or a secret keeps its trailing newline)")
    if uri[:5].lower() == "file:":
        uri = _file_url_folder(uri)
    if malformed := _SCHEME_WITHOUT_SLASHES.match(uri):
        # taken as a folder, such a typo wrote the lake under ./s3:/ on local disk instead of the bucket
        scheme = malformed.group(1)
        raise LakeConfigurationError(
            f"the lake URI {uri!r} has no '//' after '{scheme}:' (an S3 lake is s3://bucket/prefix; "
            f"a local folder of that name is ./{uri})")
    if "://" in uri:
        scheme = uri.split("://", 1)[0].lower()
        if scheme not in ("s3", "s3a"):
            raise LakeConfigurationError(f"unsupported lake URI scheme {scheme!r} in {uri!r}: use a local path or s3://")
        rest = uri.split("://", 1)[1]
        bucket_and_prefix = rest.strip("/")
        if not bucket_and_prefix or rest.startswith("/"):
            raise LakeConfigurationError(f"the lake URI {uri!r} names no bucket")
        if "//" in bucket_and_prefix:  # an object key with an empty "folder": pyarrow cannot address it
            raise LakeConfigurationError(f"the lake URI {uri!r} has an empty path component ('//'): remove one '/'")
        if any(part in (".", "..") for part in bucket_and_prefix.split("/")):
            # object keys have no folders to resolve them in: delta-rs' HTTP layer resolved s3://b/x/../l
            # to s3://b/l when writing, while listings looked for the keys under x/../l
            raise LakeConfigurationError(f"the lake URI {uri!r} has a '.' or '..' path component: write the prefix "
                                         "it stands for")
        return _openable(f"s3://{bucket_and_prefix}", "[]%?#|^\\")
    # a "\\" is a folder name's character on POSIX (Windows' separator elsewhere)
    return _openable(_absolute(uri), "[]%#|^" + ("\\" if os.sep == "/" else ""), controls=True)


def _refuse_credentials_in(uri: str) -> None:
    """Refuse a URI naming a user (``s3://key:secret@bucket/lake``): taken as a bucket, the name went on to
    every error, log line and ``repr`` of the lake. The message shows it masked."""
    masked = hide_credentials(uri)
    if masked != uri:
        raise LakeConfigurationError(
            f"the lake URI {masked.strip()!r} holds credentials before its bucket or host: a lake URI never takes "
            "them; give them as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (environment variables or the lake's "
            "storage_options)")


def _file_url_folder(url: str) -> str:
    """The folder a file URL names (RFC 8089), its escapes decoded ("My%20Documents" is "My Documents"):
    ``file:///data/lake`` and ``file://localhost/data/lake`` are ``/data/lake``; a URL naming another
    host or no absolute path is refused (taken as a relative folder, ``file://fileserver/data/lake``
    wrote ./fileserver/data/lake), as is one without "//" (``file:/data/lake``, see ``normalize_uri``)."""
    if not url[len("file:"):].startswith("//"):
        raise LakeConfigurationError(f"the lake URI {url!r} has no '//' after 'file:' (a file URL is "
                                     "file:///absolute/path; or give the path itself)")
    host, slash, path = url[len("file://"):].partition("/")
    if host.lower() not in ("", "localhost"):
        raise LakeConfigurationError(
            f"the lake URI {url!r} is a file URL naming the host {host!r}: a file URL names a folder of this "
            "machine, file:///absolute/path (or give the path itself)")
    return unquote(slash + path)


def _absolute(folder: str) -> str:
    """``folder`` as an absolute path (``~`` expanded, symbolic links resolved), a relative one
    against the working directory: when that directory is gone (removed, or a deploy replaced it
    while a shell or a scheduler stayed in it) there is nothing to resolve against (was a bare
    ``FileNotFoundError: [Errno 2] No such file or directory``)."""
    try:
        return str(Path(folder).expanduser().resolve())
    except FileNotFoundError:
        if Path(folder).expanduser().is_absolute():
            raise
        raise LakeConfigurationError(
            f"the lake folder {folder!r} is relative to the working directory, which no longer exists (removed "
            "or replaced since this process entered it): run from an existing directory, or give the lake as an "
            "absolute path or an s3:// URI (--lake, LAKENODES_URI)") from None


def _openable(location: str, refused: str, *, controls: bool = False) -> str:
    """``location``, unless it holds one of the ``refused`` characters (or, with ``controls``, an
    ASCII control character): delta-rs 1.6 panics on a table URI holding "[", "]", "|", "^"
    (InvalidDomainCharacter, encoded or not) or, locally, a control character such as a tab; reads
    "%20" in a path as a space and a local "\\" as "/" (another folder); and ends an S3 key at "?" or
    "#" (a URL's query and fragment); under a local path holding "#" its table history reads empty
    (reconcile and time travel by moment find nothing)."""
    found = [character for character in location
             if character in refused or (controls and (ord(character) < 0x20 or ord(character) == 0x7F))]
    if found:
        listed = ", ".join(repr(character) for character in refused) + (" or control characters" if controls else "")
        raise LakeConfigurationError(
            f"the lake location {location!r} holds {found[0]!r}, which Delta Lake's Rust engine cannot open a "
            f"table under: choose a location without {listed}")
    return location
