"""cmkctl under pressure: who/where first, machine output, closed pipes, Ctrl-C, bad profiles, credentials in
endpoints, hung endpoints, deadlines that page, restore that says what is true (issue 14)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import botocore.config
import botocore.exceptions
import pytest

from atlassian_cmk.aws.kms_reads import describe_error, shared_client_factory
from atlassian_cmk.cli.main import main
from atlassian_cmk.cli.render import TABLE_WIDTH
from atlassian_cmk.cli.runtime import Runtime
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.naming import TAG_LEASE, TAG_REVOKED_AT
from tests.support.aws import aws_env
from tests.support.cmkctl import (
    CMKCTL,
    REGIONS,
    fast_policy,
    kms,
    live,
    provision,
    run_in_process,
    runtime,
    stack_dir,
    unwrap,
)
from tests.support.faults import dead_endpoint, fault_proxy
from tests.support.hung import hung_endpoint

ACCOUNT = "123456789012"
CALLER = "arn:aws:sts::123456789012:user/moto"


def states(endpoint: str) -> dict[str, str]:
    return {region: live(endpoint, region).key_state for region in REGIONS}


def cmkctl_env(endpoint: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, **aws_env(endpoint), **extra}


REVOKE = ("revoke", "--reason", "Suspected breach", "--ticket", "SEC-1")


@pytest.fixture
def project(tmp_path: Path, moto_endpoint: str) -> Path:
    folder = stack_dir(tmp_path)
    provision(folder, moto_endpoint)
    return folder


# 1. Who and where, first -------------------------------------------------------------------------------


def test_status_says_account_caller_regions_and_endpoint_before_anything_else(
    project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["status", "--project-dir", str(project)], runtime=runtime(moto_endpoint))

    first = unwrap(capsys.readouterr().out).splitlines()[0]
    assert code == ExitCode.AS_DECLARED
    assert first == (
        f"Account {ACCOUNT} as {CALLER}; regions us-east-1, us-west-2; "
        f"keys via alias/atlassian-cmk/prod (not enrolled); endpoint {moto_endpoint}"
    )


def test_the_confirmation_prompt_repeats_who_and_where(
    project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return "not-the-stack"

    rt = runtime(moto_endpoint)
    code = main([*REVOKE, "--project-dir", str(project)], runtime=Runtime(rt.client_factory, rt.policy, rt.now, ask))

    assert code == ExitCode.REFUSED
    assert f"Account {ACCOUNT} as {CALLER}; regions us-east-1, us-west-2" in prompts[0]
    assert states(moto_endpoint) == {"us-east-1": "Enabled", "us-west-2": "Enabled"}
    assert "Not confirmed: typed not-the-stack, expected prod. Nothing was changed." in capsys.readouterr().err


# 2. One output switch ----------------------------------------------------------------------------------


def test_revoke_and_restore_print_the_versioned_change_document(
    project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*REVOKE, "--yes", "--format", "json", "--project-dir", str(project)], runtime=runtime(moto_endpoint))

    document = json.loads(unwrap(capsys.readouterr().out))
    assert code == ExitCode.AS_DECLARED
    assert document["schema_version"] == 1 and document["command"] == "revoke" and document["exit_code"] == 0
    assert document["context"] == {
        "account": ACCOUNT,
        "caller_arn": CALLER,
        "regions": list(REGIONS),
        "endpoint": moto_endpoint,
        "identity_error": None,
        "alias": "alias/atlassian-cmk/prod",
        "enrolled": False,
        "enrolled_keys": None,
    }
    rows = {row["region"]: row for row in document["regions"]}
    assert set(rows) == set(REGIONS)
    for region, row in rows.items():
        assert row["key_arn"] == live(moto_endpoint, region).arn
        assert (row["before"], row["after"], row["action"], row["error"]) == ("Enabled", "Disabled", "disabled", None)
        assert TAG_REVOKED_AT in row["record_written"]

    code = main(
        ["restore", "--ticket", "SEC-1", "--yes", "--format", "json", "--project-dir", str(project)],
        runtime=runtime(moto_endpoint),
    )
    document = json.loads(unwrap(capsys.readouterr().out))
    assert code == ExitCode.AS_DECLARED and document["command"] == "restore"
    assert {row["action"] for row in document["regions"]} == {"enabled"}
    assert any("INSIDE the 10-day reinstatement window" in message for message in document["messages"])


def test_status_json_flag_is_an_alias_of_format_json(
    project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    at = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    main(["status", "--json", "--project-dir", str(project)], runtime=runtime(moto_endpoint, now=lambda: at))
    alias = json.loads(unwrap(capsys.readouterr().out))
    main(["status", "--format", "json", "--project-dir", str(project)], runtime=runtime(moto_endpoint, now=lambda: at))
    switch = json.loads(unwrap(capsys.readouterr().out))
    assert alias == switch and alias["context"]["account"] == ACCOUNT


# 3. Messages a person reads once -----------------------------------------------------------------------


def test_status_with_one_region_unreachable_says_read_1_of_2_and_each_error_once(
    project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = dead_endpoint()
    rt = runtime(lambda region: dead if region == "us-west-2" else moto_endpoint)

    code = main(["status", "--project-dir", str(project)], runtime=rt)

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.UNREACHABLE
    assert "Read 1 of 2 regions." in out
    assert out.count("Could not connect to the endpoint URL") == 1
    assert "nothing could be read" not in out
    lines = out.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("REGION"))) :]
    table = table[: table.index("")]
    assert len(table) == 3 and max(len(line) for line in table) <= TABLE_WIDTH


def test_an_html_error_page_is_summarised_to_code_and_message() -> None:
    page = "<!doctype html>\n<html><head><title>500 Internal Server Error</title></head><body><h1>Internal</h1>" + (
        "<p>The server encountered an internal error.</p>" * 20
    )
    error = botocore.exceptions.ClientError({"Error": {"Code": "500", "Message": page}}, "DescribeKey")

    line = describe_error(error)

    assert line.startswith("HTTP 500: 500 Internal Server Error Internal The server encountered")
    assert "<" not in line and "\n" not in line and len(line) <= 170


def test_misspelled_command_and_config_key_get_did_you_mean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stauts"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "invalid choice: 'stauts'" in err and "did you mean status?" in err and err.count("\n") == 1

    folder = stack_dir(tmp_path, {"atlassian-cmk:enabled:": "atlassian-cmk:enabeld:"})
    assert main(["status", "--project-dir", str(folder)]) == ExitCode.USAGE
    assert "did you mean enabled?" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert unwrap(capsys.readouterr().out).startswith("cmkctl 0.")


# 4. Robust edges (real subprocesses of the installed cmkctl where the OS is part of the behaviour) ---------


def test_a_closed_pipe_ends_quietly_with_the_real_exit_code(project: Path, moto_endpoint: str) -> None:
    process = subprocess.Popen(
        [str(CMKCTL), *REVOKE, "--yes", "--project-dir", str(project)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cmkctl_env(moto_endpoint, PYTHONUNBUFFERED="1"),
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the first line: every write gets EPIPE
    err = process.stderr.read().decode()
    code = process.wait(timeout=60)

    assert code == ExitCode.AS_DECLARED, err
    assert err == ""
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Disabled"}


def _read_until(process: subprocess.Popen[bytes], marker: bytes) -> bytes:
    """What the process wrote to stderr (where prompts go) up to and including `marker`."""
    assert process.stderr is not None
    seen = b""
    while marker not in seen:
        chunk = os.read(process.stderr.fileno(), 4096)
        assert chunk, f"process ended before {marker!r}: {seen.decode()}"
        seen += chunk
    return seen


def test_ctrl_c_at_the_prompt_exits_130_with_one_line_and_changes_nothing(project: Path, moto_endpoint: str) -> None:
    process = subprocess.Popen(
        [str(CMKCTL), *REVOKE, "--project-dir", str(project)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cmkctl_env(moto_endpoint),
    )
    _read_until(process, b"Type the stack name (prod) to go ahead: ")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)

    assert process.returncode == 130 and int(ExitCode.INTERRUPTED) == 130
    lines = err.decode().strip().splitlines()
    assert lines == [
        "cmkctl: interrupted: at the confirmation prompt; nothing was changed; last known state: us-east-1 Enabled, "
        "us-west-2 Enabled"
    ]
    assert states(moto_endpoint) == {"us-east-1": "Enabled", "us-west-2": "Enabled"}


def test_ctrl_c_mid_revoke_exits_130_at_once_naming_each_region(project: Path, moto_endpoint: str) -> None:
    with fault_proxy(moto_endpoint) as proxy:
        proxy.hold("DisableKey")  # the endpoint hangs on DisableKey: the operator gives up and presses Ctrl-C
        process = subprocess.Popen(
            [str(CMKCTL), *REVOKE, "--yes", "--project-dir", str(project)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=cmkctl_env(proxy.url),
        )
        assert proxy.holding.wait(timeout=60)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)  # not after botocore's timeouts and retries

    assert process.returncode == 130
    text = err.decode()
    assert "Traceback" not in text
    # One line; the lease this run took is released on the way out, so the next operator is not blocked.
    [line] = text.strip().splitlines()
    assert re.fullmatch(
        r"cmkctl: interrupted: during the revoke \(DisableKey may have been sent in some regions; run `cmkctl "
        r"status`\); last known state: us-east-1 Enabled, us-west-2 Enabled; lease lease-\S+ released",
        line,
    ), line
    assert {region: live(moto_endpoint, region).tags[TAG_LEASE] for region in REGIONS} == {r: "" for r in REGIONS}


def test_a_bad_profile_is_exit_3_in_one_line(
    project: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    done = run_in_process(
        ["status", "--project-dir", str(project)], cmkctl_env(moto_endpoint, AWS_PROFILE="nope"), monkeypatch, capsys
    )

    assert done.returncode == ExitCode.UNREACHABLE
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "cmkctl: AWS credentials or profile unusable: ProfileNotFound: The config profile (nope) could not be found; "
        "nothing was read or changed"
    ]


def test_credentials_in_the_endpoint_url_are_never_printed(
    project: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = dead_endpoint().rsplit(":", 1)[1]
    endpoint = f"http://user:secret@127.0.0.1:{port}"
    for output in ("text", "json"):
        done = run_in_process(
            ["status", "--format", output, "--project-dir", str(project)],
            cmkctl_env(moto_endpoint, AWS_ENDPOINT_URL=endpoint),
            monkeypatch,
            capsys,
        )
        assert done.returncode == ExitCode.UNREACHABLE, done.stderr
        assert "secret" not in done.stdout + done.stderr
        assert f"http://***@127.0.0.1:{port}" in done.stdout


def test_a_wait_past_the_threshold_prints_a_progress_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = botocore.config.Config(connect_timeout=1, read_timeout=1, retries={"total_max_attempts": 1})
    with hung_endpoint() as endpoint:
        rt = Runtime(
            client_factory=shared_client_factory(config, endpoint_url=endpoint),
            policy=fast_policy(1),
            progress_after_s=0.2,
        )
        code = main(["status", "--project-dir", str(project)], runtime=rt)

    err = capsys.readouterr().err
    assert code == ExitCode.UNREACHABLE
    assert err.startswith(f"cmkctl: still waiting for AWS (2 region(s), endpoint {endpoint}) (")


# 5. Deadlines that page ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "kind", "words"),
    [
        (timedelta(days=3), None, None),
        (timedelta(days=9), "DEADLINE: the reinstatement window closes", "(in 24 hours)"),
        (timedelta(days=11), "DEADLINE: the reinstatement window closed", "may no longer reinstate"),
        (timedelta(days=24), "DEADLINE: revoked at", "data has been at risk since"),
    ],
)
def test_deadline_findings_with_an_injected_clock(
    project: Path,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
    after: timedelta,
    kind: str | None,
    words: str | None,
) -> None:
    assert (
        main([*REVOKE, "--yes", "--write-config", "--project-dir", str(project)], runtime=runtime(moto_endpoint)) == 0
    )
    revoked_at = datetime.fromisoformat(live(moto_endpoint, "us-east-1").tags[TAG_REVOKED_AT].replace("Z", "+00:00"))
    capsys.readouterr()
    rt = runtime(moto_endpoint, now=lambda: revoked_at + after)

    default = main(["status", "--project-dir", str(project)], runtime=rt)
    out = unwrap(capsys.readouterr().out)
    paging = main(["status", "--fail-on", "deadline", "--project-dir", str(project)], runtime=rt)

    assert default == ExitCode.AS_DECLARED  # the revocation is as declared; only --fail-on pages
    deadline_lines = [line for line in out.splitlines() if line.startswith("DEADLINE")]
    if kind is None:
        assert deadline_lines == [] and paging == ExitCode.AS_DECLARED
        return
    assert words is not None
    assert len(deadline_lines) == 1 and deadline_lines[0].startswith(kind) and words in deadline_lines[0]
    assert paging == 7 and int(ExitCode.DEADLINE) == 7


def test_a_deadline_outranks_drift_but_not_a_split_an_unreachable_region_or_a_moved_alias() -> None:
    from atlassian_cmk.exit_codes import most_severe

    assert most_severe([ExitCode.DRIFT, ExitCode.DEADLINE]) == ExitCode.DEADLINE  # the page says the deadline
    assert most_severe([ExitCode.DEADLINE, ExitCode.SPLIT]) == ExitCode.SPLIT
    assert most_severe([ExitCode.DEADLINE, ExitCode.UNREACHABLE]) == ExitCode.UNREACHABLE
    assert most_severe([ExitCode.DEADLINE, ExitCode.ALIAS_MOVED]) == ExitCode.ALIAS_MOVED
    assert int(ExitCode.ALIAS_MOVED) == 6 and int(ExitCode.DEADLINE) == 7


def test_the_drift_workflow_fails_on_deadlines() -> None:
    workflow = (Path(__file__).resolve().parents[1] / ".github" / "workflows" / "drift.yml").read_text()
    assert 'cmkctl status --stack "$STACK" --fail-on deadline --format markdown' in workflow
    assert workflow.count("cmkctl status") == 1  # one read: the summary and the exit code agree
    assert "code=${PIPESTATUS[0]}" in workflow and "shell: bash" in workflow  # cmkctl's code, not tee's


# 6. Restore says what is true ----------------------------------------------------------------------------


def test_restore_with_nothing_revoked_is_a_plain_line_no_prompt_exit_0(
    project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_prompt(prompt: str) -> str:
        raise AssertionError(f"no prompt expected: {prompt}")

    rt = runtime(moto_endpoint)
    code = main(
        ["restore", "--ticket", "SEC-1", "--project-dir", str(project)],
        runtime=Runtime(rt.client_factory, rt.policy, rt.now, no_prompt),
    )

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.AS_DECLARED
    assert "Nothing to restore: the key is Enabled in every region (us-east-1, us-west-2)." in out
    assert "Atlassian" not in out


def test_restore_outside_the_window_says_atlassian_may_no_longer_reinstate(
    project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*REVOKE, "--yes", "--project-dir", str(project)], runtime=runtime(moto_endpoint)) == 0
    revoked_at = datetime.fromisoformat(live(moto_endpoint, "us-east-1").tags[TAG_REVOKED_AT].replace("Z", "+00:00"))
    capsys.readouterr()

    code = main(
        ["restore", "--ticket", "SEC-1", "--yes", "--project-dir", str(project)],
        runtime=runtime(moto_endpoint, now=lambda: revoked_at + timedelta(days=12)),
    )

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.AS_DECLARED
    assert "OUTSIDE the 10-day reinstatement window" in out and "Atlassian may no longer reinstate" in out
    assert "ask what can still be recovered" in out
    assert "Atlassian then reinstates" not in out


class _Terminal:
    """A stream that says it is a terminal, collecting what is written."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    from atlassian_cmk.cli.output import emit

    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal = _Terminal()
    emit("DRIFT: us-east-1 Disabled", file=terminal)
    assert "\x1b[" in terminal.text and "DRIFT" in terminal.text

    monkeypatch.setenv("NO_COLOR", "1")
    plain = _Terminal()
    emit("DRIFT: us-east-1 Disabled", file=plain)
    assert plain.text == "DRIFT: us-east-1 Disabled\n"


