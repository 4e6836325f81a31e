"""The revocation clock, cross-checked: the `revoked-at` tag against CloudTrail's DisableKey (pure rules).

Why detection, not prevention: the key policy makes an open revocation record write-once
(`atlassian_cmk.evidence`), but KMS has no condition key for the key's state and IAM cannot compare a
tag value with the current time. So the break-glass role can close a record (`restored-at`) while the
key stays disabled, then open a new record (a new revocation id) with ANY `revoked-at`, backdated or
forward-dated. A forward-dated tag shows more days left to reinstate than there are.

CloudTrail is written by AWS, not by any role this product ships. For every disabled key the readers
(`atlassian_cmk.aws.cloudtrail.disable_evidence`) find the first DisableKey after its last EnableKey;
this module compares that time with the key's current `revoked-at`:

- forward-dated: the tag is later than the key's own DisableKey by more than `CLOCK_SKEW`. An honest
  record is never later: `cmkctl revoke` takes its time before it sends DisableKey, and a rerun copies
  the realm's earlier record.
- backdated: the tag is earlier than EVERY disabled region's DisableKey by more than `CLOCK_SKEW` plus
  `RECORD_LATENCY` (the record's time is taken before DisableKey is sent). Every region, not the key's
  own: a rerun after a failed region copies the first region's earlier time, which is honest.
- either way the clock runs from CloudTrail's time for that region, and `status` says both times.

When CloudTrail cannot say (the DisableKey not delivered yet, the tag older than the event history,
the bounded scan exhausted, the lookup refused or throttled), the clock runs from the tag and is
"unverified", with the reason: the normal case right after a revoke is "not in CloudTrail yet". A
DisableKey of the current disabled period that WAS found still bounds the clock (it can only move the
deadline earlier: the key has been disabled since then at the latest).

Where the disabled period starts (`disabled_since`, walking back through the key's DisableKey/EnableKey):
an enabled period shorter than `SHORTEST_RESTORE` restored nothing and joins the disabled periods around
it, so an EnableKey "blip" never restarts the clock; events in one second (CloudTrail's resolution) are
ordered EnableKey first, the order that gives the earlier start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from atlassian_cmk.config import shorten
from atlassian_cmk.lease import LEASE_TTL
from atlassian_cmk.live_keys import CloudTrailEvidence, EnabledGap, LiveKey
from atlassian_cmk.naming import TAG_REVOCATION_ID, TAG_REVOCATION_TICKET, TAG_REVOKED_AT, TAG_REVOKED_BY
from atlassian_cmk.records import has_current_revocation
from atlassian_cmk.timeline import (
    CLOCK_SKEW,
    REINSTATEMENT_WINDOW,
    SUSPENSION_HORIZON,
    RevocationClock,
    RevokedAtSource,
    Verification,
    VerificationReason,
    iso,
    parse_iso,
)

CLOUDTRAIL_EVENT_HISTORY: Final = timedelta(days=90)
"""CloudTrail's event history (LookupEvents) holds the last 90 days of management events (AWS CloudTrail
User Guide, "Working with CloudTrail Event history"); a tag older than that cannot be checked."""

CLOUDTRAIL_DELIVERY: Final = timedelta(minutes=15)
"""How long an event may take to show in CloudTrail: "CloudTrail typically delivers logs within an average
of about 5 minutes of an API call. This time is not guaranteed." (AWS CloudTrail User Guide, "Getting and
viewing your CloudTrail log files"; AWS quoted 15 minutes before March 2023). Only the wording depends on it:
a DisableKey not found is "unverified" either way, never a disagreement."""

RECORD_LATENCY: Final = LEASE_TTL
"""How much later than its `revoked-at` a `cmkctl revoke` may send DisableKey: the run takes its time, then
disables under its lease, which covers only the change and its verification (`lease.LEASE_TTL`)."""

EARLIER_ALLOWED: Final = CLOCK_SKEW + RECORD_LATENCY
"""How far a `revoked-at` may precede the earliest DisableKey and still agree with it."""

LATER_ALLOWED: Final = CLOCK_SKEW
"""How far a `revoked-at` may follow the key's own DisableKey and still agree with it (clocks only)."""

