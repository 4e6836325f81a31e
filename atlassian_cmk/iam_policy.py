"""One IAM-faithful reading of policy documents: normalised statements and request evaluation.

No maintained Python library evaluates IAM policies (policyuniverse and parliament parse and
lint; none answers "is this request allowed"; the maintained simulators are JavaScript/Rust), so
this module follows AWS's documented logic (IAM User Guide: "Policy evaluation logic", "IAM JSON
policy elements: Principal, NotPrincipal, Action, NotAction, Resource, Condition",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
and .../reference_policies_multi-value-conditions.html):

- action names and condition keys are case-insensitive; condition values are not, unless the
  operator says so (`StringEqualsIgnoreCase`); a scalar and a one-element list are the same;
- an account principal (`arn:<partition>:iam::<id>:root` or the bare 12-digit `<id>`) stands
  for every principal of that account; `*` for everyone;
- a principal deleted (and perhaps recreated) shows in a stored policy as its unique ID
  (`AROA...` role, `AIDA...` user): it matches no principal any more;
- an explicit Deny wins over any Allow; without an Allow the request is denied;
- conditions: operators in one block are ANDed, keys of one operator ANDed, values of one key
  ORed (NOR for negated operators); `...IfExists` is true when the key is absent; a negated
  operator is true when the key is absent; `ForAllValues:` is true for an absent or empty key,
  `ForAnyValue:` false.

Policy variables (`${aws:ResourceTag/x}`, `${aws:username, 'default'}`, `${*}`, `${?}`, `${$}`)
are replaced by the request's value in the values of string and ARN operators, in documents of
`Version` 2012-10-17 only (older versions read them literally); not in `Null`/`Bool` (IAM User
Guide, "IAM policy elements: Variables and tags", "Where you can use policy variables",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html, and
awsdocs/iam-user-guide doc_source/reference_policies_variables.md). A variable whose key the
request lacks (or holds several values) and that has no default cannot be resolved: AWS says the
statement may then be invalid, so this module treats that condition as unknown.

Fail closed: a condition this module cannot decide (an unknown operator, an unresolvable
variable) makes an Allow statement not apply and a Deny statement apply, unless another
condition of the statement is false (the conditions are ANDed).
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Effect = Literal["Allow", "Deny"]

ACCOUNT_ID_RE: Final = re.compile(r"^[0-9]{12}\Z")
ARN_ACCOUNT_RE: Final = re.compile(r"^arn:[a-z-]+:(iam|sts)::([0-9]{12}):")
UNIQUE_ID_RE: Final = re.compile(r"^(AROA|AIDA|AGPA|AIPA|ANPA|ANVA|ASIA)[A-Z0-9]{12,}\Z")
"""IAM unique IDs (role, user, group, instance profile...): what a stored policy shows for a
principal that was deleted after the policy named it (IAM User Guide, "Unique identifiers")."""

ACCOUNT_PREFIX: Final = "account:"
"""Canonical form of an account principal: the root ARN and the bare ID are the same principal."""

KMS_ACTIONS: Final = tuple(
    f"kms:{name}"
    for name in [
        "CancelKeyDeletion",
        "ConnectCustomKeyStore",
        "CreateAlias",
        "CreateCustomKeyStore",
        "CreateGrant",
        "CreateKey",
        "Decrypt",
        "DeleteAlias",
        "DeleteCustomKeyStore",
        "DeleteImportedKeyMaterial",
        "DeriveSharedSecret",
        "DescribeCustomKeyStores",
        "DescribeKey",
        "DisableKey",
        "DisableKeyRotation",
        "DisconnectCustomKeyStore",
        "EnableKey",
        "EnableKeyRotation",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateMac",
        "GenerateRandom",
        "GetKeyPolicy",
        "GetKeyRotationStatus",
        "GetParametersForImport",
        "GetPublicKey",
        "ImportKeyMaterial",
        "ListAliases",
        "ListGrants",
        "ListKeyPolicies",
        "ListKeyRotations",
        "ListKeys",
        "ListResourceTags",
        "ListRetirableGrants",
        "PutKeyPolicy",
        "ReEncryptFrom",
        "ReEncryptTo",
        "ReplicateKey",
        "RetireGrant",
        "RevokeGrant",
        "RotateKeyOnDemand",
        "ScheduleKeyDeletion",
        "Sign",
        "SynchronizeMultiRegionKey",
        "TagResource",
        "UntagResource",
        "UpdateAlias",
        "UpdateCustomKeyStore",
        "UpdateKeyDescription",
        "UpdatePrimaryRegion",
        "Verify",
        "VerifyMac",
    ]
)
"""Every AWS KMS API action (Service Authorization Reference, "Actions defined by AWS KMS"): what
wildcards in a key policy can expand to."""

_STRING_OPERATORS: Final = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Bool",
    "Null",
}
_NEGATED: Final = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}


class PolicyError(ValueError):
    """A document that is not an IAM policy, said in one line naming the statement and element."""


# ----------------------------------------------------------------------------- normalised statements


@dataclass(frozen=True)
class Condition:
    """One (operator, key, values) triple; the key lower-cased, the values a set."""

    operator: str
    key: str
    values: frozenset[str]


@dataclass(frozen=True)
class Statement:
    """A statement as IAM reads it. `principals`/`not_principals`: canonical principal strings
    (`*`, `account:<id>`, an ARN, a unique ID, `service:<name>`); None when the element is absent
    (an identity policy). Actions lower-cased. Equality is semantic and ignores `sid`."""

    effect: Effect
    principals: frozenset[str] | None
    not_principals: frozenset[str] | None
    actions: frozenset[str] | None
    not_actions: frozenset[str] | None
    resources: frozenset[str] | None
    not_resources: frozenset[str] | None
    conditions: frozenset[Condition]
    sid: str | None = field(default=None, compare=False)
    variables: bool = field(default=True, compare=False)
    """Whether `${...}` in condition values are policy variables (document `Version` 2012-10-17)."""

    @property
    def label(self) -> str:
        return f"statement {self.sid!r}" if self.sid else "a statement without Sid"

    def named_principals(self) -> frozenset[str]:
        return self.principals if self.principals is not None else (self.not_principals or frozenset())


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise PolicyError(f"{where}: {_short(value)} is not allowed; a string or a list of strings")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def canonical_principal(kind: str, value: str) -> str:
    """`AWS` principals: bare ID and root ARN become `account:<id>`; others are kept as written."""
    if kind != "AWS":
        return f"{kind.lower()}:{value}"
    if value == "*":
        return "*"
    if ACCOUNT_ID_RE.match(value):
        return ACCOUNT_PREFIX + value
    match = ARN_ACCOUNT_RE.match(value)
    if match and value.endswith(":root") and match.group(1) == "iam":
        return ACCOUNT_PREFIX + match.group(2)
    return value


def principal_account(principal: str) -> str | None:
    """The 12-digit account of a canonical principal; None for `*`, unique IDs and services."""
    if principal.startswith(ACCOUNT_PREFIX):
        return principal[len(ACCOUNT_PREFIX) :]
    match = ARN_ACCOUNT_RE.match(principal)
    return match.group(2) if match else None


def is_unique_id(principal: str) -> bool:
    return bool(UNIQUE_ID_RE.match(principal))


def _principals(value: Any, where: str) -> frozenset[str]:
    if value == "*":
        return frozenset({"*"})
    if not isinstance(value, Mapping) or not value:
        raise PolicyError(f'{where}: {_short(value)} is not allowed; "*" or a map such as {{AWS: <ARN or list>}}')
    result = set()
    for kind, entries in value.items():
        for entry in _as_list(entries):
            result.add(canonical_principal(str(kind), _scalar(entry, where)))
    return frozenset(result)


def _conditions(value: Any, where: str) -> frozenset[Condition]:
    if value is None:
        return frozenset()
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where}: {_short(value)} is not allowed; a map of operator to {{key: value}}")
    result = set()
    for operator, block in value.items():
        if not isinstance(block, Mapping) or not block:
            raise PolicyError(f"{where}.{operator}: {_short(block)} is not allowed; a map of condition key to value")
        for key, values in block.items():
            entries = _as_list(values)
            if not entries:
                raise PolicyError(f"{where}.{operator}.{key}: an empty list is not allowed")
            result.add(
                Condition(
                    str(operator), str(key).lower(), frozenset(_scalar(v, f"{where}.{operator}.{key}") for v in entries)
                )
            )
    return frozenset(result)


_STATEMENT_FIELDS: Final = {
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
}


def parse_statement(raw: Any, where: str = "statement", *, variables: bool = True) -> Statement:
    """One IAM statement, normalised; raises PolicyError (one line) when it is not one.
    `variables`: whether its document's `Version` (2012-10-17) makes `${...}` policy variables."""
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: {_short(raw)} is not allowed; an IAM statement (a map with Effect, Action...)")
    sid = raw.get("Sid")
    if sid is not None:
        where = f"{where} (Sid {sid!r})"
    unknown = sorted(set(raw) - _STATEMENT_FIELDS)
    if unknown:
        raise PolicyError(f"{where}: unknown element {unknown[0]!r}; allowed: {', '.join(sorted(_STATEMENT_FIELDS))}")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"{where}.Effect: {_short(effect)} is not allowed; Allow or Deny")
    pairs = (("Principal", "NotPrincipal"), ("Action", "NotAction"), ("Resource", "NotResource"))
    for positive, negative in pairs:
        if positive in raw and negative in raw:
            raise PolicyError(f"{where}: {positive} and {negative} together are not allowed; use one")
    if "Action" not in raw and "NotAction" not in raw:
        raise PolicyError(f"{where}.Action: missing; required (or NotAction)")

    def strings(name: str, lower: bool = False) -> frozenset[str] | None:
        if name not in raw:
            return None
        entries = [_scalar(v, f"{where}.{name}") for v in _as_list(raw[name])]
        if not entries:
            raise PolicyError(f"{where}.{name}: an empty list is not allowed")
        return frozenset(e.lower() if lower else e for e in entries)

    return Statement(
        effect=effect,
        principals=_principals(raw["Principal"], f"{where}.Principal") if "Principal" in raw else None,
        not_principals=_principals(raw["NotPrincipal"], f"{where}.NotPrincipal") if "NotPrincipal" in raw else None,
        actions=strings("Action", lower=True),
        not_actions=strings("NotAction", lower=True),
        resources=strings("Resource"),
        not_resources=strings("NotResource"),
        conditions=_conditions(raw.get("Condition"), f"{where}.Condition"),
        sid=str(sid) if sid is not None else None,
        variables=variables,
    )


