"""Assessing a stack: the declared configuration against the live keys, region by region.

`cmkctl status` renders this; the CI apply workflow branches on its exit code. It lives in
the core (no argparse, no printing) so any adapter asks the same questions and gets the same
answers: which regions drifted from the stack file, whether the regions disagree (a split,
which Atlassian cannot work with), and whether a key is lost (pending deletion or missing).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from atlassian_cmk.clock_check import check_revoked_at, region_clocks
from atlassian_cmk.config import StackConfig, apply_role_missing
from atlassian_cmk.deadlines import deadline_findings
from atlassian_cmk.evidence import HeldGeneration, KeyPolicies, deployed_evidence_protection, policies_by_region
from atlassian_cmk.exit_codes import ExitCode, most_severe
from atlassian_cmk.generations import CURRENT, NEXT, RETIRED, generation_place
from atlassian_cmk.generations import generations as all_generations
from atlassian_cmk.guards import (
    deployed_integrity,
    not_deployed_regions,
    realm_revocation_clock,
    split_regions,
)
from atlassian_cmk.iam_policy import PolicyError, Request, Statement, evaluate, statement_actions
from atlassian_cmk.identity_rules import (
    alias_findings,
    dropped_keys,
    foreign_keys,
    next_alias_findings,
    recorded_generation_findings,
    removed_enrollment_findings,
)
from atlassian_cmk.key_policy import (
    atlassian_access,
    atlassian_callers,
    deleted_principals,
    parse_atlassian_statements,
    split_key_policy,
)
from atlassian_cmk.live_keys import (
    CloudTrailEvidence,
    DeployedState,
    GenerationKeys,
    LiveKey,
    RegionReading,
    realm_wide_error,
)
from atlassian_cmk.naming import (
    TAG_GUARD_OVERRIDE,
    TAG_REVOCATION_ID,
    TAG_REVOCATION_REASON,
    TAG_REVOCATION_TICKET,
    TAG_REVOKED_BY,
)
from atlassian_cmk.records import has_current_revocation
from atlassian_cmk.reencryption_activity import ReencryptionActivity, activity_json, unknown_activity_reasons
from atlassian_cmk.timeline import RevocationClock, iso
from atlassian_cmk.transition_rules import expected_enabled

SCHEMA_VERSION: Final = 1
"""Version of `cmkctl status --json`; bumped only when a field changes meaning or disappears."""

PERMISSIONS: Final = (
    "kms:DescribeKey",
    "kms:ListResourceTags",
    "kms:GetKeyPolicy",
    "cloudtrail:LookupEvents",
    "sts:GetCallerIdentity",
)
"""What `cmkctl status` calls; LookupEvents for every disabled key (the clock, or its cross-check), and while
two generations are enrolled for the evidence of re-encryption (`atlassian_cmk.reencryption_activity`);
GetCallerIdentity (allowed to every principal, no IAM statement needed) names the account and caller."""

SERVICES: Final = ("kms", "sts", "cloudtrail")
"""The AWS services `cmkctl status` calls (PERMISSIONS); its header names where each one's requests go."""

FindingKind = Literal[
    "critical",
    "alias-moved",
    "refused",
    "unreachable",
    "split",
    "records",
    "access",
    "drift",
    "not-deployed",
    "deadline",
]

_EXIT_BY_KIND: Final[Mapping[FindingKind, ExitCode]] = {
    "critical": ExitCode.KEY_LOST,
    "alias-moved": ExitCode.ALIAS_MOVED,
    # A stack without applyRoleArn (`config.apply_role_missing`): what the program and the pack refuse, so
    # the same code as a refusal; ranked below a lost key or a moved alias, above everything a rerun could fix.
    "refused": ExitCode.REFUSED,
    "not-deployed": ExitCode.NOT_DEPLOYED,
    "unreachable": ExitCode.UNREACHABLE,
    "split": ExitCode.SPLIT,
    "records": ExitCode.RECORD_NOT_WRITTEN,
    "access": ExitCode.DRIFT,
    "drift": ExitCode.DRIFT,
    "deadline": ExitCode.DEADLINE,
}


