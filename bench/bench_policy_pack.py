"""Benchmark: the guardrails pack's wall time and AWS requests for a stack of growing size.

For N unrelated resources (10, 100, 1000) beside the CMK key pair, start a fresh pack (a fresh
preview), send Analyze for every resource and AnalyzeStack for all, as the engine does, against
the AWS emulator holding the deployed keys. Prints the analyzer's wall time (from the first
Analyze to the AnalyzeStack answer, pack start-up excluded and shown apart) and the AWS requests
the emulator received. The promise under test: one round of reads per region, whatever N.

Run from the repository root: `.venv/bin/python bench/bench_policy_pack.py [N ...]`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support lives in the repository

from google.protobuf import struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime.proto import analyzer_pb2

from atlassian_cmk.aws.provision import create_key_pair
from atlassian_cmk.config import parse_stack_config
from rehearsal.policy_pack_client import (
    analyze_request,
    analyzer_resource,
    describe,
    start_policy_pack,
    with_outputs,
)
from rehearsal.program_run import run_program
from tests.support.aws import FAKE_CREDENTIALS, aws_env, client_factory_for, moto_server
from tests.support.counting_proxy import counting_proxy
from tests.test_config import engine_config

SIZES = (10, 100, 1000)


def unrelated(n: int) -> list[analyzer_pb2.AnalyzerResource]:
    """N resources the pack must skip quickly: buckets with a few inputs each."""
    resources = []
    for i in range(n):
        properties = struct_pb2.Struct()
        properties.update({"bucket": f"logs-{i}", "tags": {"team": "platform"}, "forceDestroy": False})
        resources.append(
            analyzer_pb2.AnalyzerResource(
                type="aws:s3/bucket:Bucket",
                name=f"logs-{i}",
                urn=f"urn:pulumi:prod::atlassian-cmk::aws:s3/bucket:Bucket::logs-{i}",
                properties=properties,
            )
        )
    return resources


def main(sizes: tuple[int, ...]) -> int:
    print(f"{'N':>6} {'resources':>10} {'start s':>8} {'analyze s':>10} {'per resource ms':>16} {'AWS requests':>13}")
    with moto_server() as endpoint:
        os.environ.update(FAKE_CREDENTIALS)
        # The steady state: keys deployed and enrolled, so the pack reads them by ARN and checks the alias.
        keys = create_key_pair(parse_stack_config(engine_config()), "prod", client_factory=client_factory_for(endpoint))
        arns = {key.region: key.arn for key in keys}
        raw = engine_config(enrolledKeys=arns)
        run = run_program(raw)
        assert run.error is None, run.error
        outputs = {f"cmk-{region}": {"arn": arn} for region, arn in arns.items()}
        stack = [
            analyzer_resource(r, properties=with_outputs(r.outputs, outputs[r.name]) if r.name in outputs else None)
            for r in run.resources
        ]
        for n in sizes:
            extra = unrelated(n)
            with counting_proxy(endpoint) as proxy, start_policy_pack(raw, aws_env(proxy.url)) as client:
                started = time.perf_counter()
                client.configure()  # waits for the pack's port: start-up time
                ready = time.perf_counter()
                violations = []
                for resource in run.resources:
                    violations += client.analyze(analyze_request(resource))
                for other in extra:
                    violations += client.analyze(
                        analyzer_pb2.AnalyzeRequest(
                            type=other.type, name=other.name, urn=other.urn, properties=other.properties
                        )
                    )
                violations += client.analyze_stack([*stack, *extra])
                done = time.perf_counter()
                by_region = proxy.by_region()
            if violations:
                print(describe(violations), file=sys.stderr)
                return 1
            total = len(run.resources) + n
            regions = ", ".join(f"{region}: {count}" for region, count in sorted(by_region.items()))
            print(
                f"{n:>6} {total:>10} {ready - started:>8.2f} {done - ready:>10.2f} "
                f"{(done - ready) / total * 1000:>16.2f} {sum(by_region.values()):>5} ({regions})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(tuple(int(a) for a in sys.argv[1:]) or SIZES))
