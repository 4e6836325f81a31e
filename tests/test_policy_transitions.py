"""Re-encryption transitions judged by the guardrails pack over its wire protocol, with the deployed
generations in the AWS emulator: each transition allowed or refused, on every key of every generation."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from google.protobuf import struct_pb2  # type: ignore[import-untyped]

from atlassian_cmk.aws.provision import create_key_pair
from atlassian_cmk.config import parse_stack_config
from atlassian_cmk.generations import generations
from atlassian_cmk.naming import (
    TAG_GUARD_OVERRIDE,
    TAG_REVOCATION_ID,
    TAG_REVOCATION_REASON,
    TAG_REVOCATION_TICKET,
    TAG_REVOKED_AT,
)
from rehearsal.policy_pack_client import analyze_program_run, analyze_request, by_policy, describe, start_policy_pack
from rehearsal.program_run import run_program
from tests.support.aws import aws_env, client_factory_for
from tests.support.faults import fault_proxy
from tests.test_config import engine_config

REENCRYPTION = "no-revocation-during-reencryption"
CONSISTENCY = "dual-region-consistency"
REVOKED = {"enabled": "false", "revocation": {"reason": "Suspected breach", "ticket": "SEC-1"}}


@pytest.fixture(scope="module")
def aws_clients(moto_endpoint_session: str) -> Any:
    return functools.lru_cache(maxsize=None)(client_factory_for(moto_endpoint_session))


@pytest.fixture
def aws(moto_endpoint: str, aws_clients: Any) -> Any:
    return aws_clients


def deploy(aws: Any, role: str, status: str, **overrides: Any) -> dict[str, str]:
    """One generation as a previous `pulumi up` left it (tags naming role and applied status): region -> ARN."""
    config = parse_stack_config(engine_config(reencryption={"status": status, "ticket": "PS-1"}, **overrides))
    return {key.region: key.arn for key in create_key_pair(config, "prod", key_pair=role, client_factory=aws)}


def judge(raw: dict[str, Any], endpoint: str, enable: str | None = None) -> list[Any]:
    """The pack's violations of REENCRYPTION for the program's resources; `enable`: a name fragment of
    keys whose `isEnabled` input is set true, as a program edited by hand would register them."""
    with start_policy_pack(raw, aws_env(endpoint)) as client:  # the pack imports while the program runs
        run = run_program(raw)
        assert run.error is None, run.error
        client.configure()
        if enable is None:
            return by_policy(analyze_program_run(client, run, stack=False), REENCRYPTION)
        violations = []
        for resource in run.resources:
            properties = struct_pb2.Struct()
            properties.CopyFrom(resource.request.object)
            if enable in resource.name and resource.type == "aws:kms/key:Key":
                properties["isEnabled"] = True
            violations.extend(client.analyze(analyze_request(resource, properties=properties)))
        return by_policy(violations, REENCRYPTION)


def promoted(old: dict[str, str], new: dict[str, str], status: str = "complete") -> dict[str, Any]:
    return engine_config(reencryption={"status": status, "ticket": "PS-1"}, enrolledKeys=new, retiredKeys=[old])


def test_complete_and_promote_in_one_change_is_refused_on_every_key(moto_endpoint: str, aws: Any) -> None:
    old, new = deploy(aws, "current", "in-progress"), deploy(aws, "next", "in-progress")
    violations = judge(promoted(old, new), moto_endpoint)
    assert len(violations) == 4, describe(violations)  # both generations, both regions
    assert all(v.level == "mandatory" for v in violations)
    assert all("promotes the next generation while the deployed status is in-progress" in v.message for v in violations)


def test_promotion_after_complete_was_applied_is_allowed(moto_endpoint: str, aws: Any) -> None:
    old, new = deploy(aws, "current", "complete"), deploy(aws, "next", "complete")
    assert judge(promoted(old, new), moto_endpoint) == []


def test_promote_and_retire_in_one_change_is_refused(moto_endpoint: str, aws: Any) -> None:
    old, new = deploy(aws, "current", "complete"), deploy(aws, "next", "complete")
    violations = judge(promoted(old, new, status="none"), moto_endpoint)
    assert len(violations) == 4, describe(violations)
    assert all("promotes and retires in one change" in v.message for v in violations)


def test_retirement_after_promotion_was_applied_is_allowed(moto_endpoint: str, aws: Any) -> None:
    old, new = deploy(aws, "retired", "complete"), deploy(aws, "current", "complete")
    assert judge(promoted(old, new, status="none"), moto_endpoint) == []


@pytest.mark.parametrize("retired", [1, 2])
def test_each_generation_is_its_own_consistent_key_set(moto_endpoint: str, aws: Any, retired: int) -> None:
    """Retired keys disabled beside enabled current ones, and two retired generations, are consistent."""
    # The older generation was created (and aliased) as next and later retagged by its promotion's apply.
    generations = [deploy(aws, "retired" if i == 0 else "next", "none") for i in range(retired)]
    for arn in (arn for generation in generations[1:] for arn in generation.values()):
        tag = [{"TagKey": "atlassian-cmk:key-pair", "TagValue": "retired"}]
        aws("kms", arn.split(":")[3]).tag_resource(KeyId=arn.rsplit("/", 1)[1], Tags=tag)
    generations.append(deploy(aws, "current", "none"))
    raw = engine_config(reencryption={"status": "none"}, enrolledKeys=generations[-1], retiredKeys=generations[:-1])
    run = run_program(raw)
    assert run.error is None, run.error
    with start_policy_pack(raw, aws_env(moto_endpoint)) as client:
        client.configure()
        violations = by_policy(analyze_program_run(client, run), CONSISTENCY)
    assert violations == [], describe(violations)


def test_promotion_with_unreadable_keys_fails_closed(aws: Any) -> None:
    old, new = deploy(aws, "current", "complete"), deploy(aws, "next", "complete")
    violations = judge(promoted(old, new), "http://127.0.0.1:9")  # nothing listens: unreadable
    realm = [v for v in violations if "the enrolled key could not be read" in v.message]
    assert len(realm) == 4, describe(violations)
    # The retired keys the promotion keeps enabled: whether their retirement was applied cannot be told.
    retired = [v for v in violations if "could not be read, so whether its retirement was applied" in v.message]
    assert sorted(v.urn.rsplit("::", 1)[1] for v in retired) == ["cmk-us-east-1", "cmk-us-west-2"]
    assert len(violations) == 6, describe(violations)


def test_complete_again_after_the_retirement_was_applied_is_refused(moto_endpoint: str, aws: Any) -> None:
    """The reviewer's sequence: retirement applied (status none, generation 1 disabled and tagged retired),
    then a pull request sets complete. The program would enable generation 1 again; the pack refuses it on
    every key, and on each retired key by its own deployed tags."""
    old, new = deploy(aws, "retired", "none"), deploy(aws, "current", "none")
    violations = judge(promoted(old, new), moto_endpoint)
    skipped = [
        v
        for v in violations
        if "declares reencryption.status complete while the deployed status is none" in v.message.lower()
    ]
    assert len(skipped) == 4, describe(violations)  # both generations, both regions
    never = [
        v
        for v in violations
        if "tagged atlassian-cmk:key-pair retired, reencryption none: its retirement was" in v.message
    ]
    assert sorted(v.urn.rsplit("::", 1)[1] for v in never) == ["cmk-us-east-1", "cmk-us-west-2"]


def test_a_step_back_from_in_progress_is_refused_on_every_key(moto_endpoint: str, aws: Any) -> None:
    """in-progress -> preparing, then a revocation: a two-change way around "no disabling while in-progress"."""
    current, following = deploy(aws, "current", "in-progress"), deploy(aws, "next", "in-progress")
    raw = engine_config(
        reencryption={"status": "preparing", "ticket": "PS-1"}, enrolledKeys=current, nextKeys=following
    )
    violations = judge(raw, moto_endpoint)
    assert len(violations) == 4, describe(violations)
    assert all("moves reencryption.status back from in-progress to preparing" in v.message.lower() for v in violations)


def test_abandoning_a_prepared_re_encryption_is_refused(moto_endpoint: str, aws: Any) -> None:
    """preparing -> none: the program stops declaring the protected next keys; refused (fail closed)."""
    current = deploy(aws, "current", "preparing")
    deploy(aws, "next", "preparing")
    violations = judge(engine_config(reencryption={"status": "none"}, enrolledKeys=current), moto_endpoint)
    assert len(violations) == 2, describe(violations)  # the current keys: the only ones the program declares
    assert all(
        "abandons the re-encryption (reencryption.status preparing -> none)" in v.message.lower() for v in violations
    )


def test_only_the_latest_retired_generation_is_enabled_and_only_while_promoting() -> None:
    """A later re-encryption's complete never enables a generation an earlier one retired."""
    arns = [
        {
            r: f"arn:aws:kms:{r}:123456789012:key/{n}0000000-0000-0000-0000-00000000000{n}"
            for r in ("us-east-1", "us-west-2")
        }
        for n in range(1, 5)
    ]
    before = parse_stack_config(
        engine_config(
            reencryption={"status": "complete", "ticket": "PS-2"},
            enrolledKeys=arns[2],
            nextKeys=arns[3],
            retiredKeys=arns[:2],
        )
    )
    assert [(g.number, g.role, g.enabled) for g in generations(before)] == [
        (1, "retired", False),
        (2, "retired", False),
        (3, "current", True),
        (4, "next", True),
    ]
    promoting = parse_stack_config(
        engine_config(reencryption={"status": "complete", "ticket": "PS-2"}, enrolledKeys=arns[3], retiredKeys=arns[:3])
    )
    assert [(g.number, g.enabled) for g in generations(promoting)] == [(1, False), (2, False), (3, True), (4, True)]


