"""Fixtures shared by the whole suite: the AWS emulator (one per session, reset per test)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from atlassian_cmk.aws import cloudtrail
from rehearsal.emulator import event_history
from tests.support.aws import FAKE_CREDENTIALS, client_factory_for, moto_server, reset_moto
from tests.support.bytecode import compile_project


def pytest_configure(config: pytest.Config) -> None:
    """Compile the project's modules before any test, once: in the controller, before xdist starts workers."""
    if not hasattr(config, "workerinput"):
        compile_project()


@pytest.fixture(autouse=True)
def unpaced_cloudtrail(monkeypatch: pytest.MonkeyPatch) -> None:
    """CloudTrail lookups in this process are not paced (stubbed, refused or the emulator's, never AWS's rate limit):
    the pacer's own behaviour is tested with a fake clock (tests/test_reencryption_activity.py)."""
    monkeypatch.setattr(cloudtrail, "PACER", cloudtrail.RequestPacer(clock=lambda: 0.0, sleep=lambda _: None))


@pytest.fixture(scope="session")
def moto_endpoint_session() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def moto_endpoint(moto_endpoint_session: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The emulator's URL, emptied for this test, with boto3's environment pointed at it."""
    reset_moto(moto_endpoint_session)
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint_session)
    yield moto_endpoint_session


@pytest.fixture
def aws(moto_endpoint: str) -> Any:
    """A ClientFactory for the emulator: aws("kms", "us-east-1")."""
    return client_factory_for(moto_endpoint)


@pytest.fixture
def cloudtrail_not_delivered(moto_endpoint: str) -> Iterator[str]:
    """The emulator, its CloudTrail events not delivered yet (AWS: "within an average of about 5 minutes ...
    not guaranteed"): LookupEvents answers, without this test's calls. The emulator's URL."""
    history = event_history(moto_endpoint)
    history.delivery_delay = timedelta(hours=1)
    try:
        yield moto_endpoint
    finally:
        history.delivery_delay = timedelta(0)
