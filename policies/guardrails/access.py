"""key-policy-keeps-access: the key policy keeps its administrator and Atlassian's grant.

Removing, narrowing or denying Atlassian's grant revokes access as surely as disabling the key,
but bypasses the reviewed `enabled` switch (and its guardrails): a stealth revocation. The policy
document is parsed and judged by the same checker the tests use on the program's output, per key;
a principal any region's deployed key grants that the change drops holds every key back
(framework.realm_policy).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import EnforcementLevel, PolicyResourceOptions, ResourceValidationPolicy

from atlassian_cmk.config import StackConfigErrors
from atlassian_cmk.guards import dropped_atlassian_principals
from atlassian_cmk.key_policy import key_policy_problems
from atlassian_cmk.realm_findings import RealmFinding

from .context import stack_config, unreadable_suffix
from .framework import Realm, realm_policy
from .resources import CmkKey, Unknown, known
from .settings import ACCESS_POLICY

DESCRIPTION = (
    "Checks whether every CMK key policy keeps the account root administrator statement and the Atlassian "
    "principals' grant (every principal the deployed key grants, too), with no Deny against Atlassian and no "
    "lockout-check bypass."
)

BYPASS_INPUT: Final = "bypassPolicyLockoutSafetyCheck"
_REMEDY: Final = "revoke only through atlassian-cmk:enabled, and keep the key policy the component builds"


def check(key: CmkKey, _opts: PolicyResourceOptions, _settings: Mapping[str, Any]) -> Iterator[str]:
    """What the key's own policy document shows (reported on this key)."""
    bypass = known(key.props, BYPASS_INPUT, False)
    if bypass is not False:
        yield (
            f"{key.label} sets {BYPASS_INPUT} ({bypass!r}): KMS would no longer refuse a key policy that locks every "
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
    problems = key_policy_problems(
        document, atlassian_principals=config.atlassian_principals, context_tag=config.context_tag
    )
    for problem in problems:
        yield f"{key.label}: {problem}; {_REMEDY}"


def deployed_grants_kept(realm: Realm, settings: Mapping[str, Any]) -> Iterator[RealmFinding]:
    """A principal any region's deployed key grants Atlassian must stay granted: the new policy alone cannot tell."""
    if not settings["liveStateCheck"]:
        return
    for reading in realm.deployed().readings:
        if reading.missing:
            continue  # nothing deployed there yet; deployed-keys-intact judges a key that should be
        if reading.error is not None or reading.key is None:
            yield RealmFinding(
                f"the deployed key policy could not be read ({reading.error}), so a dropped Atlassian principal "
                f"cannot be ruled out{unreadable_suffix()}",
                reading.region,
            )
            continue
        for principal in dropped_atlassian_principals(reading.key, realm.config.atlassian_principals):
            yield RealmFinding(
                f"the deployed key ({reading.key.arn}) grants Atlassian principal {principal}, which this change drops "
                "from atlassian-cmk:atlassianPrincipals (a stealth revocation outside the `enabled` switch)",
                reading.region,
            )


ADVICE = (
    "Keep the principal; if Atlassian has retired it, remove it in a change a security owner approves with "
    f"{ACCESS_POLICY} set to advisory (and named in guardrail-levels-intact.allowLowered) for that one update."
)


def policy() -> ResourceValidationPolicy:
    return realm_policy(
        ACCESS_POLICY, DESCRIPTION, EnforcementLevel.MANDATORY, deployed_grants_kept, key_check=check, advice=ADVICE
    )
