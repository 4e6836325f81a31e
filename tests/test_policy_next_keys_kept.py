"""A recorded next generation cannot be dropped silently (issue 15): enrolled-keys-kept judged by the
guardrails pack over its wire protocol, the program under Pulumi's mocks, the deployed generations in
the emulator as `pulumi up` left them (`rehearsal.apply`: the program's own tags, so the next keys carry
`atlassian-cmk:enrolled=true` exactly when an applied change recorded nextKeys). One pack process per
case: the engine hands a pack its stack configuration at start, and each case is another one."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from atlassian_cmk.generations import NEXT
from atlassian_cmk.identity_rules import removed_enrollment_findings, unreadable_generation_findings
from atlassian_cmk.live_keys import DeployedState, LiveKey, RegionReading
from atlassian_cmk.naming import TAG_ENROLLED
from rehearsal.apply import DeployedStack, apply_program
from rehearsal.policy_pack_client import Violation, analyze_program_run, by_policy, describe, start_policy_pack
from rehearsal.program_run import run_program
from tests.support.aws import aws_env, client_factory_for
from tests.test_config import engine_config

IDENTITY = "enrolled-keys-kept"
REGIONS = ("us-east-1", "us-west-2")
PHASES = ("preparing", "recorded", "in-progress")
"""The walk's phases after enrollment: the next generation created, its ARNs recorded, Atlassian running."""


@pytest.fixture(scope="module")
def aws_clients(moto_endpoint_session: str) -> Any:
    return functools.lru_cache(maxsize=None)(client_factory_for(moto_endpoint_session))


def reencryption(status: str) -> dict[str, Any]:
    return {"reencryption": {"status": status, "ticket": "PS-1"}}


def walk(aws: Any, stack: str, until: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Deploy, enroll and re-encrypt up to phase `until` (each change applied as `pulumi up` would):
    (the stack's configuration then, the next generation's ARNs by region)."""
    raw, deployed = walk_deployed(aws, stack, until)
    return raw, next_arns(deployed)


def walk_deployed(aws: Any, stack: str, until: str) -> tuple[dict[str, Any], DeployedStack]:
    """`walk`, with the deployed stack (every key resource's ARN, as the engine's state holds it)."""
    deployed = DeployedStack()

    def apply(raw: dict[str, Any]) -> None:
        apply_program(run_program(raw, stack=stack, preview=False), deployed, aws)

    apply(engine_config())
    enrolled = {region: deployed.keys[f"cmk-{region}"].arn for region in REGIONS}
    raw = engine_config(enrolledKeys=enrolled)
    apply(raw)
    for phase in PHASES[: PHASES.index(until) + 1]:
        if phase == "recorded":  # `cmkctl enroll --next --write-config`, merged and applied
            recorded = engine_config(nextKeys=next_arns(deployed))
            raw = {**raw, "atlassian-cmk:nextKeys": recorded["atlassian-cmk:nextKeys"]}
        else:
            raw = {**raw, **{k: v for k, v in engine_config(**reencryption(phase)).items() if "reencryption" in k}}
        apply(raw)
    return raw, deployed


def next_arns(deployed: DeployedStack) -> dict[str, str]:
    names = {region: f"cmk-gen2-{region}" for region in REGIONS}
    return {region: deployed.keys[name].arn for region, name in names.items() if name in deployed.keys}


def judge(raw: dict[str, Any], stack: str, endpoint: str) -> list[Violation]:
    """The pull request `raw` as CI judges it: enrolled-keys-kept's violations on the program's resources."""
    with start_policy_pack(raw, aws_env(endpoint), stack) as client:  # the pack imports while the program runs
        run = run_program(raw, stack=stack)
        assert run.error is None, run.error
        client.configure()
        return by_policy(analyze_program_run(client, run, stack=False), IDENTITY)


def without_next_keys(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k != "atlassian-cmk:nextKeys"}


@pytest.mark.parametrize(
    ("applied", "head_status"),
    [("recorded", None), ("in-progress", None), ("in-progress", "none")],
    ids=["preparing", "in-progress", "in-progress, status set back to none in the same change"],
)
def test_dropping_recorded_next_keys_is_refused_on_every_key(
    moto_endpoint: str, aws_clients: Any, applied: str, head_status: str | None
) -> None:
    raw, following = walk(aws_clients, "drop", applied)
    head = without_next_keys(raw)
    if head_status is not None:  # the program then no longer declares the next keys: only the current ones
        head["atlassian-cmk:reencryption"] = engine_config(reencryption={"status": head_status})[
            "atlassian-cmk:reencryption"
        ]
    violations = judge(head, "drop", moto_endpoint)
    names = sorted(v.urn.rsplit("::", 1)[1] for v in violations)
    generations = ("cmk-", "cmk-gen2-") if head_status is None else ("cmk-",)
    assert names == sorted(f"{g}{r}" for g in generations for r in REGIONS), describe(violations)
    for violation in violations:
        assert violation.level == "mandatory"
        for region, arn in following.items():
            assert (
                f"{region}: the next generation's keys are enrolled with Atlassian ({arn}, behind "
                "alias/atlassian-cmk/drop/next, is tagged atlassian-cmk:enrolled=true); atlassian-cmk:nextKeys cannot "
                "be removed: restore it from the base branch (without it the CloudTrail cross-check"
            ) in violation.message


def test_preparing_before_the_next_keys_are_recorded_is_allowed(moto_endpoint: str, aws_clients: Any) -> None:
    """Never recorded is not dropped: the next keys behind /next carry no enrolled tag yet."""
    raw, following = walk(aws_clients, "early", "preparing")
    assert set(following) == set(REGIONS)  # the next generation is deployed, behind its alias
    violations = judge(raw, "early", moto_endpoint)
    assert violations == [], describe(violations)


def _state(*readings: RegionReading) -> DeployedState:
    return DeployedState("prod", "alias/atlassian-cmk/prod/next", readings)


def _key(region: str, arn: str) -> LiveKey:
    return LiveKey(region, arn.rsplit("/", 1)[1], arn, "Enabled", False, {TAG_ENROLLED: "true"})


def test_a_promotion_pull_request_is_not_a_dropped_next_generation() -> None:
    """Until the promotion's apply removes /next, the alias names the keys the change enrolls: not dropped."""
    promoted = "arn:aws:kms:us-east-1:123456789012:key/00000002-0000-4000-8000-000000000000"
    dropped = "arn:aws:kms:us-west-2:123456789012:key/00000002-0000-4000-8000-000000000001"
    state = _state(
        RegionReading("us-east-1", _key("us-east-1", promoted)), RegionReading("us-west-2", _key("us-west-2", dropped))
    )
    findings = removed_enrollment_findings(state, NEXT, recorded={promoted})
    assert [(f.region, f.arn) for f in findings] == [("us-west-2", dropped)]


def test_an_unreadable_next_alias_fails_closed_once_per_cause() -> None:
    state = _state(
        RegionReading("us-east-1", error="AccessDeniedException"), RegionReading("us-west-2", error="timeout")
    )
    # us-west-2's endpoint failed for the current generation too: that finding already says it.
    (finding,) = unreadable_generation_findings(state, NEXT, said={"us-west-2"})
    assert finding.unreadable and finding.message == (
        "us-east-1: alias/atlassian-cmk/prod/next could not be read (AccessDeniedException), so whether its next keys "
        "are enrolled with Atlassian while atlassian-cmk:nextKeys is absent is unknown; fails closed"
    )