def _exit_code(finding: Finding) -> ExitCode:
    if finding.kind == "deadline" and finding.subkind == "clock-unverified":
        return ExitCode.UNREACHABLE
    return _EXIT_BY_KIND[finding.kind]


FAIL_ON_CHOICES: Final = ("deadline",)
"""Finding kinds that only change the exit code when asked (`cmkctl status --fail-on deadline`)."""


@dataclass(frozen=True)
class Finding:
    """One thing an operator must know, in one line that says what to do."""

    kind: FindingKind
    message: str
    region: str | None = None
    subkind: str | None = None
    """For a deadline: window-closing | window-passed | data-at-risk | revoked-at-unknown | clock-unverified
    (`DeadlineKind`; clock-unverified counts as exit 3 under `--fail-on deadline`);
    for a drift: revoked-at-disagrees (REVOKED-AT DISAGREES WITH CLOUDTRAIL), else None."""


@dataclass(frozen=True)
class RegionStatus:
    """One region of the realm: what the stack declares beside what AWS reports."""

    region: str
    declared_enabled: bool
    declared_reencryption: str
    key: LiveKey | None
    error: str | None
    drift: tuple[str, ...]
    clock: RevocationClock | None
    clock_note: str | None = None
    enrolled_arn: str | None = None
    alias_target: str | None = None

    @property
    def missing(self) -> bool:
        return self.key is None and self.error is None

    @property
    def state_label(self) -> str:
        """The key state, or why there is none."""
        if self.error is not None:
            return "unreadable"
        return "missing" if self.key is None else self.key.key_state


@dataclass(frozen=True)
class StatusReport:
    """The whole assessment: rows, call-outs and the exit code they add up to."""

    stack: str
    alias: str
    config: StackConfig
    checked_at: datetime
    regions: tuple[RegionStatus, ...]
    clock: RevocationClock | None
    findings: tuple[Finding, ...]
    enrolled: bool = False
    """Whether the keys were read by their enrolled ARNs (False: through the alias, before enrollment)."""
    notes: tuple[str, ...] = ()
    """What the operator should know that is no problem today (not enrolled yet); no effect on the exit code."""

    fail_on: frozenset[str] = frozenset()
    generations: tuple[GenerationKeys, ...] = ()
    """Every key generation the stack holds, oldest first, with its keys as read (status per generation)."""
    activity: ReencryptionActivity | None = None
    """CloudTrail's evidence of Atlassian re-encrypting, while two generations are enrolled."""

    @property
    def exit_code(self) -> ExitCode:
        """The most severe finding's code; deadline findings count only when in `fail_on`. A clock CloudTrail
        could not confirm (DEADLINE UNVERIFIED) is evidence unknown: exit 3, as RE-ENCRYPTION EVIDENCE UNKNOWN."""
        counted = [f for f in self.findings if f.kind not in FAIL_ON_CHOICES or f.kind in self.fail_on]
        return most_severe([_exit_code(f) for f in counted])

    @property
    def regions_read(self) -> int:
        return sum(1 for row in self.regions if row.error is None)