def test_redaction_covers_userinfo_and_credential_query_values() -> None:
    from atlassian_cmk.endpoints import redact_text

    text = 'Could not connect to the endpoint URL: "http://AKIA:secret@10.0.0.1:9/?X-Amz-Security-Token=tok&a=1"'
    assert redact_text(text) == (
        'Could not connect to the endpoint URL: "http://***@10.0.0.1:9/?X-Amz-Security-Token=***&a=1"'
    )
    # userinfo is everything before the LAST '@' of the authority; scheme-less too; SigV2 query names
    assert redact_text("http://user:p@ss@127.0.0.1:9/x") == "http://***@127.0.0.1:9/x"
    assert redact_text("Invalid endpoint: user:secret@127.0.0.1:9") == "Invalid endpoint: ***@127.0.0.1:9"
    assert redact_text("https://h/?AWSAccessKeyId=AKIA&Signature=s&Expires=1") == (
        "https://h/?AWSAccessKeyId=***&Signature=***&Expires=1"
    )
    caller = "as arn:aws:sts::123456789012:assumed-role/Ops/alice@example.com;"  # a session name is not userinfo
    assert redact_text(caller) == caller


def test_json_without_yes_keeps_stdout_for_the_document_and_asks_on_stderr(project: Path, moto_endpoint: str) -> None:
    done = subprocess.run(
        [str(CMKCTL), *REVOKE, "--format", "json", "--project-dir", str(project)],
        input="prod\n",
        capture_output=True,
        text=True,
        env=cmkctl_env(moto_endpoint),
        timeout=60,
    )

    assert done.returncode == ExitCode.AS_DECLARED, done.stderr
    document = json.loads(done.stdout)  # stdout is the document and nothing else
    assert document["command"] == "revoke"
    assert "Type the stack name (prod) to go ahead: " in done.stderr and "Account" in done.stderr
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Disabled"}


