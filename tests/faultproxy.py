"""A fault-injecting HTTP reverse proxy on 127.0.0.1, to put in front of the moto S3 server.

Point a lake's ``AWS_ENDPOINT_URL`` at ``proxy.endpoint_url``: every request is forwarded to the
upstream endpoint unless the proxy's seeded RNG picks a fault for it:

- ``error``: answer ``500 InternalError`` without forwarding;
- ``throttle``: answer ``503 SlowDown`` without forwarding;
- ``drop``: close the connection without forwarding or answering;
- ``lost_response``: forward (the request takes effect upstream), then close without answering —
  the nasty case where a commit lands but its writer never hears so;
- ``slow``: wait ``slow_seconds`` before forwarding;
- ``missing``: answer ``404 NoSuchKey`` without forwarding — an object the listing still shows,
  gone by the time it is read (a log clean-up racing a reader).

``methods=("PUT",)`` limits faults to some HTTP methods (e.g. a write outage with working reads);
``paths=("_delta_log/00000000000000000003.json",)`` to requests whose path contains one of these
strings (e.g. the answer of exactly one commit lost); ``limit=2`` stops after two faults (a brief outage).

``counts`` tallies requests and injected faults; ``requests`` lists each request's (method, path)
in arrival order. Faults can be switched at any time with
``configure()``; ``FaultProxy.off()`` turns them all off.

Example:
    >>> with FaultProxy(s3.endpoint_url, seed=7, error=0.05, drop=0.02) as proxy:  # doctest: +SKIP
    ...     lake = Lake("s3://bucket/lake", storage_options={**s3.storage_options,
    ...                                                       "AWS_ENDPOINT_URL": proxy.endpoint_url})
"""

from __future__ import annotations

import http.client
import http.server
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authenticate", "proxy-authorization"}
_ERROR_BODY = ("<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message>"
               "<RequestId>faultproxy</RequestId></Error>")
# the faults answered with an S3 error (code, message, HTTP status) instead of being forwarded
_ERROR_ANSWERS = {"error": ("InternalError", "injected fault", 500),
                  "throttle": ("SlowDown", "Please reduce your request rate.", 503),
                  "missing": ("NoSuchKey", "The specified key does not exist.", 404)}


@dataclass(frozen=True)
class Faults:
    """Probability of each fault per request (their sum must stay <= 1), and the slow delay."""

    error: float = 0.0
    throttle: float = 0.0
    drop: float = 0.0
    lost_response: float = 0.0
    slow: float = 0.0
    missing: float = 0.0
    slow_seconds: float = 0.5
    methods: tuple[str, ...] | None = None  # only requests with these HTTP methods get faults (None: all)
    paths: tuple[str, ...] | None = None  # only requests whose path contains one of these (None: all)
    limit: int | None = None  # inject no more faults once this many were injected (None: no limit)

    def pick(self, rng: random.Random, method: str, path: str = "") -> str | None:
        draw, threshold = rng.random(), 0.0
        if self.methods is not None and method not in self.methods:
            return None
        if self.paths is not None and not any(part in path for part in self.paths):
            return None
        for name in ("error", "throttle", "drop", "lost_response", "slow", "missing"):
            threshold += getattr(self, name)
            if draw < threshold:
                return name
        return None


class FaultProxy:
    """Threaded reverse proxy injecting storage faults (see module doc); use as a context manager."""

    def __init__(self, upstream: str, *, seed: int = 0, **faults: Any):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.faults = Faults(**faults)
        self.counts: Counter[str] = Counter()
        self.requests: list[tuple[str, str]] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="faultproxy", daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def configure(self, **faults: Any) -> None:
        """Change fault probabilities (unnamed ones keep their value)."""
        unknown = set(faults) - {f.name for f in fields(Faults)}
        if unknown:
            raise TypeError(f"unknown fault(s) {sorted(unknown)}")
        with self._lock:
            self.faults = replace(self.faults, **faults)

    def off(self) -> None:
        """Forward every request untouched from now on."""
        with self._lock:
            self.faults = replace(Faults(), slow_seconds=self.faults.slow_seconds)

    @property
    def injected(self) -> int:
        """Faults injected so far (all kinds)."""
        with self._lock:
            return self._injected()

    def _injected(self) -> int:  # the caller holds the lock
        return sum(count for name, count in self.counts.items() if name != "requests")

    def _decide(self, method: str, path: str = "") -> tuple[str | None, float]:
        with self._lock:
            self.counts["requests"] += 1
            self.requests.append((method, path))
            fault = self.faults.pick(self._rng, method, path)
            limit = self.faults.limit
            if fault and limit is not None and self._injected() >= limit:
                fault = None
            if fault:
                self.counts[fault] += 1
            return fault, self.faults.slow_seconds

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _QuietServer(http.server.ThreadingHTTPServer):
    """Clients that gave up (timeouts) and an upstream already stopped are expected here, not errors."""

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _handler_for(proxy: FaultProxy) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # an answer is two writes (head, then body): with Nagle's algorithm the body waits for the
        # client's delayed ACK of the head, ~40 ms before every answer
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                body = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return bytes(body)
                    body += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
            connection = http.client.HTTPConnection(*proxy.upstream, timeout=60)
            try:
                connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        connection.putheader(name, value)
                if body or self.command in ("PUT", "POST"):
                    connection.putheader("Content-Length", str(len(body)))
                connection.endheaders(body or None)
                response = connection.getresponse()
                payload = response.read()
                return response.status, response.reason, response.getheaders(), payload
            finally:
                connection.close()

        def _answer(self, status: int, reason: str, headers: list[tuple[str, str]], payload: bytes) -> None:
            self.send_response(status, reason)
            for name, value in headers:
                if name.lower() not in HOP_BY_HOP and name.lower() not in ("content-length", "date", "server"):
                    self.send_header(name, value)
            # a HEAD answer has no body but keeps the object's length
            length = dict((k.lower(), v) for k, v in headers).get("content-length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _handle(self) -> None:
            body = self._read_body()
            fault, slow_seconds = proxy._decide(self.command, self.path)
            if fault == "drop":
                self.close_connection = True
                return
            if fault in _ERROR_ANSWERS:
                code, message, status = _ERROR_ANSWERS[fault]
                payload = _ERROR_BODY.format(code=code, message=message).encode()
                self._answer(status, "", [("Content-Type", "application/xml")], payload)
                return
            if fault == "slow":
                time.sleep(slow_seconds)
            status, reason, headers, payload = self._forward(body)
            if fault == "lost_response":
                self.close_connection = True
                return
            self._answer(status, reason, headers, payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    return Handler
