"""Fixtures shared by the whole suite: the AWS emulator (one per session, reset per test) and the
offline policy pack processes (one pool per session)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from atlassian_cmk.aws import cloudtrail
from tests.support.aws import FAKE_CREDENTIALS, client_factory_for, moto_server, reset_moto
from tests.support.bytecode import compile_project
from tests.support.pack_pool import PackPool


def pytest_configure(config: pytest.Config) -> None:
    """Compile the project's modules before any test, once: in the controller, before xdist starts workers."""
    if not hasattr(config, "workerinput"):
        compile_project()


@pytest.fixture(autouse=True)
def unpaced_cloudtrail(monkeypatch: pytest.MonkeyPatch) -> None:
    """CloudTrail lookups in this process are not paced (stubbed or refused, never AWS's rate limit):
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


@pytest.fixture(scope="session")
def pack_pool() -> Iterator[PackPool]:
    """Offline pack processes shared by every test module this pytest process (xdist worker) runs,
    one per (stack config, stack, project): a pack costs ~0.5 s of CPU to start (bench/bench_pack_start.py).
    Call `configure` on a process before analysing (tests/support/pack_pool.py says why that is faithful);
    a test that needs live reads starts its own pack (`start_policy_pack`), as each preview does."""
    with PackPool() as pool:
        yield pool
