"""The pack guards the identity of Atlassian's keys: the enrolled ARNs (emulator + pack over gRPC).

Each test deploys the keys as the component shapes them, records their ARNs as `enrolledKeys`
(what `cmkctl enroll` writes), then previews a change. AnalyzeStack receives outputs, as the
engine sends them: the deployed key's ARN, or the unknown sentinel for a key being created or
replaced.
"""

from __future__ import annotations

from typing import Any

from atlassian_cmk.naming import TAG_ENROLLED, TAG_REENCRYPTION
from rehearsal.policy_pack_client import UNKNOWN_STRING, analyze_program_run, by_policy, describe
from rehearsal.program_run import run_program
from tests.test_config import engine_config
from tests.test_policy_live_state import (
    REENCRYPTION,
    REVOKED,
    aws,
    aws_clients,
    deploy,
    mandatory,
    pack_for,
    preview,
    tag,
)

__all__ = ["aws", "aws_clients"]  # the fixtures, shared with the live-state tests

IDENTITY = "enrolled-keys-kept"
ALIAS = "alias/atlassian-cmk/prod"


def arns_of(keys: dict[str, Any]) -> dict[str, str]:
    return {region: key.arn for region, key in keys.items()}


def deployed_outputs(keys: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The engine's state after the first `pulumi up`: each key resource's `arn` output."""
    return {f"cmk-{region}": {"arn": key.arn} for region, key in keys.items()}


def test_an_unchanged_enrolled_stack_passes_every_policy(moto_endpoint: str, aws: Any) -> None:
    keys = deploy(aws)
    raw = engine_config(enrolledKeys=arns_of(keys))
    with pack_for(raw, moto_endpoint) as (client, _):
        client.configure()
        violations = analyze_program_run(client, preview(raw), outputs=deployed_outputs(keys))

    assert violations == [], describe(violations)


def test_a_multi_region_flip_is_refused_on_each_key_naming_region_and_arn(moto_endpoint: str, aws: Any) -> None:
    keys = deploy(aws)
    raw = engine_config(multiRegion="true", enrolledKeys=arns_of(keys))
    plain = engine_config(multiRegion="true")  # the keys a flip declares (the real program stops at the schema)
    with pack_for(raw, moto_endpoint) as (client, _):
        client.configure()
        violations = mandatory(analyze_program_run(client, preview(plain), stack=False), IDENTITY)

    east = keys["us-east-1"].arn
    for region in keys:
        mine = [v.message for v in violations if v.urn.endswith(f"::cmk-{region}")]
        assert mine, describe(violations)
        assert f"atlassian-cmk:enrolledKeys.us-east-1: '{east}' is not allowed" in mine[0]
        assert "Atlassian would lose the key it holds in us-east-1" in mine[0]


def test_a_dropped_region_fails_every_remaining_key(moto_endpoint: str, aws: Any) -> None:
    keys = deploy(aws)
    raw = engine_config(realm=None, regions=["us-east-1"], enrolledKeys=arns_of(keys))
    with pack_for(raw, moto_endpoint) as (client, _):
        client.configure()
        violations = mandatory(
            analyze_program_run(client, preview(raw), outputs=deployed_outputs({"us-east-1": keys["us-east-1"]})),
            IDENTITY,
        )

    west = keys["us-west-2"].arn
    assert [v.urn.rsplit("::", 1)[1] for v in violations] == ["cmk-us-east-1"], describe(violations)
    message = violations[0].message
    assert "Held back with the realm's keys (us-east-1)" in message
    assert f"The enrolled key {west} in us-west-2 would be dropped: us-west-2 is no longer in the stack's regions" in (
        message
    )
    assert "Atlassian would lose the key it holds there" in message


def test_a_realm_change_is_refused_naming_the_regions_atlassian_would_lose(moto_endpoint: str, aws: Any) -> None:
    keys = deploy(aws)
    raw = engine_config(realm="eu", enrolledKeys=arns_of(keys))
    program = run_program(raw)  # what `pulumi preview` runs first: it stops before registering any key
    eu_keys = preview(engine_config(realm="eu"))  # keys a hand-edited program would still send the pack
    with pack_for(raw, moto_endpoint) as (client, _):
        client.configure()
        violations = mandatory(analyze_program_run(client, eu_keys, stack=False), IDENTITY)

    expected = "Atlassian holds the enrolled keys in us-east-1, us-west-2 and would lose them"
    assert program.error is not None and expected in str(program.error)
    assert "atlassian-cmk:enrolledKeys" in violations[0].message and expected in violations[0].message


def test_a_key_being_created_or_replaced_in_analyze_stack_is_refused(moto_endpoint: str, aws: Any) -> None:
    keys = deploy(aws)
    raw = engine_config(enrolledKeys=arns_of(keys))
    outputs = {**deployed_outputs(keys), "cmk-us-west-2": {"arn": UNKNOWN_STRING}}
    with pack_for(raw, moto_endpoint) as (client, _):
        client.configure()
        violations = mandatory(analyze_program_run(client, preview(raw), outputs=outputs), IDENTITY)

    # Realm-wide: every key carries the finding, naming the region at cause.
    assert sorted(v.urn.rsplit("::", 1)[1] for v in violations) == ["cmk-us-east-1", "cmk-us-west-2"]
    for violation in violations:
        assert (
            f"us-west-2: the key's ARN is unknown until apply, so this update creates or replaces it instead of "
            f"keeping the enrolled key {keys['us-west-2'].arn}" in violation.message
        )


def test_a_stack_key_that_is_not_the_enrolled_key_is_refused(moto_endpoint: str, aws: Any) -> None:
    keys = deploy(aws)
    raw = engine_config(enrolledKeys=arns_of(keys))
    with pack_for(raw, moto_endpoint) as (client, _):
        client.configure()
        run = preview(raw)
        violations = mandatory(analyze_program_run(client, run), IDENTITY)  # the mocks' own ARNs

    assert sorted(v.urn.rsplit("::", 1)[1] for v in violations) == ["cmk-us-east-1", "cmk-us-west-2"]
    assert f"not the enrolled key {keys['us-east-1'].arn}" in violations[0].message + violations[1].message


def test_an_alias_that_names_another_key_than_the_enrolled_one_is_refused(moto_endpoint: str, aws: Any) -> None:
    keys = deploy(aws)
    other = aws("kms", "us-west-2").create_key(Description="another team's key")["KeyMetadata"]
    aws("kms", "us-west-2").update_alias(AliasName=ALIAS, TargetKeyId=other["KeyId"])
    raw = engine_config(enrolledKeys=arns_of(keys))
    with pack_for(raw, moto_endpoint) as (client, _):
        client.configure()
        violations = mandatory(analyze_program_run(client, preview(raw), outputs=deployed_outputs(keys)), IDENTITY)

    assert sorted(v.urn.rsplit("::", 1)[1] for v in violations) == ["cmk-us-east-1", "cmk-us-west-2"]
    message = violations[0].message
    assert violations[1].message.endswith(message.split("so no region changes alone. ", 1)[1])
    assert f"ALIAS MOVED: us-west-2: {ALIAS} names {other['Arn']}, not the enrolled key {keys['us-west-2'].arn}" in (
        message
    )
    assert f"aws kms update-alias --alias-name {ALIAS} --target-key-id {keys['us-west-2'].key_id}" in message


def test_a_key_replica_swap_by_moving_the_multi_region_primary_is_refused(moto_endpoint: str, aws: Any) -> None:
    keys = deploy(aws, realm=None, regions=["us-east-1", "us-west-2"], multiRegion="true")
    raw = engine_config(realm=None, regions=["us-west-2", "us-east-1"], multiRegion="true", enrolledKeys=arns_of(keys))
    with pack_for(raw, moto_endpoint) as (client, _):
        client.configure()
        violations = mandatory(analyze_program_run(client, preview(raw), stack=False), IDENTITY)

    west = [v.message for v in violations if v.urn.endswith("::cmk-us-west-2")]
    east = [v.message for v in violations if v.urn.endswith("::cmk-us-east-1")]
    assert west and east, describe(violations)
    assert "the enrolled key is a multi-region replica and the program declares a key key" in west[0]
    assert "the enrolled key is a multi-region primary and the program declares a replica key" in east[0]


def test_the_reencryption_guard_reads_the_enrolled_keys_not_the_decoys_behind_the_alias(
    moto_endpoint: str, aws: Any
) -> None:
    keys = deploy(aws, reencryption={"status": "in-progress", "ticket": "PS-1"})
    for region in keys:
        other = aws("kms", region).create_key(
            Tags=[{"TagKey": TAG_REENCRYPTION, "TagValue": "complete"}], Description="decoy"
        )["KeyMetadata"]
        aws("kms", region).update_alias(AliasName=ALIAS, TargetKeyId=other["KeyId"])
    raw = engine_config(**REVOKED, reencryption={"status": "complete"}, enrolledKeys=arns_of(keys))
    with pack_for(raw, moto_endpoint) as (client, _):
        client.configure()
        violations = analyze_program_run(client, preview(raw), outputs=deployed_outputs(keys))

    reencryption = mandatory(violations, REENCRYPTION)
    assert len(reencryption) == 2, describe(violations)
    # The enrolled keys' tags (in-progress), not the decoys' behind the alias (complete).
    assert "The deployed key in each of us-east-1 and us-west-2 is tagged re-encryption in-progress." in " ".join(
        v.message for v in reencryption
    )
    assert len(by_policy(violations, IDENTITY)) == 2  # the moved aliases, both regions on each key


def test_the_emulator_reports_a_multi_region_primary_and_replica_as_aws_does(moto_endpoint: str, aws: Any) -> None:
    keys = deploy(aws, realm=None, regions=["us-east-1", "us-west-2"], multiRegion="true")

    types = {
        region: aws("kms", region).describe_key(KeyId=key.key_id)["KeyMetadata"]["MultiRegionConfiguration"][
            "MultiRegionKeyType"
        ]
        for region, key in reversed(list(keys.items()))  # the replica first: moto used to flip the primary
    }

    assert types == {"us-west-2": "REPLICA", "us-east-1": "PRIMARY"}


def decoys_behind_the_alias(aws: Any, keys: dict[str, Any], tags: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The review's attack: a decoy per region (with `tags`), each alias moved onto it."""
    decoys = {}
    for region in keys:
        decoys[region] = aws("kms", region).create_key(
            Description="decoy", Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()]
        )["KeyMetadata"]
        aws("kms", region).update_alias(AliasName=ALIAS, TargetKeyId=decoys[region]["KeyId"])
    return decoys