def test_revocation_during_in_progress_holds_back_both_generations(moto_endpoint: str, aws: Any) -> None:
    current = deploy(aws, "current", "in-progress")
    following = deploy(aws, "next", "in-progress")
    raw = engine_config(
        **REVOKED, reencryption={"status": "complete", "ticket": "PS-1"}, enrolledKeys=current, nextKeys=following
    )
    violations = judge(raw, moto_endpoint)
    assert len(violations) == 4, describe(violations)
    assert all("tagged re-encryption in-progress" in v.message for v in violations)


def test_revocation_during_preparing_disables_both_generations_and_is_allowed(moto_endpoint: str, aws: Any) -> None:
    current = deploy(aws, "current", "preparing")
    raw = engine_config(**REVOKED, reencryption={"status": "preparing", "ticket": "PS-1"}, enrolledKeys=current)
    assert judge(raw, moto_endpoint) == []


def test_revocation_during_preparing_that_leaves_the_next_generation_enabled_is_refused(
    moto_endpoint: str, aws: Any
) -> None:
    current = deploy(aws, "current", "preparing")
    raw = engine_config(**REVOKED, reencryption={"status": "preparing", "ticket": "PS-1"}, enrolledKeys=current)
    # A program edited by hand to keep the next generation on while the current one is revoked.
    violations = judge(raw, moto_endpoint, enable="-gen2-")
    assert sorted(v.urn.rsplit("::", 1)[1] for v in violations) == ["cmk-gen2-us-east-1", "cmk-gen2-us-west-2"]
    assert all("a revocation disables every generation Atlassian holds" in v.message for v in violations)


