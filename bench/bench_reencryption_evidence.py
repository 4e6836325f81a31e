"""Benchmark: what reading CloudTrail's evidence of re-encryption costs in wall time.

Figures, not assertions. LookupEvents allows 2 requests per second per account and region, and
`atlassian_cmk.aws.cloudtrail.RequestPacer` keeps to it, so the cost is the pacing, not the round
trips: the CloudTrail clients here are real botocore clients answered by `botocore.stub.Stubber`
(no network), and the pacer is the real one (it sleeps). Three cases per realm (one and two
regions, read at once): the usual (each key's first page answers: 2 requests per region), the
worst bounded case (every key scanned to ACTIVITY_MAX_PAGES pages) and one region denied.

Run: .venv/bin/python bench/bench_reencryption_evidence.py   (or `make bench`)
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.stub import Stubber

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atlassian_cmk.aws.cloudtrail import ACTIVITY_MAX_PAGES, RequestPacer, read_reencryption_activity  # noqa: E402
from atlassian_cmk.config import parse_stack_config  # noqa: E402
from tests.test_config import engine_config  # noqa: E402

NOW = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)
REALMS = {"au": ("ap-southeast-2",), "us": ("us-east-1", "us-west-2")}


def arn(region: str, digit: str) -> str:
    return f"arn:aws:kms:{region}:123456789012:key/{digit * 8}-1111-2222-3333-444444444444"


def run(realm: str, pages_per_key: int, denied: bool) -> tuple[float, int]:
    regions = REALMS[realm]
    config = parse_stack_config(
        engine_config(
            realm=realm,
            reencryption={"status": "in-progress", "ticket": "PS-1"},
            enrolledKeys={r: arn(r, "a") for r in regions},
            nextKeys={r: arn(r, "b") for r in regions},
        )
    )
    clients: dict[str, Any] = {}
    requests = 0
    for index, region in enumerate(regions):
        client = boto3.client("cloudtrail", region_name=region, aws_access_key_id="x", aws_secret_access_key="x")
        stub = Stubber(client)
        if denied and index == 0:
            stub.add_client_error("lookup_events", service_error_code="AccessDeniedException")
            stub.add_client_error("lookup_events", service_error_code="AccessDeniedException")
            requests += 2
        else:
            for _ in range(2):  # old key, new key
                for page in range(pages_per_key):
                    more = page < pages_per_key - 1
                    stub.add_response("lookup_events", {"Events": [], **({"NextToken": "t"} if more else {})})
                    requests += 1
        stub.activate()
        clients[region] = client
    start = time.perf_counter()
    read_reencryption_activity(config, lambda service, region: clients[region], now=NOW, pacer=RequestPacer())
    return time.perf_counter() - start, requests


def main() -> None:
    print("CloudTrail evidence of re-encryption: wall time with the real pacer (2 requests/s per region)")
    print(f"{'realm':<6} {'case':<28} {'requests':>8} {'wall s':>7}")
    for realm in REALMS:
        for case, pages, denied in (
            ("first page answers", 1, False),
            (f"bounded scan ({ACTIVITY_MAX_PAGES} pages/key)", ACTIVITY_MAX_PAGES, False),
            ("one region denied", 1, True),
        ):
            wall, requests = run(realm, pages, denied)
            print(f"{realm:<6} {case:<28} {requests:>8} {wall:>7.2f}")


if __name__ == "__main__":
    main()
