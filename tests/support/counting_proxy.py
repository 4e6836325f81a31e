"""An HTTP proxy in front of the AWS emulator that counts the AWS requests it forwards.

The policy pack promises at most one round of reads per region per run; counting what reaches
the emulator (region from the SigV4 credential scope, operation from X-Amz-Target) proves it
from the outside, without instrumenting the pack.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Final
from urllib.parse import parse_qs, urlsplit

from tests.support.loopback import closed_port_url, serve_on_loopback

__all__ = ["CountingProxy", "closed_port_url", "counting_proxy"]


_SCOPE_RE: Final = re.compile(r"Credential=[^/]+/[0-9]{8}/([^/]+)/([^/]+)/aws4_request")
_HOP_BY_HOP: Final = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection"})


class CountingProxy:
    """Requests seen, by (region, operation); `url` is what AWS_ENDPOINT_URL should point at."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.url = ""
        self._round_lock = threading.Condition()
        self._sizes: list[int] = []
        self._round = 0
        self._deadlock_s = 30.0
        self.rounds: list[list[tuple[str, str]]] = []
        """(region, operation) of each request, by round (`expect_rounds`)."""
        self.deadlocked = False

    def record(self, region: str, operation: str) -> None:
        with self._lock:
            self.requests[(region, operation)] += 1

    def expect_rounds(self, sizes: Sequence[int], *, deadlock_s: float = 30.0) -> None:
        """Hold requests in rounds: no request of round k is answered until `sizes[k]` have arrived.

        This proves round-trip structure without timing: a request that arrives while its round is
        still filling cannot depend on any answer of that round (none was given), so if a client
        needed more round trips than `sizes` allows, it would wait for an answer that never comes.
        `deadlock_s` only ends such a wait (the round is then marked `deadlocked`); it is no speed
        threshold. Requests after the last round pass at once and land in `rounds[len(sizes)]`.
        """
        with self._round_lock:
            self._sizes = list(sizes)
            self._round = 0
            self.rounds = [[] for _ in range(len(sizes) + 1)]
            self.deadlocked = False
            self._deadlock_s = deadlock_s

    def _arrive(self, region: str, operation: str) -> None:
        with self._round_lock:
            if not self._sizes:
                return
            index = min(self._round, len(self._sizes))
            self.rounds[index].append((region, operation))
            if index == len(self._sizes):
                return
            if len(self.rounds[index]) == self._sizes[index]:
                self._round += 1
                self._round_lock.notify_all()
                return
            if not self._round_lock.wait_for(lambda: self._round > index, timeout=self._deadlock_s):
                self.deadlocked = True
                self._round = len(self._sizes)
                self._round_lock.notify_all()

    def by_region(self) -> dict[str, int]:
        with self._lock:
            counts: Counter[str] = Counter()
            for (region, _operation), n in self.requests.items():
                counts[region] += n
            return dict(counts)

    def total(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                scope = _SCOPE_RE.search(self.headers.get("Authorization", ""))
                if scope:
                    # JSON protocols (KMS) name the operation in X-Amz-Target; query protocols (STS) in the body.
                    action = parse_qs((body or b"").decode("utf-8", "replace")).get("Action", [""])[0]
                    operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2] or action or self.command
                    proxy.record(scope.group(1), operation)
                    proxy._arrive(scope.group(1), operation)
                connection = http.client.HTTPConnection(*proxy._upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    payload = response.read()
                finally:
                    connection.close()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler


@contextmanager
def counting_proxy(upstream: str) -> Iterator[CountingProxy]:
    """Start the proxy on a free loopback port; stop it afterwards."""
    proxy = CountingProxy(upstream)
    with serve_on_loopback(proxy.handler()) as url:
        proxy.url = url
        yield proxy
