"""Disabling or enabling the CMK keys in every region at once, recording why, and verifying.

Every region runs its own chain (disable or enable, tag, read back) in its own thread, so a
second region costs no extra round trip. A region that fails is retried within a bound and
never rolled back elsewhere: a partial revocation stays partial, is reported as a split,
and converges when the command runs again. Nothing here schedules deletion, cancels it or
touches a key policy (see FORBIDDEN_OPERATIONS); the tests record every operation sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from atlassian_cmk.aws.kms_reads import ClientFactory, describe_error, read_key
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.key_identity import parse_key_arn
from atlassian_cmk.live_keys import DeployedState, LiveKey, RegionReading
from atlassian_cmk.naming import (
    TAG_ENABLED,
    TAG_GUARD_OVERRIDE,
    TAG_RESTORE_TICKET,
    TAG_RESTORED_AT,
    TAG_RESTORED_BY,
    TAG_REVOCATION_REASON,
    TAG_REVOCATION_TICKET,
    TAG_REVOKED_AT,
    TAG_REVOKED_BY,
    TAG_STACK,
)
from atlassian_cmk.timeline import iso

REVOKE_PERMISSIONS: Final = (
    "kms:DescribeKey",
    "kms:ListResourceTags",
    "kms:DisableKey",
    "kms:TagResource",
    "kms:UntagResource",
    "sts:GetCallerIdentity",
)
RESTORE_PERMISSIONS: Final = (
    "kms:DescribeKey",
    "kms:ListResourceTags",
    "kms:EnableKey",
    "kms:TagResource",
    "sts:GetCallerIdentity",
    "cloudtrail:LookupEvents",
)
FORBIDDEN_OPERATIONS: Final = frozenset(
    {"ScheduleKeyDeletion", "CancelKeyDeletion", "PutKeyPolicy", "DeleteAlias", "UpdateAlias", "CreateKey"}
)
"""Operations no cmkctl command sends: deletion is irreversible, and policy or alias changes go through review."""

REVOCATION_RECORD: Final = (
    TAG_REVOKED_AT,
    TAG_REVOCATION_TICKET,
    TAG_REVOCATION_REASON,
    TAG_REVOKED_BY,
    TAG_GUARD_OVERRIDE,
)
"""The tags that say who revoked, when and why; identical in every region once a revoke converges."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a region is tried before it is reported as failed; injectable so tests stay fast.

    These retries wrap botocore's own (standard mode, per request): they repeat the whole
    region chain, e.g. after a region's endpoint came back.
    """

    attempts: int = 3
    backoff_s: float = 1.0
    verify_reads: int = 5
    verify_interval_s: float = 0.5
    max_workers: int | None = None
    """None: one thread per region. 1: region after region, the benchmark's baseline only."""
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)


RegionOutcome = Literal["changed", "unchanged", "failed", "key-lost", "refused", "not-deployed"]


@dataclass(frozen=True)
class RegionChange:
    """What happened in one region, with the key as last read back."""

    region: str
    outcome: RegionOutcome
    detail: str
    attempts: int = 0
    key: LiveKey | None = None

    @property
    def converged(self) -> bool:
        return self.outcome in ("changed", "unchanged")


@dataclass(frozen=True)
class TagChange:
    """Tags to write and tags to remove on one key; empty when the key already says it all."""

    put: Mapping[str, str]
    remove: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.put and not self.remove


TagPlanner = Callable[[LiveKey], TagChange]
"""From the key as it was before the change, the tags that record the change."""

Action = Literal["revoke", "restore"]


@dataclass(frozen=True)
class ChangeReport:
    """The result of a revoke or restore across the realm."""

    action: Action
    caller: str
    at: datetime
    regions: tuple[RegionChange, ...]
    reconciled: tuple[str, ...] = ()

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
        if any(r.outcome == "failed" for r in deployed):
            return ExitCode.SPLIT
        if len(deployed) < len(self.regions):
            return ExitCode.NOT_DEPLOYED
        return ExitCode.AS_DECLARED

    @property
    def converged(self) -> bool:
        return all(r.converged for r in self.regions)

    def record(self) -> dict[str, str] | None:
        """The revocation record the keys agree on (after reconciling), or None."""
        records = {_record_of(r.key) for r in self.regions if r.key is not None and TAG_REVOKED_AT in r.key.tags}
        if len(records) != 1:
            return None
        return {tag: value for tag, value in zip(REVOCATION_RECORD, records.pop(), strict=True) if value}


