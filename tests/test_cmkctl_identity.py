"""cmkctl acts on the enrolled key ARNs, never on whatever the alias names (the emulator, real HTTP).

The attack of issue 10: someone with kms:UpdateAlias repoints alias/atlassian-cmk/prod at another
key. Once the stack records `enrolledKeys`, status reports ALIAS MOVED, revoke and restore change
the enrolled keys (addressed by key ID in the ARN's region) and never report a decoy as done.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from atlassian_cmk import config_edit
from atlassian_cmk.aws.provision import ProvisionedKey
from atlassian_cmk.cli.main import Runtime, main
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.naming import TAG_KEY_PAIR, TAG_REGION, TAG_STACK
from atlassian_cmk.stack_file import load_stack_config
from tests.support.cmkctl import STACK, kms, provision, runtime, stack_dir, unwrap
from tests.support.faults import dead_endpoint

ALIAS = f"alias/atlassian-cmk/{STACK}"


def enroll_file(project: Path, keys: list[ProvisionedKey]) -> None:
    """The stack file as a reviewed `cmkctl enroll --write-config` leaves it."""
    path = project / f"Pulumi.{STACK}.yaml"
    path.write_text(config_edit.with_enrolled_keys(path.read_text(), {k.region: k.arn for k in keys}))


def decoy(endpoint: str, region: str, *, copy_tags: bool = False) -> dict[str, Any]:
    """Another key in the region (another team's), optionally wearing the stack's tags."""
    tags = {TAG_STACK: STACK, TAG_REGION: region, TAG_KEY_PAIR: "current"} if copy_tags else {"team": "logs"}
    metadata = kms(endpoint, region).create_key(
        Description="someone else's key", Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()]
    )["KeyMetadata"]
    return dict(metadata)


def repoint(endpoint: str, region: str, key_id: str) -> None:
    kms(endpoint, region).update_alias(AliasName=ALIAS, TargetKeyId=key_id)


def state(endpoint: str, region: str, key_id: str) -> str:
    return str(kms(endpoint, region).describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"])


def run(project: Path, rt: Runtime, *args: str) -> int:
    return main([*args, "--project-dir", str(project)], runtime=rt)


@pytest.fixture
def enrolled(tmp_path: Path, moto_endpoint: str) -> tuple[Path, dict[str, ProvisionedKey]]:
    project = stack_dir(tmp_path)
    keys = provision(project, moto_endpoint)
    enroll_file(project, keys)
    return project, {k.region: k for k in keys}


def test_status_with_a_repointed_alias_is_alias_moved_with_the_command_that_puts_it_back(
    enrolled: tuple[Path, dict[str, ProvisionedKey]], moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project, keys = enrolled
    other = decoy(moto_endpoint, "us-west-2")
    repoint(moto_endpoint, "us-west-2", other["KeyId"])
    capsys.readouterr()

    code = run(project, runtime(moto_endpoint), "status", "--json")

    document = json.loads(unwrap(capsys.readouterr().out))
    assert code == ExitCode.ALIAS_MOVED
    assert document["enrolled"] is True
    moved = [f for f in document["findings"] if f["kind"] == "alias-moved"]
    assert [f["region"] for f in moved] == ["us-west-2"]
    west = keys["us-west-2"]
    assert f"{ALIAS} names {other['Arn']}, not the enrolled key {west.arn}" in moved[0]["message"]
    assert (
        f"aws kms update-alias --alias-name {ALIAS} --target-key-id {west.key_id} --region us-west-2"
        in moved[0]["message"]
    )
    assert document["regions"][1]["key_arn"] == west.arn  # the enrolled key is what status reports
    assert document["regions"][1]["alias_target"] == other["Arn"]


def test_revoke_with_a_repointed_alias_disables_every_enrolled_key_and_never_the_decoy(
    enrolled: tuple[Path, dict[str, ProvisionedKey]], moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project, keys = enrolled
    other = decoy(moto_endpoint, "us-west-2", copy_tags=True)
    repoint(moto_endpoint, "us-west-2", other["KeyId"])

    code = run(project, runtime(moto_endpoint), "revoke", "--reason", "Suspected breach", "--ticket", "SEC-1", "--yes")

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.ALIAS_MOVED
    for key in keys.values():
        assert state(moto_endpoint, key.region, key.key_id) == "Disabled"
    assert state(moto_endpoint, "us-west-2", other["KeyId"]) == "Enabled"
    # each region's row with its key's ARN (printed on the next line; unwrap joins them)
    verified = [line for line in out.splitlines() if "verified" in line]
    assert len(verified) == 2 and all(other["Arn"] not in line for line in verified), out
    assert any(keys["us-west-2"].arn in line for line in verified)
    assert f"ALIAS MOVED: us-west-2: {ALIAS} names {other['Arn']}" in out


def test_restore_with_a_repointed_alias_enables_the_enrolled_keys_and_reports_the_alias(
    enrolled: tuple[Path, dict[str, ProvisionedKey]], moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project, keys = enrolled
    for key in keys.values():
        kms(moto_endpoint, key.region).disable_key(KeyId=key.key_id)
    other = decoy(moto_endpoint, "us-east-1")
    kms(moto_endpoint, "us-east-1").disable_key(KeyId=other["KeyId"])
    repoint(moto_endpoint, "us-east-1", other["KeyId"])

    code = run(project, runtime(moto_endpoint), "restore", "--ticket", "SEC-2", "--yes")

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.ALIAS_MOVED
    for key in keys.values():
        assert state(moto_endpoint, key.region, key.key_id) == "Enabled"
    assert state(moto_endpoint, "us-east-1", other["KeyId"]) == "Disabled"
    assert "ALIAS MOVED: us-east-1" in out


def test_a_decoy_with_copied_tags_does_not_hide_the_real_key_disabled_out_of_band(
    enrolled: tuple[Path, dict[str, ProvisionedKey]], moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project, keys = enrolled
    other = decoy(moto_endpoint, "us-west-2", copy_tags=True)
    repoint(moto_endpoint, "us-west-2", other["KeyId"])
    kms(moto_endpoint, "us-west-2").disable_key(KeyId=keys["us-west-2"].key_id)
    capsys.readouterr()

    code = run(project, runtime(moto_endpoint), "status", "--json")

    document = json.loads(unwrap(capsys.readouterr().out))
    assert code == ExitCode.ALIAS_MOVED
    kinds = {f["kind"] for f in document["findings"]}
    assert {"alias-moved", "split", "drift"} <= kinds
    assert document["regions"][1]["key_state"] == "Disabled"


def test_before_enrollment_status_and_revoke_work_through_the_alias_and_say_not_enrolled(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    keys = provision(project, moto_endpoint)

    status_code = run(project, runtime(moto_endpoint), "status")
    status_out = unwrap(capsys.readouterr().out)
    revoke_code = run(project, runtime(moto_endpoint), "revoke", "--reason", "Drill", "--ticket", "SEC-3", "--yes")
    revoke_out = unwrap(capsys.readouterr().out)

    assert status_code == ExitCode.AS_DECLARED
    assert status_out.splitlines()[0].endswith(
        "keys via alias/atlassian-cmk/prod (not enrolled); endpoint " + moto_endpoint
    )
    assert "NOT ENROLLED" in status_out and "cmkctl enroll --write-config" in status_out
    assert revoke_code == ExitCode.AS_DECLARED
    assert "NOT ENROLLED" in revoke_out and "cmkctl enroll --write-config" in revoke_out
    for key in keys:
        assert state(moto_endpoint, key.region, key.key_id) == "Disabled"


def test_enroll_prints_then_writes_the_block_keeping_comments_and_the_tools_use_it(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    keys = provision(project, moto_endpoint)
    path = project / f"Pulumi.{STACK}.yaml"
    original = path.read_text()

    printed = run(project, runtime(moto_endpoint), "enroll")
    printed_out = unwrap(capsys.readouterr().out)
    unchanged = path.read_text()
    written = run(project, runtime(moto_endpoint), "enroll", "--write-config")
    written_out = unwrap(capsys.readouterr().out)
    again = run(project, runtime(moto_endpoint), "enroll")
    again_out = unwrap(capsys.readouterr().out)

    assert (printed, written, again) == (ExitCode.AS_DECLARED,) * 3
    assert unchanged == original
    for key in keys:
        assert f"    {key.region}: {key.arn}" in printed_out
        assert f"+    {key.region}: {key.arn}" in written_out
    text = path.read_text()
    assert text.startswith(original.rstrip("\n"))  # every comment and value kept; the block appended
    config = load_stack_config(project, STACK)
    assert config.enrolled_keys is not None
    assert config.enrolled_keys.as_config() == {key.region: key.arn for key in keys}
    assert "already enrolls these keys; nothing to commit" in again_out
    assert printed_out.splitlines()[0].startswith("Account 123456789012 as ")  # who and where, first
    assert run(project, runtime(moto_endpoint), "status") == ExitCode.AS_DECLARED
    assert "; keys enrolled in account 123456789012; " in unwrap(capsys.readouterr().out).splitlines()[0]


def test_enroll_refuses_a_key_that_does_not_look_like_the_stacks(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    other = decoy(moto_endpoint, "us-west-2", copy_tags=True)
    repoint(moto_endpoint, "us-west-2", other["KeyId"])
    path = project / f"Pulumi.{STACK}.yaml"
    before = path.read_text()

    code = run(project, runtime(moto_endpoint), "enroll", "--write-config")

    err = capsys.readouterr().err
    assert code == ExitCode.REFUSED
    assert path.read_text() == before
    assert f"us-west-2: {other['Arn']} does not look like the stack's key" in err
    # Copied tags do not copy the key policy (judged as key-policy-keeps-access judges one).
    assert "Atlassian's statement 'SAMPLEAtlassianUseOfTheKey'" in err
    assert "is missing or altered in the key policy" in err
    assert "us-east-1" not in err


def test_enroll_before_the_first_deployment_points_to_pulumi_up(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)

    code = run(project, runtime(moto_endpoint), "enroll")

    err = capsys.readouterr().err
    assert code == ExitCode.REFUSED
    assert f"us-east-1: no key behind {ALIAS}: run `pulumi up` first" in err


# The merge of issue 10 with issue 14: the enrolled identity in who/where and the change document. ----------


def test_revoke_json_with_a_repointed_alias_is_the_change_document_with_exit_6_and_the_enrolled_context(
    enrolled: tuple[Path, dict[str, ProvisionedKey]], moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project, keys = enrolled
    other = decoy(moto_endpoint, "us-west-2", copy_tags=True)
    repoint(moto_endpoint, "us-west-2", other["KeyId"])
    capsys.readouterr()

    code = run(
        project,
        runtime(moto_endpoint),
        "revoke",
        "--reason",
        "Breach",
        "--ticket",
        "SEC-4",
        "--yes",
        "--format",
        "json",
    )

    document = json.loads(unwrap(capsys.readouterr().out))  # stdout is the document alone
    assert code == document["exit_code"] == ExitCode.ALIAS_MOVED
    assert document["command"] == "revoke" and document["outcome"] == "alias-moved"
    assert document["context"]["enrolled"] is True and document["context"]["alias"] == ALIAS
    assert document["context"]["enrolled_keys"] == {key.region: key.arn for key in keys.values()}
    assert [r["key_arn"] for r in document["regions"]] == [key.arn for key in keys.values()]
    assert [r["action"] for r in document["regions"]] == ["disabled", "disabled"]
    assert any(m.startswith(f"ALIAS MOVED: us-west-2: {ALIAS} names {other['Arn']}") for m in document["messages"])


def test_enroll_json_is_the_shared_change_document(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    keys = provision(project, moto_endpoint)
    capsys.readouterr()

    code = run(project, runtime(moto_endpoint), "enroll", "--write-config", "--format", "json")

    document = json.loads(unwrap(capsys.readouterr().out))
    assert code == document["exit_code"] == ExitCode.AS_DECLARED
    assert document["schema_version"] == 1 and document["command"] == "enroll"
    assert document["context"]["account"] == "123456789012"
    assert document["context"]["enrolled"] is False and document["context"]["enrolled_keys"] is None
    assert document["enrolled_keys"] == {key.region: key.arn for key in keys}
    assert document["config_written"] is True
    assert [(r["region"], r["key_arn"], r["action"]) for r in document["regions"]] == [
        (key.region, key.arn, "none") for key in keys
    ]
    assert load_stack_config(project, STACK).enrolled_keys is not None


def test_enroll_json_refusal_names_the_problems_and_writes_nothing(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    other = decoy(moto_endpoint, "us-west-2")
    repoint(moto_endpoint, "us-west-2", other["KeyId"])
    original = (project / f"Pulumi.{STACK}.yaml").read_text()
    capsys.readouterr()

    code = run(project, runtime(moto_endpoint), "enroll", "--write-config", "--format", "json")

    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert code == document["exit_code"] == ExitCode.REFUSED
    assert document["enrolled_keys"] is None and document["config_written"] is False
    assert {r["action"] for r in document["regions"]} == {"refused"}
    assert any(m.startswith(f"us-west-2: {other['Arn']} does not look like") for m in document["messages"])
    assert "REFUSED" in captured.err
    assert (project / f"Pulumi.{STACK}.yaml").read_text() == original


def test_the_who_where_line_flags_enrolled_keys_outside_the_callers_account() -> None:
    from atlassian_cmk.documents import RunContext

    arns = {"us-east-1": "arn:aws:kms:us-east-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab"}
    caller = "arn:aws:sts::123456789012:assumed-role/BreakGlass/alice"
    elsewhere = RunContext("123456789012", caller, ("us-east-1",), "AWS", alias=ALIAS, enrolled_keys=arns)
    before = RunContext("123456789012", caller, ("us-east-1",), "AWS", alias=ALIAS)

    assert "; keys enrolled in account 210987654321 (NOT the caller's account); endpoint AWS" in elsewhere.line()
    assert f"; keys via {ALIAS} (not enrolled); endpoint AWS" in before.line()
    assert before.to_json()["enrolled"] is False and elsewhere.to_json()["enrolled_keys"] == arns


# The adversarial review of issue 10. ------------------------------------------------------------------------


def test_enroll_refuses_a_decoy_with_copied_tags_and_policy_while_the_real_key_exists(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    keys = {k.region: k for k in provision(project, moto_endpoint)}
    west = kms(moto_endpoint, "us-west-2")
    policy = west.get_key_policy(KeyId=keys["us-west-2"].key_id, PolicyName="default")["Policy"]
    tags = {TAG_STACK: STACK, TAG_REGION: "us-west-2", TAG_KEY_PAIR: "current"}
    other = west.create_key(
        Description="decoy", Policy=policy, Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()]
    )["KeyMetadata"]
    repoint(moto_endpoint, "us-west-2", other["KeyId"])
    path = project / f"Pulumi.{STACK}.yaml"
    before = path.read_text()

    code = run(project, runtime(moto_endpoint), "enroll", "--write-config")

    err = capsys.readouterr().err
    assert code == ExitCode.REFUSED and path.read_text() == before
    assert (
        f"us-west-2: 2 keys carry the stack's tags ({other['Arn']} behind the alias, and {keys['us-west-2'].arn})"
        in err
    )
    assert "us-east-1:" not in err


def test_enroll_refusal_says_a_missing_tag_in_words_not_python(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    other = decoy(moto_endpoint, "us-west-2")
    repoint(moto_endpoint, "us-west-2", other["KeyId"])

    run(project, runtime(moto_endpoint), "enroll")

    err = capsys.readouterr().err
    assert f"tag {TAG_STACK} is missing, expected {STACK}" in err
    assert "None" not in err and "'current'" not in err


def foreign_region_file(project: Path, keys: list[ProvisionedKey], endpoint: str) -> dict[str, Any]:
    """enrolledKeys with an extra region outside the realm naming another team's key (the review's case)."""
    foreign = decoy(endpoint, "eu-west-1")
    path = project / f"Pulumi.{STACK}.yaml"
    arns = {k.region: k.arn for k in keys} | {"eu-west-1": foreign["Arn"]}
    path.write_text(config_edit.with_enrolled_keys(path.read_text(), arns))
    return foreign


def test_revoke_never_changes_an_enrolled_key_that_is_not_the_stacks(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    keys = provision(project, moto_endpoint)
    foreign = foreign_region_file(project, keys, moto_endpoint)

    code = run(project, runtime(moto_endpoint), "revoke", "--reason", "Suspected breach", "--ticket", "SEC-1", "--yes")

    out = unwrap(capsys.readouterr().out)
    assert code != ExitCode.AS_DECLARED
    assert state(moto_endpoint, "eu-west-1", foreign["KeyId"]) == "Enabled"
    tags = kms(moto_endpoint, "eu-west-1").list_resource_tags(KeyId=foreign["KeyId"])["Tags"]
    assert [t["TagKey"] for t in tags] == ["team"]  # not tagged either
    for key in keys:  # the keys Atlassian holds are still revoked
        assert state(moto_endpoint, key.region, key.key_id) == "Disabled"
    assert f"REFUSED: the key has no {TAG_STACK} tag, not {STACK}" in out
    assert out.count(foreign["Arn"]) == 1  # on the region's own line, not again in its detail
    assert "create-alias" not in out


def test_status_names_an_enrolled_key_that_is_not_the_stacks_and_never_advises_the_alias_onto_it(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    keys = provision(project, moto_endpoint)
    foreign = foreign_region_file(project, keys, moto_endpoint)
    capsys.readouterr()

    code = run(project, runtime(moto_endpoint), "status", "--json")

    document = json.loads(unwrap(capsys.readouterr().out))
    messages = [f["message"] for f in document["findings"]]
    assert code == ExitCode.KEY_LOST
    assert any(m.startswith(f"NOT THE STACK'S KEY: eu-west-1: the enrolled key {foreign['Arn']}") for m in messages)
    assert any(m.startswith("DROPPED: ") for m in messages)
    assert not any("create-alias" in m or "update-alias" in m for m in messages), messages


def test_status_with_an_unreachable_kms_endpoint_is_unreachable_not_alias_moved(
    enrolled: tuple[Path, dict[str, ProvisionedKey]], capsys: pytest.CaptureFixture[str]
) -> None:
    project, _ = enrolled
    dead = dead_endpoint()

    code = run(project, runtime(lambda _region: dead, attempts=1), "status", "--json")

    document = json.loads(unwrap(capsys.readouterr().out))
    assert code == ExitCode.UNREACHABLE
    kinds = {f["kind"] for f in document["findings"]}
    assert "alias-moved" not in kinds and "unreachable" in kinds


def test_revoke_before_enrollment_with_a_region_not_deployed_says_not_deployed_not_key_lost(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    keys = {k.region: k for k in provision(project, moto_endpoint)}
    kms(moto_endpoint, "us-west-2").delete_alias(AliasName=ALIAS)

    code = run(project, runtime(moto_endpoint), "revoke", "--reason", "Drill", "--ticket", "SEC-1", "--yes")

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.NOT_DEPLOYED
    assert "NOT-DEPLOYED" in out and "KEY-LOST" not in out
    assert f"NOT DEPLOYED: no key behind {ALIAS} yet (run `pulumi up`)" in out
    assert state(moto_endpoint, "us-east-1", keys["us-east-1"].key_id) == "Disabled"
