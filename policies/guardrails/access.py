"""key-policy-keeps-access: the key policy keeps its administrator and Atlassian's grant.

Removing, narrowing or denying Atlassian's grant revokes access as surely as disabling the key,
but bypasses the reviewed `enabled` switch (and its guardrails): a stealth revocation. The policy
document is parsed and judged by the same checker the tests use on the program's output.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import EnforcementLevel, PolicyResourceOptions, ResourceValidationPolicy

from atlassian_cmk.config import StackConfig, StackConfigErrors
from atlassian_cmk.guards import dropped_atlassian_principals
from atlassian_cmk.key_policy import key_policy_problems

from .context import deployed_state, invalid_config_message, stack_config, unreadable_suffix
from .framework import resource_policy
from .resources import CmkKey, Unknown, known
from .settings import ACCESS_POLICY

DESCRIPTION = (
    "Checks whether every CMK key policy keeps the account root administrator statement and the Atlassian "
    "principals' grant (every principal the deployed key grants, too), with no Deny against Atlassian and no "
    "lockout-check bypass."
)

BYPASS_INPUT: Final = "bypassPolicyLockoutSafetyCheck"
_REMEDY: Final = "revoke only through atlassian-cmk:enabled, and keep the key policy the component builds"


def check(key: CmkKey, _opts: PolicyResourceOptions, settings: Mapping[str, Any]) -> Iterator[str]:
    bypass = known(key.props, BYPASS_INPUT, False)
    if bypass is not False:
        yield (
            f"{key.label} sets {BYPASS_INPUT} ({bypass!r}): KMS would no longer refuse a key policy that locks every "
            "administrator out of the key; remove it"
        )
    config = stack_config()
    if isinstance(config, StackConfigErrors):
        yield invalid_config_message(config, ACCESS_POLICY)
        return
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
    problems = key_policy_problems(
        document, atlassian_principals=config.atlassian_principals, context_tag=config.context_tag
    )
    for problem in problems:
        yield f"{key.label}: {problem}; {_REMEDY}"
    if settings["liveStateCheck"]:
        yield from _deployed_grant_kept(key, config)


def _deployed_grant_kept(key: CmkKey, config: StackConfig) -> Iterator[str]:
    """A principal the deployed key grants Atlassian must stay granted: the new policy alone cannot tell."""
    region = key.region
    if not isinstance(region, str):
        return
    deployed = deployed_state(config)
    reading = deployed.reading(region)
    if reading is None or reading.missing:
        return  # nothing deployed there yet; deployed-keys-intact judges a key that should be
    if reading.error is not None or reading.key is None:
        yield (
            f"the deployed key policy of {key.label} could not be read ({reading.error}), so a dropped Atlassian "
            f"principal cannot be ruled out and the policy fails closed.{unreadable_suffix()}"
        )
        return
    for principal in dropped_atlassian_principals(reading.key, config.atlassian_principals):
        yield (
            f"{key.label}: the deployed key ({reading.key.arn}) grants Atlassian principal {principal}, which this "
            "change drops from atlassian-cmk:atlassianPrincipals: that revokes its access outside the reviewed "
            "`enabled` switch (a stealth revocation). Keep it; if Atlassian has retired it, remove it in a change "
            f"a security owner approves with {ACCESS_POLICY} set to advisory for that one update"
        )


def policy() -> ResourceValidationPolicy:
    return resource_policy(ACCESS_POLICY, DESCRIPTION, EnforcementLevel.MANDATORY, check)
