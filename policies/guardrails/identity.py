"""enrolled-keys-kept and only-component-keys: the keys Atlassian holds are the enrolled ARNs.

Thin adapters over `atlassian_cmk.identity_rules`. enrolled-keys-kept protects the realm as a
whole, so it is a realm rule (framework.realm_policy): `pulumi up` enforces per resource, and a
finding in one region that refused only that region's key would let the other regions' steps run.
Per resource (before the steps), what every key's Analyze sees alike (the stack's configuration
and the enrolled keys read by ARN) fails EVERY key of the realm, naming the region at cause: an
enrolled region the stack drops, a multiRegion flip against the enrolled key's kind, a Key <->
ReplicaKey swap against the live key's PRIMARY/REPLICA type, an enrolled key or alias that cannot
be read (fail closed), and the alias naming another key than the enrolled one. What only the key's
own inputs show (the program declaring another key type than the configuration makes it) stays on
that key. On the whole stack (AnalyzeStack, after the plan): a key whose `arn` output is not its
enrolled ARN (unknown in preview: created or replaced) fails every key the same way. Before
enrollment (no `atlassian-cmk:enrolledKeys`) there is nothing to keep yet: the first deployment
creates the keys, unless the keys behind the alias are tagged enrolled (enrolledKeys was removed).
Likewise with no `nextKeys`: a key behind `alias/atlassian-cmk/<stack>/next` tagged enrolled means
an applied change recorded the next generation and this one drops it (issue 15).

only-component-keys: a KMS resource outside the CmkKeyPair component (for instance the real key
adopted with `import` and `ignoreChanges`, a KeyPolicy emptying the enrolled key's policy, an Alias
pointing the stack's alias at a decoy, an ExternalKey) would be judged by no other guardrail, so it is
refused; a Grant is refused anywhere (access outside the reviewed key policy).
It stays per resource: the realm rules judge the realm from the configuration and the enrolled
keys, which a foreign resource does not change, and refusing the foreign resource's own step is
what keeps it from acting on a key; the component's keys need not be held back for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResourceOptions,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from atlassian_cmk.config import StackConfigErrors, shorten_repr
from atlassian_cmk.generations import CURRENT, NEXT, generations
from atlassian_cmk.identity_rules import (
    KEY_TYPE,
    LOSS,
    REPLICA_KEY_TYPE,
    alias_findings,
    declared_key_kind,
    declared_shape_findings,
    dropped_keys,
    enrolled_evidence_findings,
    generation_output_arn_findings,
    next_alias_findings,
    promoted_from,
    record_name,
    recorded_generation_findings,
    removed_enrollment_findings,
    unreadable_generation_findings,
)
from atlassian_cmk.live_keys import DeployedState
from atlassian_cmk.naming import COMPONENT_TYPE, CURRENT_KEY_PAIR
from atlassian_cmk.realm_findings import RealmFinding, realm_message

from .context import invalid_config_message, stack_config, unreadable_suffix
from .framework import Realm, ResourceAndStackPolicy, StackFinding, in_scope, realm_check_of_key
from .resources import KMS_REPLICA_KEY_TYPE, CmkKey, known, parent_types
from .settings import COMPONENT_KEYS_POLICY, IDENTITY_POLICY

DESCRIPTION = (
    "Checks whether the change keeps every key Atlassian holds (atlassian-cmk:enrolledKeys): no enrolled region "
    "dropped, no key replaced (multiRegion flip, Key <-> ReplicaKey), each key's ARN its enrolled ARN, the "
    "alias still naming the enrolled key, and neither enrolledKeys nor a recorded nextKeys removed while the keys "
    "are tagged enrolled; any of these holds back every key of the realm."
)
COMPONENT_DESCRIPTION = (
    "Checks whether every aws:kms/* resource in the stack (keys, replica and external keys, key policies, aliases, "
    "grants) belongs to the CmkKeyPair component, the only KMS resources the guardrails judge; grants are refused."
)
ADVICE = ""
"""None beyond the causes: each core message already says what to do (keep the region or shape, or
re-encrypt with Atlassian first; the `aws kms update-alias` command for a moved alias)."""


def identity_findings(realm: Realm, _settings: Mapping[str, Any]) -> Iterator[RealmFinding]:
    """What the configuration and the enrolled keys (read by ARN) show against the realm's identity.

    The core's messages name their region and ARN, so the findings are realm-wide sentences.
    """
    config = realm.config
    if config.enrolled_keys is None:
        # The evidence tag the program writes once enrolled: a pull request dropping enrolledKeys would
        # send every tool back to the alias (which anyone with kms:UpdateAlias can repoint).
        yield from (RealmFinding(f.message) for f in removed_enrollment_findings(realm.deployed()))
        return
    yield from (RealmFinding(finding.message) for finding in dropped_keys(config))
    state = realm.deployed()
    yield from _dropped_next_generation(realm, state)
    promotion = promoted_from(config)
    yield from (
        RealmFinding(f.message) for f in enrolled_evidence_findings(state, CURRENT_KEY_PAIR, promotion=promotion)
    )
    for region in config.regions:
        reading = state.reading(region)
        live = reading.key if reading is not None else None
        for finding in declared_shape_findings(config, region, declared_key_kind(config, region), live):
            yield RealmFinding(finding.message)
    for reading in state.readings:
        if reading.error is not None:
            yield RealmFinding(
                f"the enrolled key and the alias could not be read ({reading.error}), so whether the key is kept and "
                f"the alias still names it is unknown; fails closed{unreadable_suffix()}",
                reading.region,
            )
    yield from (RealmFinding(finding.message) for finding in alias_findings(state, promotion=promotion))
    yield from _recorded_generations(realm)


def _recorded_generations(realm: Realm) -> Iterator[RealmFinding]:
    """A recorded next generation (nextKeys) and every retiredKeys entry, checked as enrolledKeys is: each
    ARN the stack's key of that generation by its evidence tags (`recorded_generation_findings`), the `/next`
    alias naming the recorded next key, and an unreadable key failing closed."""
    config = realm.config
    for generation in generations(config):
        if generation.role == CURRENT or generation.keys is None:
            continue
        alias_role = NEXT if generation.role == NEXT else CURRENT
        state = realm.deployed_recorded(generation.keys, alias_role)
        yield from (RealmFinding(f.message) for f in recorded_generation_findings(config, generation, state))
        for reading in state.readings:
            if reading.error is not None:
                yield RealmFinding(
                    f"{generation.label}'s key could not be read ({reading.error}), so whether "
                    f"{record_name(config, generation)} names the stack's key is unknown; fails closed"
                    f"{unreadable_suffix()}",
                    reading.region,
                )
        if generation.role == NEXT:
            yield from (RealmFinding(f.message) for f in next_alias_findings(state, recorded=True))


def _dropped_next_generation(realm: Realm, current: DeployedState) -> Iterator[RealmFinding]:
    """With no nextKeys, a key behind `alias/atlassian-cmk/<stack>/next` tagged enrolled: nextKeys was dropped.

    Read whatever the status says: a pull request may drop nextKeys and change the status at once. The
    ARNs the stack enrolls are not a dropped next generation (a promotion's pull request: the `/next` alias
    names them until its apply removes it). A region whose alias cannot be read fails closed, said once when the
    current generation's read failed there too.
    """
    config = realm.config
    if config.next_keys is None:
        recorded = {key.arn for key in config.enrolled_keys or ()}
        following = realm.deployed_through_alias(NEXT)
        yield from (RealmFinding(f.message) for f in removed_enrollment_findings(following, NEXT, recorded))
        said = {reading.region for reading in current.readings if reading.error is not None}
        yield from (RealmFinding(f.message) for f in unreadable_generation_findings(following, NEXT, said))


def check_own_key(key: CmkKey, _opts: PolicyResourceOptions, _settings: Mapping[str, Any]) -> Iterator[str]:
    """What only this key's inputs show: its region unknown, or a key type the configuration does not make."""
    config = stack_config()
    if isinstance(config, StackConfigErrors) or config.enrolled_keys is None or key.key_pair != CURRENT_KEY_PAIR:
        return  # an invalid configuration: the realm check says it on every key
    region = key.region
    if not isinstance(region, str):
        yield (
            f"the region of {key.label} is {shorten_repr(region)}, so it cannot be matched to an enrolled key; "
            "fails closed"
        )
        return
    if region not in config.regions:
        return  # outside the realm: dual-region-consistency's finding
    kind = REPLICA_KEY_TYPE if key.resource_type == KMS_REPLICA_KEY_TYPE else KEY_TYPE
    wanted = declared_key_kind(config, region)
    enrolled = config.enrolled_keys.arn(region)
    if kind != wanted and enrolled is not None:
        yield (
            f"{key.label} would replace the enrolled key: {region} ({enrolled.arn}): the program declares a {kind} key "
            f"here but the stack's configuration makes it a {wanted} key; {LOSS}"
        )


