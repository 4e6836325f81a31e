"""`cmkctl restore`: end to end, the 10-day window, idempotence, refusals and partial failure."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from atlassian_cmk.cli.main import Runtime, main
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.naming import (
    TAG_ENABLED,
    TAG_RESTORE_TICKET,
    TAG_RESTORED_AT,
    TAG_RESTORED_BY,
    TAG_REVOCATION_TICKET,
    TAG_REVOKED_AT,
)
from atlassian_cmk.timeline import parse_iso
from tests.support.cmkctl import REGIONS, kms, live, provision, runtime, stack_dir, unwrap
from tests.support.faults import dead_endpoint, fault_proxy

MOTO_CALLER = "arn:aws:sts::123456789012:user/moto"


def revoke(project: Path, endpoint: str, *extra: str) -> None:
    argv = ["revoke", "--project-dir", str(project), "--reason", "Suspected breach", "--ticket", "SEC-1", "--yes"]
    assert main([*argv, *extra], runtime=runtime(endpoint)) == ExitCode.AS_DECLARED


def restore(project: Path, rt: Runtime, *extra: str, ticket: str = "SEC-1") -> int:
    return main(["restore", "--project-dir", str(project), "--ticket", ticket, *extra], runtime=rt)


def states(endpoint: str) -> dict[str, str]:
    return {region: live(endpoint, region).key_state for region in REGIONS}


@pytest.fixture
def revoked_project(tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]) -> Path:
    project = stack_dir(tmp_path)
    provision(project, moto_endpoint)
    revoke(project, moto_endpoint)
    capsys.readouterr()
    return project


def test_restore_enables_every_region_tags_and_names_the_remaining_atlassian_step(
    revoked_project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    revoked_at = live(moto_endpoint, "us-east-1").tags[TAG_REVOKED_AT]

    code = restore(revoked_project, runtime(moto_endpoint), "--yes", ticket="SEC-1-RESTORE")

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.AS_DECLARED
    assert states(moto_endpoint) == {"us-east-1": "Enabled", "us-west-2": "Enabled"}
    for region in REGIONS:
        tags = live(moto_endpoint, region).tags
        assert tags[TAG_ENABLED] == "true"
        assert tags[TAG_RESTORE_TICKET] == "SEC-1-RESTORE"
        assert tags[TAG_RESTORED_BY] == MOTO_CALLER
        assert parse_iso(tags[TAG_RESTORED_AT]) is not None
        # Kept as history: when it was last revoked, and under which ticket.
        assert tags[TAG_REVOKED_AT] == revoked_at
        assert tags[TAG_REVOCATION_TICKET] == "SEC-1"
    assert "INSIDE the 10-day reinstatement window" in out
    assert "reply on the same Atlassian support ticket that access is restored" in out
    # The stack file already says enabled: true (the revoke was never committed): nothing to commit.
    assert "already declares this; nothing to commit" in out


def test_restore_outside_the_window_says_so(
    revoked_project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    revoked_at = parse_iso(live(moto_endpoint, "us-east-1").tags[TAG_REVOKED_AT])
    assert revoked_at is not None
    eleven_days_later = revoked_at + timedelta(days=11)

    code = restore(revoked_project, runtime(moto_endpoint, now=lambda: eleven_days_later), "--yes")

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.AS_DECLARED
    assert "OUTSIDE the 10-day reinstatement window" in out
    assert "window has passed" in out


def test_restore_twice_changes_nothing_the_second_time(
    revoked_project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert restore(revoked_project, runtime(moto_endpoint), "--yes") == ExitCode.AS_DECLARED
    first = {region: dict(live(moto_endpoint, region).tags) for region in REGIONS}
    capsys.readouterr()

    with fault_proxy(moto_endpoint) as proxy:
        code = restore(revoked_project, runtime(proxy.url), "--yes", ticket="SEC-OTHER")

    out = unwrap(capsys.readouterr().out)
    assert code == ExitCode.AS_DECLARED
    assert {region: dict(live(moto_endpoint, region).tags) for region in REGIONS} == first
    assert proxy.operations() <= {"DescribeKey", "ListResourceTags", "GetCallerIdentity"}
    assert "Nothing to restore: the key is Enabled in every region (us-east-1, us-west-2)." in out
    assert "Type the stack name" not in out


def test_restore_round_trips_the_stack_file_written_by_revoke(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    original = (project / "Pulumi.prod.yaml").read_text()
    provision(project, moto_endpoint)
    revoke(project, moto_endpoint, "--write-config")
    assert "atlassian-cmk:enabled: false" in (project / "Pulumi.prod.yaml").read_text()

    code = restore(project, runtime(moto_endpoint), "--yes", "--write-config")

    assert code == ExitCode.AS_DECLARED
    assert (project / "Pulumi.prod.yaml").read_text() == original
    assert "-  atlassian-cmk:revocation:" in unwrap(capsys.readouterr().out)


def test_revoke_then_restore_keep_the_quotes_pulumi_config_set_wrote(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # `pulumi config set atlassian-cmk:enabled true` stores the string "true", which yaml.v3 writes quoted.
    project = stack_dir(tmp_path, {"atlassian-cmk:enabled: true": 'atlassian-cmk:enabled: "true"'})
    original = (project / "Pulumi.prod.yaml").read_text()
    provision(project, moto_endpoint)
    revoke(project, moto_endpoint, "--write-config")
    assert 'atlassian-cmk:enabled: "false"' in (project / "Pulumi.prod.yaml").read_text()

    code = restore(project, runtime(moto_endpoint), "--yes", "--write-config")

    assert code == ExitCode.AS_DECLARED
    assert (project / "Pulumi.prod.yaml").read_bytes() == original.encode()


def test_restore_refuses_while_a_key_is_pending_deletion(
    revoked_project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    west = live(moto_endpoint, "us-west-2")
    kms(moto_endpoint, "us-west-2").schedule_key_deletion(KeyId=west.key_id, PendingWindowInDays=7)

    code = restore(revoked_project, runtime(moto_endpoint), "--yes")

    err = capsys.readouterr().err
    assert code == ExitCode.KEY_LOST
    assert f"cancel-key-deletion --region us-west-2 --key-id {west.key_id}" in err
    assert "then run `cmkctl restore` again" in err
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "PendingDeletion"}


def test_restore_with_every_region_unreachable_exits_3(
    revoked_project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = restore(revoked_project, runtime(dead_endpoint()), "--yes")

    assert code == ExitCode.UNREACHABLE
    assert "Cannot reach any region" in capsys.readouterr().err
    assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Disabled"}


def test_restore_partial_failure_splits_and_a_later_run_converges(
    revoked_project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with fault_proxy(moto_endpoint) as proxy:
        proxy.fail("us-east-1", times=1000, operations={"EnableKey"})
        code = restore(revoked_project, runtime(proxy.url), "--yes")
        out = unwrap(capsys.readouterr().out)
        assert code == ExitCode.SPLIT
        assert states(moto_endpoint) == {"us-east-1": "Disabled", "us-west-2": "Enabled"}
        assert "SPLIT: us-west-2 enabled; us-east-1 NOT enabled" in out
        assert "Remaining step" not in out  # not before every region is back

        proxy.clear_faults()
        assert restore(revoked_project, runtime(proxy.url), "--yes") == ExitCode.AS_DECLARED

    assert states(moto_endpoint) == {"us-east-1": "Enabled", "us-west-2": "Enabled"}


def test_restore_ticket_with_spaces_exits_64_before_any_aws_call(
    revoked_project: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with fault_proxy(moto_endpoint) as proxy:
        code = restore(revoked_project, runtime(proxy.url), "--yes", ticket="SEC 1")

    assert code == ExitCode.USAGE
    assert "--ticket: 'SEC 1' is not allowed" in capsys.readouterr().err
    assert proxy.calls == []


def test_nothing_to_restore_is_not_said_when_a_revocation_started_after_the_first_read(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 14 attack: a restore racing a revoke said "Nothing to restore: Enabled in every region" and
    advised committing `enabled: true` while the revoke had disabled the keys. The second reading of
    us-west-2's key is followed by the key being disabled (the revoke's DisableKey landing in between)."""
    project = stack_dir(tmp_path)
    keys = provision(project, moto_endpoint)
    west = next(key for key in keys if key.region == "us-west-2")
    base = runtime(moto_endpoint)
    reads = {"count": 0}

    def revoke_lands_after_the_first_read(**_: object) -> None:
        reads["count"] += 1
        if reads["count"] == 1:  # the first reading of us-west-2 is complete: the revoke lands now
            kms(moto_endpoint, "us-west-2").disable_key(KeyId=west.key_id)

    def factory(service: str, region: str) -> object:
        client = base.client_factory(service, region)
        if (service, region) == ("kms", "us-west-2") and not getattr(client, "_race_hooked", False):
            client.meta.events.register("after-call.kms.ListResourceTags", revoke_lands_after_the_first_read)
            client._race_hooked = True
        return client

    rt = Runtime(factory, base.policy, base.now, base.ask)
    code = restore(project, rt, "--yes", ticket="SEC-2")

    captured = capsys.readouterr()
    out, err = unwrap(captured.out), unwrap(captured.err)
    assert code == ExitCode.SPLIT, out + err
    assert reads["count"] == 2  # read once, then once more before answering
    assert "Nothing to restore" not in out
    assert "RESTORE OVERTAKEN" in err and "the key no longer reads Enabled in us-west-2" in err
    assert states(moto_endpoint) == {"us-east-1": "Enabled", "us-west-2": "Disabled"}  # restore changed nothing
    assert "enabled: true" not in out
