"""The follow-up rule on its own (`atlassian_cmk.follow_up_rules`): the cases the rehearsal does not
run through the pack (tests/test_break_glass_follow_up.py runs the issue's variants over gRPC)."""

from __future__ import annotations

from atlassian_cmk.config import Reencryption, Revocation
from atlassian_cmk.follow_up_rules import HeldKey, follow_up_findings, held_key
from atlassian_cmk.live_keys import LiveKey
from atlassian_cmk.naming import (
    TAG_GUARD_OVERRIDE,
    TAG_REENCRYPTION,
    TAG_RESTORED_AT,
    TAG_REVOCATION_ID,
    TAG_REVOCATION_REASON,
    TAG_REVOCATION_TICKET,
    TAG_REVOKED_AT,
)

ID = "rev-20261129T170000Z-3f9a1c"
RECORD = {"id": ID, "reason": "Suspected breach", "ticket": "SEC-1", "override": "SOC says so"}
BLOCK = Revocation(reason="Suspected breach", ticket="SEC-1", override="SOC says so", id=ID)
RUNNING = Reencryption("in-progress", "PS-77")
IDLE = Reencryption("none")


def keys(*records: dict[str, str] | None, disabled: bool = True, status: str = "in-progress") -> list[HeldKey]:
    regions = ("us-east-1", "us-west-2")
    return [HeldKey(region, disabled, status, record) for region, record in zip(regions, records, strict=True)]


def causes(revocation: Revocation | None, declared: Reencryption, held: list[HeldKey]) -> list[tuple[str, str | None]]:
    applied = [(key.region, key.reencryption) for key in held]
    return [(f.cause, f.region) for f in follow_up_findings(revocation, declared, applied, held)]


def test_the_keys_record_in_every_region_is_the_follow_up() -> None:
    assert causes(BLOCK, RUNNING, keys(RECORD, RECORD)) == []


def test_another_reason_would_rewrite_the_record_on_apply_and_is_named_with_both_values() -> None:
    block = Revocation(reason="Something else", ticket="SEC-1", override="SOC says so", id=ID)
    found = causes(block, RUNNING, keys(RECORD, RECORD))
    cause = (
        "the revocation block's reason 'Something else' is not the keys' 'Suspected breach' "
        "(atlassian-cmk:revocation-reason)"
    )
    assert found == [(cause, "us-east-1"), (cause, "us-west-2")]


def test_a_region_without_the_record_refuses_until_the_rerun_writes_it() -> None:
    found = causes(BLOCK, RUNNING, keys(RECORD, None))
    assert [region for _cause, region in found] == ["us-west-2"]
    assert "no current revocation record" in found[0][0] and "run cmkctl revoke again" in found[0][0]


def test_a_key_still_enabled_during_reencryption_is_left_to_the_guards_own_refusal() -> None:
    assert causes(BLOCK, RUNNING, keys(RECORD, RECORD, disabled=False)) == []


def test_outside_reencryption_a_revocation_by_pull_request_alone_compares_nothing() -> None:
    ordinary = Revocation(reason="Suspected breach", ticket="SEC-1")
    assert causes(ordinary, IDLE, keys(None, None, disabled=False, status="none")) == []


def test_outside_reencryption_keys_revoked_by_break_glass_need_their_record_copied() -> None:
    plain = {key: value for key, value in RECORD.items() if key != "override"}
    block = Revocation(reason="Suspected breach", ticket="SEC-1", id=ID)
    assert causes(block, IDLE, keys(plain, plain, status="none")) == []
    without_id = Revocation(reason="Suspected breach", ticket="SEC-1")
    found = causes(without_id, IDLE, keys(plain, plain, status="none"))
    assert {cause for cause, _region in found} == {
        f"the revocation block's id (none) is not the keys' '{ID}' (atlassian-cmk:revocation-id)"
    }


def test_a_restored_record_is_history_so_its_id_is_a_stale_copy() -> None:
    tags = {
        TAG_REVOCATION_ID: ID,
        TAG_REVOKED_AT: "2026-11-29T17:00:00Z",
        TAG_REVOCATION_REASON: "Suspected breach",
        TAG_REVOCATION_TICKET: "SEC-1",
        TAG_GUARD_OVERRIDE: "",
        TAG_RESTORED_AT: "2026-11-30T09:00:00Z",
        TAG_REENCRYPTION: "none",
    }
    held = [held_key(LiveKey(r, "k", f"arn:aws:kms:{r}:1:key/k", "Enabled", False, tags)) for r in ("us-east-1",)]
    assert held[0].record is None
    found = causes(Revocation(reason="Suspected breach", ticket="SEC-1", id=ID), IDLE, held)
    assert [cause.split(" now")[0] for cause, _region in found] == [
        f"the revocation block's id '{ID}' names a record no key carries"
    ]


def test_without_the_keys_impact_checks_the_shape_and_the_status_against_the_base() -> None:
    base = [(None, "in-progress")]
    assert follow_up_findings(BLOCK, RUNNING, base, None) == ()
    bare = Revocation(reason="Suspected breach", ticket="SEC-1")
    assert [f.cause.split(";")[0] for f in follow_up_findings(bare, RUNNING, base, None)] == [
        "the revocation block has no id",
        "the revocation block has no override",
    ]
    (status,) = follow_up_findings(BLOCK, Reencryption("complete"), base, None)
    assert status.cause.startswith("reencryption.status 'complete' is not the applied 'in-progress'")
    assert follow_up_findings(bare, IDLE, [(None, "none")], None) == ()
