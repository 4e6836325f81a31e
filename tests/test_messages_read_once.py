"""Messages a person reads once: the pack's realm violations and cmkctl's text.

A realm violation is at most `MESSAGE_LIMIT` characters for one cause (one region, or every region
alike), says each cause once (a cause several regions share names them together) and the remedy
once; cmkctl's text lines fit `TEXT_WIDTH` columns and say no sentence twice. The demo's own pull
request is judged end to end in tests/test_gitops_rehearsal.py and the drill's output in
tests/test_drill.py; these are the per-message cases, judged through the same functions the pack
and cmkctl call.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from atlassian_cmk.aws.kms_actions import with_attempts
from atlassian_cmk.cli.output import fit, text_width
from atlassian_cmk.cli.render import render_change
from atlassian_cmk.config import Reencryption
from atlassian_cmk.display import TEXT_WIDTH, fit_lines
from atlassian_cmk.guards import REENCRYPTION_REMEDY, deployed_integrity, reencryption_running
from atlassian_cmk.identity_rules import alias_findings
from atlassian_cmk.live_keys import DeployedState, LiveKey, RegionReading
from atlassian_cmk.naming import TAG_REENCRYPTION, TAG_STACK
from atlassian_cmk.realm_findings import MESSAGE_LIMIT, RealmFinding, realm_message
from atlassian_cmk.workflows.changes import ChangeReport, RegionChange
from policies.guardrails import access, reencryption

REGIONS = ("us-east-1", "us-west-2")
ACCOUNT = "123456789012"
KEY_IDS = {"us-east-1": "0e0de11c-f597-4154-a4e6-e75b4605e861", "us-west-2": "be0f49ef-6d8a-4c8f-a6e1-44a73276444d"}


def arn(region: str, key_id: str | None = None) -> str:
    return f"arn:aws:kms:{region}:{ACCOUNT}:key/{key_id or KEY_IDS[region]}"


def key(region: str, state: str = "Enabled", reencryption_tag: str | None = "none") -> LiveKey:
    tags = {TAG_STACK: "prod"}
    if reencryption_tag is not None:
        tags[TAG_REENCRYPTION] = reencryption_tag
    return LiveKey(region, KEY_IDS[region], arn(region), state, False, tags)


def enrolled(*keys: LiveKey, alias_targets: dict[str, str] | None = None) -> DeployedState:
    targets = alias_targets or {}
    readings = tuple(
        RegionReading(k.region, k, enrolled_arn=k.arn, alias_target=targets.get(k.region, k.arn)) for k in keys
    )
    return DeployedState("prod", "alias/atlassian-cmk/prod", readings, enrolled=True)


def sentences(text: str) -> list[str]:
    """Sentences end at a period followed by a space (not the periods inside an ARN or a version)."""
    return [s.strip() for s in re.split(r"(?<=\.)\s+", text) if s.strip()]


def repeated(text: str) -> set[str]:
    said = sentences(text)
    return {s for s in said if said.count(s) > 1}


def check_message(message: str) -> None:
    assert len(message) <= MESSAGE_LIMIT, (len(message), message)
    assert not repeated(message), message
    assert "\n" not in message


# ----------------------------------------------------------------------------- realm_message


def test_a_cause_several_regions_share_is_said_once_naming_them() -> None:
    findings = [
        RealmFinding("the deployed key is gone", "us-east-1"),
        RealmFinding("the deployed key is gone", "us-west-2"),
    ]
    message = realm_message(REGIONS, findings, "Restore it")
    assert message == (
        "Held back with the realm's keys (us-east-1, us-west-2) so no region changes alone. "
        "us-east-1 and us-west-2: the deployed key is gone. Restore it."
    )


def test_a_realm_wide_cause_is_said_once_and_the_advice_last_once() -> None:
    findings = [RealmFinding("the configuration is wrong"), RealmFinding("the configuration is wrong")]
    message = realm_message(REGIONS, findings, "Fix it.")
    assert message.endswith("so no region changes alone. The configuration is wrong. Fix it.")
    assert message.count("Fix it") == 1


def test_a_cause_that_repeats_the_advice_is_dropped() -> None:
    message = realm_message(REGIONS, [RealmFinding("wait"), RealmFinding("fix it")], "Fix it.")
    assert message.endswith("alone. Wait. Fix it.")


# ----------------------------------------------------------------------------- the realm rules, per message


def reencryption_message(declared: Reencryption, deployed: DeployedState | None) -> str:
    verdict = reencryption_running(declared, deployed)
    assert not verdict.allowed
    return realm_message(REGIONS, (RealmFinding(r) for r in verdict.reasons), reencryption.DISABLING_ADVICE)


def test_reencryption_declared_and_tagged_in_both_regions_is_one_short_message() -> None:
    """The demo's pull request 1: once ~860 characters, the remedy twice and both ARNs in full."""
    deployed = enrolled(
        key("us-east-1", reencryption_tag="in-progress"), key("us-west-2", reencryption_tag="in-progress")
    )
    message = reencryption_message(Reencryption("in-progress", "PS-77"), deployed)

    check_message(message)
    assert "Re-encryption is declared in progress (ticket PS-77)." in message
    assert "The deployed key in each of us-east-1 and us-west-2 is tagged re-encryption in-progress." in message
    assert message.count("in-progress") == 1  # the tags, once for both regions
    assert "arn:aws:kms" not in message  # the region names the enrolled key
    assert REENCRYPTION_REMEDY not in message  # the pack's ADVICE says it, once
    assert message.endswith("apply reencryption.status: complete alone, then this change.")


