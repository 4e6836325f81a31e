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

Re-encryption (README "Re-encrypting, step by step"). While a next generation exists but
`nextKeys` does not record it yet (`preparing`, before `cmkctl enroll --next`), its keys have no ARN
the documents could name. Then:
- apply may `CreateKey` (+ create-time `TagResource` on "*") only with `atlassian-cmk:stack` = the
  stack AND `atlassian-cmk:key-pair` = `next` in the request; it may read, enable rotation on and
  re-tag (`atlassian-cmk:*` tags only) keys tagged so (the provider reads the key and enables
  rotation before the alias exists, so these cannot be alias-scoped), and `CreateAlias`/`UpdateAlias`
  `alias/atlassian-cmk/<stack>/next` only at such a key; never Disable/EnableKey on an unrecorded key;
- preview and break-glass reach an unrecorded next key only when it carries both tags AND
  `kms:ResourceAliases` contains `alias/atlassian-cmk/<stack>/next` (AWS KMS Developer Guide, "Use
  aliases to control access to KMS keys", https://docs.aws.amazon.com/kms/latest/developerguide/
  alias-authorization.html: ResourceAliases holds the aliases associated with the key, whether the
  request names it by alias or by ID; "It might take up to five minutes for tag and alias changes
  to affect KMS key authorization"); break-glass may then disable/enable it (revoke disables every
  held generation, `workflows.targets`). Break-glass can neither tag the stack/key-pair tags nor
  create/update any alias, so by itself it cannot make another key look like the next one.
- `DeleteAlias` (promotion removes the `/next` alias: terraform-provider-aws
  internal/service/kms/alias.go, a removed alias resource is DeleteAlias; a target change is
  UpdateAlias; a name change, ForceNew, is DeleteAlias + CreateAlias) is allowed to apply on the
  `/next` alias ARNs only, at a recorded key, while `reencryption.status` is not `none`; the
  stack's own alias `alias/atlassian-cmk/<stack>` is never deleted (explicit Deny).
