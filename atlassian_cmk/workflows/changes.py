"""What a revoke or restore did to each key, as data (pure): the outcome per key, the realm's report.

Filled in by `atlassian_cmk.aws.kms_actions`; judged by the workflows and drawn by `cli/render.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.generations import generation_place
from atlassian_cmk.live_keys import LiveKey
from atlassian_cmk.naming import TAG_REVOCATION_ID
from atlassian_cmk.records import REVOCATION_RECORD, has_current_revocation, record_order, revocation_record

RegionOutcome = Literal[
    "changed",
    "unchanged",
    "record-missing",
    "overtaken",
    "unverified",
    "failed",
    "key-lost",
    "refused",
    "not-deployed",
]
"""`record-missing`: the key is in the wanted state (read back) but the record could not be written.
`overtaken`: the run set the state, and another operation changed it again before the run ended.
`unverified`: the run set the state and read it back, but its final check (`kms_actions.settle`, after
every region was done) could not read the key: another operation may have changed it since."""


@dataclass(frozen=True)
class RegionChange:
    """What happened in one region, with the key as last read back (its true state after the attempt)."""

    region: str
    outcome: RegionOutcome
    detail: str
    attempts: int = 0
    key: LiveKey | None = None
    state_changed: bool = False
    """Whether this run's DisableKey/EnableKey took effect (read back), also when AWS answered with an error."""
    generation: str = "current"
    """The key generation the key belongs to (`generations.GenerationRole`: current, next, retired)."""

    @property
    def label(self) -> str:
        """`us-east-1`, or `us-east-1 (next)` for a key of another generation than the current one."""
        return generation_place(self.region, self.generation)

    @property
    def converged(self) -> bool:
        """The key is in the wanted state (with or without its record)."""
        return self.outcome in ("changed", "unchanged", "record-missing")


@dataclass(frozen=True)
class TagChange:
    """Tags to write and tags to remove on one key; empty when the key already says it all."""

    put: Mapping[str, str]
    remove: tuple[str, ...] = ()
    blocked: str | None = None
    """Why the record this run should write is one the key policy refuses it (the region is then
    `record-missing` with this reason, and nothing is sent)."""

    @property
    def empty(self) -> bool:
        return not self.put and not self.remove and self.blocked is None


TagPlanner = Callable[[LiveKey, bool], TagChange]
"""From the key as read before the tags are written, and whether this run changed its state, the
tags that record the change (nothing when the key already carries the record)."""

Action = Literal["revoke", "restore"]


@dataclass(frozen=True)
class ChangeReport:
    """The result of a revoke or restore across the realm."""

    action: Action
    caller: str
    at: datetime
    regions: tuple[RegionChange, ...]
    reconciled: tuple[str, ...] = ()
    """Labels of the keys still carrying another revocation's record than the earliest one after
    `kms_actions.settle` tried to align them (two revokes at once): exit 9."""

    @property
    def exit_code(self) -> ExitCode:
        if any(r.outcome == "key-lost" for r in self.regions):
            return ExitCode.KEY_LOST
        if any(r.outcome == "refused" for r in self.regions):
            return ExitCode.REFUSED
        # A region not deployed yet (before enrollment) has nothing to change; it is no failure.
        deployed = [r for r in self.regions if r.outcome != "not-deployed"]
        if deployed and all(r.outcome == "failed" for r in deployed):
            return ExitCode.UNREACHABLE
        if any(r.outcome == "unverified" for r in deployed):
            # The final check could not read a key: its end state is unknown, so neither "converged" nor a split.
            return ExitCode.UNREACHABLE
        if any(r.outcome in ("failed", "overtaken") for r in deployed):
            return ExitCode.SPLIT
        if any(r.outcome == "record-missing" for r in deployed) or self.reconciled:
            # `reconciled`: another revocation's record still stands in some region (two revokes at once,
            # the alignment to the earliest record refused): the keys are as asked, the record is not one.
            return ExitCode.RECORD_NOT_WRITTEN
        if len(deployed) < len(self.regions):
            return ExitCode.NOT_DEPLOYED
        return ExitCode.AS_DECLARED

    @property
    def changed_regions(self) -> tuple[str, ...]:
        """Regions whose key state this run changed (read back), whatever else failed."""
        return tuple(r.region for r in self.regions if r.state_changed)

    @property
    def converged(self) -> bool:
        return all(r.converged for r in self.regions)

    def record(self) -> dict[str, str] | None:
        """The revocation record the keys agree on, or None when they carry none or several revocations.

        One revocation id across the keys is one record, even where a key this run found already
        disabled carries it without `revoked-at`: the timed copy (the earliest) stands for it."""
        records = {
            revocation_record(r.key.tags)
            for r in self.regions
            if r.key is not None and not r.key.enabled and has_current_revocation(r.key.tags)
        }
        index = REVOCATION_RECORD.index(TAG_REVOCATION_ID)
        if len({record[index] for record in records}) != 1:
            return None
        winner = min(records, key=record_order)
        return {tag: value for tag, value in zip(REVOCATION_RECORD, winner, strict=True) if value}