@pytest.mark.parametrize(
    ("tag_value", "doubt"),
    [
        ("2099-01-01T00:00:00Z", "is in the future: '2099-01-01T00:00:00Z'"),
        ("last tuesday", "is malformed: 'last tuesday'"),
    ],
)
def test_a_future_or_malformed_revoked_at_tag_is_an_unknown_clock_naming_the_value(
    project: Path, cloudtrail_not_delivered: str, capsys: pytest.CaptureFixture[str], tag_value: str, doubt: str
) -> None:
    """CloudTrail has not delivered the DisableKey yet, so only the tag could tell (with CloudTrail's time the
    clock runs from CloudTrail: tests/test_revocation_clock_cloudtrail.py)."""
    moto_endpoint = cloudtrail_not_delivered
    assert (
        main([*REVOKE, "--yes", "--write-config", "--project-dir", str(project)], runtime=runtime(moto_endpoint)) == 0
    )
    for region in REGIONS:  # anyone with kms:TagResource can write this tag
        key = live(moto_endpoint, region)
        kms(moto_endpoint, region).tag_resource(
            KeyId=key.key_id, Tags=[{"TagKey": TAG_REVOKED_AT, "TagValue": tag_value}]
        )
    capsys.readouterr()

    code = main(["status", "--fail-on", "deadline", "--project-dir", str(project)], runtime=runtime(moto_endpoint))

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.DEADLINE
    (line,) = [line for line in out.splitlines() if line.startswith("DEADLINE")]
    assert "revocation time is unknown" in line and doubt in line and "no tag" not in line
    assert "days left" not in out


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("AWS_ENDPOINT_URL", "user:secret@127.0.0.1:9", "invalid endpoint URL ***@127.0.0.1:9"),
        ("AWS_ENDPOINT_URL", "http://user:p@secret@127.0.0.1:{port}", None),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:{port}/?AWSAccessKeyId=AKIA&Signature=secret", None),
        ("AWS_STS_REGIONAL_ENDPOINTS", "bogus", "AWS configuration unusable: InvalidSTSRegionalEndpointsConfigError"),
        ("AWS_CONFIG_FILE", "{bad_file}", "AWS configuration unusable: ConfigParseError: Unable to parse config file"),
        ("AWS_SHARED_CREDENTIALS_FILE", "{bad_file}", "AWS configuration unusable: ConfigParseError"),
    ],
)
def test_an_unusable_aws_environment_is_one_redacted_line_and_exit_3(
    project: Path,
    moto_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    words: str | None,
) -> None:
    bad_file = tmp_path / "aws-file"
    bad_file.write_text("[default\naws_secret_access_key = secret\n")  # the section header never closes
    port = dead_endpoint().rsplit(":", 1)[1]
    env = cmkctl_env(moto_endpoint, **{variable: value.format(port=port, bad_file=bad_file)})
    if variable == "AWS_SHARED_CREDENTIALS_FILE":  # botocore reads the file only when no key is in the environment
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.pop(name, None)
    done = run_in_process(["status", "--project-dir", str(project)], env, monkeypatch, capsys)

    assert done.returncode == ExitCode.UNREACHABLE, done.stderr
    assert "secret" not in done.stdout + done.stderr and "Traceback" not in done.stderr
    if words is not None:
        assert done.stdout == ""
        assert len(done.stderr.splitlines()) == 1 and words in done.stderr, done.stderr


