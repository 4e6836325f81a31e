"""Realm-wide guardrails under per-resource enforcement: no region can be updated alone into a split.

`pulumi up` refuses only the resource whose own Analyze has a mandatory violation and lets the
other steps run (pkg/resource/deploy/step_generator.go, analyzeAll). The harness's per-resource
mode (`judge_each_step`) judges each registered resource on its own, as the engine does, and these
tests assert that every CMK key of the realm is refused together, or none is.
"""

from __future__ import annotations

from typing import Any

from atlassian_cmk.naming import TAG_REENCRYPTION
from rehearsal.policy_pack_client import (
    StepVerdicts,
    analyze_request,
    analyzer_resource,
    describe,
    judge_each_step,
    properties_of,
)
from rehearsal.program_run import ProgramRun, RegisteredResource, run_program
from rehearsal.sample_atlassian_policy import SAMPLE_ATLASSIAN_KEY_POLICY
from tests.test_config import engine_config
from tests.test_policy_live_state import REVOKED, aws, aws_clients, deploy, pack_for, preview, tag

CONSISTENCY = "dual-region-consistency"
__all__ = ["aws", "aws_clients"]  # fixtures used by name below

RETIRED = "arn:aws:iam::279766244153:role/SAMPLE-AtlassianCmkAccessOld"
RETIRED_STATEMENT = {**SAMPLE_ATLASSIAN_KEY_POLICY[0], "Sid": "SAMPLERetired", "Principal": {"AWS": RETIRED}}


def key_verdicts(verdicts: StepVerdicts, run: ProgramRun) -> tuple[set[str], set[str]]:
    """(refused, proceeding) CMK key resource names."""
    keys = {k.urn: k.name for k in run.kms_keys}
    assert len(keys) == 2
    return (
        {keys[u] for u in verdicts.refused() if u in keys},
        {keys[u] for u in verdicts.proceeding() if u in keys},
    )


def messages(verdicts: StepVerdicts, run: ProgramRun, policy: str) -> list[str]:
    return [v.message for k in run.kms_keys for v in verdicts.violations[k.urn] if v.policy == policy]


def every_violation(verdicts: StepVerdicts) -> str:
    return describe(v for found in verdicts.violations.values() for v in found)


def test_a_healthy_revocation_refuses_no_key(moto_endpoint: str, aws: Any) -> None:
    raw = engine_config(**REVOKED)
    with pack_for(raw, moto_endpoint) as (client, _):
        deploy(aws)
        run = preview(raw)
        client.configure()
        verdicts = judge_each_step(client, run)

    refused, proceeding = key_verdicts(verdicts, run)
    assert refused == set(), every_violation(verdicts)
    assert proceeding == {"cmk-us-east-1", "cmk-us-west-2"}


def test_a_revocation_while_one_region_is_pending_deletion_refuses_both_keys(moto_endpoint: str, aws: Any) -> None:
    raw = engine_config(**REVOKED)
    with pack_for(raw, moto_endpoint) as (client, _):
        west = deploy(aws)["us-west-2"]
        aws("kms", "us-west-2").schedule_key_deletion(KeyId=west.key_id, PendingWindowInDays=30)
        run = preview(raw)
        client.configure()
        verdicts = judge_each_step(client, run)

    refused, proceeding = key_verdicts(verdicts, run)
    assert refused == {"cmk-us-east-1", "cmk-us-west-2"}, every_violation(verdicts)
    assert proceeding == set()
    found = messages(verdicts, run, "deployed-keys-intact")
    assert len(found) == 2
    assert all("The deployed key in us-west-2 is PendingDeletion" in m for m in found)


