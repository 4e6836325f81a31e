"""moto's real HTTP server on a free loopback port, and clients pointed at it.

Everything boto3 in the suite talks HTTP to this server, never to in-process patches, so the
retries, timeouts and error parsing under test are botocore's own.
"""

from __future__ import annotations

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
    factory (one client per service and region) with test credentials and the emulator's URL."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing"
    )
    return shared_client_factory(session=session, endpoint_url=endpoint)


def reset_moto(endpoint: str) -> None:
    """Forget every resource, so tests sharing one server start from nothing."""
    import urllib.request

    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()