def assess(
    config: StackConfig,
    deployed: DeployedState,
    *,
    now: datetime,
    cloudtrail: Mapping[str, CloudTrailEvidence] | None = None,
    key_policies: tuple[Mapping[str, str], Mapping[str, str]] | None = None,
    fail_on: frozenset[str] = frozenset(),
    generations: tuple[GenerationKeys, ...] = (),
) -> StatusReport:
    """Compare the declared stack with what every region reported, and name every problem.

    `key_policies`: (key ARN -> deployed key policy JSON, key ARN -> why unreadable), from
    `read_key_policies` (`evidence.KeyPolicies`), every generation's keys: a deployed Atlassian statement of a
    current key naming a deleted principal is a finding, and so is any generation's key policy without the
    evidence protection (EVIDENCE UNPROTECTED naming `us-east-1 (next)`).
    `fail_on` (subset of FAIL_ON_CHOICES) makes those findings count in the exit code.
    `generations`: every generation's keys (`aws.generation_reads.read_generations`), shown as read.
    `deployed.reencryption_activity`: CloudTrail's evidence while two generations are enrolled.
    Atlassian seen re-encrypting while the stack does not declare `in-progress` is DRIFT; evidence
    that cannot be read is RE-ENCRYPTION EVIDENCE UNKNOWN (kind unreachable, exit 3: fail closed).
    A next or retired key whose state differs from the stack's rule is DRIFT naming its generation.
    """
    evidence = cloudtrail or {}
    clocks = region_clocks(deployed.live_keys(), evidence, now=now)
    rows = tuple(
        _region_status(config, deployed.stack, reading, evidence.get(reading.region), clocks.get(reading.region))
        for reading in deployed.readings
    )
    findings: list[Finding] = []
    missing_apply_role = apply_role_missing(config)
    if missing_apply_role is not None:
        findings.append(Finding("refused", f"APPLY ROLE MISSING: {missing_apply_role}", subkind="apply-role-missing"))

    readable = dataclasses.replace(deployed, readings=tuple(r for r in deployed.readings if r.error is None))
    for reason in deployed_integrity(readable).reasons:
        findings.append(Finding("critical", f"CRITICAL: {reason}"))
    for identity in alias_findings(deployed):
        # An alias that could not be read is an unreadable region (exit 3), never ALIAS MOVED (exit 6).
        kind: FindingKind = "unreachable" if identity.unreadable else "alias-moved"
        findings.append(Finding(kind, identity.message, region=identity.region))
    for identity in foreign_keys(readable):
        findings.append(Finding("critical", identity.message, region=identity.region))
    for identity in dropped_keys(config):
        findings.append(Finding("drift", f"DROPPED: {identity.message}", region=identity.region))
    missing = not_deployed_regions(readable)
    if missing:
        findings.append(
            Finding(
                "not-deployed",
                f"NOT DEPLOYED: no key yet behind {deployed.alias} in {', '.join(missing)} (a state, not an incident): "
                "run `pulumi up`, then `cmkctl enroll`",
            )
        )
    notes: list[str] = []
    if not deployed.enrolled and not missing:
        notes.append(
            "NOT ENROLLED: the keys were found through the alias; the stack records no enrolled key ARNs yet. Run "
            f"`cmkctl enroll --write-config` and commit Pulumi.{deployed.stack}.yaml so every tool addresses the keys "
            "Atlassian holds, not whatever the alias names"
        )
    cause = realm_wide_error(deployed)
    if cause is not None:
        # Every region failed alike (one endpoint down, credentials refused): the cause is said once.
        total = len(deployed.readings)
        findings.append(Finding("unreachable", f"UNREACHABLE: read 0 of {total} regions: {cause}"))
    for reading in deployed.readings:
        if reading.error is not None and cause is None:
            findings.append(
                Finding("unreachable", f"UNREACHABLE: {reading.region}: {reading.error}", region=reading.region)
            )

    keys = deployed.live_keys()
    enabled_by_region = {key.region: key.enabled for key in keys}
    if split_regions(enabled_by_region):
        states = ", ".join(f"{key.region} {key.key_state}" for key in keys)
        findings.append(
            Finding(
                "split",
                f"SPLIT: the regions disagree ({states}); Atlassian needs every region enabled or every region "
                "disabled: finish the change with `cmkctl revoke` or `cmkctl restore`",
            )
        )
    if key_policies is not None:
        current_policies = policies_by_region(key_policies, deployed.live_keys())
        findings.extend(key_policy_access_findings(*current_policies, atlassian_statements=config.atlassian_key_policy))
        held = [(g.role, g.deployed) for g in generations if g.deployed is not None] or [(CURRENT, deployed)]
        findings.extend(evidence_protection_findings(held, key_policies, apply_role_arn=config.apply_role_arn))
    for row in rows:
        for difference in row.drift:
            findings.append(Finding("drift", f"DRIFT: {row.region}: {difference}", region=row.region))

    findings.extend(generation_integrity_findings(generations))
    findings.extend(generation_split_findings(generations))
    findings.extend(record_findings(generations))
    findings.extend(generation_identity_findings(config, generations))
    findings.extend(generation_state_findings(config, generations))
    findings.extend(dropped_generation_findings(config, generations))
    activity = deployed.reencryption_activity
    findings.extend(_activity_findings(config, activity))
    # Fail closed: while Atlassian holds two generations, evidence that cannot be read is a reading in doubt
    # (exit 3, as an unreadable region), never "as declared": re-encryption cannot be ruled out.
    findings.extend(
        Finding("unreachable", f"RE-ENCRYPTION EVIDENCE UNKNOWN: {reason}", subkind="reencryption-evidence")
        for reason in unknown_activity_reasons(config, activity)
    )

    # The revoked-at tag against CloudTrail's DisableKey (written by AWS, not by a role we ship): a
    # disagreement is evidence of a rewritten record, DRIFT (exit 1) like EVIDENCE UNPROTECTED; the clock
    # already runs from CloudTrail's time there. "Unverified" because CloudTrail is not read in full (refused,
    # throttled, unreachable, scan exhausted) is a deadline finding (`deadlines.CLOCK_UNPROVEN`); right after a
    # revoke the DisableKey is normally not in CloudTrail yet, which is no finding (said on the clock's line).
    findings.extend(
        Finding("drift", check.finding(), region=region, subkind="revoked-at-disagrees")
        for region, check in sorted(check_revoked_at(keys, evidence, now=now).items())
        if check.disagrees
    )
    overall = realm_revocation_clock(keys, evidence, now=now)
    findings.extend(Finding("deadline", d.message, subkind=d.kind) for d in deadline_findings(overall, now))
    return StatusReport(
        stack=deployed.stack,
        alias=deployed.alias,
        config=config,
        checked_at=now,
        regions=rows,
        clock=overall,
        findings=tuple(findings),
        enrolled=deployed.enrolled,
        notes=tuple(notes),
        fail_on=fail_on,
        generations=generations,
        activity=activity,
    )


