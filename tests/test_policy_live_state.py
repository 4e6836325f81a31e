"""The guardrails pack reading the deployed keys from the AWS emulator, over its wire protocol.

The deployed keys are created exactly as the component shapes them (atlassian_cmk.provision) and
then changed with boto3, as an operator or an incident would. Every test starts its own pack: a
pack reads the deployed state once per process, as it does once per `pulumi preview`. The pack
talks to the emulator through a counting proxy, so the tests see every AWS request it makes.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from google.protobuf import struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime.proto import analyzer_pb2

from atlassian_cmk.aws.provision import ProvisionedKey, create_key_pair
from atlassian_cmk.config import parse_stack_config
from atlassian_cmk.naming import TAG_REENCRYPTION, TAG_REVOKED_AT
from rehearsal.policy_pack_client import (
    PolicyPackClient,
    Violation,
    analyze_program_run,
    analyze_request,
    analyzer_resource,
    by_policy,
    describe,
    start_policy_pack,
)
from rehearsal.program_run import ProgramRun, run_program
from tests.support.aws import aws_env, client_factory_for
from tests.support.counting_proxy import CountingProxy, closed_port_url, counting_proxy
from tests.test_config import engine_config

REENCRYPTION = "no-revocation-during-reencryption"
DEPLOYED = "deployed-keys-intact"
CLOCK = "revocation-clock"

REVOKED = {"enabled": "false", "revocation": {"reason": "Suspected breach of encrypted data", "ticket": "SEC-1234"}}


@pytest.fixture(scope="module")
def aws_clients(moto_endpoint_session: str) -> Any:
    """Clients for the emulator, made once: a boto3 client costs ~100 ms to build, a KMS call ~1 ms."""
    return functools.lru_cache(maxsize=None)(client_factory_for(moto_endpoint_session))


@pytest.fixture
def aws(moto_endpoint: str, aws_clients: Any) -> Any:
    """The suite's `aws` fixture (an emptied emulator), with cached clients."""
    return aws_clients


def deploy(aws: Any, **overrides: Any) -> dict[str, ProvisionedKey]:
    """The stack's keys as a previous `pulumi up` left them, by region."""
    keys = create_key_pair(parse_stack_config(engine_config(**overrides)), "prod", client_factory=aws)
    return {k.region: k for k in keys}


def tag(aws: Any, key: ProvisionedKey, name: str, value: str) -> None:
    aws("kms", key.region).tag_resource(KeyId=key.key_id, Tags=[{"TagKey": name, "TagValue": value}])


@contextmanager
def pack_for(
    raw: dict[str, Any], endpoint: str, policy_config: dict[str, Any] | None = None
) -> Iterator[tuple[PolicyPackClient, CountingProxy]]:
    """A fresh pack for the stack config `raw`, reading the emulator at `endpoint` through a counter."""
    with counting_proxy(endpoint) as proxy, start_policy_pack(raw, aws_env(proxy.url)) as client:
        yield client, proxy


def preview(raw: dict[str, Any]) -> ProgramRun:
    run = run_program(raw)
    assert run.error is None, run.error
    return run


def mandatory(violations: list[Violation], policy: str) -> list[Violation]:
    found = by_policy(violations, policy)
    assert found, f"expected a {policy} violation:\n{describe(violations)}"
    assert all(v.level == "mandatory" for v in found), describe(found)
    return found


# ----------------------------------------------------------------------------- no-revocation-during-reencryption


def test_live_reencryption_in_progress_denies_disabling_even_when_the_inputs_say_complete(
    moto_endpoint: str, aws: Any
) -> None:
    raw = engine_config(**REVOKED, reencryption={"status": "complete"})
    with pack_for(raw, moto_endpoint) as (client, _):
        deploy(aws, reencryption={"status": "in-progress", "ticket": "PS-5678"})
        run = preview(raw)
        client.configure()

        violations = mandatory(analyze_program_run(client, run), REENCRYPTION)

    assert len(violations) == 2, describe(violations)
    west = next(v.message for v in violations if "cmk-us-west-2" in v.urn)
    assert "Held back with the realm's keys" in west
    # Both regions' tags in one sentence; the region names the key (its ARN is the enrolled one).
    assert "The deployed key in each of us-east-1 and us-west-2 is tagged re-encryption in-progress." in west
    assert west.count("re-encryption in-progress") == 1
    assert "apply reencryption.status: complete alone, then this change" in west