def test_a_revocation_while_one_region_re_encrypts_refuses_both_keys(moto_endpoint: str, aws: Any) -> None:
    raw = engine_config(**REVOKED)
    with pack_for(raw, moto_endpoint) as (client, _):
        east = deploy(aws)["us-east-1"]
        tag(aws, east, TAG_REENCRYPTION, "in-progress")
        run = preview(raw)
        client.configure()
        verdicts = judge_each_step(client, run)

    refused, _ = key_verdicts(verdicts, run)
    assert refused == {"cmk-us-east-1", "cmk-us-west-2"}, every_violation(verdicts)
    found = messages(verdicts, run, "no-revocation-during-reencryption")
    assert len(found) == 2
    assert all("The deployed key in us-east-1 is tagged re-encryption in-progress." in m for m in found)


def test_dropping_a_deployed_atlassian_statement_refuses_both_keys(moto_endpoint: str, aws: Any) -> None:
    raw = engine_config()  # atlassianKeyPolicy: the sample statement only
    with pack_for(raw, moto_endpoint) as (client, _):
        deploy(aws, atlassianKeyPolicy=[*SAMPLE_ATLASSIAN_KEY_POLICY, RETIRED_STATEMENT])
        run = preview(raw)
        client.configure()
        verdicts = judge_each_step(client, run)

    refused, _ = key_verdicts(verdicts, run)
    assert refused == {"cmk-us-east-1", "cmk-us-west-2"}, every_violation(verdicts)
    found = messages(verdicts, run, "key-policy-keeps-access")
    assert len(found) == 2
    for message in found:
        # the regions sharing a cause said once: the dropped statement, and what its principal loses
        regions = "us-east-1 and us-west-2: "
        assert f"{regions}this change alters or drops Atlassian's deployed statement 'SAMPLERetired'" in message
        assert message.count(RETIRED) == 2
        assert message.count("Keep Atlassian's statements as deployed") == 1  # the advice, once


def test_a_context_tag_that_disagrees_with_the_configured_condition_refuses_both_keys_once(
    moto_endpoint: str, aws: Any
) -> None:
    conditioned = {
        **SAMPLE_ATLASSIAN_KEY_POLICY[0],
        "Condition": {"StringEquals": {"kms:EncryptionContext:SAMPLE-context": "Other"}},
    }
    deployed_config = engine_config(atlassianKeyPolicy=[conditioned], contextTag="Other")
    raw = {**deployed_config, "atlassian-cmk:contextTag": "AcmeCMK"}
    with pack_for(raw, moto_endpoint) as (client, _):
        deploy(aws, atlassianKeyPolicy=[conditioned], contextTag="Other")
        run = run_program(raw)  # the program refuses it too; judge what a changed program would send
        assert run.error is not None
        run = preview(deployed_config)
        client.configure()
        verdicts = judge_each_step(client, run)

    refused, _ = key_verdicts(verdicts, run)
    assert refused == {"cmk-us-east-1", "cmk-us-west-2"}, every_violation(verdicts)
    found = messages(verdicts, run, "key-policy-keeps-access")
    assert len(found) == 2
    cause = "conditions on kms:encryptioncontext:sample-context = Other, but atlassian-cmk:contextTag is AcmeCMK"
    configured = f"Atlassian's statement 'SAMPLEAtlassianUseOfTheKey' in atlassian-cmk:atlassianKeyPolicy {cause}"
    for message in found:
        assert message.count(configured) == 1  # the configuration's cause, once, with no region
        assert f"so no region changes alone. {configured}" in message  # said first, with no region
        deployed = f"Atlassian's statement 'SAMPLEAtlassianUseOfTheKey' in the deployed key policy {cause}"
        # the deployed keys' cause, once, naming the regions at cause
        assert f"us-east-1 and us-west-2: {deployed}" in message


