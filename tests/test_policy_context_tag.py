"""context-tag-unchanged over gRPC, against deployed keys in the emulator (review of issue 9, item 2).

The pack is started as the Pulumi CLI starts it and driven over its analyzer protocol; the keys are
created as the component creates them (with their `atlassian-cmk:context-tag` tag).
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import pytest

from atlassian_cmk.aws.provision import ProvisionedKey
from atlassian_cmk.cli.main import main
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.naming import TAG_CONTEXT_TAG
from rehearsal.policy_pack_client import analyze_program_run, by_policy, describe, start_policy_pack
from tests.support.aws import aws_env, client_factory_for
from tests.test_config import engine_config
from tests.test_policy_live_state import deploy, preview
from tests.test_stack_file_reader import VALID

POLICY = "context-tag-unchanged"


@pytest.fixture(scope="module")
def aws_clients(moto_endpoint_session: str) -> Any:
    return functools.lru_cache(maxsize=None)(client_factory_for(moto_endpoint_session))


@pytest.fixture
def aws(moto_endpoint: str, aws_clients: Any) -> Any:
    return aws_clients


def test_a_quoted_context_tag_change_is_refused_on_every_key(moto_endpoint: str, aws: Any) -> None:
    # '0012345' quoted reaches the program as 0012345; the change to '5349' is what an unquoting did.
    raw = engine_config(contextTag="5349")
    with start_policy_pack(raw, aws_env(moto_endpoint)) as client:
        deployed = deploy(aws, contextTag="0012345")
        run = preview(raw)
        client.configure()
        violations = by_policy(analyze_program_run(client, run), POLICY)

    assert sorted(v.urn.rsplit("::", 1)[1] for v in violations) == ["cmk-us-east-1", "cmk-us-west-2"], describe(
        violations
    )
    for violation in violations:
        assert violation.level == "mandatory"
        for region in ("us-east-1", "us-west-2"):
            assert (
                f"{region}: the deployed key ({deployed[region].arn}) is enrolled with context tag '0012345' and the "
                "stack declares '5349'"
            ) in violation.message


def test_the_same_tag_and_an_untagged_deployed_key_pass(moto_endpoint: str, aws: Any) -> None:
    raw = engine_config(contextTag="AcmeCMK")
    with start_policy_pack(raw, aws_env(moto_endpoint)) as client:
        deployed: dict[str, ProvisionedKey] = deploy(aws, contextTag="AcmeCMK")
        # A key deployed before the tag existed: allowed, so existing stacks adopt it.
        west = deployed["us-west-2"]
        aws("kms", "us-west-2").untag_resource(KeyId=west.key_id, TagKeys=[TAG_CONTEXT_TAG])
        run = preview(raw)
        client.configure()
        violations = by_policy(analyze_program_run(client, run), POLICY)

    assert violations == [], describe(violations)
    assert all(key.inputs["tags"][TAG_CONTEXT_TAG] == "AcmeCMK" for key in run.kms_keys)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_impact_fails_the_check_on_a_context_tag_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "config", "user.email", "ci@example.com")
    _git(tmp_path, "config", "user.name", "ci")
    stack = tmp_path / "Pulumi.prod.yaml"
    stack.write_text(VALID.replace("contextTag: AcmeCMK", "contextTag: '0012345'"))
    _git(tmp_path, "add", "Pulumi.prod.yaml")
    _git(tmp_path, "commit", "-q", "-m", "base")
    stack.write_text(VALID.replace("contextTag: AcmeCMK", "contextTag: '5349'"))

    code = main(["impact", "--base", "main", "--project-dir", str(tmp_path)])

    out = capsys.readouterr().out
    assert code == ExitCode.REFUSED
    assert "**This change is refused**" in out and "🛑 Context tag 0012345 -> 5349" in out