# The review's spellings (issue 12 item 2); the shared rule is tested on every one (test_reencryption_evidence.py),
# the pack over gRPC on each kind: trailing white space, case, another separator, a word of its own.
@pytest.mark.parametrize("value", ["in-progress ", "In-Progress", "IN_PROGRESS", "running"])
def test_the_pack_denies_a_revocation_when_a_live_tag_is_not_a_known_value(
    value: str, moto_endpoint: str, aws: Any
) -> None:
    raw = engine_config(**REVOKED)
    with pack_for(raw, moto_endpoint) as (client, _):
        deployed = deploy(aws)
        tag(aws, deployed["us-west-2"], TAG_REENCRYPTION, value)
        run = preview(raw)
        client.configure()

        violations = mandatory(analyze_program_run(client, run), REENCRYPTION)

    assert any(f"The deployed key in us-west-2 has {TAG_REENCRYPTION} {value!r}" in v.message for v in violations)


def test_live_reencryption_complete_allows_disabling(moto_endpoint: str, aws: Any) -> None:
    raw = engine_config(**REVOKED, reencryption={"status": "complete"})
    with pack_for(raw, moto_endpoint) as (client, _):
        deploy(aws, reencryption={"status": "complete"})
        run = preview(raw)
        client.configure()

        violations = analyze_program_run(client, run)

    assert violations == [], describe(violations)


def test_a_reencryption_tag_set_on_one_deployed_key_is_what_the_pack_reads(moto_endpoint: str, aws: Any) -> None:
    raw = engine_config(**REVOKED)
    with pack_for(raw, moto_endpoint) as (client, _):
        deployed = deploy(aws)
        tag(aws, deployed["us-east-1"], TAG_REENCRYPTION, "in-progress")
        run = preview(raw)
        client.configure()

        violations = mandatory(analyze_program_run(client, run), REENCRYPTION)

    assert len(violations) == 2
    assert all("The deployed key in us-east-1 is tagged re-encryption in-progress." in v.message for v in violations)
    assert not any("us-west-2 is tagged" in v.message or "each of" in v.message for v in violations)


def test_an_unreachable_endpoint_fails_closed_with_its_reason() -> None:
    raw = engine_config(**REVOKED)
    with start_policy_pack(raw, aws_env(closed_port_url())) as client:  # nothing listens there
        run = preview(raw)
        client.configure()

        violations = analyze_program_run(client, run)

    reencryption = mandatory(violations, REENCRYPTION)
    assert "could not be read, so re-encryption cannot be ruled out" in reencryption[0].message
    assert "cannot reach the AWS endpoint" in reencryption[0].message
    intact = mandatory(violations, DEPLOYED)
    assert "The deployed keys could not be read" in intact[0].message
    assert "fails closed" in intact[0].message
    clock = by_policy(violations, CLOCK)
    assert [v.level for v in clock] == ["advisory"]
    assert "the revocation clock is unknown" in clock[0].message


def test_the_live_check_can_be_turned_off_and_the_violation_says_so() -> None:
    raw = engine_config(**REVOKED, reencryption={"status": "in-progress"})
    with start_policy_pack(raw, aws_env(closed_port_url())) as client:
        run = preview(raw)
        client.configure(
            {
                REENCRYPTION: {"liveStateCheck": False},
                DEPLOYED: {"enforcementLevel": "disabled"},
                CLOCK: {"enforcementLevel": "disabled"},
            }
        )

        violations = mandatory(analyze_program_run(client, run), REENCRYPTION)

    assert len(violations) == len(run.kms_keys) == 4, describe(violations)  # both generations held back
    assert all("The live check is off (policy config liveStateCheck: false)" in v.message for v in violations)
    assert not any("could not be read" in v.message for v in violations)


