"""key-policy-keeps-access over the pack's wire protocol, against keys deployed in the emulator.

Each case is a pull request an adversary (or a hurried operator) could open: it was allowed
before Atlassian's statements became data and the policies were read with IAM's semantics. The
deployed keys are created as the program shapes them, then changed with boto3 where the case
needs a stored policy KMS would show (lower-case condition keys, a unique-ID principal).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from typing import Any

import pytest

from rehearsal.policy_pack_client import Violation, analyze_program_run, analyze_request, by_policy, describe
from rehearsal.program_run import ACCOUNT_ID
from rehearsal.sample_atlassian_policy import SAMPLE_ATLASSIAN_ACCOUNT, SAMPLE_ATLASSIAN_ROLE, SAMPLE_SID
from tests.support.aws import client_factory_for
from tests.test_config import engine_config
from tests.test_policy_live_state import deploy, pack_for, preview
from tests.test_policy_pack import edited_policy

ACCESS = "key-policy-keeps-access"
FOREIGN_ROOT = "arn:aws:iam::444455556666:root"
SECOND_ROLE = f"arn:aws:iam::{SAMPLE_ATLASSIAN_ACCOUNT}:role/SAMPLE-AtlassianCmkSecond"
CONTEXT_KEY = "kms:EncryptionContext:SAMPLE-context"

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def aws_clients(moto_endpoint_session: str) -> Any:
    """Clients for the emulator, made once (a boto3 client costs ~100 ms to build)."""
    return functools.lru_cache(maxsize=None)(client_factory_for(moto_endpoint_session))


@pytest.fixture
def aws(moto_endpoint: str, aws_clients: Any) -> Any:
    """The suite's emptied emulator, with cached clients."""
    return aws_clients


def conditioned(tag: str = "AcmeCMK", principals: list[str] | None = None) -> list[dict[str, Any]]:
    """A SAMPLE pair of Atlassian statements whose use is conditioned on the context tag."""
    return [
        {
            "Sid": "SAMPLEAtlassianUse",
            "Effect": "Allow",
            "Principal": {"AWS": principals or [SAMPLE_ATLASSIAN_ROLE]},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"StringEquals": {CONTEXT_KEY: tag}},
        },
        {
            "Sid": "SAMPLEAtlassianDescribe",
            "Effect": "Allow",
            "Principal": {"AWS": SAMPLE_ATLASSIAN_ROLE},
            "Action": "kms:DescribeKey",
            "Resource": "*",
        },
    ]


def judge(
    aws: Any,
    endpoint: str,
    *,
    deployed: dict[str, Any] | None = None,
    head: dict[str, Any] | None = None,
    stored: Edit | None = None,
    edit: Edit | None = None,
) -> list[Violation]:
    """The pack's key-policy violations for a pull request `head` over keys deployed from `deployed`.

    `stored` rewrites the deployed key policies in KMS; `edit` rewrites the key policy the program
    registers in us-east-1 (a pull request that edits the program, not only the stack file).
    """
    raw = engine_config(**(head or {}))
    with pack_for(raw, endpoint) as (client, _):
        keys = deploy(aws, **(deployed or {}))
        if stored is not None:
            for key in keys.values():
                kms = aws("kms", key.region)
                document = json.loads(kms.get_key_policy(KeyId=key.key_id, PolicyName="default")["Policy"])
                stored(document)
                kms.put_key_policy(KeyId=key.key_id, PolicyName="default", Policy=json.dumps(document))
        run = preview(raw)
        client.configure()
        if edit is None:
            violations = analyze_program_run(client, run)
        else:
            east = next(k for k in run.kms_keys if k.inputs["region"] == "us-east-1")
            violations = client.analyze(analyze_request(east, properties=edited_policy(east, edit)))
    return by_policy(violations, ACCESS)


def messages(violations: list[Violation]) -> str:
    assert violations, "expected a key-policy-keeps-access violation, got none"
    assert all(v.level == "mandatory" for v in violations), describe(violations)
    return "\n".join(v.message for v in violations)


def add(statement: dict[str, Any]) -> Edit:
    return lambda document: document["Statement"].insert(1, {"Resource": "*", **statement})


# ----------------------------------------------------------------------------- the ten changes allowed before


def test_changing_the_context_tag_and_atlassians_condition_is_denied(moto_endpoint: str, aws: Any) -> None:
    violations = judge(
        aws,
        moto_endpoint,
        deployed={"atlassianKeyPolicy": conditioned()},
        head={"atlassianKeyPolicy": conditioned("Other"), "contextTag": "Other"},
    )
    text = messages(violations)
    assert (
        "Atlassian's statement 'SAMPLEAtlassianUse' in the deployed key policy conditions on "
        "kms:encryptioncontext:sample-context = AcmeCMK, but atlassian-cmk:contextTag is Other" in text
    )
    assert (
        f"this change alters or drops Atlassian's deployed statement 'SAMPLEAtlassianUse' (principal "
        f"{SAMPLE_ATLASSIAN_ROLE})" in text
    )


