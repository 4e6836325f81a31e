"""Two operators at once, engineered deterministically (issue 12 item 4, the cases left open in session 18).

Against moto through the fault proxy; each race is built by holding one request at a proxy (or by
running the other operator inside the first one's retry back-off) until the other run reached a
named point, never with sleeps. Each case asserts both exit codes, every region's key state and the
tags read from the emulator, and what each run said. The design under test (docs/cmkctl.md, "Two
operators at once"): revocation never waits; restore yields; one revocation record per realm.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from atlassian_cmk.aws.kms_reads import read_key
from atlassian_cmk.cli.main import Runtime, main
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.naming import (
    TAG_LAST_REVOKE,
    TAG_LEASE,
    TAG_RESTORE_TICKET,
    TAG_RESTORED_AT,
    TAG_REVOCATION_ID,
    TAG_REVOCATION_TICKET,
    TAG_REVOKED_AT,
)
from atlassian_cmk.timeline import iso
from tests.support.cmkctl import REGIONS, kms, live, provision, runtime, stack_dir, two_generations, unwrap
from tests.support.faults import fast_client_factory, fault_proxy
from tests.support.key_policy_proxy import enforce_key_policy


def revoke(project: Path, rt: Runtime, *, ticket: str = "SEC-1", reason: str = "Suspected breach") -> int:
    args = ["revoke", "--project-dir", str(project), "--reason", reason, "--ticket", ticket, "--yes"]
    return main(args, runtime=rt)


def restore(project: Path, rt: Runtime, *, ticket: str = "SEC-B") -> int:
    return main(["restore", "--project-dir", str(project), "--ticket", ticket, "--yes"], runtime=rt)


def states(endpoint: str) -> dict[str, str]:
    return {region: live(endpoint, region).key_state for region in REGIONS}


def tag(endpoint: str, name: str) -> dict[str, str | None]:
    return {region: live(endpoint, region).tags.get(name) for region in REGIONS}


def slow_runtime(url: str) -> Runtime:
    """A runtime whose clients wait long enough for a request the proxy holds (no timing in the test)."""
    return dataclasses.replace(runtime(url), client_factory=fast_client_factory(url, read_timeout=60))


# ----------------------------------------------------------------------------- restore retries yield to a revoke


def test_a_restore_retry_never_enables_again_after_a_revoke_took_its_lease(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Restore A's EnableKey in us-west-2 is answered 500 (not processed). During A's back-off before the
    retry (its RetryPolicy.sleep, called on that region's thread), revoke B runs to its end: it takes over
    A's lease and disables every key. A's retry reads the key again (as every retry does), finds its lease
    no longer its own and does not send EnableKey again: us-west-2 is `overtaken`, A exits 2 naming the
    revocation, B exits 0, every key Disabled under one record: SEC-0's, the earliest (B aligns us-east-1, where
    A's restore had closed SEC-0, to it: A's restore was overtaken within seconds, so the revocation and its
    reinstatement clock are SEC-0's, issue 12 second review). On AWS the write-once Deny, once in effect on
    the record B wrote there, refuses that alignment (moto enforces no key policy): B then exits 9, RECORDS
    DIFFER, as in test_two_revokes_whose_records_cannot_be_aligned_exit_9_naming_the_regions."""
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    # SEC-0 seconds before B: the two records' order never depends on the second they fall in.
    earlier = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    assert revoke(project, runtime(moto_endpoint, now=lambda: earlier), ticket="SEC-0") == ExitCode.AS_DECLARED
    capsys.readouterr()
    codes: dict[str, int] = {}
    with fault_proxy(moto_endpoint) as proxy_a:
        proxy_a.fail("us-west-2", 1, {"EnableKey"}, status=500, error_type="InternalFailure")
        east_recorded = proxy_a.watch("us-east-1", "TagResource", count=2)  # A's lease, then its record
        ran: list[bool] = []

        def back_off(_seconds: float) -> None:
            # A's first pause after the 500 (us-west-2's thread): operator B revokes now, to its end. Named by
            # what was answered, not by thread: under load another region's chain may pause first (a slow answer).
            west_refused = ("us-west-2", "EnableKey") in {(c.region, c.operation) for c in proxy_a.calls}
            if not ran and west_refused and threading.current_thread() is not threading.main_thread():
                ran.append(True)
                assert east_recorded.wait(timeout=60)
                codes["revoke"] = revoke(project, runtime(moto_endpoint), ticket="SEC-2")

        base = runtime(proxy_a.url)
        slow_a = dataclasses.replace(base, policy=dataclasses.replace(base.policy, sleep=back_off))
        codes["restore"] = restore(project, slow_a)
        enable_keys = [(c.region, c.operation) for c in proxy_a.calls if c.operation == "EnableKey"]

    out = unwrap(capsys.readouterr().out)
    assert codes == {"revoke": ExitCode.AS_DECLARED, "restore": ExitCode.SPLIT}, out
    assert states(moto_endpoint) == dict.fromkeys(REGIONS, "Disabled")
    assert sorted(enable_keys) == [("us-east-1", "EnableKey"), ("us-west-2", "EnableKey")]  # never retried
    assert "this run's lease there was taken over" in out and "EnableKey not sent again" in out
    assert "RESTORE OVERTAKEN" in out
    assert tag(moto_endpoint, TAG_LEASE) == dict.fromkeys(REGIONS, "")
    assert len(set(tag(moto_endpoint, TAG_REVOCATION_ID).values())) == 1
    assert tag(moto_endpoint, TAG_REVOCATION_TICKET) == dict.fromkeys(REGIONS, "SEC-0"), out
    assert not live(moto_endpoint, "us-west-2").tags.get(TAG_RESTORED_AT)


