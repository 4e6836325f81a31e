"""The shipped IAM documents and the composed key policy, evaluated together on the concrete
requests of issues 10 and 12 (moto enforces neither IAM nor key policies, so the documents are
evaluated with `atlassian_cmk.iam_policy.effective_kms_decision`: key policy AND IAM)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from atlassian_cmk.composed_policy import KeyPolicyRefused, composed_key_policy
from atlassian_cmk.config import StackConfig, StackConfigErrors, parse_stack_config
from atlassian_cmk.iam_policy import Decision, Request, effective_kms_decision, parse_policy
from atlassian_cmk.iam_roles import ROLES, render, role_policy, role_scope
from atlassian_cmk.naming import (
    TAG_CONTEXT_TAG,
    TAG_ENROLLED,
    TAG_GUARD_OVERRIDE,
    TAG_REENCRYPTION,
    TAG_RESTORE_TICKET,
    TAG_RESTORED_AT,
    TAG_RESTORED_BY,
    TAG_REVOCATION_ID,
    TAG_REVOCATION_REASON,
    TAG_REVOCATION_TICKET,
    TAG_REVOKED_AT,
    TAG_REVOKED_BY,
    TAG_STACK,
)
from atlassian_cmk.records import replacement
from atlassian_cmk.stack_file import raw_config_from_text
from rehearsal.iam_samples import ROOT, SAMPLE_ACCOUNT, SAMPLE_ENROLLED, documents, enrolled_stack_text

APPLY = f"arn:aws:iam::{SAMPLE_ACCOUNT}:role/cmk-apply"
BREAK_GLASS = f"arn:aws:iam::{SAMPLE_ACCOUNT}:role/cmk-break-glass"
PREVIEW = f"arn:aws:iam::{SAMPLE_ACCOUNT}:role/cmk-preview"
EAST = SAMPLE_ENROLLED["us-east-1"]
OTHER_KEY = f"arn:aws:kms:us-east-1:{SAMPLE_ACCOUNT}:key/0000aaaa-other-team-key-000000000000"
ALIAS = f"arn:aws:kms:us-east-1:{SAMPLE_ACCOUNT}:alias/atlassian-cmk/prod"
OTHER_TEAMS_KEY_POLICY = parse_policy(
    {
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{SAMPLE_ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ]
    }
)
OPEN_RECORD = {
    TAG_STACK: "prod",
    TAG_REVOCATION_ID: "r-1",
    TAG_REVOKED_AT: "2026-11-29T10:00:00Z",
    TAG_GUARD_OVERRIDE: "CISO approved",
}
CLOSED_RECORD = {
    **OPEN_RECORD,
    TAG_RESTORED_AT: "2026-11-30T10:00:00Z",
    TAG_RESTORED_BY: "x",
    TAG_RESTORE_TICKET: "S-2",
}


def test_the_documents_in_iam_are_current() -> None:
    # Regenerating with `cmkctl iam` gives the same bytes (`make iam` rewrites them).
    for name, text in documents().items():
        assert (ROOT / "iam" / name).read_text() == text, f"iam/{name} is stale: run `make iam`"


def config(enrolled: bool = True, *, allowed_accounts: bool = True, **extra: Any) -> StackConfig:
    text = enrolled_stack_text() if enrolled else (ROOT / "Pulumi.prod.yaml").read_text()
    raw = raw_config_from_text(text)
    raw["aws:allowedAccountIds"] = json.dumps([SAMPLE_ACCOUNT])  # the sample keys' account (applyRoleArn must be in it)
    if not allowed_accounts:
        del raw["aws:allowedAccountIds"]
    raw.update({f"atlassian-cmk:{k}": v for k, v in {"applyRoleArn": APPLY, **extra}.items()})
    return parse_stack_config(raw)


def key_policy(cfg: StackConfig) -> list[Any]:
    return parse_policy(json.loads(composed_key_policy(cfg, account_id=SAMPLE_ACCOUNT, partition="aws")))


def decide(
    role: str,
    principal: str,
    action: str,
    resource: str = EAST,
    *,
    tags: dict[str, str] | None = None,
    request_tags: dict[str, str] | None = None,
    untag: list[str] | None = None,
    enrolled: bool = True,
) -> Decision:
    cfg = config(enrolled)
    identity = parse_policy(role_policy(role, role_scope(cfg, "prod", SAMPLE_ACCOUNT)))  # type: ignore[arg-type]
    ours = resource != OTHER_KEY
    context: dict[str, Any] = {f"aws:ResourceTag/{k}": v for k, v in (tags or {TAG_STACK: "prod"}).items()}
    if request_tags is not None:
        context.update({f"aws:RequestTag/{k}": v for k, v in request_tags.items()})
        context["aws:TagKeys"] = list(request_tags)
    if untag is not None:
        context["aws:TagKeys"] = untag
    policy = key_policy(cfg) if ours else OTHER_TEAMS_KEY_POLICY
    return effective_kms_decision(policy, identity, Request(principal, action, resource, context))


# ----------------------------------------------------------------------------- issue 10: other keys are not ours


def test_apply_role_cannot_tag_another_teams_key_with_the_stack_tag() -> None:
    decision = decide("apply", APPLY, "kms:TagResource", OTHER_KEY, tags={}, request_tags={TAG_STACK: "prod"})
    assert not decision.allowed


def test_apply_role_cannot_disable_another_teams_key_even_tagged_with_the_stack() -> None:
    assert not decide("apply", APPLY, "kms:DisableKey", OTHER_KEY, tags={TAG_STACK: "prod"}).allowed


def test_apply_role_cannot_point_the_stacks_alias_at_another_key() -> None:
    assert decide("apply", APPLY, "kms:UpdateAlias", ALIAS).allowed  # the alias side is the stack's
    assert not decide("apply", APPLY, "kms:UpdateAlias", OTHER_KEY, tags={TAG_STACK: "prod"}).allowed


def test_break_glass_cannot_disable_another_key() -> None:
    assert not decide("break-glass", BREAK_GLASS, "kms:DisableKey", OTHER_KEY, tags={TAG_STACK: "prod"}).allowed


def test_no_mutating_kms_action_on_every_resource_once_enrolled() -> None:
    mutating = ("kms:Disable", "kms:Enable", "kms:Tag", "kms:Untag", "kms:Update", "kms:Create", "kms:Replicate")
    for role in ROLES:
        document = role_policy(role, role_scope(config(), "prod", None))
        for statement in document["Statement"]:
            if statement["Effect"] == "Allow" and statement["Resource"] == "*":
                assert not [a for a in statement["Action"] if a.startswith(mutating)], (role, statement["Sid"])


# ----------------------------------------------------------------------------- issue 12: the evidence


@pytest.mark.parametrize(
    ("what", "action", "tags", "request_tags", "untag"),
    [
        ("rewrite re-encryption", "kms:TagResource", None, {TAG_REENCRYPTION: "complete"}, None),
        ("a look-alike re-encryption tag", "kms:TagResource", None, {"Atlassian-CMK:Reencryption": "complete"}, None),
        ("untag guard-override", "kms:UntagResource", OPEN_RECORD, None, [TAG_GUARD_OVERRIDE]),
        ("backdate revoked-at", "kms:TagResource", OPEN_RECORD, {TAG_REVOKED_AT: "2026-01-01T00:00:00Z"}, None),
        ("drop the override by writing it empty", "kms:TagResource", OPEN_RECORD, {TAG_GUARD_OVERRIDE: ""}, None),
        ("remove atlassian-cmk:stack", "kms:UntagResource", None, None, [TAG_STACK]),
        ("backdate a closed restore", "kms:TagResource", CLOSED_RECORD, {TAG_RESTORED_AT: "2026-11-29T11:00Z"}, None),
        ("rewrite a closed record", "kms:TagResource", CLOSED_RECORD, {TAG_REVOCATION_REASON: "other"}, None),
    ],
)
def test_break_glass_cannot_rewrite_the_evidence(
    what: str,
    action: str,
    tags: dict[str, str] | None,
    request_tags: dict[str, str] | None,
    untag: list[str] | None,
) -> None:
    decision = decide("break-glass", BREAK_GLASS, action, tags=tags, request_tags=request_tags, untag=untag)
    assert not decision.allowed, what


class KeyTags:
    """One key's tags under a sequence of TagResource calls, each judged first by the key policy AND
    the role's IAM document (KMS's authorization); an allowed call merges its tags as KMS does."""

    def __init__(self, tags: dict[str, str]) -> None:
        self.tags = dict(tags)

    def tag(self, request_tags: dict[str, str], *, role: str = "break-glass", principal: str = BREAK_GLASS) -> Decision:
        decision = decide(role, principal, "kms:TagResource", tags=self.tags, request_tags=request_tags)
        if decision.allowed:
            self.tags.update(request_tags)
        return decision


RESTORE = {TAG_RESTORED_AT: "2026-11-30T10:00:00Z", TAG_RESTORED_BY: BREAK_GLASS, TAG_RESTORE_TICKET: "SEC-2"}


LEGACY_RECORD = {TAG_STACK: "prod", TAG_REENCRYPTION: "none", TAG_REVOKED_AT: "2026-11-29T10:00:00Z"}


@pytest.mark.parametrize(
    ("what", "tags", "request_tags"),
    [
        ("revoked-at alone on a fresh key", {TAG_STACK: "prod"}, {TAG_REVOKED_AT: "2026-01-01T00:00:00Z"}),
        ("backdate a record without an id", LEGACY_RECORD, {TAG_REVOKED_AT: "2026-01-01T00:00:00Z"}),
        ("blank revoked-at of a record without an id", LEGACY_RECORD, {TAG_REVOKED_AT: ""}),
        (
            "a record with an empty id",
            {TAG_STACK: "prod"},
            {TAG_REVOCATION_ID: "", TAG_REVOKED_AT: "2026-01-01T00:00Z"},
        ),
        ("the reason alone", {TAG_STACK: "prod"}, {TAG_REVOCATION_REASON: "other"}),
        ("a guard override alone", {TAG_STACK: "prod"}, {TAG_GUARD_OVERRIDE: "nobody asked"}),
    ],
)
def test_a_record_field_is_never_written_without_a_revocation_id(
    what: str, tags: dict[str, str], request_tags: dict[str, str]
) -> None:
    key = KeyTags(tags)

    decision = key.tag(request_tags)

    assert decision.reason == "explicit-deny" and "ProtectCmkEvidenceRecordNeedsId" in decision.statements, what
    assert key.tags == tags
    assert KeyTags(tags).tag(request_tags, role="apply", principal=APPLY).allowed  # the reviewed path may


def test_break_glass_cannot_rewrite_an_open_record_by_closing_and_reopening_it_under_the_same_id() -> None:
    key = KeyTags(OPEN_RECORD)
    assert key.tag(RESTORE).allowed  # closing is the restore cmkctl sends
    rewrite = {
        TAG_REVOCATION_ID: OPEN_RECORD[TAG_REVOCATION_ID],
        TAG_REVOKED_AT: "2026-11-01T00:00:00Z",
        TAG_REVOCATION_REASON: "a different story",
        TAG_GUARD_OVERRIDE: "",
        TAG_RESTORED_AT: "",
        TAG_RESTORED_BY: "",
        TAG_RESTORE_TICKET: "",
    }

    decision = key.tag(rewrite)

    assert decision.reason == "explicit-deny" and "ProtectCmkEvidenceNextRecordNewId" in decision.statements
    assert key.tags[TAG_REVOKED_AT] == OPEN_RECORD[TAG_REVOKED_AT] and key.tags[TAG_GUARD_OVERRIDE] == "CISO approved"


@pytest.mark.parametrize(
    "reopen",
    [
        {TAG_RESTORED_AT: ""},
        {TAG_RESTORED_AT: "", TAG_REVOCATION_ID: ""},
        {TAG_RESTORED_AT: "", TAG_RESTORED_BY: "", TAG_RESTORE_TICKET: ""},
    ],
)
def test_break_glass_cannot_reopen_a_closed_record_without_a_new_revocation_id(reopen: dict[str, str]) -> None:
    key = KeyTags(CLOSED_RECORD)

    decision = key.tag(reopen)

    assert decision.reason == "explicit-deny" and "ProtectCmkEvidenceNextRecordId" in decision.statements
    assert key.tags == CLOSED_RECORD


def test_the_documented_revoke_restore_and_next_revoke_sequence_is_allowed_and_the_apply_role_may_reset() -> None:
    key = KeyTags({TAG_STACK: "prod", TAG_REENCRYPTION: "none"})
    first = {
        TAG_REVOCATION_ID: "rev-20261129T100000Z-aaaaaa",
        TAG_REVOKED_AT: "2026-11-29T10:00:00Z",
        TAG_REVOKED_BY: BREAK_GLASS,
        TAG_REVOCATION_REASON: "Suspected breach",
        TAG_REVOCATION_TICKET: "SEC-1",
    }
    assert key.tag(replacement(key.tags, first)).allowed  # cmkctl revoke, empty slot
    assert not key.tag(replacement(key.tags, first)).allowed  # a rerun never rewrites the open record ...
    assert key.tag({"atlassian-cmk:enabled": "false"}).allowed  # ... and writes only what is missing
    assert key.tag(RESTORE).allowed  # cmkctl restore
    second = {**first, TAG_REVOCATION_ID: "rev-20261201T090000Z-bbbbbb", TAG_REVOKED_AT: "2026-12-01T09:00:00Z"}
    assert key.tag(replacement(key.tags, second)).allowed  # the next incident: a new id, restored-at blanked
    assert key.tags[TAG_REVOCATION_ID] == second[TAG_REVOCATION_ID] and key.tags[TAG_RESTORED_AT] == ""
    # The reviewed path (the CI apply role) may still rewrite the record, e.g. to clear it.
    assert key.tag({TAG_REVOCATION_ID: first[TAG_REVOCATION_ID]}, role="apply", principal=APPLY).allowed


def test_nobody_but_the_apply_role_rewrites_re_encryption_not_even_an_account_administrator() -> None:
    admin = f"arn:aws:iam::{SAMPLE_ACCOUNT}:role/Administrator"
    cfg = config()
    everything = parse_policy({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    request = Request(
        admin,
        "kms:TagResource",
        EAST,
        {"aws:TagKeys": [TAG_REENCRYPTION], f"aws:RequestTag/{TAG_REENCRYPTION}": "complete"},
    )
    decision = effective_kms_decision(key_policy(cfg), everything, request)
    assert decision.reason == "explicit-deny" and "ProtectCmkEvidenceTags" in decision.statements


@pytest.mark.parametrize(
    ("what", "action", "context"),
    [
        ("untag enrolled", "kms:UntagResource", {"aws:TagKeys": [TAG_ENROLLED]}),
        (
            "write enrolled false",
            "kms:TagResource",
            {"aws:TagKeys": [TAG_ENROLLED], f"aws:RequestTag/{TAG_ENROLLED}": ""},
        ),
        ("untag context-tag", "kms:UntagResource", {"aws:TagKeys": [TAG_CONTEXT_TAG]}),
        (
            "rewrite context-tag",
            "kms:TagResource",
            {"aws:TagKeys": [TAG_CONTEXT_TAG], f"aws:RequestTag/{TAG_CONTEXT_TAG}": "Other"},
        ),
    ],
)
@pytest.mark.parametrize("role", ["Administrator", "cmk-break-glass"])
def test_nobody_but_the_apply_role_rewrites_the_enrolled_or_context_tag(
    what: str, action: str, context: dict[str, Any], role: str
) -> None:
    # The pack trusts both tags (identity_rules: `enrolled`; context_tag_rule: `context-tag`).
    principal = f"arn:aws:iam::{SAMPLE_ACCOUNT}:role/{role}"
    everything = parse_policy({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    tags = {f"aws:ResourceTag/{TAG_STACK}": "prod", f"aws:ResourceTag/{TAG_ENROLLED}": "true"}
    decision = effective_kms_decision(
        key_policy(config()), everything, Request(principal, action, EAST, {**tags, **context})
    )
    assert decision.reason == "explicit-deny" and "ProtectCmkEvidenceTags" in decision.statements, what
    exempt = effective_kms_decision(key_policy(config()), everything, Request(APPLY, action, EAST, {**tags, **context}))
    assert exempt.allowed, what


# ----------------------------------------------------------------------------- each role's documented commands


def test_preview_reads_the_stacks_keys() -> None:
    for action in ("kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListResourceTags"):
        assert decide("preview", PREVIEW, action).allowed, action
    assert not decide("preview", PREVIEW, "kms:DisableKey").allowed


def test_apply_deploys_the_reviewed_change() -> None:
    for action in ("kms:DisableKey", "kms:EnableKey", "kms:UpdateKeyDescription"):
        assert decide("apply", APPLY, action).allowed, action
    assert decide("apply", APPLY, "kms:TagResource", request_tags={TAG_REENCRYPTION: "complete"}).allowed
    assert decide("apply", APPLY, "kms:UntagResource", tags=OPEN_RECORD, untag=[TAG_REVOCATION_REASON]).allowed


def test_apply_creates_the_stacks_keys_only_before_enrollment() -> None:
    tags = {TAG_STACK: "prod", TAG_REENCRYPTION: "none"}
    assert decide("apply", APPLY, "kms:CreateKey", "*", tags={}, request_tags=tags, enrolled=False).allowed
    assert not decide("apply", APPLY, "kms:CreateKey", "*", tags={}, request_tags=tags).allowed


def test_break_glass_revokes_records_restores_and_records_the_next_incident() -> None:
    record = {TAG_REVOCATION_ID: "r-1", TAG_REVOKED_AT: "2026-11-29T10:00:00Z", TAG_REVOKED_BY: BREAK_GLASS}
    record |= {
        TAG_REVOCATION_REASON: "Suspected breach",
        TAG_REVOCATION_TICKET: "SEC-1",
        "atlassian-cmk:enabled": "false",
    }
    assert decide("break-glass", BREAK_GLASS, "kms:DisableKey").allowed
    assert decide("break-glass", BREAK_GLASS, "kms:TagResource", request_tags=record).allowed  # empty slot
    restore = {TAG_RESTORED_AT: "2026-11-30T10:00:00Z", TAG_RESTORED_BY: BREAK_GLASS, TAG_RESTORE_TICKET: "SEC-2"}
    assert decide("break-glass", BREAK_GLASS, "kms:EnableKey", tags=OPEN_RECORD).allowed
    assert decide("break-glass", BREAK_GLASS, "kms:TagResource", tags=OPEN_RECORD, request_tags=restore).allowed
    # The next incident on a closed record: a new id, and restored-at blanked in the same call.
    following = {**record, TAG_REVOCATION_ID: "r-2", TAG_RESTORED_AT: "", TAG_RESTORED_BY: "", TAG_RESTORE_TICKET: ""}
    assert decide("break-glass", BREAK_GLASS, "kms:TagResource", tags=CLOSED_RECORD, request_tags=following).allowed


@pytest.mark.parametrize("tags", [{}, OPEN_RECORD, CLOSED_RECORD], ids=["no-record", "open", "closed"])
def test_break_glass_writes_the_lease_and_the_last_revoke_trace_in_one_request_on_any_record(
    tags: dict[str, str],
) -> None:
    """Revoke's round-2 TagResource (its lease and `last-revoke`, coordination, not evidence) is allowed by
    the role AND the key policy whatever record the key carries; the apply role's tags stay out of reach."""
    value = f"lease-20261129T100000Z-3f9a1c2b revoke SEC-1 2026-11-29T10:10:00Z {BREAK_GLASS}"
    lease = {"atlassian-cmk:lease": value, "atlassian-cmk:last-revoke": value}
    assert decide("break-glass", BREAK_GLASS, "kms:TagResource", tags=tags, request_tags=lease).allowed
    assert decide(
        "break-glass", BREAK_GLASS, "kms:TagResource", tags=tags, request_tags={**lease, "atlassian-cmk:lease": ""}
    ).allowed
    with_evidence = {**lease, "atlassian-cmk:reencryption": "none"}
    assert not decide("break-glass", BREAK_GLASS, "kms:TagResource", tags=tags, request_tags=with_evidence).allowed