VARIABLES_VERSION: Final = "2012-10-17"
"""The policy language version that has policy variables; without it `${...}` is literal text."""


def parse_policy(document: Mapping[str, Any]) -> list[Statement]:
    """Every statement of a policy document (`Statement` a map or a list); raises PolicyError."""
    variables = document.get("Version") == VARIABLES_VERSION
    return [
        parse_statement(raw, f"Statement[{i}]", variables=variables)
        for i, raw in enumerate(_as_list(document.get("Statement")))
    ]


# ----------------------------------------------------------------------------- matching


_LITERAL_STAR: Final = "\ue000"
_LITERAL_QUESTION: Final = "\ue001"
"""Private-use stand-ins for a `*`/`?` that a policy variable put into a pattern: `${*}`, `${?}`
or a resolved value; they match themselves, never as wildcards."""


def _like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    # IAM wildcards are `*` and `?` only; fnmatch's `[...]` classes must not apply.
    escaped = pattern.replace("[", "[[]").replace(_LITERAL_STAR, "[*]").replace(_LITERAL_QUESTION, "[?]")
    if ignore_case:
        return fnmatch.fnmatchcase(value.lower(), escaped.lower())
    return fnmatch.fnmatchcase(value, escaped)


def action_in(patterns: Iterable[str], action: str) -> bool:
    return any(_like(p, action, ignore_case=True) for p in patterns)


