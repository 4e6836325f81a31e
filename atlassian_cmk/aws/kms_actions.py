"""Disabling or enabling the CMK keys in every region at once, recording why, and verifying.

Every region runs its own chain (disable or enable, tag, read back) in its own thread, so a
second region costs no extra round trip. A region that fails is retried within a bound and
never rolled back elsewhere: a partial revocation stays partial, is reported as a split,
and converges when the command runs again. Nothing here schedules deletion, cancels it or
touches a key policy (see FORBIDDEN_OPERATIONS); the tests record every operation sent.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from atlassian_cmk.aws.kms_reads import ClientFactory, describe_error, read_key
from atlassian_cmk.key_identity import parse_key_arn
from atlassian_cmk.live_keys import DeployedState, LiveKey, RegionReading
from atlassian_cmk.naming import (
    TAG_LEASE,
    TAG_REVOCATION_ID,
    TAG_STACK,
)
from atlassian_cmk.records import (
    REVOCATION_RECORD,
    current_realm_record,
    has_current_revocation,
    record_order,
    replacement,
    revocation_record,
)
from atlassian_cmk.workflows.changes import RegionChange, RegionOutcome, TagChange, TagPlanner

REVOKE_PERMISSIONS: Final = (
    "kms:DescribeKey",
    "kms:ListResourceTags",
    "kms:GetKeyPolicy",  # the guard trusts the tags only while the key policy protects them (evidence.py)
    "kms:ListKeys",  # only when a generation's alias names no key: is one tagged as it there? (workflows/revoke.py)
    "kms:DisableKey",
    "kms:TagResource",
    "sts:GetCallerIdentity",
)
RESTORE_PERMISSIONS: Final = (
    "kms:DescribeKey",
    "kms:ListResourceTags",
    "kms:EnableKey",
    "kms:DisableKey",  # only to yield: a revoke ran meanwhile, its keys are disabled again (workflows/restore.py)
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


RECORD_NOT_RETRYABLE: Final = frozenset(
    {"AccessDeniedException", "TagException", "LimitExceededException", "ValidationException"}
)
"""Tagging errors a retry cannot cure (a policy refusal, the 50-tag limit): reported at once."""


def converge_keys(
    deployed: DeployedState,
    *,
    enable: bool,
    plan_tags: TagPlanner,
    client_factory: ClientFactory,
    policy: RetryPolicy,
    yields_to: Callable[[LiveKey], str | None] | None = None,
) -> tuple[RegionChange, ...]:
    """Bring every region's key to the wanted state, all regions at once; never undo a region.

    `yields_to(key)`: asked before a RETRIED DisableKey/EnableKey, on the key as the retry just read it
    (tags included, so no extra request): why this run must not change it any more (restore's lease
    taken over by a revoke: `aws.lease.LeaseHold.taken_over`), or None. A reason makes the region
    `overtaken` without the request."""

    def run(reading: RegionReading) -> RegionChange:
        # Once enrolled, the key is addressed by the enrolled key ID only: never re-found through the alias.
        enrolled = parse_key_arn(reading.enrolled_arn) if reading.enrolled_arn else None
        key_ref = enrolled.key_id if enrolled is not None else deployed.alias
        return _converge_region(reading, deployed.stack, key_ref, enable, plan_tags, client_factory, policy, yields_to)

    workers = policy.max_workers or max(1, len(deployed.readings))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return tuple(pool.map(run, deployed.readings))


def tag_key(kms: Any, key_id: str, tags: Mapping[str, str]) -> None:
    """One TagResource writing `tags` (key -> value; "" is how this project blanks a tag: never UntagResource,
    which the key policy denies to break-glass on record tags)."""
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()])


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
    yields_to: Callable[[LiveKey], str | None] | None = None,
) -> RegionChange:
    """One region's chain: state change, read back, record, read back.

    The read-back decides, never the answer to DisableKey/EnableKey: AWS may have processed a request
    whose answer was a 500 or never arrived (a read timeout), or refused one it had already applied.
    The record is written only once AWS accepted the state change (its success answer) or a read-back
    shows it after an error answer, and a revoke's record is planned on the key's tags as read after that
    (`_reread_before_record`: another revoke may have recorded meanwhile); one read-back then verifies
    state and record, and a record that cannot be written
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
                    f"REFUSED: the key {tagged}, not {stack}: cmkctl changes only the stack's keys; "
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
                    f"the key is {key.key_state}: run `aws kms cancel-key-deletion --region {region} "
                    f"--key-id {key.key_id}` (the key comes back Disabled), then run cmkctl again",
                    attempt,
                    key,
                )
            verified = True
            if key.enabled != enable and attempt > 1 and yields_to is not None:
                # A retry re-read the key (above): if another operation took this run's lease meanwhile
                # (a revoke taking over a restore), its change stands; never send ours again over it.
                yielded = yields_to(key)
                if yielded is not None:
                    want = "Enabled" if enable else "Disabled"
                    detail = f"{key.key_state}, not {want}: {yielded}; {operation} not sent again"
                    return RegionChange(region, "overtaken", detail, attempt, key, state_changed=changed)
            if key.enabled != enable:
                answer: str | None = None
                try:
                    (kms.enable_key if enable else kms.disable_key)(KeyId=key.key_id)
                except Exception as error:  # noqa: BLE001 - the read-back decides whether it took effect
                    answer = describe_error(error)
                if answer is None:
                    # AWS accepted the change: the record follows (a revoke's after reading the tags again,
                    # below) and ONE read-back verifies state and record together (a round trip saved on the
                    # emergency's critical path).
                    key = dataclasses.replace(key, key_state="Enabled" if enable else "Disabled")
                    verified = False
                else:
                    # An error answer may still have been applied (a 500 after processing, a read timeout):
                    # the read-back decides, before any record is written.
                    key = _read_state(kms, region, key.key_id, enable, policy, answer, operation)
                changed = True
                if not enable and answer is None:
                    # A revoke's record is planned on the tags as they are now (`_read_state` just read them
                    # after an error answer): another revoke may have recorded since this run's first read.
                    key = _reread_before_record(kms, region, key)
            tags = plan_tags(key, changed)
            if tags.empty:
                if not verified:
                    key = _read_state(kms, region, key.key_id, enable, policy, None, operation)
                return _done(region, changed, attempt, key)
            if tags.blocked is not None:
                if tags.put:
                    tag_key(kms, key.key_id, tags.put)
                return _record_missing(kms, region, key, enable, changed, attempt, tags.blocked)
            try:
                # Never UntagResource: the key policy denies it on record tags to all but the apply role.
                if tags.put:
                    tag_key(kms, key.key_id, tags.put)
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
    return RegionChange(region, "failed", with_attempts(last_error, policy.attempts), policy.attempts, key)


