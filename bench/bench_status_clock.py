"""Benchmark: what cross-checking the revocation clock against CloudTrail costs `cmkctl status`.

Figures, not assertions. A revoked two-region stack in moto (real HTTP on 127.0.0.1); CloudTrail is
the real botocore client answered by `botocore.stub.Stubber` (moto has no LookupEvents), paced by the
real `RequestPacer` (2 requests per second per region: it sleeps). Cases:

- before: the old rule (CloudTrail only for a disabled key WITHOUT revoked-at): no lookup here;
- usual: one page per event name (EnableKey, DisableKey): 2 requests per region, regions at once;
- worst bounded: EnableKey found on its 3rd page, DisableKey read to MAX_PAGES: 6 requests per region.

Run: .venv/bin/python bench/bench_status_clock.py [--trials N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.stub import Stubber

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atlassian_cmk.aws import cloudtrail  # noqa: E402
from atlassian_cmk.cli.main import Runtime, main  # noqa: E402
from atlassian_cmk.naming import TAG_REVOKED_AT  # noqa: E402
from rehearsal.emulator import FAKE_CREDENTIALS, moto_server  # noqa: E402
from tests.support.cmkctl import REGIONS, live, provision, runtime, stack_dir  # noqa: E402
from tests.support.faults import fast_client_factory  # noqa: E402

T0 = datetime(2031, 3, 1, 12, tzinfo=UTC)


def _page(arn: str, times: list[datetime], token: str | None) -> dict[str, Any]:
    events = [
        {"EventId": str(i), "EventTime": t, "Resources": [{"ResourceType": "AWS::KMS::Key", "ResourceName": arn}]}
        for i, t in enumerate(times)
    ]
    return {"Events": events, **({"NextToken": token} if token else {})}


def trail_clients(endpoint: str, worst: bool) -> dict[str, Any]:
    clients = {}
    other = "arn:aws:kms:us-east-1:123456789012:key/other"
    for region in REGIONS:
        arn = live(endpoint, region).arn
        client = boto3.client("cloudtrail", region_name=region, aws_access_key_id="x", aws_secret_access_key="x")
        stub = Stubber(client)
        if worst:
            stub.add_response("lookup_events", _page(other, [T0] * 50, "a"))
            stub.add_response("lookup_events", _page(other, [T0] * 50, "b"))
            stub.add_response("lookup_events", _page(arn, [T0 - timedelta(days=5)], "c"))
            for page in range(cloudtrail.MAX_PAGES):
                stub.add_response("lookup_events", _page(other, [T0] * 50, f"d{page}"))
        else:
            stub.add_response("lookup_events", _page(arn, [], None))
            stub.add_response("lookup_events", _page(arn, [T0 + timedelta(seconds=2)], None))
        stub.activate()
        clients[region] = client
    return clients


def timed_status(project: Path, endpoint: str, case: str) -> float:
    kms = fast_client_factory(endpoint)
    clients = trail_clients(endpoint, worst=case == "worst bounded")  # the header resolves every service
    rt = Runtime(
        client_factory=lambda service, region: clients[region] if service == "cloudtrail" else kms(service, region),
        now=lambda: T0 + timedelta(days=1),
    )
    cloudtrail.PACER = cloudtrail.RequestPacer()  # a fresh budget per run, as a new process has
    original = cloudtrail.needs_cloudtrail
    if case == "before":
        # The rule before the cross-check: a key with a revoked-at tag cost no lookup.
        cloudtrail.needs_cloudtrail = lambda key: not key.enabled and not key.tags.get(TAG_REVOKED_AT)
    try:
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            main(["status", "--project-dir", str(project), "--json"], runtime=rt)
        return time.perf_counter() - start
    finally:
        cloudtrail.needs_cloudtrail = original


def main_bench() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    trials = parser.parse_args().trials
    os.environ.update(FAKE_CREDENTIALS)
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as tmp:
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        project = stack_dir(Path(tmp))
        provision(project, endpoint)
        args = ["revoke", "--project-dir", str(project), "--reason", "Bench", "--ticket", "B-1", "--yes"]
        with contextlib.redirect_stdout(io.StringIO()):
            main(args, runtime=runtime(endpoint, now=lambda: T0))
        assert all(not live(endpoint, r).enabled for r in REGIONS)
        print(f"cmkctl status --json, revoked {len(REGIONS)}-region stack, {trials} trials (median, min)")
        for case in ("before", "usual", "worst bounded"):
            times = [timed_status(project, endpoint, case) for _ in range(trials)]
            print(f"  {case:<14} {statistics.median(times):6.3f} s  {min(times):6.3f} s")


if __name__ == "__main__":
    main_bench()