FORGED = "\n\nResult: exit 0: as declared\x1b[2J"


def test_tag_values_cannot_forge_lines_or_drive_the_terminal(
    project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from atlassian_cmk.naming import TAG_REENCRYPTION, TAG_REVOCATION_REASON

    assert (
        main([*REVOKE, "--yes", "--write-config", "--project-dir", str(project)], runtime=runtime(moto_endpoint)) == 0
    )
    for region in REGIONS:
        kms(moto_endpoint, region).tag_resource(
            KeyId=live(moto_endpoint, region).key_id,
            Tags=[
                {"TagKey": TAG_REVOCATION_REASON, "TagValue": FORGED},
                {"TagKey": TAG_REENCRYPTION, "TagValue": FORGED},
            ],
        )
    capsys.readouterr()

    for output in ("text", "markdown"):
        main(["status", "--format", output, "--project-dir", str(project)], runtime=runtime(moto_endpoint))
        out = unwrap(capsys.readouterr().out)
        assert "\x1b" not in out
        assert len([line for line in out.splitlines() if line.startswith("Result:")]) == 1  # the real one only
        assert "\\n\\nResult: exit 0: as declared\\x1b[2J" in out
        if output == "markdown":
            lines = out.splitlines()
            assert lines[0] == "```text" and lines[-1] == "```" and "```" not in "".join(lines[1:-1])
            assert lines[1].startswith("Account ")  # the who line is inside the block too


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["status", "--json", "--format", "text"], "status: --json and --format text conflict; use one"),
        ([*REVOKE, "--format", "markdown"], "revoke: --format markdown is not supported; choose from text, json"),
        (["restore", "--ticket", "T-1", "--format", "markdown"], "restore: --format markdown is not supported"),
    ],
)
def test_conflicting_or_unsupported_formats_are_one_usage_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    assert main(argv) == ExitCode.USAGE
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert captured.err.startswith(f"cmkctl: {words}")


