"""Key generations under Pulumi's mock runtime: what the real `__main__.py` registers in each
re-encryption phase, and that promotion keeps every key's URN (no replacement, no delete)."""

from __future__ import annotations

from typing import Any

import pytest

from atlassian_cmk.config import StackConfigErrors, is_text_path, parse_stack_config
from atlassian_cmk.review import review_change
from rehearsal.program_run import ACCOUNT_ID, ProgramRun, RegisteredResource, run_program
from tests.test_config import engine_config

KEY = "aws:kms/key:Key"
REPLICA = "aws:kms/replicaKey:ReplicaKey"
ALIAS = "aws:kms/alias:Alias"
REGIONS = ("us-east-1", "us-west-2")


def generation_arns(number: int) -> dict[str, str]:
    """A generation's ARNs (region -> ARN) with a key ID that names the generation."""
    return {
        region: f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/{number:08d}-0000-4000-8000-00000000000{i}"
        for i, region in enumerate(REGIONS)
    }


def run_ok(**overrides: Any) -> ProgramRun:
    run = run_program(engine_config(**overrides))
    assert run.error is None, run.error
    return run


def keys_by_name(run: ProgramRun) -> dict[str, RegisteredResource]:
    return {key.name: key for key in run.kms_keys}


def enabled_input(key: RegisteredResource) -> Any:
    return key.inputs["isEnabled"] if key.type == KEY else key.inputs["enabled"]


PREPARING = {"reencryption": {"status": "preparing", "ticket": "PS-1"}, "enrolledKeys": generation_arns(1)}
BEFORE_PROMOTION = {
    "reencryption": {"status": "complete", "ticket": "PS-1"},
    "enrolledKeys": generation_arns(1),
    "nextKeys": generation_arns(2),
}
PROMOTED = {
    "reencryption": {"status": "complete", "ticket": "PS-1"},
    "enrolledKeys": generation_arns(2),
    "retiredKeys": [generation_arns(1)],
}
RETIRED = {"reencryption": {"status": "none"}, "enrolledKeys": generation_arns(2), "retiredKeys": [generation_arns(1)]}


def test_preparing_creates_the_next_generation_beside_the_current_one() -> None:
    run = run_ok(**PREPARING)
    keys = keys_by_name(run)
    assert sorted(keys) == sorted([f"cmk-{r}" for r in REGIONS] + [f"cmk-gen2-{r}" for r in REGIONS])
    for region in REGIONS:
        current, following = keys[f"cmk-{region}"], keys[f"cmk-gen2-{region}"]
        assert (current.inputs["region"], following.inputs["region"]) == (region, region)
        assert current.inputs["tags"]["atlassian-cmk:key-pair"] == "current"
        assert following.inputs["tags"]["atlassian-cmk:key-pair"] == "next"
        assert following.inputs["tags"]["atlassian-cmk:reencryption"] == "preparing"
        assert following.inputs["policy"] == current.inputs["policy"]  # the same composed key policy
        assert enabled_input(current) is True and enabled_input(following) is True
        assert following.protect and following.retain_on_delete
    aliases = sorted((a.name, a.inputs["name"], a.inputs["region"]) for a in run.of_type(ALIAS))
    assert aliases == sorted(
        [(f"cmk-{r}-alias", "alias/atlassian-cmk/prod", r) for r in REGIONS]
        + [(f"cmk-next-{r}-alias", "alias/atlassian-cmk/prod/next", r) for r in REGIONS]
    )
    next_arns = run.outputs["nextKeyArns"]
    assert set(next_arns) == set(REGIONS)
    assert set(next_arns.values()).isdisjoint(run.outputs["keyArns"].values())


@pytest.mark.parametrize(
    ("phase", "has_next"),
    [
        ({"reencryption": {"status": "none"}}, False),
        ({"reencryption": {"status": "in-progress", "ticket": "PS-1"}}, True),
        (BEFORE_PROMOTION, True),
        (PROMOTED, False),
    ],
)
def test_next_key_arns_are_exported_only_while_a_next_generation_exists(phase: dict[str, Any], has_next: bool) -> None:
    run = run_ok(**phase)
    assert ("nextKeyArns" in run.outputs) is has_next
    assert len(run.kms_keys) == (4 if has_next or "retiredKeys" in phase else 2)


