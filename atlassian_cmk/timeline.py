"""What happens after a revocation, and when: Atlassian's published timings as data.

Source: Atlassian support, "Revoke Atlassian access to your KMS encryption keys" and "Restore
access to your CMK encryption keys" (../shared/DOMAIN.md). The impact text, the policy pack's
revocation clock and cmkctl's deadlines all come from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

SUSPENSION_AFTER: Final = "30 to 60 minutes"
"""How long after revocation Atlassian suspends the CMK-enabled sites."""

SUSPENSION_HORIZON: Final = timedelta(hours=1)
"""The end of SUSPENSION_AFTER: how long Atlassian may take to act on a key's state. An enabled period
shorter than this restored nothing (`clock_check.SHORTEST_RESTORE`)."""

DATA_LOSS_WINDOW: Final = "up to 1 hour"
"""How much data written before the revocation may be lost."""

REINSTATEMENT_WINDOW: Final = timedelta(days=10)
"""Atlassian can reinstate suspended sites within this time of the revocation."""

DATA_AT_RISK_AFTER: Final = timedelta(days=20)
"""Beyond this time after the revocation, data may not be fully recoverable."""

RESTORATION_TURNAROUND: Final = "about two business days"
"""How long Atlassian generally needs once the restoration ticket is addressed."""

CLOCK_SKEW: Final = timedelta(minutes=5)
"""How far two machines' clocks (an operator's, another operator's, AWS's) may disagree: the one bound
the lease's expiry (`atlassian_cmk.lease`), a revoked-at tag in the future (`guards.revocation_clock`)
and the cross-check of revoked-at against CloudTrail (`atlassian_cmk.clock_check`) allow."""

RevokedAtSource = Literal["revoked-at tag", "cloudtrail", "unknown"]

Verification = Literal["confirmed", "unverified", "disagrees"]
"""What CloudTrail (written by AWS, not by any role this product ships) said of the clock's time:
confirmed (it agrees within the bounds of `atlassian_cmk.clock_check`), unverified (it could not say:
see `VerificationReason`), disagrees (a revoked-at tag contradicts it; the clock then runs from CloudTrail)."""

VerificationReason = Literal[
    "agrees",
    "from-cloudtrail",
    "backdated",
    "forward-dated",
    "tag-unreadable",
    "not-in-cloudtrail-yet",
    "beyond-event-history",
    "scan-exhausted",
    "lookup-failed",
    "other-region-unconfirmed",
]


@dataclass(frozen=True)
class RevocationClock:
    """The two deadlines that run from the moment of revocation."""

    revoked_at: datetime | None
    source: RevokedAtSource
    doubt: str | None = None
    """Why a revoked-at tag was not believed (malformed, or in the future), when it was not: then
    `revoked_at` is None and the clock is unknown (fail closed)."""
    verification: Verification | None = None
    """CloudTrail's word on `revoked_at` (`atlassian_cmk.clock_check`); None when CloudTrail was not read
    (the policy pack, the revoke's own report)."""
    verification_reason: VerificationReason | None = None
    verification_note: str | None = None
    """One clause saying why the clock is unverified or which tag disagrees, for humans; None when confirmed."""
    tag_revoked_at: datetime | None = None
    """The earliest current revoked-at tag that was read (believed or not), for comparison."""
    cloudtrail_disabled_at: datetime | None = None
    """The earliest start of a disabled period that CloudTrail showed (`clock_check.disabled_since`: short
    enabled periods joined), for comparison."""
    enabled_gaps_note: str | None = None
    """One clause when CloudTrail's time runs through enabled periods too short to restore anything
    ("clock from <t>: the key was enabled only <n> s at <t2> in between ..."); None otherwise."""
    unproven_note: str | None = None
    """Which regions CloudTrail could not read in full (refused, throttled, unreachable, scan exhausted:
    `clock_check.CLOCK_UNPROVEN`) and why: an earlier DisableKey may be hidden there. None when none."""

    @property
    def reinstate_until(self) -> datetime | None:
        return None if self.revoked_at is None else self.revoked_at + REINSTATEMENT_WINDOW

    @property
    def data_at_risk_after(self) -> datetime | None:
        return None if self.revoked_at is None else self.revoked_at + DATA_AT_RISK_AFTER

    def days_left_to_reinstate(self, now: datetime) -> float | None:
        deadline = self.reinstate_until
        return None if deadline is None else round((deadline - now).total_seconds() / 86400, 1)

    def within_reinstatement_window(self, now: datetime) -> bool | None:
        deadline = self.reinstate_until
        return None if deadline is None else now <= deadline

    def summary(self, now: datetime, *, say_why: bool = True) -> str:
        """One sentence with both dates, for warnings and terminal output.

        `say_why=False`: an unknown time without its cause, for a report whose DEADLINE finding
        (`deadlines.deadline_findings`, revoked-at-unknown) states the cause already."""
        if self.revoked_at is None:
            why = f" ({self.unknown_because()})" if say_why else ""
            return (
                f"revocation time unknown{why}: "
                f"Atlassian can reinstate within {REINSTATEMENT_WINDOW.days} days of revocation; "
                f"data is at risk after {DATA_AT_RISK_AFTER.days} days"
            )
        assert self.reinstate_until is not None and self.data_at_risk_after is not None
        days_left = self.days_left_to_reinstate(now)
        left = f"{days_left} days left" if days_left is not None and days_left >= 0 else "window has passed"
        return (
            f"revoked at {iso(self.revoked_at)} (from {self.source}{self._checked()}); reinstatement possible until "
            f"{iso(self.reinstate_until)} ({left}); data at risk after {iso(self.data_at_risk_after)}"
        )

    def _checked(self) -> str:
        gaps = f"; {self.enabled_gaps_note}" if self.enabled_gaps_note else ""
        if self.verification == "confirmed":
            return (", confirmed by CloudTrail" if self.source != "cloudtrail" else "") + gaps
        if self.verification == "unverified":
            return f", unverified: {self.verification_note}{gaps}"
        if self.verification == "disagrees":
            return f", the revoked-at tag disagrees: {self.verification_note}{gaps}"
        return gaps

    def unknown_because(self) -> str:
        """Why the revocation time is unknown, as a clause: the tag's doubt, else what CloudTrail said."""
        if self.doubt:
            return self.doubt
        if self.verification_reason in ("lookup-failed", "scan-exhausted"):
            return "no atlassian-cmk:revoked-at tag, and CloudTrail could not be read in full (see the region's note)"
        if self.verification_reason == "not-in-cloudtrail-yet":
            return "no atlassian-cmk:revoked-at tag, and no DisableKey after the key's last EnableKey in CloudTrail yet"
        return "no atlassian-cmk:revoked-at tag and no CloudTrail DisableKey event"


def iso(moment: datetime) -> str:
    """UTC, to the second, with a Z: what the tags hold and what operators read."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime | None:
    """The inverse of `iso`, tolerant of offsets; None when the text is not a timestamp."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
