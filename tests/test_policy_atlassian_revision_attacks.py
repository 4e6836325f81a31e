"""The revision marker turns off no invariant: each attack of the issue-11 review, through the
pack over gRPC with keys deployed in moto (or nothing deployed, or the live check off)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from rehearsal.policy_pack_client import analyze_program_run, by_policy
from rehearsal.program_run import run_program
from rehearsal.sample_atlassian_policy import SAMPLE_ATLASSIAN_ACCOUNT as ATL
from rehearsal.sample_atlassian_policy import SAMPLE_ATLASSIAN_KEY_POLICY as SAMPLE
from rehearsal.sample_atlassian_policy import SAMPLE_SID
from tests.test_config import engine_config
from tests.test_policy_key_access_live import as_unique_id, conditioned, judge
from tests.test_policy_live_state import deploy, pack_for, preview

POLICY = "key-policy-keeps-access"
DENY_ATLASSIAN = {
    "Sid": "AtlassianGuard",
    "Effect": "Deny",
    "Principal": {"AWS": f"arn:aws:iam::{ATL}:root"},
    "Action": "kms:*",
    "Resource": "*",
}
FOREIGN_MANAGEMENT = {
    "Sid": "AtlassianOps",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
    "Action": ["kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:DisableKey"],
    "Resource": "*",
}
MARKER = {"atlassianKeyPolicyRevision": "ATL-9999"}


def texts(violations: list[Any]) -> str:
    return "\n".join(v.message for v in violations)


def refused_by_program_and_pack(aws: Any, endpoint: str, head: dict[str, Any], *, live: bool = True) -> str:
    """The program refuses `head` before registering anything (its self-check); the pack, given
    `head`'s configuration (a changed program would still send keys), refuses it too. Returns both."""
    raw = engine_config(**head)
    refused = run_program(raw)
    assert refused.error is not None and refused.resources == [], refused
    with pack_for(raw, endpoint) as (client, _):
        deploy(aws)
        run = preview(engine_config())
        client.configure(None if live else {POLICY: {"liveStateCheck": False}})
        violations = by_policy(analyze_program_run(client, run), POLICY)
    assert violations and all(v.level == "mandatory" for v in violations)
    return f"{refused.error}\n{texts(violations)}"


def swapped(**changes: Any) -> list[dict[str, Any]]:
    statements = copy.deepcopy(SAMPLE)
    statements[0].update(changes)
    return statements


BARE_ID_DENY = {
    "Sid": "X",
    "Effect": "Deny",
    "Principal": {"AWS": ATL},
    "Action": ["kms:decrypt"],
    "Resource": "*",
    "Condition": {"StringNotEquals": {"aws:SourceIp": "10.0.0.1"}},
}


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ({"atlassianKeyPolicy": [*SAMPLE, DENY_ATLASSIAN]}, f"denies account {ATL} kms:decrypt"),
        ({"atlassianKeyPolicy": [*SAMPLE, DENY_ATLASSIAN], **MARKER}, "which reaches Atlassian's account"),
        ({"atlassianKeyPolicy": [*SAMPLE, FOREIGN_MANAGEMENT], **MARKER}, "never key management"),
        ({"atlassianKeyPolicy": [*SAMPLE, FOREIGN_MANAGEMENT], **MARKER}, "changing Atlassian's account is a re-enr"),
        (
            {"atlassianKeyPolicy": swapped(Principal={"AWS": f"arn:aws:iam::{ATL}:role/Nobody"}), **MARKER},
            "that takes every data-key/decrypt action Atlassian had, a revocation",
        ),
        ({"atlassianKeyPolicy": swapped(Effect="Deny"), **MARKER}, "which reaches Atlassian's account"),
        ({"atlassianKeyPolicy": swapped(Effect="Deny"), **MARKER}, "a revocation; revoke through"),
        ({"atlassianKeyPolicy": [*SAMPLE, BARE_ID_DENY], **MARKER}, f"denies account {ATL} kms:decrypt"),
        ({"atlassianKeyPolicy": swapped(Action=["kms:DescribeKey"]), **MARKER}, "a revocation; revoke through"),
    ],
    ids=[
        "deny",
        "deny-marker",
        "foreign-mgmt",
        "foreign-account",
        "principal-swap",
        "flip",
        "flip-loss",
        "bare-id",
        "narrow",
    ],
)
def test_the_revision_marker_turns_off_no_invariant(
    moto_endpoint: str, aws: Any, head: dict[str, Any], expected: str
) -> None:
    if run_program(engine_config(**head)).error is not None:
        found = refused_by_program_and_pack(aws, moto_endpoint, head)
    else:
        violations = judge(aws, moto_endpoint, head=head)
        assert violations and any(v.level == "mandatory" for v in violations)
        found = texts(violations)
    assert expected.lower() in found.lower(), found


