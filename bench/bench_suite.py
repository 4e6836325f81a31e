"""Benchmark: the whole pytest suite's wall time and CPU, and what each test module costs and starts.

Figures, not assertions. Runs the suite as `make unit` does (`-n WORKERS --dist loadfile`) with the
census plugin (bench/suite_census.py) and prints, per test module (costliest CPU first): tests,
wall s (summed over its tests, on whichever worker ran it), cpu s (pytest process + reaped children),
policy packs started, cmkctl subprocesses, other subprocesses, moto servers; the totals; the TOP tests
with the most CPU and with the most wall time not spent on CPU (waiting, or crowded out); the
run's wall time, the CPU of every process it started (getrusage of children) and the load average
before and after (other engineers share this machine: compare CPU, and wall only when idle).

Run from the repository root: `.venv/bin/python bench/bench_suite.py [WORKERS] [pytest args...]`
(WORKERS defaults to 2; 0 runs in one process).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = 15
COLUMNS = ("tests", "wall s", "cpu s", "packs", "cmkctl", "other processes", "moto servers")


def main(argv: list[str]) -> int:
    workers = argv[0] if argv else "2"
    extra = argv[1:]
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "SUITE_CENSUS_DIR": folder}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "bench.suite_census", "-n", workers]
        if workers != "0":
            command += ["--dist", "loadfile", "--no-loadscope-reorder"]
        load_before = os.getloadavg()
        started = time.perf_counter()
        result = subprocess.run([*command, *extra], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_after = os.getloadavg()
        totals: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
        tests: dict[str, list[float]] = {}
        for path in Path(folder).glob("*.json"):
            census = json.loads(path.read_text())
            tests.update(census["tests"])
            for module, figures in census["modules"].items():
                for name, value in figures.items():
                    totals[module][name] += value
    lines = result.stdout.strip().splitlines()
    print(
        "\n".join([line for line in lines if line.startswith(("FAILED", "ERROR"))] + lines[-1:])
        or result.stderr[-2000:]
    )
    width = max((len(m) for m in totals), default=10)
    print(f"{'module':<{width}} " + " ".join(f"{c.split()[0]:>7}" for c in COLUMNS))
    for module in sorted(totals, key=lambda m: -totals[m]["cpu s"]):
        row = totals[module]
        print(f"{module:<{width}} " + " ".join(_cell(row.get(c, 0.0)) for c in COLUMNS))
    print(f"{'(total)':<{width}} " + " ".join(_cell(sum(r.get(c, 0.0) for r in totals.values())) for c in COLUMNS))
    for title, column in (("cpu s", 1), ("wall s - cpu s (waiting, or crowded out)", 0)):
        figure = {n: t[1] if column else t[0] - t[1] for n, t in tests.items()}
        print(f"\nthe {TOP} tests with the most {title}:")
        for nodeid in sorted(figure, key=lambda n: -figure[n])[:TOP]:
            print(f"  {figure[nodeid]:6.2f}  {nodeid}")
    print(
        f"pytest -n {workers}: wall {wall:.1f} s, cpu {usage.ru_utime + usage.ru_stime:.1f} s"
        " (user+sys of every process it started);"
        f" load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; exit {result.returncode}"
    )
    return result.returncode


def _cell(value: float) -> str:
    return f"{value:>7.1f}" if value != int(value) else f"{int(value):>7d}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
