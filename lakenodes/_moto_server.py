"""The moto S3 server of ``lakenodes.testing``, its conditional writes made atomic as S3's are.

``python -m lakenodes._moto_server -H 127.0.0.1 -p PORT`` runs ``moto.server`` with every object
PUT (and multipart completion) handled one at a time. moto checks ``If-None-Match: *`` and then
stores the object as two steps of a threaded server: two writers committing the same Delta log
version at once could both pass the check, the second overwriting the first commit (a lost commit
that both writers believe landed: seen once in CI, as an updater's catalog record gone after 12
processes wrote the lake together). On S3 the check and the write are one.

Example (``main`` wraps moto's ``S3Response`` so; moto is a test extra, not needed here):
    >>> class Response:
    ...     def put_object(self):
    ...         return "stored"
    ...     def _key_response_post(self):
    ...         return "completed"
    >>> make_writes_atomic(Response)
    >>> Response().put_object(), Response.put_object.__wrapped__.__name__
    ('stored', 'put_object')
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_WRITES = threading.Lock()
# the handlers of moto's S3Response that check a write's precondition, then store the object
CONDITIONAL_WRITERS = ("put_object", "_key_response_post")


def make_writes_atomic(response_class: type) -> None:
    """Wrap the ``CONDITIONAL_WRITERS`` of ``response_class`` (moto's ``S3Response``) so that they
    run one at a time."""
    for name in CONDITIONAL_WRITERS:
        setattr(response_class, name, _one_at_a_time(getattr(response_class, name)))


def _one_at_a_time(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _WRITES:
            return method(*args, **kwargs)

    return locked


def main() -> None:
    from moto.s3.responses import S3Response
    from moto.server import main as moto_main

    make_writes_atomic(S3Response)
    moto_main()


if __name__ == "__main__":
    main()