def statement_covers_action(statement: Statement, action: str) -> bool:
    if statement.not_actions is not None:
        return not action_in(statement.not_actions, action)
    return action_in(statement.actions or (), action)


def statement_actions(statement: Statement, universe: Sequence[str] = KMS_ACTIONS) -> frozenset[str]:
    """The concrete actions of `universe` the statement's Action/NotAction reaches (lower case)."""
    return _actions_reached(statement.actions, statement.not_actions, tuple(universe))


@functools.lru_cache(maxsize=4096)
def _actions_reached(
    actions: frozenset[str] | None, not_actions: frozenset[str] | None, universe: tuple[str, ...]
) -> frozenset[str]:
    # Memoised: the guards ask this of the same few statements for every key, region and preview, and each
    # answer matches every action of the universe against every pattern (the pack's hottest loop, profiled).
    if not_actions is not None:
        return frozenset(a.lower() for a in universe if not action_in(not_actions, a))
    return frozenset(a.lower() for a in universe if action_in(actions or (), a))


SESSION_RE: Final = re.compile(r"^arn:([a-z-]+):sts::([0-9]{12}):assumed-role/([^/]+)/(.+)$")
ROLE_RE: Final = re.compile(r"^arn:([a-z-]+):iam::([0-9]{12}):role/(?:.*/)?([^/]+)$")


