"""Issue 12, item 2: the guards trust the evidence tags only while the LIVE key policy carries the
ProtectCmkEvidence* statements unweakened (`evidence.evidence_protection`), judged the same way by
`cmkctl status` (a finding), `cmkctl revoke` (refused, exit 4, unless the audited override) and the
pack (a revocation that would disable a key fails closed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from atlassian_cmk.cli.main import main
from atlassian_cmk.composed_policy import composed_key_policy
from atlassian_cmk.config import parse_stack_config
from atlassian_cmk.evidence import (
    EVIDENCE_REMEDY,
    EVIDENCE_SIDS,
    SID_EVIDENCE_TAGS,
    SID_NEXT_RECORD_NEW_ID,
    SID_OPEN_RECORD,
    evidence_protection,
    unprotected_evidence,
)
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.naming import TAG_GUARD_OVERRIDE
from atlassian_cmk.stack_file import raw_config_from_text
from rehearsal.iam_samples import ROOT, SAMPLE_ACCOUNT
from rehearsal.policy_pack_client import analyze_program_run, by_policy, describe
from tests.support.cmkctl import REGIONS, kms, live, provision, runtime, stack_dir, unwrap
from tests.test_config import engine_config
from tests.test_policy_live_state import REENCRYPTION, REVOKED, aws, aws_clients, deploy, mandatory, pack_for, preview

__all__ = ["aws", "aws_clients"]  # the pack tests' fixtures, used here by name

APPLY = f"arn:aws:iam::{SAMPLE_ACCOUNT}:role/cmk-apply"


def composed(apply_role: str | None = APPLY) -> dict[str, Any]:
    raw = raw_config_from_text((ROOT / "Pulumi.prod.yaml").read_text())
    raw["aws:allowedAccountIds"] = json.dumps([SAMPLE_ACCOUNT])  # the keys' account, which applyRoleArn must be in
    raw.pop("atlassian-cmk:applyRoleArn")  # the shipped sample's, in the emulator's account
    if apply_role is not None:
        raw["atlassian-cmk:applyRoleArn"] = apply_role
    policy = composed_key_policy(parse_stack_config(raw), account_id=SAMPLE_ACCOUNT, partition="aws")
    return dict(json.loads(policy))


def without(document: dict[str, Any], sid: str) -> dict[str, Any]:
    return {**document, "Statement": [s for s in document["Statement"] if s.get("Sid") != sid]}


def edited(document: dict[str, Any], sid: str, **fields: Any) -> dict[str, Any]:
    return {**document, "Statement": [{**s, **fields} if s.get("Sid") == sid else s for s in document["Statement"]]}


# ----------------------------------------------------------------------------- the rule


def test_the_policy_the_program_composes_protects_the_evidence_and_an_added_allow_does_not_weaken_it() -> None:
    document = composed()
    assert evidence_protection(json.dumps(document), APPLY).protected
    everything = {"Sid": "AllowEverythingToAdmins", "Effect": "Allow", "Principal": {"AWS": APPLY}}
    everything |= {"Action": "kms:*", "Resource": "*"}
    added = {**document, "Statement": [*document["Statement"], everything]}
    assert evidence_protection(added, APPLY).protected  # an Allow never overrides a Deny
    respelled = edited(document, SID_OPEN_RECORD, Sid="Renamed", Principal="*")
    assert evidence_protection(respelled, APPLY).protected  # the same statement as IAM reads it


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (without(composed(), SID_EVIDENCE_TAGS), f"lacks {SID_EVIDENCE_TAGS}"),
        (edited(composed(), SID_EVIDENCE_TAGS, Action=["kms:UntagResource"]), f"has {SID_EVIDENCE_TAGS} altered"),
        (edited(composed(), SID_OPEN_RECORD, Effect="Allow"), f"has {SID_OPEN_RECORD} altered"),
        (edited(composed(), SID_NEXT_RECORD_NEW_ID, Condition={}), f"has {SID_NEXT_RECORD_NEW_ID} altered"),
        (composed(f"arn:aws:iam::{SAMPLE_ACCOUNT}:role/cmk-break-glass"), f"has {SID_EVIDENCE_TAGS}"),
        (composed(None), f"has {SID_EVIDENCE_TAGS}"),  # nobody exempt live, the config names the apply role
        ({**composed(), "Version": "2008-10-17"}, "has Version '2008-10-17', not 2012-10-17"),
        ("{not json", "cannot be read as an IAM policy"),
        ({"Statement": "everything"}, "cannot be read as an IAM policy"),
        (None, "could not be read"),
    ],
)
def test_a_missing_or_edited_deny_or_an_unreadable_policy_is_not_protection(document: Any, problem: str) -> None:
    judged = evidence_protection(document, APPLY)
    assert not judged.protected
    assert any(p.startswith(problem) for p in judged.problems), judged.problems


def test_every_region_is_named_with_the_remedy_once() -> None:
    lines = unprotected_evidence(
        {"us-east-1": json.dumps(composed()), "us-west-2": json.dumps(without(composed(), SID_EVIDENCE_TAGS))},
        APPLY,
        {"eu-west-1": "AccessDeniedException: not allowed"},
    )
    assert lines == (
        "the key policy in eu-west-1 could not be read (AccessDeniedException: not allowed), so the evidence tags "
        "cannot be trusted",
        f"the key policy in us-west-2 does not protect the evidence tags (it lacks {SID_EVIDENCE_TAGS})",
        EVIDENCE_REMEDY,
    )
    assert unprotected_evidence({"us-east-1": json.dumps(composed())}, APPLY) == ()


# ----------------------------------------------------------------------------- cmkctl revoke and status


def strip_live_policy(endpoint: str, region: str, *sids: str) -> None:
    """What a key deployed before the evidence statements existed (or edited by hand) carries."""
    client = kms(endpoint, region)
    key_id = live(endpoint, region).key_id
    document = json.loads(client.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    for sid in sids:
        document = without(document, sid)
    client.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(document))


def revoke(project: Path, endpoint: str, *extra: str) -> int:
    args = ["revoke", "--project-dir", str(project), "--reason", "Suspected breach", "--ticket", "SEC-1", "--yes"]
    return main([*args, *extra], runtime=runtime(endpoint))


def test_revoke_refuses_while_a_live_key_policy_lacks_the_evidence_protection(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    strip_live_policy(moto_endpoint, "us-west-2", *EVIDENCE_SIDS)

    code = revoke(project, moto_endpoint)

    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert code == ExitCode.REFUSED and int(code) == 4
    assert {region: live(moto_endpoint, region).key_state for region in REGIONS} == dict.fromkeys(REGIONS, "Enabled")
    assert (
        "the key policy in us-west-2 does not protect the evidence tags (it lacks every ProtectCmkEvidence* statement: "
        "deployed before the evidence model, or rewritten)" in out
    )
    assert "us-east-1 does not protect" not in out
    assert "pulumi up" in out and "--override-reencryption-guard" in out


def test_revoke_with_the_override_proceeds_and_records_it(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    strip_live_policy(moto_endpoint, "us-east-1", SID_EVIDENCE_TAGS)

    code = revoke(project, moto_endpoint, "--override-reencryption-guard", "Key policy upgrade pending CHG-7")

    capsys.readouterr()
    assert code == ExitCode.AS_DECLARED
    for region in REGIONS:
        key = live(moto_endpoint, region)
        assert key.key_state == "Disabled"
        assert key.tags[TAG_GUARD_OVERRIDE] == "Key policy upgrade pending CHG-7"


def test_status_names_an_unprotected_region_as_drift(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    assert main(["status", "--project-dir", str(project)], runtime=runtime(moto_endpoint)) == ExitCode.AS_DECLARED
    capsys.readouterr()
    strip_live_policy(moto_endpoint, "us-east-1", SID_OPEN_RECORD)

    code = main(["status", "--project-dir", str(project)], runtime=runtime(moto_endpoint))

    out = unwrap(capsys.readouterr().out)  # the finding is wrapped to 100 columns
    assert code == ExitCode.DRIFT
    lines = [line for line in out.splitlines() if "EVIDENCE UNPROTECTED" in line]
    assert len(lines) == 1, out
    assert f"the key policy in us-east-1 does not protect the evidence tags (it lacks {SID_OPEN_RECORD})" in lines[0]
    assert EVIDENCE_REMEDY in lines[0]


# ----------------------------------------------------------------------------- the pack


def put_policy(aws: Any, key: Any, document: dict[str, Any]) -> None:
    aws("kms", key.region).put_key_policy(KeyId=key.key_id, PolicyName="default", Policy=json.dumps(document))


def live_policy(aws: Any, key: Any) -> dict[str, Any]:
    return dict(json.loads(aws("kms", key.region).get_key_policy(KeyId=key.key_id, PolicyName="default")["Policy"]))


def test_the_pack_denies_a_revocation_while_a_deployed_key_policy_lacks_the_evidence_protection(
    moto_endpoint: str, aws: Any
) -> None:
    raw = engine_config(**REVOKED)
    with pack_for(raw, moto_endpoint) as (client, _):
        deployed = deploy(aws)
        put_policy(aws, deployed["us-west-2"], without(live_policy(aws, deployed["us-west-2"]), SID_EVIDENCE_TAGS))
        run = preview(raw)
        client.configure()

        violations = mandatory(analyze_program_run(client, run), REENCRYPTION)

    assert len(violations) == 2, describe(violations)  # every key of the realm is held back
    for violation in violations:
        assert f"The key policy in us-west-2 does not protect the evidence tags (it lacks {SID_EVIDENCE_TAGS})" in (
            violation.message
        )
        assert "us-east-1 does not protect" not in violation.message


def test_the_pack_lets_the_follow_up_of_a_break_glass_revocation_pass_whatever_the_key_policy(
    moto_endpoint: str, aws: Any
) -> None:
    # Every key already Disabled: the change disables nothing, so no evidence is trusted for it.
    raw = engine_config(**REVOKED)
    with pack_for(raw, moto_endpoint) as (client, _):
        deployed = deploy(aws)
        for key in deployed.values():
            put_policy(aws, key, without(live_policy(aws, key), SID_EVIDENCE_TAGS))
            aws("kms", key.region).disable_key(KeyId=key.key_id)
        run = preview(raw)
        client.configure()

        violations = analyze_program_run(client, run)

    assert by_policy(violations, REENCRYPTION) == [], describe(violations)
