"""Atlassian Cloud data-residency realms and the AWS regions that hold their keys.

One table, used by the program, the policy pack and cmkctl: a realm decides how many
keys exist and where, so every component must agree on it. Source: Atlassian support,
"Set up your AWS account and create a KMS key policy" (see ../shared/DOMAIN.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True)
class Realm:
    """A realm: its config name, a human label, and its regions in Atlassian's order.

    The first region is where a multi-region primary key lives.
    """

    name: str
    label: str
    regions: tuple[str, ...]

    @property
    def is_dual_region(self) -> bool:
        return len(self.regions) == 2


REALMS: Final = MappingProxyType(
    {
        realm.name: realm
        for realm in (
            Realm("us", "United States", ("us-east-1", "us-west-2")),
            Realm("eu", "Europe", ("eu-central-1", "eu-west-1")),
            Realm("au", "Australia", ("ap-southeast-2",)),
            Realm("ca", "Canada", ("ca-central-1",)),
            Realm("de", "Germany", ("eu-central-1",)),
            Realm("in", "India", ("ap-south-1",)),
            Realm("jp", "Japan", ("ap-northeast-1",)),
            Realm("kr", "South Korea", ("ap-northeast-2",)),
            Realm("sg", "Singapore", ("ap-southeast-1",)),
        )
    }
)
"""Realms Atlassian documents, by the name used in `atlassian-cmk:realm`."""

EXPLICIT_REALM_NAME: Final = "explicit"
"""The realm name reported when the stack lists `regions` instead of naming a realm."""

MAX_REGIONS: Final = 2
"""Atlassian realms hold one or two regions; a third key would never be used."""

# Commercial, GovCloud and China region names: two letters, optional "-gov",
# a direction word, a digit (us-east-1, us-gov-west-1, cn-north-1, ap-southeast-4).
_REGION_RE: Final = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$")


def is_region_name(value: str) -> bool:
    """Whether `value` is shaped like an AWS region name (we cannot list future regions)."""
    return bool(_REGION_RE.match(value))


def realm_names() -> str:
    """The allowed realm names, for error messages."""
    return ", ".join(REALMS)
