"""The deployed CMK keys as data: what AWS reported for each region, with no I/O.

The readers in `atlassian_cmk.aws` fill these in; the guard rules, the status assessment and the
policy pack judge them. Keeping the model apart from boto3 lets the pure rules import it without
importing AWS I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Final

from atlassian_cmk.naming import TAG_REENCRYPTION

if TYPE_CHECKING:  # the model imports the config schema; keep this module import-light
    from atlassian_cmk.reencryption_activity import ReencryptionActivity

PENDING_DELETION_STATES: Final = frozenset({"PendingDeletion", "PendingReplicaDeletion"})


@dataclass(frozen=True)
class LiveKey:
    """One deployed key as AWS reports it."""

    region: str
    key_id: str
    arn: str
    key_state: str
    multi_region: bool
    tags: Mapping[str, str] = field(default_factory=dict)
    policy: str | None = None
    """The key policy JSON, when the reader asked for it (the policy pack does; cmkctl does not)."""
    multi_region_type: str | None = None
    """`PRIMARY` or `REPLICA` for a multi-region key (DescribeKey MultiRegionConfiguration), else None."""

    @property
    def enabled(self) -> bool:
        return self.key_state == "Enabled"

    @property
    def pending_deletion(self) -> bool:
        return self.key_state in PENDING_DELETION_STATES

    @property
    def reencryption(self) -> str | None:
        return self.tags.get(TAG_REENCRYPTION)


@dataclass(frozen=True)
class RegionReading:
    """What one region said: a key, no key (behind the alias, or at the enrolled ARN), or an error.

    Once the stack is enrolled, `key` is the enrolled key read by its own ID, and `enrolled_arn`
    says which; the alias is read separately (`alias_target`: the ARN of the key it names, None
    when the alias is gone) so a repointed alias is a finding of its own, never the key acted on.
    """

    region: str
    key: LiveKey | None = None
    error: str | None = None
    enrolled_arn: str | None = None
    alias_target: str | None = None
    alias_error: str | None = None

    @property
    def missing(self) -> bool:
        return self.key is None and self.error is None

    @property
    def alias_moved(self) -> bool:
        """Enrolled, the alias read, and it names another key (or none)."""
        return self.enrolled_arn is not None and self.alias_error is None and self.alias_target != self.enrolled_arn


@dataclass(frozen=True)
class DeployedState:
    """The live keys of one stack, one reading per region of the realm."""

    stack: str
    alias: str
    readings: tuple[RegionReading, ...]
    enrolled: bool = False
    """True when the keys were read by their enrolled ARNs; False: found through the alias (not enrolled yet)."""
    reencryption_activity: ReencryptionActivity | None = None
    """CloudTrail's evidence of Atlassian re-encrypting, read while two generations are enrolled
    (`break_glass.read_state`); None otherwise. `reencryption_activity.activity_reasons` judges it."""

    def errors(self) -> list[str]:
        return [f"{r.region}: {r.error}" for r in self.readings if r.error is not None]

    def live_keys(self) -> list[LiveKey]:
        return [r.key for r in self.readings if r.key is not None]

    def reading(self, region: str) -> RegionReading | None:
        return next((r for r in self.readings if r.region == region), None)


@dataclass(frozen=True)
class GenerationKeys:
    """One key generation's keys as read now (`cmkctl status`, per generation).

    `number`/`role`: as `atlassian_cmk.generations` numbers them (role: current, next, retired).
    `recorded`: its ARNs are in the stack (enrolledKeys, nextKeys, retiredKeys); False: found
    through its alias. `deployed`: the keys read, None when nothing names them.
    """

    number: int
    role: str
    recorded: bool
    deployed: DeployedState | None


@dataclass(frozen=True)
class EnabledGap:
    """An enabled period shorter than `clock_check.SHORTEST_RESTORE` that the revocation clock ran through:
    EnableKey at `enabled_at`, DisableKey `seconds` later (None: that DisableKey is not in CloudTrail yet,
    so the gap is shorter than SHORTEST_RESTORE but not known)."""

    enabled_at: datetime
    seconds: int | None


@dataclass(frozen=True)
class CloudTrailEvidence:
    """What CloudTrail said about one key: the time it was disabled, or why we do not know.

    `disabled_at`: the first DisableKey of the key's current disabled period, short enabled periods joined
    (`clock_check.disabled_since`; the key has been disabled since then, at the latest). `gaps`: those
    short enabled periods, newest first. `exhausted`: the bounded scan stopped (`MAX_PAGES`) before it
    reached the period's start: `disabled_at` is then only an upper bound of the start. `error`: the
    lookup failed (`disabled_at` then holds what the pages read before the failure proved, if anything).
    `scanned`/`own`: DisableKey/EnableKey events read, and how many of them were this key's.
    """

    disabled_at: datetime | None = None
    error: str | None = None
    exhausted: bool = False
    gaps: tuple[EnabledGap, ...] = ()
    scanned: int = 0
    own: int = 0


def realm_wide_error(deployed: DeployedState) -> str | None:
    """The one error every region's read failed with (one endpoint down, credentials refused), or None
    when some region was read or the regions failed differently: a realm-wide cause is said once, not
    per region (docs/cmkctl.md "Output rules")."""
    errors = {reading.error for reading in deployed.readings}
    if not deployed.readings or len(errors) != 1:
        return None
    return next(iter(errors))