Residual (the key policies of keys that are not the stack's are not ours): KMS authorizes
create-time tags as `TagResource` on every key of the region, so a holder of the apply role can
write `atlassian-cmk:*` tags onto another key whose key policy delegates to IAM, and point `/next`
at it; a holder of break-glass too could then disable it while the next generation is unrecorded.
Recording `nextKeys` (`cmkctl enroll --next`) closes that window: every key action names ARNs again,
and enrollment itself refuses a key without the composed key policy. Not granted: creating the next
generation while revoked (`enabled: false` would make the provider DisableKey a key known only by
its tags: terraform-provider-aws internal/service/kms/key.go resourceKeyCreate); restore first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from atlassian_cmk.config import StackConfig
from atlassian_cmk.evidence import LEASE_TAGS, RESTORATION_RECORD_TAGS, REVOCATION_RECORD_TAGS, STATE_TAGS
from atlassian_cmk.generations import NEXT, generations
from atlassian_cmk.key_identity import partition_of_region
from atlassian_cmk.naming import TAG_KEY_PAIR, TAG_STACK, alias_name

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
    unrecorded_next: bool = False
    """A next generation exists (or is being created) and `nextKeys` does not record it yet."""
    reencrypting: bool = False
    """`reencryption.status` is not `none` (promotion, under `complete`, deletes the `/next` alias)."""

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

    def alias_resources(self, key_pair: str | None = None) -> list[str]:
        """The ARNs of `alias/atlassian-cmk/<stack>` (or of the `key_pair` alias, e.g. `/next`) per region."""
        name = alias_name(self.stack) if key_pair is None else alias_name(self.stack, key_pair)
        return [f"arn:{self.partition}:kms:{r}:{self.account_id}:{name}" for r in self.regions]

    def region_keys(self) -> list[str]:
        return [f"arn:{self.partition}:kms:{r}:{self.account_id}:key/*" for r in self.regions]

    def next_tags(self) -> dict[str, str]:
        """The tags an unrecorded next key carries (written at CreateKey by the apply role)."""
        return {f"aws:ResourceTag/{TAG_STACK}": self.stack, f"aws:ResourceTag/{TAG_KEY_PAIR}": NEXT}

    def next_alias_condition(self) -> dict[str, Any]:
        """The next key by its alias: tagged so AND `kms:ResourceAliases` holds `/next` (a
        multivalued key: ForAnyValue; AWS KMS Developer Guide, "kms:ResourceAliases")."""
        return {
            "StringEquals": self.next_tags(),
            "ForAnyValue:StringEquals": {"kms:ResourceAliases": alias_name(self.stack, NEXT)},
        }


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
    unrecorded_next = enrolled is not None and any(g.role == NEXT and g.keys is None for g in generations(config))
    return RoleScope(
        stack,
        account_id,
        config.regions,
        arns,
        config.multi_region,
        unrecorded_next=unrecorded_next,
        reencrypting=enrolled is not None and config.reencryption.status != "none",
    )


def _statement(sid: str, effect: str, actions: list[str], resources: list[str] | str, **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": effect, "Action": actions, "Resource": resources, **extra}


_READ: Final = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"]
_FIND: Final = [
    # ListKeys: `cmkctl enroll` and `cmkctl revoke` find a generation's keys by their tags when its alias
    # names none (`kms_reads.stack_keys_by_tags`); it reveals key IDs only, and tags stay scoped above.
    _statement("ListAliasesToFindTheKeys", "Allow", ["kms:ListAliases", "kms:ListKeys"], "*"),
    _statement("RevocationTimeFromCloudTrail", "Allow", ["cloudtrail:LookupEvents"], "*"),
]


def _next_by_alias(scope: RoleScope, sid: str, actions: list[str]) -> list[dict[str, Any]]:
    """`actions` on the unrecorded next keys, reached by tags AND alias (none once recorded)."""
    if not scope.unrecorded_next:
        return []
    return [_statement(sid, "Allow", actions, scope.region_keys(), Condition=scope.next_alias_condition())]


def _preview(scope: RoleScope) -> list[dict[str, Any]]:
    return [
        _statement("ReadTheStacksKeys", "Allow", _READ, scope.key_resources(), **scope.key_condition()),
        *_next_by_alias(scope, "ReadTheUnrecordedNextKeysByTheirAlias", _READ),
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
    if scope.unrecorded_next:
        statements += _apply_unrecorded_next(scope)
    if scope.reencrypting:
        # Promotion removes the `/next` alias resource (DeleteAlias, authorized on the alias and on the
        # key it names: the promoted key, now enrolled). The stack's own alias stays: denied below.
        statements.append(
            _statement(
                "DeleteTheNextAliasAtPromotion",
                "Allow",
                ["kms:DeleteAlias"],
                [*scope.alias_resources(NEXT), *scope.key_resources()],
            )
        )
    statements += [
        _statement("ManageTheStacksKeys", "Allow", manage, scope.key_resources(), **scope.key_condition()),
        *_point_aliases(scope),
        *_FIND,
        _statement("NeverDeleteOrRewriteTheKeys", "Deny", NEVER_LIST, "*"),
        _statement("NeverDeleteTheStacksAlias", "Deny", ["kms:DeleteAlias"], scope.alias_resources()),
    ]
    if not scope.reencrypting:
        statements.append(_statement("NoAliasDeletedOutsideReencryption", "Deny", ["kms:DeleteAlias"], "*"))
    return statements


NEVER_LIST: Final = list(NEVER)


def _point_aliases(scope: RoleScope) -> list[dict[str, Any]]:
    """CreateAlias/UpdateAlias are authorized on the alias and on the key it names (old and new),
    each side on its own. Once enrolled: the stack's aliases (and `/next`) at the recorded ARNs, one
    statement. Before: the key side is the region's keys tagged with the stack, in a statement of
    its own; a shared statement would need `StringEqualsIfExists` (an alias has no tags), which
    lets a key without the tag, e.g. another team's, through."""
    actions = ["kms:CreateAlias", "kms:UpdateAlias"]
    if scope.enrolled_arns is not None:
        resources = [*scope.alias_resources(), *scope.alias_resources(NEXT), *scope.key_resources()]
        return [_statement("PointTheStacksAliasesAtItsKeys", "Allow", actions, resources)]
    return [
        _statement("PointTheStacksAliases", "Allow", actions, scope.alias_resources()),
        _statement("AtTheStacksKeysOnly", "Allow", actions, scope.key_resources(), **scope.key_condition()),
    ]


def _apply_unrecorded_next(scope: RoleScope) -> list[dict[str, Any]]:
    """What `pulumi up` of `preparing` needs for keys `nextKeys` does not name yet (module docstring)."""
    tagged = {"StringEquals": scope.next_tags()}
    next_manage = [*_READ, "kms:EnableKeyRotation", "kms:TagResource", "kms:UntagResource"]
    if scope.multi_region:
        next_manage.append("kms:ReplicateKey")
    return [
        # KMS authorizes tags given at CreateKey as TagResource on every key of the region ("To add
        # tags when creating a KMS key ... the permission must cover all KMS keys in the account and
        # Region": AWS KMS Developer Guide, "Managing KMS key tags with API operations").
        _statement(
            "CreateTheNextGenerationsKeys",
            "Allow",
            ["kms:CreateKey", "kms:TagResource"],
            "*",
            Condition={
                "StringEquals": {f"aws:RequestTag/{TAG_STACK}": scope.stack, f"aws:RequestTag/{TAG_KEY_PAIR}": NEXT},
                "ForAllValues:StringLike": {"aws:TagKeys": ["atlassian-cmk:*"]},
            },
        ),
        # Read back and rotation are called before the alias exists: by the tags only. No Disable/
        # EnableKey here: the program creates the next keys in the state `enabled` gives.
        _statement(
            "ManageTheUnrecordedNextKeys",
            "Allow",
            next_manage,
            scope.region_keys(),
            Condition={**tagged, "ForAllValues:StringLike": {"aws:TagKeys": ["atlassian-cmk:*"]}},
        ),
        # CreateAlias/UpdateAlias of `/next` are authorized on the alias and on the key(s) it names:
        # the alias side by name, the key side by both tags (never IfExists: an untagged key fails).
        _statement("PointTheNextAlias", "Allow", ["kms:CreateAlias", "kms:UpdateAlias"], scope.alias_resources(NEXT)),
        _statement(
            "AtTheUnrecordedNextKeysOnly",
            "Allow",
            ["kms:CreateAlias", "kms:UpdateAlias"],
            scope.region_keys(),
            Condition=tagged,
        ),
    ]


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
        *_next_by_alias(
            scope,
            "RevokeAndRestoreTheUnrecordedNextKeysByTheirAlias",
            ["kms:DescribeKey", "kms:ListResourceTags", "kms:GetKeyPolicy", "kms:DisableKey", "kms:EnableKey"],
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
        *(
            [
                _statement(
                    "RecordTheRevocationOnTheUnrecordedNextKeys",
                    "Allow",
                    ["kms:TagResource"],
                    scope.region_keys(),
                    Condition={**scope.next_alias_condition(), "ForAllValues:StringEquals": {"aws:TagKeys": writable}},
                )
            ]
            if scope.unrecorded_next
            else []
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
