"""The key policy checker: every way to take Atlassian's access away without `enabled` is found."""

from __future__ import annotations

import json
from typing import Any

import pytest

from atlassian_cmk.key_policy import (
    SID_ATLASSIAN_DESCRIBE,
    SID_ATLASSIAN_USE,
    SID_ROOT,
    build_key_policy,
    key_policy_problems,
    serialize_key_policy,
)

ATLASSIAN = "arn:aws:iam::111122223333:role/AtlassianCmkAccess"
ACCOUNT = "123456789012"


def policy() -> dict[str, Any]:
    return build_key_policy(
        partition="aws", account_id=ACCOUNT, atlassian_principals=[ATLASSIAN], context_tag="AcmeCMK"
    )


def problems(document: dict[str, Any]) -> list[str]:
    return key_policy_problems(
        json.dumps(document), atlassian_principals=[ATLASSIAN], context_tag="AcmeCMK", account_id=ACCOUNT
    )


def statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in document["Statement"] if s["Sid"] == sid)


def test_the_built_policy_is_sound_and_serializes_stably() -> None:
    assert problems(policy()) == []
    assert serialize_key_policy(policy()) == serialize_key_policy(policy())


def test_missing_root_statement_is_a_lockout_risk() -> None:
    document = policy()
    document["Statement"] = [s for s in document["Statement"] if s["Sid"] != SID_ROOT]
    (problem,) = problems(document)
    assert "root administrator statement" in problem and "lockout" in problem


def test_root_of_another_account_does_not_count() -> None:
    document = policy()
    statement(document, SID_ROOT)["Principal"] = {"AWS": "arn:aws:iam::999999999999:root"}
    assert any("root administrator" in p for p in problems(document))


def test_dropping_atlassian_is_a_stealth_revocation() -> None:
    document = policy()
    document["Statement"] = [s for s in document["Statement"] if s["Sid"] != SID_ATLASSIAN_USE]
    found = problems(document)
    assert len(found) == 6
    assert all(ATLASSIAN in p and "without the reviewed `enabled` switch" in p for p in found)
    assert any("kms:Decrypt" in p for p in found)


def test_narrowing_atlassian_with_an_extra_condition_is_found() -> None:
    document = policy()
    statement(document, SID_ATLASSIAN_USE)["Condition"]["IpAddress"] = {"aws:SourceIp": "10.0.0.0/8"}
    assert len(problems(document)) == 6


def test_narrowing_atlassian_by_dropping_one_action_is_found() -> None:
    document = policy()
    statement(document, SID_ATLASSIAN_USE)["Action"].remove("kms:Decrypt")
    (problem,) = problems(document)
    assert "kms:Decrypt" in problem


def test_wildcard_actions_still_grant() -> None:
    document = policy()
    statement(document, SID_ATLASSIAN_USE)["Action"] = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:Generate*"]
    assert problems(document) == []


@pytest.mark.parametrize(
    "deny",
    [
        {"Effect": "Deny", "Principal": {"AWS": ATLASSIAN}, "Action": "kms:Decrypt", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": {"AWS": [ATLASSIAN]}, "NotAction": "kms:Encrypt", "Resource": "*"},
    ],
)
def test_a_deny_against_atlassian_is_a_stealth_revocation(deny: dict[str, Any]) -> None:
    document = policy()
    document["Statement"].append(deny)
    found = problems(document)
    assert any("Deny statement applies to Atlassian principal" in p for p in found), found


def test_a_deny_that_spares_atlassian_is_fine() -> None:
    document = policy()
    document["Statement"].append(
        {"Effect": "Deny", "NotPrincipal": {"AWS": ATLASSIAN}, "Action": "kms:ScheduleKeyDeletion", "Resource": "*"}
    )
    assert problems(document) == []


def test_describe_key_must_stay_unconditioned() -> None:
    document = policy()
    statement(document, SID_ATLASSIAN_DESCRIBE)["Condition"] = {"Bool": {"aws:SecureTransport": "true"}}
    (problem,) = problems(document)
    assert "kms:DescribeKey" in problem


def test_not_json_is_reported_not_raised() -> None:
    assert key_policy_problems("{", atlassian_principals=[ATLASSIAN], context_tag="AcmeCMK")[0].startswith(
        "the key policy is not valid JSON"
    )


def test_atlassian_grantees_are_the_principals_using_the_key_under_the_context_tag() -> None:
    from atlassian_cmk.key_policy import atlassian_grantees

    document = build_key_policy(
        partition="aws",
        account_id=ACCOUNT,
        atlassian_principals=[ATLASSIAN, "arn:aws:iam::111122223333:role/Second"],
        context_tag="AcmeCMK",
        key_administrators=["arn:aws:iam::444455556666:role/Admin"],
    )
    assert atlassian_grantees(json.dumps(document)) == {ATLASSIAN, "arn:aws:iam::111122223333:role/Second"}
    assert atlassian_grantees("not json") == frozenset()
