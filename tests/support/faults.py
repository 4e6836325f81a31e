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
import time
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
    """Fail `remaining` requests of `region` (optionally only these operations) with an AWS error.

    By default HTTP 503 ServiceUnavailableException before the request reaches the emulator. With
    `forward_first`, the request IS processed by the emulator and the error replaces its answer:
    what a client sees when AWS did the work and the response was lost (a 500 after the fact).
    `error_type`/`status` model refusals such as AccessDeniedException or TagException (400).
    """

    region: str
    remaining: int
    operations: frozenset[str] | None = None
    status: int = 503
    error_type: str = "ServiceUnavailableException"
    message: str = "injected fault"
    forward_first: bool = False
    hang: bool = False
    """Never answer (until the proxy's `release`): with `forward_first`, a read timeout that still reached AWS."""
    after: int = 0
    """Let this many matching requests through first: e.g. the third TagResource of a region refused
    (AWS's answer once a key-policy Deny on the tags the first two wrote is in effect)."""


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

    held_region: str | None = None
    """Hold only this region's requests (None: every region)."""
    forward_held: bool = False
    """After `release`, forward a held request and answer it (a slow region), instead of never answering."""

    watches: list[tuple[str, str, threading.Event, list[int]]] = field(default_factory=list)
    observe: Callable[[Call, bytes], None] | None = None
    """Called with each request before it is answered or forwarded (on the handler's thread): a test
    snapshots what the request acts on, e.g. a key's tags as the key policy would see them."""
    delay: Callable[[Call], float] | None = None
    """Seconds to wait before forwarding each request (benchmarks only: bench/bench_races.py draws them
    at random from a printed seed; tests never wait on time)."""
    requests: list[tuple[Call, bytes]] = field(default_factory=list)
    """Every request with its body, in arrival order: what the client actually sent (the policy tests
    evaluate each KMS request against the key policy and the IAM role)."""

    def hold_responses(self, *operations: str) -> None:
        with self.lock:
            self.held_responses = frozenset(operations)

    def sent(self, service: str) -> list[tuple[Call, dict[str, Any]]]:
        """The JSON requests of one service (KMS, CloudTrail speak JSON 1.1), decoded, in arrival order."""
        with self.lock:
            found = [(call, body) for call, body in self.requests if call.service == service]
        return [(call, json.loads(body or b"{}")) for call, body in found]

    def watch(self, region: str, operation: str, count: int = 1) -> threading.Event:
        """An event set once `count` requests of this region and operation have been answered by the emulator."""
        event = threading.Event()
        with self.lock:
            self.watches.append((region, operation, event, [count]))
        return event

    def _answered(self, call: Call) -> None:
        with self.lock:
            for region, operation, event, left in self.watches:
                if (region, operation) == (call.region, call.operation):
                    left[0] -= 1
                    if left[0] <= 0:
                        event.set()

    def hold(self, *operations: str, region: str | None = None, forward: bool = False) -> None:
        with self.lock:
            self.held_operations = frozenset(operations)
            self.held_region = region
            self.forward_held = forward

    def fail(
        self,
        region: str,
        times: int,
        operations: set[str] | None = None,
        *,
        status: int = 503,
        error_type: str = "ServiceUnavailableException",
        message: str = "injected fault",
        forward_first: bool = False,
        hang: bool = False,
        after: int = 0,
    ) -> None:
        rule = FaultRule(
            region,
            times,
            frozenset(operations) if operations else None,
            status,
            error_type,
            message,
            forward_first,
            hang,
            after,
        )
        with self.lock:
            self.rules.append(rule)

    def clear_faults(self) -> None:
        with self.lock:
            self.rules.clear()

    def operations(self) -> set[str]:
        with self.lock:
            return {call.operation for call in self.calls}

    def per_region(self) -> Counter[str]:
        with self.lock:
            return Counter(call.region for call in self.calls)

    def _should_fail(self, call: Call) -> FaultRule | None:
        with self.lock:
            self.calls.append(call)
            for rule in self.rules:
                applies = rule.operations is None or call.operation in rule.operations
                if rule.region == call.region and applies and rule.remaining > 0:
                    if rule.after > 0:
                        rule.after -= 1
                        continue
                    rule.remaining -= 1
                    self.failed.append(call)
                    return rule
        return None


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
            with proxy.lock:
                proxy.requests.append((call, body))
            if proxy.observe is not None:
                proxy.observe(call, body)
            if proxy.delay is not None:
                time.sleep(proxy.delay(call))
            held = call.operation in proxy.held_operations and proxy.held_region in (None, call.region)
            if held:
                proxy.holding.set()
                proxy.release.wait()
                if not proxy.forward_held:
                    self.close_connection = True  # no answer ever: the client sees the connection close
                    return
            rule = proxy._should_fail(call)  # records the call; a released held request is then forwarded
            if rule is not None:
                if rule.forward_first:
                    self._forward(body)  # processed by the emulator; its answer is lost
                if rule.hang:
                    proxy.release.wait()
                    return
                payload = json.dumps({"__type": rule.error_type, "message": rule.message}).encode()
                self.send_response(rule.status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("x-amzn-ErrorType", rule.error_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            status, headers, data = self._forward(body)
            if call.operation in proxy.held_responses:
                # Processed by the emulator; the answer is held, then lost (the connection closes).
                proxy.holding.set()
                proxy.release.wait()
                self.close_connection = True
                return
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            proxy._answered(call)

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            connection = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port, timeout=10)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.getheaders(), response.read()
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


def fast_client_config(read_timeout: float = 5) -> botocore.config.Config:
    """One attempt, short timeouts: the retries under test are cmkctl's own, and a dead port fails at once."""
    return botocore.config.Config(
        connect_timeout=1, read_timeout=read_timeout, retries={"mode": "standard", "total_max_attempts": 1}
    )


_SESSION_LOCK = threading.Lock()


@functools.cache
def _shared_session() -> Any:
    """One session for the whole suite: it caches the service models, so new clients cost ~10 ms, not ~100 ms."""
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing"
    )


def fast_client_factory(
    endpoint_for: Callable[[str], str] | str, *, read_timeout: float = 5
) -> Callable[[str, str], Any]:
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
                    service, region_name=region, endpoint_url=route(region), config=fast_client_config(read_timeout)
                )
            return clients[(service, region)]

    return factory
