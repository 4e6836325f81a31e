"""The IAM policy evaluator: normalisation (semantic equality) and concrete requests."""

from __future__ import annotations

from typing import Any

import pytest

from atlassian_cmk.iam_policy import (
    PolicyError,
    Request,
    evaluate,
    parse_policy,
    parse_statement,
    statement_actions,
)

CUSTOMER = "111122223333"
ATLASSIAN_ROLE = "arn:aws:iam::279766244153:role/AtlassianCmk"
CI_ROLE = f"arn:aws:iam::{CUSTOMER}:role/CmkApply"
OTHER_ROLE = f"arn:aws:iam::{CUSTOMER}:role/Someone"


def allow(**fields: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Resource": "*", **fields}


# ----------------------------------------------------------------------------- semantic equality


@pytest.mark.parametrize(
    ("written", "respelled"),
    [
        (
            allow(Principal={"AWS": ATLASSIAN_ROLE}, Action="kms:Decrypt"),
            allow(Principal={"AWS": [ATLASSIAN_ROLE]}, Action=["KMS:decrypt"]),
        ),
        (
            allow(Principal={"AWS": "arn:aws:iam::279766244153:root"}, Action="kms:*"),
            allow(Principal={"AWS": "279766244153"}, Action=["kms:*"]),
        ),
        (
            allow(
                Principal={"AWS": ATLASSIAN_ROLE},
                Action="kms:Decrypt",
                Condition={"StringEquals": {"kms:EncryptionContext:tag": "Acme"}},
            ),
            allow(
                Principal={"AWS": ATLASSIAN_ROLE},
                Action="kms:Decrypt",
                Condition={"StringEquals": {"kms:encryptioncontext:TAG": ["Acme"]}},
            ),
        ),
        (
            allow(Principal={"AWS": [ATLASSIAN_ROLE, CI_ROLE]}, Action=["kms:Encrypt", "kms:Decrypt"], Sid="A"),
            allow(Principal={"AWS": [CI_ROLE, ATLASSIAN_ROLE]}, Action=["kms:Decrypt", "kms:Encrypt"], Sid="B"),
        ),
    ],
)
def test_equivalent_spellings_are_the_same_statement(written: dict[str, Any], respelled: dict[str, Any]) -> None:
    assert parse_statement(written) == parse_statement(respelled)


@pytest.mark.parametrize(
    "other",
    [
        allow(
            Principal={"AWS": ATLASSIAN_ROLE},
            Action="kms:Decrypt",
            Condition={"StringEquals": {"kms:EncryptionContext:tag": "acme"}},
        ),
        allow(Principal={"AWS": ATLASSIAN_ROLE}, Action="kms:Encrypt"),
        allow(Principal={"AWS": "arn:aws:iam::279766244153:role/atlassiancmk"}, Action="kms:Decrypt"),
        {**allow(Principal={"AWS": ATLASSIAN_ROLE}, Action="kms:Decrypt"), "Effect": "Deny"},
    ],
)
def test_different_statements_differ(other: dict[str, Any]) -> None:
    """Condition values and ARNs stay case-sensitive; effect and actions count."""
    assert parse_statement(allow(Principal={"AWS": ATLASSIAN_ROLE}, Action="kms:Decrypt")) != parse_statement(other)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"Effect": "Allow"}, "statement.Action: missing; required (or NotAction)"),
        ({"Effect": "allow", "Action": "kms:*"}, "statement.Effect: 'allow' is not allowed; Allow or Deny"),
        ({"Effect": "Allow", "Action": "kms:*", "NotAction": "kms:Decrypt"}, "Action and NotAction together"),
        ({"Effect": "Allow", "Action": "kms:*", "Principals": "*"}, "unknown element 'Principals'"),
        ({"Effect": "Allow", "Action": "kms:*", "Condition": {"StringEquals": "x"}}, "a map of condition key to value"),
    ],
)
def test_a_malformed_statement_is_one_line_naming_the_element(raw: dict[str, Any], expected: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_statement(raw)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_wildcards_and_not_action_expand_over_the_kms_actions() -> None:
    generate = parse_statement(allow(Principal="*", Action="kms:GenerateDataKey*"))
    assert statement_actions(generate) == {
        "kms:generatedatakey",
        "kms:generatedatakeypair",
        "kms:generatedatakeypairwithoutplaintext",
        "kms:generatedatakeywithoutplaintext",
    }
    everything_but = parse_statement(allow(Principal="*", NotAction=["kms:Decrypt", "kms:Encrypt"]))
    assert "kms:decrypt" not in statement_actions(everything_but)
    assert "kms:schedulekeydeletion" in statement_actions(everything_but)


# ----------------------------------------------------------------------------- requests

KEY_POLICY = {
    "Statement": [
        allow(Sid="Root", Principal={"AWS": f"arn:aws:iam::{CUSTOMER}:root"}, Action="kms:*"),
        allow(
            Sid="Atlassian",
            Principal={"AWS": ATLASSIAN_ROLE},
            Action=["kms:Decrypt", "kms:GenerateDataKey*"],
            Condition={"StringEquals": {"kms:EncryptionContext:tag": "Acme"}},
        ),
        {
            "Sid": "ProtectGuardTags",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["kms:TagResource", "kms:UntagResource"],
            "Resource": "*",
            "Condition": {
                "ForAnyValue:StringLike": {"aws:TagKeys": "atlassian-cmk:guard-*"},
                "ArnNotEquals": {"aws:PrincipalArn": CI_ROLE},
            },
        },
        {
            "Sid": "NoOverwrite",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:TagResource",
            "Resource": "*",
            "Condition": {
                "Null": {"aws:ResourceTag/atlassian-cmk:revoked-at": "false"},
                "StringLike": {"aws:RequestTag/atlassian-cmk:revoked-at": "*"},
            },
        },
    ]
}


def decide(principal: str, action: str, **context: Any) -> tuple[bool, str]:
    decision = evaluate(parse_policy(KEY_POLICY), Request(principal, action, context=context))
    return decision.allowed, decision.reason


@pytest.mark.parametrize(
    ("principal", "action", "context", "expected"),
    [
        (ATLASSIAN_ROLE, "kms:Decrypt", {"kms:EncryptionContext:tag": "Acme"}, (True, "allowed")),
        (
            ATLASSIAN_ROLE,
            "KMS:generatedatakeywithoutplaintext",
            {"kms:encryptioncontext:TAG": "Acme"},
            (True, "allowed"),
        ),
        (ATLASSIAN_ROLE, "kms:Decrypt", {"kms:EncryptionContext:tag": "acme"}, (False, "implicit-deny")),
        (ATLASSIAN_ROLE, "kms:Decrypt", {}, (False, "implicit-deny")),
        (ATLASSIAN_ROLE, "kms:DisableKey", {}, (False, "implicit-deny")),
        (OTHER_ROLE, "kms:DisableKey", {}, (True, "allowed")),  # the account root covers every principal
        (CUSTOMER, "kms:PutKeyPolicy", {}, (True, "allowed")),
        (
            OTHER_ROLE,
            "kms:TagResource",
            {"aws:TagKeys": ["atlassian-cmk:guard-enabled"], "aws:PrincipalArn": OTHER_ROLE},
            (False, "explicit-deny"),
        ),
        (
            CI_ROLE,
            "kms:TagResource",
            {"aws:TagKeys": ["atlassian-cmk:guard-enabled"], "aws:PrincipalArn": CI_ROLE},
            (True, "allowed"),
        ),
        (OTHER_ROLE, "kms:TagResource", {"aws:TagKeys": ["team"], "aws:PrincipalArn": OTHER_ROLE}, (True, "allowed")),
        (
            CI_ROLE,
            "kms:TagResource",
            {
                "aws:TagKeys": ["atlassian-cmk:revoked-at"],
                "aws:PrincipalArn": CI_ROLE,
                "aws:RequestTag/atlassian-cmk:revoked-at": "2026",
                "aws:ResourceTag/atlassian-cmk:revoked-at": "2025",
            },
            (False, "explicit-deny"),
        ),
        (
            CI_ROLE,
            "kms:TagResource",
            {
                "aws:TagKeys": ["atlassian-cmk:revoked-at"],
                "aws:PrincipalArn": CI_ROLE,
                "aws:RequestTag/atlassian-cmk:revoked-at": "2026",
            },
            (True, "allowed"),
        ),
        (
            "arn:aws:iam::444455556666:root",
            "kms:Decrypt",
            {"kms:EncryptionContext:tag": "Acme"},
            (False, "implicit-deny"),
        ),
    ],
)
def test_requests_are_decided_as_iam_decides(
    principal: str, action: str, context: dict[str, Any], expected: tuple[bool, str]
) -> None:
    assert decide(principal, action, **context) == expected


def test_an_account_principal_in_a_deny_reaches_every_role_of_the_account() -> None:
    statements = parse_policy(
        {
            "Statement": [
                allow(Principal={"AWS": ATLASSIAN_ROLE}, Action="kms:*"),
                {"Effect": "Deny", "Principal": {"AWS": "279766244153"}, "Action": "kms:Decrypt", "Resource": "*"},
            ]
        }
    )
    assert evaluate(statements, Request(ATLASSIAN_ROLE, "kms:Decrypt")).reason == "explicit-deny"
    assert evaluate(statements, Request(ATLASSIAN_ROLE, "kms:Encrypt")).allowed


def test_a_unique_id_principal_grants_no_one() -> None:
    statements = parse_policy({"Statement": [allow(Principal={"AWS": "AROAEXAMPLEEXAMPLE1234"}, Action="kms:*")]})
    assert evaluate(statements, Request(ATLASSIAN_ROLE, "kms:Decrypt")).reason == "implicit-deny"


def test_not_principal_deny_reaches_everyone_not_listed() -> None:
    statements = parse_policy(
        {
            "Statement": [
                allow(Principal="*", Action="kms:*"),
                {"Effect": "Deny", "NotPrincipal": {"AWS": CI_ROLE}, "Action": "kms:*", "Resource": "*"},
            ]
        }
    )
    assert evaluate(statements, Request(ATLASSIAN_ROLE, "kms:Decrypt")).reason == "explicit-deny"
    # Naming the role without its account does not exempt it (IAM User Guide, NotPrincipal page).
    assert not evaluate(statements, Request(CI_ROLE, "kms:Decrypt")).allowed


def test_not_principal_exempts_a_session_only_with_its_role_and_account() -> None:
    account = CI_ROLE.split(":")[4]
    session = f"arn:aws:sts::{account}:assumed-role/CmkApply/ci"

    def decision(*exempt: str) -> bool:
        deny = {"Effect": "Deny", "NotPrincipal": {"AWS": list(exempt)}, "Action": "kms:*", "Resource": "*"}
        statements = parse_policy({"Statement": [allow(Principal="*", Action="kms:*"), deny]})
        return evaluate(statements, Request(session, "kms:Decrypt")).allowed

    assert not decision(account)  # an account in NotPrincipal does not exempt its roles' sessions
    assert not decision(CI_ROLE, account)  # nor the role's sessions, unless the session is named
    assert decision(session, CI_ROLE, account)
    # A role ARN in Principal covers its sessions.
    only_role = parse_policy({"Statement": [allow(Principal={"AWS": CI_ROLE}, Action="kms:*")]})
    assert evaluate(only_role, Request(session, "kms:Decrypt")).allowed


@pytest.mark.parametrize(
    ("condition", "context", "allowed"),
    [
        ({"StringEqualsIfExists": {"aws:RequestTag/x": "a"}}, {}, True),
        ({"StringEquals": {"aws:RequestTag/x": "a"}}, {}, False),
        ({"StringNotEquals": {"aws:RequestTag/x": "a"}}, {}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["a", "c"]}, False),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}, {}, False),
        ({"Bool": {"aws:SecureTransport": True}}, {"aws:SecureTransport": "true"}, True),
        ({"StringEqualsIgnoreCase": {"aws:RequestTag/x": "ACME"}}, {"aws:RequestTag/x": "acme"}, True),
        ({"NumericLessThan": {"kms:GrantConstraintType": "1"}}, {"kms:GrantConstraintType": "0"}, False),
    ],
)
def test_condition_operators(condition: dict[str, Any], context: dict[str, Any], allowed: bool) -> None:
    """Unknown operators (NumericLessThan here) fail closed: the Allow does not apply."""
    statements = parse_policy({"Statement": [allow(Principal="*", Action="kms:TagResource", Condition=condition)]})
    assert evaluate(statements, Request(CI_ROLE, "kms:TagResource", context=context)).allowed is allowed