def test_many_resources_cause_one_round_of_reads_per_region(moto_endpoint: str, aws: Any) -> None:
    raw = engine_config()
    unrelated = [
        analyzer_pb2.AnalyzeRequest(
            type="aws:s3/bucket:Bucket",
            name=f"bucket-{i}",
            urn=f"urn:pulumi:prod::atlassian-cmk::aws:s3/bucket:Bucket::bucket-{i}",
            properties=struct_pb2.Struct(fields={"bucket": struct_pb2.Value(string_value=f"b{i}")}),
        )
        for i in range(200)
    ]
    with pack_for(raw, moto_endpoint) as (client, proxy):
        deploy(aws)
        run = preview(raw)
        keys = [analyze_request(k) for k in run.kms_keys]
        client.configure()

        # Concurrent callers, like the engine's; every key many times over.
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = [v for result in pool.map(client.analyze, [*unrelated, *keys * 20]) for v in result]
        results += client.analyze_stack(analyzer_resource(r) for r in run.resources)
        requests = dict(proxy.requests)

    assert results == [], describe(results)
    assert requests == {
        ("us-east-1", "DescribeKey"): 1,
        ("us-east-1", "ListResourceTags"): 1,
        ("us-east-1", "GetKeyPolicy"): 1,
        ("us-west-2", "DescribeKey"): 1,
        ("us-west-2", "ListResourceTags"): 1,
        ("us-west-2", "GetKeyPolicy"): 1,
    }


# ----------------------------------------------------------------------------- deployed-keys-intact


def test_a_deployed_key_pending_deletion_blocks_the_update_with_the_remedy(moto_endpoint: str, aws: Any) -> None:
    raw = engine_config()
    with pack_for(raw, moto_endpoint) as (client, _):
        west = deploy(aws)["us-west-2"]
        aws("kms", "us-west-2").schedule_key_deletion(KeyId=west.key_id, PendingWindowInDays=30)
        run = preview(raw)
        client.configure()

        violations = mandatory(analyze_program_run(client, run), DEPLOYED)

    # Every key of the realm, not only us-west-2's: refusing one region alone would let the other change.
    assert sorted(v.urn.rsplit("::", 1)[1] for v in violations) == ["cmk-us-east-1", "cmk-us-west-2"]
    for violation in violations:
        message = violation.message
        assert "The deployed key in us-west-2 is PendingDeletion" in message
        assert f"aws kms cancel-key-deletion --region us-west-2 --key-id {west.key_id}" in message
        assert "then enable it" in message
        assert "would create a new key Atlassian has never been given" in message
        assert message.count("PendingDeletion") == 1  # said once


def test_an_enrolled_key_that_is_gone_blocks_the_update(moto_endpoint: str, aws: Any) -> None:
    keys = deploy(aws)
    arns = {region: key.arn for region, key in keys.items()}
    gone = arns["us-east-1"].replace(keys["us-east-1"].key_id, "00000000-0000-4000-8000-000000000000")
    raw = engine_config(enrolledKeys={**arns, "us-east-1": gone})
    with pack_for(raw, moto_endpoint) as (client, _):
        run = preview(raw)
        client.configure()

        violations = mandatory(analyze_program_run(client, run, stack=False), DEPLOYED)

    # Every key of the realm, not only us-east-1's: refusing one region alone would let the other change.
    assert sorted(v.urn.rsplit("::", 1)[1] for v in violations) == ["cmk-us-east-1", "cmk-us-west-2"]
    held = f"The enrolled key {gone} is not found: the key Atlassian holds in us-east-1"
    assert all(held in v.message for v in violations)


def test_a_first_deployment_passes_with_nothing_enrolled(moto_endpoint: str) -> None:
    raw = engine_config()
    with pack_for(raw, moto_endpoint) as (client, _):
        run = preview(raw)
        client.configure()

        violations = analyze_program_run(client, run)

    assert violations == [], describe(violations)


# ----------------------------------------------------------------------------- revocation-clock


