"""key-policy-keeps-access: the key policy keeps its administrator and Atlassian's grant.

Removing, narrowing or denying Atlassian's grant revokes access as surely as disabling the key,
but bypasses the reviewed `enabled` switch (and its guardrails): a stealth revocation. The core
judges (`atlassian_cmk.key_policy.key_policy_findings`); this module only decides where each
finding is reported.

Realm-wide (framework.realm_policy, on EVERY key, each cause naming its region): everything the
stack's configuration and the deployed keys show, judged on the policy the program composes from
the configuration for each region (`build_key_policy`, the deployed key's account and partition):
a deployed Atlassian statement dropped or altered without a new revision, a Deny reaching
Atlassian, a context tag that disagrees with a context condition, an unreadable deployed policy.
A key policy change that went through in one region only would itself split Atlassian's access,
so none of these may refuse one key alone.

Per key (`key_check`, on that key alone): what only the key's own inputs show, i.e. where its
policy document departs from the composed one (unparsable, missing, unknown until apply, a
statement the configuration does not have) and the lockout-check bypass. The program composes
every key's policy from the same configuration, so such a finding means the program itself was
changed; each key's Analyze sees only its own inputs, so the pack cannot hold the other keys back
for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import EnforcementLevel, PolicyResourceOptions, ResourceValidationPolicy, StackValidationPolicy

from atlassian_cmk.config import StackConfig, StackConfigErrors, allowed_account_id, shorten_repr
from atlassian_cmk.iam_policy import PolicyError
from atlassian_cmk.key_policy import (
    Finding,
    build_key_policy,
    context_tag_findings,
    key_policy_findings,
    parse_atlassian_statements,
    serialize_key_policy,
)
from atlassian_cmk.realm_findings import RealmFinding

from .context import DEPLOYED_STATE, raw_stack_config, stack_config, stack_name, unreadable_suffix
from .framework import Realm, StackFinding, realm_policy, stack_policy
from .resources import CmkKey, Unknown, known
from .settings import ACCESS_NOTES_POLICY, ACCESS_POLICY

DESCRIPTION = (
    "Checks whether every CMK key policy keeps the own-account root administrator and Atlassian's statements "
    "(from atlassian-cmk:atlassianKeyPolicy, verbatim, and every one the deployed key has, read with IAM's "
    "semantics), with no Deny reaching Atlassian's account, no Allow to everyone or to another account, and no "
    "lockout-check bypass; anything that would change Atlassian's access in one region holds every key back."
)

BYPASS_INPUT: Final = "bypassPolicyLockoutSafetyCheck"
_REMEDY: Final = "revoke only through atlassian-cmk:enabled, and keep the key policy the program composes"

ADVICE = (
    "Keep Atlassian's statements as deployed, or paste its revised ones under a new "
    "atlassian-cmk:atlassianKeyPolicyRevision (the ticket) that a security owner approves."
)


def _arn_parts(arn: str) -> tuple[str, str] | None:
    """(partition, account) of arn:<partition>:kms:<region>:<account>:key/<id>, or None."""
    parts = arn.split(":")
    return (parts[1], parts[4]) if len(parts) >= 6 and parts[0] == "arn" else None


def _composed(config: StackConfig, partition: str, account_id: str) -> str:
    """The policy the program composes for the realm's keys in that account (composed_policy's document)."""
    return serialize_key_policy(
        build_key_policy(
            partition=partition,
            account_id=account_id,
            atlassian_statements=config.atlassian_key_policy,
            key_administrators=config.key_administrators,
            atlassian_revision=config.atlassian_key_policy_revision,
        )
    )


def _judge(config: StackConfig, document: str, account_id: str | None, deployed: str | None) -> list[Finding]:
    return key_policy_findings(
        document,
        atlassian_statements=config.atlassian_key_policy,
        context_tag=config.context_tag,
        account_id=account_id,
        deployed_policy_json=deployed,
        atlassian_revision=config.atlassian_key_policy_revision,
    )


def _configured_findings(config: StackConfig) -> list[Finding]:
    """What the configuration alone shows, before any account is known (every region alike)."""
    try:
        statements = parse_atlassian_statements(config.atlassian_key_policy)
    except PolicyError as error:
        return [Finding("unreadable", f"atlassian-cmk:atlassianKeyPolicy cannot be read ({error})")]
    return context_tag_findings(statements, config.context_tag, "atlassian-cmk:atlassianKeyPolicy")


def _realm_judgement(realm: Realm, settings: Mapping[str, Any]) -> tuple[list[str], list[tuple[Finding, str]]]:
    """(the configuration's blocking causes, every region's own findings with the region).

    Per region with a readable deployed key: the composed policy judged against it; a finding the
    composed policy has without the deployed one is the configuration's (said once), the rest
    are that region's.
    """
    config = realm.config
    realm_wide: dict[str, None] = {f.message: None for f in _configured_findings(config) if f.blocking}
    regional: list[tuple[Finding, str]] = []
    readings = realm.deployed().readings if settings["liveStateCheck"] else ()
    for reading in readings:
        if reading.missing:
            continue  # nothing deployed there yet; deployed-keys-intact judges a key that should be
        if reading.error is not None or reading.key is None or reading.key.policy is None:
            regional.append(
                (
                    Finding(
                        "unreadable",
                        f"the deployed key policy could not be read ({reading.error}), so a dropped or altered "
                        f"Atlassian statement cannot be ruled out and the policy fails closed{unreadable_suffix()}",
                    ),
                    reading.region,
                )
            )
            continue
        parts = _arn_parts(reading.key.arn)
        if parts is None:
            unreadable = Finding("unreadable", f"the deployed key's ARN {shorten_repr(reading.key.arn)} cannot be read")
            regional.append((unreadable, reading.region))
            continue
        document = _composed(config, *parts)
        alone = {f.message for f in _judge(config, document, parts[1], None)}
        for finding in _judge(config, document, parts[1], reading.key.policy):
            if finding.message in alone:
                if finding.blocking:
                    realm_wide[finding.message] = None
            else:
                regional.append((finding, reading.region))
    return list(realm_wide), regional


def realm_findings(realm: Realm, settings: Mapping[str, Any]) -> Iterator[RealmFinding]:
    """Every key-policy cause that holds the realm back, with the region at cause (None: the configuration's).

    Notes (non-blocking explanations) follow only when something blocks.
    """
    realm_wide, regional = _realm_judgement(realm, settings)
    if not realm_wide and not any(f.blocking for f, _ in regional):
        return
    yield from (RealmFinding(message) for message in realm_wide)
    yield from (RealmFinding(f.message, region) for f, region in regional if f.blocking)
    # Explanations (a deployed statement naming a deleted principal, a declared revision) do not
    # block on their own; beside a violation they tell the reviewer what is not defended.
    yield from (RealmFinding(f"note: {f.message}", region) for f, region in regional if not f.blocking)


def check(key: CmkKey, _opts: PolicyResourceOptions, settings: Mapping[str, Any]) -> Iterator[str]:
    """What only this key's own inputs show (reported on this key alone)."""
    bypass = known(key.props, BYPASS_INPUT, False)
    if bypass is not False:
        yield (
            f"{key.label} sets {BYPASS_INPUT} ({shorten_repr(bypass)}): KMS would no longer refuse a key policy that "
            "locks every "
            "administrator out of the key; remove it"
        )
    config = stack_config()
    if isinstance(config, StackConfigErrors):
        return  # realm_policy reports the invalid configuration once
    document = known(key.props, "policy")
    if isinstance(document, Unknown):
        yield (
            f"the key policy of {key.label} is unknown until apply, so Atlassian's grant cannot be checked and the "
            "policy fails closed; build the policy from values known at preview (config and invokes)"
        )
        return
    if not isinstance(document, str) or not document.strip():
        yield (
            f"{key.label} has no key policy: KMS would apply its default policy, which grants Atlassian nothing "
            f"(a stealth revocation); {_REMEDY}"
        )
        return
    realm_wide, regional = _realm_judgement(Realm(stack=stack_name(), config=config), settings)
    reported = {*realm_wide, *(f.message for f, _ in regional)}
    own = [f.message for f in _judge(config, document, _own_account(key, config, settings), None) if f.blocking]
    for message in own:
        if message not in reported:
            yield f"{key.label}: {message}"
    if any(message not in reported for message in own):
        # Beside this key's own violation, what its region's deployed policy explains.
        for finding, region in regional:
            if not finding.blocking and region == key.region:
                yield f"{key.label}: note: {finding.message}"


def _own_account(key: CmkKey, config: StackConfig, settings: Mapping[str, Any]) -> str | None:
    """The key's own account: its deployed key's when the live check reads one, else the single
    account of aws:allowedAccountIds; None (unknown: the core fails closed) otherwise."""
    region = key.region
    if settings["liveStateCheck"] and isinstance(region, str):
        reading = DEPLOYED_STATE.get(stack_name(), config.regions, config.enrolled_keys).reading(region)
        parts = _arn_parts(reading.key.arn) if reading is not None and reading.key is not None else None
        if parts:
            return parts[1]
    # The enrolled keys' ARNs name the keys' account (one account for all), else aws:allowedAccountIds.
    if config.enrolled_keys is not None:
        return config.enrolled_keys.account
    return allowed_account_id(raw_stack_config())


NOTES_DESCRIPTION = (
    "Checks whether the deployed key policies show Atlassian's access already broken (a principal shown "
    "as a unique ID: deleted; this apply re-grants the ARN) and what a declared Atlassian revision changes for "
    "each Atlassian principal; blocks nothing (key-policy-keeps-access blocks)."
)


def check_notes(keys: list[CmkKey], settings: Mapping[str, Any]) -> Iterator[StackFinding]:
    """The non-blocking findings of every region (advisory): reported whether or not anything blocks."""
    config = stack_config()
    if isinstance(config, StackConfigErrors) or not keys:
        return
    _, regional = _realm_judgement(Realm(stack=stack_name(), config=config), settings)
    for finding, region in regional:
        if not finding.blocking:
            yield (f"{region}: {finding.message}", None)


def notes_policy() -> StackValidationPolicy:
    return stack_policy(ACCESS_NOTES_POLICY, NOTES_DESCRIPTION, EnforcementLevel.ADVISORY, check_notes)


def policy() -> ResourceValidationPolicy:
    return realm_policy(
        ACCESS_POLICY, DESCRIPTION, EnforcementLevel.MANDATORY, realm_findings, key_check=check, advice=ADVICE
    )