def generation_integrity_findings(generations: Sequence[GenerationKeys]) -> list[Finding]:
    """CRITICAL for each key of a next or retired generation scheduled for deletion, as for the current
    generation (`guards.deployed_integrity`): keys are never deleted. A next key Atlassian was handed is
    one it re-encrypts to; a retired key still protects backups; once deleted, data behind it is lost.
    The remedy is AWS's own: `aws kms cancel-key-deletion` leaves the key Disabled (KMS CancelKeyDeletion)."""
    findings = []
    for generation in generations:
        if generation.role == CURRENT or generation.deployed is None:
            continue  # the current generation's keys are deployed_integrity's (the realm's rows)
        label = f"generation {generation.number} ({generation.role})"
        for key in generation.deployed.live_keys():
            if not key.pending_deletion:
                continue
            then = "then enable it" if generation.role == NEXT else "it stays disabled, as retired keys are"
            findings.append(
                Finding(
                    "critical",
                    f"CRITICAL: {key.region}: {label} key {key.arn} is {key.key_state}: run `aws kms "
                    f"cancel-key-deletion --region {key.region} --key-id {key.key_id}`, {then}",
                    region=key.region,
                )
            )
    return findings


def generation_split_findings(generations: Sequence[GenerationKeys]) -> list[Finding]:
    """SPLIT for a next generation whose keys disagree across regions (one Enabled, one Disabled), as for
    the current generation: Atlassian re-encrypts to every region's next key, so a split leaves data
    unevenly readable whatever the stack declares. Retired keys are no longer held (DRIFT only)."""
    findings = []
    for generation in generations:
        if generation.role != NEXT or generation.deployed is None:
            continue
        keys = [key for key in generation.deployed.live_keys() if not key.pending_deletion]
        if split_regions({key.region: key.enabled for key in keys}):
            states = ", ".join(f"{key.region} {key.key_state}" for key in keys)
            findings.append(
                Finding(
                    "split",
                    f"SPLIT: generation {generation.number} ({generation.role}): the regions disagree ({states}); "
                    "Atlassian needs every region of a generation it holds enabled or every one disabled: finish "
                    "the change with `cmkctl revoke`, or restore through the reviewed `enabled: true` change",
                )
            )
    return findings