def test_a_policy_config_that_lowers_a_guardrail_refuses_both_keys(moto_endpoint: str, aws: Any) -> None:
    raw = engine_config(**REVOKED)
    with pack_for(raw, moto_endpoint) as (client, _):
        west = deploy(aws)["us-west-2"]
        aws("kms", "us-west-2").schedule_key_deletion(KeyId=west.key_id, PendingWindowInDays=30)
        run = preview(raw)
        client.configure({"all": "advisory"})
        verdicts = judge_each_step(client, run)

    refused, _ = key_verdicts(verdicts, run)
    assert refused == {"cmk-us-east-1", "cmk-us-west-2"}, every_violation(verdicts)
    levels = messages(verdicts, run, "guardrail-levels-intact")
    assert len(levels) == 2
    assert 'uses "all" (advisory)' in levels[0]
    # Lowered by "all", deployed-keys-intact still reports, as a warning.
    intact = [v for k in run.kms_keys for v in verdicts.violations[k.urn] if v.policy == "deployed-keys-intact"]
    assert {v.level for v in intact} == {"advisory"}


# ----------------------------------------------------------------------------- enrolled identity

ALIAS = "alias/atlassian-cmk/prod"


def enrolled_config(keys: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return engine_config(enrolledKeys={region: key.arn for region, key in keys.items()}, **overrides)


def test_an_unchanged_enrolled_realm_refuses_no_key(moto_endpoint: str, aws: Any) -> None:
    keys = deploy(aws)
    raw = enrolled_config(keys, **REVOKED)
    with pack_for(raw, moto_endpoint) as (client, _):
        run = preview(raw)
        client.configure()
        verdicts = judge_each_step(client, run)

    refused, proceeding = key_verdicts(verdicts, run)
    assert refused == set(), every_violation(verdicts)
    assert proceeding == {"cmk-us-east-1", "cmk-us-west-2"}


def test_a_multi_region_flip_stops_the_program_and_refuses_both_keys_in_the_pack(moto_endpoint: str, aws: Any) -> None:
    keys = deploy(aws)
    raw = enrolled_config(keys, multiRegion="true")
    # The schema refuses a multiRegion that does not match the enrolled keys' kind: the program stops.
    stopped = run_program(raw)
    assert stopped.error is not None
    assert "flipping multiRegion replaces the enrolled key, so Atlassian would lose the key it holds in us-east-1" in (
        str(stopped.error)
    )
    # A program that did not validate (the keys a flip would declare) still meets the pack's refusal on every key.
    plain = {k: v for k, v in raw.items() if k != "atlassian-cmk:enrolledKeys"}
    with pack_for(raw, moto_endpoint) as (client, _):
        run = preview(plain)
        client.configure()
        verdicts = judge_each_step(client, run)

    refused, _ = key_verdicts(verdicts, run)
    assert refused == {"cmk-us-east-1", "cmk-us-west-2"}, every_violation(verdicts)
    found = messages(verdicts, run, "enrolled-keys-kept")
    assert len(found) == 2
    assert all("Atlassian would lose the key it holds in us-east-1" in message for message in found)


def test_a_moved_alias_in_one_region_refuses_both_keys(moto_endpoint: str, aws: Any) -> None:
    keys = deploy(aws)
    other = aws("kms", "us-west-2").create_key(Description="another team's key")["KeyMetadata"]
    aws("kms", "us-west-2").update_alias(AliasName=ALIAS, TargetKeyId=other["KeyId"])
    raw = enrolled_config(keys, **REVOKED)
    with pack_for(raw, moto_endpoint) as (client, _):
        run = preview(raw)
        client.configure()
        verdicts = judge_each_step(client, run)

    refused, _ = key_verdicts(verdicts, run)
    assert refused == {"cmk-us-east-1", "cmk-us-west-2"}, every_violation(verdicts)
    found = messages(verdicts, run, "enrolled-keys-kept")
    assert len(found) == 2
    assert all(f"ALIAS MOVED: us-west-2: {ALIAS} names {other['Arn']}" in m for m in found)


def test_a_key_replica_swap_refuses_both_keys(moto_endpoint: str, aws: Any) -> None:
    keys = deploy(aws, realm=None, regions=["us-east-1", "us-west-2"], multiRegion="true")
    raw = enrolled_config(keys, realm=None, regions=["us-west-2", "us-east-1"], multiRegion="true")
    with pack_for(raw, moto_endpoint) as (client, _):
        run = preview(raw)
        client.configure()
        verdicts = judge_each_step(client, run)

    refused, _ = key_verdicts(verdicts, run)
    assert refused == {"cmk-us-east-1", "cmk-us-west-2"}, every_violation(verdicts)
    for message in messages(verdicts, run, "enrolled-keys-kept"):
        assert "the enrolled key is a multi-region replica and the program declares a key key" in message
        assert "the enrolled key is a multi-region primary and the program declares a replica key" in message


def test_an_enrolled_arn_that_names_no_key_refuses_both_keys(moto_endpoint: str, aws: Any) -> None:
    keys = deploy(aws)
    east = keys["us-east-1"]
    gone = east.arn.replace(east.key_id, "00000000-0000-4000-8000-000000000000")
    raw = engine_config(enrolledKeys={"us-east-1": gone, "us-west-2": keys["us-west-2"].arn})
    with pack_for(raw, moto_endpoint) as (client, _):
        run = preview(raw)
        client.configure()
        verdicts = judge_each_step(client, run)

    refused, _ = key_verdicts(verdicts, run)
    assert refused == {"cmk-us-east-1", "cmk-us-west-2"}, every_violation(verdicts)
    found = messages(verdicts, run, "deployed-keys-intact")
    assert len(found) == 2
    assert all(f"The enrolled key {gone} is not found: the key Atlassian holds in us-east-1" in m for m in found)


# ----------------------------------------------------------------------------- a program edited per key
# Each key's Analyze sees only that key and cannot wait for the other (docs/policy-pack.md, "A program
# edited to treat the keys differently"). These pin down exactly what is caught, and when.


def test_a_revocation_hand_edited_to_keep_one_key_enabled_is_refused_on_that_key_and_by_the_stack_check(
    moto_endpoint: str, aws: Any
) -> None:
    raw = engine_config(**REVOKED)
    with pack_for(raw, moto_endpoint) as (client, _):
        deploy(aws)
        run = preview(raw)
        client.configure()
        west = next(k for k in run.kms_keys if k.name == "cmk-us-west-2")
        verdicts = StepVerdicts(
            {
                r.urn: client.analyze(analyze_request(r, properties=edited(r, isEnabled=True) if r is west else None))
                for r in run.resources
            }
        )
        whole_stack = client.analyze_stack(
            analyzer_resource(r, properties=edited(r, isEnabled=True) if r is west else None) for r in run.resources
        )

    refused, proceeding = key_verdicts(verdicts, run)
    assert refused == {"cmk-us-west-2"}, every_violation(verdicts)
    assert proceeding == {"cmk-us-east-1"}  # per resource, `pulumi up` would still disable us-east-1
    assert any(
        "would be enabled while atlassian-cmk:enabled is false" in m for m in messages(verdicts, run, CONSISTENCY)
    )
    stack_findings = [v for v in whole_stack if v.policy == CONSISTENCY and v.level == "mandatory"]
    assert stack_findings, describe(whole_stack)


def test_a_program_that_drops_one_regions_key_passes_per_resource_and_fails_the_stack_check(
    moto_endpoint: str, aws: Any
) -> None:
    raw = engine_config(**REVOKED)
    with pack_for(raw, moto_endpoint) as (client, _):
        deploy(aws)
        run = preview(raw)
        client.configure()
        kept = [r for r in run.resources if r.name != "cmk-us-west-2"]
        per_resource = [v for r in kept for v in client.analyze(analyze_request(r)) if v.level == "mandatory"]
        whole_stack = client.analyze_stack(analyzer_resource(r) for r in kept)

    assert len(kept) == len(run.resources) - 1
    assert per_resource == [], describe(per_resource)
    missing = [v for v in whole_stack if v.policy == CONSISTENCY and v.level == "mandatory"]
    assert missing and "us-west-2" in missing[0].message, describe(whole_stack)


def edited(resource: RegisteredResource, **inputs: Any) -> Any:
    properties = properties_of(resource)
    properties.update(inputs)
    return properties