def test_removing_enrolled_keys_from_an_enrolled_stack_is_refused_on_every_key(moto_endpoint: str, aws: Any) -> None:
    # A pull request that drops enrolledKeys and revokes while the keys are in re-encryption: the keys
    # the alias names carry the enrolled tag the program wrote once enrolled.
    keys = deploy(aws, reencryption={"status": "in-progress", "ticket": "PS-1"})
    for key in keys.values():
        tag(aws, key, TAG_ENROLLED, "true")
    raw = engine_config(**REVOKED, reencryption={"status": "complete"})
    with pack_for(raw, moto_endpoint) as (client, _):
        client.configure()
        violations = mandatory(analyze_program_run(client, preview(raw), stack=False), IDENTITY)

    assert sorted(v.urn.rsplit("::", 1)[1] for v in violations) == ["cmk-us-east-1", "cmk-us-west-2"]
    for violation in violations:
        assert "this stack's keys are enrolled with Atlassian" in violation.message
        assert "atlassian-cmk:enrolledKeys cannot be removed" in violation.message


def test_enrolled_keys_replaced_by_decoy_arns_are_refused_per_resource(moto_endpoint: str, aws: Any) -> None:
    keys = deploy(aws)
    decoys = decoys_behind_the_alias(aws, keys, {TAG_REENCRYPTION: "complete"})
    raw = engine_config(**REVOKED, enrolledKeys={region: d["Arn"] for region, d in decoys.items()})
    with pack_for(raw, moto_endpoint) as (client, _):
        client.configure()
        violations = mandatory(analyze_program_run(client, preview(raw), stack=False), IDENTITY)

    assert sorted(v.urn.rsplit("::", 1)[1] for v in violations) == ["cmk-us-east-1", "cmk-us-west-2"]
    for region, decoy in decoys.items():
        assert (
            f"{region}: the enrolled key {decoy['Arn']} is not this stack's key (no atlassian-cmk:stack tag; "
            in violations[0].message
        )


def test_a_stack_without_enrolled_keys_and_untagged_keys_is_not_refused_for_enrollment(
    moto_endpoint: str, aws: Any
) -> None:
    deploy(aws)
    raw = engine_config()
    with pack_for(raw, moto_endpoint) as (client, _):
        client.configure()
        violations = analyze_program_run(client, preview(raw), stack=False)

    assert by_policy(violations, IDENTITY) == [], describe(violations)
