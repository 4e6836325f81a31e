"""The guard rules: when disabling the keys is unsafe, and what a healthy set of keys looks like.

The policy pack (before a deployment) and cmkctl (before a break-glass revoke, and in status)
ask the same questions here. Every rule fails closed: when the live state cannot be read,
the answer is "no", with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from atlassian_cmk.clock_check import tag_doubt, verified_clock
from atlassian_cmk.config import Reencryption
from atlassian_cmk.evidence import reencryption_evidence
from atlassian_cmk.identity_rules import foreign_keys
from atlassian_cmk.live_keys import CloudTrailEvidence, DeployedState, LiveKey
from atlassian_cmk.naming import TAG_GUARD_OVERRIDE, TAG_KEY_PAIR, TAG_RESTORED_AT, TAG_REVOKED_AT
from atlassian_cmk.records import has_current_revocation
from atlassian_cmk.timeline import RevocationClock, parse_iso


@dataclass(frozen=True)
class Verdict:
    """A guard's answer: allowed or not, with every reason a human needs to act."""

    allowed: bool
    reasons: tuple[str, ...] = ()
    advice: str = ""
    """What to do (or what is at stake), said once after the reasons however many regions they name;
    "" when the reasons say it themselves."""


def reencryption_running(declared: Reencryption, deployed: DeployedState | None) -> Verdict:
    """May the keys be disabled now, as far as re-encryption goes?

    Declared status comes from the configuration being applied; the deployed status from the
    live keys' tags. Both must say it is not running, so that clearing the status and disabling
    the keys are two reviewed, applied changes. `deployed=None` means the live check was
    turned off on purpose; the caller says so in its message.
    """
    reasons: list[str] = []
    running: dict[str, list[str]] = {}
    if declared.in_progress:
        ticket = f" (ticket {declared.ticket})" if declared.ticket else ""
        reasons.append(f"re-encryption is declared in progress{ticket}")
    if deployed is not None:
        for error in deployed.errors():
            reasons.append(f"the deployed keys could not be read, so re-encryption cannot be ruled out ({error})")
        # Unknown is "no": only the exact values `none`/`complete` rule re-encryption out
        # (`atlassian_cmk.evidence.reencryption_evidence`, the one rule for the pack and cmkctl).
        # An enrolled ARN naming a key that is not the stack's is refused on its own (`foreign_keys`:
        # nothing acts on it); its tags are no evidence about this stack's re-encryption either.
        foreign = {finding.arn for finding in foreign_keys(deployed)}
        own = [key for key in deployed.live_keys() if key.arn not in foreign]
        # One reason per distinct tag value, naming every region that shows it (the region names the
        # key: its enrolled ARN is in the stack file and in `cmkctl status`).
        # `deployed` may hold several generations (cmkctl revoke reads every one it acts on): each region
        # is named once, and the generations by their role tag.
        roles: dict[str, list[str]] = {}
        for key in own:
            evidence = reencryption_evidence(key.reencryption)
            if evidence.may_run and evidence.reason is not None:
                regions = running.setdefault(evidence.reason, [])
                if key.region not in regions:
                    regions.append(key.region)
                held = roles.setdefault(evidence.reason, [])
                role = key.tags.get(TAG_KEY_PAIR, "untagged")
                if role not in held:
                    held.append(role)
        reasons.extend(
            f"the deployed key {_of_generations(roles[reason])}in {_each_of(regions)} {reason}"
            for reason, regions in running.items()
        )
    # The remedy once, however many regions say it (an unreadable region has its own: make it readable).
    advice = REENCRYPTION_REMEDY if declared.in_progress or running else ""
    return Verdict(allowed=not reasons, reasons=tuple(reasons), advice=advice)


REENCRYPTION_REMEDY: Final = "apply a change that marks it complete first, then revoke in a second change"


def _of_generations(roles: list[str]) -> str:
    """"" for one generation (the stack's usual case); "of each generation (current, next) " for several."""
    return "" if len(roles) < 2 else f"of each generation ({', '.join(roles)}) "


def _each_of(regions: list[str]) -> str:
    return regions[0] if len(regions) == 1 else f"each of {' and '.join(regions)}"


def every_key_disabled(deployed: DeployedState | None) -> bool:
    """Whether a revocation declared now would disable nothing: every region of the realm read
    without error, each with its deployed key (by enrolled ARN once enrolled), each exactly Disabled.

    Unknown is "no": the live check off (`deployed` None), an unreadable region, a region without
    a key, or any other state (Enabled, PendingDeletion, ...) means the change may disable a key.
    """
    if deployed is None or not deployed.readings:
        return False
    return all(r.error is None and r.key is not None and r.key.key_state == "Disabled" for r in deployed.readings)


def revocation_during_reencryption(declared: Reencryption, deployed: DeployedState | None) -> Verdict:
    """The pull-request rule: may a change that declares `enabled: false` be applied, as far as
    re-encryption goes? The guard stops *disabling*.

    When every deployed key is already Disabled (`every_key_disabled`: break-glass revoked them,
    perhaps overriding this guard), the change disables nothing and is allowed, re-encryption
    declared or not: it is the reviewed record of what break-glass did. Otherwise the answer is
    `reencryption_running`'s, plus, when break-glass disabled only some regions, which regions the
    change would still disable.
    """
    if every_key_disabled(deployed):
        return Verdict(allowed=True)
    verdict = reencryption_running(declared, deployed)
    if verdict.allowed or deployed is None:
        return verdict
    keys = deployed.live_keys()
    disabled = [k.region for k in keys if k.key_state == "Disabled"]
    still = [f"{k.region} ({k.key_state})" for k in keys if k.key_state != "Disabled"]
    if disabled and still:
        partial = (
            f"the deployed keys are already Disabled in {', '.join(disabled)} but not in {', '.join(still)}, "
            "so this change would disable a key; only a change that disables nothing (every region already "
            "Disabled) may pass"
        )
        return Verdict(allowed=False, reasons=(*verdict.reasons, partial), advice=verdict.advice)
    return verdict


