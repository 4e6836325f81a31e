"""A recorded next generation and the retired ones are the stack's keys, checked as enrolledKeys is
(issue 15 review, findings 1, 2, 6-8): enrolled-keys-kept judged by the guardrails pack over its wire
protocol, the program under Pulumi's mocks, the deployed generations in the emulator as `pulumi up` left
them (`rehearsal.apply`). Per resource: each recorded ARN must carry the stack's evidence tags for its
generation and the `/next` alias must name the recorded next key; on the whole stack (AnalyzeStack, with
the engine's state as `arn` outputs): each generation's key resource must be the ARN recorded for it."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from atlassian_cmk.config import parse_stack_config
from atlassian_cmk.generations import generations
from atlassian_cmk.identity_rules import generation_output_arn_findings, recorded_generation_findings
from atlassian_cmk.live_keys import DeployedState, LiveKey, RegionReading
from atlassian_cmk.naming import TAG_KEY_PAIR, TAG_REGION, TAG_STACK
from rehearsal.policy_pack_client import Violation, analyze_program_run, by_policy, describe, start_policy_pack
from rehearsal.program_run import run_program
from tests.support.aws import aws_env, client_factory_for
from tests.test_config import engine_config
from tests.test_policy_next_keys_kept import IDENTITY, REGIONS, walk_deployed

KEYS = sorted(f"{g}{r}" for g in ("cmk-", "cmk-gen2-") for r in REGIONS)


@pytest.fixture(scope="module")
def aws_clients(moto_endpoint_session: str) -> Any:
    return functools.lru_cache(maxsize=None)(client_factory_for(moto_endpoint_session))


def judge(raw: dict[str, Any], stack: str, endpoint: str, outputs: dict[str, dict[str, str]]) -> list[Violation]:
    """The pull request `raw` as CI judges it, per resource and on the whole stack (the engine's state as
    `outputs`): enrolled-keys-kept's violations."""
    with start_policy_pack(raw, aws_env(endpoint), stack) as client:
        run = run_program(raw, stack=stack)
        assert run.error is None, run.error
        client.configure()
        return by_policy(analyze_program_run(client, run, outputs=outputs), IDENTITY)


def names(violations: list[Violation]) -> list[str]:
    return sorted({v.urn.rsplit("::", 1)[1] for v in violations})