_BOTOCORE_RETRIES: Final = re.compile(r" after (\d+) attempts(?=;|$)")


def with_attempts(reason: str, attempts: int) -> str:
    """`reason` with how often the region's chain was tried, said once: an AWS error already ending in
    botocore's own count (`kms_reads.describe_error`: " after N attempts", HTTP requests of one call)
    says both counts in one parenthesis instead of "after N attempts (after M attempts)". The count may
    end the AWS error inside a longer reason ("DisableKey failed: <error> after 3 attempts; the key is
    Enabled", from `_read_state`): it is taken out there and said once, at the end."""
    retried = _BOTOCORE_RETRIES.search(reason)
    if retried is None:
        return f"{reason} (after {attempts} attempts)"
    rest = reason[: retried.start()] + reason[retried.end() :]
    return f"{rest} (after {attempts} attempts of up to {retried.group(1)} requests each)"


def _reread_before_record(kms: Any, region: str, disabled: LiveKey) -> LiveKey:
    """The key as read now, in the state AWS just accepted (Disabled), for a revoke's record (issue 12).

    The record must be planned on the tags as they are when it is written, not at the run's first read:
    another revoke of the same moment may have written its record since (its DisableKey was not held),
    and a TagResource planned on the first read would overwrite that open record in every region, so
    the id the other run printed at its end would be on no key. The key policy's write-once Deny on an
    open record (`evidence.key_policy_evidence_statements`) keys on `aws:ResourceTag`, which "might take
    up to five minutes" to affect authorization (AWS KMS Developer Guide, "Use tags to control access to
    KMS keys"), so AWS does not refuse that overwrite in time. Planned on this reading, the other record
    is kept (`record_plan.revocation_tags` never rewrites an open record) and `settle` names it.

    The state stays the one AWS accepted: KMS is eventually consistent, so DescribeKey may still say
    Enabled; the read-back after the record verifies the state. A key that cannot be read again fails
    the attempt (retried: the retry reads the key anyway), never a record planned on old tags."""
    reading = read_key(kms, region, disabled.key_id)
    if reading.key is None:
        raise _RegionFailure(f"the key could not be read again before its record: {reading.error or 'no key found'}")
    return dataclasses.replace(reading.key, key_state=disabled.key_state)


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
    other: LiveKey | None = None
    for read in range(1, policy.verify_reads + 1):
        reading = read_key(kms, region, key_id)
        if reading.key is not None:
            key = reading.key
            # Not the lease's release: a restore may take the lease the moment revoke released it; that is
            # no failure of this run's record (and retrying would overwrite the restore's lease).
            if key.enabled == enable and all(
                key.tags.get(tag) == value for tag, value in tags.put.items() if tag != TAG_LEASE
            ):
                return key
            # Not (yet) in the wanted state: KMS is eventually consistent, so read again; still not
            # after the bound, another operation changed it (the caller names it, never retries over it).
            other = key if key.enabled != enable else None
            seen = key.key_state
        else:
            seen = reading.error or "no key"
        if read < policy.verify_reads:
            policy.sleep(policy.verify_interval_s)
    if other is not None:
        return other
    want = "Enabled" if enable else "Disabled"
    raise _RegionFailure(f"not verified: still {seen} after {policy.verify_reads} reads (want {want} with its tags)")


