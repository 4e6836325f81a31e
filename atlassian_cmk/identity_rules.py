"""Rules on the identity of Atlassian's keys: the enrolled ARNs against the stack and the live aliases.

Pure functions returning findings that name the region and the ARN at cause. The policy pack
attaches them (per key and for the whole stack), cmkctl renders them, `cmkctl impact` words the
same facts for a reviewer. Why they matter: Atlassian holds exactly the enrolled key ARNs; a key
that Pulumi replaces or drops is a key Atlassian loses (its sites stop working, and the new key
is one Atlassian has never been given).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from atlassian_cmk.config import StackConfig
from atlassian_cmk.generations import CURRENT, NEXT, RETIRED, Generation, generations
from atlassian_cmk.key_identity import KeyArn, KeyGeneration, parse_key_arn
from atlassian_cmk.live_keys import DeployedState, LiveKey, RegionReading
from atlassian_cmk.naming import TAG_ENROLLED, TAG_KEY_PAIR, TAG_REGION, TAG_STACK, alias_name

KEY_TYPE: Final = "key"
REPLICA_KEY_TYPE: Final = "replica"

LOSS: Final = (
    "Atlassian would lose the key it holds there (its sites stop working) and a new key it has never been given "
    "would take its place"
)


@dataclass(frozen=True)
class IdentityFinding:
    """One problem with the identity of a key Atlassian holds: where, which ARN, and why, in one line."""

    region: str
    arn: str | None
    message: str
    unreadable: bool = False
    """True when the finding is that something could not be read (not that it is wrong)."""


def declared_key_kind(config: StackConfig, region: str) -> str:
    """What the program declares in `region`: a Key, or a ReplicaKey (multi-region, after the first region)."""
    return REPLICA_KEY_TYPE if config.multi_region and config.regions.index(region) > 0 else KEY_TYPE


def dropped_keys(config: StackConfig) -> list[IdentityFinding]:
    """Enrolled keys in regions the stack no longer has (a region leaving, a realm change)."""
    if config.enrolled_keys is None:
        return []
    return [
        IdentityFinding(
            key.region,
            key.arn,
            f"the enrolled key {key.arn} in {key.region} would be dropped: {key.region} is no longer in the stack's "
            f"regions ({', '.join(config.regions)}); {LOSS}. Keep the region, or re-encrypt with Atlassian first",
        )
        for key in config.enrolled_keys
        if key.region not in config.regions
    ]


def declared_shape_findings(config: StackConfig, region: str, kind: str, live: LiveKey | None) -> list[IdentityFinding]:
    """Whether the key the program declares in `region` would replace the enrolled key there.

    pulumi-aws replaces a `aws.kms.Key` when `multi_region` changes (ForceNew in the Terraform
    provider's internal/service/kms/key.go) and a key cannot turn into a `ReplicaKey` or back
    without a new resource. Evidence: the enrolled ARN (a multi-region key ID starts `mrk-`) and,
    when read, the live key's multi-region type (PRIMARY / REPLICA).
    """
    enrolled = config.enrolled_keys.arn(region) if config.enrolled_keys is not None else None
    if enrolled is None:
        return []
    findings: list[str] = []
    if enrolled.multi_region != config.multi_region:
        findings.append(
            f"atlassian-cmk:multiRegion is {str(config.multi_region).lower()} but the enrolled key is "
            f"{'a multi-region' if enrolled.multi_region else 'a single-region'} key: the key would be replaced"
        )
    wanted = declared_key_kind(config, region)
    if kind != wanted:
        findings.append(f"the program declares a {kind} key here but the stack's configuration makes it a {wanted} key")
    if live is not None and live.multi_region_type is not None:
        live_kind = REPLICA_KEY_TYPE if live.multi_region_type == "REPLICA" else KEY_TYPE
        if live_kind != kind:
            findings.append(
                f"the enrolled key is a multi-region {live.multi_region_type.lower()} and the program declares a "
                f"{kind} key (the primary is the first region): the key would be replaced"
            )
    return [
        IdentityFinding(region, enrolled.arn, f"{region} ({enrolled.arn}): {finding}; {LOSS}") for finding in findings
    ]


def output_arn_findings(config: StackConfig, region: str, arn: str | None) -> list[IdentityFinding]:
    """After the engine's plan: the key's `arn` output must be its enrolled ARN; None = unknown (being created
    or replaced during preview)."""
    enrolled = config.enrolled_keys.arn(region) if config.enrolled_keys is not None else None
    if enrolled is None:
        return []
    if arn is None:
        return [
            IdentityFinding(
                region,
                enrolled.arn,
                f"{region}: the key's ARN is unknown until apply, so this update creates or replaces it instead of "
                f"keeping the enrolled key {enrolled.arn}; {LOSS}",
            )
        ]
    if arn != enrolled.arn:
        return [
            IdentityFinding(
                region,
                enrolled.arn,
                f"{region}: the stack's key is {arn}, not the enrolled key {enrolled.arn}: Atlassian holds the "
                "enrolled key; if the stack's key really is new, re-encrypt with Atlassian and enroll the new key "
                "through `cmkctl enroll`",
            )
        ]
    return []


def recorded_generation(config: StackConfig, resource_name: str, region: str) -> tuple[str, KeyArn] | None:
    """(the stack file's key that records it, the recorded ARN) of the key resource `resource_name` in
    `region`, or None when its generation records no ARNs (before enrollment, a next generation in `preparing`).

    Each generation keeps its resource name (`generations.key_resource_name`: `cmk-<region>`,
    `cmk-gen<n>-<region>`), so the program's key of generation n must BE the ARN the stack records for
    generation n: enrolledKeys, nextKeys or retiredKeys[n-1].
    """
    for generation in generations(config):
        if generation.keys is None or generation.key_resource_name(region) != resource_name:
            continue
        recorded = generation.keys.arn(region)
        return (record_name(config, generation), recorded) if recorded is not None else None
    return None


def record_name(config: StackConfig, generation: Generation) -> str:
    """The stack file's key that records `generation`'s ARNs (retired ones by their index)."""
    if generation.role == RETIRED:
        return f"atlassian-cmk:retiredKeys[{generation.number - 1}]"
    return RECORDED_BY[generation.role]


def generation_output_arn_findings(
    config: StackConfig, resource_name: str, region: str, arn: str | None
) -> list[IdentityFinding]:
    """After the engine's plan, for a key of ANY generation: its `arn` output must be the ARN the stack records
    for that generation (`recorded_generation`); None = unknown (created or replaced during preview).

    A changed nextKeys or retiredKeys ARN, or a dropped retiredKeys entry (which renumbers the generations,
    so `cmk-<region>` would become the current key and the alias would move back to it), shows here: the
    deployed key of that resource name is another ARN than the one recorded for its generation.
    """
    recorded = recorded_generation(config, resource_name, region)
    if recorded is None:
        return []
    record, expected = recorded
    if record == RECORDED_BY[CURRENT]:
        return output_arn_findings(config, region, arn)
    if arn is None:
        return [
            IdentityFinding(
                region,
                expected.arn,
                f"{region}: the ARN of {resource_name} is unknown until apply, so this update creates or replaces it "
                f"instead of keeping {expected.arn}, recorded as {record}; it is never replaced",
            )
        ]
    if arn != expected.arn:
        return [
            IdentityFinding(
                region,
                expected.arn,
                f"{region}: {record} records {expected.arn} but the stack's key {resource_name} is {arn}: the "
                f"record must name the key the program deployed for that generation; restore {record} from the base "
                "branch (a dropped retiredKeys entry renumbers every later generation)",
            )
        ]
    return []


def alias_command(alias: str, region: str, key_id: str, *, exists: bool) -> str:
    """The AWS CLI command that puts the alias back on the enrolled key."""
    verb = "update-alias" if exists else "create-alias"
    return f"aws kms {verb} --alias-name {alias} --target-key-id {key_id} --region {region}"


def promoted_from(config: StackConfig) -> KeyGeneration | None:
    """The generation a promotion moves Atlassian away from (the last `retiredKeys` entry), or None.

    A promotion's pull request enrolls keys the last apply deployed as the next generation: until its
    own apply retags them current and moves `alias/atlassian-cmk/<stack>` onto them, the enrolled
    keys are tagged `next` and the alias still names the retired generation's key. Those two facts are
    the promotion, not an identity problem; anything else still is. Whether `complete` was applied
    first is transition_rules.promotion_findings' concern.
    """
    return config.retired_keys[-1] if config.retired_keys else None


def _promotion_pending(reading: RegionReading, promotion: KeyGeneration | None) -> bool:
    """The enrolled key in this region is tagged next and the alias names the retired generation's key there."""
    if promotion is None or reading.key is None or reading.key.tags.get(TAG_KEY_PAIR) != NEXT:
        return False
    retired = promotion.arn(reading.region)
    return retired is not None and reading.alias_target == retired.arn


def alias_findings(deployed: DeployedState, *, promotion: KeyGeneration | None = None) -> list[IdentityFinding]:
    """Regions where the stack's alias no longer names the enrolled key (ALIAS MOVED), with the fix.

    `promotion` (`promoted_from(config)`): in a promotion's change, an alias still naming the retired
    generation's key beside an enrolled key tagged next is the state the apply moves on from, not a move.
    """
    findings: list[IdentityFinding] = []
    for reading in deployed.readings:
        if reading.enrolled_arn is None:
            continue
        if reading.alias_error is None and _promotion_pending(reading, promotion):
            continue
        if reading.alias_error is not None:
            # A region unreachable as a whole: its UNREACHABLE finding states the cause, once.
            why = "unreachable" if reading.alias_error == reading.error else reading.alias_error
            findings.append(
                IdentityFinding(
                    reading.region,
                    reading.enrolled_arn,
                    f"ALIAS UNREADABLE: {reading.region}: {deployed.alias} could not be read ({why}); "
                    "whether it still names the enrolled key is unknown",
                    unreadable=True,
                )
            )
            continue
        if not reading.alias_moved:
            continue
        if reading.key is not None and not is_stack_key(reading.key, deployed.stack):
            # Never advise pointing the stack's alias at a key that is not the stack's (foreign_keys says why).
            continue
        enrolled = parse_key_arn(reading.enrolled_arn)
        key_id = enrolled.key_id if enrolled is not None else reading.enrolled_arn
        names = f"names {reading.alias_target}" if reading.alias_target else "does not exist"
        command = alias_command(deployed.alias, reading.region, key_id, exists=reading.alias_target is not None)
        # The `/next` alias is checked against the recorded next key (`next_alias_findings`); there the record
        # may be what changed (a pull request editing nextKeys), so both fixes are named.
        following = deployed.alias.endswith(f"/{NEXT}")
        which = "the recorded next key" if following else "the enrolled key"
        record = f"; or, if {RECORDED_BY[NEXT]} was changed, restore it from the base branch" if following else ""
        findings.append(
            IdentityFinding(
                reading.region,
                reading.enrolled_arn,
                f"ALIAS MOVED: {reading.region}: {deployed.alias} {names}, not {which} "
                f"{reading.enrolled_arn}; anything using the alias acts on the wrong key. Put it back: `{command}`"
                f"{record}",
            )
        )
    return findings


def is_stack_key(key: LiveKey, stack: str) -> bool:
    """Whether the key carries the stack's `atlassian-cmk:stack` tag, the evidence the program writes at CreateKey."""
    return key.tags.get(TAG_STACK) == stack


def foreign_keys(deployed: DeployedState) -> list[IdentityFinding]:
    """Enrolled keys read that do not carry the stack's tag: cmkctl must not act on them (NOT THE STACK'S KEY)."""
    findings: list[IdentityFinding] = []
    for reading in deployed.readings:
        key = reading.key
        if key is None or reading.enrolled_arn is None or is_stack_key(key, deployed.stack):
            continue
        found = key.tags.get(TAG_STACK)
        tagged = f"is tagged {TAG_STACK}={found}" if found is not None else f"has no {TAG_STACK} tag"
        findings.append(
            IdentityFinding(
                reading.region,
                key.arn,
                f"NOT THE STACK'S KEY: {reading.region}: the enrolled key {key.arn} {tagged}, not {deployed.stack}; "
                "cmkctl will not change it and the alias must not name it: check enrolledKeys against the keys "
                "handed to Atlassian",
            )
        )
    return findings


def evidence_tag_problems(key: LiveKey, stack: str, region: str, key_pair: str) -> list[str]:
    """The stack's evidence tags (written by the program at CreateKey) that `key` lacks or contradicts."""
    wanted = {TAG_STACK: stack, TAG_REGION: region, TAG_KEY_PAIR: key_pair}
    return [
        f"{tag}={key.tags[tag]} (not {value})" if tag in key.tags else f"no {tag} tag"
        for tag, value in wanted.items()
        if key.tags.get(tag) != value
    ]


def enrolled_evidence_findings(
    deployed: DeployedState, key_pair: str, *, promotion: KeyGeneration | None = None
) -> list[IdentityFinding]:
    """Enrolled keys that do not carry the stack's evidence tags: ARNs that are not the stack's keys.

    A pull request replacing enrolledKeys with ARNs of other keys (decoys) is caught here unless the
    decoys carry the stack's tags too; that residual case is closed by IAM (issue 12: only the apply
    role may create keys with the stack's tags), not by the pack (docs/policy-pack.md).
    `promotion` (`promoted_from(config)`): an enrolled key tagged next is accepted where the alias still
    names the retired generation's key (a promotion before its apply).
    """
    findings: list[IdentityFinding] = []
    for reading in deployed.readings:
        key = reading.key
        if key is None or reading.enrolled_arn is None:
            continue
        key_pair_here = NEXT if _promotion_pending(reading, promotion) else key_pair
        problems = evidence_tag_problems(key, deployed.stack, reading.region, key_pair_here)
        if problems:
            findings.append(
                IdentityFinding(
                    reading.region,
                    key.arn,
                    f"{reading.region}: the enrolled key {key.arn} is not this stack's key ({'; '.join(problems)}): "
                    "enrolledKeys must name the keys the program created and Atlassian holds (`cmkctl enroll`)",
                )
            )
    return findings


RECORDED_BY: Final[dict[str, str]] = {CURRENT: "atlassian-cmk:enrolledKeys", NEXT: "atlassian-cmk:nextKeys"}
"""The stack file's key that records each generation found through an alias (retired ones have none)."""

DROPPED_CONSEQUENCE: Final[dict[str, str]] = {
    CURRENT: "without it every tool would trust whatever the alias names",
    NEXT: (
        "without it the CloudTrail cross-check of re-encryption is off and the tools find the next keys through "
        "the alias, which anyone with kms:UpdateAlias can repoint"
    ),
}


def removed_enrollment_findings(
    deployed: DeployedState, role: str = CURRENT, recorded: Collection[str] = ()
) -> list[IdentityFinding]:
    """A generation the stack no longer records while its keys say they were handed to Atlassian.

    `deployed`: the keys of generation `role` (current or next) read through its alias, because the
    stack records no ARNs for it (no enrolledKeys, no nextKeys). A key tagged `atlassian-cmk:enrolled=true`
    there was recorded by an applied change (the program tags a generation once ITS ARNs are recorded,
    `generations.generation_key_tags`; only the apply role may write the tag, `evidence.EVIDENCE_TAGS`),
    so this change drops the record. `recorded`: ARNs the stack records as another generation (a
    promotion's pull request: the `/next` alias names the keys now in enrolledKeys until its apply).
    A next generation never recorded (`preparing` before `cmkctl enroll --next`) carries no such tag.
    """
    key_name = RECORDED_BY[role]
    findings: list[IdentityFinding] = []
    for reading in deployed.readings:
        key = reading.key
        if key is None or key.tags.get(TAG_ENROLLED) != "true" or key.arn in recorded:
            continue
        which = "this stack's keys are" if role == CURRENT else f"the {role} generation's keys are"
        findings.append(
            IdentityFinding(
                reading.region,
                key.arn,
                f"{reading.region}: {which} enrolled with Atlassian ({key.arn}, behind {deployed.alias}, is tagged "
                f"{TAG_ENROLLED}=true); {key_name} cannot be removed: restore it from the base branch "
                f"({DROPPED_CONSEQUENCE[role]})",
            )
        )
    return findings


def unreadable_generation_findings(
    deployed: DeployedState, role: str, said: Collection[str] = ()
) -> list[IdentityFinding]:
    """Regions where the `role` generation's alias could not be read, so whether the stack drops its
    record (`removed_enrollment_findings`) is unknown: fail closed. `said`: regions whose read failure
    a finding already states (the same endpoint failing for the current generation), said once."""
    return [
        IdentityFinding(
            reading.region,
            None,
            f"{reading.region}: {deployed.alias} could not be read ({reading.error}), so whether its {role} keys "
            f"are enrolled with Atlassian while {RECORDED_BY[role]} is absent is unknown; fails closed",
            unreadable=True,
        )
        for reading in deployed.readings
        if reading.error is not None and reading.region not in said
    ]


def recorded_generation_findings(
    config: StackConfig, generation: Generation, deployed: DeployedState
) -> list[IdentityFinding]:
    """A recorded next or retired generation checked as enrolledKeys is: each recorded key, read by its ARN,
    must carry the stack's evidence tags for that generation (`atlassian-cmk:stack`, `:region`, `:key-pair`
    next or retired), what `cmkctl enroll --next` checks before recording (`enrollment.check_enrollment`).

    `deployed`: the generation's keys read by their recorded ARNs (`read_deployed_state(enrolled=...)`),
    with the alias of the generation (`/next`) or, for a retired one, the stack's alias. A hand-recorded or
    changed ARN of a key that is not the stack's (a decoy, an untagged key) is caught here; cmkctl would
    refuse to act on it, leaving the real key enabled in a revocation. A retiredKeys entry tagged current is
    accepted only where the stack's alias names it: a promotion's pull request before its apply retags it.
    Unreadable keys are the readers' findings (UNREACHABLE, fails closed), not repeated here.
    """
    if generation.role == CURRENT or generation.keys is None:
        return []
    record = record_name(config, generation)
    findings: list[IdentityFinding] = []
    for reading in deployed.readings:
        key = reading.key
        if reading.enrolled_arn is None or reading.error is not None:
            continue
        if key is None:
            findings.append(
                IdentityFinding(
                    reading.region,
                    reading.enrolled_arn,
                    f"{reading.region}: {record} records {reading.enrolled_arn}, which does not exist: it is not the "
                    f"stack's {generation.role} key; restore {record} from the base branch",
                )
            )
            continue
        role = generation.role
        if role == RETIRED and key.tags.get(TAG_KEY_PAIR) == CURRENT and reading.alias_target == key.arn:
            role = CURRENT  # a promotion before its apply: the old current keys, still named by the stack's alias
        problems = evidence_tag_problems(key, deployed.stack, reading.region, role)
        if problems:
            fix = (
                "record the keys the program created (`cmkctl enroll --next --write-config`)"
                if generation.role == NEXT
                else "restore it from the base branch"
            )
            findings.append(
                IdentityFinding(
                    reading.region,
                    key.arn,
                    f"{reading.region}: {record} records {key.arn}, which is not this stack's {generation.role} key "
                    f"({'; '.join(problems)}): cmkctl would not act on it and the stack's real key would be missed; "
                    f"{fix}",
                )
            )
    return findings


def next_alias_findings(deployed: DeployedState, *, recorded: bool) -> list[IdentityFinding]:
    """ALIAS MOVED for `alias/atlassian-cmk/<stack>/next`, with what to do.

    Recorded (`nextKeys`, `deployed` read by those ARNs): the alias must name the recorded key, as the
    stack's alias must name the enrolled key (`alias_findings`). Not recorded yet (`preparing` before
    `cmkctl enroll --next`, `deployed` read through the alias): the key it names must carry the stack's next
    tags, else the alias was repointed at another key and every tool (enroll --next, status, revoke) would
    take that key for the next generation. Unreadable aliases are the reader's finding (UNREACHABLE).
    """
    if recorded:
        return alias_findings(deployed)
    findings: list[IdentityFinding] = []
    for reading in deployed.readings:
        key = reading.key
        if key is None or reading.error is not None:
            continue
        problems = evidence_tag_problems(key, deployed.stack, reading.region, NEXT)
        if problems:
            findings.append(
                IdentityFinding(
                    reading.region,
                    key.arn,
                    f"ALIAS MOVED: {reading.region}: {deployed.alias} names {key.arn}, which is not this stack's next "
                    f"key ({'; '.join(problems)}); anything using the alias acts on the wrong key. Put it back on the "
                    "program's key (`pulumi stack output nextKeyArns`): `"
                    + alias_command(deployed.alias, reading.region, "<the program's next key ID>", exists=True)
                    + "`",
                )
            )
    return findings


def refused_key_remedy(config: StackConfig, stack: str, region: str, role: str) -> str:
    """What to fix before a revoke or restore can converge, for a key cmkctl refused as not the stack's.

    Rerunning alone never converges: the same record (or alias) names the same key again. A next key found
    through `alias/atlassian-cmk/<stack>/next` (nextKeys not recorded) means the alias was repointed; a
    recorded one (enrolledKeys, nextKeys, retiredKeys) means the stack file names another key.
    """
    if role == NEXT and config.next_keys is None:
        alias = alias_name(stack, NEXT)
        command = alias_command(alias, region, "<the program's next key ID>", exists=True)
        return (
            f"{region} ({role}): {alias} names a key that is not the stack's; put it back on the program's next key "
            f"(`pulumi stack output nextKeyArns`): `{command}`"
        )
    record = RECORDED_BY.get(role, "atlassian-cmk:retiredKeys")
    return (
        f"{region} ({role}): {record} names a key that is not the stack's; restore {record} from the base branch "
        "(`git checkout origin/main -- Pulumi.<stack>.yaml`) or compare it with the keys handed to Atlassian"
    ).replace("<stack>", stack)
