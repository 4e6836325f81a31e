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
from atlassian_cmk.key_policy import Finding, key_policy_findings

from .context import DEPLOYED_STATE, invalid_config_message, stack_config, stack_name, unreadable_suffix
from .framework import resource_policy
from .resources import CmkKey, Unknown, known
from .settings import ACCESS_POLICY

DESCRIPTION = (
    "Checks whether every CMK key policy keeps the own-account root administrator and Atlassian's statements "
    "(from atlassian-cmk:atlassianKeyPolicy, verbatim, and every one the deployed key has, read with IAM's "
    "semantics), with no Deny reaching Atlassian's account, no Allow to everyone or to another account, and no "
    "lockout-check bypass."
)

BYPASS_INPUT: Final = "bypassPolicyLockoutSafetyCheck"
_REMEDY: Final = "revoke only through atlassian-cmk:enabled, and keep the key policy the program composes"


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
    deployed: tuple[str | None, str | None] = (None, None)
    if settings["liveStateCheck"]:
        reading = _deployed_policy(key, config)
        if isinstance(reading, str):
            yield reading
            return
        deployed = reading
    findings = _findings(document, config, *deployed)
    blocking = [f for f in findings if f.blocking]
    for finding in blocking:
        yield f"{key.label}: {finding.message}"
    if blocking:
        # Explanations (a deployed statement naming a deleted principal, a declared revision) do
        # not block on their own; beside a violation they tell the reviewer what is not defended.
        for finding in findings:
            if not finding.blocking:
                yield f"{key.label}: note: {finding.message}"


def _findings(
    document: str, config: StackConfig, deployed_arn: str | None, deployed_policy: str | None
) -> list[Finding]:
    """The core's judgement; the own account is the deployed key's when there is one."""
    return key_policy_findings(
        document,
        atlassian_statements=config.atlassian_key_policy,
        context_tag=config.context_tag,
        # arn:<partition>:kms:<region>:<account>:key/<id>
        account_id=deployed_arn.split(":")[4] if deployed_arn else None,
        deployed_policy_json=deployed_policy,
        atlassian_revision=config.atlassian_key_policy_revision,
    )


def _deployed_policy(key: CmkKey, config: StackConfig) -> tuple[str | None, str | None] | str:
    """(deployed key ARN, its policy), (None, None) when nothing is deployed, or a message when unreadable."""
    region = key.region
    if not isinstance(region, str):
        return None, None
    reading = DEPLOYED_STATE.get(stack_name(), config.regions).reading(region)
    if reading is None or reading.missing:
        return None, None  # nothing deployed there yet; deployed-keys-intact judges a key that should be
    if reading.error is not None or reading.key is None or reading.key.policy is None:
        return (
            f"the deployed key policy of {key.label} could not be read ({reading.error}), so a dropped or altered "
            f"Atlassian statement cannot be ruled out and the policy fails closed.{unreadable_suffix()}"
        )
    return reading.key.arn, reading.key.policy


def policy() -> ResourceValidationPolicy:
    return resource_policy(ACCESS_POLICY, DESCRIPTION, EnforcementLevel.MANDATORY, check)
