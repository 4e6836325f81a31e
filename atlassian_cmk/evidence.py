"""Which tags on a CMK key are evidence, which are the revocation record, and who may write them.

The guards trust tags on the live keys (is re-encryption running, which stack and region a key
belongs to, when access was revoked). A tag is evidence only as far as nobody but the reviewed
path can write it (DOMAIN.md: "Tags are writable by anyone with kms:TagResource"). This module
is the one place that says, as data:

- `EVIDENCE_TAGS`: written by the program through the reviewed deployment (the CI apply role)
  and read by a guard or by the IAM role conditions (`aws:ResourceTag/atlassian-cmk:stack`).
  Nobody else may tag or untag them.
- `REVOCATION_RECORD_TAGS`: the record of the current revocation, one fixed slot keyed by
  `TAG_REVOCATION_ID`. Write-once for the roles that act on keys: break-glass may add it while
  the slot is empty, never rewrite or remove it; only the apply role clears or rewrites it.
- `RESTORATION_RECORD_TAGS`: the record of the restore that closed it, write-once the same way,
  keyed by `TAG_RESTORED_AT`.
- `STATE_TAGS`: descriptive mirrors of the state (`atlassian-cmk:enabled`) that no guard reads;
  break-glass may set them.

Why one slot and not one tag set per incident: a KMS key holds at most 50 user-created tags
(AWS KMS Developer Guide, "Tags in AWS KMS"), and tag keys are case-sensitive strings, so a
record per incident would exhaust the key after a dozen incidents and then refuse the next
record in the middle of an incident. The history of earlier incidents lives in CloudTrail and in
the stack file's git history; the key carries only the current one.

The Deny statements the key policy gets from this data are built in `key_policy_evidence_statements`;
the evaluator (`atlassian_cmk.iam_policy`) checks them on concrete requests in the tests.
Everything here is pure data and rules: no AWS, no Pulumi.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from atlassian_cmk.config import shorten_repr
from atlassian_cmk.naming import (
    TAG_DRILL,
    TAG_ENABLED,
    TAG_GUARD_OVERRIDE,
    TAG_KEY_PAIR,
    TAG_LEASE,
    TAG_REENCRYPTION,
    TAG_REGION,
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

EVIDENCE_TAGS: Final = (TAG_STACK, TAG_REGION, TAG_KEY_PAIR, TAG_REENCRYPTION)
"""Tags a guard or an IAM condition trusts; only the CI apply role (the program) writes them.
`stack`/`region`/`key-pair`: the key's identity checks (`cmkctl enroll`, the pack) and the IAM
roles' `aws:ResourceTag/atlassian-cmk:stack` scoping; `reencryption`: the re-encryption guard."""

REVOCATION_RECORD_TAGS: Final = (
    TAG_REVOCATION_ID,
    TAG_REVOKED_AT,
    TAG_REVOKED_BY,
    TAG_REVOCATION_REASON,
    TAG_REVOCATION_TICKET,
    TAG_GUARD_OVERRIDE,
)
"""The current revocation's record: written in one TagResource call (atomic), keyed by
`TAG_REVOCATION_ID`; `revoked-at` starts the reinstatement clock, so it must not be backdated."""

RESTORATION_RECORD_TAGS: Final = (TAG_RESTORED_AT, TAG_RESTORED_BY, TAG_RESTORE_TICKET)
"""The restore that closed the current revocation: one TagResource call, keyed by `TAG_RESTORED_AT`."""

STATE_TAGS: Final = (TAG_ENABLED, TAG_DRILL)
"""Descriptive tags no guard reads: `enabled` mirrors the key state for console readers (the
key state itself is the truth), `drill` marks rehearsal keys. Break-glass may set them."""

LEASE_TAGS: Final = (TAG_LEASE,)
"""The break-glass lease (`atlassian_cmk.lease`): coordination between two honest operators, not
evidence (no guard trusts it). Break-glass writes its own lease and blanks it (""); the key policy has
no statement on it, because KMS authorization sees tag changes up to five minutes late (see the module
docstring of `atlassian_cmk.lease`), so a Deny "while another lease is present" would not exclude a
concurrent writer and would refuse every acquisition for minutes after a release."""

PROTECTED_TAGS: Final = EVIDENCE_TAGS + REVOCATION_RECORD_TAGS + RESTORATION_RECORD_TAGS
"""Every tag that nobody but the apply role may remove."""

