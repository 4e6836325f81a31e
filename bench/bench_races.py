"""Benchmark: two break-glass operations on one stack at once, with random timings (issue 12 item 4).

Figures, not assertions. Each trial provisions a dual-region stack (us) on moto over HTTP, brings
it to the first operation's starting state, then runs two cmkctl commands at once, each through
its own fault proxy that waits a random time before forwarding every request (seeded; the seed is
printed), the second started after a random offset.

`--generations 2` arranges the stack mid-rotation instead: re-encryption `preparing`, the current
and the next key pair created as the component creates them and both recorded (`enrolledKeys`,
`nextKeys`; tests/support/cmkctl.py `two_generations`). Revoke disables every key of both
generations; restore enables the current generation only (workflows/targets.py), so a revoke's
claims are judged on all four keys, a restore's on the current two.

CloudTrail is paced as AWS paces it: LookupEvents allows 2 requests per second per account and
region, and the two runs share that limit, so the bench installs ONE `RequestPacer(pace_loopback=
True)` for the process (`atlassian_cmk.aws.cloudtrail.PACER`; cmkctl itself does not pace a loopback
endpoint). The race windows depend on it: the guard's lookups take seconds, and a revoke that read
the keys beside them acted on key reads seconds old (issue 15's attack, finding 5). Trials with two
generations take longer for it (more lookups, each paced).

After both exit, it checks:

- split: the keys end in a state no finished operation leaves: the regions of one generation differ,
  or (two generations) the current keys are Disabled while a next key is Enabled. Honest when a run
  exited 2 naming the region; silent otherwise (must be 0).
- sequential: one run's first KMS request (its first read of the keys) was forwarded to moto after
  the other run's effect had landed: its last DisableKey/EnableKey and its first TagResource per
  region (a revoke's lease and trace, written beside its DisableKey; a restore's lease). It read
  the state and the trace and acted on them (a restore says which revocation it restores; its lease
  read-back refuses if the record or trace changed after): a later operation, and undoing the
  earlier one's work is not a false claim of the earlier run. Paced CloudTrail makes it common: the
  second run's lookups queue behind the first's at the shared pacer, and the guard reads the keys
  only after CloudTrail. Stamped when the proxy forwards each request (after its random wait);
  moto's own processing (~5 ms) can still reorder two requests forwarded within it.
- false success (not read after): a run's claim did not hold after it exited, and the other run
  had not read its landed effect first: a revoke exited 0 but one of its keys
  (every key of every generation) ends Enabled (must be 0: revocation wins, docs/cmkctl.md "Two
  operators at once"), or a restore exited 0 but a key of the current generation ends Disabled.
  Counted per command; no excuse for "the other run ended later". A restore's count includes a
  revoke that read the keys before the restore's EnableKey landed and disabled them after the
  restore's final check (its DisableKey is a later operation, docs/cmkctl.md "the residual
  ordering"), so it is reported, not required to be 0.
- records: every disabled key carries the same revocation id; every enabled key that carries a
  restore record carries the same restore ticket.
- claimed id != keys' id: a revoke that exited 0, or printed a config change whatever its exit
  code, named a revocation id (the `id:` line its config change adds, or "ANOTHER REVOCATION
  STANDS: <id>") other than the one every disabled key carries at the end (must be 0). Judged only
  when a key ends disabled (a restore that ran last leaves none: its own count covers that).
- enabled tag: no key reads Enabled with `atlassian-cmk:enabled=false` unless `cmkctl status`
  exits non-zero (a finding) for it.

The output of every run in a trial where a must-be-0 count rose is printed at the end.

Run: .venv/bin/python bench/bench_races.py [--generations {1,2}] [--trials 30] [--seed N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from math import inf
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atlassian_cmk.aws import cloudtrail  # noqa: E402
from atlassian_cmk.aws.kms_reads import read_key  # noqa: E402
from atlassian_cmk.aws.provision import ProvisionedKey  # noqa: E402
from atlassian_cmk.cli.main import main  # noqa: E402
from atlassian_cmk.exit_codes import ExitCode  # noqa: E402
from atlassian_cmk.live_keys import LiveKey  # noqa: E402
from atlassian_cmk.naming import TAG_ENABLED, TAG_RESTORE_TICKET, TAG_REVOCATION_ID  # noqa: E402
from atlassian_cmk.records import has_current_revocation  # noqa: E402
from tests.support.aws import FAKE_CREDENTIALS, moto_server, reset_moto  # noqa: E402
from tests.support.cmkctl import kms, provision, runtime, stack_dir, two_generations  # noqa: E402
from tests.support.faults import fault_proxy  # noqa: E402

PAIRS = (("revoke", "restore"), ("restore", "revoke"), ("revoke", "revoke"), ("restore", "restore"))
MAX_DELAY_S = 0.08
"""Upper bound of the random wait per request at each proxy; moto answers in ~5 ms, so this dominates."""
MAX_OFFSET_S = 0.4
"""Upper bound of the random start offset of the second command (revoke's whole run is ~5 round trips)."""
CLAIMED_ID = re.compile(r"^\+\s+id:\s*(\S+)\s*$", re.MULTILINE)
"""The `id:` line a revoke's printed config change adds (`+    id: <id>`, workflows/revoke.py)."""
STANDS_ID = re.compile(r"ANOTHER REVOCATION STANDS: (.+?) \(revoked by ")
"""The revocation a revoke says stands instead of its own (workflows/revoke.py `_other_revocations`)."""
STATE_CHANGES = frozenset({"DisableKey", "EnableKey"})
MUST_BE_ZERO = ("silent_split", "false_success_revoke", "records_mixed", "claimed_id_differs", "stale_tag_unflagged")


def effect_landed(timeline: list[tuple[float, int, str]], run: int) -> float:
    """When `run`'s effect on the keys had reached moto: its last DisableKey/EnableKey and, per region,
    its first TagResource (a revoke's lease and trace, a restore's lease; the same round as a revoke's
    DisableKey). A run that read the keys after that saw the state and the trace; a record written
    later is what restore's lease read-back compares (aws/lease.py `_changed_since`). -inf: nothing."""
    changes = [t for t, i, what in timeline if i == run and what.split()[-1] in STATE_CHANGES]
    first_tags: dict[str, float] = {}
    for t, i, what in sorted(timeline):
        if i == run and what.endswith(" kms TagResource"):
            first_tags.setdefault(what.split()[0], t)
    return max([*changes, *first_tags.values()], default=-inf)


def claimed_ids(text: str) -> set[str]:
    """The revocation ids a revoke's output names as the one on the keys."""
    return set(CLAIMED_ID.findall(text)) | set(STANDS_ID.findall(text))


def arrange(tmp: Path, endpoint: str, generations: int) -> tuple[Path, list[ProvisionedKey], list[ProvisionedKey]]:
    """The project folder, the current generation's keys and the next one's (empty with one generation)."""
    if generations == 2:
        return two_generations(tmp, endpoint, "preparing")
    project = stack_dir(tmp)
    return project, provision(project, endpoint), []


def read_back(endpoint: str, key: ProvisionedKey) -> LiveKey:
    reading = read_key(kms(endpoint, key.region), key.region, key.key_id)
    assert reading.key is not None, reading
    return reading.key


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


def trial(
    endpoint: str, pair: tuple[str, str], rng: random.Random, out: PerThreadStdout, generations: int = 1
) -> dict[str, Any]:
    reset_moto(endpoint)
    with tempfile.TemporaryDirectory() as tmp:
        project, current, following = arrange(Path(tmp), endpoint, generations)
        if pair[0] == "restore":
            assert main(command("revoke", project, endpoint, "SEC-0"), runtime=runtime(endpoint)) == 0
        offset = rng.uniform(0, MAX_OFFSET_S)
        seeds = [rng.random() for _ in pair]
        results: dict[int, tuple[int, float, str]] = {}
        timeline: list[tuple[float, int, str]] = []  # (forwarded to moto, run, request): appends are atomic
        began = time.monotonic()
        with fault_proxy(endpoint) as first, fault_proxy(endpoint) as second:
            threads = []
            for index, (proxy, name) in enumerate(zip((first, second), pair, strict=True)):
                local = random.Random(seeds[index])
                lock = threading.Lock()

                def draw(
                    call: Any, local: random.Random = local, lock: threading.Lock = lock, index: int = index
                ) -> float:
                    with lock:
                        wait = local.uniform(0, MAX_DELAY_S)
                    # Stamped with the moment the proxy forwards it (after the wait): the order moto sees.
                    timeline.append((time.monotonic() + wait, index, f"{call.region} {call.service} {call.operation}"))
                    return wait

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
        current_keys = [read_back(endpoint, key) for key in current]
        next_keys = [read_back(endpoint, key) for key in following]
        every_key = [*current_keys, *next_keys]
        states = {
            f"{key.region}{'' if index < len(current) else ' next'}": key.key_state
            for index, key in enumerate(every_key)
        }
        current_states = {key.key_state for key in current_keys}
        next_states = {key.key_state for key in next_keys}
        # A revocation covers every generation: current keys Disabled beside an Enabled next key is a split too.
        uniform = len(current_states) == 1 and len(next_states) <= 1
        uniform = uniform and not ("Disabled" in current_states and "Enabled" in next_states)
        verdict: dict[str, Any] = {"states": states, "codes": [results[i][0] for i in (0, 1)]}
        # Did each run's effect land before the other first read the keys? Then the other acted on it knowingly.
        landed = [effect_landed(timeline, run) for run in (0, 1)]
        reads = [min((t for t, i, what in timeline if i == run and " kms " in what), default=inf) for run in (0, 1)]
        verdict["read_after"] = [reads[1 - run] > landed[run] for run in (0, 1)]
        verdict["sequential"] = any(verdict["read_after"])
        lines = [f"  +{t - began:7.3f} {'AB'[i]} {what}" for t, i, what in sorted(timeline)]
        lines += [f"  +{results[i][1] - began:7.3f} {'AB'[i]} exit {results[i][0]}" for i in (0, 1)]
        verdict["timeline"] = "\n".join(sorted(lines))
        verdict["texts"] = [results[i][2] for i in (0, 1)]
        verdict["silent_split"] = not uniform and ExitCode.SPLIT not in verdict["codes"]
        verdict["honest_split"] = not uniform and ExitCode.SPLIT in verdict["codes"]
        false_success = Counter[str]()
        for index, name in enumerate(pair):
            code = results[index][0]
            # Revoke's claim is every key of every generation disabled; restore's the current generation enabled.
            goal, judged = ("Disabled", every_key) if name == "revoke" else ("Enabled", current_keys)
            # The run said "done" (exit 0); after both ended, is it still true? A revoke's must be.
            # The other run read this one's effect before acting: a later operation, not a false claim.
            if (
                not verdict["read_after"][index]
                and code == ExitCode.AS_DECLARED
                and any(key.key_state != goal for key in judged)
            ):
                false_success[name] += 1
        verdict["false_success"] = false_success
        disabled = [k for k in every_key if not k.enabled and has_current_revocation(k.tags)]
        disabled_ids = {k.tags.get(TAG_REVOCATION_ID) for k in disabled}
        restore_tickets = {
            k.tags.get(TAG_RESTORE_TICKET) for k in every_key if k.enabled and k.tags.get(TAG_RESTORE_TICKET)
        }
        verdict["records_mixed"] = len(disabled_ids) > 1 or len(restore_tickets) > 1
        claims_differ = 0
        for index, name in enumerate(pair):
            code, _, text = results[index]
            claimed = claimed_ids(text)
            if name != "revoke" or not disabled or not (code == ExitCode.AS_DECLARED or CLAIMED_ID.search(text)):
                continue
            # Exit 0 without any id printed is a claim too: of nothing the keys could be checked against.
            claims_differ += claimed != disabled_ids
        verdict["claimed_id_differs"] = claims_differ
        stale_tag = [k for k in every_key if k.enabled and k.tags.get(TAG_ENABLED) == "false"]
        verdict["stale_enabled_tag"] = bool(stale_tag)
        verdict["stale_tag_unflagged"] = False
        if stale_tag:
            status = main(["status", "--project-dir", str(project)], runtime=runtime(endpoint))
            verdict["stale_tag_unflagged"] = status == ExitCode.AS_DECLARED
        return verdict


def run(
    trials: int,
    seed: int,
    pairs: tuple[tuple[str, str], ...] = PAIRS,
    show: frozenset[int] = frozenset(),
    generations: int = 1,
) -> None:
    rng = random.Random(seed)
    # One pacer for the process, spacing loopback requests as AWS would: the two runs share an account's
    # LookupEvents limit (2 per second per region, cloudtrail.LOOKUP_RATE_PER_S). Read at call time.
    cloudtrail.PACER = cloudtrail.RequestPacer(pace_loopback=True)
    started = time.monotonic()
    out = PerThreadStdout()
    counts: dict[tuple[str, str], Counter[str]] = {pair: Counter() for pair in pairs}
    shown: list[str] = []
    with moto_server() as endpoint, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        import os

        os.environ.update(FAKE_CREDENTIALS)
        for pair in pairs:
            for _ in range(trials):
                verdict = trial(endpoint, pair, rng, out, generations)
                tally = counts[pair]
                failed = [name for name in MUST_BE_ZERO if verdict.get(name)]
                failed += ["false_success_revoke"] if verdict["false_success"]["revoke"] else []
                for name, code, text in zip(pair, verdict["codes"], verdict["texts"], strict=True):
                    if code in show or failed:
                        why = f"; trial {tally['trials'] + 1} failed {', '.join(failed)}" if failed else ""
                        head = f"--- {name} exit {code} ({pair[0]}/{pair[1]}{why}; end states {verdict['states']})"
                        shown.append(f"{head}:\n{text}")
                if failed:
                    shown.append(
                        f"--- requests as they reached the proxies (A: {pair[0]}, B: {pair[1]}):\n{verdict['timeline']}"
                    )
                tally["trials"] += 1
                tally["sequential"] += verdict["sequential"]
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
                tally["claimed_id_differs"] += verdict["claimed_id_differs"]
                tally[f"codes {verdict['codes'][0]}/{verdict['codes'][1]}"] += 1
    print(
        f"bench_races: seed {seed}, {trials} trials per pair, {generations} generation(s), request delay "
        f"U(0, {MAX_DELAY_S}) s, second start U(0, {MAX_OFFSET_S}) s, CloudTrail paced "
        f"{cloudtrail.LOOKUP_RATE_PER_S:g}/s per region (shared), moto over HTTP, "
        f"wall {time.monotonic() - started:.0f} s"
    )
    header = (
        "pair",
        "trials",
        "sequential",
        "uniform",
        "silent splits",
        "honest exit-2 splits",
        "false success (not read after): revoke exit 0, a key Enabled",
        "restore exit 0, a key Disabled",
        "records mixed",
        "claimed id != keys' id",
        "enabled=false on Enabled (unflagged)",
    )
    print(" | ".join(header))
    for pair, tally in counts.items():
        row = (
            f"{pair[0]}/{pair[1]}",
            tally["trials"],
            tally["sequential"],
            tally["uniform"],
            tally["silent_split"],
            tally["honest_split"],
            tally["false_success_revoke"],
            tally["false_success_restore"],
            tally["records_mixed"],
            tally["claimed_id_differs"],
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
    parser.add_argument("--generations", type=int, choices=(1, 2), default=1, help="key generations enrolled")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--pair", action="append", choices=[f"{a}/{b}" for a, b in PAIRS], help="default: all")
    parser.add_argument("--show", type=int, action="append", default=[], help="print the output of runs exiting so")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    pairs = tuple(pair for pair in PAIRS if not args.pair or f"{pair[0]}/{pair[1]}" in args.pair)
    run(args.trials, seed, pairs, frozenset(args.show), args.generations)


if __name__ == "__main__":
    cli()