SHORTEST_RESTORE: Final = SUSPENSION_HORIZON
"""An enabled period shorter than this restored nothing, so the revocation clock runs on through it.

Atlassian reinstates suspended sites only after the customer enables the keys AND replies on the support
ticket, and restoration then takes about two business days; it notices a disabled key within 30 to 60
minutes (the suspension, `timeline.SUSPENSION_AFTER`). A key enabled for less than that horizon may never
have been seen enabled, and certainly restored nothing: its sites stayed suspended and the 10-day window
kept running from the first DisableKey. Longer enabled periods restart the clock (we cannot see whether
Atlassian reinstated), so the rule errs only towards the earlier deadline. Source: Atlassian support,
"Revoke Atlassian access..." and "Restore access..." (../shared/DOMAIN.md)."""

CLOCK_UNPROVEN: Final[tuple[VerificationReason, ...]] = ("lookup-failed", "scan-exhausted")
"""Unverified because CloudTrail could not be read in full: an earlier DisableKey (a forward-dated tag) may
be hidden, so the deadline may be earlier than shown (`deadlines.deadline_findings`: clock-unverified).
Not the other reasons: not-in-cloudtrail-yet is the normal state right after a revoke; beyond-event-history
is a tag older than 90 days, whose window (10 days) and data-at-risk date (20) have passed whichever time
is true; other-region-unconfirmed is a tag EARLIER than the key's own DisableKey (the earlier deadline),
and the region that could not be confirmed has its own reason."""

KeyEvent = tuple[datetime, Literal["EnableKey", "DisableKey"]]
"""One of the key's own CloudTrail events: its `EventTime` (1 s resolution) and `EventName`."""


@dataclass(frozen=True)
class DisabledSince:
    """`disabled_since`'s answer. `start`: the first DisableKey of the joined disabled period found (None:
    no DisableKey after the last EnableKey yet); `gaps`: the short enabled periods joined, newest first;
    `complete`: the events read reach back to the period's start (else `start` is only an upper bound)."""

    start: datetime | None
    gaps: tuple[EnabledGap, ...]
    complete: bool


def disabled_since(events: Sequence[KeyEvent], *, complete: bool, now: datetime) -> DisabledSince:
    """When a key that is disabled now was disabled, from its own DisableKey/EnableKey events.

    `events`: this key's events, any order; `complete`: they are every such event in the event history
    (else only the newest ones: the answer then says what they prove). Walking back from now: the first
    DisableKey after the last EnableKey starts the current disabled period; an enabled period before it
    (from the first EnableKey after the previous DisableKey) shorter than `SHORTEST_RESTORE` joins the two
    periods, and the walk goes on. CloudTrail times have 1 s resolution, so events in one second have no
    order: EnableKey is put first, which makes every enabled period shorter, never longer, so the start
    is the earliest any real order gives (fail closed). The last EnableKey with no DisableKey after it (not
    delivered yet) joins the period before when it is less than `SHORTEST_RESTORE` before `now`.
    """
    # Newest first; within one second DisableKey before EnableKey (= EnableKey first in time order).
    ordered = sorted(events, key=lambda e: (e[0], 0 if e[1] == "EnableKey" else 1), reverse=True)
    start: datetime | None = None
    gaps: list[EnabledGap] = []
    index = 0
    while True:
        # A disabled period: its DisableKeys, newest first; the earliest one is where it began.
        period_start: datetime | None = None
        while index < len(ordered) and ordered[index][1] == "DisableKey":
            period_start = ordered[index][0]
            index += 1
        if period_start is not None:
            start = period_start
        elif start is not None or index >= len(ordered):
            # Only the first period may lack its DisableKey (not delivered yet); no events at all: unknown.
            return DisabledSince(start, tuple(gaps), complete)
        if index >= len(ordered):
            return DisabledSince(start, tuple(gaps), complete)
        # The enabled period before it: its EnableKeys, newest first; the earliest one enabled the key.
        enabled_at = ordered[index][0]
        while index < len(ordered) and ordered[index][1] == "EnableKey":
            enabled_at = ordered[index][0]
            index += 1
        ends = start if start is not None else now
        if ends - enabled_at >= SHORTEST_RESTORE:
            return DisabledSince(start, tuple(gaps), True)  # a real restore: the clock restarted after it
        if index >= len(ordered):
            # complete: enabled since creation (or beyond the history), no earlier revocation to join; else
            # a DisableKey before it may lie beyond the events read, and the period may be a short one.
            return DisabledSince(start, tuple(gaps), complete)
        seconds = int((start - enabled_at).total_seconds()) if start is not None else None
        gaps.append(EnabledGap(enabled_at, seconds))
        # The next pass starts at the DisableKey that ended the earlier disabled period: it becomes the start.