def test_restore_never_enables_a_retired_generation(moto_endpoint: str, aws: Any) -> None:
    old, new = deploy(aws, "retired", "none", **REVOKED), deploy(aws, "current", "none", **REVOKED)
    raw = promoted(old, new, status="none")
    violations = judge(raw, moto_endpoint, enable="cmk-us-")
    assert sorted(v.urn.rsplit("::", 1)[1] for v in violations) == ["cmk-us-east-1", "cmk-us-west-2"]
    assert all("restore enables the current generation only, never a retired one" in v.message for v in violations)


def test_a_follow_up_revocation_that_would_disable_the_next_generation_is_refused(moto_endpoint: str, aws: Any) -> None:
    """Break-glass disabled the enrolled keys only; the next generation is still enabled while in-progress."""
    current = deploy(aws, "current", "in-progress", **REVOKED)
    following = deploy(aws, "next", "in-progress")
    raw = engine_config(
        **REVOKED, reencryption={"status": "in-progress", "ticket": "PS-1"}, enrolledKeys=current, nextKeys=following
    )
    violations = judge(raw, moto_endpoint)
    assert len(violations) == 4, describe(violations)
    assert all("Next generation: the deployed key in" in v.message for v in violations)


def test_a_follow_up_revocation_with_every_generation_already_disabled_passes(moto_endpoint: str, aws: Any) -> None:
    current = deploy(aws, "current", "in-progress", **REVOKED)
    following = deploy(aws, "next", "in-progress", **REVOKED)
    # What `cmkctl revoke --override-reencryption-guard` wrote on every held key; the follow-up copies its block
    # (atlassian_cmk/follow_up_rules.py: the block must equal the record on every key of both generations).
    block = {
        "reason": "Suspected breach",
        "ticket": "SEC-1",
        "id": "rev-20261129T170000Z-3f9a1c",
        "override": "SOC confirmed exfiltration",
    }
    record = {
        TAG_REVOCATION_ID: block["id"],
        TAG_REVOCATION_REASON: block["reason"],
        TAG_REVOCATION_TICKET: block["ticket"],
        TAG_GUARD_OVERRIDE: block["override"],
        TAG_REVOKED_AT: "2026-11-29T17:00:00Z",
    }
    for arn in [*current.values(), *following.values()]:
        aws("kms", arn.split(":")[3]).tag_resource(
            KeyId=arn, Tags=[{"TagKey": key, "TagValue": value} for key, value in record.items()]
        )
    raw = engine_config(
        enabled="false",
        revocation=block,
        reencryption={"status": "in-progress", "ticket": "PS-1"},
        enrolledKeys=current,
        nextKeys=following,
    )
    assert judge(raw, moto_endpoint) == []


