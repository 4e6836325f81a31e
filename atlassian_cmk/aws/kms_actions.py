"""Disabling or enabling the CMK keys in every region at once, recording why, and verifying.

Every region runs its own chain (disable or enable, tag, read back) in its own thread, so a
second region costs no extra round trip. A region that fails is retried within a bound and
never rolled back elsewhere: a partial revocation stays partial, is reported as a split,
and converges when the command runs again. Nothing here schedules deletion, cancels it or
touches a key policy (see FORBIDDEN_OPERATIONS); the tests record every operation sent.
"""

from __future__ import annotations

import dataclasses
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
    TAG_REVOCATION_ID,
    TAG_REVOCATION_REASON,
    TAG_REVOCATION_TICKET,
    TAG_REVOKED_AT,
    TAG_REVOKED_BY,
    TAG_STACK,
)
from atlassian_cmk.records import (
    REVOCATION_RECORD,
    has_current_revocation,
    is_closed,
    record_order,
    replacement,
    revocation_record,
)
from atlassian_cmk.timeline import iso

REVOKE_PERMISSIONS: Final = (
    "kms:DescribeKey",
    "kms:ListResourceTags",
    "kms:GetKeyPolicy",  # the guard trusts the tags only while the key policy protects them (evidence.py)
    "kms:DisableKey",
    "kms:TagResource",
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


RegionOutcome = Literal[
    "changed", "unchanged", "record-missing", "overtaken", "failed", "key-lost", "refused", "not-deployed"
]
"""`record-missing`: the key is in the wanted state (read back) but the record could not be written.
`overtaken`: the run set the state, and another operation changed it again before the run ended."""

RECORD_NOT_RETRYABLE: Final = frozenset(
    {"AccessDeniedException", "TagException", "LimitExceededException", "ValidationException"}
)
"""Tagging errors a retry cannot cure (a policy refusal, the 50-tag limit): reported at once."""


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
        if any(r.outcome in ("failed", "overtaken") for r in deployed):
            return ExitCode.SPLIT
        if any(r.outcome == "record-missing" for r in deployed):
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


def revocation_tags(
    reason: str,
    ticket: str,
    caller: str,
    now: datetime,
    override: str | None,
    revocation_id: str,
    realm_record: Mapping[str, str] | None = None,
    open_before: Mapping[str, str] | None = None,
) -> TagPlanner:
    """The revoke's tags: one current record per key, never a rewrite of a current one.

    A key that already carries a current record keeps it (the reinstatement clock runs from the
    first revocation). A key without one gets the realm's current record when another region has
    it (`realm_record`: the same incident, e.g. a rerun after a record could not be written),
    else this run's record: with `revoked-at` only where this run disabled the key (a key disabled
    some other way gets no invented time: its clock comes from CloudTrail). An old, restored
    record is replaced whole in one TagResource call (`records.replacement`: absent fields and
    `restored-at` written ""), so a new revoke never inherits an old reason, ticket or time.
    `open_before`: region -> revocation id of the open record each key carried when the run read
    it; such a record is write-once to break-glass, so the region is `record-missing` with why.
    """
    fresh = {
        TAG_REVOCATION_ID: revocation_id,
        TAG_REVOCATION_REASON: reason,
        TAG_REVOCATION_TICKET: ticket,
        TAG_REVOKED_AT: iso(now),
        TAG_REVOKED_BY: caller,
        **({TAG_GUARD_OVERRIDE: override} if override is not None else {}),
    }

    def plan(key: LiveKey, changed: bool) -> TagChange:
        wanted = {TAG_ENABLED: "false"}
        if not has_current_revocation(key.tags):
            record = dict(realm_record) if realm_record else dict(fresh)
            if not realm_record and not changed:
                del record[TAG_REVOKED_AT]
            # One TagResource call, never UntagResource: the key policy lets break-glass write a record
            # only into an empty or closed slot, and a closed one only with `restored-at` blanked.
            wanted.update(replacement(key.tags, record))
        elif changed and key.tags.get(TAG_REVOCATION_ID, "") == (open_before or {}).get(key.region, ""):
            # The open record was on the key before this run disabled it: the key was enabled after it
            # without a restore record (e.g. `pulumi up`). The record is write-once to break-glass
            # (ProtectCmkEvidenceOpenRecord): say so instead of sending a write AWS refuses. (A record
            # that appeared since this run read the key is another operator's revocation of the same
            # moment, written first: it stands, and `reconcile_revocation_records` names it.)
            found = key.tags.get(TAG_REVOCATION_ID) or "without an id"
            return TagChange(
                put=_changed(key, wanted),
                blocked=f"the key still carries the open revocation record {found}, which only the CI apply "
                "role may replace (the key was enabled without `cmkctl restore`); ask for it to be cleared",
            )
        return TagChange(put=_changed(key, wanted))

    return plan


def restoration_tags(ticket: str, caller: str, now: datetime) -> TagPlanner:
    """The restore's tags. The revocation record stays on the key as history ("last revoked at");
    the restore record closes it, so it no longer counts as current. A rerun writes the restore
    record where an earlier restore enabled the key but could not record it (its time is then this
    run's: the restore happened no later)."""

    def plan(key: LiveKey, changed: bool) -> TagChange:
        wanted = {TAG_ENABLED: "true"}
        # A closed record stays closed: the key policy refuses break-glass any rewrite of it
        # (ProtectCmkEvidenceClosedRecordSet); "" is absent (records.py).
        if not is_closed(key.tags) and (changed or has_current_revocation(key.tags)):
            wanted.update({TAG_RESTORED_AT: iso(now), TAG_RESTORED_BY: caller, TAG_RESTORE_TICKET: ticket})
        return TagChange(put=_changed(key, wanted))

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


def _error_code(error: BaseException) -> str:
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _converge_region(
    reading: RegionReading,
    stack: str,
    key_ref: str,
    enable: bool,
    plan_tags: TagPlanner,
    client_factory: ClientFactory,
    policy: RetryPolicy,
) -> RegionChange:
    """One region's chain: state change, read back, record, read back.

    The read-back decides, never the answer to DisableKey/EnableKey: AWS may have processed a request
    whose answer was a 500 or never arrived (a read timeout), or refused one it had already applied.
    The record is written only once the state is verified, and a record that cannot be written
    (AccessDenied, the 50-tag limit) leaves the region `record-missing`, not failed: the key IS in
    the wanted state, and the report must say so.
    """
    region = reading.region
    key = reading.key
    last_error = reading.error or "not attempted"
    operation = "EnableKey" if enable else "DisableKey"
    changed = False
    for attempt in range(1, policy.attempts + 1):
        try:
            kms = client_factory("kms", region)
            if key is None or attempt > 1:
                fresh = read_key(kms, region, key.key_id if key is not None else key_ref)
                if fresh.error is not None:
                    raise _RegionFailure(fresh.error)
                if fresh.key is None and key_ref.startswith("alias/"):
                    # Before enrollment no key behind the alias is a stack not deployed there yet: nothing
                    # Atlassian holds is lost (a state, not an incident).
                    return RegionChange(
                        region, "not-deployed", f"NOT DEPLOYED: no key behind {key_ref} yet (run `pulumi up`)", attempt
                    )
                if fresh.key is None:
                    where = key_ref if key_ref.startswith("alias/") else f"the enrolled key ID {key_ref}"
                    return RegionChange(region, "key-lost", f"no key at {where}", attempt)
                key = fresh.key
            if key.tags.get(TAG_STACK) != stack:
                # Never change a key that is not the stack's: an enrolledKeys ARN outside the realm, or a key
                # whose stack tag was removed, may be another team's key (moto and the IAM documents aside,
                # the stack tag is the evidence the program wrote at CreateKey).
                found = key.tags.get(TAG_STACK)
                tagged = f"is tagged {TAG_STACK}={found}" if found is not None else f"has no {TAG_STACK} tag"
                return RegionChange(
                    region,
                    "refused",
                    f"REFUSED: {key.arn} {tagged}, not {stack}: cmkctl changes only the stack's keys; "
                    "check Pulumi.<stack>.yaml's enrolledKeys and the key's tags",
                    attempt,
                    key,
                )
            if changed and key.enabled != enable:
                # This run's change was verified and something else undid it: another operation.
                # Never fight it with a second DisableKey/EnableKey; name it (two operators at once).
                return _overtaken(region, key, enable, attempt)
            if key.pending_deletion:
                return RegionChange(
                    region,
                    "key-lost",
                    f"{key.arn} is {key.key_state}: run `aws kms cancel-key-deletion --region {region} "
                    f"--key-id {key.key_id}` (the key comes back Disabled), then run cmkctl again",
                    attempt,
                    key,
                )
            if key.enabled != enable:
                answer: str | None = None
                try:
                    (kms.enable_key if enable else kms.disable_key)(KeyId=key.key_id)
                except Exception as error:  # noqa: BLE001 - the read-back decides whether it took effect
                    answer = describe_error(error)
                key = _read_state(kms, region, key.key_id, enable, policy, answer, operation)
                changed = True
            tags = plan_tags(key, changed)
            if tags.empty:
                return _done(region, changed, attempt, key)
            if tags.blocked is not None:
                if tags.put:
                    kms.tag_resource(KeyId=key.key_id, Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.put.items()])
                return _record_missing(kms, region, key, enable, changed, attempt, tags.blocked)
            try:
                # Never UntagResource: the key policy denies it on record tags to all but the apply role.
                if tags.put:
                    kms.tag_resource(KeyId=key.key_id, Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.put.items()])
            except Exception as error:  # noqa: BLE001 - reported with the true state, below
                record_error = describe_error(error)
                if _error_code(error) in RECORD_NOT_RETRYABLE or attempt == policy.attempts:
                    return _record_missing(kms, region, key, enable, changed, attempt, record_error)
                raise _RegionFailure(f"record not written: {record_error}") from None
            after = _read_back(kms, region, key.key_id, enable, tags, policy)
            if after.enabled != enable:
                return _overtaken(region, after, enable, attempt)
            return _done(region, changed, attempt, after)
        except _RegionFailure as error:
            last_error = str(error)
        except Exception as error:  # noqa: BLE001 - any failure is retried, then reported, never raised
            last_error = f"{operation} chain failed: {describe_error(error)}"
        if attempt < policy.attempts:
            policy.sleep(policy.backoff_s * 2 ** (attempt - 1))
    if changed and key is not None and key.enabled == enable:
        return _record_missing(None, region, key, enable, changed, policy.attempts, last_error)
    return RegionChange(region, "failed", f"{last_error} (after {policy.attempts} attempts)", policy.attempts, key)