def settle(
    changes: tuple[RegionChange, ...], *, enable: bool, client_factory: ClientFactory, policy: RetryPolicy
) -> tuple[tuple[RegionChange, ...], tuple[str, ...]]:
    """After every region's chain is done (a barrier): read each converged key once more, all at once.

    One round trip answers two questions. **Did another operation change a region meanwhile?** Two
    operators at once (a revoke and a restore) can each verify their own write and still leave the
    realm split: the slower one's write lands after the other's read-back. A region whose state is no
    longer what this run set becomes `overtaken`, with the key as read now (its tags name the other
    operation). **Does another revocation's record stand somewhere?** (revoke only) Two revokes at
    once both disable and both tag, each region's record in its own TagResource. Tags are
    last-writer-wins, and the key policy's write-once Deny on an open record
    (`atlassian_cmk.evidence`) keys on `aws:ResourceTag`, which "might take up to five minutes" to
    affect authorization (AWS KMS Developer Guide, "Use tags to control access to KMS keys"): within
    a race either run's write may land last in either region, so the realm can end with run 1's id in
    one region and run 2's in another. The rule: **the earliest record stands in every region**
    (`records.record_order`; the reinstatement clock then never starts later than the first
    revocation). A run that finds a mix writes the earliest record over the other one, once, in
    those regions (`_align_records`), and reads them again. The labels (`RegionChange.label`) of the
    keys that still carry another revocation id (the write-once Deny refused the alignment) are
    returned, so the report names them and the exit code says it (9).
    """
    targets = [index for index, change in enumerate(changes) if change.converged and change.key is not None]
    if not targets:
        return changes, ()

    def reread(change: RegionChange) -> RegionChange:
        assert change.key is not None
        try:
            reading = read_key(client_factory("kms", change.region), change.region, change.key.key_id)
        except Exception as error:  # noqa: BLE001 - said in the region's outcome
            return _unverified(change, describe_error(error))
        if reading.key is None:
            # Never the run's own earlier read-back instead: it may predate the other operation this check is
            # for (a revoke after a restore's read-back), and the run would claim a state nobody verified.
            return _unverified(change, reading.error or "no key found")
        if reading.key.enabled == enable:
            return dataclasses.replace(change, key=reading.key)
        overtaken = _overtaken(change.region, reading.key, enable, change.attempts)
        return dataclasses.replace(overtaken, state_changed=change.state_changed, generation=change.generation)

    with ThreadPoolExecutor(max_workers=policy.max_workers or len(targets)) as pool:
        fresh = dict(zip(targets, pool.map(reread, [changes[index] for index in targets]), strict=True))
    settled = tuple(fresh.get(index, change) for index, change in enumerate(changes))
    if enable or not _other_records(settled):
        return settled, ()
    aligned = _align_records(settled, client_factory, policy)
    return aligned, _other_records(aligned)


