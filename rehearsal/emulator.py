"""moto's AWS emulator as a real HTTP server on a free loopback port, for the demo and the tests.

Everything boto3 talks HTTP to it (never in-process patches), so retries, timeouts and error
parsing are botocore's own. No credentials are needed: the emulator accepts any.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def moto_server() -> Iterator[str]:
    """Start the emulator on 127.0.0.1 with a free port; yield its URL; stop it, even on Ctrl-C."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def emulator_env(endpoint: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment whose AWS settings all point at the emulator (none of the caller's leak in)."""
    env = {k: v for k, v in (base if base is not None else os.environ).items() if not k.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS)
    env["AWS_ENDPOINT_URL"] = endpoint
    return env