def test_disabled_deployed_keys_warn_with_the_reinstatement_and_data_at_risk_dates(
    moto_endpoint: str, aws: Any
) -> None:
    from datetime import UTC, datetime, timedelta

    from atlassian_cmk.timeline import iso

    # The pack reads the real clock: a revocation an hour ago (a tag in the future is not believed).
    revoked_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    raw = engine_config(**REVOKED)
    with pack_for(raw, moto_endpoint) as (client, _):
        deployed = deploy(aws, **REVOKED)
        for key in deployed.values():
            tag(aws, key, TAG_REVOKED_AT, iso(revoked_at))
        run = preview(raw)
        client.configure()

        violations = analyze_program_run(client, run)

    assert [(v.policy, v.level) for v in violations] == [(CLOCK, "advisory")], describe(violations)
    message = violations[0].message
    assert "the deployed CMK keys are disabled in us-east-1 and us-west-2" in message
    assert f"revoked at {iso(revoked_at)} (from revoked-at tag)" in message
    assert f"reinstatement possible until {iso(revoked_at + timedelta(days=10))}" in message
    assert f"data at risk after {iso(revoked_at + timedelta(days=20))}" in message
    assert deployed["us-east-1"].arn in message


def test_a_revoked_at_tag_in_the_future_is_not_believed_by_the_pack(moto_endpoint: str, aws: Any) -> None:
    raw = engine_config(**REVOKED)
    with pack_for(raw, moto_endpoint) as (client, _):
        deployed = deploy(aws, **REVOKED)
        for key in deployed.values():
            tag(aws, key, TAG_REVOKED_AT, "2099-03-01T12:00:00Z")
        run = preview(raw)
        client.configure()

        violations = analyze_program_run(client, run)

    assert [(v.policy, v.level) for v in violations] == [(CLOCK, "advisory")], describe(violations)
    message = violations[0].message
    assert "revocation time unknown: the atlassian-cmk:revoked-at tag in us-east-1 is in the future" in message
    assert "2099-03-01T12:00:00Z" in message and "days left" not in message


def test_without_a_revoked_at_tag_the_revocation_time_is_unknown(moto_endpoint: str, aws: Any) -> None:
    raw = engine_config()  # the pull request that restores access
    with pack_for(raw, moto_endpoint) as (client, _):
        deploy(aws, **REVOKED)
        run = preview(raw)
        client.configure()

        violations = analyze_program_run(client, run)

    assert [(v.policy, v.level) for v in violations] == [(CLOCK, "advisory")], describe(violations)
    message = violations[0].message
    assert "revocation time unknown: the disabled keys carry no atlassian-cmk:revoked-at tag" in message
    assert "within 10 days" in message and "after 20 days" in message
    assert "This update enables the keys again; then reply on the same Atlassian support ticket" in message


@pytest.mark.parametrize(("dry_run", "clock_shown"), [(False, True), (True, False)], ids=["up", "preview"])
def test_in_an_update_the_clock_judges_the_keys_after_the_steps(
    moto_endpoint: str, aws: Any, dry_run: bool, clock_shown: bool
) -> None:
    raw = engine_config(**REVOKED)
    with start_policy_pack(raw, aws_env(moto_endpoint), dry_run=dry_run) as client:
        deployed = deploy(aws)  # enabled, as the update finds them
        run = preview(raw)
        client.configure()
        before_steps = [v for r in run.resources for v in client.analyze(analyze_request(r))]
        for key in deployed.values():  # the update's steps disable both keys
            aws("kms", key.region).disable_key(KeyId=key.key_id)
        after_steps = by_policy(client.analyze_stack(analyzer_resource(r) for r in run.resources), CLOCK)

    assert before_steps == [], describe(before_steps)
    if clock_shown:
        assert [v.level for v in after_steps] == ["advisory"], describe(after_steps)
        assert "the deployed CMK keys are disabled in us-east-1 and us-west-2" in after_steps[0].message
    else:  # a preview changes nothing: the one read made before is the state
        assert after_steps == [], describe(after_steps)