def revocation_tags(reason: str, ticket: str, caller: str, now: datetime, override: str | None) -> TagPlanner:
    """The revoke's tags: the full record on a key this run disables, never a rewrite of an older one.

    A key already revoked keeps its record (the reinstatement clock runs from the first
    revocation). A key disabled some other way gets reason and ticket but no invented time:
    its clock comes from CloudTrail.
    """

    def plan(before: LiveKey) -> TagChange:
        wanted = {TAG_ENABLED: "false"}
        remove: list[str] = []
        if before.enabled:
            wanted.update(
                {
                    TAG_REVOCATION_REASON: reason,
                    TAG_REVOCATION_TICKET: ticket,
                    TAG_REVOKED_AT: iso(now),
                    TAG_REVOKED_BY: caller,
                }
            )
            if override is not None:
                wanted[TAG_GUARD_OVERRIDE] = override
            stale = (TAG_RESTORED_AT, TAG_RESTORED_BY, TAG_RESTORE_TICKET) + (() if override else (TAG_GUARD_OVERRIDE,))
            remove = [tag for tag in stale if tag in before.tags]
        elif TAG_REVOKED_AT not in before.tags:
            wanted.update({TAG_REVOCATION_REASON: reason, TAG_REVOCATION_TICKET: ticket})
        return TagChange(put=_changed(before, wanted), remove=tuple(remove))

    return plan


def restoration_tags(ticket: str, caller: str, now: datetime) -> TagPlanner:
    """The restore's tags. The revocation record stays on the key as history ("last revoked at");
    the reinstatement clock ignores enabled keys, and the next revoke replaces the record."""

    def plan(before: LiveKey) -> TagChange:
        wanted = {TAG_ENABLED: "true"}
        if not before.enabled:
            wanted.update({TAG_RESTORED_AT: iso(now), TAG_RESTORED_BY: caller, TAG_RESTORE_TICKET: ticket})
        return TagChange(put=_changed(before, wanted))

    return plan


def _changed(before: LiveKey, wanted: Mapping[str, str]) -> dict[str, str]:
    return {tag: value for tag, value in wanted.items() if before.tags.get(tag) != value}


def converge_keys(
    deployed: DeployedState,
    *,
    enable: bool,
    plan_tags: TagPlanner,
    client_factory: ClientFactory,
    policy: RetryPolicy,
) -> tuple[RegionChange, ...]:
    """Bring every region's key to the wanted state, all regions at once; never undo a region."""

    def run(reading: RegionReading) -> RegionChange:
        # Once enrolled, the key is addressed by the enrolled key ID only: never re-found through the alias.
        enrolled = parse_key_arn(reading.enrolled_arn) if reading.enrolled_arn else None
        key_ref = enrolled.key_id if enrolled is not None else deployed.alias
        return _converge_region(reading, deployed.stack, key_ref, enable, plan_tags, client_factory, policy)

    workers = policy.max_workers or max(1, len(deployed.readings))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return tuple(pool.map(run, deployed.readings))


class _RegionFailure(Exception):
    """A step of a region's chain failed; the message is the one-line reason."""


