"""The atlassian-cmk-guardrails pack: every policy, assembled in one place.

Policy names are the contract with the stack's policy config and the docs; each module owns its
policy, this list only orders them.
"""

from __future__ import annotations

from typing import Final

from pulumi_policy import EnforcementLevel, Policy, PolicyPack

from atlassian_cmk import guardrail_catalog as catalog

from . import (
    access,
    apply_role,
    consistency,
    context_tag,
    deletion,
    deployed,
    identity,
    justification,
    levels,
    reencryption,
)

PACK_NAME: Final = catalog.PACK_NAME


def policies() -> list[Policy]:
    return [
        reencryption.policy(),
        consistency.policy(),
        justification.policy(),
        deletion.policy(),
        access.policy(),
        access.notes_policy(),
        deployed.intact_policy(),
        identity.policy(),
        identity.component_keys_policy(),
        context_tag.policy(),
        apply_role.policy(),
        deployed.clock_policy(),
        levels.policy(),
    ]


def serve() -> None:
    """Start the analyzer: PolicyPack prints its port on stdout and serves until the engine ends it."""
    levels.install_level_recording()
    PolicyPack(
        name=PACK_NAME,
        policies=policies(),
        enforcement_level=EnforcementLevel.MANDATORY,
        description=(
            "Guardrails that keep revoking and restoring Atlassian Cloud's access to the CMK keys a safe, "
            "reviewed, reversible change."
        ),
        display_name="Atlassian CMK guardrails",
        provider="aws",
    )