def test_an_apply_role_of_another_account_is_refused_when_the_policy_is_composed() -> None:
    # Before enrollment and without aws:allowedAccountIds the file does not name the keys' account: the
    # program refuses it at composition.
    with pytest.raises(KeyPolicyRefused, match="applyRoleArn"):
        composed_key_policy(
            config(False, allowed_accounts=False, applyRoleArn="arn:aws:iam::999988887777:role/cmk-apply"),
            account_id=SAMPLE_ACCOUNT,
            partition="aws",
        )


def test_an_apply_role_of_another_account_than_the_enrolled_keys_is_refused_with_the_config() -> None:
    stranger = "arn:aws:iam::999988887777:role/cmk-apply"
    with pytest.raises(StackConfigErrors) as refused:
        config(applyRoleArn=stranger)
    (line,) = str(refused.value).splitlines()
    assert line == (
        f"atlassian-cmk:applyRoleArn: {stranger!r} is not allowed; allowed: a role in the keys' own account "
        f"{SAMPLE_ACCOUNT} (the enrolled key ARNs' account)"
    )


@pytest.mark.parametrize("spelling", [BREAK_GLASS, BREAK_GLASS.replace("cmk-break-glass", "CMK-Break-Glass")])
def test_an_apply_role_that_is_a_key_administrator_is_refused_with_the_config(spelling: str) -> None:
    # keyAdministrators are the break-glass principals; exempting one from the evidence Deny
    # statements would let break-glass rewrite the evidence outside review.
    with pytest.raises(StackConfigErrors) as refused:
        config(False, applyRoleArn=spelling, keyAdministrators=[BREAK_GLASS])
    (line,) = str(refused.value).splitlines()
    assert line.startswith(
        f"atlassian-cmk:applyRoleArn: {spelling!r} is not allowed; allowed: the CI apply role, never"
    )
    assert "keyAdministrators" in line


def test_cmkctl_iam_before_enrollment_needs_the_account(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from atlassian_cmk.cli.main import main

    code = main(["iam", "--project-dir", str(ROOT), "--role", "apply"])
    err = capsys.readouterr().err
    assert code == 64 and "--account-id: missing; required before enrollment" in err
    code = main(["iam", "--project-dir", str(ROOT), "--role", "apply", "--account-id", "12345"])
    assert code == 64 and "--account-id: '12345' is not allowed; a 12-digit AWS account ID" in capsys.readouterr().err
    assert render({"a": 1}).endswith("\n")
