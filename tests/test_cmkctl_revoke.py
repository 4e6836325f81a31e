"""`cmkctl revoke`: end to end on the emulator, guards, idempotence, concurrency and partial failure."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from atlassian_cmk.cli.main import Runtime, main
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.naming import (
    TAG_ENABLED,
    TAG_GUARD_OVERRIDE,
    TAG_LAST_REVOKE,
    TAG_LEASE,
    TAG_REVOCATION_ID,
    TAG_REVOCATION_REASON,
    TAG_REVOCATION_TICKET,
    TAG_REVOKED_AT,
    TAG_REVOKED_BY,
)
from atlassian_cmk.records import REVOCATION_RECORD
from atlassian_cmk.stack_file import load_stack_config
from atlassian_cmk.timeline import parse_iso
from tests.support.cmkctl import REGIONS, STACK, kms, live, provision, runtime, stack_dir, unwrap
from tests.support.faults import dead_endpoint, fault_proxy

MOTO_CALLER = "arn:aws:sts::123456789012:user/moto"
READ_ONLY = {"DescribeKey", "ListResourceTags", "GetKeyPolicy", "GetCallerIdentity"}


def revoke(project: Path, rt: Runtime, *extra: str, reason: str = "Suspected breach", ticket: str = "SEC-1") -> int:
    return main(["revoke", "--project-dir", str(project), "--reason", reason, "--ticket", ticket, *extra], runtime=rt)


def record(endpoint: str, region: str) -> tuple[str, ...]:
    tags = live(endpoint, region).tags
    return tuple(tags.get(tag, "") for tag in REVOCATION_RECORD)


def states(endpoint: str) -> dict[str, str]:
    return {region: live(endpoint, region).key_state for region in REGIONS}


def test_revoke_disables_tags_verifies_and_prints_the_config_change(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    before = (project / "Pulumi.prod.yaml").read_text()

    code = revoke(project, runtime(moto_endpoint), "--yes")

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.AS_DECLARED
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Disabled"}
    for region in REGIONS:
        tags = live(moto_endpoint, region).tags
        assert tags[TAG_REVOCATION_REASON] == "Suspected breach"
        assert tags[TAG_REVOCATION_TICKET] == "SEC-1"
        assert tags[TAG_REVOKED_BY] == MOTO_CALLER
        assert tags[TAG_ENABLED] == "false"
        assert parse_iso(tags[TAG_REVOKED_AT]) is not None and tags[TAG_REVOKED_AT].endswith("Z")
        assert TAG_GUARD_OVERRIDE not in tags
    assert record(moto_endpoint, "us-east-1") == record(moto_endpoint, "us-west-2")
    assert "+  atlassian-cmk:enabled: false" in out
    assert "+  atlassian-cmk:revocation:\n+    reason: Suspected breach\n+    ticket: SEC-1" in out
    assert "rerun with --write-config" in out
    assert (project / "Pulumi.prod.yaml").read_text() == before  # printed, not written


def test_revoke_twice_changes_nothing_the_second_time_and_keeps_the_first_record(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    assert revoke(project, runtime(moto_endpoint), "--yes", ticket="SEC-1") == ExitCode.AS_DECLARED
    first = {region: record(moto_endpoint, region) for region in REGIONS}
    capsys.readouterr()

    with fault_proxy(moto_endpoint) as proxy:
        code = revoke(project, runtime(proxy.url), "--yes", ticket="SEC-2")

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.AS_DECLARED
    assert {region: record(moto_endpoint, region) for region in REGIONS} == first
    # Only reads, and the lease taken and released (the run cannot know beforehand that nothing will change).
    assert proxy.operations() <= READ_ONLY | {"TagResource"}
    assert {tag["TagKey"] for _, body in proxy.sent("kms") for tag in body.get("Tags", [])} == {
        TAG_LEASE,
        TAG_LAST_REVOKE,
    }
    assert out.count("UNCHANGED") == 2
    assert "+    ticket: SEC-1" in out  # the config change carries the record on the keys


def test_two_revokes_at_once_end_in_one_consistent_state(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    codes: dict[str, int] = {}
    start = threading.Barrier(2)

    def operator(ticket: str) -> None:
        start.wait()
        codes[ticket] = revoke(project, runtime(moto_endpoint), "--yes", ticket=ticket, reason=f"incident {ticket}")

    threads = [threading.Thread(target=operator, args=(ticket,)) for ticket in ("SEC-A", "SEC-B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The lease lets one run through and refuses the other (exit 4, nothing changed), unless one finished
    # before the other took it. Records are write-once to break-glass (the key policy): in each region the
    # first record stands and a run that finds another operator's fresh record there accepts it.
    assert set(codes) == {"SEC-A", "SEC-B"} and set(codes.values()) <= {ExitCode.AS_DECLARED, ExitCode.REFUSED}
    assert ExitCode.AS_DECLARED in codes.values()
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Disabled"}
    refused = [ticket for ticket, code in codes.items() if code == ExitCode.REFUSED]
    for region in REGIONS:
        tags = live(moto_endpoint, region).tags
        assert tags[TAG_LEASE] == ""  # released
        assert tags[TAG_REVOCATION_TICKET] in ("SEC-A", "SEC-B") and tags[TAG_REVOCATION_TICKET] not in refused
        assert tags[TAG_REVOCATION_REASON] == f"incident {tags[TAG_REVOCATION_TICKET]}"
        assert tags[TAG_REVOCATION_ID].startswith("rev-") and tags[TAG_REVOKED_AT]


def test_revoke_refuses_while_the_stack_declares_reencryption_in_progress(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    provision(stack_dir(tmp_path), moto_endpoint)
    project = stack_dir(tmp_path, {"status: none": "status: in-progress\n    ticket: PS-5678"})

    with fault_proxy(moto_endpoint) as proxy:
        code = revoke(project, runtime(proxy.url), "--yes")

    err = capsys.readouterr().err
    assert code == ExitCode.REFUSED
    assert "re-encryption is declared in progress (ticket PS-5678)" in err
    assert "--override-reencryption-guard" in err
    assert states(moto_endpoint) == {"us-east-1": "Enabled", "us-west-2": "Enabled"}
    assert proxy.operations() <= READ_ONLY


def test_revoke_refuses_while_the_live_keys_say_reencryption_in_progress(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Deployed while in progress; the stack file already says complete, but that is not applied yet.
    provision(stack_dir(tmp_path, {"status: none": "status: in-progress"}), moto_endpoint)
    project = stack_dir(tmp_path, {"status: none": "status: complete"})

    code = revoke(project, runtime(moto_endpoint), "--yes")

    err = capsys.readouterr().err
    assert code == ExitCode.REFUSED
    assert "the deployed key in each of us-east-1 and us-west-2 is tagged re-encryption in-progress" in err
    assert "apply a change that marks it complete first, then revoke in a second change" in err
    assert states(moto_endpoint) == {"us-east-1": "Enabled", "us-west-2": "Enabled"}


def test_override_revokes_during_reencryption_and_records_the_justification(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path, {"status: none": "status: in-progress"})
    provision(project, moto_endpoint)
    justification = "Key material leaked - CISO approved revocation mid re-encryption"

    code = revoke(
        project, runtime(moto_endpoint), "--yes", "--write-config", "--override-reencryption-guard", justification
    )

    assert code == ExitCode.AS_DECLARED
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Disabled"}
    for region in REGIONS:
        assert live(moto_endpoint, region).tags[TAG_GUARD_OVERRIDE] == justification
    assert f"GUARD OVERRIDDEN (recorded on the keys in us-east-1, us-west-2): {justification}" in unwrap(
        capsys.readouterr().out
    )
    # The stack file names the revocation the keys carry, and the override (the program's own validation reads it).
    revocation = load_stack_config(project, STACK).revocation
    assert revocation is not None
    assert revocation.id == live(moto_endpoint, "us-east-1").tags[TAG_REVOCATION_ID]
    assert revocation.override == justification
    text = (project / f"Pulumi.{STACK}.yaml").read_text()
    assert f"    id: {revocation.id}\n    override: {justification}\n" in text


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--reason", "", "--ticket", "SEC-1"], "--reason: '' is not allowed; required: non-empty text"),
        (["--reason", "   ", "--ticket", "SEC-1"], "--reason: '   ' is not allowed; required: non-empty text"),
        (["--reason", "x" * 257, "--ticket", "SEC-1"], "at most 256 characters (it becomes a KMS tag); got 257"),
        (["--reason", "breach, see wiki", "--ticket", "SEC-1"], "use letters, digits, spaces and _ . : / = + - @"),
        (["--reason", "breach", "--ticket", "SEC 1"], "--ticket: 'SEC 1' is not allowed; a ticket id such as SEC-1234"),
        (["--reason", "line one\nline two", "--ticket", "SEC-1"], "not U+000A LINE FEED"),
        (
            ["--reason", "a\rb", "--ticket", "SEC-1"],
            "--reason: 'a\\rb' is not allowed; use letters, digits, spaces and _ . : / = + - @ (ASCII, the AWS tag "
            "character set), not U+000D CARRIAGE RETURN",
        ),
        (["--reason", "tab\there", "--ticket", "SEC-1"], "not U+0009 CHARACTER TABULATION"),
        (["--reason", "breach\n", "--ticket", "SEC-1"], "not U+000A LINE FEED"),
        (["--reason", "café breach", "--ticket", "SEC-1"], "not U+00E9 LATIN SMALL LETTER E WITH ACUTE"),
        (["--reason", "breach", "--ticket", "S\u0415C-1"], "not U+0415 CYRILLIC CAPITAL LETTER IE"),
        (["--reason", "breach", "--ticket", ""], "--ticket: '' is not allowed; required: a ticket id"),
        (
            ["--reason", "b", "--ticket", "S-1", "--override-reencryption-guard", ""],
            "--override-reencryption-guard: ''",
        ),
        (["--ticket", "SEC-1"], "the following arguments are required: --reason"),
    ],
)
def test_revoke_bad_input_exits_64_before_any_aws_call(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)

    with fault_proxy(moto_endpoint) as proxy:
        code = main(["revoke", "--project-dir", str(project), "--yes", *flags], runtime=runtime(proxy.url))

    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert expected in err
    assert len(err.strip().splitlines()) == 1
    assert proxy.calls == []
    assert states(moto_endpoint) == {"us-east-1": "Enabled", "us-west-2": "Enabled"}


def test_revoke_with_a_bad_stack_file_exits_64_and_changes_nothing(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    provision(stack_dir(tmp_path), moto_endpoint)
    project = stack_dir(tmp_path, {"atlassian-cmk:contextTag: AcmeCMK": "atlassian-cmk:contextTag: Acme-CMK!"})

    with fault_proxy(moto_endpoint) as proxy:
        code = revoke(project, runtime(proxy.url), "--yes")

    assert code == ExitCode.USAGE
    assert "atlassian-cmk:contextTag: 'Acme-CMK!' is not allowed" in capsys.readouterr().err
    assert proxy.calls == []


@pytest.mark.parametrize("answer", ["staging", "", None])
def test_revoke_without_yes_refuses_unless_the_stack_name_is_typed(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str], answer: str | None
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)

    code = revoke(project, runtime(moto_endpoint, answer=answer))

    assert code == ExitCode.REFUSED
    assert "Not confirmed" in capsys.readouterr().err
    assert states(moto_endpoint) == {"us-east-1": "Enabled", "us-west-2": "Enabled"}


def test_revoke_proceeds_when_the_operator_types_the_stack_name(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)

    code = revoke(project, runtime(moto_endpoint, answer="prod"))

    assert code == ExitCode.AS_DECLARED
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Disabled"}


def test_a_region_failing_its_first_calls_is_retried_and_converges(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)

    with fault_proxy(moto_endpoint) as proxy:
        proxy.fail("us-west-2", times=2, operations={"DisableKey", "TagResource"})
        code = revoke(project, runtime(proxy.url, attempts=3), "--yes")

    assert code == ExitCode.AS_DECLARED
    # The region's first two writes fail: DisableKey and the lease's TagResource go out together (revocation
    # never waits for the lease), so the failures fall on either; both are retried within the same bounds.
    assert len(proxy.failed) == 2
    assert {call.region for call in proxy.failed} == {"us-west-2"}
    assert {call.operation for call in proxy.failed} <= {"DisableKey", "TagResource"}
    assert "LEASE NOT HELD" not in capsys.readouterr().out
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Disabled"}
    assert record(moto_endpoint, "us-east-1") == record(moto_endpoint, "us-west-2")


def test_a_region_that_keeps_failing_ends_split_and_a_later_run_converges(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    stack_text = (project / "Pulumi.prod.yaml").read_text()

    with fault_proxy(moto_endpoint) as proxy:
        proxy.fail("us-west-2", times=1000, operations={"DisableKey"})
        code = revoke(project, runtime(proxy.url, attempts=3), "--yes", "--write-config")
        out = unwrap(capsys.readouterr().out)
        assert code == ExitCode.SPLIT
        assert len(proxy.failed) == 3  # bounded: the policy's attempts, then reported
        assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Enabled"}  # east is never re-enabled
        assert "SPLIT: us-east-1 disabled; us-west-2 NOT disabled" in out
        assert "run `cmkctl revoke` again to converge" in out
        assert "Not writing" in out and (project / "Pulumi.prod.yaml").read_text() == stack_text
        east_record = record(moto_endpoint, "us-east-1")

        proxy.clear_faults()
        code = revoke(project, runtime(proxy.url), "--yes", "--write-config", ticket="SEC-LATER")

    assert code == ExitCode.AS_DECLARED
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Disabled"}
    # The revocation started with the first run: its record wins in both regions.
    assert record(moto_endpoint, "us-east-1") == east_record == record(moto_endpoint, "us-west-2")
    written = (project / "Pulumi.prod.yaml").read_text()
    assert "atlassian-cmk:enabled: false" in written and "ticket: SEC-1" in written


def test_a_dead_region_refuses_revoke_unless_overridden_then_splits_then_converges(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    dead = dead_endpoint()
    west_down = runtime(lambda region: dead if region == "us-west-2" else moto_endpoint)

    refused = revoke(project, west_down, "--yes")
    err = capsys.readouterr().err
    assert refused == ExitCode.UNREACHABLE
    assert "re-encryption cannot be ruled out" in err and "us-west-2" in err
    assert states(moto_endpoint) == {"us-east-1": "Enabled", "us-west-2": "Enabled"}

    partial = revoke(project, west_down, "--yes", "--override-reencryption-guard", "us-west-2 outage during breach")
    assert partial == ExitCode.SPLIT
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Enabled"}
    assert "SPLIT: us-east-1 disabled; us-west-2 NOT disabled" in unwrap(capsys.readouterr().out)

    assert revoke(project, runtime(moto_endpoint), "--yes") == ExitCode.AS_DECLARED
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Disabled"}
    assert live(moto_endpoint, "us-west-2").tags[TAG_GUARD_OVERRIDE] == "us-west-2 outage during breach"


def test_revoke_with_a_key_pending_deletion_disables_the_rest_and_exits_5(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    keys = {key.region: key for key in provision(project, moto_endpoint)}
    kms(moto_endpoint, "us-west-2").schedule_key_deletion(KeyId=keys["us-west-2"].key_id, PendingWindowInDays=7)

    code = revoke(project, runtime(moto_endpoint), "--yes")

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.KEY_LOST
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "PendingDeletion"}
    assert f"aws kms cancel-key-deletion --region us-west-2 --key-id {keys['us-west-2'].key_id}" in out
