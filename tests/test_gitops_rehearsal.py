"""The review loop, rehearsed: each pull request to Pulumi.prod.yaml judged as CI judges it.

For every scenario: the deployed keys are held in moto's HTTP server (created exactly as the
component creates them), the real program runs under Pulumi mocks with the pull request's stack
file, every registered resource goes to the real policy pack over its wire protocol, and the
reviewer's impact summary is computed from the same two files.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from atlassian_cmk.aws.provision import ProvisionedKey, create_key_pair
from atlassian_cmk.config import parse_stack_config
from atlassian_cmk.naming import TAG_REENCRYPTION, TAG_REVOKED_AT
from atlassian_cmk.stack_file import raw_config_from_text
from atlassian_cmk.timeline import iso
from rehearsal.policy_pack_client import describe
from rehearsal.pull_request import Rehearsal, load_policy_config, rehearse_pull_request
from tests.support.aws import aws_env

ROOT = Path(__file__).resolve().parents[1]
PROD = (ROOT / "Pulumi.prod.yaml").read_text()
CI_POLICY_CONFIG = load_policy_config((ROOT / "policies" / "policy-config.json").read_text())
REVOCATION = "  atlassian-cmk:revocation:\n    reason: Suspected breach of encrypted data\n    ticket: SEC-1234\n"


def revoked(text: str, revocation: str = REVOCATION) -> str:
    return text.replace("atlassian-cmk:enabled: true", "atlassian-cmk:enabled: false") + revocation


def reencryption(text: str, status: str) -> str:
    return text.replace("    status: none", f"    status: {status}\n    ticket: PS-77")


@pytest.fixture
def deploy(aws: Any) -> Iterator[Any]:
    """Deploy a stack file's keys into the emulator, as `pulumi up` would have left them."""

    def deployed(text: str) -> list[ProvisionedKey]:
        config = parse_stack_config(raw_config_from_text(text))
        return create_key_pair(config, "prod", client_factory=aws)

    yield deployed


def rehearse(base: str, head: str, endpoint: str) -> Rehearsal:
    return rehearse_pull_request(base, head, env=aws_env(endpoint), policy_config=CI_POLICY_CONFIG)


def test_revoke_while_reencryption_is_live_is_blocked(moto_endpoint: str, deploy: Any) -> None:
    base = reencryption(PROD, "in-progress")
    deploy(base)
    result = rehearse(base, revoked(base), moto_endpoint)
    assert result.blocked and result.blocking_policies() == ["no-revocation-during-reencryption"], describe(
        result.violations
    )
    assert "tagged re-encryption in-progress" in result.mandatory[0].message
    assert result.review.revokes


def test_revoke_and_clear_reencryption_in_one_pull_request_is_blocked(moto_endpoint: str, deploy: Any) -> None:
    base = reencryption(PROD, "in-progress")
    deploy(base)
    result = rehearse(base, revoked(reencryption(PROD, "complete")), moto_endpoint)
    assert result.blocking_policies() == ["no-revocation-during-reencryption"], describe(result.violations)
    assert {v.urn.rsplit("::", 1)[1] for v in result.mandatory} == {"cmk-us-east-1", "cmk-us-west-2"}
    assert "apply reencryption.status: complete alone, then this change" in result.mandatory[0].message
    kinds = [c.kind for c in result.review.changes]
    assert kinds[0] == "revocation" and "reencryption" in kinds


def test_clear_reencryption_apply_then_revoke_is_allowed(moto_endpoint: str, deploy: Any, aws: Any) -> None:
    base = reencryption(PROD, "in-progress")
    keys = deploy(base)
    complete = reencryption(PROD, "complete")

    first = rehearse(base, complete, moto_endpoint)
    assert not first.blocked, describe(first.violations)
    for key in keys:  # what `pulumi up` of the first pull request does to the live tags
        aws("kms", key.region).tag_resource(
            KeyId=key.key_id, Tags=[{"TagKey": TAG_REENCRYPTION, "TagValue": "complete"}]
        )

    second = rehearse(complete, revoked(complete), moto_endpoint)
    assert not second.blocked, describe(second.violations)
    assert second.review.revokes
    assert "REVOCATION" in second.review.to_markdown()


def test_revocation_without_ticket_is_blocked_before_any_resource(moto_endpoint: str, deploy: Any) -> None:
    deploy(PROD)
    result = rehearse(PROD, revoked(PROD, "  atlassian-cmk:revocation:\n    reason: breach\n"), moto_endpoint)
    assert result.blocked and result.preview_failed
    assert result.run is not None and result.run.resources == []
    assert result.review.errors == ["atlassian-cmk:revocation.ticket: missing; required: non-empty text"]
    assert "is invalid" in result.review.to_markdown()


