"""Benchmark: two break-glass operations on one stack at once, with random timings (issue 12 item 4).

Figures, not assertions. Each trial provisions a dual-region stack (us) on moto over HTTP, brings
it to the first operation's starting state, then runs two cmkctl commands at once, each through
its own fault proxy that waits a random time before forwarding every request (seeded; the seed is
printed), the second started after a random offset. After both exit, it checks:

- split: the regions end in different states. Honest when a run exited 2 naming the region; silent
  otherwise (must be 0).
- false success: a run's claim did not hold after it exited: a revoke exited 0 but a key of the realm
  ends Enabled (must be 0: revocation wins, docs/cmkctl.md "Two operators at once"), or a restore
  exited 0 but a key ends Disabled. Counted per command; no excuse for "the other run ended later".
  A restore's count includes a revoke that legitimately ran after the restore's final check (its
  DisableKey is a later operation), so it is reported, not required to be 0.
- records: every disabled key carries the same revocation id; every enabled key that carries a
  restore record carries the same restore ticket.
- enabled tag: no key reads Enabled with `atlassian-cmk:enabled=false` unless `cmkctl status`
  exits non-zero (a finding) for it.

Run: .venv/bin/python bench/bench_races.py [--trials 30] [--seed N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atlassian_cmk.cli.main import main  # noqa: E402
from atlassian_cmk.exit_codes import ExitCode  # noqa: E402
from atlassian_cmk.naming import TAG_ENABLED, TAG_RESTORE_TICKET, TAG_REVOCATION_ID  # noqa: E402
from atlassian_cmk.records import has_current_revocation  # noqa: E402
from tests.support.aws import FAKE_CREDENTIALS, moto_server, reset_moto  # noqa: E402
from tests.support.cmkctl import REGIONS, live, provision, runtime, stack_dir  # noqa: E402
from tests.support.faults import fault_proxy  # noqa: E402

PAIRS = (("revoke", "restore"), ("restore", "revoke"), ("revoke", "revoke"), ("restore", "restore"))
MAX_DELAY_S = 0.08
"""Upper bound of the random wait per request at each proxy; moto answers in ~5 ms, so this dominates."""
MAX_OFFSET_S = 0.4
"""Upper bound of the random start offset of the second command (revoke's whole run is ~5 round trips)."""


class PerThreadStdout(io.TextIOBase):
    """sys.stdout/stderr that keeps each run's writes apart (two cmkctl runs print at once).

    Buffers are per run (`begin(key)` on the run's thread, `take(key)` once it ended), never per thread
    id: ids are reused by later threads, so a buffer keyed by them mixed earlier trials' output in."""

    def __init__(self) -> None:
        self.buffers: dict[object, io.StringIO] = {}
        self.lock = threading.Lock()
        self.local = threading.local()

    def begin(self, key: object) -> None:
        with self.lock:
            self.buffers[key] = io.StringIO()
        self.local.key = key

    def write(self, text: str) -> int:
        key = getattr(self.local, "key", None)
        with self.lock:
            return self.buffers.setdefault(key, io.StringIO()).write(text)

    def take(self, key: object) -> str:
        with self.lock:
            buffer = self.buffers.pop(key, None)
            return buffer.getvalue() if buffer else ""


def command(name: str, project: Path, url: str, ticket: str) -> list[str]:
    args = [name, "--project-dir", str(project), "--ticket", ticket, "--yes"]
    return [*args, "--reason", "Suspected breach"] if name == "revoke" else args


def trial(endpoint: str, pair: tuple[str, str], rng: random.Random, out: PerThreadStdout) -> dict[str, Any]:
    reset_moto(endpoint)
    with tempfile.TemporaryDirectory() as tmp:
        project = stack_dir(Path(tmp))
        provision(project, endpoint)
        if pair[0] == "restore":
            assert main(command("revoke", project, endpoint, "SEC-0"), runtime=runtime(endpoint)) == 0
        offset = rng.uniform(0, MAX_OFFSET_S)
        seeds = [rng.random() for _ in pair]
        results: dict[int, tuple[int, float, str]] = {}
        with fault_proxy(endpoint) as first, fault_proxy(endpoint) as second:
            threads = []
            for index, (proxy, name) in enumerate(zip((first, second), pair, strict=True)):
                local = random.Random(seeds[index])
                lock = threading.Lock()

                def draw(_call: Any, local: random.Random = local, lock: threading.Lock = lock) -> float:
                    with lock:
                        return local.uniform(0, MAX_DELAY_S)

                proxy.delay = draw

                def run(index: int = index, name: str = name, url: str = proxy.url) -> None:
                    key = (id(results), index)
                    out.begin(key)
                    if index == 1:
                        time.sleep(offset)
                    ticket = f"SEC-{index + 1}"
                    code = main(command(name, project, url, ticket), runtime=runtime(url, read_timeout=30))
                    results[index] = (code, time.monotonic(), out.take(key))

                threads.append(threading.Thread(target=run))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        keys = {region: live(endpoint, region) for region in REGIONS}
        states = {region: key.key_state for region, key in keys.items()}
        uniform = len(set(states.values())) == 1
        verdict: dict[str, Any] = {"states": states, "codes": [results[i][0] for i in (0, 1)]}
        verdict["texts"] = [results[i][2] for i in (0, 1)]
        verdict["silent_split"] = not uniform and ExitCode.SPLIT not in verdict["codes"]
        verdict["honest_split"] = not uniform and ExitCode.SPLIT in verdict["codes"]
        false_success = Counter[str]()
        for index, name in enumerate(pair):
            code = results[index][0]
            goal = "Disabled" if name == "revoke" else "Enabled"
            # The run said "done" (exit 0); after both ended, is it still true? A revoke's must be.
            if code == ExitCode.AS_DECLARED and any(state != goal for state in states.values()):
                false_success[name] += 1
        verdict["false_success"] = false_success
        disabled_ids = {
            k.tags.get(TAG_REVOCATION_ID) for k in keys.values() if not k.enabled and has_current_revocation(k.tags)
        }
        restore_tickets = {
            k.tags.get(TAG_RESTORE_TICKET) for k in keys.values() if k.enabled and k.tags.get(TAG_RESTORE_TICKET)
        }
        verdict["records_mixed"] = len(disabled_ids) > 1 or len(restore_tickets) > 1
        stale_tag = [r for r, k in keys.items() if k.enabled and k.tags.get(TAG_ENABLED) == "false"]
        verdict["stale_enabled_tag"] = bool(stale_tag)
        verdict["stale_tag_unflagged"] = False
        if stale_tag:
            status = main(["status", "--project-dir", str(project)], runtime=runtime(endpoint))
            verdict["stale_tag_unflagged"] = status == ExitCode.AS_DECLARED
        return verdict


def run(trials: int, seed: int, pairs: tuple[tuple[str, str], ...] = PAIRS, show: frozenset[int] = frozenset()) -> None:
    rng = random.Random(seed)
    out = PerThreadStdout()
    counts: dict[tuple[str, str], Counter[str]] = {pair: Counter() for pair in pairs}
    shown: list[str] = []
    with moto_server() as endpoint, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        import os

        os.environ.update(FAKE_CREDENTIALS)
        for pair in pairs:
            for _ in range(trials):
                verdict = trial(endpoint, pair, rng, out)
                for name, code, text in zip(pair, verdict["codes"], verdict["texts"], strict=True):
                    if code in show:
                        shown.append(f"--- {name} exit {code} ({pair[0]}/{pair[1]}):\n{text}")
                tally = counts[pair]
                tally["trials"] += 1
                tally["uniform"] += not (verdict["silent_split"] or verdict["honest_split"])
                for name in (
                    "silent_split",
                    "honest_split",
                    "records_mixed",
                    "stale_enabled_tag",
                    "stale_tag_unflagged",
                ):
                    tally[name] += bool(verdict[name])
                for name in ("revoke", "restore"):
                    tally[f"false_success_{name}"] += verdict["false_success"][name]
                tally[f"codes {verdict['codes'][0]}/{verdict['codes'][1]}"] += 1
    print(
        f"bench_races: seed {seed}, {trials} trials per pair, request delay U(0, {MAX_DELAY_S}) s, "
        f"second start U(0, {MAX_OFFSET_S}) s, moto over HTTP"
    )
    header = (
        "pair",
        "trials",
        "uniform",
        "silent splits",
        "honest exit-2 splits",
        "false success: revoke exit 0, a key Enabled",
        "restore exit 0, a key Disabled",
        "records mixed",
        "enabled=false on Enabled (unflagged)",
    )
    print(" | ".join(header))
    for pair, tally in counts.items():
        row = (
            f"{pair[0]}/{pair[1]}",
            tally["trials"],
            tally["uniform"],
            tally["silent_split"],
            tally["honest_split"],
            tally["false_success_revoke"],
            tally["false_success_restore"],
            tally["records_mixed"],
            f"{tally['stale_enabled_tag']} ({tally['stale_tag_unflagged']})",
        )
        print(" | ".join(str(cell) for cell in row))
        codes = ", ".join(f"{k[6:]}: {v}" for k, v in sorted(tally.items()) if k.startswith("codes "))
        print(f"    exit codes (first/second): {codes}")
    for text in shown:
        print(text)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--pair", action="append", choices=[f"{a}/{b}" for a, b in PAIRS], help="default: all")
    parser.add_argument("--show", type=int, action="append", default=[], help="print the output of runs exiting so")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    pairs = tuple(pair for pair in PAIRS if not args.pair or f"{pair[0]}/{pair[1]}" in args.pair)
    run(args.trials, seed, pairs, frozenset(args.show))


if __name__ == "__main__":
    cli()
