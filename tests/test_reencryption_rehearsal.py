"""A whole re-encryption walked on the emulator through the pull-request harness (`rehearsal/reencryption.py`).

The walk is run once for the module (the program under mocks, the pack over gRPC, moto; ~10 pull
requests): each test asserts what one transition did. The single transitions, allowed and refused, are
judged on their own in tests/test_policy_transitions.py; what only the walk shows is that the steps
chain: what one apply leaves is what the next pull request is judged against.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from atlassian_cmk.config import parse_stack_config
from atlassian_cmk.display import TEXT_WIDTH
from atlassian_cmk.generations import retired_generation
from atlassian_cmk.stack_file import load_stack_config
from rehearsal.policy_pack_client import analyze_program_run, by_policy, describe, start_policy_pack
from rehearsal.program_run import run_program
from rehearsal.reencryption import ReencryptionRehearsal, promoted, rehearse_reencryption, with_status
from tests.support.aws import aws_env, reset_moto
from tests.support.cmkctl import REAL_STACK_FILE, STACK, emulator_clients
from tests.test_config import engine_config
from tests.test_policy_transitions import deploy
from tests.test_program_generations import generation_arns

IDENTITY = "enrolled-keys-kept"
JUSTIFICATION = "revocation-requires-justification"


@pytest.fixture(scope="module")
def walked(moto_endpoint_session: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[ReencryptionRehearsal, Path]:
    reset_moto(moto_endpoint_session)
    project = tmp_path_factory.mktemp("reencryption")
    shutil.copyfile(REAL_STACK_FILE, project / f"Pulumi.{STACK}.yaml")
    lines: list[str] = []
    clients = emulator_clients(moto_endpoint_session)
    result = rehearse_reencryption(project, endpoint=moto_endpoint_session, client_factory=clients, say=lines.append)
    assert result.passed, "\n".join(lines)
    return result, project


def impact(result: ReencryptionRehearsal, title: str) -> str:
    step = result.step(title)
    assert step.pull_request is not None
    # The impact wraps its text to the reader's columns; a sentence may span a line break.
    return " ".join(step.pull_request.review.to_markdown().split())


def test_every_step_of_the_walk_ends_as_expected(walked: tuple[ReencryptionRehearsal, Path]) -> None:
    result, project = walked
    assert [step.title for step in result.steps if not step.ok] == []
    config = load_stack_config(project, STACK)
    # Where the walk leaves the stack file: the promoted generation enrolled, the old one retired.
    assert config.reencryption.status == "none" and config.next_keys is None
    assert len(config.retired_keys) == 1
    assert config.enrolled_keys is not None
    assert config.enrolled_keys.as_config() == result.generation_arns(2)
    assert config.retired_keys[0].as_config() == result.generation_arns(1)


def test_prepare_creates_the_next_generation_beside_the_current_and_says_what_to_hand_atlassian(
    walked: tuple[ReencryptionRehearsal, Path],
) -> None:
    result, _ = walked
    step = result.step("Pull request: prepare (status preparing)")
    assert step.applied is not None
    assert sorted(step.applied.created) == [
        "cmk-gen2-us-east-1",
        "cmk-gen2-us-west-2",
        "cmk-next-us-east-1-alias",
        "cmk-next-us-west-2-alias",
    ]
    text = impact(result, "Pull request: prepare (status preparing)")
    assert "nextKeyArns output to Atlassian on the re-encryption ticket" in text
    assert "cmkctl enroll --next --write-config" in text


def test_recording_next_keys_lists_the_arns_to_hand_atlassian(walked: tuple[ReencryptionRehearsal, Path]) -> None:
    result, _ = walked
    text = impact(result, "Pull request: record nextKeys")
    following = result.generation_arns(2)
    assert "NEXT KEYS RECORDED: hand these ARNs to Atlassian on the re-encryption ticket" in text
    for region, arn in following.items():
        assert f"+ {region}: {arn}" in text


def test_a_revocation_while_in_progress_is_refused_on_every_key_of_both_generations(
    walked: tuple[ReencryptionRehearsal, Path],
) -> None:
    result, _ = walked
    step = result.step("Pull request: revoke while re-encryption is in progress")
    assert step.pull_request is not None and step.applied is None
    refused = step.pull_request.steps
    assert refused is not None
    assert sorted(name.rsplit("::", 1)[1] for name in refused.refused()) == [
        "cmk-gen2-us-east-1",
        "cmk-gen2-us-west-2",
        "cmk-us-east-1",
        "cmk-us-west-2",
    ]
    assert step.pull_request.blocking_policies() == ["no-revocation-during-reencryption"]
    assert step.pull_request.keys_updated_alone() == []


def test_complete_and_promote_in_one_change_is_refused(walked: tuple[ReencryptionRehearsal, Path]) -> None:
    result, _ = walked
    step = result.step("Pull request: complete and promote in one change")
    assert step.pull_request is not None and step.applied is None
    messages = [v.message for v in step.pull_request.mandatory]
    assert len(messages) == 4, describe(step.pull_request.mandatory)
    assert all("promotes the next generation while the deployed status is in-progress" in m for m in messages)


def test_promotion_replaces_no_key_and_moves_the_alias(walked: tuple[ReencryptionRehearsal, Path]) -> None:
    result, _ = walked
    step = result.step("Pull request: promote the next generation")
    assert step.applied is not None
    assert step.applied.created == []  # no key created: none replaced
    assert sorted(step.applied.deleted_aliases) == ["cmk-next-us-east-1-alias", "cmk-next-us-west-2-alias"]
    assert {"cmk-us-east-1-alias", "cmk-us-west-2-alias"} <= set(step.applied.updated)
    assert "PROMOTION" in impact(result, "Pull request: promote the next generation")
    assert result.step("Promotion replaced no key; alias/atlassian-cmk/prod names the promoted keys").ok


def test_retirement_says_backups_stop_working_and_disables_the_retired_keys_only(
    walked: tuple[ReencryptionRehearsal, Path], moto_endpoint_session: str
) -> None:
    result, _ = walked
    text = impact(result, "Pull request: retire the old generation (status none)")
    assert "Backups protected by them no longer work" in text
    step = result.step("Pull request: retire the old generation (status none)")
    assert step.applied is not None and step.applied.created == [] and step.applied.deleted_aliases == []
    final = result.step("Retired keys disabled (never deleted), the promoted keys enabled")
    assert final.ok and all("generation 1 Disabled, generation 2 Enabled" in line for line in final.lines)


def test_the_walk_never_schedules_a_key_for_deletion(walked: tuple[ReencryptionRehearsal, Path]) -> None:
    result, _ = walked
    assert len(result.deployed.keys) == 4
    # The states the last step read: Disabled or Enabled, never PendingDeletion.
    final = result.step("Retired keys disabled (never deleted), the promoted keys enabled")
    assert not any("Pending" in line for line in final.lines)


# --- the guardrail changes the walk needed, each on its own (attacks included) ---------------------


@pytest.fixture
def aws(moto_endpoint: str) -> Any:
    return emulator_clients(moto_endpoint)


def test_a_promotion_whose_alias_names_neither_generation_is_still_refused(moto_endpoint: str, aws: Any) -> None:
    """The promotion excuse holds only where the alias still names the retired generation's key."""
    old, new = deploy(aws, "current", "complete"), deploy(aws, "next", "complete")
    decoy = aws("kms", "us-west-2").create_key(Description="decoy")["KeyMetadata"]
    aws("kms", "us-west-2").update_alias(AliasName=f"alias/atlassian-cmk/{STACK}", TargetKeyId=decoy["KeyId"])
    raw = engine_config(reencryption={"status": "complete", "ticket": "PS-1"}, enrolledKeys=new, retiredKeys=[old])

    violations = by_policy(every_violation(raw, moto_endpoint), IDENTITY)

    assert violations, "a moved alias during promotion must be refused"
    assert all("ALIAS MOVED: us-west-2" in v.message for v in violations), describe(violations)
    assert not any("us-east-1: the enrolled key" in v.message for v in violations)


