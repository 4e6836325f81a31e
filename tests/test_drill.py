"""`cmkctl drill` against moto's HTTP server: every step ends as the lifecycle says it must."""

from __future__ import annotations

import io
from typing import Any

import pytest

from atlassian_cmk.cli.drill import DRILL_PREFIX, DrillRefused, run_drill
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.naming import TAG_DRILL, TAG_REVOKED_AT, alias_name


def test_drill_walks_the_lifecycle_and_leaves_disabled_drill_keys(aws: Any) -> None:
    out = io.StringIO()
    result = run_drill(realm="us", out=out, client_factory=aws)

    assert result.stack.startswith(DRILL_PREFIX)
    assert [(s.name, s.outcome) for s in result.steps] == [
        ("enroll: the keys' ARNs recorded as enrolledKeys", ExitCode.AS_DECLARED),
        ("status: healthy, enrolled keys read by ARN", ExitCode.AS_DECLARED),
        ("revoke during re-encryption: refused by the guard", ExitCode.REFUSED),
        ("revoke: every region disabled and verified", ExitCode.AS_DECLARED),
        ("status: revoked, deadlines shown", ExitCode.AS_DECLARED),
        ("restore: every region enabled and verified", ExitCode.AS_DECLARED),
        ("status: healthy again", ExitCode.AS_DECLARED),
        ("leave the drill keys disabled", ExitCode.AS_DECLARED),
    ]
    assert result.passed
    assert "keys: enrolled key ARNs" in result.step("status: healthy again").output
    assert "re-encryption" in result.step("revoke during re-encryption: refused by the guard").output
    revoked_status = result.step("status: revoked, deadlines shown").output
    assert "Disabled" in revoked_status and "reinstatement possible until" in revoked_status
    text = out.getvalue()
    assert "Verdict: PASS" in text and "Timeline" in text

    assert [k.region for k in result.keys] == ["us-east-1", "us-west-2"]
    for key in result.keys:
        kms = aws("kms", key.region)
        metadata = kms.describe_key(KeyId=alias_name(result.stack))["KeyMetadata"]
        assert metadata["KeyId"] == key.key_id
        assert metadata["KeyState"] == "Disabled"
        tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key.key_id)["Tags"]}
        assert tags[TAG_DRILL] == "true" and TAG_REVOKED_AT in tags


def test_drill_refuses_a_real_account_without_the_flag_before_any_aws_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)

    def no_aws(service: str, region: str) -> Any:
        raise AssertionError(f"no AWS call expected, got {service} in {region}")

    with pytest.raises(DrillRefused, match="--real-account"):
        run_drill(client_factory=no_aws, out=io.StringIO())


def test_drill_on_a_real_account_needs_the_account_id_typed(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # looks like a real account; clients still reach moto
    with pytest.raises(DrillRefused, match="expected '123456789012'"):
        run_drill(client_factory=aws, real_account=True, ask=lambda prompt: "yes", out=io.StringIO())
    assert aws("kms", "us-east-1").list_keys()["Keys"] == []


def test_cmkctl_drill_command_exits_zero_on_the_emulator(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from atlassian_cmk.cli.main import main

    assert main(["drill", "--realm", "sg"]) == 0
    out = capsys.readouterr().out
    assert "realm sg (ap-southeast-1)" in out and "Verdict: PASS" in out


def test_the_drill_sends_only_the_operations_it_declares_and_never_deletes(moto_endpoint: str) -> None:
    from atlassian_cmk.cli.drill import DRILL_PERMISSIONS
    from tests.support.aws import client_factory_for
    from tests.support.faults import fault_proxy

    with fault_proxy(moto_endpoint) as proxy:
        result = run_drill(realm="us", out=io.StringIO(), client_factory=client_factory_for(proxy.url))
        sent = proxy.operations()
    assert result.passed
    declared = {permission.split(":", 1)[1] for permission in DRILL_PERMISSIONS}
    assert sent <= declared, sent - declared
    assert {"CreateKey", "DisableKey", "EnableKey"} <= sent
    assert not sent & {"ScheduleKeyDeletion", "CancelKeyDeletion", "PutKeyPolicy", "DeleteAlias"}
