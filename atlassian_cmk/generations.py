"""Key generations: which sets of keys the stack holds, their role, resource names and enabled state.

Re-encryption (Atlassian's "Request CMK re-encryption"; DOMAIN.md) needs a new key per region:
the **next** generation, created beside the **current** one while `reencryption.status` is
`preparing` or `in-progress`, and `complete` until promotion. A separate reviewed change **promotes** it (its ARNs
become `enrolledKeys`, the old ones are appended to `retiredKeys`); **retired** generations are
kept, protected and never deleted.

Resource identity across promotion. Each generation is numbered once and for all: generation 1 is
the first key pair, generation n+1 the one created by the n-th re-encryption, so the current
generation is number `len(retiredKeys) + 1` and the next one `len(retiredKeys) + 2`. Promotion
appends one entry to `retiredKeys`, which makes the old next number the new current number: every
key keeps its resource name, so its URN does not change and the engine diffs it against its own
old state (no replacement, no delete). This is stronger than Pulumi's `aliases` option: the engine
looks an old resource up by URN FIRST and by aliases only after (pulumi/pulumi
pkg/resource/deploy/step_generator.go, "We look up first by URN and then by any provided
aliases"), so swapping names by role (the old current renamed, the next one taking `cmk-<region>`)
would diff the promoted key against the OLD key's state. A URN is the parent type chain plus the
resource's own name (pulumi/pulumi sdk/go/common/resource/urn.go NewURN; sdk/python/lib/pulumi/
resource.py create_urn): a parent component's name is not part of it.

Aliases (KMS, not Pulumi) follow the role instead: `alias/atlassian-cmk/<stack>` is one resource
per region (`cmk-<region>-alias`) whose target moves to the promoted key in place (UpdateAlias);
`alias/atlassian-cmk/<stack>/next` exists only while there is a next generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from atlassian_cmk.config import StackConfig
from atlassian_cmk.key_identity import KeyGeneration
from atlassian_cmk.naming import key_tags

GenerationRole = Literal["current", "next", "retired"]
CURRENT: Final[GenerationRole] = "current"
NEXT: Final[GenerationRole] = "next"
RETIRED: Final[GenerationRole] = "retired"


def generation_place(region: str, role: str) -> str:
    """`us-east-1` for a key of the current generation, `us-east-1 (next)` (or `(retired)`) for another's:
    how cmkctl names a key in its lines (`workflows.changes.RegionChange.label`, status, the pack)."""
    return region if role == CURRENT else f"{region} ({role})"

RESOURCE_PREFIX: Final = "cmk"
"""The component's name and the first generation's key prefix (`cmk-<region>`), as before re-encryption existed."""


@dataclass(frozen=True)
class Generation:
    """One set of keys of the realm.

    `number`: 1 for the first key pair, +1 per re-encryption; never changes for a key.
    `role`: current (Atlassian uses it), next (being re-encrypted to), retired (used before).
    `keys`: the ARNs the stack records (enrolledKeys, nextKeys, retiredKeys[i]), or None before
    they are recorded. `enabled`: the state the program gives its keys.
    """

    number: int
    role: GenerationRole
    keys: KeyGeneration | None
    enabled: bool

    @property
    def label(self) -> str:
        return f"generation {self.number} ({self.role})"

    def key_resource_name(self, region: str) -> str:
        """The key's Pulumi resource name: `cmk-<region>` for generation 1, `cmk-gen<n>-<region>` after."""
        return key_resource_name(self.number, region)


def generation_key_tags(config: StackConfig, stack: str, region: str, generation: Generation) -> dict[str, str]:
    """The tags the program gives `generation`'s key in `region` (the component and the drill's apply):
    its role, its own enabled state when it differs from `atlassian-cmk:enabled` (a retired one), and
    `atlassian-cmk:enrolled=true` once this generation's ARNs are recorded (`Generation.keys`)."""
    own_state = None if generation.enabled == config.enabled else generation.enabled
    return key_tags(config, stack, region, generation.role, own_state, recorded=generation.keys is not None)