def test_an_unknown_operator_in_a_deny_applies() -> None:
    statements = parse_policy(
        {
            "Statement": [
                allow(Principal="*", Action="kms:*"),
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "kms:*",
                    "Resource": "*",
                    "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01"}},
                },
            ]
        }
    )
    assert evaluate(statements, Request(CI_ROLE, "kms:Decrypt")).reason == "explicit-deny"


# ----------------------------------------------------------------------------- policy variables

OWN = "aws:ResourceTag/id"


@pytest.mark.parametrize(
    ("condition", "context", "allowed"),
    [
        (
            {"StringEquals": {"aws:RequestTag/id": "${aws:ResourceTag/id}"}},
            {OWN: "r-1", "aws:RequestTag/id": "r-1"},
            True,
        ),
        (
            {"StringEquals": {"aws:RequestTag/id": "${aws:ResourceTag/id}"}},
            {OWN: "r-1", "aws:RequestTag/id": "r-2"},
            False,
        ),
        (
            {"StringNotEquals": {"aws:RequestTag/id": "${AWS:resourcetag/ID}"}},
            {OWN: "r-1", "aws:RequestTag/id": "r-2"},
            True,
        ),
        # A value from a variable is literal in a Like operator; `${*}` is a literal asterisk.
        (
            {"StringLike": {"aws:RequestTag/id": "${aws:ResourceTag/id}"}},
            {OWN: "r-*", "aws:RequestTag/id": "r-1"},
            False,
        ),
        ({"StringLike": {"aws:RequestTag/id": "a${*}*"}}, {"aws:RequestTag/id": "a*b"}, True),
        ({"StringLike": {"aws:RequestTag/id": "a${*}*"}}, {"aws:RequestTag/id": "ab"}, False),
        # A default applies when the key is absent; without one the Allow fails closed.
        ({"StringEquals": {"aws:RequestTag/id": "${aws:ResourceTag/id, 'none'}"}}, {"aws:RequestTag/id": "none"}, True),
        ({"StringEquals": {"aws:RequestTag/id": "${aws:ResourceTag/id}"}}, {"aws:RequestTag/id": ""}, False),
    ],
)
def test_policy_variables_in_string_conditions(
    condition: dict[str, Any], context: dict[str, Any], allowed: bool
) -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [allow(Principal="*", Action="kms:TagResource", Condition=condition)],
    }
    assert evaluate(parse_policy(document), Request(CI_ROLE, "kms:TagResource", context=context)).allowed is allowed