def record_findings(generations: Sequence[GenerationKeys]) -> list[Finding]:
    """RECORDS DIFFER when the disabled keys Atlassian holds (current and next generation) carry more than one
    open revocation record: one incident has one record on every key. Two operators at once can leave two
    (a restore that yields to a revoke must record the revocation under a new id where its own restore record
    closed the revoke's, since the key policy never lets break-glass reopen a closed record); the clock already
    runs from the earliest. Exit 9, as revoke's RECORDS DIFFER."""
    ids: dict[str, list[str]] = {}
    for generation in generations:
        if generation.role not in (CURRENT, NEXT) or generation.deployed is None:
            continue
        for key in generation.deployed.live_keys():
            if not key.enabled and not key.pending_deletion and has_current_revocation(key.tags):
                place = generation_place(key.region, generation.role)
                ids.setdefault(key.tags.get(TAG_REVOCATION_ID) or "a record without an id", []).append(place)
    if len(ids) <= 1:
        return []
    each = "; ".join(f"{rid} in {', '.join(labels)}" for rid, labels in sorted(ids.items()))
    return [
        Finding(
            "records",
            f"RECORDS DIFFER: the disabled keys carry {len(ids)} revocation records ({each}); one incident has one "
            "record: the clock runs from the earliest; have the CI apply role write the incident's record on the "
            "others (records are write-once to break-glass; docs/cmkctl.md, \"Running revoke again is safe\")",
        )
    ]


def generation_identity_findings(config: StackConfig, generations: Sequence[GenerationKeys]) -> list[Finding]:
    """The next and retired generations' identity, by the rules the pack's enrolled-keys-kept applies:
    a recorded key that is not the stack's key of that generation (`recorded_generation_findings`) is
    NOT THE STACK'S KEY (critical: cmkctl will not act on it and the real key would be missed); the `/next`
    alias off the recorded next key, or (before recording) naming a key without the stack's next tags,
    is ALIAS MOVED (exit 6), as for the stack's own alias."""
    declared = {generation.number: generation for generation in all_generations(config)}
    findings: list[Finding] = []
    for keys in generations:
        generation = declared.get(keys.number)
        if keys.role == CURRENT or keys.deployed is None or generation is None or generation.role != keys.role:
            continue
        for identity in recorded_generation_findings(config, generation, keys.deployed):
            findings.append(Finding("critical", f"NOT THE STACK'S KEY: {identity.message}", region=identity.region))
        if keys.role == NEXT:
            for identity in next_alias_findings(keys.deployed, recorded=keys.recorded):
                kind: FindingKind = "unreachable" if identity.unreadable else "alias-moved"
                findings.append(Finding(kind, identity.message, region=identity.region))
    return findings


def generation_state_findings(config: StackConfig, generations: Sequence[GenerationKeys]) -> list[Finding]:
    """DRIFT for each key of a next or retired generation whose state differs from the one the stack gives
    it (`transition_rules.expected_enabled`, the rule the program and the pack apply): the next key is
    enabled with the current one unless revoked; a retired key is disabled unless the stack is `complete`
    with access on. The current generation's state is each region's own row (`_region_status`)."""
    findings = []
    for generation in generations:
        if generation.role == CURRENT or generation.deployed is None:
            continue
        expected = expected_enabled(config, generation.role, generation.number)
        label = f"generation {generation.number} ({generation.role})"
        for reading in generation.deployed.readings:
            key = reading.key
            if key is None or key.pending_deletion or expected is None or key.enabled == expected:
                continue
            findings.append(
                Finding(
                    "drift",
                    f"DRIFT: {reading.region}: {label} key {key.arn} is {key.key_state}; the stack gives it "
                    f"{'Enabled' if expected else 'Disabled'} ({_generation_rule(config, generation.role)}; "
                    "changed outside the stack? `pulumi up` brings it back to the declared state)",
                    region=reading.region,
                )
            )
    return findings


