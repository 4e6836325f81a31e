"""The CMK key policy: composed by the program from Atlassian's statements, checked by the pack.

What we define and what Atlassian defines (the contract boundary):
- Atlassian defines its statements (principals, actions, conditions): the customer pastes them
  from Atlassian's "Set up your AWS account and create a KMS key policy" page or the enrollment
  ticket into `atlassian-cmk:atlassianKeyPolicy`; they go into the key policy verbatim.
- We define the account root administrator (the key's own account; the KMS lockout check is
  never bypassed), the key administrators (own account only) and, from the evidence issue on,
  evidence-protection Deny statements; and we enforce that nothing else in the policy narrows,
  conditions or denies what Atlassian's statements grant ("stealth revocation": revoking
  without the reviewed `enabled` switch).

Every judgement reads the documents through `atlassian_cmk.iam_policy` (IAM's semantics).
Findings are pure data naming the statement and principal; the pack and cmkctl adapt them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from atlassian_cmk.iam_policy import (
    PolicyError,
    Statement,
    is_unique_id,
    parse_statement,
    principal_account,
    statement_actions,
    statement_covers_principal,
)

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
EVIDENCE_SID_PREFIX: Final = "ProtectCmkEvidence"
"""Sid prefix of the evidence-protection statements (issue #12 fills the slot)."""

OWN_SIDS: Final = (SID_ROOT, SID_ADMINISTRATORS)
"""Sids of the statements this product writes; every other statement is Atlassian's."""

POLICY_ID: Final = "atlassian-cmk"
REVISION_MARKER: Final = ";atlassian-revision="
"""The policy `Id` carries the declared revision of Atlassian's statements
(`atlassian-cmk;atlassian-revision=ATL-1234`), so the pack can tell a declared change of
Atlassian's baseline (a new revision) from a silent one, by reading the deployed policy."""

CONTEXT_CONDITION_PREFIX: Final = "kms:encryptioncontext:"


def is_own_sid(sid: object) -> bool:
    return isinstance(sid, str) and (sid in OWN_SIDS or sid.startswith(EVIDENCE_SID_PREFIX))


def policy_id(revision: str | None) -> str:
    return POLICY_ID if revision is None else f"{POLICY_ID}{REVISION_MARKER}{revision}"


def revision_of(document: Mapping[str, Any]) -> str | None:
    """The Atlassian revision a policy document declares in its `Id`, or None."""
    identifier = document.get("Id")
    if isinstance(identifier, str) and REVISION_MARKER in identifier:
        return identifier.split(REVISION_MARKER, 1)[1] or None
    return None


def build_key_policy(
    *,
    partition: str,
    account_id: str,
    atlassian_statements: Sequence[Mapping[str, Any]],
    key_administrators: Sequence[str] = (),
    evidence_statements: Sequence[Mapping[str, Any]] = (),
    atlassian_revision: str | None = None,
) -> dict[str, Any]:
    """The key policy document for one CMK key: our statements, then Atlassian's verbatim."""
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
    # Evidence-protection slot (issue #12): Deny TagResource/UntagResource on the guard tags to
    # everyone but the CI apply role. Sids must start with EVIDENCE_SID_PREFIX.
    statements.extend(copy.deepcopy(dict(s)) for s in evidence_statements)
    statements.extend(copy.deepcopy(dict(s)) for s in atlassian_statements)
    return {"Version": "2012-10-17", "Id": policy_id(atlassian_revision), "Statement": statements}


def serialize_key_policy(document: Mapping[str, Any]) -> str:
    """The policy as KMS stores it; sorted keys keep the program's output stable across runs."""
    return json.dumps(document, indent=2, sort_keys=True)


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class KeyPolicyParts:
    """A key policy split by author: ours (by Sid) and Atlassian's (everything else)."""

    own: tuple[Statement, ...]
    atlassian: tuple[Statement, ...]
    revision: str | None


def split_key_policy(policy_json: str) -> KeyPolicyParts:
    """Parse a stored key policy; raises PolicyError (one line) when it is not one."""
    try:
        document = json.loads(policy_json)
    except (TypeError, json.JSONDecodeError) as error:
        raise PolicyError(f"the key policy is not valid JSON ({error})") from None
    if not isinstance(document, Mapping):
        raise PolicyError("the key policy is not a JSON object")
    raw = document.get("Statement")
    own: list[Statement] = []
    atlassian: list[Statement] = []
    for index, item in enumerate(raw if isinstance(raw, list) else [raw]):
        statement = parse_statement(item, f"Statement[{index}]")
        (own if is_own_sid(statement.sid) else atlassian).append(statement)
    return KeyPolicyParts(tuple(own), tuple(atlassian), revision_of(document))


def atlassian_principals_of(statements: Sequence[Statement]) -> frozenset[str]:
    """Canonical principals named by Atlassian's statements (unique IDs included)."""
    return frozenset(p for s in statements for p in s.named_principals() if p != "*")


def atlassian_accounts_of(statements: Sequence[Statement]) -> frozenset[str]:
    return frozenset(a for p in atlassian_principals_of(statements) if (a := principal_account(p)) is not None)


def granted_actions(statements: Sequence[Statement]) -> frozenset[str]:
    """Concrete KMS actions (lower case) Atlassian's Allow statements grant."""
    return frozenset(a for s in statements if s.effect == "Allow" for a in statement_actions(s))


def deleted_principals(statements: Sequence[Statement]) -> list[tuple[Statement, str]]:
    """(statement, unique ID) for every principal KMS shows as a unique ID: deleted, access broken."""
    return [(s, p) for s in statements for p in sorted(s.named_principals()) if is_unique_id(p)]


# ----------------------------------------------------------------------------- invariants


@dataclass(frozen=True)
class Finding:
    """One judgement on a key policy. `blocking` False: an explanation, not a violation."""

    rule: Literal[
        "unreadable",
        "root-administrator",
        "atlassian-statement",
        "context-tag",
        "deny-reaches-atlassian",
        "allow-to-everyone",
        "grant-outside-account",
        "deleted-principal",
        "atlassian-revision",
    ]
    message: str
    blocking: bool = True


def _principal_text(principal: str) -> str:
    return principal.replace("account:", "account ", 1) if principal.startswith("account:") else principal


def _first_principal(statement: Statement) -> str:
    named = sorted(statement.named_principals())
    return _principal_text(named[0]) if named else "(no principal)"


def parse_atlassian_statements(raw: Sequence[Mapping[str, Any]]) -> list[Statement]:
    return [parse_statement(s, f"atlassianKeyPolicy[{i}]") for i, s in enumerate(raw)]


def key_policy_findings(
    policy_json: str,
    *,
    atlassian_statements: Sequence[Mapping[str, Any]],
    context_tag: str,
    account_id: str | None = None,
    deployed_policy_json: str | None = None,
    atlassian_revision: str | None = None,
) -> list[Finding]:
    """Every finding on a new key policy; [] when sound.

    `atlassian_statements`: the configured (validated) statements. `account_id`: the key's own
    account when known (the deployed key's ARN, the caller's identity); otherwise the account of
    the root statement. `deployed_policy_json`: the policy the key has today, when the live check
    reads it: every Atlassian statement in it must be kept (semantically), unless the change
    declares a new `atlassian_revision`.
    """
    try:
        new = split_key_policy(policy_json)
        configured = parse_atlassian_statements(atlassian_statements)
    except PolicyError as error:
        return [Finding("unreadable", f"{error}")]
    findings: list[Finding] = []
    atlassian = list(new.atlassian)
    deployed: KeyPolicyParts | None = None
    if deployed_policy_json is not None:
        try:
            deployed = split_key_policy(deployed_policy_json)
        except PolicyError as error:
            findings.append(Finding("unreadable", f"the deployed key policy cannot be read ({error})"))
    reference = [*configured, *(deployed.atlassian if deployed else ())]
    atlassian_accounts = atlassian_accounts_of(reference)
    atlassian_actions = granted_actions(reference)
    findings += _root_findings(new.own, account_id)
    own_account = account_id or _root_account(new.own)
    for statement in configured:
        if statement not in atlassian:
            findings.append(
                Finding(
                    "atlassian-statement",
                    f"Atlassian's {statement.label} (principal {_first_principal(statement)}) from "
                    "atlassian-cmk:atlassianKeyPolicy is missing or altered in the key policy: Atlassian's statements "
                    "go in verbatim",
                )
            )
    for statement in atlassian:
        if statement not in configured:
            findings.append(
                Finding(
                    "atlassian-statement",
                    f"{statement.label} (principal {_first_principal(statement)}) is neither ours nor one of "
                    "Atlassian's statements in atlassian-cmk:atlassianKeyPolicy",
                )
            )
    findings += context_tag_findings(configured, context_tag, "atlassian-cmk:atlassianKeyPolicy")
    for statement in new.own:
        findings += _own_statement_findings(
            statement, own_account, atlassian_accounts, atlassian_actions, atlassian_principals_of(reference)
        )
    if deployed is not None:
        findings += _deployed_findings(deployed, configured, context_tag, atlassian_revision)
    return findings


def context_tag_findings(statements: Sequence[Statement], context_tag: str, where: str) -> list[Finding]:
    """Every encryption-context condition of Atlassian's statements must carry the context tag."""
    findings = []
    for statement in statements:
        for condition in statement.conditions:
            if condition.key.startswith(CONTEXT_CONDITION_PREFIX) and condition.values != {context_tag}:
                findings.append(
                    Finding(
                        "context-tag",
                        f"Atlassian's {statement.label} in {where} conditions on {condition.key} = "
                        f"{', '.join(sorted(condition.values))}, but atlassian-cmk:contextTag is {context_tag}: "
                        "Atlassian would be denied (a stealth revocation); the context tag is immutable once enrolled",
                    )
                )
    return findings


def _root_account(own: Sequence[Statement]) -> str | None:
    for statement in own:
        if statement.sid == SID_ROOT:
            for principal in sorted(statement.principals or ()):
                if principal.startswith("account:"):
                    return principal_account(principal)
    return None


def _root_findings(own: Sequence[Statement], account_id: str | None) -> list[Finding]:
    for statement in own:
        accounts = {principal_account(p) for p in statement.principals or () if p.startswith("account:")}
        if (
            statement.effect == "Allow"
            and not statement.conditions
            and statement.resources == frozenset({"*"})
            and {"kms:putkeypolicy", "kms:enablekey"} <= statement_actions(statement)
            and any(a is not None and (account_id is None or a == account_id) for a in accounts)
        ):
            return []
    expected = f"arn:...:iam::{account_id}:root" if account_id else "arn:...:iam::<own account>:root"
    return [
        Finding(
            "root-administrator",
            f"the account root administrator statement (Allow kms:* to {expected} on *, no condition) is missing, "
            "narrowed or names another account: without it the key can become unmanageable (KMS lockout)",
        )
    ]


def _own_statement_findings(
    statement: Statement,
    own_account: str | None,
    atlassian_accounts: frozenset[str],
    atlassian_actions: frozenset[str],
    atlassian_principals: frozenset[str],
) -> list[Finding]:
    findings = []
    if statement.effect == "Deny":
        if statement.principals is None:
            # NotPrincipal: the Deny reaches everyone it does not exclude; Atlassian's principals and
            # the roots of Atlassian's accounts are the callers that matter.
            callers = [*(f"account:{a}" for a in sorted(atlassian_accounts)), *sorted(atlassian_principals)]
            reached = [
                "everyone outside NotPrincipal, Atlassian included"
                for _ in callers[:1]
                if any(statement_covers_principal(statement, c) for c in callers)
            ]
        else:
            reached = sorted(p for p in statement.principals if p == "*" or principal_account(p) in atlassian_accounts)
        actions = statement_actions(statement) & atlassian_actions
        if reached and actions and atlassian_accounts:
            findings.append(
                Finding(
                    "deny-reaches-atlassian",
                    f"{statement.label} denies {_principal_text(reached[0])} {', '.join(sorted(actions)[:4])}"
                    f"{'...' if len(actions) > 4 else ''}, which reaches Atlassian's account "
                    f"{', '.join(sorted(atlassian_accounts))}: a stealth revocation; "
                    "revoke through atlassian-cmk:enabled",
                )
            )
        return findings
    if statement.principals is None or "*" in statement.principals:
        findings.append(
            Finding(
                "allow-to-everyone",
                f"{statement.label} allows {'everyone outside NotPrincipal' if statement.principals is None else '*'} "
                f"{', '.join(sorted(statement_actions(statement))[:4])}: no statement of ours may grant to everyone",
            )
        )
        return findings
    for principal in sorted(statement.principals):
        if is_unique_id(principal):
            continue
        account = principal_account(principal)
        if own_account is None or account != own_account:
            findings.append(
                Finding(
                    "grant-outside-account",
                    f"{statement.label} grants {_principal_text(principal)}, outside the key's own account "
                    f"{own_account or '(unknown)'}: key administrators and the root are the own account's; "
                    "Atlassian's access comes only from its statements in atlassian-cmk:atlassianKeyPolicy",
                )
            )
    return findings


def _same_but_regranted(deployed: Statement, new: Statement) -> bool:
    """`new` is `deployed` with its unique-ID principals re-granted by ARN (or dropped)."""
    deleted = [p for p in deployed.named_principals() if is_unique_id(p)]
    kept = frozenset(p for p in deployed.named_principals() if not is_unique_id(p))
    return (
        bool(deleted)
        and len(new.named_principals() - kept) <= len(deleted)
        and new.effect == deployed.effect
        and new.actions == deployed.actions
        and new.not_actions == deployed.not_actions
        and new.resources == deployed.resources
        and new.not_resources == deployed.not_resources
        and new.conditions == deployed.conditions
        and kept <= new.named_principals()
        and (deployed.principals is None) == (new.principals is None)
    )


def _deployed_findings(
    deployed: KeyPolicyParts, configured: Sequence[Statement], context_tag: str, revision: str | None
) -> list[Finding]:
    findings = context_tag_findings(deployed.atlassian, context_tag, "the deployed key policy")
    declared = revision is not None and revision != deployed.revision
    for statement, principal in deleted_principals(deployed.atlassian):
        regranted = any(_same_but_regranted(statement, s) for s in configured)
        findings.append(
            Finding(
                "deleted-principal",
                f"the deployed Atlassian {statement.label} names {principal}, a unique ID: the principal it named "
                "was deleted, so Atlassian's access through this statement is already broken; "
                + (
                    "this change re-grants it by ARN"
                    if regranted
                    else "re-grant it by ARN (Atlassian's statement as given) in atlassian-cmk:atlassianKeyPolicy"
                ),
                blocking=False,
            )
        )
    for statement in deployed.atlassian:
        if statement in configured or any(_same_but_regranted(statement, s) for s in configured):
            continue
        if deployed_principals_deleted(statement):
            continue
        if declared:
            findings.append(
                Finding(
                    "atlassian-revision",
                    f"Atlassian's deployed {statement.label} (principal {_first_principal(statement)}) is replaced "
                    f"under the declared revision {revision}",
                    blocking=False,
                )
            )
            continue
        findings.append(
            Finding(
                "atlassian-statement",
                f"this change alters or drops Atlassian's deployed {statement.label} (principal "
                f"{_first_principal(statement)}): that changes Atlassian's access outside the reviewed `enabled` "
                "switch. If Atlassian revised its key policy, declare it with a new "
                "atlassian-cmk:atlassianKeyPolicyRevision (the ticket); otherwise keep the statement",
            )
        )
    deployed_set = set(deployed.atlassian)
    for statement in configured:
        if deployed.atlassian and statement not in deployed_set and not declared:
            if any(_same_but_regranted(d, statement) for d in deployed.atlassian):
                continue
            findings.append(
                Finding(
                    "atlassian-statement",
                    f"this change adds Atlassian {statement.label} (principal {_first_principal(statement)}) that the "
                    "deployed key does not have: declare Atlassian's revision with a new "
                    "atlassian-cmk:atlassianKeyPolicyRevision (the ticket)",
                )
            )
    return findings


def deployed_principals_deleted(statement: Statement) -> bool:
    """Every principal the statement names is a unique ID: it grants no one any more."""
    named = statement.named_principals()
    return bool(named) and all(is_unique_id(p) for p in named)
