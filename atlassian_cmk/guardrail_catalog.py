"""The guardrails by name, with what each stops: one list for the policy pack, the docs and reviews.

The policy pack registers policies under these names; `cmkctl impact` tells reviewers which of
them a change will meet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal


@dataclass(frozen=True)
class Guardrail:
    name: str
    enforcement: Literal["mandatory", "advisory"]
    stops: str


NO_REVOCATION_DURING_REENCRYPTION: Final = Guardrail(
    "no-revocation-during-reencryption",
    "mandatory",
    "disabling keys while re-encryption is in progress, declared or deployed (data would be unevenly readable)",
)
DUAL_REGION_CONSISTENCY: Final = Guardrail(
    "dual-region-consistency",
    "mandatory",
    "keys that disagree on enabled, or a key missing from or added outside the realm's regions",
)
REVOCATION_REQUIRES_JUSTIFICATION: Final = Guardrail(
    "revocation-requires-justification",
    "mandatory",
    "a disabled key without a revocation reason and a well-formed ticket",
)
KEYS_ARE_NEVER_DELETED: Final = Guardrail(
    "keys-are-never-deleted",
    "mandatory",
    "keys without protect, with a deletion window under 30 days, or with a deletion-related input",
)
KEY_POLICY_KEEPS_ACCESS: Final = Guardrail(
    "key-policy-keeps-access",
    "mandatory",
    "a key policy without the root administrator, or that drops, narrows or denies Atlassian's grant",
)
DEPLOYED_KEYS_INTACT: Final = Guardrail(
    "deployed-keys-intact",
    "mandatory",
    "deploying while a live key is pending deletion, or an enrolled key is gone (a new key Atlassian never had "
    "would be created)",
)
ENROLLED_KEYS_KEPT: Final = Guardrail(
    "enrolled-keys-kept",
    "mandatory",
    "a change that would replace or drop a key Atlassian holds (region leaving, multiRegion flip, Key <-> ReplicaKey), "
    "a stack key whose ARN is not its enrolled ARN, an enrolled key without the stack's tags, enrolledKeys removed "
    "from an enrolled stack, or the alias naming another key",
)
ONLY_COMPONENT_KEYS: Final = Guardrail(
    "only-component-keys",
    "mandatory",
    "any aws:kms/* resource in the stack outside the CmkKeyPair component (key, external key, key policy, alias; "
    "no guardrail would judge it), and any KMS grant",
)
REVOCATION_CLOCK: Final = Guardrail(
    "revocation-clock",
    "advisory",
    "nothing; warns with the reinstatement deadline (+10 days) and data-at-risk date (+20 days)",
)
KEY_POLICY_ACCESS_NOTES: Final = Guardrail(
    "key-policy-access-notes",
    "advisory",
    "nothing; says on every run what is already broken (a deployed Atlassian principal shown as a unique ID: "
    "deleted) and what a declared Atlassian revision changes for each Atlassian principal",
)
GUARDRAIL_LEVELS_INTACT: Final = Guardrail(
    "guardrail-levels-intact",
    "mandatory",
    "a policy config that lowers a mandatory guardrail, uses `all`, or names a policy the pack does not have",
)

CONTEXT_TAG_UNCHANGED: Final = Guardrail(
    "context-tag-unchanged",
    "mandatory",
    "a contextTag that differs from the tag the deployed keys were enrolled with (every Atlassian request denied)",
)

APPLY_ROLE_CONFIGURED: Final = Guardrail(
    "apply-role-configured",
    "mandatory",
    "a stack without atlassian-cmk:applyRoleArn (the key policy would let nobody write the evidence and record "
    "tags, so a revocation would half-apply and no re-encryption step could be applied)",
)

GUARDRAILS: Final = (
    NO_REVOCATION_DURING_REENCRYPTION,
    DUAL_REGION_CONSISTENCY,
    REVOCATION_REQUIRES_JUSTIFICATION,
    KEYS_ARE_NEVER_DELETED,
    KEY_POLICY_KEEPS_ACCESS,
    DEPLOYED_KEYS_INTACT,
    ENROLLED_KEYS_KEPT,
    ONLY_COMPONENT_KEYS,
    CONTEXT_TAG_UNCHANGED,
    APPLY_ROLE_CONFIGURED,
    REVOCATION_CLOCK,
    KEY_POLICY_ACCESS_NOTES,
    GUARDRAIL_LEVELS_INTACT,
)

PACK_NAME: Final = "atlassian-cmk-guardrails"
