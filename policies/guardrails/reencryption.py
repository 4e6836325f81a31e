"""no-revocation-during-reencryption: never disable the keys while Atlassian re-encrypts, and
every re-encryption transition its own applied change (`atlassian_cmk.transition_rules`).

A resource policy sees only the key's new inputs, so it cannot tell whether re-encryption is
running *now*: a single pull request could mark it complete and disable the keys at once. The
deployed keys' re-encryption tag is the evidence of what is running, so the policy reads it from
AWS (once per run) and fails closed when it cannot. A revocation while re-encryption may run
holds every key of the realm back (framework.realm_policy), not only the key whose region shows it.

The guard stops *disabling*: when every deployed key is already Disabled (break-glass revoked
them, perhaps with `cmkctl revoke --override-reencryption-guard`), a change declaring
`enabled: false` disables nothing and passes, so the reviewed stack file can catch up with what
break-glass did (`guards.revocation_during_reencryption`). A change that would still disable a key
in any region is refused on every key, as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResourceOptions, ResourceValidationPolicy

from atlassian_cmk.config import StackConfig, StackConfigErrors
from atlassian_cmk.evidence import HeldGeneration, deployed_evidence_protection, reencryption_evidence
from atlassian_cmk.follow_up_rules import FOLLOW_UP_ADVICE, FollowUpFinding, follow_up_findings, held_key
from atlassian_cmk.generations import CURRENT, NEXT, RETIRED, Generation, generation_named
from atlassian_cmk.guards import every_key_disabled, reencryption_running, revocation_during_reencryption
from atlassian_cmk.naming import TAG_KEY_PAIR, TAG_REENCRYPTION
from atlassian_cmk.realm_findings import RealmFinding
from atlassian_cmk.reencryption_activity import activity_reasons
from atlassian_cmk.transition_rules import (
    TransitionFinding,
    generation_split,
    promotion_findings,
    retired_enable_finding,
    status_transition_findings,
)
from atlassian_cmk.workflows.targets import revoke_targets

from .context import DEPLOYED_STATE, REENCRYPTION_ACTIVITY, stack_config, stack_name, unreadable_suffix
from .framework import Realm, realm_policy
from .resources import CmkKey, Unknown
from .settings import REENCRYPTION_POLICY

DESCRIPTION = (
    "Checks whether a CMK key would be disabled while Atlassian's re-encryption is in progress, as declared "
    "in the key's inputs or shown by the deployed keys' tags in AWS, and whether a re-encryption transition "
    "(revoking every generation, promotion, retirement) skips an applied step."
)


def check_key(key: CmkKey, _opts: PolicyResourceOptions, settings: Mapping[str, Any]) -> Iterator[str]:
    """What only the key's own inputs show: an unknown switch, its own tag, or a key disabled by hand."""
    enabled = key.enabled
    if isinstance(enabled, Unknown):
        yield (
            f"cannot tell whether {key.label} would be disabled (its enabled input is unknown until apply), so a "
            "revocation during re-encryption cannot be ruled out; set enabled from atlassian-cmk:enabled"
        )
        return
    declared_tag = key.tag(TAG_REENCRYPTION)
    config = stack_config()
    if not isinstance(config, StackConfigErrors) and key.key_pair in (NEXT, RETIRED):
        # The current generation's switch is dual-region-consistency's; the others follow generations().
        region = key.region
        generation = generation_named(config, key.name, region) if isinstance(region, str) else None
        split = generation_split(config, key.key_pair, enabled, generation.number if generation else None)
        if split is not None:
            yield f"{key.label} ({key.key_pair} generation): {split}"
        elif key.key_pair == RETIRED and enabled:
            reason = _retired_enable_reason(config, generation, region, bool(settings["liveStateCheck"]))
            if reason is not None:
                yield f"{key.label} (retired generation) would be enabled: {reason}"
            return
        elif key.key_pair == RETIRED and not enabled:
            # A retired key kept disabled, as `generations` gives it outside complete: Atlassian no longer
            # holds it, so a later re-encryption (in-progress with retiredKeys kept) disables nothing it uses.
            # Retiring it in the same change as starting a re-encryption is promotion_findings' refusal.
            return
    if enabled:
        return
    if isinstance(declared_tag, Unknown):
        yield f"{key.label} would be disabled while its {TAG_REENCRYPTION} tag is unknown until apply"
    elif declared_tag == "in-progress" and not _config_declares_reencryption():
        yield f"{key.label} would be disabled while its own {TAG_REENCRYPTION} tag says in-progress"
    elif declared_tag != "in-progress" and (evidence := reencryption_evidence(declared_tag)).may_run:
        # Unknown is "no": the same rule as for the live tags (atlassian_cmk.evidence).
        yield f"{key.label} would be disabled while it {evidence.reason}"
    if isinstance(config, StackConfigErrors) or not config.enabled:
        return  # a revocation: the realm finding judges it, on every key
    # This key alone is disabled (its input differs from atlassian-cmk:enabled: dual-region-consistency
    # refuses that too); re-encryption still must not be running.
    live = bool(settings["liveStateCheck"])
    deployed = DEPLOYED_STATE.get(stack_name(), config.regions, config.enrolled_keys) if live else None
    reasons = reencryption_running(config.reencryption, deployed).reasons
    if reasons:
        yield f"{key.label} would be disabled while re-encryption may be in progress: {'; '.join(reasons)}"


