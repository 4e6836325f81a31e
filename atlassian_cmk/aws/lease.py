"""Taking, checking and releasing the break-glass lease on the stack's keys (AWS I/O).

The rules (what the tag says, who may break it, why there is no key-policy statement on it) are
`atlassian_cmk.lease`'s; this module only reads and writes the tag. Regions go one after another
in sorted order, never concurrently: two contenders then meet in the same first region. Only
TagResource (with "" to release) and reads are sent: break-glass may not untag (`iam_roles`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from atlassian_cmk.aws.kms_actions import RECORD_NOT_RETRYABLE, RetryPolicy, tag_key
from atlassian_cmk.aws.kms_reads import ClientFactory, describe_error, read_key
from atlassian_cmk.lease import Lease, judge_lease, lease_tag, parse_lease, revoke_since
from atlassian_cmk.live_keys import DeployedState, LiveKey
from atlassian_cmk.naming import (
    TAG_LAST_REVOKE,
    TAG_LEASE,
    TAG_RESTORED_AT,
    TAG_REVOCATION_ID,
    TAG_REVOCATION_TICKET,
    TAG_REVOKED_BY,
    TAG_STACK,
)
from atlassian_cmk.timeline import iso
from atlassian_cmk.workflows.changes import TagChange


@dataclass
class LeaseHold:
    """A lease this run holds, region by region as it was taken (so Ctrl-C mid-way releases what is held).

    `held`: region -> key ID where the key carries this run's lease (read back). `not_held`: regions
    where it could not be written or read (region, reason): there the run is not kept apart from
    another operation, and says so. `broken`: leases this run broke with `--break-lease` (region,
    the lease as it was). `refused`: why the run must change nothing (another operation holds the
    lease, or a key changed since the run read it); empty when the run may go ahead.
    """

    lease: Lease
    client_factory: ClientFactory
    held: dict[str, str] = field(default_factory=dict)
    not_held: list[tuple[str, str]] = field(default_factory=list)
    broken: list[tuple[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    pending: Callable[[], None] = field(default=lambda: None)
    """Waits for lease writes still in flight (revoke's, sent beside DisableKey) before a release, so
    Ctrl-C never releases ahead of a write that then lands and outlives the run."""

    def taken_over(self, key: LiveKey) -> str | None:
        """Why this run must no longer change `key` (read just now, tags included): the lease there is
        not this run's any more (another operation's, or blanked), where this run held it; None: go on.

        For a retried state change (`kms_actions.converge_keys`' `yields_to`): the retry's own fresh
        read carries the lease tag, so the check costs no request. A region where the lease was never
        held (`not_held`) is not judged: there the run is not kept apart, and says so."""
        if self.held.get(key.region) != key.key_id:
            return None
        value = key.tags.get(TAG_LEASE)
        if value == self.lease.tag_value():
            return None
        found = parse_lease(value)
        what = found.describe(datetime.now(UTC)) if found is not None else "blanked by another operation"
        return f"this run's lease there was taken over ({what})"

    def notes(self) -> list[str]:
        """Lines for the operator: leases broken, regions where the lease is not held."""
        lines = [f"LEASE BROKEN in {region} (expired or unreadable): {what}" for region, what in self.broken]
        lines += [
            f"LEASE NOT HELD in {region}: {reason}; this run is not kept apart from another operation there "
            "(the final re-read still names one)"
            for region, reason in self.not_held
        ]
        return lines


@dataclass(frozen=True)
class LeaseRelease:
    """What releasing found: regions released, regions whose lease another operation took or
    blanked meanwhile (region, what is there now), regions where the release failed (region, reason)."""

    released: tuple[str, ...]
    taken_over: tuple[tuple[str, str], ...]
    failed: tuple[tuple[str, str], ...]
    revoked: tuple[str, ...] = ()
    """The taken-over regions where a revocation is what took over (a revoke's lease there, or the key
    no longer Enabled, or unreadable: fail closed). Elsewhere another restore's lease replaced this
    run's, or a restore that then yielded blanked it (both restores want the keys Enabled)."""
    restore_took: tuple[str, ...] = ()
    """The taken-over regions where a restore's unexpired lease stands now: that restore may still
    enable the key after this run's end-state check (what a revoke must not call success)."""

    def notes(self, lease: Lease) -> list[str]:
        lines = [
            f"LEASE TAKEN OVER in {region}: {what}; another operation may have changed the keys during this run: "
            "run `cmkctl status`"
            if region in self.revoked or lease.command != "restore"
            else f"LEASE TAKEN OVER in {region}: {what}; another restore ran at the same time (the key reads "
            "Enabled, as both restores set it)"
            for region, what in self.taken_over
        ]
        lines += [
            f"LEASE NOT RELEASED in {region}: {reason}; it expires at {iso(lease.expires_at)}; "
            f"after that another operator can rerun with --break-lease {lease.lease_id}"
            for region, reason in self.failed
        ]
        return lines


def _tag(kms: Any, key_id: str, value: str, extra: dict[str, str] | None = None) -> None:
    tag_key(kms, key_id, {**lease_tag(value), **(extra or {})})


def _lease_value(kms: Any, key_id: str) -> str | None:
    """The key's lease tag (None: no such tag), from ListResourceTags alone: the lease's reads before
    the write and at release need no DescribeKey, and every request here delays the first DisableKey."""
    marker: dict[str, str] = {}
    while True:
        page = kms.list_resource_tags(KeyId=key_id, **marker)
        for tag in page.get("Tags", []):
            if tag["TagKey"] == TAG_LEASE:
                return str(tag["TagValue"])
        if not page.get("Truncated"):
            return None
        marker = {"Marker": page["NextMarker"]}


def _revocation_named(kms: Any, region: str, key_id: str) -> tuple[str, bool]:
    """(`; the key is Disabled under revocation rev-... by <arn> (ticket T)` when a revocation took over
    (its lease is blanked by the time a restore releases: the record names it), else ""; whether the key
    reads Enabled now: False when it does not or cannot be read)."""
    reading = read_key(kms, region, key_id)
    key = reading.key
    if key is None or key.enabled or not key.tags.get(TAG_REVOCATION_ID):
        return "", key is not None and key.enabled
    return (
        f"; the key is {key.key_state} under revocation {key.tags.get(TAG_REVOCATION_ID)} by "
        f"{key.tags.get(TAG_REVOKED_BY, '?')} (ticket {key.tags.get(TAG_REVOCATION_TICKET, '?')})",
        False,
    )


def _error_code(error: BaseException) -> str:
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _tag_retried(
    kms: Any, key_id: str, value: str, policy: RetryPolicy, extra: dict[str, str] | None = None
) -> None:
    """`_tag` within the run's retry bounds (on top of botocore's); a refusal no retry can cure
    (AccessDenied, the 50-tag limit) is raised at once."""
    for attempt in range(1, policy.attempts + 1):
        try:
            _tag(kms, key_id, value, extra)
            return
        except Exception as error:
            if attempt == policy.attempts or _error_code(error) in RECORD_NOT_RETRYABLE:
                raise
            policy.sleep(policy.backoff_s * attempt)


def _changed_since(before: LiveKey, now: LiveKey, at: datetime) -> str | None:
    """How the key differs from the reading the run planned on (state, the record slot, or the last
    revoke's trace, judged by `lease.revoke_since` as restore's final check judges it), or None.

    The trace (`naming.TAG_LAST_REVOKE`, written by every revoke, also one that disables nothing): a
    revoke that ran between the restore's read and its lease found the keys still Disabled and said
    which record stands (the one the restore read). Restore refuses here, before any EnableKey; were it
    to go on, its final check would meet the trace and disable the keys again under a NEW record (its
    restore record closed the old one), and the id the revoke printed would be on no key
    (bench/bench_races.py, "claimed id != keys' id")."""
    if before.key_state != now.key_state:
        return f"state {before.key_state} -> {now.key_state}"
    ran = revoke_since(before.tags.get(TAG_LAST_REVOKE), now.tags.get(TAG_LAST_REVOKE))
    if ran is not None:
        return f"a cmkctl revoke ran meanwhile: {ran.describe(at)}"
    for tag in (TAG_REVOCATION_ID, TAG_RESTORED_AT):
        if before.tags.get(tag, "") != now.tags.get(tag, ""):
            return f"{tag} {before.tags.get(tag, '')!r} -> {now.tags.get(tag, '')!r}"
    return None


def acquire_lease(
    deployed: DeployedState,
    lease: Lease,
    client_factory: ClientFactory,
    policy: RetryPolicy,
    *,
    now: datetime,
    break_lease: str | None = None,
) -> LeaseHold:
    """Take `lease` on every readable key of `deployed`, region by region in sorted order.

    Per region: read the key; another operation's lease refuses the run (unless it is the expired
    or unreadable lease `break_lease` names: blanked first, and reported); write ours; read it back:
    not ours means another operation won, which refuses the run; a key whose state or record slot
    differs from `deployed` (the reading the run planned on) refuses it too. On refusal the regions
    already taken are released before returning. A write or read that fails for another reason
    (throttling, AccessDenied, the 50-tag limit) leaves that region `not_held` and the run goes on:
    an emergency revoke must not be stopped by the coordination device itself.
    """
    hold = LeaseHold(lease, client_factory)
    mine = lease.tag_value()
    for reading in sorted(deployed.readings, key=lambda r: r.region):
        if reading.key is None or reading.key.tags.get(TAG_STACK) != deployed.stack:
            # Not deployed or unreadable, or not the stack's key (an enrolled ARN outside the realm may be
            # another team's key; the change refuses it too): the run changes nothing there, not even a tag.
            continue
        region, key_id = reading.region, reading.key.key_id
        try:
            kms = client_factory("kms", region)
        except Exception as error:  # noqa: BLE001 - a reason, never a crash
            hold.not_held.append((region, describe_error(error)))
            continue
        try:
            current = _lease_value(kms, key_id)
        except Exception as error:  # noqa: BLE001
            hold.not_held.append((region, f"tags unreadable: {describe_error(error)}"))
            continue
        finding = judge_lease(current, lease, now, break_lease)
        if finding.verdict == "held":
            hold.refused.append(f"{region}: {finding.reason}")
            break
        if finding.verdict == "breakable":
            try:
                _tag(kms, key_id, "")
            except Exception as error:  # noqa: BLE001
                hold.refused.append(f"{region}: could not break the lease: {describe_error(error)}")
                break
            assert finding.found is not None
            hold.broken.append((region, finding.found.describe(now)))
        try:
            _tag_retried(kms, key_id, mine, policy)
        except Exception as error:  # noqa: BLE001
            reason = describe_error(error)
            again = read_key(kms, region, key_id)
            other = judge_lease(again.key.tags.get(TAG_LEASE), lease, now, None) if again.key else None
            if other is not None and other.verdict == "held":
                hold.refused.append(f"{region}: {other.reason}")
                break
            hold.not_held.append((region, f"lease not written: {reason}"))
            continue
        back = read_key(kms, region, key_id)
        if back.key is None:
            hold.held[region] = key_id  # written; released (if still ours) on the way out
            hold.not_held.append((region, f"lease not read back: {back.error or 'key not found'}"))
            continue
        check = judge_lease(back.key.tags.get(TAG_LEASE), lease, now, None)
        if check.verdict != "ours":
            hold.refused.append(f"{region}: {check.reason or 'the lease was blanked while this run took it'}")
            break
        hold.held[region] = key_id
        changed = _changed_since(reading.key, back.key, now)
        if changed is not None:
            hold.refused.append(
                f"{region}: the key changed since this run read it ({changed}): another operation ran meanwhile"
            )
            break
    if hold.refused:
        release_lease(hold)
    return hold


def release_lease(hold: LeaseHold) -> LeaseRelease:
    """Blank the lease in every region where this run holds it, if it is still this run's there.

    Idempotent: a region released (or found taken over) is dropped from `hold.held`; a region whose
    release failed stays, so a later call tries again. Never raises."""
    hold.pending()
    mine = hold.lease.tag_value()
    released: list[str] = []
    taken: list[tuple[str, str]] = []
    failed: list[tuple[str, str]] = []
    revoked: list[str] = []
    restore_took: list[str] = []
    for region, key_id in sorted(hold.held.items()):
        try:
            kms = hold.client_factory("kms", region)
            value = _lease_value(kms, key_id)
            if value != mine:
                found = parse_lease(value)
                now = datetime.now(UTC)
                what = found.describe(now) if found else "the lease was blanked by another operation"
                named, enabled = _revocation_named(kms, region, key_id)
                taken.append((region, f"{what}{named}"))
                if not enabled or not (found is None or (isinstance(found, Lease) and found.command == "restore")):
                    revoked.append(region)
                if isinstance(found, Lease) and found.command == "restore" and not found.expired(now):
                    restore_took.append(region)
            else:
                _tag(kms, key_id, "")
                released.append(region)
        except Exception as error:  # noqa: BLE001 - reported, never raised: the run's own result stands
            failed.append((region, describe_error(error)))
            continue
        del hold.held[region]
    return LeaseRelease(tuple(released), tuple(taken), tuple(failed), tuple(revoked), tuple(restore_took))


def _release_into(hold: LeaseHold, result: list[LeaseRelease]) -> None:
    result.append(release_lease(hold))


def release_within(holds: list[LeaseHold], timeout_s: float) -> list[str]:
    """For the Ctrl-C handler: release `holds`, waiting at most `timeout_s` for each.

    Returns one clause per lease (`lease <id> released` or why not). The release runs on a daemon
    thread, so a hung endpoint cannot keep the process from exiting."""
    said: list[str] = []
    for hold in holds:
        if not hold.held:
            continue
        result: list[LeaseRelease] = []
        worker = threading.Thread(target=_release_into, args=(hold, result), daemon=True)
        worker.start()
        worker.join(timeout_s)
        lease = hold.lease
        if not result:
            said.append(f"lease {lease.lease_id} NOT released (no answer); it expires at {iso(lease.expires_at)}")
        elif result[0].failed or result[0].taken_over:
            said.append(f"lease {lease.lease_id} NOT released everywhere: " + "; ".join(result[0].notes(lease)))
        else:
            said.append(f"lease {lease.lease_id} released")
    return said


# ----------------------------------------------------------------------------- revoke: never waits, takes over


def restore_in_progress(states: Sequence[DeployedState], now: datetime) -> Lease | None:
    """The unexpired lease of a `cmkctl restore` found in the run's first-round reading (the tags are
    already read there: no extra request), or None. Revocation does not wait for it: it takes over."""
    return operation_in_progress(states, now, "restore")


def operation_in_progress(states: Sequence[DeployedState], now: datetime, command: str) -> Lease | None:
    """The first unexpired lease of `command` (revoke/restore) on any key read in `states`, or None."""
    for state in states:
        for key in state.live_keys():
            found = parse_lease(key.tags.get(TAG_LEASE))
            if isinstance(found, Lease) and found.command == command and not found.expired(now):
                return found
    return None


class RevokeLease:
    """Revoke's lease: written on every stack key at once, concurrently with DisableKey (round 2), with the
    revoke's trace `atlassian-cmk:last-revoke` in the same TagResource (every revoke, also one that finds
    every key already disabled),
    without reading first or waiting for anyone (revocation never waits for coordination; a restore
    started later reads it and refuses). Released in the record's own TagResource (`release_tags`),
    so the plain path costs no round trip; what is still held afterwards `hold` releases as any lease.
    """

    def __init__(
        self, states: Sequence[DeployedState], lease: Lease, client_factory: ClientFactory, policy: RetryPolicy
    ) -> None:
        self.hold = LeaseHold(lease, client_factory)
        self._policy = policy
        keys = [
            (reading.region, reading.key.key_id)
            for state in states
            for reading in state.readings
            if reading.key is not None and reading.key.tags.get(TAG_STACK) == state.stack
        ]
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(keys)))
        # Held from the moment the write is sent: a release (the end, an error, Ctrl-C) first waits for it.
        self.hold.held.update({region: key_id for region, key_id in keys})
        self._writes: dict[str, tuple[str, Future[None]]] = {
            key_id: (region, self._pool.submit(self._write, region, key_id)) for region, key_id in keys
        }
        self.hold.pending = self._wait

    def _write(self, region: str, key_id: str) -> None:
        try:
            # Within the run's retry bounds, as restore's lease: a throttled first write is no reason to go unleased.
            # The same TagResource leaves the revoke's trace (`naming.TAG_LAST_REVOKE`), which no release blanks:
            # a restore that re-reads it and finds it changed knows a revoke ran meanwhile and yields.
            value = self.hold.lease.tag_value()
            kms = self.hold.client_factory("kms", region)
            _tag_retried(kms, key_id, value, self._policy, {TAG_LAST_REVOKE: value})
        except Exception as error:
            self.hold.held.pop(region, None)
            self.hold.not_held.append((region, f"lease not written: {describe_error(error)}"))
            raise

    def _wait(self) -> None:
        for _, future in self._writes.values():
            with contextlib.suppress(Exception):  # a failed write is already in `not_held`
                future.result()

    def written(self, key_id: str) -> bool:
        """Wait for the lease write on `key_id` (sent beside its DisableKey, so normally done); True if
        AWS accepted it (the region is then held), else the region is `not_held`."""
        entry = self._writes.get(key_id)
        if entry is None:
            return False
        try:
            entry[1].result()
        except Exception:  # noqa: BLE001 - said in `hold.not_held`; the revoke goes on
            return False
        return True

    def release_tags(self, key_id: str, tags: TagChange) -> TagChange:
        """`tags` (the record this run writes on `key_id`) plus the lease's release, `""`, in the same
        TagResource, once this run's lease write there has landed (never before: a late lease write
        would then outlive the run). A key with no record to write keeps its lease for `finish`."""
        if not tags.put or tags.blocked is not None or not self.written(key_id):
            return tags
        self.hold.held.pop(self._writes[key_id][0], None)
        return dataclasses.replace(tags, put={**tags.put, TAG_LEASE: ""})

    def finish(self) -> LeaseRelease:
        """Wait for every lease write, then release (checked: only where still this run's) what the
        record's TagResource did not."""
        self._pool.shutdown(wait=True)
        return release_lease(self.hold)
