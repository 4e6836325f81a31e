"""Enrollment: from the keys the first `pulumi up` created to the `enrolledKeys` the stack records,
and from the next generation a `preparing` apply created to the `nextKeys` (`cmkctl enroll --next`).

`cmkctl enroll` reads each region's key through the stack's alias (the only way to find it
before enrollment) and accepts it only when it looks like the stack's own key: its tags name
this stack, region and key pair, it is not pending deletion, every key is in one account, and
its key policy keeps the account's administration and Atlassian's grants. An alias someone
repointed at another key fails at least one of these; then nothing is enrolled.

The next generation is checked the same way through `alias/atlassian-cmk/<stack>/next`, its keys
tagged `atlassian-cmk:key-pair: next`; it is recorded only while the program creates it (status
`preparing` or `in-progress`), only beside recorded `enrolledKeys` (the current generation's
identity must not come from an alias either), and never with an ARN of another generation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from atlassian_cmk.config import ReencryptionStatus, StackConfig
from atlassian_cmk.generations import NEXT
from atlassian_cmk.key_identity import parse_key_arn
from atlassian_cmk.key_policy import key_policy_findings
from atlassian_cmk.live_keys import DeployedState, LiveKey
from atlassian_cmk.naming import CURRENT_KEY_PAIR, TAG_DRILL, TAG_KEY_PAIR, TAG_REGION, TAG_STACK

PERMISSIONS: Final = (
    "kms:DescribeKey",
    "kms:ListResourceTags",
    "kms:GetKeyPolicy",
    "kms:ListKeys",
    "sts:GetCallerIdentity",
)
"""What `cmkctl enroll` calls (reads only); ListKeys to find any other key carrying the stack's tags;
GetCallerIdentity (allowed to every principal) names who and where."""


@dataclass(frozen=True)
class EnrollmentCheck:
    """The keys to enroll (region -> ARN, in the stack's region order), or every reason not to."""

    keys: dict[str, str]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def policy_problems(config: StackConfig, key: LiveKey, account: str) -> list[str]:
    """What the key's deployed policy lacks for this stack, as `key-policy-keeps-access` judges a
    new policy (`key_policy.key_policy_findings`, IAM's semantics): the own account's root
    administrator, every statement of `atlassian-cmk:atlassianKeyPolicy` present and semantically
    unchanged, no Deny reaching Atlassian, no grant outside the account, the context tag's
    conditions. Only blocking findings count (a note explains, it does not refuse)."""
    if key.policy is None:
        return ["its key policy was not read"]
    findings = key_policy_findings(
        key.policy,
        atlassian_statements=config.atlassian_key_policy,
        context_tag=config.context_tag,
        account_id=account,
        atlassian_revision=config.atlassian_key_policy_revision,
    )
    # A drill key (tagged by `cmkctl drill`) grants a stand-in for Atlassian in the own account
    # (composed_policy.composed_key_policy's drill_stand_in); every other invariant holds.
    drill = key.tags.get(TAG_DRILL) == "true"
    return [
        finding.message
        for finding in findings
        if finding.blocking and not (drill and finding.rule == "atlassian-own-account")
    ]


NEXT_ENROLLMENT_STATUSES: Final[tuple[ReencryptionStatus, ...]] = ("preparing", "in-progress")
"""The phases in which `cmkctl enroll --next` records `nextKeys`: the program creates the next generation
then; at `complete` the ARNs must already be recorded (Atlassian re-encrypted to them)."""


def next_enrollment_refusal(config: StackConfig) -> str | None:
    """Why the next generation cannot be recorded for this configuration (before any AWS call), or None."""
    status = config.reencryption.status
    if status not in NEXT_ENROLLMENT_STATUSES:
        return (
            f"atlassian-cmk:reencryption.status is {status}; enroll --next records the next generation only while "
            f"it is {' or '.join(NEXT_ENROLLMENT_STATUSES)} (set status: preparing and apply it first)"
        )
    if config.enrolled_keys is None:
        return (
            "atlassian-cmk:enrolledKeys is not set; enroll the current generation first "
            "(`cmkctl enroll --write-config`), so neither generation's identity comes from an alias"
        )
    return None


def _key_problems(
    config: StackConfig, stack: str, region: str, key: LiveKey, key_pair: str = CURRENT_KEY_PAIR
) -> list[str]:
    problems: list[str] = []
    wanted = stack_key_tags(stack, region, key_pair)
    for tag, value in wanted.items():
        found = key.tags.get(tag)
        if found != value:
            problems.append(f"tag {tag} is {'missing' if found is None else found}, expected {value}")
    if key.pending_deletion:
        problems.append(f"it is {key.key_state}")
    if key.multi_region != config.multi_region:
        problems.append(
            f"it is {'' if key.multi_region else 'not '}multi-region; the stack says multiRegion: "
            f"{str(config.multi_region).lower()}"
        )
    parsed = parse_key_arn(key.arn)
    if parsed is None or parsed.region != region:
        problems.append(f"its ARN {key.arn} is not a key ARN in {region}")
        return problems
    problems.extend(policy_problems(config, key, parsed.account))
    return problems


def check_enrollment(
    config: StackConfig, deployed: DeployedState, key_pair: str = CURRENT_KEY_PAIR
) -> EnrollmentCheck:
    """Whether the keys behind the alias in every region of the realm are the stack's own, and their ARNs.

    `key_pair`: the generation read (`current`, or `next` through `alias/atlassian-cmk/<stack>/next`,
    whose keys must be tagged `atlassian-cmk:key-pair: next` and hold no ARN of another generation).
    """
    problems: list[str] = []
    keys: dict[str, str] = {}
    for region in config.regions:
        reading = deployed.reading(region)
        if reading is None or reading.error is not None:
            problems.append(f"{region}: the key could not be read ({reading.error if reading else 'not read'})")
            continue
        if reading.key is None:
            problems.append(f"{region}: no key behind {deployed.alias}: run `pulumi up` first")
            continue
        key = reading.key
        for problem in _key_problems(config, deployed.stack, region, key, key_pair):
            problems.append(f"{region}: {key.arn} does not look like the stack's key: {problem}")
        keys[region] = key.arn
    accounts = sorted({parsed.account for arn in keys.values() if (parsed := parse_key_arn(arn)) is not None})
    if len(accounts) > 1:
        problems.append(f"the keys are in different accounts ({', '.join(accounts)}); one key account is expected")
    if key_pair == NEXT:
        problems.extend(_held_elsewhere(config, keys))
    return EnrollmentCheck(keys=keys, problems=tuple(problems))


def _held_elsewhere(config: StackConfig, keys: Mapping[str, str]) -> list[str]:
    """The next generation's ARNs that another generation already records (an alias repointed back at one)."""
    recorded: dict[str, str] = {}
    for index, generation in enumerate(config.retired_keys):
        recorded.update({key.arn: f"atlassian-cmk:retiredKeys[{index}]" for key in generation})
    if config.enrolled_keys is not None:
        recorded.update({key.arn: "atlassian-cmk:enrolledKeys" for key in config.enrolled_keys})
    return [
        f"{region}: {arn} is already recorded as {recorded[arn]}; the next generation is a new key per region"
        for region, arn in keys.items()
        if arn in recorded
    ]


def stack_key_tags(stack: str, region: str, key_pair: str = CURRENT_KEY_PAIR) -> dict[str, str]:
    """The evidence tags that make a key look like the stack's key of `key_pair` in `region` (what a decoy
    would copy)."""
    return {TAG_STACK: stack, TAG_REGION: region, TAG_KEY_PAIR: key_pair}


def other_tagged_keys_problems(
    keys: Mapping[str, str], scans: Mapping[str, tuple[tuple[str, ...], str | None]]
) -> list[str]:
    """Why enrollment is refused when another key in a region carries the stack's tags too.

    `keys`: region -> ARN behind the alias; `scans`: region -> (ARNs of every key carrying the stack's
    tags, or why the scan is incomplete). A decoy behind a repointed alias can copy the tags; with
    two candidates the program's own key cannot be told apart from the alias alone, so nothing is
    enrolled (compare with `pulumi stack output keyArns` and put the alias back). Fails closed: an
    incomplete scan refuses too.
    """
    problems: list[str] = []
    for region, arn in keys.items():
        found, error = scans.get(region, ((), "not scanned"))
        if error is not None:
            problems.append(f"{region}: could not check that no other key carries the stack's tags ({error})")
            continue
        others = [other for other in found if other != arn]
        if others:
            problems.append(
                f"{region}: {len(others) + 1} keys carry the stack's tags ({arn} behind the alias, and "
                f"{', '.join(others)}): one is not the program's key; compare with `pulumi stack output keyArns` and "
                "put the alias back on the program's key before enrolling"
            )
    return problems