def test_promotion_keeps_every_key_urn_and_moves_the_alias_in_place() -> None:
    before, after = run_ok(**BEFORE_PROMOTION), run_ok(**PROMOTED)
    keys_before, keys_after = keys_by_name(before), keys_by_name(after)
    # The same URNs: the engine diffs each key against its own old state (update, never replace/delete).
    assert {k.urn for k in before.kms_keys} == {k.urn for k in after.kms_keys}
    for name, key in keys_after.items():
        assert key.inputs["region"] == keys_before[name].inputs["region"]
        assert key.inputs["policy"] == keys_before[name].inputs["policy"]
        assert list(key.request.aliases) == []  # the name itself is stable: no Pulumi alias needed
    roles = {name: key.inputs["tags"]["atlassian-cmk:key-pair"] for name, key in keys_after.items()}
    assert roles == {
        "cmk-us-east-1": "retired",
        "cmk-us-west-2": "retired",
        "cmk-gen2-us-east-1": "current",
        "cmk-gen2-us-west-2": "current",
    }
    # alias/atlassian-cmk/prod is the same resource, now targeting the promoted key; /next is gone.
    current_alias = {a.name: a for a in after.of_type(ALIAS)}
    assert sorted(current_alias) == [f"cmk-{r}-alias" for r in REGIONS]
    assert {a.urn for a in after.of_type(ALIAS)} <= {a.urn for a in before.of_type(ALIAS)}
    assert "nextKeyArns" not in after.outputs
    # The promotion change keeps the retired keys usable; retiring them is the next reviewed change.
    assert all(enabled_input(key) is True for key in after.kms_keys)


def test_retiring_disables_the_retired_generation_only_and_never_deletes_it() -> None:
    run = run_ok(**RETIRED)
    keys = keys_by_name(run)
    for region in REGIONS:
        retired, current = keys[f"cmk-{region}"], keys[f"cmk-gen2-{region}"]
        assert enabled_input(retired) is False and retired.inputs["tags"]["atlassian-cmk:enabled"] == "false"
        assert "atlassian-cmk:revocation-reason" not in retired.inputs["tags"]
        assert retired.protect and retired.retain_on_delete
        assert enabled_input(current) is True


@pytest.mark.parametrize("phase", [PREPARING, BEFORE_PROMOTION, PROMOTED, RETIRED])
def test_a_revocation_disables_every_generation(phase: dict[str, Any]) -> None:
    run = run_ok(**phase, enabled="false", revocation={"reason": "breach", "ticket": "SEC-7"})
    assert [enabled_input(key) for key in run.kms_keys] == [False] * len(run.kms_keys)


def test_restore_after_retirement_enables_the_current_generation_only() -> None:
    run = run_ok(**RETIRED)  # enabled: true, status none: a restore writes exactly this
    enabled = {key.name: enabled_input(key) for key in run.kms_keys}
    assert enabled == {
        "cmk-us-east-1": False,
        "cmk-us-west-2": False,
        "cmk-gen2-us-east-1": True,
        "cmk-gen2-us-west-2": True,
    }


def test_multi_region_next_generation_has_its_own_primary_and_replica() -> None:
    run = run_ok(reencryption={"status": "preparing", "ticket": "PS-1"}, multiRegion="true")  # mrk- ARNs not yet known
    primaries = sorted(k.name for k in run.of_type(KEY))
    replicas = {k.name: k for k in run.of_type(REPLICA)}
    assert primaries == ["cmk-gen2-us-east-1", "cmk-us-east-1"]
    assert sorted(replicas) == ["cmk-gen2-us-west-2", "cmk-us-west-2"]
    assert replicas["cmk-gen2-us-west-2"].inputs["primaryKeyArn"] != replicas["cmk-us-west-2"].inputs["primaryKeyArn"]


# --- the generations in config ----------------------------------------------------------------


def config_errors(**overrides: Any) -> list[str]:
    with pytest.raises(StackConfigErrors) as caught:
        parse_stack_config(engine_config(**overrides))
    return [str(error) for error in caught.value.errors]


def test_next_keys_outside_a_reencryption_are_refused() -> None:
    (error,) = config_errors(nextKeys=generation_arns(2))
    assert error.startswith("atlassian-cmk:nextKeys: ")
    assert "allowed only while reencryption.status is preparing, in-progress, complete (it is none)" in error