def dropped_generation_findings(config: StackConfig, generations: Sequence[GenerationKeys]) -> list[Finding]:
    """DROPPED (drift) for each key of an unrecorded next generation (read through `/next`) that is tagged
    `atlassian-cmk:enrolled`: the stack file no longer records nextKeys that an applied change recorded
    (the pack's enrolled-keys-kept refuses such a pull request: `identity_rules.removed_enrollment_findings`)."""
    recorded = {key.arn for key in config.enrolled_keys or ()}
    return [
        Finding("drift", f"DROPPED: {finding.message}", region=finding.region)
        for generation in generations
        if generation.role == NEXT and not generation.recorded and generation.deployed is not None
        for finding in removed_enrollment_findings(generation.deployed, NEXT, recorded)
    ]


def _generation_rule(config: StackConfig, role: str) -> str:
    """Why the stack gives a key of `role` its state, in the words of `generations.generations`."""
    if not config.enabled:
        return "atlassian-cmk:enabled is false: a revocation disables every generation"
    if role == RETIRED:
        return (
            "retired keys stay enabled only while reencryption.status is complete"
            if config.reencryption.status == "complete"
            else f"retired keys are disabled outside complete (reencryption.status {config.reencryption.status})"
        )
    return (
        f"Atlassian holds current and next alike while reencryption.status is {config.reencryption.status}: "
        "one disabled leaves data unevenly readable"
    )


def _activity_findings(config: StackConfig, activity: ReencryptionActivity | None) -> list[Finding]:
    """Atlassian re-encrypting in a region while the stack does not say `in-progress`: the stack is wrong."""
    if activity is None or config.reencryption.in_progress:
        return []
    return [
        Finding(
            "drift",
            f"DRIFT: {region.region}: CloudTrail shows Atlassian re-encrypting ({activity.old_role} key decrypted, "
            f"{activity.new_role} key encrypting since {iso(activity.window_start)}) while the stack declares "
            f"reencryption.status {config.reencryption.status}: declare in-progress (no generation may be disabled)",
            region=region.region,
        )
        for region in activity.regions
        if region.phase == "re-encrypting"
    ]


_RESTORE_REMEDY: Final = (
    "restore the key policy through the reviewed path (the stack's pull request, then pulumi up); never by hand"
)


