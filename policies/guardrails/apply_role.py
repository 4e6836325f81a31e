"""apply-role-configured: a stack without `atlassian-cmk:applyRoleArn` is refused on every key.

The rule and its one line are the core's (`atlassian_cmk.config.apply_role_missing`), the same the
program raises and `cmkctl impact`/`status` report. A resource policy, not a stack policy: `pulumi up`
enforces per resource and runs stack policies only after the steps (DOMAIN.md, "What the pack sees"),
so only a refusal of each key's own step stops the key policy from being baked without the apply
role's exemption. The rule reads the configuration alone, so every key of the realm gets the same
refusal and no region goes ahead of another.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResourceOptions, ResourceValidationPolicy

from atlassian_cmk.config import StackConfigErrors, apply_role_missing

from .context import invalid_config_message, stack_config
from .framework import resource_policy
from .resources import CmkKey
from .settings import APPLY_ROLE_POLICY

DESCRIPTION = (
    "Checks whether the stack sets atlassian-cmk:applyRoleArn, the only principal the key policy lets write the "
    "evidence and record tags; without it no reviewed revocation, restoration or re-encryption step can be applied."
)


def check_key(_key: CmkKey, _opts: PolicyResourceOptions, _settings: Mapping[str, Any]) -> Iterator[str]:
    config = stack_config()
    if isinstance(config, StackConfigErrors):
        yield invalid_config_message(config, APPLY_ROLE_POLICY)
        return
    missing = apply_role_missing(config)
    if missing is not None:
        yield missing  # the same line as the program's and cmkctl's; the engine names the resource


def policy() -> ResourceValidationPolicy:
    return resource_policy(APPLY_ROLE_POLICY, DESCRIPTION, EnforcementLevel.MANDATORY, check_key)