# ----------------------------------------------------------------------------- a revoke while a restore starts


def restore_held_while_revoke_runs(
    project: Path, endpoint: str, held: str, region: str, *, revoke_held: bool = False
) -> dict[str, int]:
    """Restore A (ticket SEC-A) runs with its first `held` request in `region` held at its proxy; once held,
    revoke B (ticket SEC-B, reason "Incident B") starts. `revoke_held` False: B runs to its end before A is
    released. True: B's lease and trace writes (TagResource, every region) are held too, A is released and
    ends first, then B. Returns the exit codes and what A and B printed (captured by the caller's capsys)."""
    codes: dict[str, int] = {}
    with fault_proxy(endpoint) as proxy_a, fault_proxy(endpoint) as proxy_b:
        proxy_a.hold(held, region=region, forward=True)
        operator_a = threading.Thread(
            target=lambda: codes.setdefault("A", restore(project, slow_runtime(proxy_a.url), ticket="SEC-A"))
        )
        operator_a.start()
        assert proxy_a.holding.wait(timeout=60)
        if revoke_held:
            proxy_b.hold("TagResource", forward=True)
        operator_b = threading.Thread(
            target=lambda: codes.setdefault(
                "B", revoke(project, slow_runtime(proxy_b.url), ticket="SEC-B", reason="Incident B")
            )
        )
        operator_b.start()
        if revoke_held:
            assert proxy_b.holding.wait(timeout=60)
        else:
            operator_b.join(timeout=60)
        proxy_a.release.set()
        operator_a.join(timeout=60)
        proxy_b.release.set()
        operator_b.join(timeout=60)
    return codes


@pytest.mark.parametrize("generations", [1, 2])
def test_a_revoke_that_ends_before_a_restore_takes_its_lease_refuses_the_restore_and_its_claimed_id_stands(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str], generations: int
) -> None:
    """Found by bench/bench_races.py (restore/revoke, CloudTrail paced as on AWS): restore A read the keys
    (revoked under SEC-0), then revoke B ran to its end before A's lease write: B found every key Disabled
    under SEC-0's open record, disabled nothing, left its trace, printed "ANOTHER REVOCATION STANDS" and a
    config change with SEC-0's id, and exited 0. A then enabled the keys, met B's trace at its final
    check and disabled them again under a NEW record (its own restore record had closed SEC-0's): the
    keys carried an id B never printed, and with two generations the next keys (which restore leaves)
    kept SEC-0's: two ids on one stack. Here A's lease write in us-east-1 is held while B runs. A's
    lease read-back meets B's trace: A is refused before any EnableKey, and SEC-0's record, the one B
    named, stands on every key of every generation."""
    if generations == 2:
        project, current, following = two_generations(tmp_path, moto_endpoint, "preparing")
    else:
        project = stack_dir(tmp_path)
        current, following = provision(project, moto_endpoint), []
    assert revoke(project, runtime(moto_endpoint), ticket="SEC-0") == ExitCode.AS_DECLARED
    first_id = live(moto_endpoint, "us-east-1").tags[TAG_REVOCATION_ID]
    capsys.readouterr()

    codes = restore_held_while_revoke_runs(project, moto_endpoint, "TagResource", "us-east-1")

    captured = capsys.readouterr()
    out = unwrap(captured.out + captured.err)
    assert codes == {"A": ExitCode.REFUSED, "B": ExitCode.AS_DECLARED}, out
    assert f"ANOTHER REVOCATION STANDS: {first_id} (revoked by " in out
    assert f"+    id: {first_id}" in out  # B's config change names the record that stands
    assert "REFUSED: another operation is changing stack prod:" in out
    assert "a cmkctl revoke ran meanwhile" in out and "nothing was changed by this restore" in out
    for key in (*current, *following):
        reading = read_key(kms(moto_endpoint, key.region), key.region, key.key_id)
        assert reading.key is not None
        assert reading.key.key_state == "Disabled", key
        tags = reading.key.tags
        assert (tags[TAG_REVOCATION_ID], tags[TAG_REVOCATION_TICKET]) == (first_id, "SEC-0"), key
        assert not tags.get(TAG_RESTORED_AT) and not tags.get(TAG_LEASE), key


