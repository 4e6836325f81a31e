"""The CMK key policy: built as data by the program, checked as data by the policy pack.

Two things must always hold for a CMK key policy:
- the account root keeps full administration, or the key becomes unmanageable (KMS's
  lockout safety check is never bypassed);
- Atlassian's principals keep the operations they need. Dropping, narrowing or denying them
  revokes access as surely as disabling the key, but without the reviewed `enabled` switch:
  a "stealth revocation".
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

ATLASSIAN_CRYPTO_ACTIONS: Final = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
)
"""Operations Atlassian performs with the key, always with its context tag in the encryption context."""

ATLASSIAN_DESCRIBE_ACTIONS: Final = ("kms:DescribeKey",)
"""Operations without an encryption context; a context condition would deny them."""

CONTEXT_TAG_CONTEXT_KEY: Final = "atlassian-cmk-context-tag"
"""Encryption-context key that carries the context tag. Check it against the key policy
Atlassian gives you at enrollment; it is the one fact here Atlassian defines per enrollment."""

KEY_ADMINISTRATOR_ACTIONS: Final = (
    "kms:Describe*",
    "kms:List*",
    "kms:Get*",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateKeyDescription",
    "kms:EnableKeyRotation",
    "kms:CancelKeyDeletion",
)
"""Administrators may revoke and restore and inspect; they may not delete the key or rewrite
its policy (`kms:ScheduleKeyDeletion`, `kms:PutKeyPolicy`): those changes go through review."""

SID_ROOT: Final = "EnableRootAccountAdministration"
SID_ADMINISTRATORS: Final = "AllowKeyAdministratorsToRevokeAndRestore"
SID_ATLASSIAN_USE: Final = "AllowAtlassianUseWithContextTag"
SID_ATLASSIAN_DESCRIBE: Final = "AllowAtlassianDescribeKey"


def context_condition(context_tag: str) -> dict[str, dict[str, str]]:
    return {"StringEquals": {f"kms:EncryptionContext:{CONTEXT_TAG_CONTEXT_KEY}": context_tag}}


def build_key_policy(
    *,
    partition: str,
    account_id: str,
    atlassian_principals: Sequence[str],
    context_tag: str,
    key_administrators: Sequence[str] = (),
) -> dict[str, Any]:
    """The key policy document for one CMK key."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": SID_ROOT,
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if key_administrators:
        statements.append(
            {
                "Sid": SID_ADMINISTRATORS,
                "Effect": "Allow",
                "Principal": {"AWS": list(key_administrators)},
                "Action": list(KEY_ADMINISTRATOR_ACTIONS),
                "Resource": "*",
            }
        )
    statements.append(
        {
            "Sid": SID_ATLASSIAN_USE,
            "Effect": "Allow",
            "Principal": {"AWS": list(atlassian_principals)},
            "Action": list(ATLASSIAN_CRYPTO_ACTIONS),
            "Resource": "*",
            "Condition": context_condition(context_tag),
        }
    )
    statements.append(
        {
            "Sid": SID_ATLASSIAN_DESCRIBE,
            "Effect": "Allow",
            "Principal": {"AWS": list(atlassian_principals)},
            "Action": list(ATLASSIAN_DESCRIBE_ACTIONS),
            "Resource": "*",
        }
    )
    return {"Version": "2012-10-17", "Id": "atlassian-cmk", "Statement": statements}


def serialize_key_policy(document: Mapping[str, Any]) -> str:
    """The policy as KMS stores it; sorted keys keep the program's output stable across runs."""
    return json.dumps(document, indent=2, sort_keys=True)


# ----------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class _Statement:
    effect: str
    principals: frozenset[str] | None  # None: NotPrincipal
    not_principals: frozenset[str]
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources_all: bool
    condition: Any


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _principals(value: Any) -> frozenset[str]:
    if value == "*":
        return frozenset({"*"})
    if isinstance(value, Mapping):
        return frozenset(str(p) for p in _as_list(value.get("AWS")))
    return frozenset()


def _statements(document: Mapping[str, Any]) -> list[_Statement]:
    result = []
    for raw in _as_list(document.get("Statement")):
        if not isinstance(raw, Mapping):
            continue
        result.append(
            _Statement(
                effect=str(raw.get("Effect", "")),
                principals=_principals(raw["Principal"]) if "Principal" in raw else None,
                not_principals=_principals(raw.get("NotPrincipal")),
                actions=tuple(str(a) for a in _as_list(raw.get("Action"))),
                not_actions=tuple(str(a) for a in _as_list(raw.get("NotAction"))),
                resources_all="*" in _as_list(raw.get("Resource")),
                condition=raw.get("Condition"),
            )
        )
    return result