def _overtaken(region: str, key: LiveKey, enable: bool, attempt: int) -> RegionChange:
    want = "Enabled" if enable else "Disabled"
    detail = f"now {key.key_state} (this run set {want}): another operation changed it meanwhile"
    return RegionChange(region, "overtaken", detail, attempt, key, state_changed=True)


def _done(region: str, changed: bool, attempt: int, key: LiveKey) -> RegionChange:
    outcome: RegionOutcome = "changed" if changed else "unchanged"
    detail = f"{key.key_state}, verified" + ("" if changed else " (state already right; record checked)")
    return RegionChange(region, outcome, detail, attempt, key, changed)


def _record_missing(
    kms: Any, region: str, key: LiveKey, enable: bool, changed: bool, attempt: int, reason: str
) -> RegionChange:
    """The state is right, the record is not: say exactly that, with the key as read back now."""
    if kms is not None:
        reading = read_key(kms, region, key.key_id)
        if reading.key is not None:
            key = reading.key
    want = "Enabled" if enable else "Disabled"
    if key.enabled != enable:  # changed again meanwhile (another operation): not this run's state
        detail = f"now {key.key_state} (want {want}); record not written: {reason}"
        return RegionChange(region, "failed", detail, attempt, key, changed)
    verb = "restored" if enable else "revoked"
    detail = f"access {verb} in {region}; record not written: {reason}"
    return RegionChange(region, "record-missing", detail, attempt, key, changed)


