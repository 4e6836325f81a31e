"""Benchmark: what one policy pack process costs the suite, started as the Pulumi CLI starts it.

Figures, not assertions. The suite starts about 120 pack processes (one per preview it rehearses),
so their start-up is most of its CPU time. For each case the pack is started REPEAT times with the
CLI's command (`start_policy_pack`) and these are printed (medians):
- `port s`: wall time until the pack prints its port (Python, pulumi_policy, the guardrails imported);
- `cpu s`: the pack process's user+sys CPU (from /proc/<pid>/stat) once it has answered.
Cases: `offline` (every live read off, AWS on a closed port: the suite's pooled packs) and `live`
(a preview reading two deployed keys from the emulator). On a shared machine compare CPU, not wall.

Run from the repository root: `.venv/bin/python bench/bench_pack_start.py [REPEAT]`.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support lives in the repository

from atlassian_cmk.aws.provision import create_key_pair
from atlassian_cmk.config import parse_stack_config
from rehearsal.policy_pack_client import analyze_program_run, start_policy_pack
from rehearsal.program_run import run_program
from tests.support.aws import FAKE_CREDENTIALS, aws_env, client_factory_for, moto_server
from tests.support.loopback import closed_port_url
from tests.support.pack_pool import env_without_aws
from tests.test_config import engine_config
from tests.test_policy_pack import OFFLINE

REPEAT = 5
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """user + sys CPU of a live process (fields 14 and 15 of /proc/<pid>/stat, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def measure(raw: dict[str, Any], env: dict[str, str], policy_config: dict[str, Any] | None) -> tuple[float, float]:
    run = run_program(raw)
    assert run.error is None, run.error
    with start_policy_pack(raw, env) as client:
        started = time.perf_counter()
        client.stub  # noqa: B018 - waits for the port
        port = time.perf_counter() - started
        client.configure(policy_config)
        analyze_program_run(client, run)
        return port, cpu_seconds(client.process.pid)


def main(repeat: int) -> int:
    print(f"{'case':<8} {'port s':>7} {'cpu s':>6}   (median of {repeat}; pid CPU after the analysis)")
    with moto_server() as endpoint:
        os.environ.update(FAKE_CREDENTIALS)
        keys = create_key_pair(parse_stack_config(engine_config()), "prod", client_factory=client_factory_for(endpoint))
        enrolled = engine_config(enrolledKeys={key.region: key.arn for key in keys})
        cases = {
            "offline": (engine_config(), {**env_without_aws(), "AWS_ENDPOINT_URL": closed_port_url()}, OFFLINE),
            "live": (enrolled, aws_env(endpoint), None),
        }
        for name, (raw, env, policy_config) in cases.items():
            figures = [measure(raw, env, policy_config) for _ in range(repeat)]
            port = statistics.median(f[0] for f in figures)
            cpu = statistics.median(f[1] for f in figures)
            print(f"{name:<8} {port:7.2f} {cpu:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else REPEAT))
