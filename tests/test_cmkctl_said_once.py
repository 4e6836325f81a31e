"""cmkctl says each thing once and within 100 columns: the adversarial review of issue 14's item 3.

Each test drives `main([...])` against the emulator (faults through tests/support/faults.py) and reads
the output as a person would: unwrapped (`unwrap`) for sentences, raw for line widths."""

from __future__ import annotations

from pathlib import Path

import boto3
import botocore.config
import pytest

from atlassian_cmk import config_edit
from atlassian_cmk.aws.kms_reads import shared_client_factory
from atlassian_cmk.cli.main import main
from atlassian_cmk.cli.runtime import Runtime
from atlassian_cmk.display import TEXT_WIDTH
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.naming import TAG_REVOKED_AT
from tests.support.cmkctl import fast_policy, kms, live, provision, runtime, stack_dir, unwrap
from tests.support.faults import dead_endpoint, fault_proxy

REVOKE = ("revoke", "--reason", "Suspected breach", "--ticket", "SEC-1")


@pytest.fixture
def project(tmp_path: Path, moto_endpoint: str) -> Path:
    folder = stack_dir(tmp_path)
    provision(folder, moto_endpoint)
    return folder


def wide(text: str) -> list[str]:
    return [line for line in text.splitlines() if len(line) > TEXT_WIDTH]


@pytest.mark.parametrize("operation", ["DisableKey", "EnableKey"])
def test_a_state_change_refused_by_a_502_says_its_attempts_once(
    project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str], operation: str
) -> None:
    args = ["--yes", "--project-dir", str(project)]
    if operation == "EnableKey":
        assert main([*REVOKE, *args], runtime=runtime(moto_endpoint)) == ExitCode.AS_DECLARED
        capsys.readouterr()
    command = [*REVOKE, *args] if operation == "DisableKey" else ["restore", "--ticket", "SEC-2", *args]
    with fault_proxy(moto_endpoint) as proxy:
        proxy.fail("us-west-2", 100, {operation}, status=502, error_type="BadGateway", message="Bad Gateway")
        # botocore retries the 502 itself (as cmkctl's own client config does), so its count ends the
        # AWS error inside the region's reason: "... after 2 attempts; the key is Enabled".
        config = botocore.config.Config(
            connect_timeout=1, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 2}
        )
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing"
        )
        factory = shared_client_factory(config, session=session, endpoint_url=proxy.url)
        code = main(command, runtime=Runtime(client_factory=factory, policy=fast_policy(2)))

    out = capsys.readouterr().out
    text = unwrap(out)
    assert code != ExitCode.AS_DECLARED
    line = next(line for line in text.splitlines() if f"{operation} failed" in line)
    assert line.count("attempts") == 1, line
    assert "BadGateway: Bad Gateway; the key is" in line and "(after 2 attempts of up to 2 requests each)" in line
    assert live(moto_endpoint, "us-west-2").key_state == ("Enabled" if operation == "DisableKey" else "Disabled")
    assert not wide(out)


