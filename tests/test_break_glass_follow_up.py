"""The reviewed path after a break-glass override (issue 12 item 7), rehearsed as CI judges it.

`cmkctl revoke --override-reencryption-guard` disabled the keys while re-encryption was declared
in progress; the pull request that records it (`enabled: false`, the revocation block with the
override justification and revocation id) disables nothing and must pass, while the same pull
request with any region still Enabled would disable a key and is refused on every key.
The keys are deployed in moto as the component creates them, the program runs under Pulumi's
mocks, and the real pack judges each resource on its own (`judge_each_step`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from atlassian_cmk.aws.provision import ProvisionedKey, create_key_pair
from atlassian_cmk.cli.main import main
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
from atlassian_cmk.realm_findings import MESSAGE_LIMIT
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


def test_the_follow_up_pull_request_disables_nothing_and_is_allowed_and_shows_the_override_first(
    moto_endpoint: str, aws: Any, reencrypting_keys: list[ProvisionedKey]
) -> None:
    break_glass(aws, reencrypting_keys)
    result = rehearse(follow_up(REENCRYPTING), moto_endpoint)  # one pack process for the verdict and the review
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
    review = result.review
    assert [c.kind for c in review.changes][:2] == ["guard-override", "revocation"] and not review.blocked
    markdown = unwrap(review.to_markdown())  # the code block is wrapped to 100 columns
    heading = next(line for line in markdown.splitlines() if line.startswith("### "))
    assert heading == f"### 🛑 GUARD OVERRIDDEN: {JUSTIFICATION} (us-east-1 and us-west-2)"
    assert f"records a break-glass revocation (revocation {REVOCATION_ID})" in markdown
    assert "disables nothing when the keys are already disabled in every region" in markdown
    assert "equal the record on the keys" in markdown
    assert any("already Disabled in every region" in item for item in review.checklist)


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


def test_a_revocation_without_override_shows_no_override(moto_endpoint: str, aws: Any) -> None:
    create_key_pair(parse_stack_config(raw_config_from_text(PROD)), "prod", client_factory=aws)
    head = PROD.replace("atlassian-cmk:enabled: true", "atlassian-cmk:enabled: false") + FOLLOW_UP.split("    id:")[0]
    result = rehearse_pull_request(PROD, head, env=aws_env(moto_endpoint), policy_config=CI_POLICY_CONFIG)
    assert [c.kind for c in result.review.changes] == ["revocation"]
    assert "GUARD OVERRIDDEN" not in result.review.to_markdown()
    # The ordinary GitOps revocation: keys Enabled, no record yet, no id: nothing to compare, allowed.
    assert result.mandatory == [] and not result.blocked, describe(result.violations)


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


# --- The follow-up must be the keys' record (issue 12 items 5 and 7; the reviewer's finding) -------------------

OTHER_ID = "rev-20261129T170000Z-000000"
NO_OVERRIDE = follow_up(REENCRYPTING).replace(f"    override: {JUSTIFICATION}\n", "")
VARIANTS = {
    # head stack file -> (what the pack's refusal says, cmkctl impact's exit code: it reads no AWS, so it
    # sees the block's shape and the status change, never the keys' id)
    "wrong id": (
        follow_up(REENCRYPTING).replace(REVOCATION_ID, OTHER_ID),
        f"the revocation block's id '{OTHER_ID}' is not the keys' '{REVOCATION_ID}' (atlassian-cmk:revocation-id)",
        0,
    ),
    "missing override": (
        NO_OVERRIDE,
        "the revocation block's override (none) is not the keys' 'Active exfiltration confirmed by SOC - '… "
        "(63 characters) (atlassian-cmk:guard-override)",
        4,
    ),
    "status complete": (
        follow_up(REENCRYPTING).replace("    status: in-progress", "    status: complete"),
        "reencryption.status 'complete' is not the applied 'in-progress': a pull request that records a "
        "revocation during re-encryption cannot also change the status",
        4,
    ),
    "status none": (
        follow_up(PROD),
        "reencryption.status 'none' is not the applied 'in-progress'",
        4,
    ),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_follow_up_that_is_not_the_keys_record_is_refused_on_every_key(
    variant: str, moto_endpoint: str, aws: Any, reencrypting_keys: list[ProvisionedKey]
) -> None:
    head, expected, _code = VARIANTS[variant]
    break_glass(aws, reencrypting_keys)
    result = rehearse(head, moto_endpoint)
    assert result.blocking_policies() == ["no-revocation-during-reencryption"], describe(result.violations)
    assert result.run is not None and result.steps is not None
    assert {k.urn for k in result.run.kms_keys} <= result.steps.refused()
    assert result.keys_updated_alone() == []
    message = result.mandatory[0].message
    body = " ".join(message.splitlines()[1:])  # pulumi_policy sends the description first
    assert expected in unwrap(body), body
    assert "us-east-1 and us-west-2: " in body  # said once, naming both regions
    if variant == "status none":  # also an abandonment (transition_rules): two causes share the 400 characters
        assert "Abandons the re-encryption" in body
        assert len(body) <= 2 * MESSAGE_LIMIT, (len(body), body)  # MESSAGE_LIMIT is per cause
    else:
        assert "Copy the atlassian-cmk:revocation block cmkctl revoke printed, unchanged" in body
        assert len(body) <= MESSAGE_LIMIT, (len(body), body)


def test_an_id_no_key_carries_is_a_stale_copy_outside_reencryption(moto_endpoint: str, aws: Any) -> None:
    """Keys Enabled, no record: a revocation pull request carrying an id names a record no key has."""
    create_key_pair(parse_stack_config(raw_config_from_text(PROD)), "prod", client_factory=aws)
    head = follow_up(PROD).replace(f"    override: {JUSTIFICATION}\n", "")
    result = rehearse_pull_request(PROD, head, env=aws_env(moto_endpoint), policy_config=CI_POLICY_CONFIG)
    assert result.blocking_policies() == ["no-revocation-during-reencryption"], describe(result.violations)
    assert result.run is not None and result.steps is not None
    assert {k.urn for k in result.run.kms_keys} <= result.steps.refused()
    body = " ".join(result.mandatory[0].message.splitlines()[1:])
    assert f"The revocation block's id '{REVOCATION_ID}' names a record no key carries now" in body, body


@pytest.fixture
def impact_repo(tmp_path: Path) -> Path:
    """A repository whose main branch declares re-encryption in progress (the base of the follow-up)."""
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.email", "ci@example.com"],
        ["config", "user.name", "ci"],
    ):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    (tmp_path / "Pulumi.prod.yaml").write_text(REENCRYPTING)
    for args in (["add", "Pulumi.prod.yaml"], ["commit", "-q", "-m", "base"]):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    return tmp_path


@pytest.mark.parametrize("variant", [*VARIANTS, "right follow-up"])
def test_cmkctl_impact_exit_code_for_each_variant(
    variant: str, impact_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head, _said, code = VARIANTS.get(variant, (follow_up(REENCRYPTING), "", 0))
    (impact_repo / "Pulumi.prod.yaml").write_text(head)
    assert main(["--project-dir", str(impact_repo), "impact", "--base", "main"]) == code
    out = unwrap(capsys.readouterr().out)
    headings = [line for line in out.splitlines() if line.startswith("### ")]
    if code:
        # After the override and the revocation, which say what the pull request does to access.
        heading = headings[2] if headings[0].startswith("### 🛑 GUARD OVERRIDDEN") else headings[1]
        assert heading.startswith("### 🛑 Not the break-glass follow-up: "), headings
        assert "this check fails" in heading
    else:
        assert "Not the break-glass follow-up" not in out