def test_a_deny_of_everything_to_atlassians_account_root_is_denied(moto_endpoint: str, aws: Any) -> None:
    deny: dict[str, Any] = {"Sid": "ProtectCmkEvidenceQuiet", "Effect": "Deny", "Action": "kms:*"}
    deny["Principal"] = {"AWS": f"arn:aws:iam::{SAMPLE_ATLASSIAN_ACCOUNT}:root"}
    text = messages(judge(aws, moto_endpoint, edit=add(deny)))
    assert (
        f"statement 'ProtectCmkEvidenceQuiet' denies account {SAMPLE_ATLASSIAN_ACCOUNT} kms:decrypt, "
        "kms:describekey, kms:encrypt, kms:generatedatakey..., which reaches Atlassian's account "
        f"{SAMPLE_ATLASSIAN_ACCOUNT}: a stealth revocation" in text
    )


def test_a_deny_of_decrypt_to_atlassians_bare_account_id_is_denied(moto_endpoint: str, aws: Any) -> None:
    deny: dict[str, Any] = {
        "Sid": "ProtectCmkEvidenceQuiet",
        "Effect": "Deny",
        "Principal": {"AWS": SAMPLE_ATLASSIAN_ACCOUNT},
    }
    deny["Action"] = ["kms:Decrypt", "kms:GenerateDataKey*"]
    text = messages(judge(aws, moto_endpoint, edit=add(deny)))
    assert f"statement 'ProtectCmkEvidenceQuiet' denies account {SAMPLE_ATLASSIAN_ACCOUNT} kms:decrypt" in text


def test_a_deny_under_a_sid_of_nobodys_is_denied_naming_it(moto_endpoint: str, aws: Any) -> None:
    deny = {"Sid": "Quiet", "Effect": "Deny", "Principal": {"AWS": SAMPLE_ATLASSIAN_ACCOUNT}, "Action": "kms:Decrypt"}
    text = messages(judge(aws, moto_endpoint, edit=add(deny)))
    assert (
        f"statement 'Quiet' (principal account {SAMPLE_ATLASSIAN_ACCOUNT}) is neither ours nor one of Atlassian's"
        in text
    )


def test_a_root_administrator_of_another_account_is_denied(moto_endpoint: str, aws: Any) -> None:
    def foreign_root(document: dict[str, Any]) -> None:
        document["Statement"][0]["Principal"] = {"AWS": FOREIGN_ROOT}

    text = messages(judge(aws, moto_endpoint, edit=foreign_root))
    assert f"the account root administrator statement (Allow kms:* to arn:...:iam::{ACCOUNT_ID}:root" in text
    assert (
        f"statement 'EnableRootAccountAdministration' grants account 444455556666, outside the key's own account "
        f"{ACCOUNT_ID}" in text
    )


def test_an_allow_of_decrypt_and_create_grant_to_everyone_is_denied(moto_endpoint: str, aws: Any) -> None:
    grant: dict[str, Any] = {
        "Sid": "AllowKeyAdministratorsToRevokeAndRestore",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
    }
    grant["Action"] = ["kms:Decrypt", "kms:CreateGrant"]
    text = messages(judge(aws, moto_endpoint, edit=add(grant)))
    assert (
        "statement 'AllowKeyAdministratorsToRevokeAndRestore' allows * kms:creategrant, kms:decrypt: no statement "
        "may grant to everyone" in text
    )


def test_deletion_policy_rewrite_or_disable_granted_to_a_foreign_account_is_denied(
    moto_endpoint: str, aws: Any
) -> None:
    grant: dict[str, Any] = {
        "Sid": "AllowKeyAdministratorsToRevokeAndRestore",
        "Effect": "Allow",
        "Principal": {"AWS": FOREIGN_ROOT},
    }
    grant["Action"] = ["kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:DisableKey"]
    text = messages(judge(aws, moto_endpoint, edit=add(grant)))
    assert (
        "statement 'AllowKeyAdministratorsToRevokeAndRestore' grants account 444455556666, outside the key's own "
        f"account {ACCOUNT_ID}" in text
    )


def test_a_foreign_key_administrator_is_denied(moto_endpoint: str, aws: Any) -> None:
    """The program refuses it itself; a pull request that also edits the program meets the pack."""

    def foreign_admin(document: dict[str, Any]) -> None:
        document["Statement"].insert(
            1,
            {
                "Sid": "AllowKeyAdministratorsToRevokeAndRestore",
                "Effect": "Allow",
                "Principal": {"AWS": [FOREIGN_ROOT]},
                "Action": ["kms:DisableKey", "kms:EnableKey"],
                "Resource": "*",
            },
        )

    text = messages(judge(aws, moto_endpoint, edit=foreign_admin))
    assert "grants account 444455556666, outside the key's own account" in text


