"""`cmkctl status`: every exit code reached by a real situation in the emulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from atlassian_cmk.aws.cloudtrail import cloudtrail_disabled_at, collect_cloudtrail_evidence
from atlassian_cmk.cli.main import Runtime, main
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.naming import TAG_REVOKED_AT
from atlassian_cmk.status import SCHEMA_VERSION
from atlassian_cmk.timeline import iso
from tests.support.cloudtrail_events import kms_events
from tests.support.cmkctl import REGIONS, kms, live, provision, runtime, stack_dir, unwrap
from tests.support.faults import dead_endpoint, fast_client_factory, fault_proxy


def status(project: Path, rt: Runtime, *extra: str) -> int:
    return main(["status", "--project-dir", str(project), *extra], runtime=rt)


def status_json(project: Path, rt: Runtime, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = status(project, rt, "--json")
    return code, json.loads(unwrap(capsys.readouterr().out))


def test_status_as_declared_exits_0_and_shows_every_key(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    keys = provision(project, moto_endpoint)

    code = status(project, runtime(moto_endpoint))

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.AS_DECLARED
    for key in keys:
        assert key.arn in out
    assert "DRIFT" not in out.replace("DRIFT  ", "")  # only the column header
    assert "Result: exit 0" in out


def test_status_key_disabled_in_console_everywhere_is_drift_exit_1(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    for key in provision(project, moto_endpoint):
        kms(moto_endpoint, key.region).disable_key(KeyId=key.key_id)

    code, document = status_json(project, runtime(moto_endpoint), capsys)

    assert code == ExitCode.DRIFT
    assert document["outcome"] == "drift"
    assert [f["kind"] for f in document["findings"]] == ["drift", "drift"]
    disabled = [
        event["EventTime"]
        for region in REGIONS
        for event in kms_events(moto_endpoint, region, "DisableKey")
    ]
    for region in document["regions"]:
        assert region["key_state"] == "Disabled"
        assert region["declared_enabled"] is True
        assert "declares enabled: true" in region["drift"][0]
        # No revoked-at tag: the clock is CloudTrail's DisableKey (the emulator keeps the event history).
        assert region["clock"]["source"] == "cloudtrail"
        assert region["clock"]["revoked_at"] in {iso(when) for when in disabled}


def test_status_reports_a_deleted_atlassian_principal_as_broken_access_and_a_split(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """KMS shows a deleted (or deleted and recreated) role as its unique ID: access is already broken,
    here in one region only, so the regions differ in Atlassian's effective access (exit 2)."""
    project = stack_dir(tmp_path)
    east = next(k for k in provision(project, moto_endpoint) if k.region == "us-east-1")
    client = kms(moto_endpoint, "us-east-1")
    policy = json.loads(client.get_key_policy(KeyId=east.key_id, PolicyName="default")["Policy"])
    policy["Statement"][-1]["Principal"] = {"AWS": "AROAEXAMPLEDELETED1234"}
    client.put_key_policy(KeyId=east.key_id, PolicyName="default", Policy=json.dumps(policy))

    code, document = status_json(project, runtime(moto_endpoint), capsys)

    assert code == ExitCode.SPLIT
    messages = [f["message"] for f in document["findings"]]
    assert messages[0].startswith(
        "ACCESS BROKEN: us-east-1: Atlassian's arn:aws:iam::279766244153:role/SAMPLE-AtlassianCmkAccess does not "
        "get kms:decrypt, kms:describekey, kms:encrypt, kms:generatedatakey... (no statement grants it (Atlassian's "
        "statement removed or altered)); restore the key policy through the reviewed path"
    )
    assert messages[1] == (
        "ACCESS BROKEN: us-east-1: Atlassian's statement 'SAMPLEAtlassianUseOfTheKey' names "
        "AROAEXAMPLEDELETED1234, a deleted principal: Atlassian's access through it is already broken; re-grant "
        "by ARN (Atlassian's statement in atlassian-cmk:atlassianKeyPolicy, then pulumi up)"
    )
    assert messages[2].startswith(
        "SPLIT: Atlassian's effective access differs between regions (us-east-1, us-west-2): restore the key policy "
        "through the reviewed path"
    )