def caller_chain(principal: str) -> tuple[str, ...]:
    """The identities a calling principal (canonical) is evaluated as, most specific first.

    An assumed-role session is its session ARN, its role and its account; a role or user is
    itself and its account; an account is itself. (IAM User Guide, "AWS JSON policy elements:
    NotPrincipal", awsdocs/iam-user-guide doc_source/reference_policies_elements_notprincipal.md:
    AWS may validate the account first, then the role, then the assumed-role user.)
    """
    if principal == "*" or principal.startswith(ACCOUNT_PREFIX):
        return (principal,)
    account = principal_account(principal)
    chain = [principal]
    session = SESSION_RE.match(principal)
    if session:
        chain.append(f"arn:{session.group(1)}:iam::{session.group(2)}:role/{session.group(3)}")
    if account is not None:
        chain.append(ACCOUNT_PREFIX + account)
    return tuple(chain)


def principal_matches(pattern: str, principal: str) -> bool:
    """Whether a canonical principal in a `Principal` element stands for the calling principal.

    A unique ID (deleted principal) in the policy matches nothing; an account principal matches
    every principal of its account; a role ARN matches the role and its assumed-role sessions.
    """
    if pattern == "*":
        return True
    if is_unique_id(pattern):
        return False
    if pattern.startswith(ACCOUNT_PREFIX):
        return principal_account(principal) == pattern[len(ACCOUNT_PREFIX) :]
    if pattern == principal:
        return True
    role, session = ROLE_RE.match(pattern), SESSION_RE.match(principal)
    return bool(role and session and role.groups() == session.groups()[:3])


def not_principal_excludes(not_principals: frozenset[str], principal: str) -> bool:
    """Whether a `NotPrincipal` list exempts the caller: only when EVERY identity of its chain
    (session, role, account) is named there. An account in NotPrincipal does not exempt the
    account's roles or sessions, and a role does not exempt its sessions unless the session and
    the account are named too (the NotPrincipal page cited in `caller_chain`)."""
    named = {p for p in not_principals if not is_unique_id(p)}
    return all(identity in named for identity in caller_chain(principal))


def statement_covers_principal(statement: Statement, principal: str) -> bool:
    if statement.principals is not None:
        return any(principal_matches(p, principal) for p in statement.principals)
    if statement.not_principals is not None:
        if "*" in statement.not_principals:
            return False
        return not not_principal_excludes(statement.not_principals, principal)
    return True  # identity policy: applies to the identity it is attached to


