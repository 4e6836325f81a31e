"""The shipped roles carry out a whole re-encryption (issue 15), and no more: each role evaluated
(key policy AND IAM, `effective_kms_decision`) on the requests each step makes (README
"Re-encrypting, step by step"; the provider's calls: terraform-provider-aws internal/service/kms/
key.go and alias.go), and the attacks denied. moto enforces no IAM, so the documents are evaluated."""

from __future__ import annotations

import json
from typing import Any

from atlassian_cmk.composed_policy import composed_key_policy
from atlassian_cmk.config import StackConfig, parse_stack_config
from atlassian_cmk.iam_policy import Decision, Request, effective_kms_decision, parse_policy
from atlassian_cmk.iam_roles import role_policy, role_scope
from atlassian_cmk.naming import TAG_ENROLLED, TAG_KEY_PAIR, TAG_REENCRYPTION, TAG_REVOCATION_ID, TAG_STACK
from atlassian_cmk.stack_file import raw_config_from_text
from rehearsal.iam_samples import ROOT, SAMPLE_ACCOUNT, SAMPLE_ENROLLED, enrolled_stack_text

APPLY = f"arn:aws:iam::{SAMPLE_ACCOUNT}:role/cmk-apply"
BREAK_GLASS = f"arn:aws:iam::{SAMPLE_ACCOUNT}:role/cmk-break-glass"
PREVIEW = f"arn:aws:iam::{SAMPLE_ACCOUNT}:role/cmk-preview"
PRINCIPALS = {"apply": APPLY, "break-glass": BREAK_GLASS, "preview": PREVIEW}
OLD = SAMPLE_ENROLLED["us-east-1"]
NEW = f"arn:aws:kms:us-east-1:{SAMPLE_ACCOUNT}:key/9999abcd-12ab-34cd-56ef-1234567890ab"
NEW_WEST = f"arn:aws:kms:us-west-2:{SAMPLE_ACCOUNT}:key/8888abcd-12ab-34cd-56ef-1234567890ab"
OTHER = f"arn:aws:kms:us-east-1:{SAMPLE_ACCOUNT}:key/0000aaaa-other-team-key-000000000000"
ALIAS = f"arn:aws:kms:us-east-1:{SAMPLE_ACCOUNT}:alias/atlassian-cmk/prod"
NEXT_ALIAS = f"arn:aws:kms:us-east-1:{SAMPLE_ACCOUNT}:alias/atlassian-cmk/prod/next"
NEXT_TAGS = {TAG_STACK: "prod", TAG_KEY_PAIR: "next", TAG_REENCRYPTION: "preparing"}
OTHER_TEAMS_KEY_POLICY = parse_policy(
    {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{SAMPLE_ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ]
    }
)


def phase(status: str, *, next_keys: bool = False, promoted: bool = False) -> StackConfig:
    raw = raw_config_from_text(enrolled_stack_text())
    raw["atlassian-cmk:applyRoleArn"] = APPLY
    raw["atlassian-cmk:reencryption"] = json.dumps({"status": status, "ticket": "PS-5678"})
    if next_keys:
        raw["atlassian-cmk:nextKeys"] = json.dumps({"us-east-1": NEW, "us-west-2": NEW_WEST})
    if promoted:
        raw["atlassian-cmk:enrolledKeys"] = json.dumps({"us-east-1": NEW, "us-west-2": NEW_WEST})
        raw["atlassian-cmk:retiredKeys"] = json.dumps([SAMPLE_ENROLLED])
    return parse_stack_config(raw)


def decide(
    cfg: StackConfig,
    role: str,
    action: str,
    resource: str,
    *,
    tags: dict[str, str] | None = None,
    aliases: list[str] | None = None,
    request_tags: dict[str, str] | None = None,
    foreign: bool = False,
) -> Decision:
    identity = parse_policy(role_policy(role, role_scope(cfg, "prod", None)))  # type: ignore[arg-type]
    context: dict[str, Any] = {f"aws:ResourceTag/{k}": v for k, v in (tags or {}).items()}
    if aliases is not None:
        context["kms:ResourceAliases"] = aliases
    if request_tags is not None:
        context.update({f"aws:RequestTag/{k}": v for k, v in request_tags.items()})
        context["aws:TagKeys"] = list(request_tags)
    if foreign:
        key_policy = OTHER_TEAMS_KEY_POLICY
    else:
        key_policy = parse_policy(json.loads(composed_key_policy(cfg, account_id=SAMPLE_ACCOUNT, partition="aws")))
    return effective_kms_decision(key_policy, identity, Request(PRINCIPALS[role], action, resource, context))


NEXT_ALIAS_NAME = ["alias/atlassian-cmk/prod/next"]


