"""Benchmark: cmkctl status, revoke and restore with a fixed latency on every AWS call.

Figures, not assertions. Each AWS request sleeps LATENCY before it is sent (a botocore
`before-send` hook), so wall time is dominated by round trips, as against real AWS. Every
command runs twice: regions concurrently (what cmkctl does) and one region after another
(`RetryPolicy(max_workers=1)`, a baseline that exists only for this comparison), on a
one-region realm (au) and a two-region realm (us). The goal: adding a region costs no extra
round trip, so the concurrent time stays flat while the sequential time grows.

Run: .venv/bin/python bench/bench_cmkctl.py   (or `make bench`)
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atlassian_cmk.aws.kms_actions import RetryPolicy  # noqa: E402
from atlassian_cmk.aws.kms_reads import ClientFactory, client_config  # noqa: E402
from atlassian_cmk.aws.provision import create_key_pair  # noqa: E402
from atlassian_cmk.cli.main import Runtime, main  # noqa: E402
from atlassian_cmk.stack_file import load_stack_config  # noqa: E402
from rehearsal.emulator import moto_server  # noqa: E402

LATENCY_S = 0.05
STACK = "prod"


class LatencyClients:
    """A ClientFactory whose clients wait LATENCY_S before every request, and count requests per region."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench")
        self.lock = threading.Lock()
        self.clients: dict[tuple[str, str], Any] = {}
        self.requests: Counter[str] = Counter()

    def factory(self) -> ClientFactory:
        def make(service: str, region: str) -> Any:
            with self.lock:
                if (service, region) not in self.clients:
                    client = self.session.client(
                        service, region_name=region, endpoint_url=self.endpoint, config=client_config()
                    )
                    client.meta.events.register("before-send", self._delay(region))
                    self.clients[(service, region)] = client
                return self.clients[(service, region)]

        return make

    def _delay(self, region: str) -> Any:
        def hook(**_: Any) -> None:
            with self.lock:
                self.requests[region] += 1
            time.sleep(LATENCY_S)  # the bench may sleep; the tests never do

        return hook


def stack_project(base: Path, realm: str) -> Path:
    project = base / realm
    project.mkdir()
    text = (ROOT / "Pulumi.prod.yaml").read_text(encoding="utf-8")
    (project / "Pulumi.prod.yaml").write_text(text.replace("atlassian-cmk:realm: us", f"atlassian-cmk:realm: {realm}"))
    return project


ROUNDS = 5
"""Each command is timed this many times per mode; the median is printed (moto's own time varies)."""


def timed(clients: LatencyClients, argv: list[str], workers: int | None) -> tuple[float, int, Counter[str]]:
    clients.requests.clear()
    runtime = Runtime(
        client_factory=clients.factory(),
        policy=RetryPolicy(backoff_s=0, verify_interval_s=0, max_workers=workers),
    )
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv, runtime=runtime)
    elapsed = time.perf_counter() - start
    return elapsed, code, Counter(clients.requests)


def measure(clients: LatencyClients, commands: dict[str, list[str]], workers: int | None) -> dict[str, Any]:
    """Median wall time per command over ROUNDS cycles of status, revoke, restore (one warm-up cycle first)."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    last: dict[str, tuple[int, Counter[str]]] = {}
    for cycle in range(ROUNDS + 1):
        for name, argv in commands.items():
            elapsed, code, per_region = timed(clients, argv, workers)
            if cycle:  # cycle 0 creates the clients: not what a region costs
                times[name].append(elapsed)
                last[name] = (code, per_region)
    return {name: (statistics.median(times[name]), *last[name]) for name in commands}


def main_bench() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    # The emulator (moto plus CloudTrail's event history: restore and status read LookupEvents).
    with moto_server() as endpoint:
        print(
            f"cmkctl benchmark: {LATENCY_S * 1000:.0f} ms injected before every AWS request; median of {ROUNDS} runs "
            f"(the emulator on {endpoint})"
        )
        print(f"{'realm':<6} {'command':<8} {'concurrent':>11} {'sequential':>11} {'ratio':>6}  requests per region")
        with tempfile.TemporaryDirectory() as temp:
            for realm in ("au", "us"):
                project = stack_project(Path(temp), realm)
                config = load_stack_config(project, STACK)
                create_key_pair(config, STACK, client_factory=LatencyClients(endpoint).factory())
                at = ["--project-dir", str(project)]
                commands = {
                    "status": ["status", *at],
                    "revoke": ["revoke", *at, "--reason", "benchmark", "--ticket", "BENCH-1", "--yes"],
                    "restore": ["restore", *at, "--ticket", "BENCH-1", "--yes"],
                }
                clients = LatencyClients(endpoint)
                concurrent = measure(clients, commands, None)
                sequential = measure(clients, commands, 1)
                for name in commands:
                    fast, code, per_region = concurrent[name]
                    slow, _, _ = sequential[name]
                    assert code == 0, f"{name} exited {code}"
                    spread = ", ".join(f"{region} {count}" for region, count in sorted(per_region.items()))
                    figures = f"{fast * 1000:>9.0f}ms {slow * 1000:>9.0f}ms {fast / slow:>6.2f}"
                    print(f"{realm:<6} {name:<8} {figures}  {spread}")
    print(
        "ratio = concurrent / sequential wall time. Requests per region include GetCallerIdentity in the first "
        "region (revoke, restore), sent alongside the reads, and revoke's one-request re-read of the records."
    )


if __name__ == "__main__":
    main_bench()
