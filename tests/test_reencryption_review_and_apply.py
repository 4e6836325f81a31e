"""What the reviewer reads about `nextKeys` (cmkctl impact), and the rehearsal's stand-in for `pulumi up`
(`rehearsal/apply.py`) holding to what the engine and the provider do: never deleting a key, keeping
the break-glass record tags, removing tags the program no longer declares."""

from __future__ import annotations

from typing import Any

import pytest

from atlassian_cmk.config import parse_stack_config
from atlassian_cmk.naming import TAG_REVOKED_AT
from atlassian_cmk.review import Change, review_change
from rehearsal.apply import ApplyRefused, DeployedStack, apply_program
from rehearsal.program_run import run_program
from tests.support.cmkctl import emulator_clients
from tests.test_config import engine_config
from tests.test_program_generations import PREPARING, generation_arns

IN_PROGRESS = {**PREPARING, "reencryption": {"status": "in-progress", "ticket": "PS-1"}}


def changes(base: dict[str, Any], head: dict[str, Any], kind: str) -> list[Change]:
    review = review_change(
        parse_stack_config(engine_config(**base)), parse_stack_config(engine_config(**head)), "prod", "main"
    )
    return [c for c in review.changes if c.kind == kind]


def test_recording_next_keys_names_the_arns_to_hand_atlassian() -> None:
    (change,) = changes(PREPARING, {**PREPARING, "nextKeys": generation_arns(2)}, "next-keys")
    assert change.severity == "warning"
    assert change.summary.startswith("NEXT KEYS RECORDED: hand these ARNs to Atlassian on the re-encryption ticket")
    assert "manual: the organization admin requests re-encryption" in change.summary
    assert change.details.splitlines() == [f"+ {region}: {arn}" for region, arn in generation_arns(2).items()]


def test_changing_recorded_next_keys_is_critical() -> None:
    base = {**IN_PROGRESS, "nextKeys": generation_arns(2)}
    (change,) = changes(base, {**IN_PROGRESS, "nextKeys": generation_arns(3)}, "next-keys")
    assert change.severity == "critical" and change.blocks  # cmkctl impact exits 4, as for enrolledKeys
    assert "Atlassian re-encrypts to the ARNs on its ticket" in change.summary
    assert f"- us-east-1: {generation_arns(2)['us-east-1']}" in change.details
    assert f"+ us-east-1: {generation_arns(3)['us-east-1']}" in change.details


def test_a_promotion_is_no_next_keys_change() -> None:
    base = {**IN_PROGRESS, "reencryption": {"status": "complete", "ticket": "PS-1"}, "nextKeys": generation_arns(2)}
    head = {
        "reencryption": {"status": "complete", "ticket": "PS-1"},
        "enrolledKeys": generation_arns(2),
        "retiredKeys": [generation_arns(1)],
    }
    assert changes(base, head, "next-keys") == []


def test_in_progress_without_recorded_next_keys_says_how_to_record_them() -> None:
    (change,) = changes(PREPARING, IN_PROGRESS, "reencryption")
    assert "atlassian-cmk:nextKeys is not recorded" in change.details
    assert "cmkctl enroll --next --write-config" in change.details
    (recorded,) = changes(
        {**PREPARING, "nextKeys": generation_arns(2)}, {**IN_PROGRESS, "nextKeys": generation_arns(2)}, "reencryption"
    )
    assert "nextKeys is not recorded" not in recorded.details


# --- rehearsal/apply.py ---------------------------------------------------------------------------


def applied(raw: dict[str, Any], deployed: DeployedStack, endpoint: str) -> Any:
    return apply_program(run_program(raw, preview=False), deployed, emulator_clients(endpoint))


def tags_of(endpoint: str, region: str, key_id: str) -> dict[str, str]:
    listed = emulator_clients(endpoint)("kms", region).list_resource_tags(KeyId=key_id)["Tags"]
    return {t["TagKey"]: t["TagValue"] for t in listed}


def test_apply_refuses_a_program_that_drops_a_deployed_key_and_changes_nothing(moto_endpoint: str) -> None:
    """Back to `none` before promotion: the protected next keys would be deleted, which the engine refuses."""
    deployed = DeployedStack()
    applied(engine_config(reencryption={"status": "preparing", "ticket": "PS-1"}), deployed, moto_endpoint)
    before = {name: tags_of(moto_endpoint, key.region, key.key_id) for name, key in deployed.keys.items()}

    with pytest.raises(ApplyRefused, match=r"no longer registers the protected key resource.*cmk-gen2-us-east-1"):
        applied(engine_config(), deployed, moto_endpoint)

    assert {name: tags_of(moto_endpoint, key.region, key.key_id) for name, key in deployed.keys.items()} == before
    states = {
        emulator_clients(moto_endpoint)("kms", key.region).describe_key(KeyId=key.key_id)["KeyMetadata"]["KeyState"]
        for key in deployed.keys.values()
    }
    assert states == {"Enabled"}


def test_apply_keeps_the_record_tags_and_removes_tags_the_program_does_not_declare(moto_endpoint: str) -> None:
    deployed = DeployedStack()
    applied(engine_config(), deployed, moto_endpoint)
    key = deployed.keys["cmk-us-east-1"]
    kms = emulator_clients(moto_endpoint)("kms", key.region)
    kms.tag_resource(
        KeyId=key.key_id,
        Tags=[{"TagKey": TAG_REVOKED_AT, "TagValue": "2026-11-29T12:00:00Z"}, {"TagKey": "team", "TagValue": "x"}],
    )

    report = applied(engine_config(reencryption={"status": "preparing", "ticket": "PS-1"}), deployed, moto_endpoint)

    tags = tags_of(moto_endpoint, key.region, key.key_id)
    assert tags[TAG_REVOKED_AT] == "2026-11-29T12:00:00Z"  # ignore_tags: the provider leaves it
    assert "team" not in tags  # an unmanaged tag is removed on the next apply
    assert tags["atlassian-cmk:reencryption"] == "preparing"
    assert "cmk-us-east-1" in report.updated and "cmk-gen2-us-east-1" in report.created