KNOWN_TAGS: Final = PROTECTED_TAGS + STATE_TAGS + LEASE_TAGS


@dataclass(frozen=True)
class TagWriteRule:
    """Who may write a group of tags. `slot_key`: the record's key tag; while the key carries it
    (any value), the group is closed to everyone but the apply role. None: never writable outside
    the apply role (evidence) or always writable (state tags, `protected` False)."""

    tags: tuple[str, ...]
    protected: bool
    slot_key: str | None
    who: str


WRITE_RULES: Final = (
    TagWriteRule(EVIDENCE_TAGS, True, None, "the CI apply role only (the reviewed deployment)"),
    TagWriteRule(
        REVOCATION_RECORD_TAGS,
        True,
        TAG_REVOCATION_ID,
        "break-glass may add it while the key has no revocation-id; only the apply role rewrites or clears it",
    ),
    TagWriteRule(
        RESTORATION_RECORD_TAGS,
        True,
        TAG_RESTORED_AT,
        "break-glass may add it while the key has no restored-at; only the apply role rewrites or clears it",
    ),
    TagWriteRule(STATE_TAGS, False, None, "anyone who may tag the key (no guard reads them)"),
    TagWriteRule(LEASE_TAGS, False, None, "break-glass, its own lease and its release (coordination, not evidence)"),
)


# ----------------------------------------------------------------------------- "unknown is no"

REENCRYPTION_NOT_RUNNING: Final = ("none", "preparing", "complete")
"""The only live `atlassian-cmk:reencryption` values that mean "not running", byte for byte. `preparing`:
the next generation exists but Atlassian has not started (a revocation then disables both generations,
`atlassian_cmk.generations`)."""


@dataclass(frozen=True)
class ReencryptionEvidence:
    """What one key's re-encryption tag says. `may_run` True unless the value is exactly known
    to mean "not running"; `reason` completes "the deployed key in <region> (<arn>) ..." and
    names the value as found (repr, so spaces show)."""

    may_run: bool
    reason: str | None


def reencryption_evidence(value: str | None) -> ReencryptionEvidence:
    """Fail closed on the re-encryption tag of a key of the stack (`value` None: no such tag).

    Only the exact values `none`, `preparing` and `complete` mean "not running". `in-progress`, any other
    value (`In-Progress`, `in-progress ` with a space, `IN_PROGRESS`, `running`, `""`) and a
    missing tag mean "re-encryption may be in progress". A case variant of the tag key
    (`Atlassian-CMK:Reencryption`) is another tag to KMS (tag keys are case-sensitive) and is
    never read. Used by the pack and cmkctl through `guards.reencryption_running`.
    """
    if value in REENCRYPTION_NOT_RUNNING:
        return ReencryptionEvidence(False, None)
    if value is None:
        return ReencryptionEvidence(True, f"has no {TAG_REENCRYPTION} tag, so re-encryption cannot be ruled out")
    if value == "in-progress":
        return ReencryptionEvidence(True, "is tagged re-encryption in-progress")
    return ReencryptionEvidence(
        True,
        f"has {TAG_REENCRYPTION} {shorten_repr(value)}, not exactly one of {', '.join(REENCRYPTION_NOT_RUNNING)}, "
        "so re-encryption may be in progress",
    )


# ----------------------------------------------------------------------------- the key policy's Deny statements

SID_EVIDENCE_TAGS: Final = "ProtectCmkEvidenceTags"
SID_RECORD_REMOVAL: Final = "ProtectCmkEvidenceRecordRemoval"
SID_OPEN_RECORD: Final = "ProtectCmkEvidenceOpenRecord"
SID_REOPENED_RECORD: Final = "ProtectCmkEvidenceReopenedRecord"
SID_CLOSED_RECORD_KEPT: Final = "ProtectCmkEvidenceClosedRecordKept"
SID_CLOSED_RECORD_SET: Final = "ProtectCmkEvidenceClosedRecordSet"
EVIDENCE_SIDS: Final = (
    SID_EVIDENCE_TAGS,
    SID_RECORD_REMOVAL,
    SID_OPEN_RECORD,
    SID_REOPENED_RECORD,
    SID_CLOSED_RECORD_KEPT,
    SID_CLOSED_RECORD_SET,
)
"""All start with `key_policy.EVIDENCE_SID_PREFIX`, so the pack reads them as ours."""

