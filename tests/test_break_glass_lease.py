"""The break-glass lease keeps two revoke/restore operations on one stack from interleaving (issue 12 item 4).

Against moto through the fault proxy; each case asserts the exit code, every region's key state and
tags read from the emulator (not from cmkctl's output), and what the refused run sent. The races are
engineered with the proxy holding one region's DisableKey, EnableKey or lease write on an event, never
with sleeps. The decision under test: revocation never waits for coordination; restore yields.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from atlassian_cmk.cli.main import Runtime, main
from atlassian_cmk.composed_policy import composed_key_policy
from atlassian_cmk.config import TAG_VALUE_MAX
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.iam_policy import Request, effective_kms_decision, parse_policy
from atlassian_cmk.iam_roles import role_policy, role_scope
from atlassian_cmk.lease import LEASE_TTL, Lease, UnreadableLease, judge_lease, new_lease, parse_lease
from atlassian_cmk.naming import (
    TAG_LEASE,
    TAG_RESTORE_TICKET,
    TAG_RESTORED_AT,
    TAG_REVOCATION_ID,
    TAG_REVOCATION_TICKET,
)
from atlassian_cmk.stack_file import load_stack_config
from tests.support.cmkctl import REGIONS, STACK, kms, live, provision, runtime, stack_dir, unwrap
from tests.support.faults import Call, fast_client_factory, fault_proxy

MOTO_CALLER = "arn:aws:sts::123456789012:user/moto"
ALICE = "arn:aws:sts::123456789012:assumed-role/cmk-break-glass/alice"
READ_ONLY = {"GetCallerIdentity", "DescribeKey", "ListResourceTags", "ListAliases", "LookupEvents"}


def revoke(project: Path, rt: Runtime, *extra: str, ticket: str = "SEC-1") -> int:
    args = ["revoke", "--project-dir", str(project), "--reason", "Suspected breach", "--ticket", ticket, "--yes"]
    return main([*args, *extra], runtime=rt)


def restore(project: Path, rt: Runtime, *extra: str, ticket: str = "SEC-B") -> int:
    return main(["restore", "--project-dir", str(project), "--ticket", ticket, "--yes", *extra], runtime=rt)


def states(endpoint: str) -> dict[str, str]:
    return {region: live(endpoint, region).key_state for region in REGIONS}


def leases(endpoint: str) -> dict[str, str | None]:
    return {region: live(endpoint, region).tags.get(TAG_LEASE) for region in REGIONS}


def plant(endpoint: str, value: str) -> None:
    """Another operation's lease on every key, as its TagResource would have left it."""
    for region in REGIONS:
        kms(endpoint, region).tag_resource(
            KeyId=live(endpoint, region).key_id, Tags=[{"TagKey": TAG_LEASE, "TagValue": value}]
        )


# ----------------------------------------------------------------------------- the engineered race


