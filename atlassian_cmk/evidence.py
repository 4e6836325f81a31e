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

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from atlassian_cmk.config import shorten_repr
from atlassian_cmk.generations import CURRENT, generation_place
from atlassian_cmk.iam_policy import VARIABLES_VERSION, PolicyError, parse_policy, parse_statement
from atlassian_cmk.identity_rules import foreign_keys
from atlassian_cmk.key_policy import EVIDENCE_SID_PREFIX
from atlassian_cmk.live_keys import DeployedState, LiveKey
from atlassian_cmk.naming import (
    TAG_CONTEXT_TAG,
    TAG_DRILL,
    TAG_ENABLED,
    TAG_ENROLLED,
    TAG_GUARD_OVERRIDE,
    TAG_KEY_PAIR,
    TAG_LAST_REVOKE,
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

EVIDENCE_TAGS: Final = (TAG_STACK, TAG_REGION, TAG_KEY_PAIR, TAG_REENCRYPTION, TAG_ENROLLED, TAG_CONTEXT_TAG)
"""Tags a guard or an IAM condition trusts; only the CI apply role (the program) writes them.
`stack`/`region`/`key-pair`: the key's identity checks (`cmkctl enroll`, the pack) and the IAM
roles' `aws:ResourceTag/atlassian-cmk:stack` scoping; `reencryption`: the re-encryption guard;
`enrolled`: the pack refuses a stack without `enrolledKeys` whose alias key carries it
(`identity_rules`); `context-tag`: the pack refuses a contextTag that differs from it
(`context_tag_rule`). A tag a guard reads that is missing here could be untagged or rewritten by
an account admin or break-glass, and the guard would then pass."""

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
"""Descriptive tags: `enabled` mirrors the key state for console readers (the key state itself is the
truth), `drill` marks rehearsal keys. Break-glass may set them. No guard trusts them, but revoke reads
`enabled`: `records.revocation_in_flight` accepts an open record on a key read Enabled as another
revoke's of this moment only while it is "false"; forging it can only make a revoke accept a record."""

LEASE_TAGS: Final = (TAG_LEASE, TAG_LAST_REVOKE)
"""The break-glass lease (`atlassian_cmk.lease`): coordination between two honest operators, not
evidence (no guard trusts it). Break-glass writes its own lease and blanks it (""); the key policy has
no statement on it, because KMS authorization sees tag changes up to five minutes late (see the module
docstring of `atlassian_cmk.lease`), so a Deny "while another lease is present" would not exclude a
concurrent writer and would refuse every acquisition for minutes after a release. `last-revoke` (the last
revoke's trace, never blanked: `naming.TAG_LAST_REVOKE`) is coordination too: a restore yields when it
changes; a principal who forges it can only make a restore yield (disable the keys again), never enable one."""

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
    TagWriteRule(
        LEASE_TAGS, False, None, "break-glass: its own lease, its release, the last revoke (coordination, not evidence)"
    ),
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
SID_NEXT_RECORD_ID: Final = "ProtectCmkEvidenceNextRecordId"
SID_NEXT_RECORD_NEW_ID: Final = "ProtectCmkEvidenceNextRecordNewId"
SID_RECORD_NEEDS_ID: Final = "ProtectCmkEvidenceRecordNeedsId"
EVIDENCE_SIDS: Final = (
    SID_EVIDENCE_TAGS,
    SID_RECORD_REMOVAL,
    SID_OPEN_RECORD,
    SID_REOPENED_RECORD,
    SID_CLOSED_RECORD_KEPT,
    SID_CLOSED_RECORD_SET,
    SID_NEXT_RECORD_ID,
    SID_NEXT_RECORD_NEW_ID,
    SID_RECORD_NEEDS_ID,
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
      starts the next revocation. Without this the slot would stay full after the first restore
      (the program never clears record tags: `components/cmk_key_pair.py` ignores them) and the
      next incident could not be recorded at all;
    - a write of any revocation record field carries a non-empty revocation-id in the same request
      (`ProtectCmkEvidenceRecordNeedsId`). Every write-once statement keys on the id being on the
      key (`aws:ResourceTag/...revocation-id`); without this one a key that has no id (never
      revoked, or revoked before ids existed) would take `revoked-at` again and again, so the
      record would not be write-once at all;
    - that next revocation carries a non-empty revocation-id (`ProtectCmkEvidenceNextRecordId`)
      that differs from the key's current one (`ProtectCmkEvidenceNextRecordNewId`). Without
      them the closed record could be reopened by `restored-at: ""` alone (the old incident
      current again), and an open record rewritten in two calls: close it, then reopen it under
      the same id with a new reason or time. The comparison uses the policy variable
      `${aws:ResourceTag/atlassian-cmk:revocation-id}` in a `StringEquals` value: IAM resolves
      variables in string-operator values of resource policies (a key policy is one) for any
      global condition key (IAM User Guide, "IAM policy elements: Variables and tags",
      https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html), and
      the key policy's `Version` is 2012-10-17, which variables need. The statement also
      requires the key to carry the tag (`Null` false), so it never depends on how an
      unresolvable variable is read.
    What the key policy cannot say: whether the key is Enabled (no KMS condition key holds the
    key state: AWS KMS Developer Guide, "AWS KMS condition keys"), so a break-glass principal can
    close a record while the key stays disabled, and can start a NEW record (a new id) after
    closing one; both are visible as two TagResource events in CloudTrail and, for the key
    state, in `cmkctl status` (the key state is the truth, the record only describes it).
    So backdating is NOT fully denied: close the open record, then open a new one (new id, any
    `revoked-at`). The first write of a record is as trustworthy as the break-glass principal that
    makes it; CloudTrail's DisableKey/EnableKey events are the independent cross-check of `revoked-at`:
    `cmkctl status` and `cmkctl restore` make it (`atlassian_cmk.clock_check`: a forward- or backdated tag
    is REVOKED-AT DISAGREES WITH CLOUDTRAIL and the clock runs from CloudTrail's time, through any
    enabled period too short to restore anything). An account admin with kms:PutKeyPolicy can remove these
    statements (the live check, `evidence_protection`, sees only the moment it runs), and the
    exempt apply role can rewrite tags outside Pulumi (CI holds it; keep it there).

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
    request_revocation_id = f"aws:RequestTag/{TAG_REVOCATION_ID}"
    reopening = {"Null": {request_restored_at: "false"}}

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
        # Reopening (a closed record, `restored-at` in the request: CLOSED_RECORD_SET leaves only
        # ""): the request names a non-empty revocation id (StringNotLike is true when absent) ...
        deny(
            SID_NEXT_RECORD_ID,
            tag,
            RECORD_TAGS,
            {**closed, **reopening, "StringNotLike": {request_revocation_id: "?*"}},
        ),
        # ... that is not the key's current one.
        deny(
            SID_NEXT_RECORD_NEW_ID,
            tag,
            RECORD_TAGS,
            {
                **closed,
                "Null": {request_restored_at: "false", revocation_id: "false"},
                "StringEquals": {request_revocation_id: "${" + revocation_id + "}"},
            },
        ),
        # A record field is written only together with a non-empty id (StringNotLike is true when the
        # request has no id), so the record is keyed by an id from its first write on.
        deny(SID_RECORD_NEEDS_ID, tag, REVOCATION_RECORD_TAGS, {"StringNotLike": {request_revocation_id: "?*"}}),
    ]


# ----------------------------------------------------------------------------- the live key policy protects them


@dataclass(frozen=True)
class EvidenceProtection:
    """Whether one live key policy carries the evidence Deny statements unweakened. `problems`:
    one clause each, completing "the key policy in <region> ..."; empty when protected."""

    problems: tuple[str, ...]

    @property
    def protected(self) -> bool:
        return not self.problems


def evidence_protection(policy: str | Mapping[str, Any] | None, apply_role_arn: str | None) -> EvidenceProtection:
    """Judge a live key policy (GetKeyPolicy's JSON, or the parsed document) for the evidence protection.

    The tags are evidence only while every statement `key_policy_evidence_statements(apply_role_arn)`
    builds is in force: each must be present as IAM reads it (`iam_policy` semantic equality: the
    same effect, principals, actions, resources and conditions; Sid and spelling aside). Anything
    else in the policy cannot weaken them (an Allow never overrides a Deny; another Deny only
    denies more), so it is not judged here. A statement missing, or changed in any way (a narrower
    action list, another exempt principal than `apply_role_arn`, a dropped condition), is a
    problem, and so is a policy without `Version` 2012-10-17 (the next-record statement's policy
    variable would be literal text, IAM User Guide, "IAM policy elements: Variables and tags") and
    a policy that cannot be read or parsed (`policy` None: unreadable; fail closed).
    """
    if policy is None:
        return EvidenceProtection(("could not be read, so the evidence tags cannot be trusted",))
    try:
        document = json.loads(policy) if isinstance(policy, str) else policy
        if not isinstance(document, Mapping):
            raise PolicyError(f"{shorten_repr(document)} is not a policy document")
        live = parse_policy(document)
    except (ValueError, PolicyError) as error:  # JSONDecodeError is a ValueError
        return EvidenceProtection(
            (f"cannot be read as an IAM policy ({error}), so the evidence tags cannot be trusted",)
        )
    problems = []
    if document.get("Version") != VARIABLES_VERSION:
        problems.append(
            f"has Version {shorten_repr(document.get('Version'))}, not {VARIABLES_VERSION}, so its policy "
            "variables are literal text"
        )
    by_sid = {statement.sid for statement in live}
    missing: list[str] = []
    altered: list[str] = []
    for raw in key_policy_evidence_statements(apply_role_arn):
        expected = parse_statement(raw)
        if not any(statement == expected for statement in live):
            (altered if raw["Sid"] in by_sid else missing).append(raw["Sid"])
    if len(missing) == len(EVIDENCE_SIDS):
        problems.append(
            f"lacks every {EVIDENCE_SID_PREFIX}* statement: deployed before the evidence model, or rewritten"
        )
    elif missing:
        problems.append(f"lacks {', '.join(missing)}")
    if altered:
        problems.append(f"has {', '.join(altered)} altered (not as the program writes it for this applyRoleArn)")
    return EvidenceProtection(tuple(problems))


EVIDENCE_REMEDY: Final = (
    "only the reviewed path restores them: a pull request, then `pulumi up` with the CI apply role (no other "
    "role may call kms:PutKeyPolicy)"
)


def unprotected_evidence(
    policies: Mapping[str, str | None], apply_role_arn: str | None, errors: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """One line per key whose live key policy does not protect the evidence tags (see
    `evidence_protection`), then the remedy once; empty when every key's policy does.

    `policies`: where -> key policy JSON (None: not read); `errors`: where -> why it could not be
    read. "where" is the text that names the key in the line: its region (`us-east-1`), with the
    generation when it is not the current one (`us-east-1 (next)`, `generation_place`). Used by
    `cmkctl revoke` (refuses), `cmkctl status` (a finding) and the pack (a revocation fails closed),
    through `deployed_evidence_protection`, so the three say the same.
    """
    lines = [
        f"the key policy in {where} could not be read ({reason}), so the evidence tags cannot be trusted"
        for where, reason in sorted((errors or {}).items())
    ]
    for where, policy in sorted(policies.items()):
        judged = evidence_protection(policy, apply_role_arn)
        if not judged.protected:
            lines.append(
                f"the key policy in {where} does not protect the evidence tags (it {'; it '.join(judged.problems)})"
            )
    return (*lines, EVIDENCE_REMEDY) if lines else ()


KeyPolicies = tuple[Mapping[str, str], Mapping[str, str]]
"""(key ARN -> live key policy JSON, key ARN -> why it could not be read): `aws.kms_reads.read_key_policies`.
Keyed by key ARN, not by region: while two generations are held, each region has two keys (current and
next), each with its own key policy, and either's tags are evidence a guard trusts."""

HeldGeneration = tuple[str, DeployedState]
"""(generation role: `generations.CURRENT`, `NEXT` or `RETIRED`; that generation's keys as read)."""


def policies_by_region(key_policies: KeyPolicies, keys: Sequence[LiveKey]) -> tuple[dict[str, str], dict[str, str]]:
    """`key_policies` of one generation's `keys` (one key per region), keyed by region: what the
    per-region readers of the current generation's policies take (`status.key_policy_access_findings`)."""
    region_of = {key.arn: key.region for key in keys}
    policies, errors = key_policies
    return (
        {region_of[arn]: text for arn, text in policies.items() if arn in region_of},
        {region_of[arn]: reason for arn, reason in errors.items() if arn in region_of},
    )


NOT_READ: Final = "not read with the key"
"""Why a key read has no policy in `KeyPolicies` (a reader that left it out): unknown, so unprotected."""


def deployed_evidence_protection(
    deployed: DeployedState | Sequence[HeldGeneration],
    apply_role_arn: str | None,
    key_policies: KeyPolicies | None = None,
) -> tuple[str, ...]:
    """`unprotected_evidence` for every key of every held generation whose tags a guard trusts: the one call
    cmkctl revoke, cmkctl status and the pack make.

    `deployed`: the generations as (role, keys read) pairs, current first (`workflows.reading.Reading.roles`,
    `status` from `GenerationKeys`, the pack's held generations); a bare DeployedState is the current
    generation alone. A key is named by `generation_place`; two keys of one place (two retired
    generations) get their ARN after it. `key_policies`: `KeyPolicies` (by key ARN); a key read whose
    ARN is in neither map is unknown, so unprotected ("not read with the key": fail closed). None: each
    key's `policy`, read with the key (the pack's `with_policy=True`). An enrolled key that is not the
    stack's (`identity_rules.foreign_keys`) is skipped: nothing acts on it, it is refused on its own, and its
    tags are no evidence about this stack (as in `guards.reencryption_running`)."""
    held: Sequence[HeldGeneration] = [(CURRENT, deployed)] if isinstance(deployed, DeployedState) else deployed
    policies: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    for role, state in held:
        foreign = {finding.arn for finding in foreign_keys(state)}
        for reading in state.readings:
            # The recorded ARN (the policy was read by it, in the first round) or the one DescribeKey reported.
            arns = [arn for arn in (reading.enrolled_arn, reading.key.arn if reading.key else None) if arn]
            if not arns or foreign.intersection(arns):
                continue
            where = generation_place(reading.region, role)
            if where in policies or where in errors:
                where = f"{where} {arns[-1]}"
            if key_policies is None:
                if reading.key is not None:
                    policies[where] = reading.key.policy
            elif found := [arn for arn in arns if arn in key_policies[0]]:
                policies[where] = key_policies[0][found[0]]
            elif found := [arn for arn in arns if arn in key_policies[1]]:
                errors[where] = key_policies[1][found[0]]
            elif reading.key is not None:
                errors[where] = NOT_READ
    return unprotected_evidence(policies, apply_role_arn, errors)
