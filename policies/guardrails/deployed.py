"""The policies that judge the deployed keys in AWS, read once per run.

deployed-keys-intact: a live key pending deletion, or gone from behind the stack's alias, in ANY
region blocks every key of the realm (framework.realm_policy): pulumi-aws (bridged from the
Terraform provider) treats a key pending deletion as gone and would create a brand-new key that
Atlassian has never been given, and refusing that region alone would let the others change.

revocation-clock: when the deployed keys are disabled, the deadlines Atlassian publishes run
from the moment of revocation. Evidence for that moment: the `atlassian-cmk:revoked-at` tag that
`cmkctl revoke` writes on each key (via `guards.revocation_clock`). The pack does not search
CloudTrail (one more service, slow, and not emulated); without the tag the time is unknown and
the warning says so. When the disabled keys' current record carries a re-encryption guard override
(`atlassian-cmk:guard-override`, written by `cmkctl revoke --override-reencryption-guard`), the
warning names it: the break-glass follow-up pull request is allowed, and this is where it shows.
In `pulumi up` the stack check runs after the steps, so it reads the keys
afresh (context.deployed_after_steps): the clock shows the revocation the update just made.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from atlassian_cmk.config import StackConfigErrors, shorten
from atlassian_cmk.guards import deployed_integrity, recorded_overrides, revocation_clock
from atlassian_cmk.impact import regions_phrase, restore_steps
from atlassian_cmk.naming import TAG_GUARD_OVERRIDE, TAG_REVOKED_AT
from atlassian_cmk.realm_findings import RealmFinding
from atlassian_cmk.timeline import DATA_AT_RISK_AFTER, REINSTATEMENT_WINDOW

from .context import deployed_after_steps, stack_config, stack_name, unreadable_suffix
from .framework import Realm, StackFinding, realm_policy, stack_policy
from .resources import CmkKey
from .settings import CLOCK_POLICY, DEPLOYED_POLICY

INTACT_DESCRIPTION = (
    "Checks whether the stack's deployed CMK keys all exist in AWS behind the stack's alias and none is "
    "pending deletion, before an update could replace a key Atlassian holds."
)
CLOCK_DESCRIPTION = (
    "Checks whether the deployed CMK keys are disabled and, if so, warns with the dates until which Atlassian "
    "can reinstate the sites and after which data is at risk."
)


def intact_findings(realm: Realm, _settings: Mapping[str, Any]) -> Iterator[RealmFinding]:
    """Any region's deployed key pending deletion, unreadable, or (once enrolled) gone holds every key back.

    Before enrollment a region without a key is the first deployment or a realm edit, not a finding
    (`guards.not_deployed_regions`): the presence of atlassian-cmk:enrolledKeys says the keys exist.
    """
    state = realm.deployed()
    # The core's reasons name their region ("the deployed key in us-west-2 ..."), so they are realm-wide
    # here; what is at stake (a new key Atlassian was never given) is said once after them.
    verdict = deployed_integrity(state)
    yield from (RealmFinding(reason) for reason in verdict.reasons)
    if verdict.advice:
        yield RealmFinding(verdict.advice)
    if state.errors():
        yield RealmFinding("the deployed state cannot be read, so the policy fails closed" + unreadable_suffix())


def check_clock(keys: list[CmkKey], _settings: Mapping[str, Any]) -> Iterator[StackFinding]:
    config = stack_config()
    if isinstance(config, StackConfigErrors):
        regions = tuple(sorted({k.region for k in keys if isinstance(k.region, str)}))
        enabled_next = None
        enrolled = None
    else:
        regions = config.regions
        enabled_next = config.enabled
        enrolled = config.enrolled_keys
    if not regions:
        return
    stack = stack_name()
    state = deployed_after_steps(stack, regions, enrolled)
    errors = state.errors()
    if errors:
        yield (
            f"the deployed keys could not be read ({'; '.join(errors)}), so the revocation clock is unknown"
            + unreadable_suffix(),
            None,
        )
    disabled = [k for k in state.live_keys() if k.key_state == "Disabled"]
    if not disabled:
        return
    now = datetime.now(UTC)
    clock = revocation_clock(state.live_keys(), now=now)
    if clock.revoked_at is None:
        why = clock.doubt or (
            f"the disabled keys carry no {TAG_REVOKED_AT} tag (written by `cmkctl revoke`; the pack does not "
            "search CloudTrail, look for the DisableKey event there)"
        )
        when = (
            f"revocation time unknown: {why}. Atlassian can reinstate the sites within "
            f"{REINSTATEMENT_WINDOW.days} days of the revocation; data is at risk after {DATA_AT_RISK_AFTER.days} days"
        )
    else:
        when = clock.summary(now)
    keys_text = ", ".join(f"{k.region} ({k.arn})" for k in disabled)
    overrides = recorded_overrides(state.live_keys())
    overridden = "".join(
        f" GUARD OVERRIDDEN by break-glass ({TAG_GUARD_OVERRIDE} in {regions_phrase(regions)}): {shorten(text)}."
        for text, regions in overrides.items()
    )
    if enabled_next:
        next_step = f"This update enables the keys again; then {restore_steps(stack)[1]}."
    else:
        next_step = "To restore: " + "; then ".join(restore_steps(stack)) + "."
    yield (
        f"the deployed CMK keys are disabled in {regions_phrase(tuple(k.region for k in disabled))}: Atlassian's "
        f"access is revoked.{overridden} {when}. Keys: {keys_text}. {next_step}",
        None,
    )


def intact_policy() -> ResourceValidationPolicy:
    # The core's reasons say the risk and the remedy (guards.deployed_integrity): no advice to add.
    return realm_policy(DEPLOYED_POLICY, INTACT_DESCRIPTION, EnforcementLevel.MANDATORY, intact_findings)


def clock_policy() -> StackValidationPolicy:
    return stack_policy(CLOCK_POLICY, CLOCK_DESCRIPTION, EnforcementLevel.ADVISORY, check_clock)