def _unverified(change: RegionChange, reason: str) -> RegionChange:
    assert change.key is not None
    detail = (
        f"{change.key.key_state} at this run's read-back, but the final check could not read the key ({reason}): "
        "another operation may have changed it since"
    )
    return dataclasses.replace(change, outcome="unverified", detail=detail)


def _other_records(changes: tuple[RegionChange, ...]) -> tuple[str, ...]:
    """Labels of the disabled keys whose current record has another revocation id than the earliest
    record on the keys (`records.record_order`). Only a record of ANOTHER revocation (another id) means
    another operator ran at the same time; this run's own record with and without a time (a key it
    found disabled) is one revocation."""
    records = {
        change.label: revocation_record(change.key.tags)
        for change in changes
        if change.key is not None and not change.key.enabled and has_current_revocation(change.key.tags)
    }
    if len(set(records.values())) <= 1:
        return ()
    winner = min(records.values(), key=record_order)
    index = REVOCATION_RECORD.index(TAG_REVOCATION_ID)
    return tuple(label for label, record in records.items() if record[index] != winner[index])


def _align_records(
    changes: tuple[RegionChange, ...], client_factory: ClientFactory, policy: RetryPolicy
) -> tuple[RegionChange, ...]:
    """Write the earliest record (`records.current_realm_record`) over another revocation's on the keys
    that carry one, all at once, one TagResource each (never UntagResource: fields the earliest record
    lacks are written ""), then read them again. Once, never a loop; a write AWS refuses (the
    write-once Deny already in effect for the other record) leaves the key as it is, and its label
    stays in `_other_records` for the report."""
    winner = current_realm_record(
        change.key.tags
        for change in changes
        if change.key is not None and not change.key.enabled and has_current_revocation(change.key.tags)
    )
    assert winner is not None  # _other_records found at least two records
    winner_id = winner.get(TAG_REVOCATION_ID, "")
    others = set(_other_records(changes))

    def align(change: RegionChange) -> RegionChange:
        if change.label not in others or change.key is None:
            return change
        key = change.key
        replaced = key.tags.get(TAG_REVOCATION_ID) or "a record without an id"
        try:
            kms = client_factory("kms", change.region)
            put = replacement(key.tags, winner)
            tag_key(kms, key.key_id, put)
        except Exception as error:  # noqa: BLE001 - reported: the region keeps the other record
            detail = f"{change.detail}; record {replaced} not aligned to {winner_id}: {describe_error(error)}"
            return dataclasses.replace(change, detail=detail)
        reading = read_key(kms, change.region, key.key_id)
        detail = (
            f"{change.detail}; record aligned: {replaced} (another revoke at the same time) replaced by "
            f"{winner_id}, the earliest"
        )
        return dataclasses.replace(change, key=reading.key or key, detail=detail)

    with ThreadPoolExecutor(max_workers=policy.max_workers or len(changes)) as pool:
        return tuple(pool.map(align, changes))