# A revoke that ends before the restore's lease read-back (the restore's lease write held) refuses the restore:
# the test above. Here the revoke ends after it, before EnableKey lands.
@pytest.mark.parametrize(("held", "region"), [("EnableKey", "us-west-2")], ids=["enable-slow"])
def test_a_revoke_during_a_restore_is_never_lost(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str], held: str, region: str
) -> None:
    """The adversarial review's BLOCKER (issue 12). Restore A is slowed at one step, us-west-2's EnableKey or
    its first lease write in us-east-1; revoke B runs to its end meanwhile. B may find the keys still
    Disabled (the open record SEC-0) and disable nothing, but it leaves its trace (`last-revoke`) on the keys
    beside its lease. A's EnableKey lands after B ended; A's final check reads B's trace, so A disables
    again every key it enabled, names B and exits 2. Every key ends Disabled, and B never exits 0 while a
    key ends Enabled."""
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    assert revoke(project, runtime(moto_endpoint), ticket="SEC-0") == ExitCode.AS_DECLARED
    capsys.readouterr()

    codes = restore_held_while_revoke_runs(project, moto_endpoint, held, region)

    out = unwrap(capsys.readouterr().out)
    assert states(moto_endpoint) == dict.fromkeys(REGIONS, "Disabled"), out
    assert codes["A"] == ExitCode.SPLIT, out
    assert codes["B"] in (ExitCode.AS_DECLARED, ExitCode.SPLIT), out  # exit 0 only with every key Disabled
    assert "RESTORE OVERTAKEN: cmkctl revoke by " in out and "under SEC-B" in out
    # Every key ended Disabled: the revoke stands everywhere, nothing is split (issue 12 review, finding 8).
    assert "every key is now Disabled: that operation stands" in out and "SPLIT: us-" not in out
    traces = tag(moto_endpoint, TAG_LAST_REVOKE)
    assert all(value and " revoke SEC-B " in value for value in traces.values()), traces
    assert tag(moto_endpoint, TAG_LEASE) == dict.fromkeys(REGIONS, "")
    # The keys carry an open revocation record: SEC-0 still open, or a new one A wrote for B's ticket where
    # A's own restore record had closed SEC-0 (a closed record is never reopened under its id).
    for key in (live(moto_endpoint, r) for r in REGIONS):
        assert key.tags.get(TAG_REVOCATION_ID) and not key.tags.get(TAG_RESTORED_AT), key.tags
        assert key.tags.get(TAG_REVOCATION_TICKET) in ("SEC-0", "SEC-B"), key.tags


