"""`cmkctl status` per key generation (issue 15 item 4) against the emulator, with CloudTrail's evidence of
re-encryption through botocore's Stubber (Atlassian's cross-account calls never reach the emulator)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from atlassian_cmk.aws.provision import ProvisionedKey, create_key_pair
from atlassian_cmk.cli.main import Runtime, main
from atlassian_cmk.cli.render import TABLE_WIDTH
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.stack_file import load_stack_config
from tests.support.cmkctl import REGIONS, STACK, emulator_clients, stack_dir, two_generations
from tests.support.faults import fast_client_factory
from tests.test_reencryption_activity import event

NOW = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)


def runtime_with(endpoint: str, answers: dict[str, list[dict[str, Any]]]) -> tuple[Runtime, list[Stubber]]:
    """The emulator for KMS and STS; per region a stubbed CloudTrail client answering `answers` in order."""
    clients: dict[str, Any] = {}
    stubs = []
    for region, responses in answers.items():
        client = boto3.client("cloudtrail", region_name=region, aws_access_key_id="x", aws_secret_access_key="x")
        stub = Stubber(client)
        for response in responses:
            if "error" in response:
                stub.add_client_error("lookup_events", service_error_code=response["error"], service_message="denied")
            else:
                stub.add_response("lookup_events", response)
        stub.activate()
        clients[region] = client
        stubs.append(stub)
    aws = fast_client_factory(endpoint)
    rt = Runtime(
        client_factory=lambda service, region: clients[region] if service == "cloudtrail" else aws(service, region),
        now=lambda: NOW,
    )
    return rt, stubs


def status(project: Path, rt: Runtime, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["status", "--project-dir", str(project), *extra], runtime=rt)
    return code, capsys.readouterr().out


def test_status_shows_each_generation_and_atlassian_re_encrypting(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project, current, following = two_generations(tmp_path, moto_endpoint, "in-progress")
    answers = {
        old.region: [
            {"Events": [event(old.arn, "Decrypt", NOW - timedelta(minutes=3))]},
            {"Events": [event(new.arn, "GenerateDataKey", NOW - timedelta(minutes=2))]},
        ]
        for old, new in zip(current, following, strict=True)
    }
    rt, stubs = runtime_with(moto_endpoint, answers)

    code, out = status(project, rt, capsys)

    assert code == ExitCode.AS_DECLARED, out
    assert "Key generations: re-encryption in-progress (ticket PS-1)" in out
    assert "GEN  ROLE     REGION     KEY STATE  ATLASSIAN USE (CLOUDTRAIL)" in out
    assert "1    current  us-east-1  Enabled    Decrypt 11-29 17:57Z" in out
    assert "2    next     us-west-2  Enabled    GenerateDataKey 11-29 17:58Z" in out
    for key in (*current, *following):
        assert key.arn in out
    assert "since 2026-11-28T18:00:00Z):\n  us-east-1 re-encrypting\n  us-west-2 re-encrypting\n" in out
    section = out[out.index("Key generations") : out.index("  us-west-2 re-encrypting")].splitlines()
    assert len(section) == 12 and max(len(line) for line in section) <= TABLE_WIDTH
    for stub in stubs:
        stub.assert_no_pending_responses()


def test_status_json_per_generation_and_the_evidence(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project, current, following = two_generations(tmp_path, moto_endpoint, "preparing")
    answers: dict[str, list[dict[str, Any]]] = {
        "us-east-1": [
            {"Events": [event(current[0].arn, "Decrypt", NOW - timedelta(hours=1))]},
            {"Events": [event(following[0].arn, "Encrypt", NOW - timedelta(minutes=30))]},
        ],
        "us-west-2": [{"error": "AccessDeniedException"}, {"Events": []}],
    }
    rt, _ = runtime_with(moto_endpoint, answers)

    code, out = status(project, rt, capsys, "--json")
    document = json.loads(out)

    # Atlassian re-encrypting while the stack says preparing: the stack is wrong (DRIFT); us-west-2's evidence
    # unreadable is a reading in doubt (exit 3), which outranks it.
    assert code == ExitCode.UNREACHABLE
    (drift,) = [f for f in document["findings"] if f["kind"] == "drift"]
    assert drift["region"] == "us-east-1" and "declares reencryption.status preparing" in drift["message"]
    assert [(g["number"], g["role"], g["recorded"]) for g in document["generations"]] == [
        (1, "current", True),
        (2, "next", True),
    ]
    next_keys = document["generations"][1]["keys"]
    assert [(k["region"], k["key_arn"], k["key_state"]) for k in next_keys] == [
        (k.region, k.arn, "Enabled") for k in following
    ]
    evidence = document["reencryption_evidence"]
    assert (evidence["old_generation"], evidence["new_generation"]) == ("current", "next")
    assert evidence["window_start"] == "2026-11-28T18:00:00Z"
    east, west = evidence["regions"]
    assert (east["phase"], west["phase"]) == ("re-encrypting", "unknown")
    assert east["old_key_decrypt"]["event_name"] == "Decrypt"
    assert east["new_key_encrypt"]["last_seen"] == "2026-11-29T17:30:00Z"
    assert "AccessDeniedException" in west["old_key_decrypt"]["error"]
    (note,) = [f["message"] for f in document["findings"] if f["subkind"] == "reencryption-evidence"]
    assert "us-west-2" in note and "needs cloudtrail:LookupEvents" in note


def test_status_with_one_generation_reads_no_evidence(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = stack_dir(tmp_path)
    create_key_pair(load_stack_config(project, STACK), STACK, client_factory=emulator_clients(moto_endpoint))
    rt, _ = runtime_with(moto_endpoint, {region: [] for region in REGIONS})  # any LookupEvents would fail

    code, out = status(project, rt, capsys, "--json")
    document = json.loads(out)

    assert code == ExitCode.AS_DECLARED
    assert document["reencryption_evidence"] is None
    assert [(g["number"], g["role"]) for g in document["generations"]] == [(1, "current")]


def test_status_in_preparing_shows_the_next_generation_found_through_its_alias(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before nextKeys is recorded Atlassian holds one generation: no evidence is read, the next keys show."""
    project, _, following = two_generations(tmp_path, moto_endpoint, "preparing")
    path = project / f"Pulumi.{STACK}.yaml"
    text = path.read_text()
    path.write_text(text[: text.index("  atlassian-cmk:nextKeys:")])
    rt, _ = runtime_with(moto_endpoint, {region: [] for region in REGIONS})  # any LookupEvents would fail

    code, out = status(project, rt, capsys)

    assert code == ExitCode.AS_DECLARED, out
    assert "2    next     us-east-1  Enabled    -" in out
    assert "  generation 2 (next) is not recorded in atlassian-cmk:nextKeys: found through its alias" in out
    assert all(f"  2 {key.region} {key.arn}" in out for key in following)
    assert "Re-encryption evidence" not in out
    section = out[out.index("Key generations") :].split("\n\n")[0].splitlines()
    assert max(len(line) for line in section) <= TABLE_WIDTH