@dataclass(frozen=True)
class RevokedAtCheck:
    """One disabled key's clock evidence: its current revoked-at tag beside CloudTrail's DisableKey.

    `verification`/`reason`: the verdict (`timeline.Verification`, `timeline.VerificationReason`);
    `note`: one clause for humans; `tag_at`/`cloudtrail_at`: the two times (None when absent);
    `record`: the current record's revocation id, revoked-by and ticket ("" where absent).
    """

    region: str
    key_arn: str
    verification: Verification
    reason: VerificationReason
    note: str
    tag_at: datetime | None = None
    cloudtrail_at: datetime | None = None
    record: Mapping[str, str] = field(default_factory=dict)
    gaps: tuple[EnabledGap, ...] = ()
    """The short enabled periods CloudTrail's time runs through (`disabled_since`)."""

    @property
    def disagrees(self) -> bool:
        return self.verification == "disagrees"

    def finding(self) -> str:
        """REVOKED-AT DISAGREES WITH CLOUDTRAIL, in one line (only for a disagreeing check)."""
        assert self.tag_at is not None and self.cloudtrail_at is not None
        later = self.tag_at > self.cloudtrail_at
        gap = _span(abs(self.tag_at - self.cloudtrail_at))
        if later:
            how = f"after CloudTrail's DisableKey {iso(self.cloudtrail_at)} (forward-dated: it shows more days left"
            how += " than there are"
            how += f"; {gaps_note(self.cloudtrail_at, self.gaps)})" if self.gaps else ")"
            used = "the clock runs from CloudTrail's time, the earlier deadline"
        else:
            how = f"before CloudTrail's DisableKey {iso(self.cloudtrail_at)} (backdated: the key was not disabled then)"
            used = "the clock runs from CloudTrail's time, written by AWS"
        who = self.record.get(TAG_REVOKED_BY) or "?"
        ticket = self.record.get(TAG_REVOCATION_TICKET) or "?"
        rid = self.record.get(TAG_REVOCATION_ID) or "no id"
        return (
            f"REVOKED-AT DISAGREES WITH CLOUDTRAIL: {self.region}: key {self.key_arn}: {TAG_REVOKED_AT} "
            f"{iso(self.tag_at)} is {gap} {how}; record {shorten(rid, 40)} by {shorten(who, 80)} under "
            f"{shorten(ticket, 40)}; {used}: reinstate until {iso(self.cloudtrail_at + REINSTATEMENT_WINDOW)}, not "
            f"the tag's {iso(self.tag_at + REINSTATEMENT_WINDOW)}; find who wrote the tag in CloudTrail's "
            "TagResource events"
        )


def exhausted_note(trail: CloudTrailEvidence) -> str:
    """Why a bounded scan proved no start, by what filled its pages (this key's own events or others')."""
    return (
        f"CloudTrail's bounded scan read {trail.scanned} DisableKey/EnableKey events ({trail.own} of them this "
        "key's) without reaching the start of its disabled period"
    )