def test_a_revoke_whose_trace_lands_after_the_restore_ended_disables_again_at_its_final_check(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The other side of the order argument: revoke B reads the keys while restore A's us-west-2 EnableKey is
    held, and B's lease and trace writes are held too; A is released and ends before B's trace lands (its
    final check cannot see B). B's final check (after its trace write) reads us-west-2 Enabled by A's
    restore: B disables it again, names the restore, and every key ends Disabled."""
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    assert revoke(project, runtime(moto_endpoint), ticket="SEC-0") == ExitCode.AS_DECLARED
    capsys.readouterr()

    codes = restore_held_while_revoke_runs(project, moto_endpoint, "EnableKey", "us-west-2", revoke_held=True)

    out = unwrap(capsys.readouterr().out)
    assert states(moto_endpoint) == dict.fromkeys(REGIONS, "Disabled"), out
    assert codes["B"] in (ExitCode.AS_DECLARED, ExitCode.SPLIT), out
    assert "DISABLED AGAIN us-west-2: re-enabled by a restore (" in out and "ticket SEC-A) during this revoke" in out
    west = live(moto_endpoint, "us-west-2").tags
    assert west.get(TAG_REVOCATION_TICKET) == "SEC-B" and not west.get(TAG_RESTORED_AT), west


def revoke_while_another_is_held(
    project: Path, endpoint: str, capsys: pytest.CaptureFixture[str], held: str
) -> tuple[dict[str, int], str, str, str]:
    """Revoke B (SEC-B) starts with its `held` requests held at its proxy; revoke A (SEC-A) runs to its end;
    then B is released. Returns both exit codes, what A printed, A's revocation id as A left it in us-east-1,
    and what B printed."""
    codes: dict[str, int] = {}
    with fault_proxy(endpoint) as proxy_b:
        proxy_b.hold(held, forward=True)
        operator_b = threading.Thread(
            target=lambda: codes.setdefault("B", revoke(project, slow_runtime(proxy_b.url), ticket="SEC-B"))
        )
        operator_b.start()
        assert proxy_b.holding.wait(timeout=60)
        codes["A"] = revoke(project, slow_runtime(endpoint), ticket="SEC-A")
        a_out = unwrap(capsys.readouterr().out)
        a_id = live(endpoint, "us-east-1").tags[TAG_REVOCATION_ID]
        proxy_b.release.set()
        operator_b.join(timeout=60)
    return codes, a_out, a_id, unwrap(capsys.readouterr().out)


# ----------------------------------------------------------------------------- revoke and revoke at once


@dataclasses.dataclass
class TwoRevokes:
    codes: dict[str, int]
    a_id: str
    b_ids: dict[str, str | None]
    a_out: str
    b_out: str


def two_revokes(
    project: Path,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    *,
    b_earliest: bool,
    deny_alignment: bool = False,
) -> TwoRevokes:
    """Revoke B reads every key, then its DisableKeys are held. Revoke A reads (no record anywhere yet),
    disables and records us-east-1 and reads it back; its us-west-2 DisableKey is held. B is released: it
    reads each key again after its DisableKey (`kms_actions._reread_before_record`), so it keeps A's record
    in us-east-1 and writes its own in us-west-2, where A has not recorded yet. B's final check finds the
    mix (A's id in one region, B's in the other) and writes the earliest record over the other one
    (`kms_actions.settle`); B ends. A is released: it reads us-west-2 again after its DisableKey, keeps the
    record it finds there, and its final check reads one record everywhere.
    (Before that re-read, B overwrote A's record in us-east-1 and A's final check aligned the mix.)
    `b_earliest`: B's revoked-at is 2 s before A's (else after). `deny_alignment`: each run's alignment
    write in us-east-1 (A's third TagResource there, after its lease and its record; B's second, after its
    lease) is refused AccessDenied, as AWS answers once the write-once Deny on the record already there is
    in effect."""
    start = datetime.now(UTC).replace(microsecond=0)
    first, later = start, start + timedelta(seconds=2)
    now_a, now_b = (later, first) if b_earliest else (first, later)
    codes: dict[str, int] = {}
    with fault_proxy(endpoint) as proxy_a, fault_proxy(endpoint) as proxy_b:
        proxy_b.hold("DisableKey", forward=True)
        if deny_alignment:
            # B's second: in us-east-1 B keeps A's record, which already blanked the lease B wrote before it.
            proxy_b.fail("us-east-1", 1, {"TagResource"}, status=400, error_type="AccessDeniedException", after=1)
        run_b = dataclasses.replace(slow_runtime(proxy_b.url), now=lambda: now_b)
        operator_b = threading.Thread(
            target=lambda: codes.setdefault("B", revoke(project, run_b, ticket="SEC-B", reason="Leaked token"))
        )
        operator_b.start()
        assert proxy_b.holding.wait(timeout=60)

        proxy_a.hold("DisableKey", region="us-west-2", forward=True)
        if deny_alignment:
            proxy_a.fail("us-east-1", 1, {"TagResource"}, status=400, error_type="AccessDeniedException", after=2)
        # The first read, the read before the record, the read-back.
        east_read_back = proxy_a.watch("us-east-1", "ListResourceTags", count=3)
        run_a = dataclasses.replace(slow_runtime(proxy_a.url), now=lambda: now_a)
        operator_a = threading.Thread(target=lambda: codes.setdefault("A", revoke(project, run_a, ticket="SEC-A")))
        operator_a.start()
        assert proxy_a.holding.wait(timeout=60) and east_read_back.wait(timeout=60)
        a_id = live(endpoint, "us-east-1").tags[TAG_REVOCATION_ID]

        proxy_b.release.set()
        operator_b.join(timeout=60)
        b_out = unwrap(capsys.readouterr().out)
        b_ids = tag(endpoint, TAG_REVOCATION_ID)
        proxy_a.release.set()
        operator_a.join(timeout=60)
    return TwoRevokes(codes, a_id, b_ids, unwrap(capsys.readouterr().out), b_out)


@pytest.mark.parametrize("earliest", ["finished-first", "finished-last"])
def test_two_revokes_at_once_end_with_one_record_the_earliest_in_every_region(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str], earliest: str
) -> None:
    """`two_revokes` leaves A's id in us-east-1 and B's in us-west-2 when B's final check reads; B writes the
    earliest record (by revoked-at) over the other: one revocation id everywhere, both exit 0, and A (which
    reads each key again before its record) keeps it. The run whose record did not stand says ANOTHER
    REVOCATION STANDS with that id and that its reason/ticket were not recorded; B says which region it
    aligned; each prints the id the keys carry at the end."""
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)

    race = two_revokes(project, moto_endpoint, capsys, b_earliest=earliest == "finished-first")

    a_out, a_id, b_out = race.a_out, race.a_id, race.b_out
    assert race.codes == {"A": ExitCode.AS_DECLARED, "B": ExitCode.AS_DECLARED}, (a_out, b_out)
    assert states(moto_endpoint) == dict.fromkeys(REGIONS, "Disabled")
    aligned = re.search(
        r"record aligned: (\S+) \(another revoke at the same time\) replaced by (\S+), the earliest", b_out
    )
    assert aligned is not None, b_out
    b_id = next(found for found in aligned.groups() if found != a_id)  # B's own record, in us-west-2 until aligned
    winner, ticket = (b_id, "SEC-B") if earliest == "finished-first" else (a_id, "SEC-A")
    assert aligned.groups() == ((a_id, b_id) if winner == b_id else (b_id, a_id)), b_out
    assert race.b_ids == dict.fromkeys(REGIONS, winner)  # B's alignment, before A went on
    assert tag(moto_endpoint, TAG_REVOCATION_ID) == dict.fromkeys(REGIONS, winner)
    assert tag(moto_endpoint, TAG_REVOCATION_TICKET) == dict.fromkeys(REGIONS, ticket)
    assert tag(moto_endpoint, TAG_LEASE) == dict.fromkeys(REGIONS, "")
    assert "RECORDS DIFFER" not in a_out + b_out
    assert "record aligned" not in a_out  # A read us-west-2 again before its record: no mix left to align
    loser_out, loser_ticket, winner_out = (a_out, "SEC-A", b_out) if winner == b_id else (b_out, "SEC-B", a_out)
    assert f"ANOTHER REVOCATION STANDS: {winner} (revoked by " in loser_out and f"under {ticket} at" in loser_out
    assert f"this run's reason and ticket {loser_ticket} were NOT recorded" in loser_out
    assert "ANOTHER REVOCATION STANDS" not in winner_out
    for out in (a_out, b_out):
        assert f"+    id: {winner}" in out  # each run's config change names the revocation the keys carry


def test_two_revokes_whose_records_cannot_be_aligned_exit_9_naming_the_regions(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same race, with the write-once Deny already in effect when B aligns, and when A does (AccessDenied):
    every key stays disabled, the two ids stay (A's in us-east-1, B's in us-west-2), and each run says so
    (RECORDS DIFFER, exit 9) with a config change naming the realm's record, the earliest (B's)."""
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)

    race = two_revokes(project, moto_endpoint, capsys, b_earliest=True, deny_alignment=True)

    b_id = race.b_ids["us-west-2"]
    assert race.codes == {"A": ExitCode.RECORD_NOT_WRITTEN, "B": ExitCode.RECORD_NOT_WRITTEN}, race.a_out
    assert states(moto_endpoint) == dict.fromkeys(REGIONS, "Disabled")
    assert race.b_ids == {"us-east-1": race.a_id, "us-west-2": b_id} and b_id != race.a_id
    assert tag(moto_endpoint, TAG_REVOCATION_ID) == race.b_ids
    for out in (race.a_out, race.b_out):
        assert f"record {race.a_id} not aligned to {b_id}: " in out and "AccessDeniedException" in out
        assert (
            f"RECORDS DIFFER: another revocation ran at the same time; the realm's record is the earliest, {b_id}, "
            f"but another stands in us-east-1: writing {b_id} there was refused" in out
        )
        assert f"+    id: {b_id}" in out and "+    ticket: SEC-B" in out  # the stack file names the realm's record


