"""The IAM role policies of this stack, generated from its configuration (one source).

Three roles act on the keys: `preview` (CI's pull-request preview and the drift job: read only),
`apply` (CI's `pulumi up` after review) and `break-glass` (`cmkctl revoke`/`restore`). Their
policies are data computed from the stack: its account, regions, enrolled key ARNs where known
and its aliases, so a role can never reach a key that is not the stack's. `cmkctl iam` prints
them; `iam/` keeps the generated documents for the sample stack (a test regenerates them).

Rules every document keeps (tests evaluate them with `atlassian_cmk.iam_policy`):
- no mutating KMS action on `Resource: "*"`, except `kms:CreateKey` (+ the `kms:TagResource`
  it needs for tags given at creation, which KMS authorizes on "*": AWS KMS Developer Guide,
  "Controlling access to tags": "To add tags while creating a KMS key, the principal must have
  permission in an IAM policy that isn't restricted to particular KMS keys"), and those only
  before enrollment, bound to `aws:RequestTag/atlassian-cmk:stack`;
- once enrolled, every key action names the enrolled ARNs; before, the region's `key/*` with
  `aws:ResourceTag/atlassian-cmk:stack` (a tag the key policy lets only the apply role write);
- `UpdateAlias`/`CreateAlias` name the stack's aliases and (for the key side KMS also
  authorizes) the enrolled ARNs;
- break-glass may tag only the revocation record, state tags and its lease (`atlassian_cmk.evidence`),
  never untag, never an evidence tag; the key policy's Deny statements add write-once.
- nobody may schedule deletion or rewrite a key policy (`kms:PutKeyPolicy`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from atlassian_cmk.config import StackConfig
from atlassian_cmk.evidence import LEASE_TAGS, RESTORATION_RECORD_TAGS, REVOCATION_RECORD_TAGS, STATE_TAGS
from atlassian_cmk.key_identity import partition_of_region
from atlassian_cmk.naming import TAG_STACK, alias_name

Role = Literal["preview", "apply", "break-glass"]
ROLES: Final[tuple[Role, ...]] = ("preview", "apply", "break-glass")

NEVER: Final = ("kms:ScheduleKeyDeletion", "kms:PutKeyPolicy")
"""Denied to every role: deletion is irreversible; the key policy changes only by review."""


@dataclass(frozen=True)
class RoleScope:
    """What a role policy is scoped to: one stack in one account."""

    stack: str
    account_id: str
    regions: tuple[str, ...]
    enrolled_arns: tuple[str, ...] | None
    multi_region: bool

    @property
    def partition(self) -> str:
        return partition_of_region(self.regions[0])

    def key_resources(self) -> list[str]:
        if self.enrolled_arns is not None:
            return list(self.enrolled_arns)
        return [f"arn:{self.partition}:kms:{r}:{self.account_id}:key/*" for r in self.regions]

    def key_condition(self) -> dict[str, Any]:
        """Before enrollment the stack's keys are the region's keys tagged with the stack (the key
        policy lets only the apply role write that tag); after, the ARNs say it all."""
        if self.enrolled_arns is not None:
            return {}
        return {"Condition": {"StringEquals": {f"aws:ResourceTag/{TAG_STACK}": self.stack}}}

    def alias_resources(self) -> list[str]:
        return [
            f"arn:{self.partition}:kms:{r}:{self.account_id}:alias/{alias_name(self.stack)[6:]}" for r in self.regions
        ]


class ScopeError(ValueError):
    """The account given does not fit the stack (one line naming the flag and value)."""


def role_scope(config: StackConfig, stack: str, account_id: str | None) -> RoleScope:
    """The scope of `stack`'s roles. The account comes from the enrolled ARNs, else `account_id`
    (raises ScopeError when neither, or when they disagree)."""
    enrolled = config.enrolled_keys
    if enrolled is not None:
        if account_id is not None and account_id != enrolled.account:
            raise ScopeError(
                f"--account-id: {account_id!r} is not allowed; the enrolled keys are in account {enrolled.account}"
            )
        account_id = enrolled.account
    if account_id is None:
        raise ScopeError("--account-id: missing; required before enrollment: the 12-digit account of the stack's keys")
    arns: tuple[str, ...] | None = None
    if enrolled is not None:
        # Every recorded generation: break-glass disables the next (and, while `complete`, the retired)
        # keys with the current ones (`workflows.targets`), so the role must reach them by ARN too.
        others = [config.next_keys] if config.next_keys is not None else []
        others += list(config.retired_keys)
        arns = tuple(enrolled.as_config()[r] for r in config.regions)
        arns += tuple(arn for generation in others for arn in generation.as_config().values())
    return RoleScope(stack, account_id, config.regions, arns, config.multi_region)


def _statement(sid: str, effect: str, actions: list[str], resources: list[str] | str, **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": effect, "Action": actions, "Resource": resources, **extra}


_READ: Final = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"]
_FIND: Final = [
    _statement("ListAliasesToFindTheKeys", "Allow", ["kms:ListAliases"], "*"),
    _statement("RevocationTimeFromCloudTrail", "Allow", ["cloudtrail:LookupEvents"], "*"),
]


def _preview(scope: RoleScope) -> list[dict[str, Any]]:
    return [
        _statement("ReadTheStacksKeys", "Allow", _READ, scope.key_resources(), **scope.key_condition()),
        *_FIND,
        _statement(
            "NeverChangeAnyKey",
            "Deny",
            [*NEVER, "kms:DisableKey", "kms:EnableKey", "kms:TagResource", "kms:UntagResource", "kms:CreateKey"],
            "*",
        ),
    ]


def _apply(scope: RoleScope) -> list[dict[str, Any]]:
    manage = [*_READ, "kms:EnableKey", "kms:DisableKey", "kms:EnableKeyRotation", "kms:UpdateKeyDescription"]
    manage += ["kms:TagResource", "kms:UntagResource"]
    if scope.multi_region:
        manage.append("kms:ReplicateKey")
    statements: list[dict[str, Any]] = []
    if scope.enrolled_arns is None:
        # First deployment only: KMS authorizes tags given at CreateKey as TagResource on "*".
        statements.append(
            _statement(
                "CreateTheStacksKeysBeforeEnrollment",
                "Allow",
                ["kms:CreateKey", "kms:TagResource"],
                "*",
                Condition={
                    "StringEquals": {f"aws:RequestTag/{TAG_STACK}": scope.stack},
                    "ForAllValues:StringLike": {"aws:TagKeys": ["atlassian-cmk:*"]},
                },
            )
        )
    statements += [
        _statement("ManageTheStacksKeys", "Allow", manage, scope.key_resources(), **scope.key_condition()),
        # CreateAlias/UpdateAlias are authorized on the alias and on the key it names (old and new):
        # the stack's aliases, at the enrolled keys. Before enrollment, at the region's keys not tagged
        # for another stack (an alias resource has no tags, hence IfExists).
        _statement(
            "PointTheStacksAliasesAtItsKeys",
            "Allow",
            ["kms:CreateAlias", "kms:UpdateAlias"],
            [*scope.alias_resources(), *scope.key_resources()],
            **(
                {}
                if scope.enrolled_arns is not None
                else {"Condition": {"StringEqualsIfExists": {f"aws:ResourceTag/{TAG_STACK}": scope.stack}}}
            ),
        ),
        *_FIND,
        _statement("NeverDeleteOrRewriteTheKeys", "Deny", [*NEVER, "kms:DeleteAlias"], "*"),
    ]
    return statements


def _break_glass(scope: RoleScope) -> list[dict[str, Any]]:
    writable = [*REVOCATION_RECORD_TAGS, *RESTORATION_RECORD_TAGS, *STATE_TAGS, *LEASE_TAGS]
    return [
        _statement(
            "RevokeAndRestoreTheStacksKeys",
            "Allow",
            ["kms:DescribeKey", "kms:ListResourceTags", "kms:GetKeyPolicy", "kms:DisableKey", "kms:EnableKey"],
            scope.key_resources(),
            **scope.key_condition(),
        ),
        _statement(
            "RecordWhoRevokedAndWhy",
            "Allow",
            ["kms:TagResource"],
            scope.key_resources(),
            Condition={
                **scope.key_condition().get("Condition", {}),
                # Exact keys, case-sensitive as KMS stores them: never an evidence tag, never a look-alike.
                "ForAllValues:StringEquals": {"aws:TagKeys": writable},
            },
        ),
        *_FIND,
        _statement(
            "NeverDeleteRewriteUntagOrCreate",
            "Deny",
            [*NEVER, "kms:UntagResource", "kms:CreateKey", "kms:DeleteAlias", "kms:UpdateAlias", "kms:CreateAlias"],
            "*",
        ),
    ]


def role_policy(role: Role, scope: RoleScope) -> dict[str, Any]:
    """The IAM policy document (identity policy) of `role` for `scope`."""
    build = {"preview": _preview, "apply": _apply, "break-glass": _break_glass}[role]
    return {"Version": "2012-10-17", "Statement": build(scope)}


def render(document: Mapping[str, Any]) -> str:
    """The document as `iam/` keeps it and `cmkctl iam` prints it (stable bytes, final newline)."""
    return json.dumps(document, indent=2) + "\n"
