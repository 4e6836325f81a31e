"""`cmkctl drill` against moto's HTTP server: every step ends as the lifecycle says it must."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace
from typing import Any

import pytest

from atlassian_cmk.cli.drill import DRILL_PREFIX, DrillRefused, run_drill
from atlassian_cmk.cli.main import main
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.naming import TAG_DRILL, TAG_REVOKED_AT, alias_name
from tests.support.aws import client_factory_for
from tests.support.cmkctl import unwrap


def test_drill_walks_the_lifecycle_and_leaves_disabled_drill_keys(aws: Any) -> None:
    out = io.StringIO()
    result = run_drill(cli=main, realm="us", out=out, client_factory=aws)

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
    assert "; keys enrolled in account " in unwrap(result.step("status: healthy again").output).splitlines()[0]
    assert "re-encryption" in result.step("revoke during re-encryption: refused by the guard").output
    revoked_status = result.step("status: revoked, deadlines shown").output
    assert "Disabled" in revoked_status and "reinstatement possible until" in " ".join(revoked_status.split())
    text = out.getvalue()
    assert "Verdict: PASS" in text and "Timeline" in text
    # What the demo prints: every line within 100 columns (the steps' output quoted too), and no
    # sentence said twice within one command's report.
    assert max(len(line) for line in text.splitlines()) <= 100, text
    for step in result.steps:
        said = [s for s in re.split(r"(?<=\.)\s+", " ".join(step.output.split())) if s]
        assert not {s for s in said if said.count(s) > 1}, step.output

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
        """A client that knows its endpoint (AWS's own) and fails any request."""
        return SimpleNamespace(meta=SimpleNamespace(endpoint_url=f"https://{service}.{region}.amazonaws.com"))

    with pytest.raises(DrillRefused, match="--real-account"):
        run_drill(cli=main, client_factory=no_aws, out=io.StringIO())


def test_drill_on_a_real_account_needs_the_account_id_typed(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real = {("kms", "us-east-1"): "https://kms.us-east-1.amazonaws.com"}  # as resolved; clients still reach moto
    with pytest.raises(DrillRefused, match="expected 123456789012"):
        run_drill(
            cli=main, client_factory=aws, real_account=True, ask=lambda prompt: "yes", out=io.StringIO(), endpoints=real
        )
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
        result = run_drill(cli=main, realm="us", out=io.StringIO(), client_factory=client_factory_for(proxy.url))
        sent = proxy.operations()
    assert result.passed
    declared = {permission.split(":", 1)[1] for permission in DRILL_PERMISSIONS}
    assert sent <= declared, sent - declared
    assert {"CreateKey", "DisableKey", "EnableKey"} <= sent
    assert not sent & {"ScheduleKeyDeletion", "CancelKeyDeletion", "PutKeyPolicy", "DeleteAlias"}


# Issue 14: a drill you can run twice and interrupt -------------------------------------------------------


def test_two_drills_started_in_the_same_second_get_different_names() -> None:
    from datetime import UTC, datetime

    from atlassian_cmk.drill_rules import drill_stack_name

    moment = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
    names = {drill_stack_name(moment) for _ in range(50)}
    assert len(names) == 50 and all(name.startswith("drill-20261129120000-") for name in names)


def test_two_concurrent_drills_both_pass_with_their_own_keys(moto_endpoint: str) -> None:
    import subprocess

    from tests.support.aws import aws_env
    from tests.support.cmkctl import CMKCTL

    env = {**{k: v for k, v in __import__("os").environ.items() if not k.startswith("AWS_")}, **aws_env(moto_endpoint)}
    runs = [
        subprocess.Popen(
            [str(CMKCTL), "drill", "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        for _ in range(2)
    ]
    documents = []
    for process in runs:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
        documents.append(__import__("json").loads(out))
    stacks = {document["stack"] for document in documents}
    arns = {row["key_arn"] for document in documents for row in document["regions"]}
    assert len(stacks) == 2 and len(arns) == 4
    kms = client_factory_for(moto_endpoint)("kms", "us-east-1")
    for stack in stacks:
        assert kms.describe_key(KeyId=alias_name(stack))["KeyMetadata"]["KeyState"] == "Disabled"


def test_an_interrupted_drill_disables_and_tags_its_keys_and_never_deletes(moto_endpoint: str) -> None:
    from atlassian_cmk.cli.drill import DrillInterrupted
    from atlassian_cmk.drill_rules import TAG_DRILL_CLEANUP
    from tests.support.faults import fault_proxy

    def interrupted_at_revoke(argv: list[str], **kwargs: Any) -> int:
        if "revoke" in argv and "Revocation drill" in argv:
            raise KeyboardInterrupt
        return main(argv, **kwargs)

    with fault_proxy(moto_endpoint) as proxy:
        aws = client_factory_for(proxy.url)
        with pytest.raises(DrillInterrupted, match=r"its 2 key\(s\) are disabled and tagged"):
            run_drill(cli=interrupted_at_revoke, client_factory=aws, out=io.StringIO())
        sent = proxy.operations()
    for region in ("us-east-1", "us-west-2"):
        client = client_factory_for(moto_endpoint)("kms", region)
        (key,) = client.list_keys()["Keys"]
        assert client.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
        tags = {t["TagKey"]: t["TagValue"] for t in client.list_resource_tags(KeyId=key["KeyId"])["Tags"]}
        assert tags[TAG_DRILL_CLEANUP].endswith(" interrupted") and tags[TAG_DRILL] == "true"
    assert not sent & {"ScheduleKeyDeletion", "DeleteAlias"}


def test_cmkctl_drill_interrupted_is_exit_130_in_one_line(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import atlassian_cmk.cli.drill as drill_module

    def walk_then_ctrl_c(*args: Any) -> None:  # Ctrl-C right after the keys were created
        raise KeyboardInterrupt

    monkeypatch.setattr(drill_module, "_walk", walk_then_ctrl_c)
    assert main(["drill"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "cmkctl: interrupted: drill interrupted; its 2 key(s) are disabled and tagged atlassian-cmk:drill-cleanup "
        "(never deleted)"
    ]


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_CLOUDTRAIL"])
def test_a_service_specific_endpoint_off_this_machine_refuses_the_drill(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str
) -> None:
    monkeypatch.setenv(variable, "https://user:pw@kms.example.invalid")  # wins over AWS_ENDPOINT_URL in botocore

    assert main(["drill"]) == ExitCode.REFUSED

    err = capsys.readouterr().err
    service = variable.rsplit("_", 1)[1].lower()
    assert f"{service} would go to https://***@kms.example.invalid, which is not this machine" in err
    assert "pw" not in err and err.count("\n") == 1
    assert client_factory_for(moto_endpoint)("kms", "us-east-1").list_keys()["Keys"] == []


def test_a_config_file_endpoint_off_this_machine_refuses_the_drill(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    # Every service goes to the emulator through the profile's endpoint_url, except kms, which the
    # profile's services section sends elsewhere (botocore: config_service before config_global).
    config = tmp_path / "config"
    config.write_text(
        f"[default]\nendpoint_url = {moto_endpoint}\nservices = remote\n\n"
        "[services remote]\nkms =\n  endpoint_url = https://kms.example.invalid\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_ENDPOINT_URL")

    assert main(["drill"]) == ExitCode.REFUSED
    err = capsys.readouterr().err
    assert "refused: kms would go to https://kms.example.invalid, which is not this machine" in err
    assert client_factory_for(moto_endpoint)("kms", "us-east-1").list_keys()["Keys"] == []


def test_cmkctl_drill_with_aws_unreachable_is_exit_3(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from atlassian_cmk.cli.runtime import Runtime
    from tests.support.faults import dead_endpoint, fast_client_factory

    assert main(["drill"], runtime=Runtime(client_factory=fast_client_factory(dead_endpoint()))) == 3
    err = capsys.readouterr().err
    assert err.startswith("cmkctl drill: cannot reach AWS (") and err.endswith("; nothing was created\n")


# Adversarial review of issue 14: Ctrl-C anywhere in a drill leaves no drill key enabled ------------------


def _drill_process(endpoint: str) -> Any:
    import os
    import subprocess

    from tests.support.aws import aws_env
    from tests.support.cmkctl import CMKCTL

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.Popen(
        [str(CMKCTL), "drill"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**env, **aws_env(endpoint)},
    )


def _drill_keys(endpoint: str) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """Per region: each key's state and tags, read from the emulator directly."""
    keys: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for region in ("us-east-1", "us-west-2"):
        client = client_factory_for(endpoint)("kms", region)
        keys[region] = [
            (
                client.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"],
                {t["TagKey"]: t["TagValue"] for t in client.list_resource_tags(KeyId=k["KeyId"])["Tags"]},
            )
            for k in client.list_keys()["Keys"]
        ]
    return keys


def test_ctrl_c_during_a_drill_step_runs_the_drill_clean_up_then_exits_130(moto_endpoint: str) -> None:
    import signal

    from atlassian_cmk.drill_rules import TAG_DRILL_CLEANUP
    from tests.support.faults import fault_proxy

    with fault_proxy(moto_endpoint) as proxy:
        proxy.hold("DisableKey")  # the drill's revoke step (a nested `cmkctl revoke`) hangs on DisableKey
        process = _drill_process(proxy.url)
        assert proxy.holding.wait(timeout=60)
        process.send_signal(signal.SIGINT)
        proxy.hold()  # from now on DisableKey is answered: the clean-up's own requests go through
        proxy.release.set()
        _, err = process.communicate(timeout=60)

    assert process.returncode == 130, err.decode()
    assert err.decode().strip().splitlines() == [
        "cmkctl: interrupted: drill interrupted; its 2 key(s) are disabled and tagged atlassian-cmk:drill-cleanup "
        "(never deleted)"
    ]
    for region, keys in _drill_keys(moto_endpoint).items():
        assert [(state, tags[TAG_DRILL_CLEANUP].endswith(" interrupted")) for state, tags in keys] == [
            ("Disabled", True)
        ], region


def test_ctrl_c_while_create_key_is_unanswered_still_disables_the_created_key(moto_endpoint: str) -> None:
    import signal

    from atlassian_cmk.drill_rules import TAG_DRILL_CLEANUP
    from tests.support.faults import fault_proxy

    with fault_proxy(moto_endpoint) as proxy:
        proxy.hold_responses("CreateKey")  # KMS created the key; its answer never reaches cmkctl
        process = _drill_process(proxy.url)
        assert proxy.holding.wait(timeout=60)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)

    assert process.returncode == 130, err.decode()
    assert err.decode().strip().splitlines() == [
        "cmkctl: interrupted: drill interrupted; its 1 key(s) are disabled and tagged atlassian-cmk:drill-cleanup "
        "(never deleted)"
    ]
    keys = _drill_keys(moto_endpoint)
    assert keys["us-west-2"] == []
    ((state, tags),) = keys["us-east-1"]
    assert state == "Disabled" and tags[TAG_DRILL_CLEANUP].endswith(" interrupted") and tags[TAG_DRILL] == "true"