def test_policy_variables_are_literal_text_without_version_2012_10_17() -> None:
    condition = {"StringEquals": {"aws:RequestTag/id": "${aws:ResourceTag/id}"}}
    statement = allow(Principal="*", Action="kms:TagResource", Condition=condition)
    context = {OWN: "r-1", "aws:RequestTag/id": "r-1"}
    for version, allowed in (("2008-10-17", False), (None, False), ("2012-10-17", True)):
        document = {"Statement": [statement], **({"Version": version} if version else {})}
        assert evaluate(parse_policy(document), Request(CI_ROLE, "kms:TagResource", context=context)).allowed is allowed
    literal = {OWN: "r-1", "aws:RequestTag/id": "${aws:ResourceTag/id}"}
    assert evaluate(
        parse_policy({"Statement": [statement]}), Request(CI_ROLE, "kms:TagResource", context=literal)
    ).allowed


def test_an_unresolvable_variable_makes_a_deny_apply_unless_another_condition_is_false() -> None:
    def denied(context: dict[str, Any]) -> bool:
        deny = {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:TagResource",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:RequestTag/id": "${aws:ResourceTag/id}"},
                "Null": {"aws:RequestTag/other": "false"},
            },
        }
        document = {"Version": "2012-10-17", "Statement": [allow(Principal="*", Action="kms:*"), deny]}
        return not evaluate(parse_policy(document), Request(CI_ROLE, "kms:TagResource", context=context)).allowed

    assert denied({"aws:RequestTag/id": "r-1", "aws:RequestTag/other": "x"})  # unknown AND true: fail closed
    assert not denied({"aws:RequestTag/id": "r-1"})  # unknown AND false: false, whatever the order
