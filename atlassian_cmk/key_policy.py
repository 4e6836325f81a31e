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
    ROLE_RE,
    PolicyError,
    Request,
    Statement,
    condition_holds,
    evaluate,
    is_unique_id,
    parse_statement,
    principal_account,
    principal_matches,
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
        "atlassian-access",
        "kms-refuses",
        "atlassian-own-account",
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


KEY_USE_ACTIONS: Final = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:DescribeKey",
    "kms:CreateGrant",
    "kms:ListGrants",
    "kms:RetireGrant",
    "kms:RevokeGrant",
)
"""The only actions Atlassian's statements may allow: using the key for data (the cryptographic
operations and DescribeKey of KMS's default "key users" statement) and the grant operations of its
"attachment of persistent resources" statement (CreateGrant/ListGrants/RevokeGrant; RetireGrant so
a grantee can retire its own grant). Never key management (Enable/Disable/ScheduleKeyDeletion/
PutKeyPolicy/Tag/Untag/UpdateAlias...): revocation goes through `enabled` only (KMS Developer Guide,
"Default key policy": "Allows key users to use the KMS key")."""

DATA_ACTIONS: Final = frozenset(
    a.lower()
    for a in (
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:GenerateDataKeyPair",
        "kms:GenerateDataKeyPairWithoutPlaintext",
    )
)
"""Losing every one of these is losing the key for data: a de-facto revocation."""

KEY_POLICY_MAX_BYTES: Final = 32768
"""KMS refuses a key policy over 32 KiB (KMS API Reference, PutKeyPolicy/CreateKey, Policy: "The
policy size limit is 32 kilobytes (32768 bytes)")."""


def semantic_form(statement: Statement) -> tuple[Any, ...]:
    """What a statement means to IAM, for comparison: wildcards and NotAction expanded to the
    concrete KMS actions, case-insensitive operator values folded."""
    conditions = frozenset(
        (c.operator, c.key, frozenset(v.lower() for v in c.values) if "IgnoreCase" in c.operator else c.values)
        for c in statement.conditions
    )
    return (
        statement.effect,
        statement.principals,
        statement.not_principals,
        statement_actions(statement),
        statement.resources,
        statement.not_resources,
        conditions,
    )


def _same(statement: Statement, others: Sequence[Statement]) -> bool:
    form = semantic_form(statement)
    return any(semantic_form(o) == form for o in others)


def atlassian_callers(principal: str, partition: str = "aws") -> tuple[str, ...]:
    """The callers a named Atlassian principal stands for: an account (root or bare ID) is every
    principal of it, so a role of it and a session of that role; a role is the role and its
    sessions; anything else itself. Unique IDs stand for no one (deleted)."""
    if is_unique_id(principal):
        return ()
    if principal.startswith("account:"):
        account = principal[len("account:") :]
        return (
            principal,
            f"arn:{partition}:iam::{account}:role/AnyRoleOfAtlassian",
            f"arn:{partition}:sts::{account}:assumed-role/AnyRoleOfAtlassian/atlassian-cmk",
        )
    role = ROLE_RE.match(principal)
    if role:
        return (principal, f"arn:{role.group(1)}:sts::{role.group(2)}:assumed-role/{role.group(3)}/atlassian-cmk")
    return (principal,)


def _context_for(statement: Statement) -> dict[str, list[str]]:
    """A request context under which the statement's own conditions hold (the context Atlassian
    sends to use its grant): a value matching each positive operator, nothing for negated ones."""
    context: dict[str, list[str]] = {}
    for condition in sorted(statement.conditions, key=lambda c: (c.key, c.operator)):
        base = condition.operator.rpartition(":")[2].removesuffix("IfExists")
        if base == "Null":
            if "false" in {v.lower() for v in condition.values}:
                context.setdefault(condition.key, ["present"])
            continue
        if base.startswith(("StringNot", "ArnNot")):
            continue
        value = sorted(condition.values)[0].replace("*", "").replace("?", "x")
        context.setdefault(condition.key, [value])
    return context


AtlassianAccess = dict[str, frozenset[str]]
"""Named Atlassian principal (canonical) -> the KMS actions (lower case) every caller it stands
for is allowed, each under the context its granting statement requires."""