RECORD_TAGS: Final = REVOCATION_RECORD_TAGS + RESTORATION_RECORD_TAGS


def key_policy_evidence_statements(apply_role_arn: str | None) -> list[dict[str, Any]]:
    """The Deny statements that make tags evidence, for every principal but the CI apply role.

    KMS authorizes TagResource/UntagResource with the global tag condition keys `aws:TagKeys`
    (the keys in the request), `aws:RequestTag/<key>` and `aws:ResourceTag/<key>` (AWS KMS
    Developer Guide, "Controlling access to tags" and "ABAC for AWS KMS"); `aws:PrincipalArn` is
    the role's ARN for an assumed-role session (IAM User Guide, "AWS global condition context
    keys"). A Deny in the key policy wins over any IAM Allow, the account root's included.

    The record slot (see the module docstring) is OPEN while the key has a revocation-id and no
    non-empty restored-at, CLOSED once restored-at is non-empty:
    - evidence tags: never tagged or untagged;
    - record tags: never untagged (a field is cleared by writing "", which needs TagResource);
    - an open record: its revocation fields are never rewritten (write-once; no backdating
      `revoked-at`, no dropping `guard-override`); the restore may add the restoration fields;
    - a closed record: no field is rewritten unless the same call blanks `restored-at`, i.e.
      starts the next revocation (a new revocation-id, the old incident's fields replaced).
      Without this the slot would stay full after the first restore (the program never clears
      record tags: `components/cmk_key_pair.py` ignores them) and the next incident could not
      be recorded at all.
    The first write of a record is as trustworthy as the break-glass principal that makes it;
    CloudTrail's DisableKey event is the independent cross-check of `revoked-at`.

    Tag keys are case-sensitive to KMS (`Atlassian-CMK:Reencryption` is another tag, which no
    guard reads); the Deny still matches case variants (`StringEqualsIgnoreCase`) so a look-alike
    tag cannot be planted either. `apply_role_arn` None (not configured): nobody is exempt, so
    evidence cannot be rewritten at all until `atlassian-cmk:applyRoleArn` is set (fail closed).
    """
    exempt = {"StringNotEquals": {"aws:PrincipalArn": apply_role_arn}} if apply_role_arn else {}
    revocation_id = f"aws:ResourceTag/{TAG_REVOCATION_ID}"
    restored_at = f"aws:ResourceTag/{TAG_RESTORED_AT}"
    request_restored_at = f"aws:RequestTag/{TAG_RESTORED_AT}"
    closed = {"StringLike": {restored_at: "?*"}}

    def deny(sid: str, actions: list[str], tags: tuple[str, ...], extra: dict[str, Any]) -> dict[str, Any]:
        condition: dict[str, Any] = {"ForAnyValue:StringEqualsIgnoreCase": {"aws:TagKeys": list(tags)}}
        for operator, block in [*extra.items(), *exempt.items()]:
            condition.setdefault(operator, {}).update(block)
        return {
            "Sid": sid,
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": actions,
            "Resource": "*",
            "Condition": condition,
        }

    tag = ["kms:TagResource"]
    return [
        deny(SID_EVIDENCE_TAGS, ["kms:TagResource", "kms:UntagResource"], EVIDENCE_TAGS, {}),
        deny(SID_RECORD_REMOVAL, ["kms:UntagResource"], RECORD_TAGS, {}),
        deny(SID_OPEN_RECORD, tag, REVOCATION_RECORD_TAGS, {"Null": {revocation_id: "false", restored_at: "true"}}),
        deny(
            SID_REOPENED_RECORD,
            tag,
            REVOCATION_RECORD_TAGS,
            {"Null": {revocation_id: "false"}, "StringEquals": {restored_at: ""}},
        ),
        deny(
            SID_CLOSED_RECORD_KEPT, tag, RECORD_TAGS, {**closed, "Null": {f"aws:RequestTag/{TAG_RESTORED_AT}": "true"}}
        ),
        deny(
            SID_CLOSED_RECORD_SET,
            tag,
            RECORD_TAGS,
            {"StringLike": {restored_at: "?*", request_restored_at: "?*"}},
        ),
    ]