def key_resource_name(number: int, region: str) -> str:
    """The Pulumi resource name of generation `number`'s key in `region`; stable across promotion."""
    if number == 1:
        return f"{RESOURCE_PREFIX}-{region}"
    return f"{RESOURCE_PREFIX}-gen{number}-{region}"


def alias_resource_name(role: GenerationRole, region: str) -> str:
    """The KMS alias resource of a role: `cmk-<region>-alias` (current) or `cmk-next-<region>-alias`."""
    if role == CURRENT:
        return f"{RESOURCE_PREFIX}-{region}-alias"
    return f"{RESOURCE_PREFIX}-{role}-{region}-alias"


def retired_enabled(config: StackConfig, number: int | None = None) -> bool:
    """Whether retired generation `number` (1-based; None: the latest) is enabled: only the generation
    the promotion just retired (the last `retiredKeys` entry), only in the promotion phase (`complete`
    with no next generation left, access on).

    Promotion keeps the old keys usable (it moves Atlassian, not backups); the next reviewed change
    (status back to `none`) retires them: disabled, and backups protected by them no longer work. An
    older generation, retired by an earlier re-encryption, is never enabled again: a later `complete`
    does not bring it back. Declaring `complete` again after a retirement was applied would enable the
    latest retired generation once more: the policy pack refuses it from the deployed keys' tags
    (`transition_rules.retired_enable_finding`), which only an apply writes. A revocation disables every
    generation.
    """
    latest = len(config.retired_keys)
    if number is not None and number != latest:
        return False
    return config.enabled and config.reencryption.status == "complete" and not config.has_next_generation


def generations(config: StackConfig) -> tuple[Generation, ...]:
    """Every generation the stack holds, oldest first: retired ones, the current, the next (if any).

    A revocation (`enabled: false`) disables every generation; restoring enables the current and
    next generations, never a retired one outside the promotion phase.
    """
    retired = tuple(
        Generation(number=index + 1, role=RETIRED, keys=keys, enabled=retired_enabled(config, index + 1))
        for index, keys in enumerate(config.retired_keys)
    )
    current_number = len(config.retired_keys) + 1
    current = Generation(number=current_number, role=CURRENT, keys=config.enrolled_keys, enabled=config.enabled)
    if not config.has_next_generation:
        return (*retired, current)
    following = Generation(number=current_number + 1, role=NEXT, keys=config.next_keys, enabled=config.enabled)
    return (*retired, current, following)


def role_recorded(config: StackConfig, role: str) -> bool:
    """Whether the stack records the ARNs of its generation of `role` (enrolledKeys, nextKeys, a
    retiredKeys entry): what a key created for that role is tagged `atlassian-cmk:enrolled` by."""
    return any(generation.role == role and generation.keys is not None for generation in generations(config))


def held_generations(config: StackConfig) -> tuple[Generation, ...]:
    """The generations Atlassian holds and uses: current and next (retired ones are no longer used)."""
    return tuple(g for g in generations(config) if g.role != RETIRED)


def generation_named(config: StackConfig, resource_name: str, region: str) -> Generation | None:
    """The generation whose key in `region` is the resource `resource_name`, or None (no such generation)."""
    for generation in generations(config):
        if generation.key_resource_name(region) == resource_name:
            return generation
    return None


def retired_generation(config: StackConfig, resource_name: str, region: str, role: str) -> KeyGeneration | None:
    """The `retiredKeys` entry a key resource belongs to, when it is tagged retired AND named as that
    retired generation's key in `region` (numbered 1..len(retiredKeys)); else None.

    Disabling such a key while `enabled` is true is a retirement, whose record is the reviewed
    `retiredKeys` and re-encryption status, not a revocation that needs a reason and a ticket. The
    configuration alone cannot prove it (a pull request may list any ARNs as retired and so relabel
    the deployed current key): the caller must also see that the entry's live key in `region` was
    deployed as retired (tagged `atlassian-cmk:key-pair: retired` by the promotion's apply).
    """
    if role != RETIRED:
        return None
    for number, generation in enumerate(config.retired_keys, start=1):
        if resource_name == key_resource_name(number, region):
            return generation
    return None
