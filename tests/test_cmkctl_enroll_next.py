"""`cmkctl enroll --next` against the emulator: the next generation's ARNs recorded as `nextKeys`.

The keys behind `alias/atlassian-cmk/<stack>/next` are checked as `enroll` checks the current ones
(tags naming the next generation, key policy, one account, not pending deletion), and recorded only
while the program creates them (status preparing or in-progress), beside recorded enrolledKeys.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlassian_cmk import config_edit
from atlassian_cmk.aws.provision import ProvisionedKey, create_key_pair
from atlassian_cmk.cli.main import main
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.stack_file import load_stack_config
from tests.support.cmkctl import STACK, emulator_clients, kms, runtime, stack_dir
from tests.support.faults import dead_endpoint

NEXT_ALIAS = f"alias/atlassian-cmk/{STACK}/next"


def reencrypting(tmp_path: Path, status: str = "preparing") -> Path:
    """The real stack file with re-encryption at `status`."""
    return stack_dir(tmp_path, {"    status: none": f"    status: {status}\n    ticket: PS-5678"})


def deploy(project: Path, endpoint: str, key_pair: str) -> dict[str, ProvisionedKey]:
    """One generation as the program's apply leaves it (tags, key policy, alias of its role)."""
    config = load_stack_config(project, STACK)
    keys = create_key_pair(config, STACK, key_pair=key_pair, client_factory=emulator_clients(endpoint))
    return {key.region: key for key in keys}


def arns(keys: dict[str, ProvisionedKey]) -> dict[str, str]:
    return {region: key.arn for region, key in keys.items()}


@pytest.fixture
def prepared(tmp_path: Path, moto_endpoint: str) -> tuple[Path, dict[str, ProvisionedKey], dict[str, ProvisionedKey]]:
    """A `preparing` stack with its current generation enrolled and both generations deployed."""
    project = reencrypting(tmp_path)
    current = deploy(project, moto_endpoint, "current")
    path = project / f"Pulumi.{STACK}.yaml"
    path.write_text(config_edit.with_enrolled_keys(path.read_text(), arns(current)))
    return project, current, deploy(project, moto_endpoint, "next")


def run(project: Path, endpoint: str, *args: str) -> int:
    return main(["enroll", "--next", *args, "--project-dir", str(project)], runtime=runtime(endpoint))