def atlassian_access(policy: Sequence[Statement], grants: Sequence[Statement]) -> AtlassianAccess:
    """What Atlassian gets from `policy`, asked for each action Atlassian's `grants` (its Allow
    statements) give, with the evaluator (`iam_policy.evaluate`)."""
    access: dict[str, frozenset[str]] = {}
    for grant in grants:
        if grant.effect != "Allow" or grant.principals is None:
            continue
        context = _context_for(grant)
        for principal in sorted(grant.principals - {"*"}):
            callers = atlassian_callers(principal)
            allowed = frozenset(
                action
                for action in statement_actions(grant)
                if callers and all(evaluate(policy, Request(c, action, "*", context)).allowed for c in callers)
            )
            access[principal] = access.get(principal, frozenset()) | allowed
    return access


@dataclass(frozen=True)
class AccessChange:
    """How one Atlassian principal's access changes between two policies."""

    principal: str
    lost: frozenset[str]
    gained: frozenset[str]
    kept_data: frozenset[str] = frozenset()

    @property
    def revokes(self) -> bool:
        """Every data-key/decrypt action the principal had is gone: a de-facto revocation."""
        return bool(self.lost & DATA_ACTIONS) and not self.kept_data

    def describe(self) -> str:
        parts = []
        if self.lost:
            parts.append(f"loses {', '.join(sorted(self.lost))}")
        if self.gained:
            parts.append(f"gains {', '.join(sorted(self.gained))}")
        return f"Atlassian's {_principal_text(self.principal)} {' and '.join(parts)}"


def access_changes(
    before: Sequence[Statement],
    after: Sequence[Statement],
    before_grants: Sequence[Statement],
    after_grants: Sequence[Statement],
) -> list[AccessChange]:
    """Per Atlassian principal, what it loses (asked as Atlassian asks today: the deployed grants'
    actions and contexts) and gains (asked as the new grants say) going from `before` to `after`;
    unchanged principals omitted."""
    had, keeps = atlassian_access(before, before_grants), atlassian_access(after, before_grants)
    offered, has = atlassian_access(before, after_grants), atlassian_access(after, after_grants)
    changes = []
    for principal in sorted(set(had) | set(has)):
        lost = had.get(principal, frozenset()) - keeps.get(principal, frozenset())
        gained = has.get(principal, frozenset()) - offered.get(principal, frozenset())
        if lost or gained:
            kept = keeps.get(principal, frozenset()) & DATA_ACTIONS
            changes.append(AccessChange(principal, lost, gained, kept_data=kept))
    return changes