def test_a_new_context_condition_under_a_marker_is_a_revocation(moto_endpoint: str, aws: Any) -> None:
    violations = judge(
        aws,
        moto_endpoint,
        deployed={"atlassianKeyPolicy": conditioned()},
        head={"atlassianKeyPolicy": conditioned("Other"), "contextTag": "Other", "atlassianKeyPolicyRevision": "ATL-9"},
    )
    assert "a revocation; revoke through atlassian-cmk:enabled" in texts(violations)


def test_a_deny_reaching_atlassian_is_refused_at_enrollment_and_with_the_live_check_off(
    moto_endpoint: str, aws: Any
) -> None:
    head = {"atlassianKeyPolicy": [*SAMPLE, DENY_ATLASSIAN]}
    raw = engine_config(**head)
    with pack_for(raw, moto_endpoint) as (client, _):  # nothing deployed: first enrollment
        client.configure()
        violations = by_policy(analyze_program_run(client, preview(engine_config())), POLICY)
    assert violations and all(v.level == "mandatory" for v in violations)
    assert "which reaches Atlassian's account" in refused_by_program_and_pack(aws, moto_endpoint, head, live=False)


def test_reencrypt_star_and_its_two_actions_are_the_same_grant(moto_endpoint: str, aws: Any) -> None:
    respelled = swapped(
        Action=[
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:ReEncryptFrom",
            "kms:ReEncryptTo",
            "kms:GenerateDataKey*",
            "kms:DescribeKey",
        ]
    )
    assert SAMPLE[0]["Action"] != respelled[0]["Action"]
    assert judge(aws, moto_endpoint, head={"atlassianKeyPolicy": respelled}) == []


NOTES = "key-policy-access-notes"


def _all_violations(aws: Any, endpoint: str, head: dict[str, Any], stored: Any = None) -> list[Any]:
    raw = engine_config(**head)
    with pack_for(raw, endpoint) as (client, _):
        for key in deploy(aws).values():
            if stored is not None:
                kms = aws("kms", key.region)
                document = json.loads(kms.get_key_policy(KeyId=key.key_id, PolicyName="default")["Policy"])
                stored(document)
                kms.put_key_policy(KeyId=key.key_id, PolicyName="default", Policy=json.dumps(document))
        client.configure()
        return analyze_program_run(client, preview(raw))


def test_a_deployed_unique_id_is_an_advisory_violation_on_every_run(moto_endpoint: str, aws: Any) -> None:
    violations = _all_violations(aws, moto_endpoint, {}, stored=as_unique_id)
    assert by_policy(violations, POLICY) == []  # nothing blocks: this apply re-grants the ARN
    notes = by_policy(violations, NOTES)
    assert notes and all(v.level == "advisory" for v in notes)
    text = texts(notes)
    for region in ("us-east-1", "us-west-2"):
        assert f"{region}: the deployed Atlassian statement '{SAMPLE_SID}' names AROAEXAMPLEDELETED1234" in text
    assert "this change re-grants it by ARN" in text


def test_a_declared_narrowing_is_allowed_and_said_per_principal(moto_endpoint: str, aws: Any) -> None:
    head = {"atlassianKeyPolicy": swapped(Action=["kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"]), **MARKER}
    violations = _all_violations(aws, moto_endpoint, head)
    assert by_policy(violations, POLICY) == []
    text = texts(by_policy(violations, NOTES))
    assert "loses kms:encrypt, kms:reencryptfrom, kms:reencryptto under the declared revision ATL-9999" in text