def test_a_revoke_that_reached_no_region_says_nothing_was_revoked_once(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = dead_endpoint()
    code = main(
        [*REVOKE, "--yes", "--override-reencryption-guard", "Incident SEC-1", "--project-dir", str(project)],
        runtime=runtime(dead, attempts=1),
    )

    out = capsys.readouterr().out
    text = unwrap(out).lower()
    assert code == ExitCode.UNREACHABLE
    assert text.count("nothing was revoked") == 1, out
    assert "no config change to commit" in text
    assert not wide(out)


def test_every_region_unreachable_says_the_cause_once(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    keys = {key.region: key.arn for key in provision(project, moto_endpoint)}
    path = project / "Pulumi.prod.yaml"
    path.write_text(config_edit.with_enrolled_keys(path.read_text(), keys))

    code = main(["status", "--project-dir", str(project)], runtime=runtime(dead_endpoint()))

    out = capsys.readouterr().out
    text = unwrap(out)
    assert code == ExitCode.UNREACHABLE
    assert text.count("Could not connect to the endpoint URL") == 1, out
    assert "UNREACHABLE: read 0 of 2 regions: cannot reach the AWS endpoint" in text
    assert "ALIAS UNREADABLE: us-east-1: alias/atlassian-cmk/prod could not be read (unreachable)" in text
    assert text.splitlines()[0].startswith("Account unknown (sts:GetCallerIdentity: unreachable, as every region)")
    assert not wide(out)


def test_status_unreachable_lines_are_as_the_output_rules_say(
    project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """status tries each read once through botocore (its own retries): no "(after N attempts)" of
    cmkctl's on an UNREACHABLE line, and docs/cmkctl.md's Output rules say exactly that."""
    code = main(
        ["status", "--project-dir", str(project)],
        runtime=runtime(lambda region: dead_endpoint() if region == "us-west-2" else moto_endpoint),
    )

    text = unwrap(capsys.readouterr().out)
    assert code == ExitCode.UNREACHABLE
    line = next(line for line in text.splitlines() if line.startswith("UNREACHABLE: us-west-2: "))
    assert "attempts" not in line
    rules = (Path(__file__).resolve().parents[1] / "docs" / "cmkctl.md").read_text(encoding="utf-8")
    rules = " ".join(rules.split())
    assert "`status` makes no attempts of its own" in rules
    assert "a connection refused or a timeout carries none" in rules


def test_an_unknown_revocation_time_says_why_once(
    project: Path, cloudtrail_not_delivered: str, capsys: pytest.CaptureFixture[str]
) -> None:
    moto_endpoint = cloudtrail_not_delivered  # no tag, and CloudTrail has not delivered the DisableKey yet
    assert main([*REVOKE, "--yes", "--project-dir", str(project)], runtime=runtime(moto_endpoint)) == 0
    for region in ("us-east-1", "us-west-2"):
        key = live(moto_endpoint, region)
        kms(moto_endpoint, region).untag_resource(KeyId=key.key_id, TagKeys=[TAG_REVOKED_AT])
    capsys.readouterr()

    main(["status", "--project-dir", str(project)], runtime=runtime(moto_endpoint))

    out = capsys.readouterr().out
    text = unwrap(out)
    assert text.count("no atlassian-cmk:revoked-at tag") == 1, out
    assert "Revocation clock: revocation time unknown: Atlassian can reinstate within 10 days" in text
    assert "DEADLINE: the keys are disabled and the revocation time is unknown (no atlassian-cmk:revoked-at" in text
    assert not wide(out)


@pytest.mark.parametrize("command", ["revoke", "restore"])
def test_the_confirmation_prompt_fits_100_columns(project: Path, moto_endpoint: str, command: str) -> None:
    if command == "restore":
        assert main([*REVOKE, "--yes", "--project-dir", str(project)], runtime=runtime(moto_endpoint)) == 0
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return "not-the-stack"

    rt = runtime(moto_endpoint)
    args = [*REVOKE] if command == "revoke" else ["restore", "--ticket", "SEC-2"]
    main([*args, "--project-dir", str(project)], runtime=Runtime(rt.client_factory, rt.policy, rt.now, ask))

    assert len(prompts) == 1
    assert not wide(prompts[0]), prompts[0]
    assert "Account 123456789012 as arn:aws:sts::123456789012:user/moto; regions us-east-1, us-west-2" in unwrap(
        prompts[0]
    )


def test_a_revoke_of_enrolled_keys_that_no_longer_exist_names_them_key_lost(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    gone = {
        region: f"arn:aws:kms:{region}:123456789012:key/{key_id}"
        for region, key_id in [
            ("us-east-1", "0e0de11c-f597-4154-a4e6-e75b4605e861"),
            ("us-west-2", "be0f49ef-6d8a-4c8f-a6e1-44a73276444d"),
        ]
    }
    path = project / "Pulumi.prod.yaml"
    path.write_text(config_edit.with_enrolled_keys(path.read_text(), gone))

    code = main([*REVOKE, "--yes", "--project-dir", str(project)], runtime=runtime(moto_endpoint))

    captured = capsys.readouterr()
    out = unwrap(captured.out + captured.err)
    assert code == ExitCode.KEY_LOST
    assert out.count("nothing was changed") == 1, out
    assert not wide(captured.out)
    assert "KEY LOST" in out
    # The heading matches the exit code (5) and the lines: no REFUSED (a guard's word) anywhere.
    assert "KEY LOST: no enrolled key of stack prod is found; nothing was changed:" in out
    assert "REFUSED" not in out
    assert gone["us-east-1"] in out and gone["us-west-2"] in out
    assert "--override-reencryption-guard" not in out
    assert "evidence tags cannot be trusted" not in out


def test_a_revoke_with_one_enrolled_key_lost_disables_the_other_and_names_the_lost_one(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    keys = {key.region: key.arn for key in provision(project, moto_endpoint)}
    lost = "arn:aws:kms:us-west-2:123456789012:key/be0f49ef-6d8a-4c8f-a6e1-44a73276444d"
    path = project / "Pulumi.prod.yaml"
    path.write_text(config_edit.with_enrolled_keys(path.read_text(), {**keys, "us-west-2": lost}))

    code = main([*REVOKE, "--yes", "--project-dir", str(project)], runtime=runtime(moto_endpoint))

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.KEY_LOST
    assert live(moto_endpoint, "us-east-1").key_state == "Disabled"
    assert lost in out
    assert "--override-reencryption-guard" not in out