def test_a_revocation_with_two_generations_enrolled_fails_closed_without_cloudtrail_evidence(
    moto_endpoint: str, aws: Any
) -> None:
    """Both generations enabled, nextKeys recorded, status preparing: the revocation disables both (allowed by
    the transition rules), but CloudTrail's evidence of re-encryption must be readable. Here LookupEvents is
    refused as AWS refuses a pack role without cloudtrail:LookupEvents: unknown, so every key is held."""
    current = deploy(aws, "current", "preparing")
    following = deploy(aws, "next", "preparing")
    raw = engine_config(
        **REVOKED, reencryption={"status": "preparing", "ticket": "PS-1"}, enrolledKeys=current, nextKeys=following
    )
    with fault_proxy(moto_endpoint) as proxy:
        for region in ("us-east-1", "us-west-2"):
            proxy.fail(
                region, 1000, {"LookupEvents"}, status=400, error_type="AccessDeniedException",
                message="User is not authorized to perform: cloudtrail:LookupEvents",
            )  # fmt: skip
        violations = judge(raw, proxy.url)
    assert len(violations) == 4, describe(violations)  # both generations, both regions
    assert all("whether Atlassian is re-encrypting cannot be told from CloudTrail" in v.message for v in violations)
    assert all(f"current key {current['us-east-1']}" in v.message for v in violations)


def second_reencryption(aws: Any, applied: str, status: str = "preparing") -> dict[str, Any]:
    """After the first re-encryption: generation 1 retired, generation 2 current, both as `applied` left them."""
    retired, current = deploy(aws, "retired", applied), deploy(aws, "current", applied)
    return engine_config(reencryption={"status": status, "ticket": "PS-2"}, enrolledKeys=current, retiredKeys=[retired])


@pytest.mark.parametrize("status", ["preparing", "in-progress"])
def test_a_second_reencryption_after_retirement_is_allowed(moto_endpoint: str, aws: Any, status: str) -> None:
    raw = second_reencryption(aws, "none", status)
    run = run_program(raw)  # under Pulumi's mocks
    assert run.error is None, run.error
    keys = {resource.name for resource in run.resources if resource.type == "aws:kms/key:Key"}
    # Generation 1 retired, 2 current, 3 the next one the program prepares.
    assert {"cmk-us-east-1", "cmk-gen2-us-east-1", "cmk-gen3-us-east-1", "cmk-gen3-us-west-2"} <= keys
    violations = judge(raw, moto_endpoint)
    assert violations == [], describe(violations)


def test_a_second_reencryption_before_retirement_was_applied_is_refused(moto_endpoint: str, aws: Any) -> None:
    violations = judge(second_reencryption(aws, "complete"), moto_endpoint)
    assert len(violations) == 6, describe(violations)  # three generations, both regions
    assert all("retire the old generation (reencryption.status: none) as its own" in v.message for v in violations)
    # A transition disables nothing: the advice names the steps, not the danger of disabling.
    assert not any("Disabling keys mid-re-encryption" in v.message for v in violations)
    assert all("Each re-encryption step is its own applied change" in v.message for v in violations)


def test_promoting_while_preparing_a_later_reencryption_is_refused(moto_endpoint: str, aws: Any) -> None:
    old, new = deploy(aws, "current", "complete"), deploy(aws, "next", "complete")
    violations = judge(promoted(old, new, status="preparing"), moto_endpoint)
    assert len(violations) == 6, describe(violations)
    assert all("deployed as atlassian-cmk:key-pair next, not current" in v.message for v in violations)


def test_only_a_disabling_refusal_carries_the_disabling_advice(moto_endpoint: str, aws: Any) -> None:
    current = deploy(aws, "current", "in-progress")
    following = deploy(aws, "next", "in-progress")
    raw = engine_config(
        **REVOKED, reencryption={"status": "complete", "ticket": "PS-1"}, enrolledKeys=current, nextKeys=following
    )
    violations = judge(raw, moto_endpoint)
    assert violations and all("Disabling keys mid-re-encryption leaves data" in v.message for v in violations)
    violations = judge(promoted(current, following), moto_endpoint)
    assert violations and not any("Disabling keys mid-re-encryption" in v.message for v in violations)