def key_policy_access_findings(
    policies: Mapping[str, str],
    errors: Mapping[str, str],
    *,
    atlassian_statements: Sequence[Mapping[str, Any]] = (),
) -> list[Finding]:
    """Each region's live key policy read as IAM reads it (`iam_policy.evaluate`): does every
    Atlassian principal of `atlassian_statements` (the stack's) still get every action they grant?
    A missing action is ACCESS BROKEN naming why (a Deny, or no statement grants it: removed or
    altered); regions whose Atlassian access differs are a SPLIT (exit 2). A deployed statement
    naming a deleted principal (KMS shows its unique ID) is ACCESS BROKEN too. Unreadable = unknown."""
    findings = []
    grants = parse_atlassian_statements(atlassian_statements) if atlassian_statements else []
    effective: dict[str, dict[str, frozenset[str]]] = {}
    for region, error in sorted(errors.items()):
        findings.append(
            Finding(
                "access",
                f"ACCESS UNKNOWN: {region}: the key policy could not be read ({error}); a deleted Atlassian "
                "principal cannot be ruled out (needs kms:GetKeyPolicy)",
                region=region,
            )
        )
    for region, policy in sorted(policies.items()):
        try:
            parts = split_key_policy(policy)
        except PolicyError as error:
            findings.append(Finding("access", f"ACCESS UNKNOWN: {region}: {error}", region=region))
            continue
        statements = [*parts.own, *parts.atlassian]
        access = atlassian_access(statements, grants)
        effective[region] = access
        for grant in grants:
            for principal in sorted((grant.principals or frozenset()) - {"*"}):
                missing = sorted(a for a in _granted(grant) if a not in access.get(principal, frozenset()))
                if not missing:
                    continue
                caller = (atlassian_callers(principal) or (principal,))[0]
                decision = evaluate(statements, Request(caller, missing[0]))
                why = (
                    f"denied by statement {', '.join(decision.statements)}"
                    if decision.reason == "explicit-deny"
                    else "no statement grants it (Atlassian's statement removed or altered)"
                )
                findings.append(
                    Finding(
                        "access",
                        f"ACCESS BROKEN: {region}: Atlassian's {principal} does not get {', '.join(missing[:4])}"
                        f"{'...' if len(missing) > 4 else ''} ({why}); {_RESTORE_REMEDY}",
                        region=region,
                    )
                )
        for statement, principal in deleted_principals(parts.atlassian):
            findings.append(
                Finding(
                    "access",
                    f"ACCESS BROKEN: {region}: Atlassian's {statement.label} names {principal}, a deleted principal: "
                    "Atlassian's access through it is already broken; re-grant by ARN (Atlassian's statement in "
                    "atlassian-cmk:atlassianKeyPolicy, then pulumi up)",
                    region=region,
                )
            )
    if len({tuple(sorted(a.items())) for a in effective.values()}) > 1:
        findings.append(
            Finding(
                "split",
                f"SPLIT: Atlassian's effective access differs between regions ({', '.join(sorted(effective))}): "
                f"{_RESTORE_REMEDY}",
            )
        )
    return findings


def _granted(statement: Statement) -> frozenset[str]:
    return statement_actions(statement)


def evidence_protection_findings(
    deployed: DeployedState | Sequence[HeldGeneration], key_policies: KeyPolicies, *, apply_role_arn: str | None
) -> list[Finding]:
    """One DRIFT finding when a key's live key policy, in any generation shown, does not protect the guards'
    evidence tags (`evidence.deployed_evidence_protection`, the rule `cmkctl revoke` and the pack apply): its
    tags (re-encryption, stack, the revocation record) are then not trusted. An unreadable policy is also
    ACCESS UNKNOWN (current generation); its evidence line joins this finding."""
    lines = deployed_evidence_protection(deployed, apply_role_arn, key_policies)
    if not lines:
        return []
    *problems, remedy = lines
    return [Finding("drift", f"EVIDENCE UNPROTECTED: {'; '.join(problems)}; {remedy}")]


def _region_status(
    config: StackConfig,
    stack: str,
    reading: RegionReading,
    evidence: CloudTrailEvidence | None,
    clock: RevocationClock | None,
) -> RegionStatus:
    key = reading.key
    drift: list[str] = []
    note: str | None = None
    if key is not None and not key.pending_deletion:
        if key.enabled != config.enabled:
            drift.append(
                f"key is {key.key_state}; Pulumi.{stack}.yaml declares enabled: "
                f"{'true' if config.enabled else 'false'} (changed outside the stack, e.g. in the console?)"
            )
        live_reencryption = key.reencryption
        if live_reencryption != config.reencryption.status:
            drift.append(
                f"re-encryption tag is {live_reencryption or '(none)'}; the stack declares "
                f"{config.reencryption.status} (deploy the stack to record it on the keys)"
            )
        if not key.enabled:
            note = evidence.error if evidence else None
    return RegionStatus(
        region=reading.region,
        declared_enabled=config.enabled,
        declared_reencryption=config.reencryption.status,
        key=key,
        error=reading.error,
        drift=tuple(drift),
        clock=clock,
        clock_note=note,
        enrolled_arn=reading.enrolled_arn,
        alias_target=reading.alias_target,
    )