def test_enroll_next_prints_then_writes_next_keys_touching_no_other_byte(
    prepared: tuple[Path, dict[str, ProvisionedKey], dict[str, ProvisionedKey]],
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project, current, following = prepared
    path = project / f"Pulumi.{STACK}.yaml"
    original = path.read_text()

    printed = run(project, moto_endpoint)
    printed_out = capsys.readouterr().out
    unchanged = path.read_text()
    written = run(project, moto_endpoint, "--write-config")
    written_out = capsys.readouterr().out
    again = run(project, moto_endpoint)
    again_out = capsys.readouterr().out

    assert (printed, written, again) == (ExitCode.AS_DECLARED,) * 3
    assert unchanged == original
    assert "  atlassian-cmk:nextKeys:" in printed_out
    for region, key in following.items():
        assert f"    {region}: {key.arn}" in printed_out
        assert f"+    {region}: {key.arn}" in written_out
    assert "Hand these ARNs to Atlassian on the re-encryption ticket" in printed_out
    assert path.read_text() == config_edit.with_next_keys(original, arns(following))  # the block, nothing else
    config = load_stack_config(project, STACK)
    assert config.next_keys is not None and config.next_keys.as_config() == arns(following)
    assert config.enrolled_keys is not None and config.enrolled_keys.as_config() == arns(current)
    assert "already records these keys as atlassian-cmk:nextKeys; nothing to commit" in again_out


def test_enroll_next_json_names_the_next_keys(
    prepared: tuple[Path, dict[str, ProvisionedKey], dict[str, ProvisionedKey]],
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project, current, following = prepared
    capsys.readouterr()

    code = run(project, moto_endpoint, "--write-config", "--format", "json")

    document = json.loads(capsys.readouterr().out)
    assert code == document["exit_code"] == ExitCode.AS_DECLARED
    assert document["command"] == "enroll" and document["config_written"] is True
    assert document["next_keys"] == arns(following)
    assert "enrolled_keys" not in document
    assert document["context"]["enrolled_keys"] == arns(current)
    assert [(r["region"], r["key_arn"]) for r in document["regions"]] == list(arns(following).items())


@pytest.mark.parametrize("status", ["none", "complete"])
def test_enroll_next_outside_preparing_and_in_progress_is_one_line_before_any_aws_call(
    tmp_path: Path, status: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = reencrypting(tmp_path, status) if status != "none" else stack_dir(tmp_path)
    path = project / f"Pulumi.{STACK}.yaml"
    before = path.read_text()

    code = run(project, dead_endpoint())  # nothing listens: an AWS call would end in exit 3

    err = capsys.readouterr().err
    assert code == ExitCode.REFUSED
    assert err.count("\n") == 1
    assert f"atlassian-cmk:reencryption.status is {status}; enroll --next records the next generation only" in err
    assert "preparing or in-progress" in err and "nothing was read or written" in err
    assert path.read_text() == before


def test_enroll_next_before_the_current_generation_is_enrolled_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = reencrypting(tmp_path, "in-progress")

    code = run(project, dead_endpoint())

    err = capsys.readouterr().err
    assert code == ExitCode.REFUSED and err.count("\n") == 1
    assert "atlassian-cmk:enrolledKeys is not set; enroll the current generation first" in err


def test_enroll_next_refuses_the_next_alias_repointed_at_the_current_key(
    prepared: tuple[Path, dict[str, ProvisionedKey], dict[str, ProvisionedKey]],
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project, current, _following = prepared
    path = project / f"Pulumi.{STACK}.yaml"
    before = path.read_text()
    west = current["us-west-2"]
    kms(moto_endpoint, "us-west-2").update_alias(AliasName=NEXT_ALIAS, TargetKeyId=west.key_id)

    code = run(project, moto_endpoint, "--write-config")

    err = capsys.readouterr().err
    assert code == ExitCode.REFUSED
    assert path.read_text() == before
    assert f"us-west-2: {west.arn} does not look like the stack's key: tag atlassian-cmk:key-pair is current" in err
    assert f"us-west-2: {west.arn} is already recorded as atlassian-cmk:enrolledKeys" in err
    assert "us-east-1" not in err


def test_enroll_next_refuses_a_next_key_pending_deletion(
    prepared: tuple[Path, dict[str, ProvisionedKey], dict[str, ProvisionedKey]],
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project, _current, following = prepared
    east = following["us-east-1"]
    # Arranged out of band (the product never schedules a deletion).
    kms(moto_endpoint, "us-east-1").schedule_key_deletion(KeyId=east.key_id, PendingWindowInDays=7)

    code = run(project, moto_endpoint, "--write-config")

    err = capsys.readouterr().err
    assert code == ExitCode.REFUSED
    assert f"us-east-1: {east.arn} does not look like the stack's key: it is PendingDeletion" in err
    assert load_stack_config(project, STACK).next_keys is None


def test_enroll_next_refuses_a_second_key_wearing_the_next_tags_behind_the_alias(
    prepared: tuple[Path, dict[str, ProvisionedKey], dict[str, ProvisionedKey]],
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Recorded nextKeys are the ARNs handed to Atlassian: a decoy behind the alias never replaces them."""
    project, _current, following = prepared
    assert run(project, moto_endpoint, "--write-config") == ExitCode.AS_DECLARED
    path = project / f"Pulumi.{STACK}.yaml"
    recorded = path.read_text()
    decoy = deploy(project, moto_endpoint, "next-decoy")["us-east-1"]  # same policy; tags copied below
    east = kms(moto_endpoint, "us-east-1")
    east.tag_resource(KeyId=decoy.key_id, Tags=[{"TagKey": "atlassian-cmk:key-pair", "TagValue": "next"}])
    east.update_alias(AliasName=NEXT_ALIAS, TargetKeyId=decoy.key_id)
    capsys.readouterr()

    code = run(project, moto_endpoint, "--write-config")

    err = capsys.readouterr().err
    assert code == ExitCode.REFUSED
    assert path.read_text() == recorded
    real = following["us-east-1"].arn
    assert f"us-east-1: 2 keys carry the stack's tags ({decoy.arn} behind the alias, and {real})" in err