def test_a_key_policy_that_drops_atlassian_is_blocked(
    moto_endpoint: str, deploy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pull request edits the program so its key policy no longer grants Atlassian and skips the
    program's own check: the pack still sees the loss, against the deployed key."""
    from atlassian_cmk import composed_policy, key_policy

    def without_atlassian(**kwargs: Any) -> dict[str, Any]:
        document = key_policy.build_key_policy(**kwargs)
        document["Statement"] = [s for s in document["Statement"] if s["Sid"] == key_policy.SID_ROOT]
        return document

    deploy(PROD)
    monkeypatch.setattr(composed_policy, "build_key_policy", without_atlassian)
    monkeypatch.setattr(composed_policy, "key_policy_findings", lambda *args, **kwargs: [])
    result = rehearse(PROD, PROD, moto_endpoint)
    assert result.blocking_policies() == ["key-policy-keeps-access"], describe(result.violations)
    messages = "\n".join(v.message for v in result.mandatory)
    assert "Atlassian's statement 'SAMPLEAtlassianUseOfTheKey' (principal " in messages


def test_a_key_pending_deletion_blocks_any_change(moto_endpoint: str, deploy: Any, aws: Any) -> None:
    keys = deploy(PROD)
    west = next(k for k in keys if k.region == "us-west-2")
    aws("kms", "us-west-2").schedule_key_deletion(KeyId=west.key_id, PendingWindowInDays=30)  # someone, by hand
    result = rehearse(PROD, PROD.replace("# Production stack", "# The production stack"), moto_endpoint)
    assert result.blocking_policies() == ["deployed-keys-intact"], describe(result.violations)
    message = next(v.message for v in result.mandatory if "us-west-2" in v.message)
    assert "PendingDeletion" in message and "cancel-key-deletion" in message
    assert result.keys_updated_alone() == []


def test_a_revocation_while_one_region_is_pending_deletion_updates_no_region_alone(
    moto_endpoint: str, deploy: Any, aws: Any
) -> None:
    keys = deploy(PROD)
    west = next(k for k in keys if k.region == "us-west-2")
    aws("kms", "us-west-2").schedule_key_deletion(KeyId=west.key_id, PendingWindowInDays=30)
    result = rehearse(PROD, revoked(PROD), moto_endpoint)
    assert result.blocking_policies() == ["deployed-keys-intact"], describe(result.violations)
    assert result.run is not None and result.steps is not None
    assert {k.urn for k in result.run.kms_keys} <= result.steps.refused()  # us-east-1 is refused too
    assert result.keys_updated_alone() == []


def test_restore_is_allowed_and_the_impact_shows_the_window(moto_endpoint: str, deploy: Any, aws: Any) -> None:
    base = revoked(PROD)
    keys = deploy(base)
    for key in keys:  # revoked with `cmkctl revoke`, which records the time
        aws("kms", key.region).tag_resource(
            KeyId=key.key_id, Tags=[{"TagKey": TAG_REVOKED_AT, "TagValue": iso(datetime.now(UTC))}]
        )
    result = rehearse(base, PROD, moto_endpoint)
    assert not result.blocked, describe(result.violations)
    assert [c.kind for c in result.review.changes] == ["restoration"]
    markdown = result.review.to_markdown()
    assert "within 10 days" in markdown and "reply on the same Atlassian support ticket" in markdown
    (clock,) = result.advisory
    assert clock.policy == "revocation-clock" and "reinstatement possible until" in clock.message


def test_an_unrelated_change_is_allowed_and_says_nothing_is_revoked(moto_endpoint: str, deploy: Any) -> None:
    deploy(PROD)
    result = rehearse(PROD, PROD.replace("# Production stack", "# The production stack"), moto_endpoint)
    assert not result.blocked and result.violations == [], describe(result.violations)
    assert result.review.changes == []
    assert "nothing is revoked or restored" in result.review.to_markdown()
    assert result.run is not None and result.run.warnings == []


def test_changing_atlassians_statements_without_a_declared_revision_is_blocked(moto_endpoint: str, deploy: Any) -> None:
    """The new key policy matches the new config, so only the deployed key policy shows the change."""
    deploy(PROD)
    replaced = PROD.replace("role/SAMPLE-AtlassianCmkAccess\n", "role/SomethingElse\n")
    result = rehearse(PROD, replaced, moto_endpoint)
    assert result.blocking_policies() == ["key-policy-keeps-access"], describe(result.violations)
    assert (
        "this change alters or drops Atlassian's deployed statement 'SAMPLEAtlassianUseOfTheKey' (principal "
        "arn:aws:iam::279766244153:role/SAMPLE-AtlassianCmkAccess)" in result.mandatory[0].message
    )
    change = next(c for c in result.review.changes if c.kind == "atlassian-key-policy")
    assert change.severity == "critical"
    assert "WITHOUT a new atlassian-cmk:atlassianKeyPolicyRevision" in change.summary


def test_changing_atlassians_statements_under_a_declared_revision_is_allowed_and_shown(
    moto_endpoint: str, deploy: Any
) -> None:
    deploy(PROD)
    # Atlassian adds a principal (keeping the one it had): allowed under the marker and shown.
    both = "[arn:aws:iam::279766244153:role/SAMPLE-AtlassianCmkAccess, arn:aws:iam::279766244153:role/SomethingElse]"
    replaced = PROD.replace(
        "AWS: arn:aws:iam::279766244153:role/SAMPLE-AtlassianCmkAccess\n", f"AWS: {both}\n"
    ).replace(
        "  # atlassian-cmk:atlassianKeyPolicyRevision: ATL-1234", "  atlassian-cmk:atlassianKeyPolicyRevision: ATL-1234"
    )
    result = rehearse(PROD, replaced, moto_endpoint)
    assert not result.blocked, describe(result.violations)
    change = next(c for c in result.review.changes if c.kind == "atlassian-key-policy")
    assert change.severity == "warning"
    assert (
        change.summary
        == "Atlassian's key-policy statements change, declared as Atlassian's revision (none) -> ATL-1234"
    )
    assert '+ {"Action": ["kms:Encrypt"' in change.details and "role/SomethingElse" in change.details


def test_the_demo_pull_request_messages_fit_the_line_length_and_say_each_sentence_once(
    moto_endpoint: str, deploy: Any
) -> None:
    """The demo's first pull request (revoke during re-encryption): what a person reads in the terminal."""
    import re

    from atlassian_cmk.realm_findings import MESSAGE_LIMIT
    from rehearsal.pull_request import SUMMARY_WIDTH

    base = reencryption(PROD, "in-progress")
    deploy(base)
    result = rehearse(base, revoked(base), moto_endpoint)

    assert result.blocked and result.violations
    assert max(len(line) for line in result.summary().splitlines()) <= SUMMARY_WIDTH == 100
    for violation in result.violations:
        sentences = [s.strip() for s in re.split(r"(?<=[.;])\s+", violation.message) if s.strip()]
        repeated = {s for s in sentences if sentences.count(s) > 1}
        assert not repeated, repeated
        # pulumi_policy sends the policy's description, then the violation's own message: that is bounded.
        own = violation.message.split("\n", 1)[1]
        assert len(own) <= MESSAGE_LIMIT, (len(own), own)
        assert own.count("in-progress") == 1 and "arn:aws:kms" not in own  # both regions' tags in one sentence
    # The program's warning and the reviewer's summary in a code block: within the columns too.
    assert result.run is not None
    assert all(len(line) <= 100 for warning in result.run.warnings for line in warning.splitlines())
    assert all(len(line) <= 100 for line in result.review.to_markdown().split("```")[1].splitlines())


def test_unquoting_the_context_tag_fails_the_impact_check_with_the_quote_advice(
    moto_endpoint: str, deploy: Any
) -> None:
    base = PROD.replace("atlassian-cmk:contextTag: AcmeCMK", "atlassian-cmk:contextTag: '0012345'")
    deploy(base)
    result = rehearse(base, base.replace("'0012345'", "0012345"), moto_endpoint)
    # The engine hands the program 5349 (octal), a valid tag, and the sample statement has no
    # encryption-context condition for the program to check it against: only the impact check stops it.
    assert result.run is not None and result.run.error is None
    assert result.impact_failed and result.blocked
    assert result.summary().startswith("BLOCKED") and "quote it: '0012345'" in result.summary()
    assert any(
        "atlassian-cmk:contextTag: 0012345 is read by Pulumi as the number 5349; quote it: '0012345'" in error
        for error in result.review.errors
    ), result.review.errors


def test_enabled_false_in_capitals_is_a_revocation_everywhere(moto_endpoint: str, deploy: Any) -> None:
    deploy(PROD)
    head = revoked(PROD).replace("atlassian-cmk:enabled: false", "atlassian-cmk:enabled: FALSE")
    result = rehearse(PROD, head, moto_endpoint)
    assert result.review.valid and result.review.revokes
    assert result.run is not None and all(
        key.inputs.get("isEnabled", key.inputs.get("enabled")) is False for key in result.run.kms_keys
    )
