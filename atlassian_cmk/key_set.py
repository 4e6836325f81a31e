"""What a healthy set of declared CMK keys looks like: one per region of the realm, all alike.

The policy pack checks a stack's declared keys against these rules before a deployment; the
rules live here, beside the realm table and the guard rules, so any tool that lists keys (the
pack today, cmkctl tomorrow) judges a key set the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from atlassian_cmk.guards import split_regions

DELETION_WINDOW_DAYS: Final = 30
"""The longest deletion window KMS allows (and its default): if anyone schedules the deletion of
a CMK key by hand, the most time to notice and cancel it before the organization's data is lost."""


@dataclass(frozen=True)
class DeclaredKey:
    """One CMK key as a deployment declares it: who it is (for messages), where, and its switch."""

    name: str
    region: str
    enabled: bool


def realm_kind(regions: Sequence[str]) -> str:
    """`dual-region` or `single-region`, the words Atlassian uses for a realm."""
    return "dual-region" if len(regions) == 2 else "single-region"


def key_set_problems(regions: Sequence[str], keys: Sequence[DeclaredKey]) -> list[str]:
    """What is wrong with one key pair's keys for a realm of `regions`; [] when sound.

    A realm holds exactly one key in each of its regions and none elsewhere (data cannot leave
    the realm, and Atlassian only knows the ARNs it was given), and every key has the same
    enabled value: Atlassian needs all of them or none.
    """
    problems: list[str] = []
    kind = realm_kind(regions)
    expected = ", ".join(regions)
    for region in regions:
        found = [k for k in keys if k.region == region]
        if not found:
            problems.append(
                f"no CMK key in {region}: a {kind} realm needs exactly one key in each of {expected}; "
                "Atlassian would lose access to the data held there"
            )
        elif len(found) > 1:
            names = ", ".join(k.name for k in found)
            problems.append(
                f"{len(found)} CMK keys in {region} ({names}): a {kind} realm has exactly one key per region; "
                "Atlassian uses only the ARN it was given, so remove the extra key from the program"
            )
    for key in keys:
        if key.region not in regions:
            problems.append(
                f"CMK key {key.name} is in {key.region}, outside the realm's regions ({expected}): data cannot "
                "leave the realm and Atlassian never uses such a key; remove it from the program"
            )
    if split_regions({k.name: k.enabled for k in keys}):
        on = ", ".join(f"{k.name} ({k.region})" for k in keys if k.enabled) or "none"
        off = ", ".join(f"{k.name} ({k.region})" for k in keys if not k.enabled) or "none"
        problems.append(
            f"the CMK keys disagree on enabled (enabled: {on}; disabled: {off}): Atlassian needs every region "
            "or none; drive all keys from the one atlassian-cmk:enabled switch"
        )
    return problems