def test_a_promotion_with_the_alias_on_the_retired_key_passes_the_identity_guard(moto_endpoint: str, aws: Any) -> None:
    old, new = deploy(aws, "current", "complete"), deploy(aws, "next", "complete")
    raw = engine_config(reencryption={"status": "complete", "ticket": "PS-1"}, enrolledKeys=new, retiredKeys=[old])
    assert by_policy(every_violation(raw, moto_endpoint), IDENTITY) == []


def test_enrolled_keys_tagged_next_without_a_promotion_are_refused(moto_endpoint: str, aws: Any) -> None:
    """Without retiredKeys there is no promotion: next-generation keys cannot be enrolled as the current."""
    new = deploy(aws, "next", "in-progress")
    deploy(aws, "current", "in-progress")
    raw = engine_config(reencryption={"status": "in-progress", "ticket": "PS-1"}, enrolledKeys=new)
    violations = by_policy(every_violation(raw, moto_endpoint), IDENTITY)
    assert violations and all("atlassian-cmk:key-pair=next (not current)" in v.message for v in violations)


def every_violation(raw: dict[str, Any], endpoint: str) -> list[Any]:
    """Every policy's violations (not only the re-encryption guard's) for the program's resources."""
    run = run_program(raw)
    assert run.error is None, run.error
    with start_policy_pack(raw, aws_env(endpoint)) as client:
        client.configure()
        return analyze_program_run(client, run, stack=False)