def kms_refusals(document: Any, policy_json: str) -> list[Finding]:
    """What KMS itself refuses or ignores in a key policy: over 32 KiB; duplicate Sids; a statement
    without Resource (KMS accepts it but the statement has no effect: KMS API Reference,
    PutKeyPolicy, Policy)."""
    findings = []
    size = len(policy_json.encode("utf-8"))
    if size > KEY_POLICY_MAX_BYTES:
        findings.append(
            Finding(
                "kms-refuses", f"the key policy is {size} bytes; KMS allows at most {KEY_POLICY_MAX_BYTES} (32 KiB)"
            )
        )
    raw = document.get("Statement") if isinstance(document, Mapping) else None
    seen: set[str] = set()
    for index, item in enumerate(raw if isinstance(raw, list) else [raw]):
        if not isinstance(item, Mapping):
            continue
        sid = item.get("Sid")
        label = f"statement {sid!r}" if sid is not None else f"Statement[{index}]"
        if "Resource" not in item and "NotResource" not in item:
            findings.append(
                Finding(
                    "kms-refuses",
                    f'{label} has no Resource: a key policy statement needs "Resource": "*" (without it the '
                    "statement has no effect)",
                )
            )
        if isinstance(sid, str):
            if sid in seen:
                findings.append(Finding("kms-refuses", f"Sid {sid!r} appears twice: each statement needs its own Sid"))
            seen.add(sid)
    return findings


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
    account (the deployed key's ARN, the caller's identity, aws:allowedAccountIds); None = unknown,
    which fails closed (the root must be the key's OWN account). `deployed_policy_json`: the
    policy the key has today, when the live check reads it.

    Invariants on the new policy alone, whatever `atlassian_revision`: the own-account root; no
    Allow to everyone; no Deny (any statement, any principal form) reaching a principal of
    Atlassian's account(s) for an action Atlassian's statements grant; Atlassian's statements allow
    only KEY_USE_ACTIONS, to principals outside the own account, in Atlassian's deployed
    account(s); key administrators in the own account; what KMS refuses. Against the deployed
    policy: without a new revision any change of Atlassian's access blocks; with one, losing every
    data action blocks (a revocation: use `enabled`) and narrower changes are explained.
    """
    try:
        document = json.loads(policy_json)
        new = split_key_policy(policy_json)
        configured = parse_atlassian_statements(atlassian_statements)
    except (PolicyError, TypeError, json.JSONDecodeError) as error:
        return [Finding("unreadable", f"{error}")]
    findings: list[Finding] = kms_refusals(document, policy_json)
    atlassian = list(new.atlassian)
    deployed: KeyPolicyParts | None = None
    if deployed_policy_json is not None:
        try:
            deployed = split_key_policy(deployed_policy_json)
        except PolicyError as error:
            findings.append(Finding("unreadable", f"the deployed key policy cannot be read ({error})"))
    deployed_atlassian = list(deployed.atlassian) if deployed else []
    reference = deployed_atlassian or [*configured, *atlassian]
    atlassian_accounts = atlassian_accounts_of(reference)
    atlassian_actions = granted_actions([*reference, *configured, *atlassian])
    if account_id is None:
        findings.append(
            Finding(
                "root-administrator",
                "the key's own account is unknown (no deployed key read, no aws:allowedAccountIds), so the root "
                "administrator cannot be checked and the policy fails closed; set aws:allowedAccountIds to the "
                "key's account",
            )
        )
    else:
        findings += _root_findings(new.own, account_id)
    for statement in configured:
        if not _same(statement, atlassian):
            findings.append(
                Finding(
                    "atlassian-statement",
                    f"Atlassian's {statement.label} (principal {_first_principal(statement)}) from "
                    "atlassian-cmk:atlassianKeyPolicy is missing or altered in the key policy: Atlassian's statements "
                    "go in verbatim",
                )
            )
    for statement in atlassian:
        if not _same(statement, configured):
            findings.append(
                Finding(
                    "atlassian-statement",
                    f"{statement.label} (principal {_first_principal(statement)}) is neither ours nor one of "
                    "Atlassian's statements in atlassian-cmk:atlassianKeyPolicy",
                )
            )
    findings += context_tag_findings(configured, context_tag, "atlassian-cmk:atlassianKeyPolicy")
    callers = sorted(
        {c for p in atlassian_principals_of(reference) for c in atlassian_callers(p)}
        | {c for a in atlassian_accounts for c in atlassian_callers(f"account:{a}")}
    )
    for statement in [*new.own, *atlassian]:
        findings += _everyone_and_deny_findings(statement, callers, atlassian_accounts, atlassian_actions)
    for statement in new.own:
        if statement.effect == "Allow" and statement.principals is not None and "*" not in statement.principals:
            findings += _outside_account_findings(statement, account_id)
    for statement in atlassian:
        findings += _atlassian_statement_findings(statement, account_id, atlassian_accounts_of(deployed_atlassian))
    if deployed is not None:
        findings += _deployed_findings(deployed, configured, context_tag, atlassian_revision)
        findings += _access_findings(deployed, new, atlassian_revision)
    return findings


def _everyone_and_deny_findings(
    statement: Statement, callers: Sequence[str], accounts: frozenset[str], actions: frozenset[str]
) -> list[Finding]:
    if statement.effect == "Allow":
        if statement.principals is None or "*" in statement.principals:
            everyone = "everyone outside NotPrincipal" if statement.principals is None else "*"
            return [
                Finding(
                    "allow-to-everyone",
                    f"{statement.label} allows {everyone} {', '.join(sorted(statement_actions(statement))[:4])}: "
                    "no statement may grant to everyone",
                )
            ]
        return []
    # A Deny reaches Atlassian when it covers any caller of Atlassian's accounts (account root, a
    # role, a session) for an action Atlassian is granted, whatever its conditions (they can be
    # met, or made to be).
    reached = [c for c in callers if statement_covers_principal(statement, c)]
    denied = statement_actions(statement) & actions
    if not reached or not denied:
        return []
    if statement.principals is not None:
        named = [p for p in sorted(statement.principals) if any(principal_matches(p, c) for c in reached)]
        whom = _principal_text(named[0])
    else:
        whom = f"everyone outside NotPrincipal, Atlassian's {reached[0]} included,"
    return [
        Finding(
            "deny-reaches-atlassian",
            f"{statement.label} denies {whom} {', '.join(sorted(denied)[:4])}"
            f"{'...' if len(denied) > 4 else ''}, which reaches Atlassian's account "
            f"{', '.join(sorted(accounts))}: a stealth revocation; revoke through atlassian-cmk:enabled",
        )
    ]


def _outside_account_findings(statement: Statement, own_account: str | None) -> list[Finding]:
    findings = []
    for principal in sorted(statement.principals or ()):
        if is_unique_id(principal):
            continue
        if own_account is None or principal_account(principal) != own_account:
            findings.append(
                Finding(
                    "grant-outside-account",
                    f"{statement.label} grants {_principal_text(principal)}, outside the key's own account "
                    f"{own_account or '(unknown)'}: key administrators and the root are the own account's; "
                    "Atlassian's access comes only from its statements in atlassian-cmk:atlassianKeyPolicy",
                )
            )
    return findings


def _atlassian_statement_findings(
    statement: Statement, own_account: str | None, deployed_accounts: frozenset[str]
) -> list[Finding]:
    findings = []
    if statement.effect == "Allow":
        extra = statement_actions(statement) - {a.lower() for a in KEY_USE_ACTIONS}
        if extra:
            findings.append(
                Finding(
                    "atlassian-statement",
                    f"Atlassian's {statement.label} (principal {_first_principal(statement)}) allows "
                    f"{', '.join(sorted(extra)[:4])}{'...' if len(extra) > 4 else ''}: Atlassian's statements may "
                    f"allow only key use ({', '.join(KEY_USE_ACTIONS)}), never key management",
                )
            )
    for principal in sorted(statement.named_principals()):
        account = principal_account(principal)
        if account is None:
            continue
        if own_account is not None and account == own_account:
            findings.append(
                Finding(
                    "atlassian-own-account",
                    f"{statement.label} in atlassian-cmk:atlassianKeyPolicy names {_principal_text(principal)} of the "
                    "key's own account: remove the account root (own-account) statement from what you pasted; the "
                    "program writes it",
                )
            )
        elif deployed_accounts and account not in deployed_accounts:
            findings.append(
                Finding(
                    "atlassian-statement",
                    f"Atlassian's {statement.label} names {_principal_text(principal)} in account {account}, not "
                    f"Atlassian's deployed account {', '.join(sorted(deployed_accounts))}: changing Atlassian's "
                    "account is a re-enrollment (a new key), not a key policy revision",
                )
            )
    return findings


def _access_findings(deployed: KeyPolicyParts, new: KeyPolicyParts, revision: str | None) -> list[Finding]:
    declared = revision is not None and revision != deployed.revision
    findings: list[Finding] = []
    before, after = [*deployed.own, *deployed.atlassian], [*new.own, *new.atlassian]
    for change in access_changes(before, after, deployed.atlassian, new.atlassian):
        if not change.lost and declared:
            findings.append(Finding("atlassian-revision", f"{change.describe()} (revision {revision})", blocking=False))
            continue
        if not change.lost:
            continue  # additions without a revision: the statement comparison says so
        if change.revokes:
            findings.append(
                Finding(
                    "atlassian-access",
                    f"{change.describe()}: that takes every data-key/decrypt action Atlassian had, a revocation; "
                    "revoke through atlassian-cmk:enabled"
                    + (f" (the declared revision {revision} does not allow it)" if declared else ""),
                )
            )
        elif declared:
            findings.append(
                Finding(
                    "atlassian-revision",
                    f"{change.describe()} under the declared revision {revision}: check it against Atlassian's "
                    "revised statements",
                    blocking=False,
                )
            )
        else:
            findings.append(
                Finding(
                    "atlassian-access",
                    f"{change.describe()}: a change of Atlassian's access outside the reviewed `enabled` switch; "
                    "if Atlassian revised its key policy, declare it with a new "
                    "atlassian-cmk:atlassianKeyPolicyRevision",
                )
            )
    return findings


def context_tag_findings(statements: Sequence[Statement], context_tag: str, where: str) -> list[Finding]:
    """Every encryption-context condition of Atlassian's statements must carry the context tag."""
    findings: list[Finding] = []
    for statement in statements:
        for condition in statement.conditions:
            if not condition.key.startswith(CONTEXT_CONDITION_PREFIX):
                continue
            # IAM's reading: would Atlassian's request, carrying the context tag, meet it?
            if condition_holds(condition, Request("*", "kms:Decrypt", "*", {condition.key: context_tag})) is not False:
                continue
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
        if _same(statement, configured) or any(_same_but_regranted(statement, s) for s in configured):
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
    for statement in configured:
        if deployed.atlassian and not _same(statement, deployed.atlassian) and not declared:
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