def answered(current: list[ProvisionedKey], following: list[ProvisionedKey]) -> dict[str, list[dict[str, Any]]]:
    """CloudTrail showing Atlassian re-encrypting in every region (old key decrypted, new key encrypting)."""
    return {
        old.region: [
            {"Events": [event(old.arn, "Decrypt", NOW - timedelta(minutes=3))]},
            {"Events": [event(new.arn, "GenerateDataKey", NOW - timedelta(minutes=2))]},
        ]
        for old, new in zip(current, following, strict=True)
    }


def test_status_in_progress_with_the_next_key_disabled_by_hand_is_drift_naming_the_generation(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project, current, following = two_generations(tmp_path, moto_endpoint, "in-progress")
    disabled = following[1]
    emulator_clients(moto_endpoint)("kms", disabled.region).disable_key(KeyId=disabled.arn.rsplit("/", 1)[1])
    rt, _ = runtime_with(moto_endpoint, answered(current, following))

    code, out = status(project, rt, capsys, "--json")
    document = json.loads(out)

    # The next generation split across regions is a SPLIT (exit 2), as for the current one, naming it.
    assert code == ExitCode.SPLIT, out
    (drift,) = [f for f in document["findings"] if f["kind"] == "drift"]
    assert drift["region"] == disabled.region
    assert f"generation 2 (next) key {disabled.arn} is Disabled; the stack gives it Enabled" in drift["message"]
    (split,) = [f for f in document["findings"] if f["kind"] == "split"]
    assert split["message"].startswith("SPLIT: generation 2 (next): the regions disagree")
    assert f"{disabled.region} Disabled" in split["message"]


@pytest.mark.parametrize("role", ["next", "retired"])
def test_status_with_a_next_or_retired_key_pending_deletion_is_critical_with_the_remedy(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str], role: str
) -> None:
    """Keys are never deleted: a next key (Atlassian re-encrypts to it) or a retired one (backups) scheduled
    for deletion is CRITICAL (exit 5) with the cancel-key-deletion command, as for a current key."""
    if role == "next":
        project, current, following = two_generations(tmp_path, moto_endpoint, "in-progress")
        doomed = following[1]
        rt, _ = runtime_with(moto_endpoint, answered(current, following))
    else:
        project, retired = retired_generation(tmp_path, moto_endpoint)
        doomed = retired[1]
        rt, _ = runtime_with(moto_endpoint, {region: [] for region in REGIONS})
    key_id = doomed.arn.rsplit("/", 1)[1]
    kms = emulator_clients(moto_endpoint)("kms", doomed.region)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)

    code, out = status(project, rt, capsys, "--json")
    document = json.loads(out)

    assert code == ExitCode.KEY_LOST, out
    number = 2 if role == "next" else 1
    criticals = [f for f in document["findings"] if f["kind"] == "critical"]
    assert len(criticals) == 1, criticals
    (critical,) = criticals
    assert critical["region"] == doomed.region
    assert critical["message"].startswith(
        f"CRITICAL: {doomed.region}: generation {number} ({role}) key {doomed.arn} is PendingDeletion: run "
        f"`aws kms cancel-key-deletion --region {doomed.region} --key-id {key_id}`"
    )