def _resource_covered(statement: Statement, resource: str) -> bool:
    if statement.not_resources is not None:
        return not any(_like(p, resource) for p in statement.not_resources)
    if statement.resources is None:
        # "If either of the required Resource or Action elements are missing from a key policy
        # statement, the policy statement has no effect" (KMS API Reference, PutKeyPolicy, Policy).
        return False
    return any(_like(p, resource) for p in statement.resources)


# ----------------------------------------------------------------------------- request evaluation


@dataclass(frozen=True)
class Request:
    """A concrete request. `principal`: the caller as an ARN (a role, not its session) or canonical
    principal; `context`: condition keys (any case) to a value or a list of values."""

    principal: str
    action: str
    resource: str = "*"
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)

    def values(self, key: str) -> list[str] | None:
        for name, value in self.context.items():
            if name.lower() == key:
                return [value] if isinstance(value, str) else list(value)
        return None


@dataclass(frozen=True)
class Decision:
    """The outcome, and the statements that decided it (Sids or positions)."""

    allowed: bool
    reason: Literal["explicit-deny", "allowed", "implicit-deny"]
    statements: tuple[str, ...] = ()


_VARIABLE_RE: Final = re.compile(r"\$\{([^}]*)\}")
_DEFAULT_RE: Final = re.compile(r"^\s*([^,]+?)\s*,\s*'([^']*)'\s*$")
_SPECIALS: Final = {"*": _LITERAL_STAR, "?": _LITERAL_QUESTION, "$": "$"}


def resolve_variables(value: str, request: Request) -> str | None:
    """`value` with its policy variables replaced from the request context; None when one cannot
    be resolved (its key absent or multi-valued, and no `, 'default'`). Wildcard characters that
    come from a variable are literal (`_LITERAL_STAR`/`_LITERAL_QUESTION`)."""
    unresolved = False

    def one(match: re.Match[str]) -> str:
        nonlocal unresolved
        body = match.group(1).strip()
        if body in _SPECIALS:
            return _SPECIALS[body]
        default = _DEFAULT_RE.match(body)
        key, fallback = (default.group(1), default.group(2)) if default else (body, None)
        values = request.values(key.lower())
        if values is not None and len(values) == 1:
            found = values[0]
        elif fallback is not None:
            found = fallback
        else:
            unresolved = True
            return ""
        return found.replace("*", _LITERAL_STAR).replace("?", _LITERAL_QUESTION)

    resolved = _VARIABLE_RE.sub(one, value)
    return None if unresolved else resolved


def _literal(pattern: str) -> str:
    return pattern.replace(_LITERAL_STAR, "*").replace(_LITERAL_QUESTION, "?")


def _single(operator: str, policy_values: frozenset[str], value: str) -> bool:
    base = operator.removesuffix("IfExists")
    if base in ("StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals"):
        if base.startswith("Arn"):
            return any(_like(p, value) for p in policy_values)
        return value in {_literal(p) for p in policy_values}
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return value.lower() in {_literal(p).lower() for p in policy_values}
    if base in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike"):
        return any(_like(p, value) for p in policy_values)
    if base == "Bool":
        return value.lower() in {p.lower() for p in policy_values}
    raise KeyError(operator)


