"""moto's real HTTP server on a free loopback port, and clients pointed at it.

Everything boto3 in the suite talks HTTP to this server, never to in-process patches, so the
retries, timeouts and error parsing under test are botocore's own.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from atlassian_cmk.live_state import client_config

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def moto_server() -> Iterator[str]:
    """Start the emulator on 127.0.0.1 with a free port; yield its URL; stop it."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def aws_env(endpoint: str) -> dict[str, str]:
    """The environment a child process (the policy pack, cmkctl) needs to reach the emulator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS)
    env["AWS_ENDPOINT_URL"] = endpoint
    return env


def client_factory_for(endpoint: str) -> Any:
    """A ClientFactory bound to the emulator, for in-process calls in tests."""

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing"
    )
    clients: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def factory(service: str, region: str) -> Any:
        # One client per (service, region), as the product's shared factory does: building a client
        # costs about 100 ms of model loading, more than the emulator's round trip.
        with lock:
            if (service, region) not in clients:
                clients[(service, region)] = session.client(
                    service, region_name=region, endpoint_url=endpoint, config=client_config()
                )
            return clients[(service, region)]

    return factory


def reset_moto(endpoint: str) -> None:
    """Forget every resource, so tests sharing one server start from nothing."""
    import urllib.request

    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()
