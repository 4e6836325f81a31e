"""The reviewed path after a break-glass override (issue 12 item 7), rehearsed as CI judges it.

`cmkctl revoke --override-reencryption-guard` disabled the keys while re-encryption was declared
in progress; the pull request that records it (`enabled: false`, the revocation block with the
override justification and revocation id) disables nothing and must pass, while the same pull
request with any region still Enabled would disable a key and is refused on every key.
The keys are deployed in moto as the component creates them, the program runs under Pulumi's
mocks, and the real pack judges each resource on its own (`judge_each_step`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from atlassian_cmk.aws.provision import ProvisionedKey, create_key_pair
from atlassian_cmk.config import StackConfigErrors, parse_stack_config
from atlassian_cmk.naming import (
    TAG_ENABLED,
    TAG_GUARD_OVERRIDE,
    TAG_REVOCATION_ID,
    TAG_REVOCATION_REASON,
    TAG_REVOCATION_TICKET,
    TAG_REVOKED_AT,
    TAG_REVOKED_BY,
)
from atlassian_cmk.stack_file import raw_config_from_text
from atlassian_cmk.timeline import iso
from rehearsal.policy_pack_client import describe
from rehearsal.pull_request import Rehearsal, load_policy_config, rehearse_pull_request
from tests.support.aws import aws_env
from tests.support.cmkctl import unwrap

ROOT = Path(__file__).resolve().parents[1]
PROD = (ROOT / "Pulumi.prod.yaml").read_text()
CI_POLICY_CONFIG = load_policy_config((ROOT / "policies" / "policy-config.json").read_text())
JUSTIFICATION = "Active exfiltration confirmed by SOC - Atlassian PS-77 informed"
REVOCATION_ID = "rev-20261129T170000Z-3f9a1c"
FOLLOW_UP = (
    "  atlassian-cmk:revocation:\n"
    "    reason: Suspected breach of encrypted data\n"
    "    ticket: SEC-1234\n"
    f"    id: {REVOCATION_ID}\n"
    f"    override: {JUSTIFICATION}\n"
)
REENCRYPTING = PROD.replace("    status: none", "    status: in-progress\n    ticket: PS-77")


def follow_up(text: str) -> str:
    return text.replace("atlassian-cmk:enabled: true", "atlassian-cmk:enabled: false") + FOLLOW_UP


@pytest.fixture
def reencrypting_keys(aws: Any) -> Iterator[list[ProvisionedKey]]:
    """The keys as `pulumi up` left them with re-encryption in progress (tagged in-progress)."""
    config = parse_stack_config(raw_config_from_text(REENCRYPTING))
    yield create_key_pair(config, "prod", client_factory=aws)


def break_glass(aws: Any, keys: list[ProvisionedKey]) -> None:
    """What `cmkctl revoke --override-reencryption-guard` leaves on each key: Disabled, with the record."""
    for key in keys:
        kms = aws("kms", key.region)
        kms.disable_key(KeyId=key.key_id)
        record = {
            TAG_ENABLED: "false",
            TAG_REVOCATION_ID: REVOCATION_ID,
            TAG_REVOKED_AT: iso(datetime.now(UTC)),
            TAG_REVOKED_BY: "arn:aws:sts::123456789012:assumed-role/break-glass/alice",
            TAG_REVOCATION_REASON: "Suspected breach of encrypted data",
            TAG_REVOCATION_TICKET: "SEC-1234",
            TAG_GUARD_OVERRIDE: JUSTIFICATION,
        }
        kms.tag_resource(KeyId=key.key_id, Tags=[{"TagKey": k, "TagValue": v} for k, v in record.items()])


def rehearse(head: str, endpoint: str) -> Rehearsal:
    return rehearse_pull_request(REENCRYPTING, head, env=aws_env(endpoint), policy_config=CI_POLICY_CONFIG)


def test_the_follow_up_pull_request_disables_nothing_and_is_allowed(
    moto_endpoint: str, aws: Any, reencrypting_keys: list[ProvisionedKey]
) -> None:
    break_glass(aws, reencrypting_keys)
    result = rehearse(follow_up(REENCRYPTING), moto_endpoint)
    assert result.mandatory == [] and not result.blocked, describe(result.violations)
    assert result.run is not None and result.steps is not None
    keys = {k.urn for k in result.run.kms_keys}
    # in-progress: the next generation (cmk-gen2-*) is in the program too; every key judged on its own
    assert len(keys) == 4 and keys <= result.steps.proceeding()
    (clock,) = [v for v in result.advisory if v.policy == "revocation-clock"]
    assert "GUARD OVERRIDDEN by break-glass (atlassian-cmk:guard-override in us-east-1 and us-west-2)" in (
        clock.message
    ), clock.message
    assert JUSTIFICATION in clock.message


def test_the_same_pull_request_while_one_region_is_enabled_is_refused_on_every_key(
    moto_endpoint: str, aws: Any, reencrypting_keys: list[ProvisionedKey]
) -> None:
    break_glass(aws, reencrypting_keys)
    west = next(k for k in reencrypting_keys if k.region == "us-west-2")
    aws("kms", "us-west-2").enable_key(KeyId=west.key_id)  # break-glass did not reach us-west-2
    result = rehearse(follow_up(REENCRYPTING), moto_endpoint)
    assert result.blocking_policies() == ["no-revocation-during-reencryption"], describe(result.violations)
    assert result.run is not None and result.steps is not None
    assert {k.urn for k in result.run.kms_keys} <= result.steps.refused()
    assert result.keys_updated_alone() == []
    message = result.mandatory[0].message
    assert "already Disabled in us-east-1 but not in us-west-2 (Enabled)" in message, message
    assert "tagged re-encryption in-progress" in message


def test_an_unreadable_region_fails_closed(
    moto_endpoint: str, aws: Any, reencrypting_keys: list[ProvisionedKey]
) -> None:
    break_glass(aws, reencrypting_keys)
    env = {**aws_env(moto_endpoint), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}  # nothing listens: unreadable
    result = rehearse_pull_request(REENCRYPTING, follow_up(REENCRYPTING), env=env, policy_config=CI_POLICY_CONFIG)
    assert "no-revocation-during-reencryption" in result.blocking_policies(), describe(result.violations)
    assert result.run is not None and result.steps is not None
    assert {k.urn for k in result.run.kms_keys} <= result.steps.refused()


def test_the_impact_summary_shows_the_override_first(
    moto_endpoint: str, aws: Any, reencrypting_keys: list[ProvisionedKey]
) -> None:
    break_glass(aws, reencrypting_keys)
    review = rehearse(follow_up(REENCRYPTING), moto_endpoint).review
    assert [c.kind for c in review.changes][:2] == ["guard-override", "revocation"]
    markdown = unwrap(review.to_markdown())  # the code block is wrapped to 100 columns
    heading = next(line for line in markdown.splitlines() if line.startswith("### "))
    assert heading == f"### 🛑 GUARD OVERRIDDEN: {JUSTIFICATION} (us-east-1 and us-west-2)"
    assert f"records a break-glass revocation (revocation {REVOCATION_ID})" in markdown
    assert "disables nothing when the keys are already disabled in every region" in markdown
    assert any("already Disabled in every region" in item for item in review.checklist)


def test_a_revocation_without_override_shows_no_override(moto_endpoint: str, aws: Any) -> None:
    create_key_pair(parse_stack_config(raw_config_from_text(PROD)), "prod", client_factory=aws)
    head = PROD.replace("atlassian-cmk:enabled: true", "atlassian-cmk:enabled: false") + FOLLOW_UP.split("    id:")[0]
    result = rehearse_pull_request(PROD, head, env=aws_env(moto_endpoint), policy_config=CI_POLICY_CONFIG)
    assert [c.kind for c in result.review.changes] == ["revocation"]
    assert "GUARD OVERRIDDEN" not in result.review.to_markdown()


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("override", "line one\\nline two", "U+000A LINE FEED"),
        ("override", "''", "required: non-empty text"),
        ("id", "rev-yesterday", "rev-<UTC yyyymmddThhmmssZ>-<hex>"),
        ("id", "rev-20261129T170000Z-3F9A1C", "rev-<UTC yyyymmddThhmmssZ>-<hex>"),
    ],
)
def test_a_bad_override_or_id_is_one_line_naming_the_field(field: str, value: str, expected: str) -> None:
    block = {"reason": "Suspected breach", "ticket": "SEC-1", field: value.replace("\\n", "\n").strip("'")}
    with pytest.raises(StackConfigErrors) as raised:
        parse_stack_config(
            {**raw_config_from_text(PROD), "atlassian-cmk:enabled": "false", "atlassian-cmk:revocation": block}
        )
    (error,) = raised.value.errors
    assert str(error).startswith(f"atlassian-cmk:revocation.{field}: ") and expected in str(error)
    assert "\n" not in str(error)


def test_override_and_id_are_parsed() -> None:
    raw = raw_config_from_text(follow_up(PROD))
    revocation = parse_stack_config(raw).revocation
    assert revocation is not None
    assert (revocation.override, revocation.id) == (JUSTIFICATION, REVOCATION_ID)
