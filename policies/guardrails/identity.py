"""enrolled-keys-kept and only-component-keys: the keys Atlassian holds are the enrolled ARNs.

Thin adapters over `atlassian_cmk.identity_rules`. Per resource (before the key's step), a key
the program now declares in a shape that Pulumi would replace (multiRegion flipped, Key <->
ReplicaKey), or any key of a stack that drops an enrolled region, is refused: the findings are
realm-wide, so every key of the realm carries them (`pulumi up` enforces per resource). On the
whole stack (AnalyzeStack, after the plan): every key's `arn` output must be its enrolled ARN (an
unknown ARN in preview means the key is being created or replaced) and the live alias must still
name the enrolled key. Before enrollment (no `atlassian-cmk:enrolledKeys`) there is nothing to
keep yet: the first deployment creates the keys.

only-component-keys: a KMS key outside the CmkKeyPair component (for instance the real key
adopted with `import` and `ignoreChanges`) would be judged by no other guardrail, so it is refused.
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

from atlassian_cmk.config import StackConfigErrors
from atlassian_cmk.identity_rules import (
    KEY_TYPE,
    REPLICA_KEY_TYPE,
    alias_findings,
    declared_shape_findings,
    dropped_keys,
    output_arn_findings,
)
from atlassian_cmk.naming import COMPONENT_TYPE, CURRENT_KEY_PAIR

from .context import deployed_state, invalid_config_message, stack_config, unreadable_suffix
from .framework import ResourceAndStackPolicy, StackFinding
from .resources import KMS_KEY_TYPES, KMS_REPLICA_KEY_TYPE, CmkKey, known, parent_types
from .settings import COMPONENT_KEYS_POLICY, IDENTITY_POLICY

DESCRIPTION = (
    "Checks whether the change keeps every key Atlassian holds (atlassian-cmk:enrolledKeys): no enrolled region "
    "dropped, no key replaced (multiRegion flip, Key <-> ReplicaKey), each key's ARN its enrolled ARN, and the "
    "alias still naming the enrolled key."
)
COMPONENT_DESCRIPTION = (
    "Checks whether every aws:kms/key:Key and aws:kms/replicaKey:ReplicaKey in the stack belongs to the CmkKeyPair "
    "component, the only keys the guardrails judge."
)


def check_key(key: CmkKey, _opts: PolicyResourceOptions, _settings: Mapping[str, Any]) -> Iterator[str]:
    config = stack_config()
    if isinstance(config, StackConfigErrors):
        yield invalid_config_message(config, IDENTITY_POLICY)
        return
    if config.enrolled_keys is None or key.key_pair != CURRENT_KEY_PAIR:
        return
    for finding in dropped_keys(config):
        yield f"{key.label} is refused with the whole realm: {finding.message}"
    region = key.region
    if not isinstance(region, str):
        yield f"the region of {key.label} is {region!r}, so it cannot be matched to an enrolled key; fails closed"
        return
    if region not in config.regions:
        return  # outside the realm: dual-region-consistency's finding
    reading = deployed_state(config).reading(region)
    live = reading.key if reading is not None else None
    kind = REPLICA_KEY_TYPE if key.resource_type == KMS_REPLICA_KEY_TYPE else KEY_TYPE
    for finding in declared_shape_findings(config, region, kind, live):
        yield f"{key.label} would replace the enrolled key: {finding.message}"


def check_stack(keys: list[CmkKey], _settings: Mapping[str, Any]) -> Iterator[StackFinding]:
    config = stack_config()
    if isinstance(config, StackConfigErrors):
        yield invalid_config_message(config, IDENTITY_POLICY), None
        return
    if config.enrolled_keys is None:
        return
    for dropped in dropped_keys(config):
        yield dropped.message, None
    for key in keys:
        region = key.region
        if key.key_pair != CURRENT_KEY_PAIR or not isinstance(region, str):
            continue
        arn = known(key.props, "arn")
        for finding in output_arn_findings(config, region, arn if isinstance(arn, str) else None):
            yield finding.message, key.urn
    state = deployed_state(config)
    for reading in state.readings:
        if reading.error is not None:
            yield (
                f"{reading.region}: the enrolled key and the alias could not be read ({reading.error}), so whether "
                f"the alias still names the enrolled key is unknown; fails closed{unreadable_suffix()}",
                None,
            )
    for finding in alias_findings(state):
        yield finding.message, None


def policy() -> ResourceAndStackPolicy:
    return ResourceAndStackPolicy(IDENTITY_POLICY, DESCRIPTION, EnforcementLevel.MANDATORY, check_key, check_stack)


def foreign_key_message(resource_type: str, name: str, urn: str) -> str | None:
    """Why a KMS key resource outside the component is refused; None for anything else."""
    if resource_type not in KMS_KEY_TYPES or COMPONENT_TYPE in parent_types(urn):
        return None
    return (
        f"{resource_type} {name} is outside the {COMPONENT_TYPE} component: no guardrail judges its enabled state, "
        "deletion window or protection, so it could revoke or destroy Atlassian's access unreviewed; manage the CMK "
        "keys only through the component (keep other KMS keys in another stack)"
    )


def _validate_component_keys(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    message = foreign_key_message(args.resource_type, args.name, args.urn)
    if message is not None:
        report_violation(message, None)


def component_keys_policy() -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=COMPONENT_KEYS_POLICY,
        description=COMPONENT_DESCRIPTION,
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_validate_component_keys,
    )