def test_reencryption_tagged_in_one_region_names_that_region_alone() -> None:
    deployed = enrolled(key("us-east-1", reencryption_tag="in-progress"), key("us-west-2"))
    message = reencryption_message(Reencryption("complete"), deployed)

    check_message(message)
    assert "The deployed key in us-east-1 is tagged re-encryption in-progress." in message
    assert "us-west-2 is" not in message


def test_reencryption_tags_of_different_values_are_one_sentence_each() -> None:
    deployed = enrolled(key("us-east-1", reencryption_tag=None), key("us-west-2", reencryption_tag="running"))
    message = reencryption_message(Reencryption("complete"), deployed)

    # Two causes: no length bound (MESSAGE_LIMIT is for one), but each said once.
    assert not repeated(message) and message.count("us-west-2 has") == 1
    assert f"The deployed key in us-east-1 has no {TAG_REENCRYPTION} tag" in message
    assert f"The deployed key in us-west-2 has {TAG_REENCRYPTION} 'running'" in message


def test_cmkctl_revoke_still_gets_the_remedy_once() -> None:
    """break_glass.revoke_refusal prints the reasons, then the verdict's advice, once."""
    deployed = enrolled(
        key("us-east-1", reencryption_tag="in-progress"), key("us-west-2", reencryption_tag="in-progress")
    )
    verdict = reencryption_running(Reencryption("in-progress"), deployed)
    assert verdict.advice == REENCRYPTION_REMEDY
    assert not any(REENCRYPTION_REMEDY in reason for reason in verdict.reasons)


def test_an_unreadable_region_gets_no_reencryption_remedy() -> None:
    deployed = DeployedState(
        "prod", "alias/atlassian-cmk/prod", (RegionReading("us-east-1", error="AccessDeniedException: no"),)
    )
    verdict = reencryption_running(Reencryption("complete"), deployed)
    assert not verdict.allowed and verdict.advice == ""


def test_a_key_pending_deletion_is_named_by_region_with_its_command_and_the_stake_once() -> None:
    west = key("us-west-2", state="PendingDeletion")
    verdict = deployed_integrity(enrolled(key("us-east-1"), west))
    message = realm_message(REGIONS, [*(RealmFinding(r) for r in verdict.reasons), RealmFinding(verdict.advice)])

    check_message(message)
    assert (
        f"The deployed key in us-west-2 is PendingDeletion: run `aws kms cancel-key-deletion --region us-west-2 "
        f"--key-id {west.key_id}`, then enable it." in message
    )
    assert message.count(west.key_id) == 1 and west.arn not in message
    assert message.endswith("Deploying now would create a new key Atlassian has never been given.")


