"""Benchmark: what the emulator's CloudTrail event history (rehearsal/event_history.py) costs a KMS call.

Figures, not assertions. The same process runs the client and the server, so its CPU time covers both;
the client's share is the same in both cases, and the difference is the emulator's own layer: the recording,
less what its dispatcher saves (it remembers each host's backend and each response class's actions, which
moto's server recomputes per request: rehearsal/emulator.py). Cases, CALLS
DescribeKey calls each (median of ROUNDS rounds, CPU ms per call):
- `moto`: moto's own ThreadedMotoServer, nothing recorded;
- `recorded`: `rehearsal.emulator.moto_server()`, every call recorded as a CloudTrail event (and dispatched
  through the remembering dispatcher).
Then one LookupEvents by ResourceName over the recorded history (CPU ms per lookup, 50 events a page).

Run from the repository root: `.venv/bin/python bench/bench_event_history.py [CALLS]`.
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from rehearsal.emulator import moto_server

CALLS = 300
ROUNDS = 3


@contextmanager
def plain_moto() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _clients(endpoint: str) -> tuple[Any, Any]:
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    return (
        session.client("kms", "us-east-1", endpoint_url=endpoint),
        session.client("cloudtrail", "us-east-1", endpoint_url=endpoint),
    )


def per_call_ms(server: Callable[[], AbstractContextManager[str]], calls: int) -> tuple[float, float | None]:
    rounds, lookup = [], None
    with server() as endpoint:
        kms, cloudtrail = _clients(endpoint)
        arn = kms.create_key()["KeyMetadata"]["Arn"]
        kms.describe_key(KeyId=arn)  # warm up both sides
        for _ in range(ROUNDS):
            start = time.process_time()
            for _ in range(calls):
                kms.describe_key(KeyId=arn)
            rounds.append((time.process_time() - start) * 1000 / calls)
        if server is moto_server:
            start = time.process_time()
            for _ in range(20):
                cloudtrail.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": arn}])
            lookup = (time.process_time() - start) * 1000 / 20
    return statistics.median(rounds), lookup


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else CALLS
    for name in ("werkzeug", "moto"):  # moto_server() silences them too: the same work in both cases
        logging.getLogger(name).setLevel(logging.CRITICAL)
    plain, _ = per_call_ms(plain_moto, calls)
    recorded, lookup = per_call_ms(moto_server, calls)
    print(f"DescribeKey, {calls} calls x {ROUNDS} rounds, CPU ms per call (client + server, one process):")
    print(f"  moto             {plain:6.2f}")
    print(f"  recorded         {recorded:6.2f}  (+{recorded - plain:.2f} ms, {100 * (recorded - plain) / plain:+.0f}%)")
    print(f"LookupEvents by ResourceName over {calls * ROUNDS + 2} events: {lookup:.2f} CPU ms per lookup")


if __name__ == "__main__":
    main()