def _action_matches(patterns: Iterable[str], action: str) -> bool:
    # IAM action names are case-insensitive; `*` and `?` are the only wildcards.
    return any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in patterns)


def _applies_to_action(statement: _Statement, action: str) -> bool:
    if statement.not_actions:
        return not _action_matches(statement.not_actions, action)
    return _action_matches(statement.actions, action)


def _applies_to_principal(statement: _Statement, principal: str) -> bool:
    if statement.principals is None:  # NotPrincipal: everyone not listed
        return principal not in statement.not_principals and "*" not in statement.not_principals
    return principal in statement.principals or "*" in statement.principals


def _root_principal_of(principals: Iterable[str]) -> set[str]:
    return {p for p in principals if p.startswith("arn:") and p.endswith(":root")}


def key_policy_problems(
    policy_json: str,
    *,
    atlassian_principals: Sequence[str],
    context_tag: str,
    account_id: str | None = None,
) -> list[str]:
    """What is wrong with a key policy, each as a sentence a reviewer can act on; [] when sound.

    `account_id` pins the root statement to the key's own account when it is known; otherwise
    any account root counts.
    """
    try:
        document = json.loads(policy_json)
    except (TypeError, json.JSONDecodeError) as error:
        return [f"the key policy is not valid JSON ({error})"]
    if not isinstance(document, Mapping):
        return ["the key policy is not a JSON object"]
    statements = _statements(document)
    problems: list[str] = []

    roots = [
        s
        for s in statements
        if s.effect == "Allow"
        and s.principals is not None
        and s.condition is None
        and s.resources_all
        and _action_matches(s.actions, "kms:PutKeyPolicy")
        and any(account_id is None or root.split(":")[4] == account_id for root in _root_principal_of(s.principals))
    ]
    if not roots:
        problems.append(
            "the account root administrator statement (Allow kms:* to arn:...:iam::<account>:root on *) is "
            "missing or narrowed: without it the key can become unmanageable (KMS lockout)"
        )

    expected_condition = context_condition(context_tag)
    for principal in atlassian_principals:
        for action in (*ATLASSIAN_CRYPTO_ACTIONS, *ATLASSIAN_DESCRIBE_ACTIONS):
            granted = any(
                s.effect == "Allow"
                and s.principals is not None
                and principal in s.principals
                and s.resources_all
                and not s.not_actions
                and _action_matches(s.actions, action)
                and (s.condition is None or s.condition == expected_condition)
                for s in statements
            )
            if not granted:
                problems.append(
                    f"Atlassian principal {principal} is no longer granted {action} (or only under extra "
                    "conditions): that revokes Atlassian's access without the reviewed `enabled` switch"
                )
        for s in statements:
            if s.effect == "Deny" and _applies_to_principal(s, principal):
                denied = [
                    a for a in (*ATLASSIAN_CRYPTO_ACTIONS, *ATLASSIAN_DESCRIBE_ACTIONS) if _applies_to_action(s, a)
                ]
                if denied:
                    problems.append(
                        f"a Deny statement applies to Atlassian principal {principal} for {', '.join(denied)}: "
                        "a stealth revocation; revoke through atlassian-cmk:enabled instead"
                    )
    return problems


def atlassian_grantees(policy_json: str) -> frozenset[str]:
    """The principals a key policy lets use the key under the context tag: Atlassian's, by shape.

    Read from a deployed policy, these are the principals a change must keep: dropping one from
    `atlassian-cmk:atlassianPrincipals` revokes its access outside the `enabled` switch.
    """
    try:
        document = json.loads(policy_json)
    except (TypeError, json.JSONDecodeError):
        return frozenset()
    if not isinstance(document, Mapping):
        return frozenset()
    condition_key = f"kms:EncryptionContext:{CONTEXT_TAG_CONTEXT_KEY}"
    grantees: set[str] = set()
    for statement in _statements(document):
        conditioned = isinstance(statement.condition, Mapping) and any(
            isinstance(block, Mapping) and condition_key in block for block in statement.condition.values()
        )
        if (
            statement.effect == "Allow"
            and statement.principals is not None
            and conditioned
            and _action_matches(statement.actions, "kms:Decrypt")
        ):
            grantees |= {p for p in statement.principals if p != "*"}
    return frozenset(grantees)