def _retired_enable_reason(
    config: StackConfig, generation: Generation | None, region: str | Unknown | None, live: bool
) -> str | None:
    """Why this change must not enable a retired key, read from its deployed key (by its retiredKeys ARN)."""
    if generation is None or generation.keys is None or not isinstance(region, str):
        return "which retiredKeys entry it is cannot be told (its region or resource name is not known)"
    if not live:
        return "the live check is off, so whether its retirement was applied cannot be told"
    deployed = DEPLOYED_STATE.get(stack_name(), config.regions, generation.keys)
    reading = next((r for r in deployed.readings if r.region == region), None)
    if reading is None or reading.error is not None or reading.key is None:
        return retired_enable_finding(None, None, readable=False)
    return retired_enable_finding(reading.key.reencryption, reading.key.tags.get(TAG_KEY_PAIR), readable=True)


def _config_declares_reencryption() -> bool:
    """Whether the realm finding already says it (the program tags each key from the configuration)."""
    config = stack_config()
    return not isinstance(config, StackConfigErrors) and config.reencryption.in_progress


def realm_findings(realm: Realm, settings: Mapping[str, Any]) -> Iterator[RealmFinding]:
    """A revocation (atlassian-cmk:enabled false) that would disable a key of any held generation while
    re-encryption may run, or a promotion or retirement that skips an applied step, holds every key of
    every generation back. A revocation that disables nothing (every deployed key of the current and
    next generation already Disabled, the break-glass follow-up) passes."""
    live = bool(settings["liveStateCheck"])
    if realm.config.retired_keys:
        yield from promotion_findings(realm.config, realm.deployed() if live else None)
    if live:
        yield from status_transition_findings(realm.config, realm.deployed())
    if realm.config.enabled:
        yield from _transition_evidence_findings(realm, live)
        return
    deployed = realm.deployed() if live else None
    verdict = revocation_during_reencryption(realm.config.reencryption, deployed)
    # The core's reasons name their region where there is one; its remedy is DISABLING_ADVICE, said once.
    yield from (RealmFinding(reason) for reason in verdict.reasons)
    if deployed is not None:
        # The live tags are evidence only under the key policy's ProtectCmkEvidence* statements (the same
        # rule as cmkctl revoke and status), on every generation the revocation disables and whose tags the
        # guard reads: a revocation that would disable a key fails closed without them.
        held = _held_generations(realm)
        if not all(every_key_disabled(state) for _, state in held):
            lines = deployed_evidence_protection(held, realm.config.apply_role_arn)
            yield from (EvidenceFinding(line) for line in lines)
    yield from _next_generation_findings(realm, live, said=verdict.reasons)
    yield from _activity_findings(realm, live)
    yield from _follow_up_findings(realm, live)
    if verdict.reasons and not live:
        yield RealmFinding(
            "the live check is off (policy config liveStateCheck: false): only the declared status was checked"
        )
    elif deployed is not None and deployed.errors():
        yield RealmFinding("the pack fails closed" + unreadable_suffix())


def _transition_evidence_findings(realm: Realm, live: bool) -> Iterator[RealmFinding]:
    """A re-encryption status change is judged on the applied status the deployed keys' tags say
    (`status_transition_findings`): that verdict trusts the tags, so every held generation's key policy must
    protect them (the same rule and text as for a revocation). A change that keeps the applied status
    (the key policy's own upgrade among them) trusts no tag for it and is not judged here."""
    if not live:
        return
    declared = realm.config.reencryption.status
    applied = {key.reencryption for key in realm.deployed().live_keys() if key.tags.get(TAG_KEY_PAIR) == CURRENT}
    if applied and applied != {declared}:
        lines = deployed_evidence_protection(_held_generations(realm), realm.config.apply_role_arn)
        yield from (EvidenceFinding(line) for line in lines)