def _converge_region(
    reading: RegionReading,
    stack: str,
    key_ref: str,
    enable: bool,
    plan_tags: TagPlanner,
    client_factory: ClientFactory,
    policy: RetryPolicy,
) -> RegionChange:
    region = reading.region
    before = reading.key
    last_error = reading.error or "not attempted"
    operation = "EnableKey" if enable else "DisableKey"
    for attempt in range(1, policy.attempts + 1):
        try:
            kms = client_factory("kms", region)
            if before is None:
                fresh = read_key(kms, region, key_ref)
                if fresh.error is not None:
                    raise _RegionFailure(fresh.error)
                if fresh.key is None and key_ref.startswith("alias/"):
                    # Before enrollment no key behind the alias is a stack not deployed there yet: nothing
                    # Atlassian holds is lost (a state, not an incident).
                    return RegionChange(
                        region, "not-deployed", f"NOT DEPLOYED: no key behind {key_ref} yet (run `pulumi up`)", attempt
                    )
                if fresh.key is None:
                    return RegionChange(region, "key-lost", f"no key at the enrolled key ID {key_ref}", attempt)
                before = fresh.key
            if before.tags.get(TAG_STACK) != stack:
                # Never change a key that is not the stack's: an enrolledKeys ARN outside the realm, or a key
                # whose stack tag was removed, may be another team's key (moto and the IAM documents aside,
                # the stack tag is the evidence the program wrote at CreateKey).
                found = before.tags.get(TAG_STACK)
                tagged = f"is tagged {TAG_STACK}={found}" if found is not None else f"has no {TAG_STACK} tag"
                return RegionChange(
                    region,
                    "refused",
                    f"REFUSED: {before.arn} {tagged}, not {stack}: cmkctl changes only the stack's keys; "
                    "check Pulumi.<stack>.yaml's enrolledKeys and the key's tags",
                    attempt,
                    before,
                )
            if before.pending_deletion:
                return RegionChange(
                    region,
                    "key-lost",
                    f"{before.arn} is {before.key_state}: run `aws kms cancel-key-deletion --region {region} "
                    f"--key-id {before.key_id}` (the key comes back Disabled), then run cmkctl again",
                    attempt,
                    before,
                )
            tags = plan_tags(before)
            if before.enabled == enable and tags.empty:
                return RegionChange(region, "unchanged", f"already {before.key_state}", attempt, before)
            if before.enabled != enable:
                (kms.enable_key if enable else kms.disable_key)(KeyId=before.key_id)
            if tags.put:
                kms.tag_resource(KeyId=before.key_id, Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.put.items()])
            if tags.remove:
                kms.untag_resource(KeyId=before.key_id, TagKeys=list(tags.remove))
            after = _read_back(kms, region, before.key_id, enable, tags, policy)
            outcome: RegionOutcome = "changed" if before.enabled != enable else "unchanged"
            detail = f"{after.key_state}, verified" + (
                "" if outcome == "changed" else " (state already right; tags updated)"
            )
            return RegionChange(region, outcome, detail, attempt, after)
        except _RegionFailure as error:
            last_error = str(error)
        except Exception as error:  # noqa: BLE001 - any failure is retried, then reported, never raised
            last_error = f"{operation} chain failed: {describe_error(error)}"
        if attempt < policy.attempts:
            policy.sleep(policy.backoff_s * 2 ** (attempt - 1))
    return RegionChange(region, "failed", f"{last_error} (after {policy.attempts} attempts)", policy.attempts, before)


def _read_back(kms: Any, region: str, key_id: str, enable: bool, tags: TagChange, policy: RetryPolicy) -> LiveKey:
    """Read until the key shows the change (KMS is eventually consistent), a bounded number of times."""
    seen = "nothing"
    for read in range(1, policy.verify_reads + 1):
        reading = read_key(kms, region, key_id)
        if reading.key is not None:
            key = reading.key
            if (
                key.enabled == enable
                and all(key.tags.get(tag) == value for tag, value in tags.put.items())
                and not any(tag in key.tags for tag in tags.remove)
            ):
                return key
            seen = key.key_state
        else:
            seen = reading.error or "no key"
        if read < policy.verify_reads:
            policy.sleep(policy.verify_interval_s)
    want = "Enabled" if enable else "Disabled"
    raise _RegionFailure(f"not verified: still {seen} after {policy.verify_reads} reads (want {want} with its tags)")


def _record_order(record: tuple[str, ...]) -> tuple[str, bool, tuple[str, ...]]:
    """Earliest first; within the same second, a record carrying a guard override first (never lose it)."""
    revoked_at, *_rest, override = record
    return revoked_at, not override, record


