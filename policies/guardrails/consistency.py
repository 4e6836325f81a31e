"""dual-region-consistency: one key per region of the realm, none elsewhere, all on or all off.

Per resource, each key is checked against the stack's configuration (its region belongs to the
realm, its switch matches `atlassian-cmk:enabled`), which blocks a bad key before its step runs.
Only the whole stack shows how many keys each region has, so the set is checked there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResourceOptions

from atlassian_cmk.config import StackConfigErrors, shorten_repr
from atlassian_cmk.generations import RETIRED
from atlassian_cmk.key_set import DeclaredKey, key_set_problems
from atlassian_cmk.naming import CURRENT_KEY_PAIR
from atlassian_cmk.transition_rules import expected_enabled

from .context import invalid_config_message, stack_config
from .framework import ResourceAndStackPolicy, StackFinding
from .resources import CmkKey, Unknown
from .settings import CONSISTENCY_POLICY

DESCRIPTION = (
    "Checks whether the stack's CMK keys are exactly one per region of the realm (two for a dual-region realm, "
    "one for a single-region realm, none elsewhere) and all share one enabled value."
)


def check_key(key: CmkKey, _opts: PolicyResourceOptions, _settings: Mapping[str, Any]) -> Iterator[str]:
    config = stack_config()
    if isinstance(config, StackConfigErrors):
        yield invalid_config_message(config, CONSISTENCY_POLICY)
        return
    realm = ", ".join(config.regions)
    region = key.region
    if isinstance(region, Unknown):
        yield f"the region of CMK key {key.name} is unknown until apply, so it cannot be checked against {realm}"
    elif region is None:
        yield (
            f"CMK key {key.name} has no region input, so it would land in the provider's default region; every key "
            f"names its region of the realm ({realm}) explicitly"
        )
    elif region not in config.regions:
        yield (
            f"CMK key {key.label} is outside the realm's regions ({realm}): data cannot leave the realm and "
            "Atlassian never uses such a key; remove it from the program"
        )
    enabled = key.enabled
    if isinstance(enabled, Unknown):
        yield f"the enabled input of CMK key {key.label} is unknown until apply; set it from atlassian-cmk:enabled"
    elif key.key_pair != CURRENT_KEY_PAIR and expected_enabled(config, key.key_pair) is not None:
        return  # a next or retired key follows its generation's state: no-revocation-during-reencryption judges it
    elif enabled != config.enabled:
        state = "enabled" if enabled else "disabled"
        yield (
            f"CMK key {key.label} would be {state} while atlassian-cmk:enabled is {str(config.enabled).lower()}: the "
            "regions would disagree and Atlassian needs every region or none; drive every key from "
            "atlassian-cmk:enabled"
        )


def check_stack(keys: list[CmkKey], _settings: Mapping[str, Any]) -> Iterator[StackFinding]:
    config = stack_config()
    if isinstance(config, StackConfigErrors):
        yield invalid_config_message(config, CONSISTENCY_POLICY), None
        return
    pairs: dict[str, list[DeclaredKey]] = {}
    for key in keys:
        region, enabled = key.region, key.enabled
        if not isinstance(region, str) or isinstance(enabled, Unknown):
            yield (
                f"CMK key {key.name}: region {shorten_repr(region)} / enabled {shorten_repr(enabled)} not known, "
                "so the key set cannot be "
                "checked; the policy fails closed",
                key.urn,
            )
            continue
        # Each generation is its own set of keys (one per region, all alike); retired generations are
        # told apart by their resource names (atlassian_cmk.generations: cmk-<region>, cmk-gen<n>-<region>).
        group = key.key_pair if key.key_pair != RETIRED else f"{RETIRED} {key.name.removesuffix('-' + region)}"
        pairs.setdefault(group, []).append(DeclaredKey(name=key.name, region=region, enabled=enabled))
    if not pairs:
        pairs[CURRENT_KEY_PAIR] = []
    for pair, declared in sorted(pairs.items()):
        prefix = f"key pair {pair}: " if len(pairs) > 1 else ""
        for problem in key_set_problems(config.regions, declared):
            yield prefix + problem, None


def policy() -> ResourceAndStackPolicy:
    return ResourceAndStackPolicy(CONSISTENCY_POLICY, DESCRIPTION, EnforcementLevel.MANDATORY, check_key, check_stack)