def check_stack(keys: list[CmkKey], _settings: Mapping[str, Any]) -> Iterator[StackFinding]:
    """AnalyzeStack: every key's `arn` output must be its enrolled ARN; a finding holds back every key."""
    config = stack_config()
    if isinstance(config, StackConfigErrors):
        yield invalid_config_message(config, IDENTITY_POLICY), None
        return
    if config.enrolled_keys is None:
        return
    findings: list[RealmFinding] = []
    for key in keys:
        region = key.region
        if not isinstance(region, str):
            continue
        arn = known(key.props, "arn")
        # Every generation's key (by its stable resource name) against the ARN the stack records for it:
        # enrolledKeys, nextKeys, retiredKeys[i] (issue 15 review: not only the current generation).
        findings.extend(
            RealmFinding(f.message)
            for f in generation_output_arn_findings(config, key.name, region, arn if isinstance(arn, str) else None)
        )
    if not findings:
        return
    for key in keys:
        yield realm_message(config.regions, findings, ADVICE), key.urn


def policy() -> ResourceAndStackPolicy:
    return ResourceAndStackPolicy(
        IDENTITY_POLICY,
        DESCRIPTION,
        EnforcementLevel.MANDATORY,
        realm_check_of_key(IDENTITY_POLICY, identity_findings, check_own_key, ADVICE),
        check_stack,
    )


