"""Break-glass with two key generations (issue 15 item 2/4): revoke disables every held generation,
restore enables the current one only; the guard still stops a revoke during re-encryption."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from atlassian_cmk.aws.kms_reads import read_key
from atlassian_cmk.aws.provision import ProvisionedKey, create_key_pair
from atlassian_cmk.cli.main import Runtime, main
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.naming import (
    TAG_RESTORE_TICKET,
    TAG_RESTORED_AT,
    TAG_RESTORED_BY,
    TAG_REVOCATION_ID,
    TAG_REVOCATION_REASON,
    TAG_REVOCATION_TICKET,
)
from atlassian_cmk.stack_file import load_stack_config
from tests.support.cmkctl import (
    REGIONS,
    STACK,
    arns_block,
    emulator_clients,
    key_states,
    kms,
    runtime,
    stack_dir,
    two_generations,
)
from tests.support.faults import fault_proxy
from tests.support.key_policy_proxy import enforce_key_policy


def tags(endpoint: str, key: ProvisionedKey) -> dict[str, str]:
    reading = read_key(kms(endpoint, key.region), key.region, key.key_id)
    assert reading.key is not None
    return dict(reading.key.tags)


def quiet_cloudtrail(endpoint: str) -> Runtime:
    """The emulator for KMS and STS; CloudTrail (not in the emulator) stubbed with botocore's Stubber on the
    real client: every LookupEvents finds no event, so Atlassian is not seen re-encrypting."""
    clients: dict[str, Any] = {}
    for region in REGIONS:
        client = boto3.client("cloudtrail", region_name=region, aws_access_key_id="x", aws_secret_access_key="x")
        stub = Stubber(client)
        for _ in range(50):
            stub.add_response("lookup_events", {"Events": []})
        stub.activate()
        clients[region] = client
    base = runtime(endpoint)

    def factory(service: str, region: str) -> Any:
        return clients[region] if service == "cloudtrail" else base.client_factory(service, region)

    return Runtime(factory, base.policy, base.now, base.ask)


REVOKE = ["revoke", "--reason", "Suspected breach", "--ticket", "SEC-1", "--yes"]
DISABLED = {"us-east-1": "Disabled", "us-west-2": "Disabled"}
ENABLED = {"us-east-1": "Enabled", "us-west-2": "Enabled"}


@pytest.mark.parametrize(
    ("record_next", "enrolled_tag"),
    [(True, False), (False, False), (False, True)],
    ids=["nextKeys recorded", "next behind its alias only", "nextKeys dropped, next keys tagged enrolled"],
)
def test_revoke_while_preparing_disables_both_generations_in_every_region(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str], record_next: bool, enrolled_tag: bool
) -> None:
    project, current, following = two_generations(tmp_path, moto_endpoint, "preparing", record_next=record_next)
    for key in following if enrolled_tag else ():  # a stack file that dropped nextKeys after their apply (issue 15)
        kms(moto_endpoint, key.region).tag_resource(
            KeyId=key.key_id, Tags=[{"TagKey": "atlassian-cmk:enrolled", "TagValue": "true"}]
        )

    code = main([*REVOKE, "--format", "json", "--project-dir", str(project)], runtime=quiet_cloudtrail(moto_endpoint))
    document = json.loads(capsys.readouterr().out)

    assert code == ExitCode.AS_DECLARED
    assert key_states(moto_endpoint, current) == DISABLED and key_states(moto_endpoint, following) == DISABLED
    rows = {(row["region"], row["generation"]): row for row in document["regions"]}
    assert set(rows) == {(r, g) for r in DISABLED for g in ("current", "next")}
    assert {row["action"] for row in rows.values()} == {"disabled"}
    assert {row["before"] for row in rows.values()} == {"Enabled"}
    # One revocation, one record on every key of every generation.
    ids = {tags(moto_endpoint, key)[TAG_REVOCATION_ID] for key in (*current, *following)}
    assert len(ids) == 1


def test_revoke_during_in_progress_is_refused_for_every_generation_unless_overridden(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project, current, following = two_generations(tmp_path, moto_endpoint, "in-progress")

    refused = main([*REVOKE, "--project-dir", str(project)], runtime=quiet_cloudtrail(moto_endpoint))
    err = capsys.readouterr().err
    assert refused == ExitCode.REFUSED and "re-encryption is declared in progress" in err
    # Each region once, and the generations by role (issue 15 review, finding 12).
    said = " ".join(err.split())
    assert (
        "the deployed key of each generation (current, next) in each of us-east-1 and us-west-2 is tagged "
        "re-encryption in-progress"
    ) in said, said
    assert key_states(moto_endpoint, current) == ENABLED and key_states(moto_endpoint, following) == ENABLED

    overridden = main(
        [*REVOKE, "--project-dir", str(project), "--override-reencryption-guard", "CISO approved"],
        runtime=quiet_cloudtrail(moto_endpoint),
    )
    out = capsys.readouterr().out
    assert overridden == ExitCode.AS_DECLARED
    assert key_states(moto_endpoint, current) == DISABLED and key_states(moto_endpoint, following) == DISABLED
    assert "us-east-1 (next)" in out and "GUARD OVERRIDDEN" in out


def test_restore_enables_the_current_generation_only_and_says_the_next_stays_disabled(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project, current, following = two_generations(tmp_path, moto_endpoint, "preparing")
    assert (
        main([*REVOKE, "--project-dir", str(project)], runtime=quiet_cloudtrail(moto_endpoint)) == ExitCode.AS_DECLARED
    )
    capsys.readouterr()

    code = main(
        ["restore", "--ticket", "SEC-2", "--yes", "--format", "json", "--project-dir", str(project)],
        runtime=quiet_cloudtrail(moto_endpoint),
    )
    document = json.loads(capsys.readouterr().out)

    assert code == ExitCode.AS_DECLARED
    assert key_states(moto_endpoint, current) == ENABLED
    assert key_states(moto_endpoint, following) == DISABLED  # never by break-glass: the reviewed change enables it
    assert {(row["generation"], row["action"]) for row in document["regions"]} == {("current", "enabled")}
    assert any("generation 2 (next) stays disabled in us-east-1, us-west-2" in m for m in document["messages"])


def test_revoke_refuses_when_the_unrecorded_next_keys_alias_is_gone_but_its_key_is_there(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """preparing, nextKeys not recorded, alias/atlassian-cmk/prod/next deleted in us-west-2: the next key there
    (found by its stack and generation tags) would stay enabled, so nothing is disabled and the run says why."""
    project, current, following = two_generations(tmp_path, moto_endpoint, "preparing", record_next=False)
    kms(moto_endpoint, "us-west-2").delete_alias(AliasName=f"alias/atlassian-cmk/{STACK}/next")

    code = main([*REVOKE, "--project-dir", str(project)], runtime=quiet_cloudtrail(moto_endpoint))
    captured = capsys.readouterr()

    assert code == ExitCode.REFUSED, captured.out
    hidden = next(key for key in following if key.region == "us-west-2")
    said = " ".join(captured.err.split())  # the text wraps within 100 columns
    assert f"us-west-2: no key behind alias/atlassian-cmk/{STACK}/next, but {hidden.arn} carries" in said
    assert "nothing to disable there" not in captured.out
    assert key_states(moto_endpoint, current) == ENABLED and key_states(moto_endpoint, following) == ENABLED


def test_revoke_while_preparing_before_the_next_keys_exist_disables_the_current_ones(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """preparing declared, `pulumi up` not run: no next key anywhere, so there is nothing of it to disable."""
    project = stack_dir(tmp_path, {"    status: none": "    status: preparing\n    ticket: PS-1"})
    current = create_key_pair(load_stack_config(project, STACK), STACK, client_factory=emulator_clients(moto_endpoint))
    path = project / f"Pulumi.{STACK}.yaml"
    path.write_text(path.read_text() + f"  atlassian-cmk:enrolledKeys:\n{arns_block(current)}")

    code = main([*REVOKE, "--project-dir", str(project)], runtime=quiet_cloudtrail(moto_endpoint))
    out = capsys.readouterr().out

    assert code == ExitCode.AS_DECLARED, out
    said = " ".join(out.split())  # the text wraps within 100 columns
    assert f"no key behind alias/atlassian-cmk/{STACK}/next in us-east-1, us-west-2; nothing to disable there" in said
    assert key_states(moto_endpoint, current) == DISABLED


@pytest.mark.parametrize("record_next", [False, True], ids=["/next moved before recording", "foreign nextKeys"])
def test_revoke_with_a_foreign_next_key_says_what_to_fix_not_run_again(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str], record_next: bool
) -> None:
    """Issue 15 review, finding 6: a next key that is not the stack's is refused; rerunning can never converge,
    so the run names the fix (put /next back, or restore nextKeys) instead of "run `cmkctl revoke` again"."""
    project, current, following = two_generations(tmp_path, moto_endpoint, "preparing", record_next=record_next)
    client = kms(moto_endpoint, "us-east-1")
    foreign = client.create_key(Description="not the stack's")["KeyMetadata"]["Arn"]
    if record_next:
        path = project / f"Pulumi.{STACK}.yaml"
        path.write_text(path.read_text().replace(following[0].arn, foreign))
    else:
        client.update_alias(AliasName=f"alias/atlassian-cmk/{STACK}/next", TargetKeyId=foreign)

    # The guard fails closed on the foreign key's missing re-encryption tag: the incident overrides it (as in s2).
    override = ["--override-reencryption-guard", "CISO approved"]
    code = main([*REVOKE, *override, "--project-dir", str(project)], runtime=quiet_cloudtrail(moto_endpoint))
    captured = capsys.readouterr()
    said = " ".join((captured.out + captured.err).split())  # the text wraps within 100 columns

    assert code == ExitCode.REFUSED, said
    assert "run `cmkctl revoke` again first" not in said
    assert "and running `cmkctl revoke` again cannot: cmkctl refused a key that is not the stack's" in said
    if record_next:
        assert (
            "us-east-1 (next): atlassian-cmk:nextKeys names a key that is not the stack's; restore "
            f"atlassian-cmk:nextKeys from the base branch (`git checkout origin/main -- Pulumi.{STACK}.yaml`)"
        ) in said
    else:
        assert (
            f"us-east-1 (next): alias/atlassian-cmk/{STACK}/next names a key that is not the stack's; put it back on "
            "the program's next key (`pulumi stack output nextKeyArns`): `aws kms update-alias --alias-name "
            f"alias/atlassian-cmk/{STACK}/next --target-key-id <the program's next key ID> --region us-east-1`"
        ) in said
    assert key_states(moto_endpoint, current) == DISABLED  # the keys cmkctl may act on were disabled
    assert key_states(moto_endpoint, following)["us-west-2"] == "Disabled"


def _run(project: Path, endpoint: str, *argv: str) -> int:
    return main([*argv, "--yes", "--project-dir", str(project)], runtime=runtime(endpoint))


def test_a_restore_closes_the_incident_on_the_next_keys_so_a_new_revoke_records_its_own_incident(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12 review, finding 1 (no race): revoke OLD-A, restore, revoke NEW-B on a stack with the next
    generation recorded. Restore enables the current keys only; the next keys stay disabled, and their copy of
    OLD-A's record used to stay open, so NEW-B took OLD-A for the realm's record ("aligned ... another revoke at
    the same time", OLD-A's reason and ticket in its config change). Now restore closes OLD-A on the next keys
    too (they stay disabled), and NEW-B records itself on every key of both generations."""
    project, current, following = two_generations(tmp_path, moto_endpoint, "preparing")
    assert _run(project, moto_endpoint, "revoke", "--reason", "Old incident A", "--ticket", "OLD-A") == 0
    old_id = tags(moto_endpoint, current[0])[TAG_REVOCATION_ID]
    assert _run(project, moto_endpoint, "restore", "--ticket", "OLD-A") == 0
    assert key_states(moto_endpoint, current) == ENABLED and key_states(moto_endpoint, following) == DISABLED
    for key in following:
        closed = tags(moto_endpoint, key)
        assert closed[TAG_REVOCATION_ID] == old_id and closed[TAG_RESTORED_AT] and closed[TAG_RESTORE_TICKET] == "OLD-A"
        assert closed[TAG_RESTORED_AT] == tags(moto_endpoint, current[0])[TAG_RESTORED_AT]  # one restore record
    capsys.readouterr()

    code = _run(project, moto_endpoint, "revoke", "--reason", "New incident B", "--ticket", "NEW-B")

    out = capsys.readouterr().out
    assert code == ExitCode.AS_DECLARED, out
    new_ids = {tags(moto_endpoint, key)[TAG_REVOCATION_ID] for key in (*current, *following)}
    assert len(new_ids) == 1 and old_id not in new_ids
    for key in (*current, *following):
        record = tags(moto_endpoint, key)
        assert (record[TAG_REVOCATION_REASON], record[TAG_REVOCATION_TICKET]) == ("New incident B", "NEW-B")
        assert not record.get(TAG_RESTORED_AT)
    assert "ANOTHER REVOCATION STANDS" not in out and "aligned" not in out and "OLD-A" not in out
    assert "+    ticket: NEW-B" in out


