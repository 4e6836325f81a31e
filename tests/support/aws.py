"""moto's real HTTP server on a free loopback port, and clients pointed at it.

Everything boto3 in the suite talks HTTP to this server, never to in-process patches, so the
retries, timeouts and error parsing under test are botocore's own.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3

from atlassian_cmk.aws.kms_reads import shared_client_factory
from rehearsal.emulator import FAKE_CREDENTIALS, emulator_env, moto_server

__all__ = ["FAKE_CREDENTIALS", "aws_env", "client_factory_for", "moto_server", "reset_moto"]


def aws_env(endpoint: str) -> dict[str, str]:
    """The environment a child process (the policy pack, cmkctl) needs to reach the emulator."""
    return emulator_env(endpoint)


def client_factory_for(endpoint: str) -> Any:
    """A ClientFactory bound to the emulator, for in-process calls in tests: the product's shared
    factory (one client per service and region) with test credentials and the emulator's URL.

    Each call makes new clients (a test's Stubber or event handlers stay its own) from one session
    per process: the session caches the endpoint rules and service models, so a client costs ~5 ms
    of CPU, not the ~90 ms of a fresh session (about 400 tests ask for one)."""
    return shared_client_factory(session=_test_session(), endpoint_url=endpoint)


@functools.cache
def _test_session() -> boto3.session.Session:
    """The suite's session for `client_factory_for`: fixed test credentials, so one serves every test."""
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing"
    )


def reset_moto(endpoint: str) -> None:
    """Forget every resource, so tests sharing one server start from nothing."""
    import urllib.request

    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()
