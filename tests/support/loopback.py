"""Small HTTP servers on free loopback ports for the suite's proxies, and a port nobody listens on."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    request_queue_size = 128
    """socketserver's listen backlog is 5: a cmkctl round sends up to ~17 requests at once (every generation's
    keys, policies and aliases), the kernel drops the connections beyond the backlog until the accept loop
    catches up, and the client's SYN is retried after 1 s, past the tests' 1 s connect timeout ("Connect
    timeout" under load). AWS's endpoints have no such limit; werkzeug (the emulator) listens with 128."""


@contextmanager
def serve_on_loopback(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on 127.0.0.1 with a free port; yield the URL; shut down and join afterwards.

    TCP_NODELAY on every connection (socketserver.StreamRequestHandler.disable_nagle_algorithm): the
    handler writes the status line and headers, then the body, in separate send() calls (its wfile is
    unbuffered), and with Nagle's algorithm the body waits for the client's delayed ACK of the headers,
    about 40 ms per response on Linux: a drill through the recording proxy took 9.5 s instead of 2.1 s.
    AWS's endpoints answer in one response; this keeps the proxies from adding a wait AWS does not have.
    """
    nodelay = type(handler.__name__, (handler,), {"disable_nagle_algorithm": True})
    server = _Server(("127.0.0.1", 0), nodelay)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port_url() -> str:
    """An endpoint nothing listens on: a free port, bound and released (connection refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