def _read_state(
    kms: Any, region: str, key_id: str, enable: bool, policy: RetryPolicy, answer: str | None, operation: str
) -> LiveKey:
    """Read until the key shows the wanted state (KMS is eventually consistent), a bounded number of times.

    `answer`: the error AWS returned to the state change, if any; the key may still have changed."""
    seen = "nothing"
    for read in range(1, policy.verify_reads + 1):
        reading = read_key(kms, region, key_id)
        if reading.key is not None and reading.key.enabled == enable:
            return reading.key
        seen = reading.key.key_state if reading.key is not None else reading.error or "no key"
        if read < policy.verify_reads:
            policy.sleep(policy.verify_interval_s)
    if answer is not None:
        raise _RegionFailure(f"{operation} failed: {answer}; the key is {seen}")
    want = "Enabled" if enable else "Disabled"
    raise _RegionFailure(f"not verified: still {seen} after {policy.verify_reads} reads (want {want})")


def _read_back(kms: Any, region: str, key_id: str, enable: bool, tags: TagChange, policy: RetryPolicy) -> LiveKey:
    """Read until the key shows the change (KMS is eventually consistent), a bounded number of times."""
    seen = "nothing"
    for read in range(1, policy.verify_reads + 1):
        reading = read_key(kms, region, key_id)
        if reading.key is not None:
            key = reading.key
            if key.enabled != enable:
                return key  # changed again by someone else: the caller names it, never retries over it
            if all(key.tags.get(tag) == value for tag, value in tags.put.items()):
                return key
            seen = key.key_state
        else:
            seen = reading.error or "no key"
        if read < policy.verify_reads:
            policy.sleep(policy.verify_interval_s)
    want = "Enabled" if enable else "Disabled"
    raise _RegionFailure(f"not verified: still {seen} after {policy.verify_reads} reads (want {want} with its tags)")