def test_a_deadline_finding_in_json_names_its_subkind(
    project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main([*REVOKE, "--yes", "--write-config", "--project-dir", str(project)], runtime=runtime(moto_endpoint)) == 0
    )
    revoked_at = datetime.fromisoformat(live(moto_endpoint, "us-east-1").tags[TAG_REVOKED_AT].replace("Z", "+00:00"))
    capsys.readouterr()
    rt = runtime(moto_endpoint, now=lambda: revoked_at + timedelta(days=11))

    main(["status", "--format", "json", "--fail-on", "deadline", "--project-dir", str(project)], runtime=rt)

    document = json.loads(unwrap(capsys.readouterr().out))
    assert document["outcome"] == "deadline"
    assert [(f["kind"], f["subkind"]) for f in document["findings"]] == [("deadline", "window-passed")]


def test_ctrl_c_while_cmkctl_is_still_importing_is_one_line_and_exit_130(tmp_path: Path, moto_endpoint: str) -> None:
    # A stand-in boto3 first on the path: importing it says so on stdout and blocks, so the test presses Ctrl-C
    # exactly while cmkctl is importing its dependencies (no timing guess).
    stand_in = tmp_path / "slow" / "boto3"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text("import sys\nprint('importing', flush=True)\nsys.stdin.read()\n")
    process = subprocess.Popen(
        [str(CMKCTL), "status"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cmkctl_env(moto_endpoint, PYTHONPATH=str(stand_in.parent)),
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"importing\n"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)

    assert process.returncode == 130
    assert err.decode().strip().splitlines() == ["cmkctl: interrupted: while starting; nothing was read or changed"]


def test_a_huge_reason_is_shortened_in_its_error(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    reason = "x" * 100_000 + "\n"
    assert main(["revoke", "--reason", reason, "--ticket", "SEC-1", "--project-dir", str(project)]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert len(err) < 400 and "(100001 characters)" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["revoke", "--reason", "x", "--tiket", "SEC-1"], "unrecognized arguments: --tiket; did you mean --ticket?"),
        (["status", "--fromat", "json"], "unrecognized arguments: --fromat; did you mean --format? (see"),
    ],
)
def test_a_misspelled_flag_gets_exactly_one_did_you_mean(
    capsys: pytest.CaptureFixture[str], argv: list[str], hint: str
) -> None:
    assert main(argv) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert hint in err and err.count("did you mean") == 1 and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("old", "new", "hint"),
    [
        ("status: none", "status: in_progress", "did you mean in-progress?"),
        ("atlassian-cmk:realm: us", "atlassian-cmk:realm: usa", "did you mean us?"),
    ],
)
def test_a_misspelled_config_value_gets_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, hint: str
) -> None:
    project = stack_dir(tmp_path, {old: new})
    assert main(["status", "--project-dir", str(project)]) == ExitCode.USAGE
    assert hint in capsys.readouterr().err


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
def test_a_loopback_endpoint_is_never_sent_through_a_proxy(project: Path, moto_endpoint: str, variable: str) -> None:
    done = subprocess.run(  # the proxy refuses every connection: a proxied request would fail (exit 3)
        [str(CMKCTL), "status", "--project-dir", str(project)],
        capture_output=True,
        text=True,
        env=cmkctl_env(moto_endpoint, **{variable: dead_endpoint()}),
        timeout=90,
    )

    assert done.returncode == ExitCode.AS_DECLARED, done.stderr