def test_a_foreign_account_added_to_atlassians_principals_is_denied(moto_endpoint: str, aws: Any) -> None:
    widened = conditioned(principals=[SAMPLE_ATLASSIAN_ROLE, FOREIGN_ROOT])
    violations = judge(
        aws, moto_endpoint, deployed={"atlassianKeyPolicy": conditioned()}, head={"atlassianKeyPolicy": widened}
    )
    text = messages(violations)
    assert "this change alters or drops Atlassian's deployed statement 'SAMPLEAtlassianUse'" in text
    assert "declare it with a new atlassian-cmk:atlassianKeyPolicyRevision" in text


def lower_case_condition_keys(document: dict[str, Any]) -> None:
    for statement in document["Statement"]:
        for block in statement.get("Condition", {}).values():
            for key in list(block):
                block[key.lower()] = block.pop(key)


def test_a_lower_case_deployed_condition_key_does_not_hide_a_dropped_principal(moto_endpoint: str, aws: Any) -> None:
    violations = judge(
        aws,
        moto_endpoint,
        deployed={"atlassianKeyPolicy": conditioned(principals=[SAMPLE_ATLASSIAN_ROLE, SECOND_ROLE])},
        head={"atlassianKeyPolicy": conditioned()},
        stored=lower_case_condition_keys,
    )
    assert "this change alters or drops Atlassian's deployed statement 'SAMPLEAtlassianUse'" in messages(violations)


def test_equivalent_spellings_of_the_deployed_statements_are_allowed(moto_endpoint: str, aws: Any) -> None:
    respelled = copy.deepcopy(conditioned())
    respelled[0]["Condition"] = {"StringEquals": {CONTEXT_KEY.lower(): ["AcmeCMK"]}}
    respelled[0]["Action"] = ["KMS:GenerateDataKey*", "kms:decrypt", "kms:Encrypt"]
    respelled[1]["Principal"] = {"AWS": [SAMPLE_ATLASSIAN_ROLE]}
    violations = judge(
        aws,
        moto_endpoint,
        deployed={"atlassianKeyPolicy": conditioned()},
        head={"atlassianKeyPolicy": respelled},
        stored=lower_case_condition_keys,
    )
    assert violations == [], describe(violations)


# ----------------------------------------------------------------------------- deleted principals


def as_unique_id(document: dict[str, Any]) -> None:
    """What KMS shows once Atlassian's role was deleted (and perhaps recreated)."""
    for statement in document["Statement"]:
        if statement.get("Sid") == SAMPLE_SID:
            statement["Principal"] = {"AWS": "AROAEXAMPLEDELETED1234"}


def test_a_deployed_unique_id_does_not_block_a_revocation_and_the_arn_is_regranted(
    moto_endpoint: str, aws: Any
) -> None:
    revoked = {"enabled": "false", "revocation": {"reason": "Suspected breach", "ticket": "SEC-1"}}
    assert judge(aws, moto_endpoint, head=revoked, stored=as_unique_id) == []


def test_a_deployed_unique_id_is_not_defended_when_the_statement_goes(moto_endpoint: str, aws: Any) -> None:
    """The statement names nobody any more: dropping it revokes nothing, so no "keep it"; the new
    statements that replace it are Atlassian's revision and need declaring."""
    violations = judge(aws, moto_endpoint, head={"atlassianKeyPolicy": conditioned()}, stored=as_unique_id)
    text = messages(violations)
    assert "keep the statement" not in text
    assert f"alters or drops Atlassian's deployed statement '{SAMPLE_SID}'" not in text
    assert "this change adds Atlassian statement 'SAMPLEAtlassianUse'" in text
    assert f"note: the deployed Atlassian statement '{SAMPLE_SID}' names AROAEXAMPLEDELETED1234" in text
    assert "re-grant it by ARN (Atlassian's statement as given) in atlassian-cmk:atlassianKeyPolicy" in text


def test_beside_a_violation_the_pack_explains_a_deployed_unique_id(moto_endpoint: str, aws: Any) -> None:
    deny: dict[str, Any] = {"Sid": "ProtectCmkEvidenceQuiet", "Effect": "Deny", "Action": "kms:Decrypt"}
    deny["Principal"] = {"AWS": SAMPLE_ATLASSIAN_ACCOUNT}
    text = messages(judge(aws, moto_endpoint, stored=as_unique_id, edit=add(deny)))
    assert "denies account 279766244153 kms:decrypt" in text
    assert (
        f"note: the deployed Atlassian statement '{SAMPLE_SID}' names AROAEXAMPLEDELETED1234, a unique ID: the "
        "principal it named was deleted, so Atlassian's access through this statement is already broken; this change "
        "re-grants it by ARN" in text
    )
