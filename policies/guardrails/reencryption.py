"""no-revocation-during-reencryption: never disable the keys while Atlassian re-encrypts.

A resource policy sees only the key's new inputs, so it cannot tell whether re-encryption is
running *now*: a single pull request could mark it complete and disable the keys at once. The
deployed keys' re-encryption tag is the evidence of what is running, so the policy reads it from
AWS (once per run) and fails closed when it cannot.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResourceOptions, ResourceValidationPolicy

from atlassian_cmk.config import REENCRYPTION_STATUSES, Reencryption, StackConfigErrors
from atlassian_cmk.guards import reencryption_running
from atlassian_cmk.key_identity import KeyGeneration
from atlassian_cmk.naming import TAG_REENCRYPTION

from .context import DEPLOYED_STATE, invalid_config_message, stack_config, stack_name, unreadable_suffix
from .framework import resource_policy
from .resources import CmkKey, Unknown
from .settings import REENCRYPTION_POLICY

DESCRIPTION = (
    "Checks whether a CMK key would be disabled while Atlassian's re-encryption is in progress, as declared "
    "in the key's inputs or shown by the deployed keys' tags in AWS."
)


def check(key: CmkKey, _opts: PolicyResourceOptions, settings: Mapping[str, Any]) -> Iterator[str]:
    enabled = key.enabled
    if isinstance(enabled, Unknown):
        yield (
            f"cannot tell whether {key.label} would be disabled (its enabled input is unknown until apply), so a "
            "revocation during re-encryption cannot be ruled out; set enabled from atlassian-cmk:enabled"
        )
        return
    if enabled:
        return

    config = stack_config()
    reasons: list[str] = []
    declared_tag = key.tag(TAG_REENCRYPTION)
    if isinstance(declared_tag, Unknown):
        reasons.append(f"the key's {TAG_REENCRYPTION} tag is unknown until apply")
    elif declared_tag is not None and declared_tag not in REENCRYPTION_STATUSES:
        reasons.append(
            f"the key's {TAG_REENCRYPTION} tag is {declared_tag!r}, not one of {', '.join(REENCRYPTION_STATUSES)}"
        )
    ticket = None
    in_progress = declared_tag == "in-progress"
    if isinstance(config, StackConfigErrors):
        yield invalid_config_message(config, REENCRYPTION_POLICY)
        region = key.region
        regions: tuple[str, ...] = (region,) if isinstance(region, str) else ()
        enrolled: KeyGeneration | None = None
    else:
        regions = config.regions
        enrolled = config.enrolled_keys
        ticket = config.reencryption.ticket
        in_progress = in_progress or config.reencryption.in_progress
    declared = Reencryption(status="in-progress" if in_progress else "none", ticket=ticket)

    live = bool(settings["liveStateCheck"])
    deployed = DEPLOYED_STATE.get(stack_name(), regions, enrolled) if live and regions else None
    verdict = reencryption_running(declared, deployed)
    reasons.extend(verdict.reasons)
    if not reasons:
        return
    message = (
        f"{key.label} would be disabled, revoking Atlassian's access, while re-encryption may be in progress: "
        + "; ".join(reasons)
        + ". Disabling keys during re-encryption leaves data unevenly readable across sites. Wait until Atlassian "
        "confirms re-encryption is complete, apply atlassian-cmk:reencryption.status: complete as its own reviewed "
        "change, then revoke in a second change."
    )
    if not live:
        message += (
            " The live check is off (policy config liveStateCheck: false): only the declared status was checked, "
            "not the deployed keys."
        )
    elif deployed is not None and deployed.errors():
        message += unreadable_suffix()
    yield message


def policy() -> ResourceValidationPolicy:
    return resource_policy(REENCRYPTION_POLICY, DESCRIPTION, EnforcementLevel.MANDATORY, check)