def gaps_note(start: datetime, gaps: Sequence[EnabledGap]) -> str:
    """One clause: the clock runs through short enabled periods (`SHORTEST_RESTORE`), newest first."""
    each = [
        f"{gap.seconds} s at {iso(gap.enabled_at)}"
        if gap.seconds is not None
        else f"at {iso(gap.enabled_at)}, its DisableKey not in CloudTrail yet"
        for gap in gaps
    ]
    limit = int(SHORTEST_RESTORE.total_seconds() // 60)
    return (
        f"clock from {iso(start)}: the key was enabled only {', '.join(each)} in between (under {limit} minutes "
        "restores nothing)"
    )


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return (
        f"{hours / 24:.1f} days"
        if hours >= 48
        else f"{hours:.1f} hours"
        if hours >= 2
        else (f"{delta.total_seconds() / 60:.0f} minutes")
    )


def check_revoked_at(
    keys: Sequence[LiveKey], evidence: Mapping[str, CloudTrailEvidence], *, now: datetime
) -> dict[str, RevokedAtCheck]:
    """Region -> the check of each disabled key that carries a current, readable `revoked-at`.

    `keys`: the realm's keys (enabled ones and those pending deletion are skipped); `evidence`: region
    -> what CloudTrail said (`aws.cloudtrail.collect_cloudtrail_evidence`; a region without an entry
    was not looked up: "lookup-failed"). A malformed or future tag is `guards.revocation_clock`'s doubt.
    """
    disabled = [key for key in keys if not key.enabled and not key.pending_deletion]
    found = {key.region: evidence.get(key.region) for key in disabled}
    # Backdating is judged against every disabled region's DisableKey: all of them must be known.
    proven = [e.disabled_at for e in found.values() if e is not None and e.disabled_at is not None and not e.exhausted]
    every_region_proven = len(proven) == len(disabled)
    unproven = sorted(r for r, e in found.items() if e is None or e.disabled_at is None or e.exhausted)
    checks: dict[str, RevokedAtCheck] = {}
    for key in disabled:
        value = key.tags.get(TAG_REVOKED_AT)
        if not value or not has_current_revocation(key.tags):
            continue
        tag_at = parse_iso(value)
        if tag_at is None:
            continue
        record = {t: key.tags.get(t, "") for t in (TAG_REVOCATION_ID, TAG_REVOKED_BY, TAG_REVOCATION_TICKET)}
        checks[key.region] = _check(key, tag_at, found[key.region], proven, every_region_proven, unproven, record, now)
    return checks


def _check(
    key: LiveKey,
    tag_at: datetime,
    trail: CloudTrailEvidence | None,
    proven: list[datetime],
    every_region_proven: bool,
    unproven: list[str],
    record: Mapping[str, str],
    now: datetime,
) -> RevokedAtCheck:
    def verdict(verification: Verification, reason: VerificationReason, note: str) -> RevokedAtCheck:
        at = trail.disabled_at if trail is not None else None
        gaps = trail.gaps if trail is not None else ()
        return RevokedAtCheck(key.region, key.arn, verification, reason, note, tag_at, at, record, gaps)

    disabled_at = trail.disabled_at if trail is not None else None
    # Forward-dating needs only the key's own DisableKey after its last EnableKey: the key has been
    # disabled since then at the latest, even when the scan was cut short.
    if disabled_at is not None and tag_at > disabled_at + LATER_ALLOWED:
        return verdict("disagrees", "forward-dated", "forward-dated, later than the key's own DisableKey")
    if tag_at < now - CLOUDTRAIL_EVENT_HISTORY:
        return verdict(
            "unverified",
            "beyond-event-history",
            f"the tag is older than CloudTrail's {CLOUDTRAIL_EVENT_HISTORY.days}-day event history",
        )
    if trail is None or trail.error is not None:
        why = trail.error if trail is not None and trail.error else "CloudTrail was not read"
        return verdict("unverified", "lookup-failed", why)
    if trail.exhausted:
        return verdict("unverified", "scan-exhausted", exhausted_note(trail))
    if disabled_at is None:
        age = now - tag_at
        expected = "expected soon" if age <= CLOUDTRAIL_DELIVERY + CLOCK_SKEW else "overdue: check CloudTrail"
        return verdict(
            "unverified",
            "not-in-cloudtrail-yet",
            f"no DisableKey after the last EnableKey in CloudTrail yet (the tag is {_span(age)} old; CloudTrail "
            f"typically shows an event within {int(CLOUDTRAIL_DELIVERY.total_seconds() // 60)} minutes: {expected})",
        )
    if tag_at >= disabled_at - EARLIER_ALLOWED:
        return verdict("confirmed", "agrees", "")
    # Earlier than its own DisableKey: honest only if another region was disabled at the tag's time (a rerun
    # copies the realm's record), which takes every region's DisableKey to rule out.
    if not every_region_proven:
        return verdict(
            "unverified",
            "other-region-unconfirmed",
            f"the tag precedes this key's DisableKey and CloudTrail could not confirm {', '.join(unproven)}",
        )
    if tag_at >= min(proven) - EARLIER_ALLOWED:
        return verdict("confirmed", "agrees", "")
    return verdict("disagrees", "backdated", "backdated, earlier than every region's DisableKey")


def verified_clock(
    keys: Sequence[LiveKey], evidence: Mapping[str, CloudTrailEvidence], *, now: datetime
) -> RevocationClock | None:
    """The realm's revocation clock with CloudTrail's word on it; None when no key is disabled.

    Per disabled region the time is: CloudTrail's where the tag disagrees (or cannot be read as a time and
    CloudTrail has one), else the tag, else CloudTrail's; the clock is the earliest of them (the earlier
    deadline). A malformed or future tag without a CloudTrail time makes the clock unknown, as
    `guards.revocation_clock` says. The verification is the worst region's: disagrees, then unverified.
    """
    disabled = [key for key in keys if not key.enabled and not key.pending_deletion]
    if not disabled:
        return None
    checks = check_revoked_at(keys, evidence, now=now)
    return _combine(disabled, checks, evidence, now)


def region_clocks(
    keys: Sequence[LiveKey], evidence: Mapping[str, CloudTrailEvidence], *, now: datetime
) -> dict[str, RevocationClock]:
    """Region -> that disabled key's own clock, judged with the realm's checks (backdating needs every region)."""
    disabled = [key for key in keys if not key.enabled and not key.pending_deletion]
    checks = check_revoked_at(keys, evidence, now=now)
    return {key.region: _combine([key], checks, evidence, now) for key in disabled}


def _combine(
    disabled: Sequence[LiveKey],
    checks: Mapping[str, RevokedAtCheck],
    evidence: Mapping[str, CloudTrailEvidence],
    now: datetime,
) -> RevocationClock:
    candidates: list[tuple[datetime, RevokedAtSource]] = []
    notes: list[tuple[Verification, VerificationReason, str]] = []
    tags: list[datetime] = []
    trails: list[datetime] = []
    gap_notes: list[str] = []
    unread: list[str] = []  # regions CloudTrail could not read in full (CLOCK_UNPROVEN), even where a tag disagrees
    doubt: str | None = None
    for key in disabled:
        trail = evidence.get(key.region)
        at = trail.disabled_at if trail is not None else None
        if at is not None:
            trails.append(at)
        check = checks.get(key.region)
        own_doubt = tag_doubt(key, now)
        if check is not None and check.tag_at is not None:
            tags.append(check.tag_at)
        if check is not None and check.disagrees and at is not None:
            candidates.append((at, "cloudtrail"))
            notes.append(("disagrees", check.reason, f"{key.region}: {check.note}"))
        elif own_doubt is not None:
            if at is None:
                doubt = doubt or own_doubt
                continue
            candidates.append((at, "cloudtrail"))
            notes.append(("disagrees", "tag-unreadable", f"{key.region}: {own_doubt}"))
        elif check is not None and check.tag_at is not None:
            candidates.append((check.tag_at, "revoked-at tag"))
            if check.verification != "confirmed":
                notes.append((check.verification, check.reason, f"{key.region}: {check.note}"))
                if at is not None and at < check.tag_at:
                    # Unverified never hides an earlier time: a DisableKey of the current period that was
                    # found bounds the clock even when CloudTrail could not confirm the rest.
                    candidates.append((at, "cloudtrail"))
        elif at is not None:
            candidates.append((at, "cloudtrail"))
            if trail is not None and trail.exhausted:
                beyond = f"{key.region}: an earlier DisableKey may lie beyond the pages read ({exhausted_note(trail)})"
                notes.append(("unverified", "scan-exhausted", beyond))
            elif trail is not None and trail.error:
                notes.append(("unverified", "lookup-failed", f"{key.region}: {trail.error}"))
        elif trail is not None and trail.error:
            notes.append(("unverified", "lookup-failed", f"{key.region}: {trail.error}"))
        elif trail is not None and trail.exhausted:
            notes.append(("unverified", "scan-exhausted", f"{key.region}: {exhausted_note(trail)}"))
        elif trail is not None:
            after = " after its last EnableKey" if trail.own else ""
            quiet = f"{key.region}: no DisableKey{after} in CloudTrail yet"
            notes.append(("unverified", "not-in-cloudtrail-yet", quiet))
        if trail is not None and trail.error:
            unread.append(f"{key.region}: {trail.error}")
        elif trail is not None and trail.exhausted:
            unread.append(f"{key.region}: {exhausted_note(trail)}")
        elif check is not None and check.reason == "lookup-failed":
            unread.append(f"{key.region}: {check.note}")
        if trail is not None and at is not None and trail.gaps:
            gap_notes.append(f"{key.region}: {gaps_note(at, trail.gaps)}")
    verification, reason, note = _verification(notes, candidates)
    tag_at, trail_at = min(tags, default=None), min(trails, default=None)
    gaps = _said_once(gap_notes) if gap_notes else None
    unproven = _said_once(unread) if unread else None
    if doubt is not None or not candidates:
        return RevocationClock(None, "unknown", doubt, verification, reason, note, tag_at, trail_at, gaps, unproven)
    revoked_at, source = min(candidates, key=lambda c: c[0])
    return RevocationClock(revoked_at, source, None, verification, reason, note, tag_at, trail_at, gaps, unproven)


def _verification(
    notes: list[tuple[Verification, VerificationReason, str]], candidates: list[tuple[datetime, RevokedAtSource]]
) -> tuple[Verification | None, VerificationReason | None, str | None]:
    for level in ("disagrees", "unverified"):
        # The reason that matters most first: CloudTrail unread beats "not in CloudTrail yet" (the normal case).
        picked = sorted((n for n in notes if n[0] == level), key=lambda n: n[1] not in CLOCK_UNPROVEN)
        if picked:
            return picked[0][0], picked[0][1], _said_once([note for _, _, note in picked])
    if not candidates:
        return None, None, None
    return "confirmed", "from-cloudtrail" if all(src == "cloudtrail" for _, src in candidates) else "agrees", None


def _said_once(notes: list[str]) -> str:
    """`region: clause` notes joined, one clause per distinct text naming every region that says it
    (docs/cmkctl.md "Output rules": a realm-wide cause is said once)."""
    regions: dict[str, list[str]] = {}
    for note in notes:
        region, _, text = note.partition(": ")
        regions.setdefault(text, []).append(region)
    return "; ".join(f"{', '.join(names)}: {text}" for text, names in regions.items())


def tag_doubt(key: LiveKey, now: datetime) -> str | None:
    """Why a disabled key's current `revoked-at` cannot be believed as a time at all, or None: malformed, or
    later than `now` + CLOCK_SKEW (a future time would promise days of reinstatement window that may be gone)."""
    value = key.tags.get(TAG_REVOKED_AT)
    if key.enabled or not value or not has_current_revocation(key.tags):
        return None
    moment = parse_iso(value)
    if moment is None:
        return f"the {TAG_REVOKED_AT} tag in {key.region} is malformed: {shorten(value, 40)!r}"
    if moment > now + CLOCK_SKEW:
        return f"the {TAG_REVOKED_AT} tag in {key.region} is in the future: {shorten(value, 40)!r}"
    return None
