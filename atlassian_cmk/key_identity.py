"""The identity of Atlassian's keys: the key ARNs handed to Atlassian at enrollment.

An alias (`alias/atlassian-cmk/<stack>`) is a name anyone with `kms:UpdateAlias` can repoint in
place, so it is never an identity. What Atlassian holds is one KMS key ARN per region of the
realm; once the stack records them (`atlassian-cmk:enrolledKeys`), the program, the policy pack
and cmkctl address those keys and check the alias against them.

A `KeyGeneration` is one set of keys (region -> key ARN). The stack config holds the enrolled
generation today; a later generation (`nextKeys`, during re-encryption) or retired ones are more
values of the same shape under other config keys, parsed by the same `parse_key_generation`.

Sources: AWS KMS Developer Guide, "Key identifiers (KeyId)" (key ARN
`arn:<partition>:kms:<region>:<account>:key/<key-id>`, multi-region key IDs `mrk-` + 32 hex
digits); "ARN format" for partitions. DisableKey/EnableKey take a key ID or ARN, never an alias.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

KEY_ARN_RE: Final = re.compile(
    r"^arn:(?P<partition>aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):kms:(?P<region>[a-z0-9-]+):"
    r"(?P<account>[0-9]{12}):key/(?P<key_id>(mrk-)?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12})$"
)
"""A KMS key ARN (`key/`, never `alias/`): a UUID key ID, or a multi-region `mrk-` key ID.

AWS writes multi-region IDs as `mrk-` + 32 hex digits; moto (the emulator) as `mrk-` + a dashed
UUID (moto/kms/utils.py generate_key_id). Both are accepted: either way the ID is 128 bits of hex."""

KEY_ARN_EXAMPLE: Final = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def partition_of_region(region: str) -> str:
    """The ARN partition a region belongs to (cn-* -> aws-cn, us-gov-* -> aws-us-gov, ...)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    if region.startswith("us-iso-"):
        return "aws-iso"
    return "aws"


@dataclass(frozen=True)
class KeyArn:
    """One KMS key's identity, taken apart: where to send requests and the ID to send."""

    arn: str
    partition: str
    region: str
    account: str
    key_id: str

    @property
    def multi_region(self) -> bool:
        """Multi-region keys (primary and replicas) have `mrk-` key IDs."""
        return self.key_id.startswith("mrk-")

    def __str__(self) -> str:
        return self.arn


def parse_key_arn(text: str) -> KeyArn | None:
    """The parts of a KMS key ARN, or None when `text` is not one (aliases and key IDs are not)."""
    match = KEY_ARN_RE.match(text)
    if match is None:
        return None
    return KeyArn(arn=text, **match.groupdict())


class KeyGenerationError(ValueError):
    """Why a region -> key ARN map is not a valid generation: (field, bad value, what is allowed)."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}: {value!r}; {allowed}")


@dataclass(frozen=True)
class KeyGeneration:
    """One set of keys Atlassian holds (or will hold): region -> key ARN, in the stack's region order."""

    keys: Mapping[str, KeyArn]

    def __hash__(self) -> int:  # a cache key in the policy pack; the mapping is read-only
        return hash(tuple(self.keys.items()))

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(self.keys)

    @property
    def account(self) -> str:
        return next(iter(self.keys.values())).account

    def arn(self, region: str) -> KeyArn | None:
        return self.keys.get(region)

    def __iter__(self) -> Iterator[KeyArn]:
        return iter(self.keys.values())

    def as_config(self) -> dict[str, str]:
        """The config value: region -> ARN text."""
        return {region: key.arn for region, key in self.keys.items()}


def parse_key_generation(
    value: object, regions: tuple[str, ...], *, name: str, multi_region: bool | None = None
) -> KeyGeneration:
    """Validate a region -> key ARN map against the stack's regions; raises KeyGenerationError.

    Rules: a mapping; every key a region name whose ARN names that same region; `key/` ARNs
    only; one account and one partition for all, matching the regions; one ARN for each region
    of the realm. An ARN for a region that is not in the realm is accepted here: it is a key
    Atlassian holds that the stack would drop, which the identity guard reports with its
    consequence (`identity_rules.dropped_keys`). `name` is the config key, for messages.
    Text with surrounding spaces is refused, not stripped: Atlassian holds the ARN byte for byte.
    `multi_region`, when given, is the stack's `multiRegion`: `mrk-` key IDs exactly when it is true
    (a mismatch means the config would make the engine create other keys than the enrolled ones).
    """
    example = f"{{{regions[0]}: {KEY_ARN_EXAMPLE.replace('us-east-1', regions[0])}}}" if regions else KEY_ARN_EXAMPLE
    allowed = f"allowed: a map of region to KMS key ARN (the stack's keyArns output), e.g. {example}"
    if not isinstance(value, Mapping) or not value:
        raise KeyGenerationError(name, value, allowed)
    keys: dict[str, KeyArn] = {}
    for region, text in value.items():
        if not isinstance(text, str):
            raise KeyGenerationError(f"{name}.{region}", text, allowed)
        if text != text.strip():
            raise KeyGenerationError(
                f"{name}.{region}",
                text,
                "allowed: the ARN without surrounding spaces (remove them, or quote the value without them)",
            )
        parsed = parse_key_arn(text)
        if parsed is None:
            raise KeyGenerationError(
                f"{name}.{region}", text, f"allowed: a KMS key ARN (key/, not alias/), e.g. {KEY_ARN_EXAMPLE}"
            )
        if parsed.region != region:
            raise KeyGenerationError(
                f"{name}.{region}", text, f"allowed: an ARN of a key in {region} (this one is in {parsed.region})"
            )
        if parsed.partition != partition_of_region(region):
            raise KeyGenerationError(
                f"{name}.{region}", text, f"allowed: partition {partition_of_region(region)} for region {region}"
            )
        if multi_region is not None and parsed.multi_region != multi_region:
            kind = "a multi-region key (mrk- key ID)" if parsed.multi_region else "a single-region key"
            raise KeyGenerationError(
                f"{name}.{region}",
                text,
                f"allowed: an ARN matching multiRegion: {str(multi_region).lower()} (this one is {kind}): "
                "flipping multiRegion replaces the enrolled key, so Atlassian would lose the key it holds in "
                f"{region}; keep multiRegion as enrolled",
            )
        keys[str(region)] = parsed
    accounts = sorted({key.account for key in keys.values()})
    if len(accounts) > 1:
        raise KeyGenerationError(name, ", ".join(accounts), "allowed: every key in one AWS account (the key account)")
    missing = [region for region in regions if region not in keys]
    outside = [region for region in keys if region not in regions]
    if missing and outside:
        raise KeyGenerationError(
            name,
            ", ".join(f"{r}: {k.arn}" for r, k in keys.items()),
            f"the stack's regions changed from {', '.join(keys)} to {', '.join(regions)}: Atlassian holds the "
            f"enrolled keys in {', '.join(outside)} and would lose them, and has no key in {', '.join(missing)}; "
            "data cannot leave its realm: keep the regions (a new realm is a new enrollment with Atlassian)",
        )
    if missing:
        raise KeyGenerationError(
            name, ", ".join(keys), f"missing an ARN for {', '.join(missing)}; {allowed.removeprefix('allowed: ')}"
        )
    ordered = {region: keys[region] for region in regions} | {r: k for r, k in keys.items() if r not in regions}
    return KeyGeneration(MappingProxyType(ordered))