def with_next_keys(raw: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    return {**raw, "atlassian-cmk:nextKeys": engine_config(nextKeys=keys)["atlassian-cmk:nextKeys"]}


def test_hand_recorded_foreign_next_keys_are_refused_on_every_key(moto_endpoint: str, aws_clients: Any) -> None:
    """Finding 1: in preparing, nextKeys recorded by hand with an untagged key in us-east-1."""
    raw, deployed = walk_deployed(aws_clients, "handrec", "preparing")
    foreign = aws_clients("kms", "us-east-1").create_key(Description="not the stack's")["KeyMetadata"]["Arn"]
    keys = {"us-east-1": foreign, "us-west-2": deployed.keys["cmk-gen2-us-west-2"].arn}
    outputs = {name: {"arn": arn} for name, arn in deployed.arns().items()}

    violations = judge(with_next_keys(raw, keys), "handrec", moto_endpoint, outputs)

    assert names(violations) == KEYS, describe(violations)
    per_resource = [v for v in violations if "which is not this stack's next key" in v.message]
    assert names(per_resource) == KEYS, describe(violations)
    assert (
        f"us-east-1: atlassian-cmk:nextKeys records {foreign}, which is not this stack's next key (no "
        "atlassian-cmk:stack tag; no atlassian-cmk:region tag; no atlassian-cmk:key-pair tag)"
    ) in per_resource[0].message
    real = deployed.keys["cmk-gen2-us-east-1"].arn
    assert any(
        f"us-east-1: atlassian-cmk:nextKeys records {foreign} but the stack's key cmk-gen2-us-east-1 is {real}"
        in v.message
        for v in violations
    ), describe(violations)
    assert all(v.level == "mandatory" for v in violations)


def test_next_keys_changed_after_recording_to_a_decoy_with_copied_tags(moto_endpoint: str, aws_clients: Any) -> None:
    """Finding 2: a decoy copying the stack's next tags passes the per-resource check (IAM's residual, as for
    enrolledKeys), and the whole-stack check still refuses it on every key: cmk-gen2-us-east-1 is another ARN."""
    raw, deployed = walk_deployed(aws_clients, "changed", "in-progress")
    tags = [{"TagKey": k, "TagValue": v} for k, v in {TAG_STACK: "changed", TAG_REGION: "us-east-1"}.items()]
    decoy = aws_clients("kms", "us-east-1").create_key(Tags=[*tags, {"TagKey": TAG_KEY_PAIR, "TagValue": "next"}])
    arn = decoy["KeyMetadata"]["Arn"]
    keys = {"us-east-1": arn, "us-west-2": deployed.keys["cmk-gen2-us-west-2"].arn}
    outputs = {name: {"arn": arn} for name, arn in deployed.arns().items()}

    violations = judge(with_next_keys(raw, keys), "changed", moto_endpoint, outputs)

    assert names(violations) == KEYS, describe(violations)
    real = deployed.keys["cmk-gen2-us-east-1"].arn
    whole_stack = [
        v
        for v in violations
        if f"us-east-1: atlassian-cmk:nextKeys records {arn} but the stack's key cmk-gen2-us-east-1 is {real}: the "
        "record must name the key the program deployed for that generation" in v.message
    ]
    assert names(whole_stack) == KEYS, describe(violations)
    # Per resource: /next still names the deployed key, so the alias and the record disagree; both fixes named.
    moved = [v for v in violations if "ALIAS MOVED: us-east-1: alias/atlassian-cmk/changed/next" in v.message]
    assert names(moved) == KEYS, describe(violations)
    assert "or, if atlassian-cmk:nextKeys was changed, restore it from the base branch" in moved[0].message


def test_next_alias_moved_after_recording_is_refused_on_every_key(moto_endpoint: str, aws_clients: Any) -> None:
    """Finding 6: `/next` repointed at another key once nextKeys are recorded."""
    raw, deployed = walk_deployed(aws_clients, "nextmoved", "recorded")
    kms = aws_clients("kms", "us-west-2")
    foreign = kms.create_key()["KeyMetadata"]["Arn"]
    kms.update_alias(AliasName="alias/atlassian-cmk/nextmoved/next", TargetKeyId=foreign)
    outputs = {name: {"arn": arn} for name, arn in deployed.arns().items()}

    violations = judge(raw, "nextmoved", moto_endpoint, outputs)

    assert names(violations) == KEYS, describe(violations)
    recorded = deployed.keys["cmk-gen2-us-west-2"].arn
    assert (
        f"ALIAS MOVED: us-west-2: alias/atlassian-cmk/nextmoved/next names {foreign}, not the recorded next key "
        f"{recorded}"
    ) in violations[0].message


def _key(region: str, arn: str, **tags: str) -> LiveKey:
    return LiveKey(region, arn.rsplit("/", 1)[1], arn, "Disabled", False, tags)


OLD = {r: f"arn:aws:kms:{r}:123456789012:key/00000001-0000-4000-8000-00000000000{i}" for i, r in enumerate(REGIONS)}
NEW = {r: f"arn:aws:kms:{r}:123456789012:key/00000002-0000-4000-8000-00000000000{i}" for i, r in enumerate(REGIONS)}


def _retired_config() -> Any:
    return parse_stack_config(engine_config(enrolledKeys=NEW, retiredKeys=[OLD]))


def test_a_changed_retired_arn_is_not_the_stacks_retired_key() -> None:
    """Finding 7: a retiredKeys ARN naming a key without the stack's retired tags (the pack says it on every key)."""
    config = _retired_config()
    retired = generations(config)[0]
    tagged = _key(
        "us-east-1", OLD["us-east-1"], **{TAG_STACK: "prod", TAG_REGION: "us-east-1", TAG_KEY_PAIR: "retired"}
    )
    untagged = _key("us-west-2", OLD["us-west-2"])  # the ARN changed to another team's key
    state = DeployedState(
        "prod",
        "alias/atlassian-cmk/prod",
        (
            RegionReading("us-east-1", tagged, enrolled_arn=tagged.arn, alias_target=NEW["us-east-1"]),
            RegionReading("us-west-2", untagged, enrolled_arn=untagged.arn, alias_target=NEW["us-west-2"]),
        ),
        enrolled=True,
    )
    (finding,) = recorded_generation_findings(config, retired, state)
    assert finding.message.startswith(
        f"us-west-2: atlassian-cmk:retiredKeys[0] records {OLD['us-west-2']}, which is not this stack's retired key "
        "(no atlassian-cmk:stack tag"
    )
    assert finding.message.endswith("restore it from the base branch")


def test_a_promotion_pull_request_accepts_the_retired_keys_still_tagged_current() -> None:
    """Before the promotion's apply, the newly retired keys are still tagged current and named by the alias."""
    config = _retired_config()
    state = DeployedState(
        "prod",
        "alias/atlassian-cmk/prod",
        tuple(
            RegionReading(
                r,
                _key(r, arn, **{TAG_STACK: "prod", TAG_REGION: r, TAG_KEY_PAIR: "current"}),
                enrolled_arn=arn,
                alias_target=arn,
            )
            for r, arn in OLD.items()
        ),
        enrolled=True,
    )
    assert recorded_generation_findings(config, generations(config)[0], state) == []


def test_a_dropped_retired_entry_renumbers_and_the_arn_check_says_so() -> None:
    """Finding 8: without retiredKeys, `cmk-<region>` (deployed: the retired key) becomes the current one."""
    dropped = parse_stack_config(engine_config(enrolledKeys=NEW))
    (finding,) = generation_output_arn_findings(dropped, "cmk-us-east-1", "us-east-1", OLD["us-east-1"])
    assert f"the stack's key is {OLD['us-east-1']}, not the enrolled key {NEW['us-east-1']}" in finding.message
    kept = _retired_config()
    assert generation_output_arn_findings(kept, "cmk-us-east-1", "us-east-1", OLD["us-east-1"]) == []
    assert generation_output_arn_findings(kept, "cmk-gen2-us-east-1", "us-east-1", NEW["us-east-1"]) == []
    (changed,) = generation_output_arn_findings(kept, "cmk-us-east-1", "us-east-1", NEW["us-west-2"])
    assert changed.message.startswith(f"us-east-1: atlassian-cmk:retiredKeys[0] records {OLD['us-east-1']} but")