def retired_generation(tmp_path: Path, endpoint: str, disabled: int = 2) -> tuple[Path, list[ProvisionedKey]]:
    """Status none after retirement: generation 1 retired, generation 2 current. The first `disabled` retired
    keys (REGIONS order) are disabled as the program retires them; any other reads Enabled (re-enabled by hand)."""
    project = stack_dir(tmp_path)
    config = load_stack_config(project, STACK)
    clients = emulator_clients(endpoint)
    current = create_key_pair(config, STACK, client_factory=clients)
    retired = create_key_pair(config, STACK, key_pair="retired", client_factory=clients)  # as the promotion tags it
    for key in retired[:disabled]:
        clients("kms", key.region).disable_key(KeyId=key.arn.rsplit("/", 1)[1])
    path = project / f"Pulumi.{STACK}.yaml"
    path.write_text(
        path.read_text()
        + "  atlassian-cmk:enrolledKeys:\n"
        + "".join(f"    {k.region}: {k.arn}\n" for k in current)
        + "  atlassian-cmk:retiredKeys:\n"
        + "".join(f"    {'-' if i == 0 else ' '} {k.region}: {k.arn}\n" for i, k in enumerate(retired))
    )
    return project, retired


def test_status_with_a_retired_key_re_enabled_is_drift_naming_the_generation(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Status none after retirement: generation 1 (retired) must be disabled; one re-enabled by hand is DRIFT."""
    # Generation 1 in us-east-1 retired (disabled) as the program retires it; us-west-2's re-enabled by hand.
    project, retired = retired_generation(tmp_path, moto_endpoint, disabled=1)
    rt, _ = runtime_with(moto_endpoint, {region: [] for region in REGIONS})  # one generation held: no evidence

    code, out = status(project, rt, capsys)

    assert code == ExitCode.DRIFT, out
    assert (
        f"DRIFT: {retired[1].region}: generation 1 (retired) key {retired[1].arn} is Enabled; the stack gives it "
        "Disabled (retired keys are disabled outside complete (reencryption.status none)"
    ) in " ".join(out.split())
    assert f"generation 1 (retired) key {retired[0].arn}" not in out


def test_status_fails_closed_when_the_re_encryption_evidence_cannot_be_read(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two generations enrolled and CloudTrail unreadable: a finding and exit 3, never "as declared"."""
    project, _, _ = two_generations(tmp_path, moto_endpoint, "in-progress")
    denied: dict[str, list[dict[str, Any]]] = {
        region: [{"error": "AccessDeniedException"}, {"error": "AccessDeniedException"}] for region in REGIONS
    }
    rt, _ = runtime_with(moto_endpoint, denied)

    code, out = status(project, rt, capsys, "--json")
    document = json.loads(out)

    assert code == ExitCode.UNREACHABLE
    unknown = [f for f in document["findings"] if f["subkind"] == "reencryption-evidence"]
    assert [f["kind"] for f in unknown] == ["unreachable", "unreachable"]
    assert all(f["message"].startswith("RE-ENCRYPTION EVIDENCE UNKNOWN: ") for f in unknown)
    assert not [n for n in document["notes"] if "EVIDENCE UNKNOWN" in n]


def test_status_names_next_keys_enrolled_but_no_longer_recorded(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """nextKeys dropped from the stack file while the applied record (enrolled tag) is on the next keys (issue 15)."""
    project, _, following = two_generations(tmp_path, moto_endpoint, "in-progress")
    for key in following:  # what the apply of the recorded nextKeys wrote (generations.generation_key_tags)
        tags = [{"TagKey": "atlassian-cmk:enrolled", "TagValue": "true"}]
        emulator_clients(moto_endpoint)("kms", key.region).tag_resource(KeyId=key.key_id, Tags=tags)
    path = project / f"Pulumi.{STACK}.yaml"
    text = path.read_text()
    path.write_text(text[: text.index("  atlassian-cmk:nextKeys:")])
    rt, _ = runtime_with(moto_endpoint, {region: [] for region in REGIONS})  # one generation recorded: no evidence

    code, out = status(project, rt, capsys, "--json")
    document = json.loads(out)

    assert code == ExitCode.DRIFT
    dropped = [f for f in document["findings"] if f["message"].startswith("DROPPED:")]
    assert [(f["kind"], f["region"]) for f in dropped] == [("drift", key.region) for key in following]
    for finding, key in zip(dropped, following, strict=True):
        assert (
            f"the next generation's keys are enrolled with Atlassian ({key.arn}, behind alias/atlassian-cmk/"
            f"{STACK}/next, is tagged atlassian-cmk:enrolled=true); atlassian-cmk:nextKeys cannot be removed"
        ) in finding["message"]


def test_status_with_a_hand_recorded_foreign_next_key_is_not_the_stacks_key(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15 review, finding 1: nextKeys naming an untagged key is an incident (exit 5), never "as declared"."""
    project, current, following = two_generations(tmp_path, moto_endpoint, "in-progress")
    kms = emulator_clients(moto_endpoint)("kms", "us-east-1")
    foreign = kms.create_key(Description="not the stack's")["KeyMetadata"]["Arn"]
    path = project / f"Pulumi.{STACK}.yaml"
    path.write_text(path.read_text().replace(following[0].arn, foreign))
    rt, _ = runtime_with(moto_endpoint, answered(current, following))

    code, out = status(project, rt, capsys, "--json")

    assert code == ExitCode.KEY_LOST, out
    messages = [f["message"] for f in json.loads(out)["findings"] if f["kind"] == "critical"]
    assert any(
        m.startswith(
            f"NOT THE STACK'S KEY: us-east-1: atlassian-cmk:nextKeys records {foreign}, which is not this stack's "
            "next key (no atlassian-cmk:stack tag"
        )
        for m in messages
    ), messages


def test_status_with_the_next_alias_moved_after_recording_is_alias_moved(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 6: `/next` moved off the recorded next key is ALIAS MOVED (exit 6), as for the stack's alias."""
    project, current, following = two_generations(tmp_path, moto_endpoint, "in-progress")
    kms = emulator_clients(moto_endpoint)("kms", "us-west-2")
    foreign = kms.create_key()["KeyMetadata"]["Arn"]
    kms.update_alias(AliasName=f"alias/atlassian-cmk/{STACK}/next", TargetKeyId=foreign)
    rt, _ = runtime_with(moto_endpoint, answered(current, following))

    code, out = status(project, rt, capsys, "--json")

    assert code == ExitCode.ALIAS_MOVED, out
    (moved,) = [f for f in json.loads(out)["findings"] if f["kind"] == "alias-moved"]
    assert moved["region"] == "us-west-2"
    key_id = following[1].arn.rsplit("/", 1)[1]
    assert moved["message"].startswith(
        f"ALIAS MOVED: us-west-2: alias/atlassian-cmk/{STACK}/next names {foreign}, not the recorded next key "
        f"{following[1].arn}; anything using the alias acts on the wrong key. Put it back: `aws kms update-alias "
        f"--alias-name alias/atlassian-cmk/{STACK}/next --target-key-id {key_id} --region us-west-2`"
    )


def test_status_before_recording_with_the_next_alias_on_a_foreign_key_is_alias_moved(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 6: in preparing before `enroll --next`, `/next` naming a key without the stack's next tags is
    ALIAS MOVED (exit 6); status never lists that key as the next generation's as if all were well."""
    project = stack_dir(tmp_path, {"    status: none": "    status: preparing\n    ticket: PS-1"})
    config = load_stack_config(project, STACK)
    clients = emulator_clients(moto_endpoint)
    current = create_key_pair(config, STACK, client_factory=clients)
    create_key_pair(config, STACK, key_pair="next", client_factory=clients)
    path = project / f"Pulumi.{STACK}.yaml"
    path.write_text(
        path.read_text() + "  atlassian-cmk:enrolledKeys:\n" + "".join(f"    {k.region}: {k.arn}\n" for k in current)
    )
    kms = clients("kms", "us-east-1")
    foreign = kms.create_key()["KeyMetadata"]["Arn"]
    kms.update_alias(AliasName=f"alias/atlassian-cmk/{STACK}/next", TargetKeyId=foreign)
    rt, _ = runtime_with(moto_endpoint, {region: [] for region in REGIONS})

    code, out = status(project, rt, capsys, "--json")

    assert code == ExitCode.ALIAS_MOVED, out
    (moved,) = [f for f in json.loads(out)["findings"] if f["kind"] == "alias-moved"]
    assert moved["region"] == "us-east-1"
    assert moved["message"].startswith(
        f"ALIAS MOVED: us-east-1: alias/atlassian-cmk/{STACK}/next names {foreign}, which is not this stack's next "
        "key (no atlassian-cmk:stack tag; no atlassian-cmk:region tag; no atlassian-cmk:key-pair tag)"
    )
    assert "`pulumi stack output nextKeyArns`" in moved["message"]
