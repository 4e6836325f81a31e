"""Deadlines that page: the reinstatement window closing or closed, and the data-at-risk date passed.

`cmkctl status` turns these into findings; the drift workflow fails on them with `--fail-on deadline`
(they do not change the default exit code: a declared revocation is the stack as declared).
Source of the windows: `atlassian_cmk.timeline` (Atlassian's published 10 and 20 days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from atlassian_cmk.impact import restore_steps
from atlassian_cmk.timeline import REINSTATEMENT_WINDOW, RevocationClock, iso

WINDOW_WARNING: Final = timedelta(hours=48)
"""How long before the reinstatement window closes status starts to warn."""

DeadlineKind = Literal["window-closing", "window-passed", "data-at-risk", "revoked-at-unknown", "clock-unverified"]


@dataclass(frozen=True)
class DeadlineFinding:
    """One deadline an operator must act on, in one sentence."""

    kind: DeadlineKind
    message: str


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} hours" if hours >= 2 else f"{max(delta.total_seconds() / 60, 0):.0f} minutes"


def deadline_findings(clock: RevocationClock | None, now: datetime) -> tuple[DeadlineFinding, ...]:
    """The deadline findings for the realm's revocation clock at `now` (none when nothing is revoked).

    window-closing: the reinstatement window closes within WINDOW_WARNING; window-passed: it has
    closed; data-at-risk: the data-at-risk date has passed too (said instead of window-passed, which
    it implies); revoked-at-unknown: keys are disabled and no evidence says since when (fail closed);
    clock-unverified (besides any of those): CloudTrail could not be read in full (`clock_check.CLOCK_UNPROVEN`), so
    the time shown may be later than the real one (status exits 3 for it, as for unreadable evidence).
    """
    if clock is None:
        return ()
    doubt = (
        (
            DeadlineFinding(
                "clock-unverified",
                f"DEADLINE UNVERIFIED: CloudTrail could not confirm the revocation time ({clock.unproven_note}): an "
                "earlier DisableKey may be hidden, so the reinstatement window may close sooner than shown; read "
                "CloudTrail's DisableKey/EnableKey events for the keys.",
            ),
        )
        if clock.unproven_note
        else ()
    )
    return _window_findings(clock, now) + doubt


def _window_findings(clock: RevocationClock, now: datetime) -> tuple[DeadlineFinding, ...]:
    if clock.revoked_at is None or clock.reinstate_until is None or clock.data_at_risk_after is None:
        return (
            DeadlineFinding(
                "revoked-at-unknown",
                "DEADLINE: the keys are disabled and the revocation time is unknown "
                f"({clock.unknown_because()}), so the "
                f"{REINSTATEMENT_WINDOW.days}-day reinstatement window may have closed; "
                "tell Atlassian when it happened.",
            ),
        )
    if now > clock.data_at_risk_after:
        return (
            DeadlineFinding(
                "data-at-risk",
                f"DEADLINE: revoked at {iso(clock.revoked_at)}; the reinstatement window closed "
                f"{iso(clock.reinstate_until)} and data has been at risk since {iso(clock.data_at_risk_after)}; "
                "contact Atlassian support now.",
            ),
        )
    if now > clock.reinstate_until:
        return (
            DeadlineFinding(
                "window-passed",
                f"DEADLINE: the reinstatement window closed {iso(clock.reinstate_until)}; Atlassian may no longer "
                f"reinstate the sites and data is at risk after {iso(clock.data_at_risk_after)}; contact Atlassian "
                "support now.",
            ),
        )
    left = clock.reinstate_until - now
    if left <= WINDOW_WARNING:
        return (
            DeadlineFinding(
                "window-closing",
                f"DEADLINE: the reinstatement window closes {iso(clock.reinstate_until)} (in {_hours(left)}); "
                "restore before then or Atlassian may no longer reinstate the sites.",
            ),
        )
    return ()


def reinstatement_verdict(clock: RevocationClock | None, now: datetime) -> str:
    """What restore can promise, in one sentence: inside, outside or unknown window."""
    if clock is None:
        return "No region is disabled: there is no revocation to come back from."
    inside = clock.within_reinstatement_window(now)
    if inside is None:
        return (
            f"Revocation time unknown ({clock.unknown_because()}): Atlassian reinstates within "
            f"{REINSTATEMENT_WINDOW.days} days of revocation; tell them when it happened."
        )
    if inside:
        return f"INSIDE the {REINSTATEMENT_WINDOW.days}-day reinstatement window: {clock.summary(now)}."
    return (
        f"OUTSIDE the {REINSTATEMENT_WINDOW.days}-day reinstatement window ({clock.summary(now)}): Atlassian may no "
        "longer reinstate the sites; enable the keys anyway and open an Atlassian support ticket asking what can "
        "still be recovered."
    )


def remaining_restore_step(clock: RevocationClock | None, now: datetime, stack: str) -> str:
    """Atlassian's side after the keys are enabled again: reply on the ticket, or, outside the window,
    ask what can still be recovered (Atlassian may no longer reinstate)."""
    if clock is not None and clock.within_reinstatement_window(now) is False:
        return (
            "Remaining step (Atlassian's side, manual): the reinstatement window has passed, so open or update the "
            "Atlassian support ticket saying the keys are enabled again and ask what can still be recovered."
        )
    return f"Remaining step (Atlassian's side, manual): {restore_steps(stack)[1]}."
