"""Benchmark: partial failures injected into revoke and restore, then a rerun without them (issue 12 item 5).

Figures, not assertions (the cases are tested one by one in tests/test_break_glass_partial.py). Each
fault the issue lists is injected at the fault proxy in front of moto (HTTP), per region and in
combination (one fault in each region), for `cmkctl revoke` (DisableKey) and `cmkctl restore`
(EnableKey); then the same command runs again without faults. A case SURVIVED when, after the
rerun, every region's key is in the wanted state and every region carries the record: revoke, one
current revocation id (the same everywhere); restore, `restored-at` and one restore ticket. The
first run's exit code is counted too: a state change that took effect with its record refused must
exit 9, never 2 or 3.

Run: .venv/bin/python bench/bench_faults.py
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atlassian_cmk.cli.main import main  # noqa: E402
from atlassian_cmk.naming import TAG_RESTORE_TICKET, TAG_RESTORED_AT, TAG_REVOCATION_ID  # noqa: E402
from atlassian_cmk.records import has_current_revocation  # noqa: E402
from tests.support.aws import FAKE_CREDENTIALS, moto_server, reset_moto  # noqa: E402
from tests.support.cmkctl import REGIONS, live, provision, runtime, stack_dir  # noqa: E402
from tests.support.faults import FaultProxy, fast_client_factory, fault_proxy  # noqa: E402

Inject = Callable[[FaultProxy, str, str], None]
"""(proxy, region, state operation: DisableKey or EnableKey) -> the fault armed in that region."""

FAULTS: dict[str, Inject] = {
    "TagResource AccessDenied": lambda p, region, _op: p.fail(
        region, 1000, {"TagResource"}, status=400, error_type="AccessDeniedException", message="not authorized"
    ),
    "TagException 50-tag limit": lambda p, region, _op: p.fail(
        region, 1000, {"TagResource"}, status=400, error_type="TagException", message="at most 50 tags"
    ),
    "state change processed, then 500": lambda p, region, op: p.fail(
        region, 1, {op}, status=500, error_type="KMSInternalException", forward_first=True
    ),
    "read timeout that reached AWS": lambda p, region, op: p.fail(region, 1, {op}, forward_first=True, hang=True),
}


def placements() -> list[tuple[str, dict[str, str]]]:
    """(label, region -> fault): each fault in one region, in both, and every pair of different faults."""
    cases: list[tuple[str, dict[str, str]]] = []
    for fault in FAULTS:
        for where in (*REGIONS, "both"):
            regions = REGIONS if where == "both" else (where,)
            cases.append((f"{fault} @ {where}", dict.fromkeys(regions, fault)))
    for east, west in itertools.permutations(FAULTS, 2):
        cases.append((f"{east} @ {REGIONS[0]} + {west} @ {REGIONS[1]}", {REGIONS[0]: east, REGIONS[1]: west}))
    return cases


def run_command(name: str, project: Path, url: str, ticket: str, read_timeout: float = 5) -> int:
    args = [name, "--project-dir", str(project), "--ticket", ticket, "--yes"]
    if name == "revoke":
        args += ["--reason", "Suspected breach"]
    rt = dataclasses.replace(runtime(url), client_factory=fast_client_factory(url, read_timeout=read_timeout))
    return main(args, runtime=rt)


def survived(endpoint: str, name: str) -> bool:
    keys = [live(endpoint, region) for region in REGIONS]
    if name == "revoke":
        ids = {k.tags.get(TAG_REVOCATION_ID) for k in keys}
        return all(not k.enabled and has_current_revocation(k.tags) for k in keys) and len(ids) == 1 and None not in ids
    tickets = {k.tags.get(TAG_RESTORE_TICKET) for k in keys}
    return all(k.enabled and k.tags.get(TAG_RESTORED_AT) for k in keys) and len(tickets) == 1 and None not in tickets


def case(endpoint: str, name: str, faults: dict[str, str]) -> tuple[int, bool]:
    reset_moto(endpoint)
    operation = "DisableKey" if name == "revoke" else "EnableKey"
    with tempfile.TemporaryDirectory() as tmp:
        project = stack_dir(Path(tmp))
        provision(project, endpoint)
        if name == "restore":
            assert run_command("revoke", project, endpoint, "SEC-0") == 0
        with fault_proxy(endpoint) as proxy:
            for region, fault in faults.items():
                FAULTS[fault](proxy, region, operation)
            hangs = any(fault == "read timeout that reached AWS" for fault in faults.values())
            first = run_command(name, project, proxy.url, "SEC-1", read_timeout=1 if hangs else 5)
        rerun = run_command(name, project, endpoint, "SEC-1")
        return first, rerun == 0 and survived(endpoint, name)


def main_bench() -> None:
    os.environ.update(FAKE_CREDENTIALS)
    rows: list[tuple[str, str, int, bool]] = []
    sink = io.StringIO()
    with moto_server() as endpoint:
        for name in ("revoke", "restore"):
            for label, faults in placements():
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                    first, ok = case(endpoint, name, faults)
                rows.append((name, label, first, ok))
    print("bench_faults: each fault injected at the proxy (moto over HTTP), then the same command rerun without it")
    print("command | fault(s) | first exit | survived (state + one record everywhere after the rerun)")
    for name, label, first, ok in rows:
        print(f"{name} | {label} | {first} | {'yes' if ok else 'NO'}")
    for name in ("revoke", "restore"):
        mine = [row for row in rows if row[0] == name]
        codes = Counter(row[2] for row in mine)
        print(
            f"{name}: injected {len(mine)}, survived {sum(row[3] for row in mine)}; first-run exit codes "
            + ", ".join(f"{code}: {n}" for code, n in sorted(codes.items()))
        )


if __name__ == "__main__":
    main_bench()
