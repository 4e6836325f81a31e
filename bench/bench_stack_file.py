"""Benchmark: `cmkctl status` on hostile stack files (an alias bomb, an 8 MB and a 60 MB file).

Figures, not assertions. Each case runs `cmkctl status` in a fresh Python process (so peak
memory is the process's own, from getrusage) against a project folder holding only the file;
the stack file is refused before any AWS call, so no emulator is needed. Issue 9 measured the
old reader at 11.5 s / 3.2 GB for the 621-byte bomb, 8.5 s for 8 MB, and no end for 60 MB.

Run: .venv/bin/python bench/bench_stack_file.py
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
from pathlib import Path
from atlassian_cmk.cli.main import main
started = time.perf_counter()
code = main(["status", "--project-dir", sys.argv[1]])
elapsed = time.perf_counter() - started
# VmHWM (peak resident set) starts afresh at exec; getrusage's ru_maxrss would carry the parent's.
status = Path("/proc/self/status").read_text()
peak_kb = int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
print(json.dumps({"code": code, "seconds": elapsed, "peak_mb": peak_kb / 1024}))
"""


def alias_bomb(levels: int) -> str:
    """The classic "billion laughs": each level a list of nine aliases of the one before."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = [chr(ord("a") + i) for i in range(levels + 1)]
    for previous, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "config:\n  other:bomb:\n" + "\n".join("    " + line for line in lines) + "\n"


def large(megabytes: int) -> str:
    line = "  other:k{index}: " + "x" * 100 + "\n"
    count = megabytes * 1024 * 1024 // len(line.format(index=0))
    return "config:\n" + "".join(line.format(index=i) for i in range(count))


def measure(name: str, text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "Pulumi.prod.yaml").write_text(text)
        done = subprocess.run(
            [sys.executable, "-c", CHILD, folder], capture_output=True, text=True, cwd=ROOT, check=False
        )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    print(
        f"{name:<22} {len(text.encode()):>11,} bytes  exit {figures['code']:>3}  "
        f"{figures['seconds'] * 1000:8.1f} ms  peak {figures['peak_mb']:7.1f} MB  {message[:110]}"
    )


def main() -> None:
    measure("alias bomb, 9 levels", alias_bomb(9))
    measure("alias bomb, 10 levels", alias_bomb(10))
    measure("8 MB file", large(8))
    measure("60 MB file", large(60))
    copies = ",".join(["*w"] * 5)
    measure("wide aliases", f"config:\n  other:wide: &w [{','.join(['x'] * 30_000)}]\n  other:copies: [{copies}]\n")
    measure("300,000 values", f"config:\n  other:wide: [{','.join(['x'] * 300_000)}]\n")
    measure("900 KB file", large(1)[: 900 * 1024].rsplit("\n", 1)[0] + "\n")


if __name__ == "__main__":
    main()