def test_status_names_a_deny_reaching_atlassian_in_every_region() -> None:
    # Judged on the policies status reads (moto applies a key-policy Deny to every caller whatever its
    # Principal, so the emulator cannot hold this policy and still answer GetKeyPolicy).
    from atlassian_cmk.key_policy import build_key_policy, serialize_key_policy
    from atlassian_cmk.status import key_policy_access_findings
    from rehearsal.sample_atlassian_policy import SAMPLE_ATLASSIAN_KEY_POLICY

    document = build_key_policy(
        partition="aws", account_id="123456789012", atlassian_statements=SAMPLE_ATLASSIAN_KEY_POLICY
    )
    document["Statement"].append(
        {"Sid": "Sneaky", "Effect": "Deny", "Principal": {"AWS": "279766244153"}, "Action": "kms:*", "Resource": "*"}
    )
    policy = serialize_key_policy(document)
    findings = key_policy_access_findings(
        {"us-east-1": policy, "us-west-2": policy}, {}, atlassian_statements=SAMPLE_ATLASSIAN_KEY_POLICY
    )
    assert [(f.kind, f.region) for f in findings] == [("access", "us-east-1"), ("access", "us-west-2")]  # no split
    assert all("(denied by statement Sneaky)" in f.message for f in findings)


def test_status_reencryption_declared_but_not_deployed_is_drift_exit_1(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    provision(stack_dir(tmp_path), moto_endpoint)  # keys tagged re-encryption "none"
    project = stack_dir(tmp_path, {"status: none": "status: in-progress"})

    code = status(project, runtime(moto_endpoint))

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.DRIFT
    assert "DRIFT: us-east-1: re-encryption tag is none; the stack declares in-progress" in out
    assert "Declared: enabled, re-encryption in-progress." in out


def test_status_one_region_disabled_is_split_exit_2(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    keys = {key.region: key for key in provision(project, moto_endpoint)}
    kms(moto_endpoint, "us-west-2").disable_key(KeyId=keys["us-west-2"].key_id)

    code, document = status_json(project, runtime(moto_endpoint), capsys)

    assert code == ExitCode.SPLIT
    assert document["exit_code"] == 2
    split = [f for f in document["findings"] if f["kind"] == "split"]
    assert len(split) == 1
    assert "us-east-1 Enabled, us-west-2 Disabled" in split[0]["message"]


def test_status_aws_unreachable_exits_3(tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)

    code = status(project, runtime(dead_endpoint()))

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.UNREACHABLE
    # Every region failed alike: the cause is said once, for the realm (issue 14: realm-wide causes once).
    assert out.count("UNREACHABLE:") == 1
    assert "UNREACHABLE: read 0 of 2 regions: cannot reach the AWS endpoint" in out


def test_status_one_region_unreachable_exits_3_and_reports_the_other(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    dead = dead_endpoint()

    code, document = status_json(
        project, runtime(lambda region: dead if region == "us-west-2" else moto_endpoint), capsys
    )

    assert code == ExitCode.UNREACHABLE
    east, west = document["regions"]
    assert east["key_state"] == "Enabled" and east["error"] is None
    assert west["key_state"] is None and "cannot reach" in west["error"]


def test_status_without_credentials_exits_3(
    tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    code = status(project, Runtime())  # the real client factory and credential chain

    captured = capsys.readouterr()
    assert code == ExitCode.UNREACHABLE
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "no AWS credentials found" in captured.err  # once, not per region


def test_status_key_pending_deletion_is_critical_exit_5_with_remedy(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    keys = {key.region: key for key in provision(project, moto_endpoint)}
    # Arrange only: the product never schedules deletion; someone else did.
    kms(moto_endpoint, "us-west-2").schedule_key_deletion(KeyId=keys["us-west-2"].key_id, PendingWindowInDays=7)

    code = status(project, runtime(moto_endpoint))

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.KEY_LOST
    assert f"cancel-key-deletion --region us-west-2 --key-id {keys['us-west-2'].key_id}" in out
    critical = [line for line in out.splitlines() if line.startswith("CRITICAL:")]
    assert len(critical) == 1 and "PendingDeletion" in critical[0] and "then enable it" in critical[0]


def test_status_before_enrollment_with_no_key_in_one_region_is_not_deployed_not_an_incident(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    kms(moto_endpoint, "us-west-2").delete_alias(AliasName="alias/atlassian-cmk/prod")

    code, document = status_json(project, runtime(moto_endpoint), capsys)

    assert code == ExitCode.NOT_DEPLOYED
    assert document["outcome"] == "not-deployed"
    assert document["enrolled"] is False
    assert document["regions"][1]["missing"] is True
    assert [f["kind"] for f in document["findings"]] == ["not-deployed"]
    message = document["findings"][0]["message"]
    assert "NOT DEPLOYED: no key yet behind alias/atlassian-cmk/prod in us-west-2" in message
    assert "cmkctl enroll" in message
    assert "CRITICAL" not in message and "cancel-key-deletion" not in message.lower()


def test_status_before_the_first_deployment_is_not_deployed_exit_8_and_says_so_at_the_end(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)

    code = status(project, runtime(moto_endpoint))

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.NOT_DEPLOYED and int(code) == 8
    assert "NOT DEPLOYED: no key yet behind alias/atlassian-cmk/prod in us-east-1, us-west-2" in out
    assert "CRITICAL" not in out and "CancelKeyDeletion" not in out
    assert out.rstrip().splitlines()[-1].startswith("Result: exit 8: not deployed yet")
    assert "drift" not in out.rstrip().splitlines()[-1]


@pytest.mark.parametrize(
    ("replacements", "stack", "expected"),
    [
        (
            {"atlassian-cmk:realm: us": "atlassian-cmk:realm: mars"},
            "prod",
            "atlassian-cmk:realm: 'mars' is not allowed",
        ),
        ({"atlassian-cmk:enabled: true": "atlassian-cmk:enabled: no"}, "prod", "atlassian-cmk:enabled: 'no'"),
        ({"config:": "config: [unclosed"}, "prod", "not valid YAML"),
        (None, "staging", "Pulumi.staging.yaml: no such stack file"),
    ],
)
def test_status_bad_input_exits_64_without_calling_aws(
    tmp_path: Path,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
    replacements: dict[str, str] | None,
    stack: str,
    expected: str,
) -> None:
    project = stack_dir(tmp_path, replacements)
    with fault_proxy(moto_endpoint) as proxy:
        code = main(["status", "--project-dir", str(project), "--stack", stack], runtime=runtime(proxy.url))

    assert code == ExitCode.USAGE
    assert expected in capsys.readouterr().err
    assert proxy.calls == []


def test_status_json_after_revoke_has_the_documented_schema_and_deadlines(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    assert (
        main(
            ["revoke", "--project-dir", str(project), "--reason", "Suspected breach", "--ticket", "SEC-9", "--yes"],
            runtime=runtime(moto_endpoint),
        )
        == ExitCode.AS_DECLARED
    )
    revoked_at = datetime.fromisoformat(live(moto_endpoint, "us-east-1").tags[TAG_REVOKED_AT].replace("Z", "+00:00"))
    three_days_later = revoked_at + timedelta(days=3)

    code, document = status_json(project, runtime(moto_endpoint, now=lambda: three_days_later), capsys)

    assert code == ExitCode.DRIFT  # the keys are revoked, the stack file not yet committed
    assert document["schema_version"] == SCHEMA_VERSION == 1
    assert set(document) == {
        "schema_version", "stack", "alias", "enrolled", "realm", "checked_at", "exit_code", "outcome", "declared",
        "regions", "clock", "notes", "findings", "context", "regions_read", "generations", "reencryption_evidence",
    }  # fmt: skip
    assert document["clock"] == {
        "revoked_at": iso(revoked_at),
        "source": "revoked-at tag",
        "reinstate_until": iso(revoked_at + timedelta(days=10)),
        "data_at_risk_after": iso(revoked_at + timedelta(days=20)),
        "days_left_to_reinstate": 7.0,
        "within_reinstatement_window": True,
        # The emulator's CloudTrail holds the revoke's DisableKey calls: the tag is confirmed.
        "verification": "confirmed",
        "verification_reason": document["clock"]["verification_reason"],
        "verification_note": document["clock"]["verification_note"],
        "tag_revoked_at": iso(revoked_at),
        "cloudtrail_disabled_at": document["clock"]["cloudtrail_disabled_at"],
        "enabled_gaps_note": None,
        "unproven_note": None,
    }
    disabled_at = datetime.fromisoformat(document["clock"]["cloudtrail_disabled_at"].replace("Z", "+00:00"))
    assert revoked_at - timedelta(seconds=1) <= disabled_at <= revoked_at + timedelta(minutes=1)
    assert [r["region"] for r in document["regions"]] == list(REGIONS)
    for region in document["regions"]:
        assert set(region) == {
            "region", "key_arn", "enrolled_arn", "alias_target", "key_state", "live_enabled", "declared_enabled",
            "missing", "error", "drift", "reencryption", "revocation", "clock", "clock_note",
        }  # fmt: skip
        assert region["revocation"]["ticket"] == "SEC-9"
        assert region["revocation"]["reason"] == "Suspected breach"
        assert region["revocation"]["revoked_by"] == "arn:aws:sts::123456789012:user/moto"
        assert region["clock"]["days_left_to_reinstate"] == 7.0


def _lookup_response(key_arn: str, *times: datetime) -> dict[str, Any]:
    return {
        "Events": [
            {
                "EventId": f"e{i}",
                "EventTime": t,
                "Resources": [{"ResourceType": "AWS::KMS::Key", "ResourceName": key_arn}],
            }
            for i, t in enumerate(times)
        ]
    }


def test_cloudtrail_fallback_takes_the_first_disable_after_the_last_enable(tmp_path: Path, moto_endpoint: str) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    key = live(moto_endpoint, "us-east-1")
    now = datetime(2026, 3, 20, tzinfo=UTC)
    cloudtrail = boto3.client("cloudtrail", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    t = [datetime(2026, 3, day, tzinfo=UTC) for day in range(1, 6)]
    with Stubber(cloudtrail) as stub:
        # Newest first, as CloudTrail returns them: enabled on day 3, disabled on days 1, 4 and 5.
        stub.add_response("lookup_events", _lookup_response(key.arn, t[2]))
        stub.add_response("lookup_events", _lookup_response(key.arn, t[4], t[3], t[0]))
        disabled_at = cloudtrail_disabled_at(cloudtrail, key, now=now)
        stub.assert_no_pending_responses()

    assert disabled_at == t[3]


def test_status_uses_cloudtrail_when_the_revoked_at_tag_is_missing(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    revoked = "atlassian-cmk:enabled: false\n  atlassian-cmk:revocation: {reason: console, ticket: SEC-7}"
    project = stack_dir(tmp_path, {"atlassian-cmk:enabled: true": revoked})
    provision(project, moto_endpoint)  # disabled by "the provider", so no revoked-at tag
    keys = [live(moto_endpoint, region) for region in REGIONS]
    disabled_at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    now = disabled_at + timedelta(days=12)
    stubs: dict[str, Any] = {}
    for key in keys:
        client = boto3.client("cloudtrail", region_name=key.region, aws_access_key_id="x", aws_secret_access_key="x")
        stub = Stubber(client)
        stub.add_response("lookup_events", {"Events": []})  # EnableKey
        stub.add_response("lookup_events", _lookup_response(key.arn, disabled_at))  # DisableKey
        stub.activate()
        stubs[key.region] = client
    kms = fast_client_factory(moto_endpoint)
    rt = Runtime(
        client_factory=lambda service, region: stubs[region] if service == "cloudtrail" else kms(service, region),
        now=lambda: now,
    )

    code, document = status_json(project, rt, capsys)

    assert code == ExitCode.AS_DECLARED
    assert document["clock"]["source"] == "cloudtrail"
    assert document["clock"]["revoked_at"] == iso(disabled_at)
    assert document["clock"]["within_reinstatement_window"] is False
    assert document["clock"]["days_left_to_reinstate"] == -2.0


def test_collect_cloudtrail_evidence_turns_a_failed_lookup_into_a_reason(tmp_path: Path, moto_endpoint: str) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    kms(moto_endpoint, "us-east-1").disable_key(KeyId=live(moto_endpoint, "us-east-1").key_id)
    client = boto3.client("cloudtrail", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_client_error("lookup_events", service_error_code="AccessDeniedException", service_message="no")
        evidence = collect_cloudtrail_evidence(
            [live(moto_endpoint, r) for r in REGIONS], lambda service, region: client, now=datetime.now(UTC)
        )

    assert set(evidence) == {"us-east-1"}  # the enabled key needs no lookup
    assert evidence["us-east-1"].disabled_at is None
    assert evidence["us-east-1"].error == "CloudTrail lookup failed: AccessDeniedException: no"