def test_an_enrolled_key_that_is_gone_is_named_once() -> None:
    gone = arn("us-east-1", "00000000-0000-4000-8000-000000000000")
    deployed = DeployedState(
        "prod",
        "alias/atlassian-cmk/prod",
        (
            RegionReading("us-east-1", enrolled_arn=gone),
            RegionReading("us-west-2", key("us-west-2"), enrolled_arn=arn("us-west-2")),
        ),
        enrolled=True,
    )
    verdict = deployed_integrity(deployed)
    message = realm_message(REGIONS, [*(RealmFinding(r) for r in verdict.reasons), RealmFinding(verdict.advice)])

    check_message(message)
    assert message.count(gone) == 1
    assert f"The enrolled key {gone} is not found: the key Atlassian holds in us-east-1 is gone" in message


def test_a_moved_alias_is_one_message_within_the_limit() -> None:
    decoy = arn("us-west-2", "029ff24a-44de-4822-a685-8253ff63b8bb")
    deployed = enrolled(key("us-east-1"), key("us-west-2"), alias_targets={"us-west-2": decoy})
    findings = [RealmFinding(f.message) for f in alias_findings(deployed)]
    message = realm_message(REGIONS, findings)

    # enrolled-keys-kept names both ARNs and the command: over MESSAGE_LIMIT (docs/policy-pack.md), said once.
    assert not repeated(message) and message.count(decoy) == 1


def test_the_key_policy_rule_says_its_advice_in_one_sentence() -> None:
    assert len(sentences(access.ADVICE)) == 1
    assert len(access.ADVICE) <= 200, len(access.ADVICE)


# ----------------------------------------------------------------------------- cmkctl text


def change_report(*changes: RegionChange) -> ChangeReport:
    return ChangeReport(
        action="revoke",
        caller=f"arn:aws:sts::{ACCOUNT}:assumed-role/BreakGlass/alice",
        at=datetime(2026, 11, 29, tzinfo=UTC),
        regions=changes,
    )


def test_a_key_lost_row_names_the_arn_once_and_fits_the_width() -> None:
    lost = key("us-west-2", state="PendingDeletion")
    detail = (
        f"the key is PendingDeletion: run `aws kms cancel-key-deletion --region us-west-2 --key-id {lost.key_id}` "
        "(the key comes back Disabled), then run cmkctl again"
    )
    text = render_change(
        change_report(
            RegionChange("us-east-1", "changed", "disabled", 1, key("us-east-1", "Disabled")),
            RegionChange("us-west-2", "key-lost", detail, 1, lost),
        )
    )

    assert text.count(lost.arn) == 1
    assert max(len(line) for line in text.splitlines()) <= TEXT_WIDTH, text
    assert "us-west-2       KEY-LOST       PendingDeletion" in text


def test_a_failed_region_says_its_attempts_once() -> None:
    """botocore's own count (HTTP requests of one call) and the region chain's attempts in one place."""
    detail = with_attempts("DisableKey failed: AccessDeniedException: denied after 3 attempts", 3)
    assert detail == "DisableKey failed: AccessDeniedException: denied (after 3 attempts of up to 3 requests each)"
    assert detail.count("attempts") == 1
    assert with_attempts("not verified: still Enabled", 2) == "not verified: still Enabled (after 2 attempts)"


def test_a_long_line_wraps_at_spaces_never_inside_an_arn() -> None:
    long = "  CRITICAL: " + " ".join(["word"] * 30) + " " + arn("us-east-1")
    lines = fit_lines([long])
    assert all(len(line) <= TEXT_WIDTH for line in lines)
    assert lines[0].startswith("  CRITICAL:") and all(line.startswith("    ") for line in lines[1:])
    assert " ".join(line.strip() for line in lines) == long.strip()


def test_a_line_that_fits_is_kept_as_is() -> None:
    row = "us-east-1  Disabled   -      complete       2026-11-29 18:16Z  2026-12-09 18:16Z  10.0   "
    assert fit_lines([row]) == [row]


@pytest.mark.parametrize("width", [60, 94])
def test_the_text_width_follows_the_context(width: int) -> None:
    line = " ".join(["word"] * 40)
    with text_width(width):
        assert max(len(part) for part in fit([line])) <= width
    assert max(len(part) for part in fit([line])) <= TEXT_WIDTH