# ----------------------------------------------------------------------------- restore and restore at once


def test_two_restores_that_both_read_the_lease_free_end_enabled_and_each_says_what_it_did(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lease's remaining window: restore A reads us-east-1's lease free, its lease write is held.
    Restore B reads it free too, takes the lease in both regions; its EnableKeys are held. A's write
    lands over B's and reads back as A's (the window: both read "free" within one round trip); in
    us-west-2 A finds B's lease and yields: exit 4, nothing enabled, its lease blanked on the way out.
    B goes on: both regions Enabled under B's record. At release B finds us-east-1's lease blanked by
    the restore that yielded: it says another restore ran, and exits 0 (not "a revocation took over",
    not exit 2): the keys read Enabled as it set them, verified after A had gone."""
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    assert revoke(project, runtime(moto_endpoint), ticket="SEC-0") == ExitCode.AS_DECLARED
    capsys.readouterr()
    codes: dict[str, int] = {}
    with fault_proxy(moto_endpoint) as proxy_a, fault_proxy(moto_endpoint) as proxy_b:
        proxy_a.hold("TagResource", region="us-east-1", forward=True)  # A's lease write, its first write
        operator_a = threading.Thread(
            target=lambda: codes.setdefault("A", restore(project, slow_runtime(proxy_a.url), ticket="SEC-A"))
        )
        operator_a.start()
        assert proxy_a.holding.wait(timeout=60)

        proxy_b.hold("EnableKey", forward=True)
        operator_b = threading.Thread(
            target=lambda: codes.setdefault("B", restore(project, slow_runtime(proxy_b.url), ticket="SEC-B"))
        )
        operator_b.start()
        assert proxy_b.holding.wait(timeout=60)
        b_leases = tag(moto_endpoint, TAG_LEASE)

        proxy_a.release.set()
        operator_a.join(timeout=60)
        a = capsys.readouterr()
        proxy_b.release.set()
        operator_b.join(timeout=60)
        b_out = unwrap(capsys.readouterr().out)
        a_sent = {c.operation for c in proxy_a.calls}

    assert codes == {"A": ExitCode.REFUSED, "B": ExitCode.AS_DECLARED}, b_out
    assert all(value and " restore SEC-B " in value for value in b_leases.values())  # B held both first
    assert "EnableKey" not in a_sent
    assert "us-west-2: another operation holds the lease: cmkctl restore by " in a.err and "under SEC-B" in a.err
    assert "nothing was changed by this restore" in a.err
    assert states(moto_endpoint) == dict.fromkeys(REGIONS, "Enabled")
    assert tag(moto_endpoint, TAG_RESTORE_TICKET) == dict.fromkeys(REGIONS, "SEC-B")
    assert tag(moto_endpoint, TAG_LEASE) == dict.fromkeys(REGIONS, "")
    assert "LEASE TAKEN OVER in us-east-1: the lease was blanked by another operation; another restore ran" in b_out
    assert "RESTORE OVERTAKEN" not in b_out and "a revocation took over" not in b_out


def test_a_revoke_that_read_a_key_torn_by_another_revoke_accepts_its_record(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Revoke B's first read of us-west-2 is torn: DescribeKey answered Enabled, ListResourceTags held
    until revoke A has disabled and recorded every key, so B reads an Enabled key already carrying A's
    open record (bench_races found this: 2 of 40 pairs exited 9 with "the key was enabled without
    `cmkctl restore`"). That record is A's of this moment (enabled tag "false", revoked-at now), not a
    stale one: B accepts it, says A's revocation stands and B's ticket was not recorded, and exits 0."""
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    codes: dict[str, int] = {}
    with fault_proxy(moto_endpoint) as proxy_b:
        proxy_b.hold("ListResourceTags", region="us-west-2", forward=True)
        operator_b = threading.Thread(
            target=lambda: codes.setdefault("B", revoke(project, slow_runtime(proxy_b.url), ticket="SEC-B"))
        )
        operator_b.start()
        assert proxy_b.holding.wait(timeout=60)
        earlier = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
        # A's record is the earliest: B's own record, written where B read no record (us-east-1), is aligned to A's.
        codes["A"] = revoke(project, runtime(moto_endpoint, now=lambda: earlier), ticket="SEC-A")
        a_id = live(moto_endpoint, "us-west-2").tags[TAG_REVOCATION_ID]
        capsys.readouterr()
        proxy_b.release.set()
        operator_b.join(timeout=60)

    b_out = unwrap(capsys.readouterr().out)
    assert codes == {"A": ExitCode.AS_DECLARED, "B": ExitCode.AS_DECLARED}, b_out
    assert states(moto_endpoint) == dict.fromkeys(REGIONS, "Disabled")
    assert tag(moto_endpoint, TAG_REVOCATION_ID) == dict.fromkeys(REGIONS, a_id)
    assert tag(moto_endpoint, TAG_REVOCATION_TICKET) == dict.fromkeys(REGIONS, "SEC-A")
    assert "RECORD-MISSING" not in b_out and "enabled without `cmkctl restore`" not in b_out
    assert f"ANOTHER REVOCATION STANDS: {a_id} (revoked by " in b_out
    assert "this run's reason and ticket SEC-B were NOT recorded" in b_out


def test_with_two_generations_a_revoke_reads_the_keys_after_cloudtrail_so_it_never_overwrites_a_finished_revoke(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15's attack, finding 5: two revokes at once on a stack with two generations enrolled both exited 0
    printing their own revocation id while the keys carried one. The guard's CloudTrail lookups (paced on
    AWS: seconds) ran beside the key reads, so revoke B acted on keys read before revoke A's record landed
    and overwrote it after A had reported it. Here B's LookupEvents are held at its proxy while A runs to
    its end: B reads the keys only after CloudTrail, finds A's open record on every key of both
    generations, writes none of its own, and says A's revocation stands."""
    project, current, following = two_generations(tmp_path, moto_endpoint, "preparing")
    codes, a_out, a_id, b_out = revoke_while_another_is_held(project, moto_endpoint, capsys, "LookupEvents")
    assert codes == {"A": ExitCode.AS_DECLARED, "B": ExitCode.AS_DECLARED}, b_out
    assert f"+    id: {a_id}" in a_out
    for key in (*current, *following):
        reading = read_key(kms(moto_endpoint, key.region), key.region, key.key_id)
        assert reading.key is not None
        tags = reading.key.tags
        assert (tags[TAG_REVOCATION_ID], tags[TAG_REVOCATION_TICKET]) == (a_id, "SEC-A"), key
    assert f"ANOTHER REVOCATION STANDS: {a_id} (revoked by " in b_out
    assert "this run's reason and ticket SEC-B were NOT recorded" in b_out
    assert f"+    id: {a_id}" in b_out  # B's config change names the revocation that stands, as A's did


def test_a_revoke_that_ended_keeps_the_id_it_printed_when_a_slower_revoke_records_after_it(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by bench/bench_races.py (revoke/revoke, 1 generation, seed 12345, trial 1; "claimed id !=
    keys' id"). Revoke B reads the keys (Enabled, no record) and its DisableKeys are held. Revoke A runs to
    its end: disables, records its id, its final check reads its own record, exit 0 printing `id: <A>`.
    B is released. Before: its record tags came from its first read (no record), so they overwrote A's in
    every region (moto enforces no key policy; on AWS the write-once Deny keys on aws:ResourceTag, which
    may lag the tags by minutes, AWS KMS Developer Guide "Use tags to control access to KMS keys"), B
    printed `id: <B>`, and A's operator committed an id that was on no key. Now B reads each key again
    after its DisableKey and before its record (`kms_actions._reread_before_record`): A's open record is
    kept, and B says ANOTHER REVOCATION STANDS naming A's id. What holds: every revoke that exits 0
    printed the id the keys carry at the end."""
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    codes, a_out, a_id, b_out = revoke_while_another_is_held(project, moto_endpoint, capsys, "DisableKey")

    assert states(moto_endpoint) == dict.fromkeys(REGIONS, "Disabled")
    assert f"+    id: {a_id}" in a_out
    ids = tag(moto_endpoint, TAG_REVOCATION_ID)
    for name, out in (("A", a_out), ("B", b_out)):
        if codes[name] == ExitCode.AS_DECLARED:
            claimed = {line.split("id:", 1)[1].strip() for line in out.splitlines() if line.startswith("+    id:")}
            assert claimed == set(ids.values()), (name, claimed, ids, out)
    assert ids == dict.fromkeys(REGIONS, a_id), (ids, b_out)  # A's record stands in every region
    assert f"ANOTHER REVOCATION STANDS: {a_id} (revoked by " in b_out  # B read the key again before its record
    assert "this run's reason and ticket SEC-B were NOT recorded" in b_out


def test_a_restore_whose_first_read_of_a_region_failed_never_rewrites_the_revocation_as_one_it_met(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by bench/bench_races.py (--generations 2, revoke/restore, seed 12345 with a second bench running:
    a connect timeout on one region's first read). One operator, no race: the keys are revoked (SEC-0), and
    the restore's first ListResourceTags in us-east-1 is refused once (a throttle). The restore goes on: it
    takes its lease in us-west-2 only (acquire_lease skips an unreadable region: "changes nothing there"),
    yet its chain enables us-east-1 too; its first-read traces have no us-east-1 entry, so at its final
    check SEC-0's own trace there reads as "a revoke ran meanwhile": RESTORE OVERTAKEN naming SEC-0's revoke,
    SPLIT lines, and both keys disabled again under a NEW revocation id, exit 2. With two generations the
    next keys keep SEC-0's id (records mixed), and the id the revoke printed (and the operator committed) is
    on no current key. Now restore refuses (exit 3) with nothing changed until it can read every region: no
    invented overtaking, the revocation's id stays the one the keys carried; the rerun restores."""
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    assert revoke(project, runtime(moto_endpoint), ticket="SEC-0") == ExitCode.AS_DECLARED
    first_id = live(moto_endpoint, "us-east-1").tags[TAG_REVOCATION_ID]
    capsys.readouterr()
    with fault_proxy(moto_endpoint) as proxy:
        proxy.fail("us-east-1", 1, {"ListResourceTags"}, status=400, error_type="ThrottlingException")
        code = restore(project, runtime(proxy.url, attempts=1))
        sent = {call.operation for call in proxy.calls}
    out = unwrap(capsys.readouterr().out + capsys.readouterr().err)

    assert code == ExitCode.UNREACHABLE, out
    assert "RESTORE OVERTAKEN" not in out, out
    assert not sent & {"EnableKey", "TagResource", "DisableKey"}, sent  # nothing changed anywhere
    assert states(moto_endpoint) == dict.fromkeys(REGIONS, "Disabled")
    assert tag(moto_endpoint, TAG_REVOCATION_ID) == dict.fromkeys(REGIONS, first_id), out
    assert restore(project, runtime(moto_endpoint)) == ExitCode.AS_DECLARED  # the rerun reads every region
    assert states(moto_endpoint) == dict.fromkeys(REGIONS, "Enabled")


def test_a_restore_and_a_revoke_at_once_on_two_generations_leave_every_key_disabled_and_status_names_any_second_record(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12 review, finding 2. Two generations, SEC-0 revoked; restore A's us-west-2 EnableKey is held while
    revoke B runs to its end (it aligns every key to the earliest record, SEC-0); then A goes on, finds B's
    trace at its final check and yields. Every key of both generations ends Disabled; SEC-0's record stands
    where A's restore did not close it after B's alignment, and A's record of B's revocation (a new id: the
    key policy never lets break-glass reopen the id A's restore closed) on the key where it did: two open
    records, which `cmkctl status` names (RECORDS DIFFER, exit 9) instead of passing them silently, and
    the clock stays SEC-0's (the earliest record). Before: nothing said so."""
    project, current, following = two_generations(tmp_path, moto_endpoint, "preparing")
    earlier = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    assert revoke(project, runtime(moto_endpoint, now=lambda: earlier), ticket="SEC-0") == ExitCode.AS_DECLARED
    capsys.readouterr()
    codes = restore_held_while_revoke_runs(project, moto_endpoint, "EnableKey", "us-west-2")
    out = unwrap(capsys.readouterr().out)

    keys = [read_key(kms(moto_endpoint, k.region), k.region, k.key_id).key for k in (*current, *following)]
    assert all(key is not None and key.key_state == "Disabled" for key in keys), out
    assert codes["A"] == ExitCode.SPLIT and codes["B"] in (ExitCode.AS_DECLARED, ExitCode.RECORD_NOT_WRITTEN), (
        codes,
        out,
    )
    assert "RESTORE OVERTAKEN: cmkctl revoke by " in out and "under SEC-B" in out
    open_ids = {key.tags[TAG_REVOCATION_ID] for key in keys if key is not None and not key.tags.get(TAG_RESTORED_AT)}
    assert len(open_ids) == 2 and all(key is not None and not key.tags.get(TAG_RESTORED_AT) for key in keys), open_ids
    # The restore was overtaken within seconds: SEC-0's revocation and its clock stand (the earliest record),
    # never a later one (issue 12 second review: the clock must not restart).
    assert "SEC-0" in {key.tags.get(TAG_REVOCATION_TICKET) for key in keys if key is not None}

    status = main(["status", "--project-dir", str(project)], runtime=runtime(moto_endpoint))

    said = unwrap(capsys.readouterr().out)
    assert status == ExitCode.RECORD_NOT_WRITTEN, said
    assert "RECORDS DIFFER: the disabled keys carry 2 revocation records (" in said
    assert all(rid in said for rid in open_ids)
    assert f"revoked at {earlier.strftime('%Y-%m-%dT%H:%M:%SZ')}" in said  # SEC-0's time: the clock never restarts


def test_a_revoke_that_overtakes_a_restore_never_restarts_the_clock_under_the_key_policy(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12 second review: SEC-0 revoked 8 days ago (2 days left to reinstate); restore A's us-west-2
    EnableKey is held while revoke B runs to its end; then A goes on and yields. Both through proxies that
    refuse what the key policy denies (tests/support/key_policy_proxy.py: B's write over SEC-0's open record
    is refused, as on AWS). A had closed SEC-0 where it enabled, and wrote B's revocation over it with B's
    time: the clock read 10 days left. The keys were enabled for seconds, which restores nothing: every
    record A writes now keeps SEC-0's time, so the realm's clock (the earliest record) is still SEC-0's."""
    project, current, following = two_generations(tmp_path, moto_endpoint, "preparing")
    eight_days_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(days=8)
    with fault_proxy(moto_endpoint) as proxy:
        enforce_key_policy(proxy, moto_endpoint, project)
        rt = runtime(proxy.url, now=lambda: eight_days_ago)
        assert revoke(project, rt, ticket="SEC-0") == ExitCode.AS_DECLARED
    first = iso(eight_days_ago)
    capsys.readouterr()
    codes: dict[str, int] = {}
    with fault_proxy(moto_endpoint) as proxy_a, fault_proxy(moto_endpoint) as proxy_b:
        denied = [*enforce_key_policy(proxy_a, moto_endpoint, project)]
        denied_b = enforce_key_policy(proxy_b, moto_endpoint, project)
        proxy_a.hold("EnableKey", region="us-west-2", forward=True)
        operator_a = threading.Thread(
            target=lambda: codes.setdefault("A", restore(project, slow_runtime(proxy_a.url), ticket="SEC-A"))
        )
        operator_a.start()
        assert proxy_a.holding.wait(timeout=60)
        codes["B"] = revoke(project, slow_runtime(proxy_b.url), ticket="SEC-B", reason="Incident B")
        proxy_a.release.set()
        operator_a.join(timeout=60)
    out = unwrap(capsys.readouterr().out)

    keys = [read_key(kms(moto_endpoint, k.region), k.region, k.key_id).key for k in (*current, *following)]
    assert all(key is not None and key.key_state == "Disabled" for key in keys), out
    assert codes["A"] == ExitCode.SPLIT, (codes, out)
    assert denied_b, "B's write over SEC-0's open record is refused by the key policy"
    times = [key.tags[TAG_REVOKED_AT] for key in keys if key is not None and not key.tags.get(TAG_RESTORED_AT)]
    assert min(times) == first, (times, denied, out)  # the clock: the earliest open record, still SEC-0's
    # The keys A closed (us-west-2's current key, both next keys) carry the revocation under SEC-0's time.
    closed_by_a = [keys[1], *keys[2:]]  # current us-west-2 (REGIONS order), then both next keys
    assert all(key is not None and key.tags[TAG_REVOKED_AT] == first for key in closed_by_a), closed_by_a
