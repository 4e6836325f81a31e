"""The composed key policy and its invariants, judged by the core (no Pulumi, no gRPC)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from atlassian_cmk.key_policy import (
    SID_ADMINISTRATORS,
    SID_ROOT,
    build_key_policy,
    key_policy_findings,
    revision_of,
    serialize_key_policy,
)
from rehearsal.sample_atlassian_policy import SAMPLE_ATLASSIAN_KEY_POLICY, SAMPLE_ATLASSIAN_ROLE, SAMPLE_SID

ACCOUNT = "111122223333"
FOREIGN = "444455556666"
ATLASSIAN_ACCOUNT = "279766244153"
CONDITIONED = [
    {
        "Sid": "AtlassianUse",
        "Effect": "Allow",
        "Principal": {"AWS": SAMPLE_ATLASSIAN_ROLE},
        "Action": ["kms:Encrypt", "kms:Decrypt"],
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:EncryptionContext:atlassian-context-tag": "AcmeCMK"}},
    },
    {
        "Sid": "AtlassianDescribe",
        "Effect": "Allow",
        "Principal": {"AWS": SAMPLE_ATLASSIAN_ROLE},
        "Action": "kms:DescribeKey",
        "Resource": "*",
    },
]


def document(statements: list[dict[str, Any]] = SAMPLE_ATLASSIAN_KEY_POLICY, **kwargs: Any) -> dict[str, Any]:
    return build_key_policy(
        partition="aws",
        account_id=ACCOUNT,
        atlassian_statements=statements,
        key_administrators=[f"arn:aws:iam::{ACCOUNT}:role/SecurityBreakGlass"],
        **kwargs,
    )


def blocking(
    policy: dict[str, Any],
    statements: list[dict[str, Any]] = SAMPLE_ATLASSIAN_KEY_POLICY,
    *,
    account: str | None = ACCOUNT,
    deployed: dict[str, Any] | None = None,
    revision: str | None = None,
    context_tag: str = "AcmeCMK",
) -> list[str]:
    findings = key_policy_findings(
        serialize_key_policy(policy),
        atlassian_statements=statements,
        context_tag=context_tag,
        account_id=account,
        deployed_policy_json=None if deployed is None else json.dumps(deployed),
        atlassian_revision=revision,
    )
    return [f.message for f in findings if f.blocking]


def test_the_composed_policy_is_sound_and_holds_atlassians_statements_verbatim() -> None:
    policy = document()
    assert blocking(policy) == []
    # The key's own account unknown (no deployed key, no aws:allowedAccountIds): fail closed.
    assert any(p.startswith("the key's own account is unknown") for p in blocking(policy, account=None))
    assert policy["Statement"][0]["Sid"] == SID_ROOT
    assert policy["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert policy["Statement"][-1] == SAMPLE_ATLASSIAN_KEY_POLICY[0]
    assert policy["Statement"][-1] is not SAMPLE_ATLASSIAN_KEY_POLICY[0]


def test_the_declared_revision_is_carried_in_the_policy_id() -> None:
    assert revision_of(document(atlassian_revision="ATL-9")) == "ATL-9"
    assert revision_of(document()) is None


def test_a_context_condition_must_carry_the_context_tag() -> None:
    assert blocking(document(CONDITIONED), CONDITIONED) == []
    problems = blocking(document(CONDITIONED), CONDITIONED, context_tag="Other")
    assert problems == [
        "Atlassian's statement 'AtlassianUse' in atlassian-cmk:atlassianKeyPolicy conditions on "
        "kms:encryptioncontext:atlassian-context-tag = AcmeCMK, but atlassian-cmk:contextTag is Other: Atlassian would "
        "be denied (a stealth revocation); the context tag is immutable once enrolled"
    ]


def with_statement(extra: dict[str, Any]) -> dict[str, Any]:
    policy = document()
    policy["Statement"].insert(1, {"Resource": "*", **extra})
    return policy


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            with_statement(
                {
                    "Sid": SID_ADMINISTRATORS + "X",
                    "Effect": "Deny",
                    "Principal": {"AWS": f"arn:aws:iam::{ATLASSIAN_ACCOUNT}:root"},
                    "Action": "kms:*",
                }
            ),
            None,  # not ours by Sid: an unknown statement
        ),
    ],
)
def test_a_statement_that_is_neither_ours_nor_atlassians_is_refused(policy: dict[str, Any], expected: None) -> None:
    assert any("is neither ours nor one of Atlassian's statements" in p for p in blocking(policy))


def own(sid: str, effect: str, principal: Any, action: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": effect, "Principal": principal, "Action": action}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            own("ProtectCmkEvidenceX", "Deny", {"AWS": f"arn:aws:iam::{ATLASSIAN_ACCOUNT}:root"}, "kms:*"),
            f"statement 'ProtectCmkEvidenceX' denies account {ATLASSIAN_ACCOUNT} kms:decrypt",
        ),
        (
            own("ProtectCmkEvidenceX", "Deny", {"AWS": ATLASSIAN_ACCOUNT}, ["kms:Decrypt", "kms:GenerateDataKey*"]),
            f"denies account {ATLASSIAN_ACCOUNT} kms:decrypt, kms:generatedatakey",
        ),
        (
            own("ProtectCmkEvidenceX", "Deny", "*", "kms:Decrypt"),
            "statement 'ProtectCmkEvidenceX' denies * kms:decrypt",
        ),
        (
            {
                **own("ProtectCmkEvidenceX", "Deny", None, "kms:Decrypt"),
                "Principal": None,
                "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            },
            "denies everyone outside NotPrincipal",
        ),
        (
            own(SID_ADMINISTRATORS, "Allow", {"AWS": "*"}, ["kms:Decrypt", "kms:CreateGrant"]),
            f"statement '{SID_ADMINISTRATORS}' allows *",
        ),
        (
            own(
                SID_ADMINISTRATORS,
                "Allow",
                {"AWS": f"arn:aws:iam::{FOREIGN}:root"},
                ["kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:DisableKey"],
            ),
            f"statement '{SID_ADMINISTRATORS}' grants account {FOREIGN}, outside the key's own account {ACCOUNT}",
        ),
        (
            own(
                SID_ADMINISTRATORS,
                "Allow",
                {"AWS": [f"arn:aws:iam::{ACCOUNT}:role/Admin", f"arn:aws:iam::{FOREIGN}:root"]},
                "kms:DisableKey",
            ),
            f"grants account {FOREIGN}, outside the key's own account",
        ),
    ],
)
def test_a_deny_reaching_atlassian_or_a_grant_beyond_the_account_is_refused(
    extra: dict[str, Any], expected: str
) -> None:
    extra = {k: v for k, v in extra.items() if v is not None}
    policy = with_statement(extra)
    problems = blocking(policy)
    assert any(expected in p for p in problems), problems


def test_the_root_administrator_must_be_the_keys_own_account() -> None:
    policy = document()
    policy["Statement"][0]["Principal"] = {"AWS": f"arn:aws:iam::{FOREIGN}:root"}
    problems = blocking(policy)
    assert any(
        p.startswith("the account root administrator statement (Allow kms:* to arn:...:iam::111122223333:root")
        for p in problems
    ), problems
    assert any(f"grants account {FOREIGN}" in p for p in problems), problems


# ----------------------------------------------------------------------------- against the deployed policy


def test_a_respelled_deployed_policy_is_the_same_policy() -> None:
    deployed = document(CONDITIONED)
    use = deployed["Statement"][-2]
    use["Action"] = ["KMS:decrypt", "kms:encrypt"]
    use["Condition"] = {"StringEquals": {"kms:encryptioncontext:atlassian-context-tag": ["AcmeCMK"]}}
    use["Principal"] = {"AWS": [SAMPLE_ATLASSIAN_ROLE]}
    assert blocking(document(CONDITIONED), CONDITIONED, deployed=deployed) == []


def test_dropping_a_deployed_atlassian_statement_needs_a_declared_revision() -> None:
    deployed = document(CONDITIONED)
    narrowed = [CONDITIONED[1]]
    problems = blocking(document(narrowed), narrowed, deployed=deployed)
    assert problems[0] == (
        "this change alters or drops Atlassian's deployed statement 'AtlassianUse' (principal "
        f"{SAMPLE_ATLASSIAN_ROLE}): that changes Atlassian's access outside the reviewed `enabled` switch. "
        "If Atlassian revised its key policy, "
        "declare it with a new atlassian-cmk:atlassianKeyPolicyRevision (the ticket); otherwise keep the statement"
    )
    # Dropping the use statement takes every data action: a revocation, even under a revision.
    assert problems[1].startswith(f"Atlassian's {SAMPLE_ATLASSIAN_ROLE} loses kms:decrypt, kms:encrypt: that takes")
    revised = blocking(document(narrowed, atlassian_revision="ATL-2"), narrowed, deployed=deployed, revision="ATL-2")
    assert revised == [problems[1] + " (the declared revision ATL-2 does not allow it)"]
    redeclared = document(CONDITIONED, atlassian_revision="ATL-2")
    assert blocking(document(narrowed), narrowed, deployed=redeclared, revision="ATL-2") != []


def test_changing_the_context_tag_against_the_deployed_condition_is_refused() -> None:
    deployed = document(CONDITIONED)
    retagged = copy.deepcopy(CONDITIONED)
    retagged[0]["Condition"] = {"StringEquals": {"kms:EncryptionContext:atlassian-context-tag": "Other"}}
    problems = blocking(document(retagged), retagged, deployed=deployed, context_tag="Other")
    assert any(
        "in the deployed key policy conditions on kms:encryptioncontext:atlassian-context-tag = AcmeCMK" in p
        for p in problems
    )
    assert any("this change alters or drops Atlassian's deployed statement 'AtlassianUse'" in p for p in problems)


def deleted(policy: dict[str, Any]) -> dict[str, Any]:
    stored = copy.deepcopy(policy)
    stored["Statement"][-1]["Principal"] = {"AWS": "AROAEXAMPLEDELETED12345"}
    return stored


def test_a_deployed_unique_id_is_explained_and_the_regrant_allowed() -> None:
    policy = document()
    findings = key_policy_findings(
        serialize_key_policy(policy),
        atlassian_statements=SAMPLE_ATLASSIAN_KEY_POLICY,
        context_tag="AcmeCMK",
        account_id=ACCOUNT,
        deployed_policy_json=json.dumps(deleted(policy)),
    )
    assert [f.blocking for f in findings] == [False]
    assert findings[0].message == (
        f"the deployed Atlassian statement '{SAMPLE_SID}' names AROAEXAMPLEDELETED12345, a unique ID: the principal "
        "it named was deleted, so Atlassian's access through this statement is already broken; this change "
        "re-grants it by ARN"
    )


def test_an_account_in_not_principal_does_not_exempt_its_roles_so_the_deny_reaches_atlassian() -> None:
    # IAM User Guide, "AWS JSON policy elements: NotPrincipal" (awsdocs/iam-user-guide
    # doc_source/reference_policies_elements_notprincipal.md): a session is exempt only when its
    # session ARN, its role AND its account are all listed; the account alone exempts the root only.
    deny = {
        "Sid": "ProtectCmkEvidenceTags",
        "Effect": "Deny",
        "NotPrincipal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:role/CmkApply", ATLASSIAN_ACCOUNT]},
        "Action": "kms:Decrypt",
    }
    denies = [p for p in blocking(with_statement(deny)) if "denies" in p]
    assert denies == [
        "statement 'ProtectCmkEvidenceTags' denies everyone outside NotPrincipal, Atlassian's "
        f"arn:aws:iam::{ATLASSIAN_ACCOUNT}:role/AnyRoleOfAtlassian included, kms:decrypt, which reaches "
        f"Atlassian's account {ATLASSIAN_ACCOUNT}: a stealth revocation; revoke through atlassian-cmk:enabled"
    ]
    # Excluding only Atlassian's role still denies its sessions and every other principal of its account.
    deny["NotPrincipal"] = {"AWS": [f"arn:aws:iam::{ACCOUNT}:role/CmkApply", SAMPLE_ATLASSIAN_ROLE]}
    assert [p for p in blocking(with_statement(deny)) if "denies" in p] != []


# ----------------------------------------------------------------------------- review findings (issue 11, round 2)


def test_reencrypt_star_equals_reencrypt_from_and_to_against_the_deployed_policy() -> None:
    respelled = copy.deepcopy(SAMPLE_ATLASSIAN_KEY_POLICY)
    respelled[0]["Action"] = [
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:GenerateDataKey*",
        "kms:DescribeKey",
    ]
    assert blocking(document(respelled), respelled, deployed=document()) == []


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEqualsIgnoreCase": {"kms:EncryptionContext:t": "acmecmk"}},
        {"StringLike": {"kms:EncryptionContext:t": "*"}},
        {"StringLike": {"kms:EncryptionContext:t": "Acme*"}},
    ],
)
def test_a_context_condition_atlassians_tag_meets_is_not_a_revocation(condition: dict[str, Any]) -> None:
    statements = copy.deepcopy(SAMPLE_ATLASSIAN_KEY_POLICY)
    statements[0]["Condition"] = condition
    assert blocking(document(statements), statements) == []


def test_the_root_must_be_the_keys_own_account_and_unknown_fails_closed() -> None:
    policy = document()
    policy["Statement"][0]["Principal"] = {"AWS": f"arn:aws:iam::{FOREIGN}:root"}
    assert any(p.startswith("the account root administrator statement") for p in blocking(policy))
    assert any(p.startswith("the key's own account is unknown") for p in blocking(document(), account=None))


@pytest.mark.parametrize(
    ("actions", "refused"),
    [
        (["kms:Decrypt", "kms:CreateGrant", "kms:ListGrants", "kms:RetireGrant", "kms:RevokeGrant"], False),
        (["kms:Decrypt", "kms:DisableKey"], True),
        (["kms:*"], True),
        (["kms:PutKeyPolicy"], True),
    ],
)
def test_atlassians_statements_allow_only_key_use(actions: list[str], refused: bool) -> None:
    statements = copy.deepcopy(SAMPLE_ATLASSIAN_KEY_POLICY)
    statements[0]["Action"] = actions
    problems = blocking(document(statements), statements)
    assert any("never key management" in p for p in problems) is refused, problems


def test_a_pasted_own_account_root_statement_is_not_taken_as_atlassians() -> None:
    pasted = [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        *SAMPLE_ATLASSIAN_KEY_POLICY,
    ]
    problems = blocking(document(pasted), pasted)
    assert any(
        f"names account {ACCOUNT} of the key's own account: remove the account root (own-account) statement" in p
        for p in problems
    ), problems


def test_what_kms_refuses_is_refused_one_line_each() -> None:
    policy = document()
    policy["Statement"].append({**SAMPLE_ATLASSIAN_KEY_POLICY[0]})  # duplicate Sid
    no_resource = {k: v for k, v in SAMPLE_ATLASSIAN_KEY_POLICY[0].items() if k != "Resource"}
    policy["Statement"].append({**no_resource, "Sid": "Other"})
    problems = blocking(policy)
    assert f"Sid {SAMPLE_SID!r} appears twice: each statement needs its own Sid" in problems
    assert any(p.startswith("statement 'Other' has no Resource") for p in problems)
    big = document()
    big["Statement"][1]["Principal"]["AWS"] = [f"arn:aws:iam::{ACCOUNT}:role/R{i:04d}" for i in range(800)]
    assert any("KMS allows at most 32768 (32 KiB)" in p for p in blocking(big))


def test_a_revision_narrowing_short_of_revocation_is_explained_not_refused() -> None:
    narrowed = copy.deepcopy(SAMPLE_ATLASSIAN_KEY_POLICY)
    narrowed[0]["Action"] = ["kms:Decrypt", "kms:DescribeKey"]
    findings = key_policy_findings(
        serialize_key_policy(document(narrowed, atlassian_revision="ATL-2")),
        atlassian_statements=narrowed,
        context_tag="AcmeCMK",
        account_id=ACCOUNT,
        deployed_policy_json=serialize_key_policy(document()),
        atlassian_revision="ATL-2",
    )
    assert [f.blocking for f in findings if f.rule == "atlassian-revision"] and not [f for f in findings if f.blocking]
    assert any("loses kms:encrypt" in f.message and "ATL-2" in f.message for f in findings)
    # Without the marker the same narrowing is refused.
    assert any("loses kms:encrypt" in p for p in blocking(document(narrowed), narrowed, deployed=document()))