def test_restore_during_a_slow_revoke_refuses_naming_the_holder_and_changes_nothing(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Operator A's revoke has disabled and recorded us-east-1 (its record released the lease there); its
    us-west-2 DisableKey is held in the proxy, its lease there written beside it. Operator B's restore,
    started meanwhile, is refused (exit 4) naming A's lease and sends no EnableKey; A then converges
    (exit 0) and its record releases the lease: no split."""
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    codes: dict[str, int] = {}
    with fault_proxy(moto_endpoint) as proxy_a, fault_proxy(moto_endpoint) as proxy_b:
        proxy_a.hold("DisableKey", region="us-west-2", forward=True)
        east_recorded = proxy_a.watch("us-east-1", "TagResource", count=2)  # the lease, then the record
        west_leased = proxy_a.watch("us-west-2", "TagResource")  # the lease, beside the held DisableKey
        slow = dataclasses.replace(
            runtime(proxy_a.url), client_factory=fast_client_factory(proxy_a.url, read_timeout=60)
        )
        operator_a = threading.Thread(target=lambda: codes.setdefault("revoke", revoke(project, slow)))
        operator_a.start()
        assert proxy_a.holding.wait(timeout=60) and east_recorded.wait(timeout=60) and west_leased.wait(timeout=60)
        held = leases(moto_endpoint)

        codes["restore"] = restore(project, runtime(proxy_b.url))
        refused = capsys.readouterr()
        states_meanwhile = states(moto_endpoint)

        proxy_a.release.set()
        operator_a.join(timeout=60)

    assert codes == {"restore": ExitCode.REFUSED, "revoke": ExitCode.AS_DECLARED}, refused.err
    assert states_meanwhile == {"us-east-1": "Disabled", "us-west-2": "Enabled"}  # B changed no key's state
    assert "EnableKey" not in proxy_b.operations() and "DisableKey" not in proxy_b.operations()
    assert held["us-east-1"] == ""  # released by A's record in the same TagResource
    lease = parse_lease(held["us-west-2"])
    assert isinstance(lease, Lease)
    assert (lease.command, lease.ticket, lease.holder) == ("revoke", "SEC-1", MOTO_CALLER)
    assert "REFUSED: another operation is changing stack prod:" in refused.err
    assert (
        f"us-west-2: another operation holds the lease: cmkctl revoke by {MOTO_CALLER} under SEC-1 since "
        f"{lease.lease_id[6:10]}-" in refused.err
    )
    assert f"(lease {lease.lease_id}, expires " in refused.err
    assert "wait for it to finish" in refused.err and "nothing was changed by this restore" in refused.err
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Disabled"}
    for region in REGIONS:
        tags = live(moto_endpoint, region).tags
        assert tags[TAG_LEASE] == "" and tags[TAG_REVOCATION_TICKET] == "SEC-1"
        assert TAG_RESTORED_AT not in tags and TAG_RESTORE_TICKET not in tags


def test_a_revoke_started_during_a_slow_restore_takes_over_and_ends_disabled_everywhere(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Restore A holds the lease; its us-east-1 is enabled, its us-west-2 EnableKey is held in proxy A.
    Revoke B starts: it does not wait, says it takes over, disables us-east-1 and writes its lease beside
    (us-west-2's lease write is held in proxy B). A's us-west-2 EnableKey then lands, after B's read: A
    finishes, finds its lease taken over and exits 2 naming the revocation. B's final check finds
    us-west-2 re-enabled by that restore and disables it again, once: disabled everywhere, exit 0."""
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    assert revoke(project, runtime(moto_endpoint), ticket="SEC-0") == ExitCode.AS_DECLARED
    capsys.readouterr()
    codes: dict[str, int] = {}
    with fault_proxy(moto_endpoint) as proxy_a, fault_proxy(moto_endpoint) as proxy_b:
        proxy_a.hold("EnableKey", region="us-west-2", forward=True)
        east_restored = proxy_a.watch("us-east-1", "TagResource", count=2)  # A's lease, then its record
        slow_a = dataclasses.replace(
            runtime(proxy_a.url), client_factory=fast_client_factory(proxy_a.url, read_timeout=60)
        )
        operator_a = threading.Thread(target=lambda: codes.setdefault("restore", restore(project, slow_a)))
        operator_a.start()
        assert proxy_a.holding.wait(timeout=60) and east_restored.wait(timeout=60)

        proxy_b.hold("TagResource", region="us-west-2", forward=True)  # B's lease write there, its first write
        east_disabled = proxy_b.watch("us-east-1", "DisableKey")
        # B's final check reads us-west-2 (its second DescribeKey there: B sends no DisableKey where its first
        # read found the key Disabled) before A's own yield disables it (A meets B's trace at its final check):
        # which of the two disables us-west-2 again is otherwise a matter of timing (B's chain reads each key
        # again before its record, kms_actions._reread_before_record, so its final check comes a round later).
        west_checked = proxy_b.watch("us-west-2", "DescribeKey", count=2)

        def after_b_checked_west(call: Call, _: bytes) -> None:
            if (call.region, call.operation) == ("us-west-2", "DisableKey"):
                west_checked.wait(timeout=60)

        proxy_a.observe = after_b_checked_west
        slow_b = dataclasses.replace(
            runtime(proxy_b.url), client_factory=fast_client_factory(proxy_b.url, read_timeout=60)
        )
        operator_b = threading.Thread(target=lambda: codes.setdefault("revoke", revoke(project, slow_b)))
        operator_b.start()
        assert proxy_b.holding.wait(timeout=60) and east_disabled.wait(timeout=60)

        proxy_a.release.set()  # A's EnableKey in us-west-2 lands after B's DisableKey
        operator_a.join(timeout=60)
        proxy_b.release.set()
        operator_b.join(timeout=60)

    out = unwrap(capsys.readouterr().out)
    assert codes == {"restore": ExitCode.SPLIT, "revoke": ExitCode.AS_DECLARED}, out
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Disabled"}
    assert leases(moto_endpoint) == dict.fromkeys(REGIONS, "")
    assert f"a restore by {MOTO_CALLER} (ticket SEC-B) was in progress; revocation takes over" in out
    assert "DISABLED AGAIN us-west-2: re-enabled by " in out and "during this revoke; disabled again" in out
    assert "RESTORE OVERTAKEN: a revocation took over this restore's lease in us-east-1" in out
    assert "LEASE TAKEN OVER in us-east-1: " in out and "under revocation rev-" in out
    assert [c.operation for c in proxy_a.calls].count("EnableKey") == 2  # once per region, never retried
    # A's restore record closed SEC-0 in both regions before B wrote: a closed record is never reopened under
    # its id (the key policy's ProtectCmkEvidenceNextRecordNewId), so B's own record (SEC-1) stands, one id.
    records = [live(moto_endpoint, region).tags for region in REGIONS]
    assert len({tags[TAG_REVOCATION_ID] for tags in records}) == 1, records
    for tags in records:
        assert tags[TAG_REVOCATION_TICKET] == "SEC-1" and tags.get(TAG_RESTORED_AT, "") == ""


def test_a_key_changed_between_the_read_and_the_lease_refuses_the_restore_and_releases(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone enables us-east-1 (outside cmkctl) after the restore read the keys and before its lease
    is written: the plan is stale, so nothing is changed and the lease taken so far is released."""
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    assert revoke(project, runtime(moto_endpoint)) == ExitCode.AS_DECLARED
    capsys.readouterr()
    with fault_proxy(moto_endpoint) as proxy:
        proxy.hold("TagResource", region="us-east-1", forward=True)  # the lease write, the run's first write
        codes: list[int] = []
        run = threading.Thread(target=lambda: codes.append(restore(project, runtime(proxy.url))))
        run.start()
        assert proxy.holding.wait(timeout=60)
        east = live(moto_endpoint, "us-east-1")
        kms(moto_endpoint, "us-east-1").enable_key(KeyId=east.key_id)
        proxy.release.set()
        run.join(timeout=60)
        sent = [c.operation for c in proxy.calls]

    err = capsys.readouterr().err
    assert codes == [ExitCode.REFUSED], err
    assert "DisableKey" not in sent and "EnableKey" not in sent
    assert states(moto_endpoint) == {"us-east-1": "Enabled", "us-west-2": "Disabled"}
    assert "us-east-1: the key changed since this run read it (state Disabled -> Enabled)" in err
    assert leases(moto_endpoint) == dict.fromkeys(REGIONS, "")  # released in us-east-1; never taken in us-west-2
    assert TAG_RESTORED_AT not in live(moto_endpoint, "us-east-1").tags


# ----------------------------------------------------------------------------- stale leases


def test_an_expired_lease_refuses_the_restore_until_broken_explicitly_then_it_runs(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crashed restore left its lease; it expired. The next restore is refused (exit 4, nothing changed)
    with the holder, ticket, since when, and the exact flag to break it; with that flag the lease is
    broken (reported) and the restore converges and releases its own."""
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    assert revoke(project, runtime(moto_endpoint)) == ExitCode.AS_DECLARED
    stale = new_lease("restore", "SEC-OLD", ALICE, datetime.now(UTC) - LEASE_TTL - timedelta(minutes=1))
    plant(moto_endpoint, stale.tag_value())
    capsys.readouterr()

    assert restore(project, runtime(moto_endpoint)) == ExitCode.REFUSED
    err = capsys.readouterr().err
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Disabled"}
    assert leases(moto_endpoint) == dict.fromkeys(REGIONS, stale.tag_value())
    assert f"cmkctl restore by {ALICE} under SEC-OLD since " in err and "expired " in err
    assert f"if that operation is gone, break it: rerun with --break-lease {stale.lease_id}" in err

    assert restore(project, runtime(moto_endpoint), "--break-lease", stale.lease_id) == ExitCode.AS_DECLARED
    out = unwrap(capsys.readouterr().out)
    assert states(moto_endpoint) == {"us-east-1": "Enabled", "us-west-2": "Enabled"}
    assert leases(moto_endpoint) == dict.fromkeys(REGIONS, "")
    for region in REGIONS:
        assert f"LEASE BROKEN in {region} (expired or unreadable): cmkctl restore by {ALICE} under SEC-OLD" in out


def test_an_unexpired_lease_cannot_be_broken(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    assert revoke(project, runtime(moto_endpoint)) == ExitCode.AS_DECLARED
    running = new_lease("restore", "SEC-NOW", ALICE, datetime.now(UTC))
    plant(moto_endpoint, running.tag_value())

    code = restore(project, runtime(moto_endpoint), "--break-lease", running.lease_id)

    assert code == ExitCode.REFUSED
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Disabled"}
    assert leases(moto_endpoint) == dict.fromkeys(REGIONS, running.tag_value())
    assert "it has not expired, so --break-lease cannot break it" in capsys.readouterr().err


def test_a_lease_cmkctl_cannot_read_holds_a_restore_until_broken_by_its_first_word(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    assert revoke(project, runtime(moto_endpoint)) == ExitCode.AS_DECLARED
    plant(moto_endpoint, "manual-hold by the SOC")
    capsys.readouterr()

    assert restore(project, runtime(moto_endpoint)) == ExitCode.REFUSED
    assert "an unreadable lease 'manual-hold by the SOC'" in capsys.readouterr().err
    assert restore(project, runtime(moto_endpoint), "--break-lease", "manual-hold") == ExitCode.AS_DECLARED
    assert states(moto_endpoint) == {"us-east-1": "Enabled", "us-west-2": "Enabled"}


@pytest.mark.parametrize("held_by", ["restore", "revoke", "unreadable"])
def test_revocation_never_waits_for_a_lease(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str], held_by: str
) -> None:
    """Any lease, unexpired or unreadable: revoke disables every region anyway, says so for a restore's
    lease, and leaves the lease released (its record's TagResource blanks it)."""
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    lease = new_lease("restore" if held_by == "restore" else "revoke", "SEC-NOW", ALICE, datetime.now(UTC))
    plant(moto_endpoint, "manual-hold by the SOC" if held_by == "unreadable" else lease.tag_value())

    assert revoke(project, runtime(moto_endpoint)) == ExitCode.AS_DECLARED

    out = unwrap(capsys.readouterr().out)
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Disabled"}
    assert leases(moto_endpoint) == dict.fromkeys(REGIONS, "")
    takeover = f"a restore by {ALICE} (ticket SEC-NOW) was in progress; revocation takes over"
    assert (takeover in out) == (held_by == "restore")


def test_a_malformed_break_lease_value_is_a_one_line_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["restore", "--project-dir", str(tmp_path), "--ticket", "T-1", "--break-lease", "a b"])
    assert code == ExitCode.USAGE
    assert capsys.readouterr().err.strip().splitlines() == [
        "cmkctl: restore: --break-lease: 'a b' is not allowed; allowed: the lease id a refusal names, e.g. "
        "lease-20310301T120000Z-3f9a1c2b (one word, at most 256)"
    ]


# ----------------------------------------------------------------------------- the tag value (pure rules)


def test_the_lease_tag_round_trips_and_fits_a_kms_tag_value_however_long_ticket_and_holder() -> None:
    now = datetime(2031, 3, 1, 12, 0, 0, tzinfo=UTC)
    normal = new_lease("revoke", "SEC-1234", ALICE, now)
    assert parse_lease(normal.tag_value()) == normal
    assert normal.acquired_at == now and normal.expires_at == now + LEASE_TTL
    long = new_lease("restore", "T" * 256, "arn:aws:sts::123456789012:assumed-role/" + "r" * 64 + "/" + "s" * 64, now)
    value = long.tag_value()
    assert len(value) <= TAG_VALUE_MAX
    parsed = parse_lease(value)
    assert isinstance(parsed, Lease) and parsed.lease_id == long.lease_id and parsed.expires_at == long.expires_at


@pytest.mark.parametrize(
    ("value", "break_lease", "minutes_later", "verdict"),
    [
        (None, None, 0, "free"),
        ("", None, 0, "free"),  # a released lease
        ("OTHER", None, 0, "held"),  # unreadable: held until broken
        ("OTHER", "OTHER", 0, "breakable"),
        ("FRESH", None, 0, "held"),
        ("FRESH", "FRESH_ID", 0, "held"),  # named, but not expired
        ("FRESH", "FRESH_ID", 11, "breakable"),
        ("FRESH", "another-id", 11, "held"),  # expired, but not the one named
    ],
)
def test_judging_a_keys_lease(value: str | None, break_lease: str | None, minutes_later: int, verdict: str) -> None:
    now = datetime(2031, 3, 1, 12, 0, 0, tzinfo=UTC)
    mine = new_lease("revoke", "SEC-1", MOTO_CALLER, now)
    fresh = new_lease("restore", "SEC-2", ALICE, now)
    values = {"FRESH": fresh.tag_value()}
    named = {"FRESH_ID": fresh.lease_id}.get(break_lease or "", break_lease)
    finding = judge_lease(values.get(value or "", value), mine, now + timedelta(minutes=minutes_later), named)
    assert finding.verdict == verdict
    assert judge_lease(mine.tag_value(), mine, now, None).verdict == "ours"
    assert isinstance(parse_lease("OTHER"), UnreadableLease)


@pytest.mark.parametrize(
    ("what", "lease_id", "expires", "minutes_later", "verdict"),
    [
        (
            "a far-future expiry, acquired now",
            "lease-20310301T120000Z-aaaa0000",
            "2099-01-01T00:00:00Z",
            0,
            "breakable",
        ),
        (
            "expiry and acquired time both far ahead",
            "lease-20990101T000000Z-aaaa0000",
            "2099-01-01T00:10:00Z",
            0,
            "breakable",
        ),
        ("an id without a time, far expiry", "lease-forever", "2099-01-01T00:00:00Z", 0, "breakable"),
        (
            "expiry one minute past acquired + TTL",
            "lease-20310301T120000Z-aaaa0000",
            "2031-03-01T12:11:00Z",
            0,
            "breakable",
        ),
        (
            "acquired + TTL passed, expiry written later",
            "lease-20310301T115000Z-aaaa0000",
            "2031-03-01T12:05:00Z",
            0,
            "breakable",
        ),
        (
            "within TTL + skew of the breaker's clock",
            "lease-20310301T120400Z-aaaa0000",
            "2031-03-01T12:14:00Z",
            0,
            "held",
        ),
        (
            "acquired time ahead by more than TTL + skew",
            "lease-20310301T121000Z-aaaa0000",
            "2031-03-01T12:20:00Z",
            0,
            "breakable",
        ),
        ("an ordinary lease, not yet expired", "lease-20310301T120000Z-aaaa0000", "2031-03-01T12:10:00Z", 9, "held"),
    ],
)
def test_no_lease_holds_beyond_its_ttl_so_break_lease_can_end_it(
    what: str, lease_id: str, expires: str, minutes_later: int, verdict: str
) -> None:
    now = datetime(2031, 3, 1, 12, 0, 0, tzinfo=UTC)
    mine = new_lease("restore", "SEC-1", MOTO_CALLER, now)
    value = f"{lease_id} restore SEC-OLD {expires} {ALICE}"

    finding = judge_lease(value, mine, now + timedelta(minutes=minutes_later), lease_id)

    assert finding.verdict == verdict, what
    if verdict == "breakable" and expires.startswith("2099"):
        assert finding.reason is not None and "beyond the 10-minute lease bound, so expired" in finding.reason


# ----------------------------------------------------------------------------- the policies on the lease's requests


def test_the_lease_requests_are_allowed_to_break_glass_and_to_nobody_read_only(
    tmp_path: Path, moto_endpoint: str
) -> None:
    """moto enforces nothing: the composed key policy and the generated roles, evaluated on the lease's
    concrete requests (take, release with "", break another's expired lease with "")."""
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    config = load_stack_config(project, STACK)
    key_policy = parse_policy(json.loads(composed_key_policy(config, account_id="123456789012", partition="aws")))
    scope = role_scope(config, STACK, "123456789012")
    key = live(moto_endpoint, "us-east-1")
    other = new_lease("restore", "SEC-OLD", ALICE, datetime(2031, 3, 1, tzinfo=UTC)).tag_value()

    def decide(role: str, value: str, on_key: str | None, action: str = "kms:TagResource") -> bool:
        resource_tags = {**key.tags, **({TAG_LEASE: on_key} if on_key is not None else {})}
        context: dict[str, str | list[str]] = {f"aws:ResourceTag/{k}": v for k, v in resource_tags.items()}
        context.update({"aws:TagKeys": [TAG_LEASE], f"aws:RequestTag/{TAG_LEASE}": value})
        principal = f"arn:aws:iam::123456789012:role/cmk-{role}"
        identity = parse_policy(role_policy(role, scope))  # type: ignore[arg-type]
        return effective_kms_decision(key_policy, identity, Request(principal, action, key.arn, context)).allowed

    mine = new_lease("revoke", "SEC-1", MOTO_CALLER, datetime(2031, 3, 1, tzinfo=UTC)).tag_value()
    assert decide("break-glass", mine, None)  # take
    assert decide("break-glass", mine, "")  # take after a release
    assert decide("break-glass", "", mine)  # release
    assert decide("break-glass", "", other)  # break an expired lease (cmkctl checks expiry and the id)
    assert not decide("break-glass", "", mine, action="kms:UntagResource")  # only ever blanked, never untagged
    assert not decide("preview", mine, None)