def test_prepare_apply_creates_reads_rotates_and_aliases_the_next_generation() -> None:
    cfg = phase("preparing")
    # aws_kms_key create: CreateKey with the tags (TagResource on "*"), then read back and rotation,
    # before the alias exists; then aws_kms_alias create (CreateAlias: the alias and the key).
    assert decide(cfg, "apply", "kms:CreateKey", "*", request_tags=NEXT_TAGS).allowed
    assert decide(cfg, "apply", "kms:TagResource", "*", request_tags=NEXT_TAGS).allowed
    for action in ("kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"):
        assert decide(cfg, "apply", action, NEW, tags=NEXT_TAGS).allowed, action
    assert decide(cfg, "apply", "kms:EnableKeyRotation", NEW, tags=NEXT_TAGS).allowed
    assert decide(cfg, "apply", "kms:CreateAlias", NEXT_ALIAS).allowed
    assert decide(cfg, "apply", "kms:CreateAlias", NEW, tags=NEXT_TAGS).allowed
    # ... and tags the current keys with the new status (they are enrolled: by ARN).
    status = {TAG_REENCRYPTION: "preparing"}
    assert decide(cfg, "apply", "kms:TagResource", OLD, tags={TAG_STACK: "prod"}, request_tags=status).allowed


def test_enroll_next_and_revoke_read_the_unrecorded_next_keys_through_their_alias() -> None:
    cfg = phase("preparing")
    for role in ("preview", "break-glass"):
        for action in ("kms:DescribeKey", "kms:ListResourceTags", "kms:GetKeyPolicy"):
            assert decide(cfg, role, action, NEW, tags=NEXT_TAGS, aliases=NEXT_ALIAS_NAME).allowed, (role, action)
    # Revoke disables every held generation and records it on each key.
    assert decide(cfg, "break-glass", "kms:DisableKey", NEW, tags=NEXT_TAGS, aliases=NEXT_ALIAS_NAME).allowed
    record = {TAG_REVOCATION_ID: "r-1"}
    by_alias: dict[str, Any] = {"tags": NEXT_TAGS, "aliases": NEXT_ALIAS_NAME}
    assert decide(cfg, "break-glass", "kms:TagResource", NEW, request_tags=record, **by_alias).allowed


def test_in_progress_and_complete_reach_both_generations_by_arn() -> None:
    for status in ("in-progress", "complete"):
        cfg = phase(status, next_keys=True)
        retag = {TAG_REENCRYPTION: status}
        for key in (OLD, NEW):
            assert decide(cfg, "apply", "kms:TagResource", key, tags={TAG_STACK: "prod"}, request_tags=retag).allowed
            assert decide(cfg, "preview", "kms:DescribeKey", key).allowed
            assert decide(cfg, "break-glass", "kms:DescribeKey", key).allowed


def test_promotion_moves_the_alias_and_deletes_next_and_retire_disables_the_old_keys() -> None:
    cfg = phase("complete", promoted=True)
    # UpdateAlias of the stack's alias: the alias, the old key and the new key are each authorized.
    for resource in (ALIAS, OLD, NEW):
        assert decide(cfg, "apply", "kms:UpdateAlias", resource).allowed, resource
    # The removed `/next` alias resource: DeleteAlias on the alias and the key it names.
    assert decide(cfg, "apply", "kms:DeleteAlias", NEXT_ALIAS).allowed
    assert decide(cfg, "apply", "kms:DeleteAlias", NEW).allowed
    # Retire (a later change): the apply role disables the retired keys.
    assert decide(cfg, "apply", "kms:DisableKey", OLD, tags={TAG_STACK: "prod"}).allowed


# ----------------------------------------------------------------------------- attacks


def test_nobody_deletes_schedules_deletion_or_rewrites_a_key_policy_in_any_phase() -> None:
    configs = [phase("preparing"), phase("in-progress", next_keys=True), phase("complete", promoted=True)]
    for cfg in configs:
        for role in ("preview", "apply", "break-glass"):
            for key in (OLD, NEW):
                for action in ("kms:ScheduleKeyDeletion", "kms:PutKeyPolicy"):
                    decision = decide(cfg, role, action, key, tags=NEXT_TAGS, aliases=NEXT_ALIAS_NAME)
                    assert not decision.allowed, (role, action, key)


def test_the_stacks_own_alias_is_never_deleted_nor_next_outside_reencryption() -> None:
    assert not decide(phase("complete", promoted=True), "apply", "kms:DeleteAlias", ALIAS).allowed
    assert not decide(phase("none"), "apply", "kms:DeleteAlias", NEXT_ALIAS).allowed
    assert not decide(phase("preparing"), "break-glass", "kms:DeleteAlias", NEXT_ALIAS).allowed


def test_apply_creates_no_key_that_is_not_the_stacks_next_generation() -> None:
    cfg = phase("preparing")
    assert not decide(cfg, "apply", "kms:CreateKey", "*", request_tags={TAG_STACK: "prod"}).allowed
    assert not decide(cfg, "apply", "kms:CreateKey", "*", request_tags={**NEXT_TAGS, TAG_STACK: "dev"}).allowed
    recorded = phase("in-progress", next_keys=True)
    assert not decide(recorded, "apply", "kms:CreateKey", "*", request_tags=NEXT_TAGS).allowed


