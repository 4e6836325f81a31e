"""Fault injection at the HTTP level: a small proxy in front of the emulator, and dead endpoints.

The proxy sees every request botocore sends, so it can fail the first N requests of one region
(the region is in the SigV4 credential scope of the Authorization header) and record which
operations were called: what the "never ScheduleKeyDeletion" tests assert on.
"""

from __future__ import annotations

import functools
import http.client
import json
import re
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import boto3
import botocore.config

from tests.support.loopback import closed_port_url, serve_on_loopback

_SCOPE_RE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


@dataclass(frozen=True)
class Call:
    """One request as the proxy saw it."""

    region: str
    service: str
    operation: str


@dataclass
class FaultRule:
    """Fail `remaining` requests of `region` (optionally only these operations) with HTTP 503."""

    region: str
    remaining: int
    operations: frozenset[str] | None = None


@dataclass
class FaultProxy:
    """Forwards to `upstream`; records calls; applies fault rules. Thread-safe."""

    upstream: str
    calls: list[Call] = field(default_factory=list)
    rules: list[FaultRule] = field(default_factory=list)
    failed: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    held_operations: frozenset[str] = frozenset()
    """Requests for these operations are held (never answered) until `release` is set: a hung endpoint."""
    holding: threading.Event = field(default_factory=threading.Event)
    """Set once a held request has arrived: what a test waits on before it interrupts the client."""
    release: threading.Event = field(default_factory=threading.Event)
    held_responses: frozenset[str] = frozenset()
    """Requests for these operations reach the upstream (which acts on them), but the answer is held
    until `release`: a response lost in flight. `holding` is set once such an answer is held."""

    def hold_responses(self, *operations: str) -> None:
        with self.lock:
            self.held_responses = frozenset(operations)

    def hold(self, *operations: str) -> None:
        with self.lock:
            self.held_operations = frozenset(operations)

    def fail(self, region: str, times: int, operations: set[str] | None = None) -> None:
        with self.lock:
            self.rules.append(FaultRule(region, times, frozenset(operations) if operations else None))

    def clear_faults(self) -> None:
        with self.lock:
            self.rules.clear()

    def operations(self) -> set[str]:
        with self.lock:
            return {call.operation for call in self.calls}

    def per_region(self) -> Counter[str]:
        with self.lock:
            return Counter(call.region for call in self.calls)

    def _should_fail(self, call: Call) -> bool:
        with self.lock:
            self.calls.append(call)
            for rule in self.rules:
                applies = rule.operations is None or call.operation in rule.operations
                if rule.region == call.region and applies and rule.remaining > 0:
                    rule.remaining -= 1
                    self.failed.append(call)
                    return True
        return False


def _operation(headers: Any, body: bytes) -> str:
    target = headers.get("X-Amz-Target")
    if target:
        return str(target).rsplit(".", 1)[-1]
    action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action")
    return action[0] if action else "?"


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    upstream = urllib.parse.urlsplit(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            scope = _SCOPE_RE.search(self.headers.get("Authorization", ""))
            region, service = (scope.group(1), scope.group(2)) if scope else ("?", "?")
            call = Call(region, service, _operation(self.headers, body))
            if call.operation in proxy.held_operations:
                proxy.holding.set()
                proxy.release.wait()
                self.close_connection = True  # no answer ever: the client sees the connection close
                return
            if proxy._should_fail(call):
                payload = json.dumps({"__type": "ServiceUnavailableException", "message": "injected fault"}).encode()
                self.send_response(503)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("x-amzn-ErrorType", "ServiceUnavailableException")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            connection = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port, timeout=10)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                if call.operation in proxy.held_responses:
                    proxy.holding.set()
                    proxy.release.wait()
                    self.close_connection = True
                    return
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            finally:
                connection.close()

        do_GET = _relay
        do_POST = _relay
        do_PUT = _relay
        do_DELETE = _relay

    return Handler


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    """A proxy on a free loopback port in front of `upstream`; yields it with `.url` set."""
    proxy = FaultProxy(upstream)
    with serve_on_loopback(_handler(proxy)) as url:
        proxy.url = url
        try:
            yield proxy
        finally:
            proxy.release.set()  # held requests end before the server shuts down


dead_endpoint = closed_port_url
"""A loopback URL nobody listens on (connections are refused at once)."""


def fast_client_config() -> botocore.config.Config:
    """One attempt, short timeouts: the retries under test are cmkctl's own, and a dead port fails at once."""
    return botocore.config.Config(
        connect_timeout=1, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 1}
    )


_SESSION_LOCK = threading.Lock()


@functools.cache
def _shared_session() -> Any:
    """One session for the whole suite: it caches the service models, so new clients cost ~10 ms, not ~100 ms."""
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing"
    )


def fast_client_factory(endpoint_for: Callable[[str], str] | str) -> Callable[[str, str], Any]:
    """A ClientFactory with `fast_client_config`, routing each region to its endpoint."""

    session = _shared_session()
    clients: dict[tuple[str, str], Any] = {}
    lock = _SESSION_LOCK

    def route(region: str) -> str:
        return endpoint_for if isinstance(endpoint_for, str) else endpoint_for(region)

    def factory(service: str, region: str) -> Any:
        with lock:  # a session is not thread-safe (one lock for the shared one); its clients are
            if (service, region) not in clients:
                clients[(service, region)] = session.client(
                    service, region_name=region, endpoint_url=route(region), config=fast_client_config()
                )
            return clients[(service, region)]

    return factory
