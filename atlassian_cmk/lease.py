"""The break-glass lease: which operation may change the stack's keys right now (pure rules, no AWS).

Two break-glass operations on one stack (a `cmkctl revoke` and a `cmkctl restore`, two operators,
two machines) must not interleave: a restore that runs while a slow revoke is still converging
leaves one region disabled and the other enabled, and both commands believe they succeeded.
KMS has no compare-and-set, so the lease is a tag on the keys, `atlassian-cmk:lease`, with one
value per key:

    lease-20310301T120000Z-3f9a1c2b revoke SEC-1234 2031-03-01T12:10:00Z arn:aws:sts::...:assumed-role/...

(lease id, which holds the acquisition time; command; ticket; expiry; holder).

Revocation never waits for coordination; restore yields (docs/cmkctl.md, "The lease"). restore
(`atlassian_cmk.aws.lease.acquire_lease`): after the operator confirmed and before EnableKey, in
every region in sorted order, read the key's tags; refuse if another unexpired lease is there;
write ours; read it back and refuse if it is not ours; release after the verification by writing
"" (break-glass may not untag: `iam_roles`), also on failure and on Ctrl-C. Sorted order makes two
restores meet in the same first region. revoke (`atlassian_cmk.aws.lease.RevokeLease`) reads no
lease before acting (its first round's tags already hold it), writes its own beside DisableKey,
and releases it in the record's TagResource: a restore started meanwhile refuses, a restore
already running is taken over (and yields, exit 2).

What remains racy, honestly: KMS tags are last-writer-wins and the read-back is the only arbiter.
Two operations that both read "no lease" before either write lands, and where one reads back
before the other writes, both proceed: a window of about one round trip (tens of milliseconds).
A key-policy Deny on writing the lease while one is present (`aws:ResourceTag/...`) cannot close
it: "It might take up to five minutes for tag and alias changes to affect KMS key authorization.
Recent changes might be visible in API operations before they affect authorization." (AWS KMS
Developer Guide, "Use tags to control access to KMS keys"). The same lag would refuse every
legitimate acquisition for up to five minutes after a release (a restore right after a revoke,
the drill), so the key policy has no such statement. What still catches the residual race: the
holder checks at release that the lease is still its own (else it names the operation that took
it over: exit 2 when a revocation did; another restore wanted the keys Enabled too, which the end
check judged, so that is a note), a restore's retried EnableKey first checks on the retry's own read
that the lease is still its own (`aws.lease.LeaseHold.taken_over`), and revoke/restore re-read every
region at the end (exit 2, naming the other operation's record).

The lease alone cannot keep a revoke from being lost: a revoke whose lease a restore overwrites (or that
releases before the restore's EnableKey lands) leaves no lease to see. So every revoke also writes
`atlassian-cmk:last-revoke` (its lease value, `naming.TAG_LAST_REVOKE`) in the same TagResource, and nothing
blanks it: a restore compares it with its first read before a retried EnableKey and at its final check
(`revoke_since`), and yields when it changed; a revoke's final check disables again any key it finds
Enabled. The order argument is in docs/cmkctl.md, "Two operators at once".

The lease is coordination between honest operators, not a security boundary: anyone allowed to
call DisableKey can do so without it. It does not block the reviewed path: `pulumi up` neither
reads nor writes it (the provider ignores it: `naming.RECORD_TAGS`).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from atlassian_cmk.config import TAG_VALUE_MAX, shorten
from atlassian_cmk.naming import TAG_LEASE
from atlassian_cmk.timeline import CLOCK_SKEW, iso, parse_iso

LEASE_TTL: Final = timedelta(minutes=10)
"""How long a lease holds without its holder. The lease is taken after the confirmation prompt, so it
covers only the change and its verification (seconds; at most about two minutes against a failing
region: botocore's timeouts and retries times cmkctl's own). A crashed operation blocks others at
most this long; before that, `--break-lease` cannot break it (the holder may still be changing keys)."""

LEASE_CLOCK_SKEW: Final = CLOCK_SKEW
"""How far two operators' clocks may disagree (`timeline.CLOCK_SKEW`, the one bound). Expiry is judged on
the breaker's clock, so a lease whose
expiry lies more than `LEASE_TTL + LEASE_CLOCK_SKEW` in the breaker's future was not written by a cmkctl on
a sane clock (cmkctl writes `acquired + LEASE_TTL`) and counts as expired: without this bound a lease
tagged `... 2099-01-01T00:00:00Z ...` (a wrong clock, a hand edit, a hostile break-glass holder) would
block every restore forever."""

LEASE_ID_PREFIX: Final = "lease-"

Command = Literal["revoke", "restore"]


def new_lease_id(now: datetime) -> str:
    """`lease-20310301T120000Z-3f9a1c2b`: the acquisition time (UTC) and 32 random bits."""
    return f"{LEASE_ID_PREFIX}{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Lease:
    """One operation's lease as the tag holds it. Times are UTC; `holder` is the caller ARN."""

    lease_id: str
    command: str
    ticket: str
    expires_at: datetime
    holder: str

    @property
    def acquired_at(self) -> datetime | None:
        """From the id (`lease-<yyyymmddThhmmssZ>-...`); None if the id does not carry a time."""
        stamp = self.lease_id.removeprefix(LEASE_ID_PREFIX).split("-", 1)[0]
        try:
            return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return None

    def beyond_bound(self, now: datetime) -> bool:
        """Whether the expiry is not one cmkctl writes: later than the acquired time (from the id) plus
        `LEASE_TTL`, or more than `LEASE_TTL + LEASE_CLOCK_SKEW` after `now` (the breaker's clock)."""
        acquired = self.acquired_at
        if acquired is not None and self.expires_at > acquired + LEASE_TTL:
            return True
        return self.expires_at - now > LEASE_TTL + LEASE_CLOCK_SKEW

    def expired(self, now: datetime) -> bool:
        """True once the written expiry has passed, once the acquired time plus `LEASE_TTL` has passed
        (whatever expiry was written), or when the expiry is beyond that bound (`beyond_bound`): no lease
        holds longer than `LEASE_TTL` (plus the clock-skew allowance), so `--break-lease` can always end it."""
        acquired = self.acquired_at
        if now >= self.expires_at or (acquired is not None and now >= acquired + LEASE_TTL):
            return True
        return self.beyond_bound(now)

    def tag_value(self) -> str:
        """The tag value, at most 256 characters (KMS's limit): ticket and holder are shortened if
        they must be (the full caller is in the TagResource event in CloudTrail)."""
        head = f"{self.lease_id} {self.command}"
        ticket, holder = self.ticket, self.holder
        room = TAG_VALUE_MAX - len(head) - len(iso(self.expires_at)) - 3
        if len(ticket) + len(holder) > room:
            ticket = _cut(ticket, max(8, room // 3))
            holder = _cut(holder, room - len(ticket))
        return f"{head} {ticket} {iso(self.expires_at)} {holder}"

    def describe(self, now: datetime) -> str:
        """`cmkctl revoke by <holder> under SEC-1 since <t> (lease <id>, expires <t>)`, for messages."""
        since = self.acquired_at
        if self.beyond_bound(now):
            bound = int(LEASE_TTL.total_seconds() // 60)
            expiry = f"expiry {iso(self.expires_at)} beyond the {bound}-minute lease bound, so expired"
        else:
            expiry = f"{'expired' if self.expired(now) else 'expires'} {iso(self.expires_at)}"
        return (
            f"cmkctl {self.command} by {self.holder} under {self.ticket}"
            f"{f' since {iso(since)}' if since else ''} (lease {self.lease_id}, {expiry})"
        )


def _cut(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, `..` marking a cut (no space: the value splits on spaces)."""
    return text if len(text) <= limit else f"{text[: limit - 2]}.."


def new_lease(command: Command, ticket: str, holder: str, now: datetime) -> Lease:
    """This run's lease: expires `LEASE_TTL` after `now`."""
    return Lease(new_lease_id(now), command, ticket, now + LEASE_TTL, holder)


@dataclass(frozen=True)
class UnreadableLease:
    """A lease tag that is not in the format above (another tool, a hand edit): held by someone
    unknown, with no expiry anyone can trust. `--break-lease <first word>` breaks it."""

    value: str

    @property
    def lease_id(self) -> str:
        return self.value.split(" ", 1)[0]

    def expired(self, now: datetime) -> bool:
        return True  # nobody can say when it ends; only an explicit --break-lease removes it

    def describe(self, now: datetime) -> str:
        return f"an unreadable lease {shorten(self.value)!r} (not written by cmkctl; id {shorten(self.lease_id)})"


FoundLease = Lease | UnreadableLease


def parse_lease(value: str | None) -> FoundLease | None:
    """The lease a key's tag value holds; None when the key has none ("" is a released lease)."""
    if not value:
        return None
    parts = value.split(" ", 4)
    if len(parts) == 5 and parts[0].startswith(LEASE_ID_PREFIX):
        lease_id, command, ticket, expires, holder = parts
        expires_at = parse_iso(expires)
        if expires_at is not None and command in ("revoke", "restore"):
            return Lease(lease_id, command, ticket, expires_at, holder)
    return UnreadableLease(value)


# ----------------------------------------------------------------------------- what a key's lease means to this run

LeaseVerdict = Literal["free", "ours", "held", "breakable"]


@dataclass(frozen=True)
class LeaseFinding:
    """What one key's lease tag means to a run holding `mine`.

    `free`: no lease (or ""); `ours`: exactly this run's value; `held`: another operation's lease the
    run must respect (unexpired, or not named by `--break-lease`); `breakable`: another lease the
    operator named with `--break-lease` that has expired (or is unreadable): the run may blank it.
    `found` is the other lease, `reason` the one line for the operator (None when free or ours).
    """

    verdict: LeaseVerdict
    found: FoundLease | None = None
    reason: str | None = None


def judge_lease(value: str | None, mine: Lease, now: datetime, break_lease: str | None) -> LeaseFinding:
    """Judge a key's `atlassian-cmk:lease` value (None: no tag) for the run holding `mine`."""
    found = parse_lease(value)
    if found is None:
        return LeaseFinding("free")
    if value == mine.tag_value():
        return LeaseFinding("ours", found)
    described = found.describe(now)
    if break_lease is not None and found.lease_id == break_lease:
        if found.expired(now):
            return LeaseFinding("breakable", found, f"breaking {described}")
        return LeaseFinding(
            "held",
            found,
            f"another operation holds the lease: {described}; it has not expired, so --break-lease cannot break "
            "it: wait for that operation (or until it expires), then run `cmkctl status`",
        )
    advice = (
        f"if that operation is gone, break it: rerun with --break-lease {shorten(found.lease_id)}"
        if found.expired(now)
        else "wait for it to finish, then run `cmkctl status` and decide again"
    )
    return LeaseFinding("held", found, f"another operation holds the lease: {described}; {advice}")


LEASE_ID_RE: Final = re.compile(r"\A[A-Za-z0-9_.:/=+\-@]{1,256}\Z")


def lease_id_problem(text: str) -> str | None:
    """Why `text` cannot be a lease id for `--break-lease` (the first word of the lease the refusal names)."""
    if LEASE_ID_RE.match(text):
        return None
    return "allowed: the lease id a refusal names, e.g. lease-20310301T120000Z-3f9a1c2b (one word, at most 256)"


def lease_tag(value: str) -> dict[str, str]:
    """The one-tag TagResource payload that writes (or, with "", releases) a lease."""
    return {TAG_LEASE: value}


# ----------------------------------------------------------------------------- the last revoke's trace


def revoke_since(first: str | None, now: str | None) -> FoundLease | None:
    """The revoke that ran on a key since a run first read it: its `atlassian-cmk:last-revoke` value
    (`naming.TAG_LAST_REVOKE`, the lease's format) as read `now`, when it differs from the `first` read;
    None when it is unchanged (None and "" are both "no trace"). A trace blanked since the first read
    (no cmkctl writes that) is unknown, so it counts as a revoke too (fail closed: the restore yields)."""
    if (now or "") == (first or ""):
        return None
    return parse_lease(now) or UnreadableLease(now or "(the trace was blanked)")