def test_a_key_in_two_generations_is_refused() -> None:
    errors = config_errors(
        reencryption={"status": "complete"}, enrolledKeys=generation_arns(1), nextKeys=generation_arns(1)
    )
    assert len(errors) == 2  # one line per region
    error = errors[0]
    assert error.startswith("atlassian-cmk:nextKeys.us-east-1: ")
    assert "a key of no other generation (it is in enrolledKeys)" in error


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"us-east-1": "x"}, "atlassian-cmk:retiredKeys: "),
        ([{"us-east-1": generation_arns(1)["us-east-1"]}], "atlassian-cmk:retiredKeys[0]: "),
        ([generation_arns(1), {"us-east-1": "alias/x", "us-west-2": "y"}], "atlassian-cmk:retiredKeys[1].us-east-1: "),
    ],
)
def test_retired_keys_are_a_list_of_generations(value: Any, expected: str) -> None:
    (error,) = config_errors(enrolledKeys=generation_arns(2), retiredKeys=value)
    assert error.startswith(expected), error


def test_generation_arns_are_registered_text_paths() -> None:
    assert is_text_path("nextKeys.us-east-1")
    assert is_text_path("retiredKeys[0].us-west-2")
    assert not is_text_path("retiredKeys.us-west-2")


# --- what the reviewer reads for each transition (cmkctl impact) ----------------------------


def transition(base: dict[str, Any], head: dict[str, Any]) -> tuple[str, str]:
    review = review_change(
        parse_stack_config(engine_config(**base)), parse_stack_config(engine_config(**head)), "prod", "main"
    )
    (change,) = [c for c in review.changes if c.kind == "reencryption"]
    assert not any(c.kind == "enrolled-keys" for c in review.changes)  # promotion is not "ARNs changed by hand"
    return change.summary, change.details


def test_impact_describes_each_transition() -> None:
    enrolled = {"enrolledKeys": generation_arns(1)}
    summary, details = transition(enrolled, PREPARING)
    assert "PREPARING RE-ENCRYPTION" in summary
    assert "nextKeyArns output to Atlassian on the re-encryption ticket" in details
    assert "alias/atlassian-cmk/prod/next" in details
    in_progress = {**BEFORE_PROMOTION, "reencryption": {"status": "in-progress", "ticket": "PS-1"}}
    assert "both key generations must stay enabled" in transition(PREPARING, in_progress)[0]
    assert "promotion is the next, separate change" in transition(in_progress, BEFORE_PROMOTION)[0]
    summary, details = transition(BEFORE_PROMOTION, PROMOTED)
    assert "PROMOTION" in summary and "No key is replaced or deleted" in details
    summary, details = transition(PROMOTED, RETIRED)
    assert "RETIREMENT" in summary
    assert "Backups protected by them no longer work" in details
    assert generation_arns(1)["us-east-1"] in details


RECORDED = {**PREPARING, "nextKeys": generation_arns(2)}
"""`preparing` once `cmkctl enroll --next` recorded the next generation."""


def enrolled_tags(run: ProgramRun) -> dict[str, str | None]:
    return {key.name: key.inputs["tags"].get("atlassian-cmk:enrolled") for key in run.kms_keys}


def test_a_generation_is_tagged_enrolled_only_once_its_own_arns_are_recorded() -> None:
    """Issue 15: the deployed tags tell a next generation never recorded from one whose nextKeys were dropped."""
    walk = [run_ok(**phase) for phase in (PREPARING, RECORDED, PROMOTED, RETIRED)]
    preparing, recorded, promoted, retired = (enrolled_tags(run) for run in walk)
    current, following = [f"cmk-{r}" for r in REGIONS], [f"cmk-gen2-{r}" for r in REGIONS]
    assert preparing == {**dict.fromkeys(current, "true"), **dict.fromkeys(following, None)}
    # Recording nextKeys, promotion (the next keys enrolled as current) and retirement (the old ones a
    # retiredKeys entry): every key of every generation stays tagged from then on.
    assert recorded == promoted == retired == dict.fromkeys(current + following, "true")


def test_recording_the_next_keys_changes_only_their_enrolled_tag_in_place() -> None:
    before, after = run_ok(**PREPARING), run_ok(**RECORDED)
    assert {r.urn for r in before.resources} == {r.urn for r in after.resources}  # nothing created or deleted
    old, new = keys_by_name(before), keys_by_name(after)
    for name, key in new.items():
        # No replacement: no replace-on-change or delete-before-replace asked, and apart from the one tag the
        # inputs are the previous ones (tags are updated in place, never ForceNew in the provider).
        assert list(key.request.replaceOnChanges) == [] and not key.request.deleteBeforeReplace
        changed = {k for k in {*key.inputs, *old[name].inputs} if key.inputs.get(k) != old[name].inputs.get(k)}
        tags = key.inputs["tags"]
        if name.startswith("cmk-gen2-"):
            assert changed == {"tags"}
            assert {k: v for k, v in tags.items() if k != "atlassian-cmk:enrolled"} == old[name].inputs["tags"]
        else:
            assert changed == set()
