"""Which resources are CMK keys, and what their inputs say, unknowns included.

CrossGuard hands a policy the resource's new inputs (camelCase, as the engine serializes them)
wrapped in a proxy that raises `UnknownValueError` when a value is not known yet (during
preview). Policies here never let that exception escape: an unknown value is read as `UNKNOWN`
and each policy decides deliberately what it means (for anything that matters: fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pulumi_policy.proxy import UnknownValueError

from atlassian_cmk.naming import COMPONENT_TYPE, CURRENT_KEY_PAIR, TAG_KEY_PAIR, TAG_STACK

KMS_KEY_TYPE: Final = "aws:kms/key:Key"
KMS_REPLICA_KEY_TYPE: Final = "aws:kms/replicaKey:ReplicaKey"
KMS_KEY_TYPES: Final = frozenset({KMS_KEY_TYPE, KMS_REPLICA_KEY_TYPE})

"""The CmkKeyPair component's type token (components/cmk_key_pair.py); a test keeps the two equal."""

ENABLED_INPUT: Final = {KMS_KEY_TYPE: "isEnabled", KMS_REPLICA_KEY_TYPE: "enabled"}
"""pulumi-aws names the switch differently on a key and on a replica key."""


class Unknown:
    """A value the engine does not know yet (preview); never equal to a real value."""

    def __repr__(self) -> str:
        return "unknown until apply"


UNKNOWN: Final = Unknown()


def known(mapping: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """`mapping.get(key, default)`, with an unknown value returned as `UNKNOWN` instead of raised."""
    try:
        return mapping.get(key, default)
    except UnknownValueError:
        return UNKNOWN


def parent_types(urn: str) -> list[str]:
    """The types of a resource's ancestors, from its URN (`urn:pulumi:s::p::A$B$type::name`)."""
    parts = urn.split("::")
    if len(parts) < 4:
        return []
    return parts[2].split("$")[:-1]


@dataclass(frozen=True)
class CmkKey:
    """A CMK key resource as its inputs (or, in a stack policy, its outputs) describe it."""

    urn: str
    name: str
    resource_type: str
    props: Mapping[str, Any]

    @property
    def tags(self) -> Mapping[str, Any] | Unknown:
        tags = known(self.props, "tags")
        if isinstance(tags, Unknown):
            return UNKNOWN
        return tags if isinstance(tags, Mapping) else {}

    def tag(self, name: str) -> Any:
        """One tag's value: None when absent, `UNKNOWN` when not known yet."""
        tags = self.tags
        return UNKNOWN if isinstance(tags, Unknown) else known(tags, name)

    @property
    def region(self) -> str | Unknown | None:
        """The pulumi-aws v7 per-resource `region` input the component sets on every key."""
        region = known(self.props, "region")
        return region if isinstance(region, str | Unknown) else None

    @property
    def enabled(self) -> bool | Unknown:
        """The key's switch; absent means AWS's default, enabled."""
        value = known(self.props, ENABLED_INPUT[self.resource_type], True)
        if isinstance(value, Unknown):
            return UNKNOWN
        return value is not False

    @property
    def key_pair(self) -> str:
        """Which key pair the key belongs to (`current`; another name during re-encryption)."""
        value = self.tag(TAG_KEY_PAIR)
        return value if isinstance(value, str) and value else CURRENT_KEY_PAIR

    @property
    def label(self) -> str:
        """How messages name the key: its resource name and region."""
        region = self.region
        where = region if isinstance(region, str) else "an unknown region"
        return f"{self.name} ({where})"


def cmk_key(resource_type: str, props: Mapping[str, Any], urn: str, name: str) -> CmkKey | None:
    """The CMK key view of a resource, or None when the resource is not one of this product's keys.

    A KMS key is ours when the CmkKeyPair component is its parent (from the URN, which a hand
    edit of the inputs cannot change) or when it carries our stack / key-pair tag. An unrelated
    KMS key elsewhere in the stack is judged by neither rule, so CMK rules never touch it.
    """
    if resource_type not in KMS_KEY_TYPES:
        return None
    key = CmkKey(urn=urn, name=name, resource_type=resource_type, props=props)
    if COMPONENT_TYPE in parent_types(urn):
        return key
    tags = key.tags
    if isinstance(tags, Unknown):
        return None
    if any(known(tags, tag) is not None for tag in (TAG_STACK, TAG_KEY_PAIR)):
        return key
    return None