def clock_json(clock: RevocationClock | None, now: datetime) -> dict[str, Any] | None:
    if clock is None:
        return None
    return {
        "revoked_at": iso(clock.revoked_at) if clock.revoked_at else None,
        "source": clock.source,
        "reinstate_until": iso(clock.reinstate_until) if clock.reinstate_until else None,
        "data_at_risk_after": iso(clock.data_at_risk_after) if clock.data_at_risk_after else None,
        "days_left_to_reinstate": clock.days_left_to_reinstate(now),
        "within_reinstatement_window": clock.within_reinstatement_window(now),
        # Added with the CloudTrail cross-check (schema_version stays 1): docs/cmkctl.md, "Deadlines".
        "verification": clock.verification,
        "verification_reason": clock.verification_reason,
        "verification_note": clock.verification_note,
        "tag_revoked_at": iso(clock.tag_revoked_at) if clock.tag_revoked_at else None,
        "cloudtrail_disabled_at": iso(clock.cloudtrail_disabled_at) if clock.cloudtrail_disabled_at else None,
        "enabled_gaps_note": clock.enabled_gaps_note,
        "unproven_note": clock.unproven_note,
    }


def status_json(report: StatusReport) -> dict[str, Any]:
    """The `cmkctl status --json` document (schema in docs/cmkctl.md); keys are never renamed."""
    config = report.config
    now = report.checked_at
    return {
        "schema_version": SCHEMA_VERSION,
        "stack": report.stack,
        "alias": report.alias,
        "enrolled": report.enrolled,
        "realm": config.realm,
        "checked_at": iso(now),
        "exit_code": int(report.exit_code),
        "outcome": report.exit_code.name.lower().replace("_", "-"),
        "declared": {
            "enabled": config.enabled,
            "reencryption": config.reencryption.status,
            "revocation": (
                {"reason": config.revocation.reason, "ticket": config.revocation.ticket} if config.revocation else None
            ),
        },
        "regions": [_region_json(row, now) for row in report.regions],
        "clock": clock_json(report.clock, now),
        "regions_read": report.regions_read,
        "notes": list(report.notes),
        "generations": [_generation_json(generation) for generation in report.generations],
        "reencryption_evidence": activity_json(report.activity),
        "findings": [
            {"kind": f.kind, "subkind": f.subkind, "region": f.region, "message": f.message} for f in report.findings
        ],
    }


def _generation_json(generation: GenerationKeys) -> dict[str, Any]:
    readings = generation.deployed.readings if generation.deployed is not None else ()
    return {
        "number": generation.number,
        "role": generation.role,
        "recorded": generation.recorded,
        "keys": [
            {
                "region": r.region,
                "key_arn": r.key.arn if r.key else r.enrolled_arn,
                "key_state": r.key.key_state if r.key else None,
                "live_reencryption": r.key.reencryption if r.key else None,
                "missing": r.missing,
                "error": r.error,
            }
            for r in readings
        ],
    }


def _region_json(row: RegionStatus, now: datetime) -> dict[str, Any]:
    key = row.key
    tags = key.tags if key is not None else {}
    # Only a current record describes this revocation: a closed one is an earlier incident's, and
    # "" is a cleared field (records.py), i.e. absent.
    revoked = key is not None and not key.enabled
    tags = tags if has_current_revocation(tags) else {}
    return {
        "region": row.region,
        "key_arn": key.arn if key else None,
        "enrolled_arn": row.enrolled_arn,
        "alias_target": row.alias_target,
        "key_state": key.key_state if key else None,
        "live_enabled": key.enabled if key else None,
        "declared_enabled": row.declared_enabled,
        "missing": row.missing,
        "error": row.error,
        "drift": list(row.drift),
        "reencryption": {"declared": row.declared_reencryption, "live": key.reencryption if key else None},
        "revocation": (
            {
                "reason": tags.get(TAG_REVOCATION_REASON) or None,
                "ticket": tags.get(TAG_REVOCATION_TICKET) or None,
                "revoked_by": tags.get(TAG_REVOKED_BY) or None,
                "guard_override": tags.get(TAG_GUARD_OVERRIDE) or None,
            }
            if revoked
            else None
        ),
        "clock": clock_json(row.clock, now),
        "clock_note": row.clock_note,
    }