def _record_of(key: LiveKey) -> tuple[str, ...]:
    return tuple(key.tags.get(tag, "") for tag in REVOCATION_RECORD)


def reconcile_revocation_records(
    changes: tuple[RegionChange, ...], *, client_factory: ClientFactory, policy: RetryPolicy
) -> tuple[tuple[RegionChange, ...], tuple[str, ...]]:
    """Make every revoked region carry the same record: the earliest one.

    Two revokes running at once both disable and both tag; whichever tagged last in a region
    wins there, so the regions can end up with different records. So, once all of this run's
    regions are done (a barrier), each run reads the records again and, if they differ, writes
    the earliest one (ties broken by a recorded override, then ticket, reason, caller) to every
    revoked region. Any run that sees a mix picks the same winner, and the run that wrote
    last reads after every write, so the runs converge on one record.
    """
    revoked = [change for change in changes if change.key is not None and not change.key.enabled]
    if len(revoked) < 2:
        return changes, ()
    workers = policy.max_workers or len(revoked)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        fresh = dict(
            zip((c.region for c in revoked), pool.map(lambda c: _reread(c, client_factory), revoked), strict=True)
        )
    records = {
        region: _record_of(change.key)
        for region, change in fresh.items()
        if change.key is not None and TAG_REVOKED_AT in change.key.tags
    }
    current = tuple(fresh.get(change.region, change) for change in changes)
    if len(set(records.values())) <= 1:
        return current, ()
    winner = min(records.values(), key=_record_order)
    put = {tag: value for tag, value in zip(REVOCATION_RECORD, winner, strict=True) if value}
    remove = [tag for tag, value in zip(REVOCATION_RECORD, winner, strict=True) if not value]
    targets = [change for change in current if change.region in records]

    def align(change: RegionChange) -> RegionChange:
        assert change.key is not None
        key = change.key
        extra = [tag for tag in remove if tag in key.tags]
        last = "not attempted"
        for attempt in range(1, policy.attempts + 1):
            try:
                kms = client_factory("kms", change.region)
                kms.tag_resource(KeyId=key.key_id, Tags=[{"TagKey": k, "TagValue": v} for k, v in put.items()])
                if extra:
                    kms.untag_resource(KeyId=key.key_id, TagKeys=extra)
                tags = {k: v for k, v in {**key.tags, **put}.items() if k not in extra}
                aligned = LiveKey(key.region, key.key_id, key.arn, key.key_state, key.multi_region, tags)
                note = "" if _record_of(key) == winner else "; record aligned with the earliest revocation"
                return RegionChange(change.region, change.outcome, change.detail + note, change.attempts, aligned)
            except Exception as error:  # noqa: BLE001
                last = describe_error(error)
            if attempt < policy.attempts:
                policy.sleep(policy.backoff_s * 2 ** (attempt - 1))
        return RegionChange(
            change.region, change.outcome, change.detail + f"; record not aligned ({last})", change.attempts, key
        )

    with ThreadPoolExecutor(max_workers=policy.max_workers or len(targets)) as pool:
        aligned = {change.region: change for change in pool.map(align, targets)}
    differing = tuple(region for region, record in records.items() if record != winner)
    return tuple(aligned.get(change.region, change) for change in current), differing


def _reread(change: RegionChange, client_factory: ClientFactory) -> RegionChange:
    """The region's tags as they are now (one request); the earlier read-back if that fails."""
    assert change.key is not None
    key = change.key
    try:
        kms = client_factory("kms", change.region)
        tags: dict[str, str] = {}
        request: dict[str, Any] = {"KeyId": key.key_id}
        while True:
            page = kms.list_resource_tags(**request)
            tags.update({t["TagKey"]: t["TagValue"] for t in page.get("Tags", [])})
            if not page.get("Truncated"):
                break
            request["Marker"] = page["NextMarker"]
    except Exception:  # noqa: BLE001 - reconciling is best effort; the state itself is verified
        return change
    fresh = LiveKey(key.region, key.key_id, key.arn, key.key_state, key.multi_region, tags)
    return RegionChange(change.region, change.outcome, change.detail, change.attempts, fresh)
