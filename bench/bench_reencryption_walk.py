"""Benchmark: the re-encryption walk of `make demo` (rehearsal/reencryption.py), step by step.

Figures, not assertions: the wall time of each step (a pull request judged by the program under
mocks and the policy pack over gRPC, then applied to the emulator; or a cmkctl command), the total,
and the machine's load average, since the pack processes compete for the cores with whatever else
runs. What `make demo` adds to its time is this walk.

Run: .venv/bin/python bench/bench_reencryption_walk.py   (or `make bench`)
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atlassian_cmk.aws.kms_reads import shared_client_factory  # noqa: E402
from rehearsal.emulator import emulator_env, moto_server  # noqa: E402
from rehearsal.reencryption import rehearse_reencryption  # noqa: E402


def main() -> int:
    marks: list[tuple[str, float]] = []
    started = time.perf_counter()
    last = started

    def say(line: str) -> None:
        nonlocal last
        if line.startswith("\n--- "):
            now = time.perf_counter()
            marks.append((line.strip()[4:], now - last))
            last = now

    with moto_server() as endpoint, tempfile.TemporaryDirectory(prefix="cmk-bench-walk-") as folder:
        os.environ.update(emulator_env(endpoint))
        project = Path(folder)
        (project / "Pulumi.prod.yaml").write_text((ROOT / "Pulumi.prod.yaml").read_text())
        with contextlib.redirect_stdout(io.StringIO()):  # the cmkctl commands' own output
            result = rehearse_reencryption(project, endpoint=endpoint, client_factory=shared_client_factory(), say=say)
    total = time.perf_counter() - started
    print(f"re-encryption walk: {'passed' if result.passed else 'FAILED'}, {len(marks)} steps")
    for title, seconds in marks:
        print(f"  {seconds:6.2f} s  {title}")
    print(f"  {total:6.2f} s  total (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