def test_a_restore_rerun_closes_an_incident_an_earlier_restore_left_open_on_the_next_keys(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stacks restored before the fix above carry the restored incident open on the next keys: `cmkctl restore`
    finds nothing to restore on the current keys and closes it there with that restore's record."""
    project, current, following = two_generations(tmp_path, moto_endpoint, "preparing")
    assert _run(project, moto_endpoint, "revoke", "--reason", "Old incident A", "--ticket", "OLD-A") == 0
    assert _run(project, moto_endpoint, "restore", "--ticket", "OLD-A") == 0
    for key in following:  # the state an earlier restore left: OLD-A open on the next keys
        kms(moto_endpoint, key.region).tag_resource(
            KeyId=key.key_id,
            Tags=[{"TagKey": t, "TagValue": ""} for t in (TAG_RESTORED_AT, TAG_RESTORE_TICKET, TAG_RESTORED_BY)],
        )
    restored_at = tags(moto_endpoint, current[0])[TAG_RESTORED_AT]
    capsys.readouterr()

    assert _run(project, moto_endpoint, "restore", "--ticket", "OLD-A") == ExitCode.AS_DECLARED

    assert "Nothing to restore" in capsys.readouterr().out
    for key in following:
        closed = tags(moto_endpoint, key)
        assert (closed[TAG_RESTORED_AT], closed[TAG_RESTORE_TICKET]) == (restored_at, "OLD-A")
    assert key_states(moto_endpoint, following) == DISABLED


def test_status_names_two_revocation_records_across_generations_exit_9(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12 review, finding 2: two operators at once can leave the next keys under another revocation id
    than the current ones (a restore yielding to a revoke records it under a new id). `status` said nothing;
    now RECORDS DIFFER names each id with its keys, exit 9."""
    project, current, following = two_generations(tmp_path, moto_endpoint, "preparing")
    assert _run(project, moto_endpoint, "revoke", "--reason", "Incident", "--ticket", "SEC-1") == 0
    first = tags(moto_endpoint, current[0])[TAG_REVOCATION_ID]
    for key in following:
        kms(moto_endpoint, key.region).tag_resource(
            KeyId=key.key_id, Tags=[{"TagKey": TAG_REVOCATION_ID, "TagValue": "rev-20261130T000000Z-other1"}]
        )
    capsys.readouterr()

    code = main(["status", "--project-dir", str(project)], runtime=runtime(moto_endpoint))

    out = " ".join(capsys.readouterr().out.split())
    assert code == ExitCode.RECORD_NOT_WRITTEN, out
    assert (
        "RECORDS DIFFER: the disabled keys carry 2 revocation records (rev-20261130T000000Z-other1 in us-east-1 "
        f"(next), us-west-2 (next); {first} in us-east-1, us-west-2)"
    ) in out


def test_every_write_of_revoke_restore_and_revoke_again_on_two_generations_is_allowed_by_the_key_policy(
    tmp_path: Path, moto_endpoint: str
) -> None:
    """The policy-agreement check (tests/test_break_glass_policy_agreement.py) on two generations, through a
    proxy that refuses what the key policy and the break-glass role deny (tests/support/key_policy_proxy.py):
    revoke, restore (which closes the incident on the next keys too) and a new revoke send no write AWS
    would refuse, and end as on the emulator alone."""
    project, current, following = two_generations(tmp_path, moto_endpoint, "preparing")
    with fault_proxy(moto_endpoint) as proxy:
        denied = enforce_key_policy(proxy, moto_endpoint, project)
        rt = runtime(proxy.url)
        assert main([*REVOKE, "--project-dir", str(project)], runtime=rt) == ExitCode.AS_DECLARED
        assert main(["restore", "--ticket", "SEC-1", "--yes", "--project-dir", str(project)], runtime=rt) == 0
        again = ["revoke", "--reason", "Second incident", "--ticket", "SEC-2", "--yes", "--project-dir", str(project)]
        assert main(again, runtime=rt) == ExitCode.AS_DECLARED

    assert denied == []
    assert key_states(moto_endpoint, current) == DISABLED and key_states(moto_endpoint, following) == DISABLED
    assert {tags(moto_endpoint, key)[TAG_REVOCATION_TICKET] for key in (*current, *following)} == {"SEC-2"}