def condition_holds(condition: Condition, request: Request, *, variables: bool = True) -> bool | None:
    """Whether one condition holds for the request; None when it cannot be decided (an unknown
    operator, or a policy variable the request cannot resolve; `variables` False: `${...}` is
    literal, as in a document without `Version` 2012-10-17)."""
    qualifier, _, operator = condition.operator.rpartition(":")
    base = operator.removesuffix("IfExists")
    if base not in _STRING_OPERATORS or qualifier not in ("", "ForAllValues", "ForAnyValue"):
        return None
    policy_values = condition.values
    if variables and base not in ("Null", "Bool"):
        resolved = [resolve_variables(p, request) for p in policy_values]
        if any(r is None for r in resolved):
            return None
        policy_values = frozenset(r for r in resolved if r is not None)
    values = request.values(condition.key)
    if base == "Null":
        absent = values is None or values == []
        return any((p.lower() == "true") == absent for p in condition.values)
    if values is None:
        if operator.endswith("IfExists"):
            return True
        if qualifier == "ForAllValues":
            return True
        return base in _NEGATED and qualifier != "ForAnyValue"
    negated = base in _NEGATED

    def one(value: str) -> bool:
        matched = _single(operator, policy_values, value)
        return not matched if negated else matched

    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    if qualifier == "ForAnyValue":
        return any(one(v) for v in values)
    return all(one(v) for v in values) if negated else any(one(v) for v in values)


def _applies(statement: Statement, request: Request) -> bool:
    if not (
        statement_covers_principal(statement, request.principal)
        and statement_covers_action(statement, request.action)
        and _resource_covered(statement, request.resource)
    ):
        return False
    # Conditions are ANDed: one false condition settles it; otherwise one that cannot be decided
    # fails closed (a Deny applies, an Allow does not).
    held = [condition_holds(condition, request, variables=statement.variables) for condition in statement.conditions]
    if False in held:
        return False
    if None in held:
        return statement.effect == "Deny"
    return True


def evaluate(statements: Iterable[Statement], request: Request) -> Decision:
    """AWS's evaluation for one resource-based policy document: explicit Deny wins, then Allow,
    else implicit deny. `request.principal` may be an ARN or bare account ID (canonicalised)."""
    request = Request(canonical_principal("AWS", request.principal), request.action, request.resource, request.context)
    allows: list[str] = []
    denies: list[str] = []
    for index, statement in enumerate(statements):
        if _applies(statement, request):
            (denies if statement.effect == "Deny" else allows).append(statement.sid or f"#{index}")
    if denies:
        return Decision(False, "explicit-deny", tuple(denies))
    if allows:
        return Decision(True, "allowed", tuple(allows))
    return Decision(False, "implicit-deny")


def effective_kms_decision(
    key_policy: Iterable[Statement], identity_policy: Iterable[Statement], request: Request
) -> Decision:
    """AWS's decision for a request on a KMS key by a principal of the key's own account: the key
    policy AND the caller's IAM policy (AWS KMS Developer Guide, "Determining access to an AWS KMS
    key"; IAM User Guide, "Policy evaluation logic", same-account requests).

    - an explicit Deny in either document wins;
    - a key-policy Allow that names the caller itself (its ARN, or `*`) is enough on its own;
    - a key-policy Allow reached only through the account principal (`arn:...:root`, the
      statement that "enables IAM policies") needs an Allow in the caller's IAM policy too;
    - otherwise the request is denied.
    `aws:PrincipalArn` is filled in from `request.principal` when the context lacks it, as AWS does.
    The one rule every test of the shipped documents goes through.
    """
    if request.values("aws:principalarn") is None:
        request = Request(
            request.principal,
            request.action,
            request.resource,
            {**request.context, "aws:PrincipalArn": request.principal},
        )
    key_statements = list(key_policy)
    key_decision = evaluate(key_statements, request)
    identity_decision = evaluate(identity_policy, request)
    if key_decision.reason == "explicit-deny":
        return key_decision
    if identity_decision.reason == "explicit-deny":
        return identity_decision
    caller = canonical_principal("AWS", request.principal)
    direct = [
        s.sid or "?"
        for s in key_statements
        if s.effect == "Allow"
        and s.principals is not None
        and (caller in s.principals or "*" in s.principals)
        and _applies(s, Request(caller, request.action, request.resource, request.context))
    ]
    if direct:
        return Decision(True, "allowed", tuple(direct))
    if key_decision.allowed and identity_decision.allowed:
        return Decision(True, "allowed", key_decision.statements + identity_decision.statements)
    return Decision(False, "implicit-deny", key_decision.statements + identity_decision.statements)
