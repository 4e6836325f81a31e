"""Benchmark: partial failures injected into revoke and restore, then a rerun without them (issue 12 item 5).

Figures, not assertions (the cases are tested one by one in tests/test_break_glass_partial.py). Each
fault the issue lists is injected at the fault proxy in front of moto (HTTP), per region and in
combination (one fault in each region), for `cmkctl revoke` (DisableKey) and `cmkctl restore`
(EnableKey); then the same command runs again without the transient faults. A case SURVIVED when
the rerun exits 0 and every region's key is in the wanted state with the whole record, the same in
every region: revoke, one current revocation id with `revoked-at`, `revoked-by`, this run's reason
and ticket; restore, `restored-at`, `restored-by` and this run's ticket. The 50-tag limit
(TagException) is not transient (real AWS keeps it until a tag is removed), so it stays armed for
the rerun: there the honest outcome is RECORD-MISSING, the wanted state everywhere and the rerun
exiting 9 (record not written), counted as such, never as survived. The first run's exit code is
counted too: a state change that took effect with its record refused must exit 9, never 2 or 3.

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
from atlassian_cmk.exit_codes import ExitCode  # noqa: E402
from atlassian_cmk.naming import (  # noqa: E402
    TAG_RESTORE_TICKET,
    TAG_RESTORED_AT,
    TAG_RESTORED_BY,
    TAG_REVOCATION_ID,
    TAG_REVOCATION_REASON,
    TAG_REVOCATION_TICKET,
    TAG_REVOKED_AT,
    TAG_REVOKED_BY,
)
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
PERSISTENT: frozenset[str] = frozenset({"TagException 50-tag limit"})
"""Faults that real AWS keeps for the rerun (the key still has 50 tags): armed again for it."""
REASON = "Suspected breach"
TICKET = "SEC-1"


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


def in_state(endpoint: str, name: str) -> bool:
    """Every region's key reads as the command sets it."""
    return all(live(endpoint, region).enabled == (name == "restore") for region in REGIONS)


def survived(endpoint: str, name: str) -> bool:
    """The wanted state and the whole record, one and the same in every region (the module docstring)."""
    keys = [live(endpoint, region) for region in REGIONS]
    if name == "revoke":
        fields = (TAG_REVOCATION_ID, TAG_REVOKED_AT, TAG_REVOKED_BY, TAG_REVOCATION_REASON, TAG_REVOCATION_TICKET)
        records = {tuple(k.tags.get(tag) for tag in fields) for k in keys}
        (record,) = records if len(records) == 1 else (None,)
        return (
            all(not k.enabled and has_current_revocation(k.tags) for k in keys)
            and record is not None
            and all(record)
            and record[3:] == (REASON, TICKET)
        )
    restore_fields = (TAG_RESTORED_AT, TAG_RESTORED_BY, TAG_RESTORE_TICKET)
    restores = {tuple(k.tags.get(tag) for tag in restore_fields) for k in keys}
    (restored,) = restores if len(restores) == 1 else (None,)
    return all(k.enabled for k in keys) and restored is not None and all(restored) and restored[2] == TICKET


def case(endpoint: str, name: str, faults: dict[str, str]) -> tuple[int, int, str]:
    """(first exit, rerun exit, outcome: survived | record-missing | FAILED)."""
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
            first = run_command(name, project, proxy.url, TICKET, read_timeout=1 if hangs else 5)
        with fault_proxy(endpoint) as proxy:
            kept = {region: fault for region, fault in faults.items() if fault in PERSISTENT}
            for region, fault in kept.items():
                FAULTS[fault](proxy, region, operation)
            rerun = run_command(name, project, proxy.url, TICKET)
        if rerun == ExitCode.AS_DECLARED and survived(endpoint, name):
            return first, rerun, "survived"
        if kept and rerun == ExitCode.RECORD_NOT_WRITTEN and in_state(endpoint, name):
            return first, rerun, "record-missing"
        return first, rerun, "FAILED"


def main_bench() -> None:
    os.environ.update(FAKE_CREDENTIALS)
    rows: list[tuple[str, str, int, int, str]] = []
    sink = io.StringIO()
    with moto_server() as endpoint:
        for name in ("revoke", "restore"):
            for label, faults in placements():
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                    first, rerun, outcome = case(endpoint, name, faults)
                rows.append((name, label, first, rerun, outcome))
    print("bench_faults: each fault injected at the proxy (moto over HTTP), then the same command rerun")
    print("(transient faults removed; the 50-tag limit kept, as real AWS keeps it)")
    print("command | fault(s) | first exit | rerun exit | outcome")
    for name, label, first, rerun, outcome in rows:
        print(f"{name} | {label} | {first} | {rerun} | {outcome}")
    for name in ("revoke", "restore"):
        mine = [row for row in rows if row[0] == name]
        codes = Counter(row[2] for row in mine)
        outcomes = Counter(row[4] for row in mine)
        print(
            f"{name}: injected {len(mine)}; "
            + ", ".join(f"{outcome} {n}" for outcome, n in sorted(outcomes.items()))
            + "; first-run exit codes "
            + ", ".join(f"{code}: {n}" for code, n in sorted(codes.items()))
        )


if __name__ == "__main__":
    main_bench()