KMS_TYPE_PREFIX = "aws:kms/"
"""Every pulumi-aws KMS resource type starts so. Today (pulumi/pulumi-aws sdk/python/pulumi_aws/kms/):
Alias, Ciphertext, CustomKeyStore, ExternalKey, Grant, Key, KeyPolicy, ReplicaExternalKey, ReplicaKey.
Matching the prefix, not a list, also covers a type a later provider adds (fail closed)."""

KMS_GRANT_TYPE = "aws:kms/grant:Grant"


def foreign_key_message(resource_type: str, name: str, urn: str) -> str | None:
    """Why a KMS resource is refused (outside the component, or a grant anywhere); None for anything else.

    A KeyPolicy, Alias or Grant outside the component acts on a key or alias without any guardrail
    judging it (an empty key policy on the enrolled key, the stack's alias pointed at a decoy, a grant
    to another account); an ExternalKey or ReplicaExternalKey is a key no guardrail judges.
    """
    if not resource_type.startswith(KMS_TYPE_PREFIX):
        return None
    if resource_type == KMS_GRANT_TYPE:
        return (
            f"{resource_type} {name}: a KMS grant gives a principal use of a key outside its key policy, which no "
            "guardrail judges; the CMK keys' access is only the reviewed key policy (remove the grant)"
        )
    if COMPONENT_TYPE in parent_types(urn):
        return None
    return (
        f"{resource_type} {name} is outside the {COMPONENT_TYPE} component: no guardrail judges what it does to a "
        "key, its policy or its alias, so it could revoke or destroy Atlassian's access unreviewed; manage KMS "
        "resources in this stack only through the component (keep other KMS resources in another stack)"
    )


def _validate_component_keys(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    message = foreign_key_message(args.resource_type, args.name, args.urn)
    # Another project's KMS key under an org-wide policy group is not this pack's business (scope.py);
    # in this project (or with its config) every KMS key outside the component is refused.
    if message is not None and in_scope():
        report_violation(message, None)


def component_keys_policy() -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=COMPONENT_KEYS_POLICY,
        description=COMPONENT_DESCRIPTION,
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_validate_component_keys,
    )
