"""Benchmark: cmkctl revoke/restore/status against the peer a user would otherwise run, the AWS CLI.

Figures, not assertions. Both run as the operator runs them (a fresh process each), against the
same emulator (moto's server) behind the same latency proxy: every AWS request waits LATENCY_S
before it is forwarded, as a round trip to a real region would. The proxy timestamps every
request, so "time to DisableKey in every region" is measured where AWS would see it: from the
start of the command to the arrival of the last region's DisableKey.

The peer: `aws kms disable-key --region R --key-id K` once per region, one after another (and
`enable-key` for restore, `describe-key` for status), the AWS CLI v1 from PyPI. The AWS CLI pins
its own botocore, which differs from the product's, so it lives in its own venv, a bench-only
dependency, never in requirements.txt:

    python3 -m venv .venv-awscli && .venv-awscli/bin/pip install awscli==1.46.2   (or `make bench-awscli`)

Run: .venv/bin/python bench/bench_vs_awscli.py [--trials N]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atlassian_cmk.aws.kms_reads import client_config  # noqa: E402
from atlassian_cmk.aws.provision import create_key_pair  # noqa: E402
from atlassian_cmk.stack_file import load_stack_config  # noqa: E402

LATENCY_S = 0.05
STACK = "prod"
REGIONS = ("us-east-1", "us-west-2")
AWS_CLI = ROOT / ".venv-awscli" / "bin" / "aws"
CMKCTL = ROOT / ".venv" / "bin" / "cmkctl"
ENV = {
    **os.environ,
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "NO_COLOR": "1",
}


@dataclass
class Proxy:
    """Forwards to moto after LATENCY_S; records (arrival time, region, operation) of every request."""

    upstream: str
    seen: list[tuple[float, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self
        up = urllib.parse.urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(LATENCY_S)  # the injected round-trip latency (what is measured), not synchronisation
                auth = self.headers.get("Authorization", "")
                region = auth.split("/")[2] if auth.count("/") >= 3 else "?"
                target = str(self.headers.get("X-Amz-Target") or "")
                operation = (
                    target.rsplit(".", 1)[-1]
                    if target
                    else urllib.parse.parse_qs(body.decode()).get("Action", ["?"])[0]
                )
                with proxy.lock:
                    proxy.seen.append((time.monotonic(), region, operation))
                connection = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "host")}
                connection.request("POST", self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                connection.close()

        return Handler


@contextmanager
def serving(proxy: Proxy) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), proxy.handler())
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=3)
    trials = parser.parse_args().trials
    if not AWS_CLI.exists():
        print(f"no AWS CLI at {AWS_CLI}; see this script's docstring (make bench-awscli)", file=sys.stderr)
        return 1
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    moto = f"http://127.0.0.1:{server._server.server_port}"  # type: ignore[union-attr]
    project = Path(tempfile.mkdtemp())
    shutil.copyfile(ROOT / f"Pulumi.{STACK}.yaml", project / f"Pulumi.{STACK}.yaml")
    proxy = Proxy(moto)
    results: dict[str, list[tuple[float, float | None, int, int, float | None]]] = {}
    try:
        import boto3

        session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench")

        def factory(service: str, region: str) -> Any:
            return session.client(service, region_name=region, endpoint_url=moto, config=client_config())

        created = create_key_pair(load_stack_config(project, STACK), STACK, client_factory=factory)
        keys = {k.region: k.key_id for k in created}
        # Enrolled, as an operator's stack is: cmkctl addresses the keys by ID (its fast path).
        stack_file = project / f"Pulumi.{STACK}.yaml"
        enrolled = "".join(f"    {k.region}: {k.arn}\n" for k in created)
        stack_file.write_text(stack_file.read_text() + f"  atlassian-cmk:enrolledKeys:\n{enrolled}")
        with serving(proxy) as endpoint:
            cmk = [str(CMKCTL), "--project-dir", str(project)]
            aws = [str(AWS_CLI), "kms"]

            def each_region(operation: str) -> list[list[str]]:
                return [[*aws, operation, "--region", r, "--key-id", keys[r]] for r in REGIONS]

            for _ in range(trials):
                for name, argvs in (
                    ("cmkctl status", [[*cmk, "status"]]),
                    (
                        "aws describe-key x2",
                        each_region("describe-key"),
                    ),
                    ("cmkctl revoke", [[*cmk, "revoke", "--reason", "bench", "--ticket", "B-1", "--yes"]]),
                    ("cmkctl restore", [[*cmk, "restore", "--ticket", "B-2", "--yes"]]),
                    (
                        "aws disable-key x2",
                        each_region("disable-key"),
                    ),
                    ("aws enable-key x2", each_region("enable-key")),
                ):
                    total_wall, to_change, requests, codes = 0.0, None, 0, 0
                    with proxy.lock:
                        proxy.seen.clear()
                    start = time.monotonic()
                    for argv in argvs:
                        done = subprocess.run(
                            argv, env={**ENV, "AWS_ENDPOINT_URL": endpoint}, capture_output=True, check=False
                        )
                        codes |= done.returncode
                    total_wall = time.monotonic() - start
                    with proxy.lock:
                        seen = list(proxy.seen)
                    firsts: dict[str, float] = {}
                    for at, region, operation in seen:
                        if operation in ("DisableKey", "EnableKey"):
                            firsts.setdefault(region, at)
                    on_wire = None
                    if len(firsts) == len(REGIONS):
                        to_change = max(firsts.values()) - start
                        # From the first AWS request to the last region's change: round trips only,
                        # without the interpreter's start (which both tools pay per process).
                        on_wire = max(firsts.values()) - min(at for at, _, _ in seen)
                    requests = len(seen)
                    results.setdefault(name, []).append((total_wall, to_change, requests, codes, on_wire))
    finally:
        server.stop()
    print(
        f"latency {int(LATENCY_S * 1000)} ms per AWS request, realm us ({', '.join(REGIONS)}), {trials} trials, median"
    )
    columns = f"{'wall s':>8}{'to change in all s':>20}{'first AWS request to it s':>27}{'requests':>10}{'exit':>6}"
    print(f"{'command':<22}{columns}")
    medians: dict[str, tuple[float, float | None]] = {}
    for name, rows in results.items():
        wall = statistics.median(r[0] for r in rows)
        changes = [r[1] for r in rows if r[1] is not None]
        to_change = statistics.median(changes) if changes else None
        wires = [r[4] for r in rows if r[4] is not None]
        on_wire = statistics.median(wires) if wires else None
        medians[name] = (wall, to_change)
        shown = f"{to_change:.3f}" if to_change is not None else "-"
        wire = f"{on_wire:.3f}" if on_wire is not None else "-"
        print(f"{name:<22}{wall:>8.3f}{shown:>20}{wire:>27}{rows[0][2]:>10}{rows[0][3]:>6}")
    for ours, peer in (
        ("cmkctl revoke", "aws disable-key x2"),
        ("cmkctl restore", "aws enable-key x2"),
        ("cmkctl status", "aws describe-key x2"),
    ):
        wall = medians[ours][0] / medians[peer][0]
        line = f"{ours} / {peer}: wall x{wall:.2f}"
        a, b = medians[ours][1], medians[peer][1]
        if a is not None and b is not None:
            line += f", time to change in every region x{a / b:.2f}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