def recorded_overrides(keys: list[LiveKey]) -> dict[str, tuple[str, ...]]:
    """The guard override recorded on the disabled keys' current revocation record: justification ->
    the regions carrying it (usually one justification for every region).

    A record is current until a restore closes it with a non-empty `restored-at` (the slot rule in
    `atlassian_cmk.evidence`); an override on an enabled key or a closed record is history.
    """
    found: dict[str, list[str]] = {}
    for key in keys:
        override = key.tags.get(TAG_GUARD_OVERRIDE)
        if key.key_state != "Disabled" or not override or key.tags.get(TAG_RESTORED_AT):
            continue
        found.setdefault(override, []).append(key.region)
    return {text: tuple(regions) for text, regions in found.items()}


def split_regions(enabled_by_region: Mapping[str, bool]) -> bool:
    """Whether the regions disagree: one key usable, another not. Atlassian needs all or none."""
    return len(set(enabled_by_region.values())) > 1


def deployed_integrity(deployed: DeployedState) -> Verdict:
    """Are the enrolled keys all there and not scheduled for deletion?

    A key pending deletion looks absent to pulumi-aws (bridged from Terraform), which would
    then create a new key Atlassian has never been given; an enrolled key gone is the same
    risk. Unreadable state is a "no" (fail closed). Before enrollment (keys found through the
    alias) a region without a key is not deployed yet: a state, not an incident.
    """
    reasons: list[str] = []
    for error in deployed.errors():
        reasons.append(f"the deployed keys could not be read ({error})")
    lost = False
    for key in deployed.live_keys():
        if key.pending_deletion:
            lost = True
            # The key ID is in the command; the region names the key (its ARN is the enrolled one).
            reasons.append(
                f"the deployed key in {key.region} is {key.key_state}: run `aws kms cancel-key-deletion "
                f"--region {key.region} --key-id {key.key_id}`, then enable it"
            )
    for reading in deployed.readings:
        if reading.missing and reading.enrolled_arn is not None:
            lost = True
            reasons.append(
                f"the enrolled key {reading.enrolled_arn} is not found: the key Atlassian holds in {reading.region} "
                "is gone; check atlassian-cmk:enrolledKeys against `pulumi stack output keyArns`"
            )
    # What is at stake, once for the realm: said by the pack before a deployment (status and restore
    # say their own next step).
    advice = "deploying now would create a new key Atlassian has never been given" if lost else ""
    return Verdict(allowed=not reasons, reasons=tuple(reasons), advice=advice)


def not_deployed_regions(deployed: DeployedState) -> list[str]:
    """Regions with no key yet behind the alias, before enrollment (first deployment or a realm edit)."""
    return [r.region for r in deployed.readings if r.missing and r.enrolled_arn is None]


def revocation_clock(
    keys: list[LiveKey], cloudtrail_disabled_at: datetime | None = None, *, now: datetime
) -> RevocationClock:
    """The earliest evidenced revocation time across the disabled keys.

    Evidence, best first: the `atlassian-cmk:revoked-at` tag that `cmkctl revoke` writes (exact,
    and survives CloudTrail's 90-day history), then the CloudTrail DisableKey event time found
    by the caller; otherwise unknown. A tag anyone with kms:TagResource can write is not believed
    blindly: a malformed one, or one later than `now` + CLOCK_SKEW (`clock_check.tag_doubt`), makes the
    clock unknown (a future time would promise days of reinstatement window that may be gone), with
    `doubt` naming the value.
    """
    stamps: list[datetime] = []
    for key in keys:
        # A restored (closed) record is history, not this revocation's time (atlassian_cmk/records.py);
        # "" is absent (a field cleared by writing "", since nobody but the apply role may untag).
        if key.enabled or not key.tags.get(TAG_REVOKED_AT) or not has_current_revocation(key.tags):
            continue
        doubt = tag_doubt(key, now)
        if doubt is not None:
            return RevocationClock(revoked_at=None, source="unknown", doubt=doubt)
        moment = parse_iso(key.tags[TAG_REVOKED_AT])
        assert moment is not None  # tag_doubt said it parses
        stamps.append(moment)
    if stamps:
        return RevocationClock(revoked_at=min(stamps), source="revoked-at tag")
    if cloudtrail_disabled_at is not None:
        return RevocationClock(revoked_at=cloudtrail_disabled_at, source="cloudtrail")
    return RevocationClock(revoked_at=None, source="unknown")


def realm_revocation_clock(
    keys: list[LiveKey], evidence: Mapping[str, CloudTrailEvidence], *, now: datetime
) -> RevocationClock | None:
    """The realm's one revocation clock: the earliest evidence across its disabled keys (a key pending
    deletion is an incident of its own, not a revocation), each revoked-at tag cross-checked against
    CloudTrail's DisableKey (`clock_check.verified_clock`); None when no key is disabled."""
    return verified_clock(keys, evidence, now=now)