def test_a_record_not_written_is_9_ranked_below_a_split_and_above_a_deadline_and_not_deployed_stays_8() -> None:
    from atlassian_cmk.exit_codes import SEVERITY, exit_codes_help, most_severe

    assert (int(ExitCode.NOT_DEPLOYED), int(ExitCode.RECORD_NOT_WRITTEN)) == (8, 9)
    assert most_severe([ExitCode.RECORD_NOT_WRITTEN, ExitCode.SPLIT]) == ExitCode.SPLIT
    assert most_severe([ExitCode.RECORD_NOT_WRITTEN, ExitCode.DEADLINE]) == ExitCode.RECORD_NOT_WRITTEN
    assert most_severe([ExitCode.RECORD_NOT_WRITTEN, ExitCode.NOT_DEPLOYED]) == ExitCode.RECORD_NOT_WRITTEN
    order = ", ".join(str(int(code)) for code in SEVERITY if code != ExitCode.AS_DECLARED)
    assert order == "130, 70, 64, 5, 6, 4, 3, 2, 9, 7, 1, 8"
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    docs = (Path(__file__).resolve().parents[1] / "docs" / "cmkctl.md").read_text()
    assert f"the most severe wins: {order}." in readme
    assert f"in this order: {order}.".replace("2, 9,", "2,\n9,") in docs
    assert "    9  revoke/restore changed the keys as asked" in exit_codes_help()