def test_only_a_retired_generations_own_keys_can_be_a_retirement() -> None:
    config = parse_stack_config(
        engine_config(
            reencryption={"status": "none"}, enrolledKeys=generation_arns(2), retiredKeys=[generation_arns(1)]
        )
    )
    (retired,) = config.retired_keys
    assert retired_generation(config, "cmk-us-east-1", "us-east-1", "retired") == retired
    assert retired_generation(config, "cmk-gen2-us-east-1", "us-east-1", "retired") is None  # the current number
    assert retired_generation(config, "cmk-us-east-1", "us-east-1", "current") is None


def test_a_pull_request_listing_made_up_retired_keys_cannot_disable_the_current_key_unjustified(
    moto_endpoint: str, aws: Any
) -> None:
    """An invented retiredKeys entry renumbers the generations: the deployed current key (cmk-<region>)
    would be declared retired and disabled. Its retired entry's live key is not deployed as retired,
    so this is a revocation, refused per resource without a reason and ticket."""
    current = deploy(aws, "current", "none")
    raw = engine_config(reencryption={"status": "none"}, enrolledKeys=current, retiredKeys=[generation_arns(7)])

    violations = by_policy(every_violation(raw, moto_endpoint), JUSTIFICATION)

    refused = sorted({v.urn.rsplit("::", 1)[1] for v in violations})
    assert refused == ["cmk-us-east-1", "cmk-us-west-2"], describe(violations)
    assert all("would be disabled without a revocation" in v.message for v in violations)


def test_a_real_retirement_needs_no_incident_ticket(moto_endpoint: str, aws: Any) -> None:
    old, new = deploy(aws, "retired", "complete"), deploy(aws, "current", "complete")
    raw = engine_config(reencryption={"status": "none"}, enrolledKeys=new, retiredKeys=[old])
    assert by_policy(every_violation(raw, moto_endpoint), JUSTIFICATION) == []


def test_the_stack_file_edits_of_the_walk_are_what_the_readme_describes() -> None:
    text = REAL_STACK_FILE.read_text()
    assert "    status: preparing\n    ticket: PS-5678\n" in with_status(text, "preparing")
    with pytest.raises(ValueError, match="no atlassian-cmk:nextKeys block"):
        promoted(text, {}, {})


def test_the_walks_lines_fit_the_text_width(walked: tuple[ReencryptionRehearsal, Path]) -> None:
    """What `make demo` prints of the walk (impact continuations, applied resources, key states) fits
    TEXT_WIDTH columns, as cmkctl's own text does."""
    result, _ = walked
    assert any(line.startswith("  applied (pulumi up): ") for line in result.said)
    assert [line for line in result.said if len(line) > TEXT_WIDTH] == []


def test_dropping_the_recorded_next_keys_is_refused_by_enrolled_keys_kept_alone(
    walked: tuple[ReencryptionRehearsal, Path],
) -> None:
    """Issue 15: once `enroll --next` is applied the next keys are tagged enrolled, so the drop shows."""
    result, _ = walked
    step = result.step("Pull request: drop nextKeys while in progress")
    assert step.pull_request is not None and step.applied is None
    assert step.pull_request.blocking_policies() == [IDENTITY]
    refused = step.pull_request.steps
    assert refused is not None
    assert sorted(name.rsplit("::", 1)[1] for name in refused.refused()) == [
        "cmk-gen2-us-east-1",
        "cmk-gen2-us-west-2",
        "cmk-us-east-1",
        "cmk-us-west-2",
    ]
    messages = [v.message for v in step.pull_request.mandatory]
    for arn in result.generation_arns(2).values():
        assert any(arn in m and "atlassian-cmk:nextKeys cannot be removed" in m for m in messages), arn
    assert "NEXT KEYS REMOVED" in impact(result, "Pull request: drop nextKeys while in progress")