def reconcile_revocation_records(
    changes: tuple[RegionChange, ...], *, client_factory: ClientFactory, policy: RetryPolicy
) -> tuple[tuple[RegionChange, ...], tuple[str, ...]]:
    """Find the revoked regions that carry ANOTHER revocation's record; never rewrite one.

    Two revokes running at once both disable and both tag. The key policy makes an open record
    write-once to every principal but the CI apply role (`atlassian_cmk.evidence`), so in each
    region the first record written stands and the other run's write was refused (its region is
    `record-missing`). Once all of this run's regions are done (a barrier), the run reads the
    records again; the regions whose current record has another revocation id than the earliest
    one (`records.record_order`) are returned, so the report names them. Aligning them is a
    change to evidence: the apply role's, through the reviewed path.
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
        region: revocation_record(change.key.tags)
        for region, change in fresh.items()
        if change.key is not None and has_current_revocation(change.key.tags)
    }
    current = tuple(fresh.get(change.region, change) for change in changes)
    if len(set(records.values())) <= 1:
        return current, ()
    winner = min(records.values(), key=record_order)
    # Only a record of ANOTHER revocation (another id) means another operator ran at the same time;
    # this run's own record with and without a time (a key it found disabled) is one revocation.
    index = REVOCATION_RECORD.index(TAG_REVOCATION_ID)
    differing = tuple(region for region, record in records.items() if record[index] != winner[index])
    return current, differing


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
    return dataclasses.replace(change, key=fresh)


def confirm_final_state(
    changes: tuple[RegionChange, ...], *, enable: bool, client_factory: ClientFactory, policy: RetryPolicy
) -> tuple[RegionChange, ...]:
    """Read every converged region once more, after all of them are done, and compare with what was set.

    Two operators at once (a revoke and a restore) can each verify its own write and still leave
    the realm split: the slower one's write lands after the other's read-back. This last read,
    taken after this run's last write, catches a region another operation changed meanwhile; such
    a region becomes `overtaken`, with the key as read now (its tags name the other operation).
    """
    targets = [change for change in changes if change.converged and change.key is not None]
    if not targets:
        return changes

    def reread(change: RegionChange) -> RegionChange:
        assert change.key is not None
        try:
            reading = read_key(client_factory("kms", change.region), change.region, change.key.key_id)
        except Exception:  # noqa: BLE001 - the run's own read-back stands when this read fails
            return change
        if reading.key is None:
            return change
        if reading.key.enabled == enable:
            return dataclasses.replace(change, key=reading.key)
        overtaken = _overtaken(change.region, reading.key, enable, change.attempts)
        return dataclasses.replace(overtaken, state_changed=change.state_changed)

    with ThreadPoolExecutor(max_workers=policy.max_workers or len(targets)) as pool:
        fresh = {change.region: change for change in pool.map(reread, targets)}
    return tuple(fresh.get(change.region, change) for change in changes)