def test_apply_never_disables_or_enables_an_unrecorded_key() -> None:
    cfg = phase("preparing")
    for action in ("kms:DisableKey", "kms:EnableKey"):
        assert not decide(cfg, "apply", action, NEW, tags=NEXT_TAGS, aliases=NEXT_ALIAS_NAME).allowed, action


def test_next_alias_cannot_be_pointed_at_another_key_and_that_key_then_disabled() -> None:
    cfg = phase("preparing")
    # Repointing `/next` at an untagged key of another team: the key side is refused.
    assert not decide(cfg, "apply", "kms:UpdateAlias", OTHER, tags={}, foreign=True).allowed
    # Even if `/next` named it (alias changes by someone else), break-glass may not disable a key
    # without the stack's next-generation tags, nor a tagged key the alias does not name.
    aliased = ["alias/atlassian-cmk/prod/next"]
    assert not decide(cfg, "break-glass", "kms:DisableKey", OTHER, tags={}, aliases=aliased, foreign=True).allowed
    assert not decide(cfg, "break-glass", "kms:DisableKey", OTHER, tags=NEXT_TAGS, aliases=[], foreign=True).allowed
    # The apply role cannot disable it either way.
    assert not decide(cfg, "apply", "kms:DisableKey", OTHER, tags=NEXT_TAGS, aliases=aliased, foreign=True).allowed
    # Break-glass cannot make a key look like the next one: no alias change, no stack/key-pair tags.
    assert not decide(cfg, "break-glass", "kms:UpdateAlias", NEXT_ALIAS).allowed
    plant = {TAG_STACK: "prod", TAG_KEY_PAIR: "next"}
    assert not decide(cfg, "break-glass", "kms:TagResource", OTHER, request_tags=plant, foreign=True).allowed


def test_once_next_keys_are_recorded_only_their_arns_are_reached() -> None:
    cfg = phase("in-progress", next_keys=True)
    aliased = ["alias/atlassian-cmk/prod/next"]
    for role in ("apply", "break-glass"):
        assert not decide(cfg, role, "kms:DisableKey", OTHER, tags=NEXT_TAGS, aliases=aliased, foreign=True).allowed
    assert not decide(cfg, "apply", "kms:UpdateAlias", OTHER, tags=NEXT_TAGS, foreign=True).allowed


def test_before_enrollment_the_stacks_alias_cannot_be_pointed_at_an_untagged_key() -> None:
    raw = raw_config_from_text((ROOT / "Pulumi.prod.yaml").read_text())
    raw["aws:allowedAccountIds"] = json.dumps([SAMPLE_ACCOUNT])  # the sample keys' account (applyRoleArn's)
    raw["atlassian-cmk:applyRoleArn"] = APPLY
    cfg = parse_stack_config(raw)
    identity = parse_policy(role_policy("apply", role_scope(cfg, "prod", SAMPLE_ACCOUNT)))
    ours = {f"aws:ResourceTag/{TAG_STACK}": "prod"}

    def allowed(action: str, resource: str, context: dict[str, str] | None = None) -> bool:
        request = Request(APPLY, action, resource, context or {})
        return effective_kms_decision(OTHER_TEAMS_KEY_POLICY, identity, request).allowed

    assert allowed("kms:UpdateAlias", ALIAS) and allowed("kms:CreateAlias", OTHER, ours)
    assert not allowed("kms:UpdateAlias", OTHER)  # untagged: no IfExists pass


def test_recording_next_keys_lets_apply_alone_tag_them_enrolled() -> None:
    """The apply after `cmkctl enroll --next` adds `atlassian-cmk:enrolled=true` to the next keys (issue 15,
    generations.generation_key_tags): allowed to the apply role by ARN; denied to break-glass, since the
    tag is evidence (the key policy's ProtectCmkEvidence statements) that a dropped nextKeys is refused by."""
    enrolled = {TAG_ENROLLED: "true"}
    next_tags = {**NEXT_TAGS, TAG_REENCRYPTION: "preparing"}
    cfg = phase("preparing", next_keys=True)
    for key in (NEW, NEW_WEST):
        assert decide(cfg, "apply", "kms:TagResource", key, tags=next_tags, request_tags=enrolled).allowed, key
        denied = decide(cfg, "break-glass", "kms:TagResource", key, tags=next_tags, request_tags=enrolled)
        assert (denied.allowed, denied.reason) == (False, "explicit-deny")
        assert denied.statements == ("ProtectCmkEvidenceTags",)
        assert not decide(cfg, "break-glass", "kms:UntagResource", key, tags=next_tags, request_tags=enrolled).allowed
