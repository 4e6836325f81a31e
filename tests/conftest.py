"""Fixtures shared by the whole suite: the AWS emulator (one per session, reset per test) and the
offline policy pack processes (one pool per session)."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from atlassian_cmk.aws import cloudtrail
from rehearsal.emulator import event_history
from tests.support.aws import FAKE_CREDENTIALS, client_factory_for, moto_server, reset_moto
from tests.support.bytecode import compile_project
from tests.support.module_order import MODULE_SECONDS, longest_first, merged, module_of
from tests.support.pack_pool import PackPool


def pytest_configure(config: pytest.Config) -> None:
    """Compile the project's modules before any test, once: in the controller, before xdist starts workers."""
    if not hasattr(config, "workerinput"):
        compile_project()


# ----------------------------------------------------------------------------- longest modules first
# (tests/support/module_order.py says why; `make unit` passes --no-loadscope-reorder so xdist keeps this order)

_module_seconds: defaultdict[str, float] = defaultdict(float)
"""Seconds of each module's tests (setup, call, teardown) in this run, summed in the controller."""


def _last_module_seconds(config: pytest.Config) -> dict[str, float]:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return dict(workerinput.get(MODULE_SECONDS, {}))
    cache = getattr(config, "cache", None)  # absent with -p no:cacheprovider
    return dict(cache.get(MODULE_SECONDS, {})) if cache is not None else {}


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist (controller): give each worker the controller's figures, so every worker collects in one order."""
    node.workerinput[MODULE_SECONDS] = _last_module_seconds(node.config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    order = longest_first([item.nodeid for item in items], _last_module_seconds(config))
    items[:] = [items[i] for i in order]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _module_seconds[module_of(report.nodeid)] += report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    cache = getattr(session.config, "cache", None)
    if hasattr(session.config, "workerinput") or cache is None or not _module_seconds:
        return  # a worker's reports reach the controller, which keeps the figures
    cache.set(MODULE_SECONDS, merged(cache.get(MODULE_SECONDS, {}), _module_seconds))


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


@pytest.fixture(scope="session")
def pack_pool() -> Iterator[PackPool]:
    """Offline pack processes shared by every test module this pytest process (xdist worker) runs,
    one per (stack config, stack, project): a pack costs ~0.5 s of CPU to start (bench/bench_pack_start.py).
    Call `configure` on a process before analysing (tests/support/pack_pool.py says why that is faithful);
    a test that needs live reads starts its own pack (`start_policy_pack`), as each preview does."""
    with PackPool() as pool:
        yield pool


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