def _held_generations(realm: Realm) -> list[HeldGeneration]:
    """The generations a revocation disables (`workflows.targets.revoke_targets`, as `cmkctl revoke`), each
    read with its key policies: the current keys, and every other one the stack records (nextKeys, and
    retiredKeys while re-encryption is complete). Next keys not recorded yet are not Atlassian's
    (`_next_generation_findings`). Read through the same cache as the other findings (one read per process)."""
    held: list[HeldGeneration] = [(CURRENT, realm.deployed())]
    for target in revoke_targets(realm.config, realm.stack):
        if target.role != CURRENT and target.keys is not None:
            held.append((target.role, DEPLOYED_STATE.get(realm.stack, realm.config.regions, target.keys)))
    return held


def _next_generation_findings(realm: Realm, live: bool, said: tuple[str, ...] = ()) -> Iterator[RealmFinding]:
    """The next generation judged like the current one: break-glass disables only the enrolled keys
    today, so "every deployed key already Disabled" must hold for the next keys too, or this change
    would disable them during re-encryption. A reason already `said` for the current generation (the
    declared status is the realm's) is not said again."""
    config = realm.config
    if not config.has_next_generation or not live:
        return
    if config.next_keys is None:
        # Atlassian holds only the next keys it was given, which the stack records as nextKeys; before
        # that, disabling the unrecorded next keys takes nothing from Atlassian.
        return
    deployed_next = DEPLOYED_STATE.get(realm.stack, config.regions, config.next_keys)
    verdict = revocation_during_reencryption(config.reencryption, deployed_next)
    yield from (RealmFinding(f"next generation: {reason}") for reason in verdict.reasons if reason not in said)


def _follow_up_findings(realm: Realm, live: bool) -> Iterator[RealmFinding]:
    """A revocation that disables nothing is allowed only as the follow-up of what break-glass did: its
    block equal to the keys' current record on every held key (current generation, and the next one once
    recorded), and, during re-encryption, the status as deployed (`follow_up_rules.follow_up_findings`).
    Unreadable keys are judged above (fail closed); the live check off reads no record."""
    if not live:
        return
    config = realm.config
    held = [realm.deployed()]
    if config.has_next_generation and config.next_keys is not None:
        held.append(DEPLOYED_STATE.get(realm.stack, config.regions, config.next_keys))
    if any(state.errors() or any(r.key is None for r in state.readings) for state in held):
        return
    keys = [key for state in held for key in state.live_keys()]
    applied = [(key.region, key.reencryption) for key in keys]
    yield from follow_up_findings(config.revocation, config.reencryption, applied, [held_key(k) for k in keys])


def _activity_findings(realm: Realm, live: bool) -> Iterator[RealmFinding]:
    """While two generations are enrolled, a revocation that would disable a key also needs CloudTrail's
    word that Atlassian is not re-encrypting (`reencryption_activity.activity_reasons`); unreadable
    evidence refuses (fail closed). A change that disables nothing (every key of both held generations
    already Disabled, the break-glass follow-up) is not judged on it."""
    config = realm.config
    if not live or (config.next_keys is None and not config.retired_keys):
        return
    held = [realm.deployed()]
    if config.next_keys is not None:
        held.append(DEPLOYED_STATE.get(realm.stack, config.regions, config.next_keys))
    if all(every_key_disabled(state) for state in held):
        return
    yield from (RealmFinding(reason) for reason in activity_reasons(config, REENCRYPTION_ACTIVITY.get(config)))


class EvidenceFinding(RealmFinding):
    """A deployed key policy without the evidence protection (its advice is EVIDENCE_ADVICE)."""


EVIDENCE_ADVICE = (
    "The guard trusts the keys' tags only while their key policies carry the ProtectCmkEvidence statements: "
    'restore them with a reviewed change to the key policy alone (README "The evidence model", upgrading), then '
    "this change"
)
DISABLING_ADVICE = (
    "Disabling keys mid-re-encryption leaves data unevenly readable: once Atlassian says it is done, apply "
    "reencryption.status: complete alone, then this change"
)
TRANSITION_ADVICE = (
    "Each re-encryption step is its own applied change: complete, promote (status stays complete), retire "
    '(status none), then a later re-encryption (README "Re-encrypting, step by step")'
)


def advice(findings: Sequence[RealmFinding]) -> str:
    """The disabling advice only when a finding refuses disabling keys; a transition's own advice otherwise."""
    if all(isinstance(finding, TransitionFinding) for finding in findings):
        return TRANSITION_ADVICE
    if all(isinstance(finding, FollowUpFinding) for finding in findings):
        return FOLLOW_UP_ADVICE
    if all(isinstance(finding, EvidenceFinding) for finding in findings):
        return EVIDENCE_ADVICE
    return DISABLING_ADVICE


def policy() -> ResourceValidationPolicy:
    return realm_policy(
        REENCRYPTION_POLICY, DESCRIPTION, EnforcementLevel.MANDATORY, realm_findings, key_check=check_key, advice=advice
    )
