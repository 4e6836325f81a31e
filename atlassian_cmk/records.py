"""The break-glass record on a key: which revocation is current, and what a run must (re)write.

A key carries at most one revocation record (revocation id, reason, ticket, revoked-at/-by,
guard override) and, once restored, the restore record (restored-at/-by, restore ticket). The
revocation record stays on a restored key as history; it is *current* only while no restore
record follows it. So an old, restored incident never counts as the current one: not for the
reinstatement clock, not as a record a new revoke would copy.

The key policy (`atlassian_cmk.evidence.key_policy_evidence_statements`) lets nobody but the apply
role untag a record field, so a field is cleared by writing "" and every reader here treats "" as
absent. An open record is write-once; a closed one is replaced only in one TagResource call that
writes the new revocation id and blanks `restored-at` (`replacement`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Final

from atlassian_cmk.evidence import RESTORATION_RECORD_TAGS, REVOCATION_RECORD_TAGS
from atlassian_cmk.lease import LEASE_TTL
from atlassian_cmk.naming import (
    TAG_ENABLED,
    TAG_GUARD_OVERRIDE,
    TAG_RESTORE_TICKET,
    TAG_RESTORED_AT,
    TAG_REVOCATION_ID,
    TAG_REVOCATION_REASON,
    TAG_REVOCATION_TICKET,
    TAG_REVOKED_AT,
)
from atlassian_cmk.timeline import parse_iso

REVOCATION_RECORD: Final = (TAG_REVOKED_AT, *(tag for tag in REVOCATION_RECORD_TAGS if tag != TAG_REVOKED_AT))
"""The tags that say which revocation, who, when and why (the slot `atlassian_cmk.evidence` defines and the
key policy protects), identical in every region once a revoke converges. `revoked-at` first: records
order by time, then by their unique revocation id."""

RESTORE_RECORD: Final = RESTORATION_RECORD_TAGS


def new_revocation_id(now: datetime) -> str:
    """`rev-20310301T120000Z-3f9a1c`: sortable by time, unique across operators (24 random bits)."""
    return f"rev-{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def present(tags: Mapping[str, str], tag: str) -> bool:
    """Whether the key carries `tag` with a value: "" is a cleared field, i.e. absent."""
    return bool(tags.get(tag))


def has_current_revocation(tags: Mapping[str, str]) -> bool:
    """Whether the key carries a break-glass revocation record that no restore has closed ("" is absent)."""
    return (present(tags, TAG_REVOKED_AT) or present(tags, TAG_REVOCATION_ID)) and not present(tags, TAG_RESTORED_AT)


def revocation_in_flight(tags: Mapping[str, str], now: datetime) -> bool:
    """Whether an open record on a key read Enabled is another revoke of this moment, not a stale one.

    A key's DescribeKey and ListResourceTags are two requests sent at once: a revoke running at the
    same time can disable the key and write its record between them, so the run reads the key Enabled
    with that revoke's record already on it (measured: 2 of 40 revoke pairs, bench/bench_races.py).
    That record is not stale: its `atlassian-cmk:enabled` tag is "false" (the revoke wrote it with
    the record; `pulumi up` with `enabled: true` writes "true", `naming.key_tags`) and its `revoked-at`
    lies within `lease.LEASE_TTL` of `now`. A stale record (the key enabled since without a restore)
    fails either test."""
    revoked_at = parse_iso(tags.get(TAG_REVOKED_AT, ""))
    return (
        tags.get(TAG_ENABLED) == "false" and revoked_at is not None and abs(now - revoked_at) <= LEASE_TTL
    )


def is_closed(tags: Mapping[str, str]) -> bool:
    """Whether a restore closed the key's record (a non-empty `restored-at`, the key policy's test)."""
    return present(tags, TAG_RESTORED_AT)


def replacement(tags: Mapping[str, str], record: Mapping[str, str]) -> dict[str, str]:
    """The tags one TagResource call writes to put `record` on a key with no open record.

    Every record field the key carries and `record` does not set is written "" (never untagged),
    so no field of an older incident survives; when a restore closed the old record, the same call
    blanks the restore fields, `restored-at` included: the only write the key policy allows on a
    closed record (ProtectCmkEvidenceClosedRecordKept/-Set in `atlassian_cmk.evidence`). KMS accepts ""
    as a tag value (botocore/data/kms/2014-11-01/service-2.json: TagValueType min 0)."""
    wanted = {tag: "" for tag in (*REVOCATION_RECORD, *RESTORE_RECORD) if tag in tags}
    if is_closed(tags):
        wanted.update({tag: "" for tag in RESTORE_RECORD})
    wanted.update(record)
    return wanted


def revocation_record(tags: Mapping[str, str]) -> tuple[str, ...]:
    """The record as a tuple in REVOCATION_RECORD order ("" where a tag is absent)."""
    return tuple(tags.get(tag, "") for tag in REVOCATION_RECORD)


def record_order(record: tuple[str, ...]) -> tuple[str, bool, tuple[str, ...]]:
    """Earliest first; a record without a time last; within the same second, one carrying a guard
    override first (never lose it), then the rest of the record: every run picks the same winner."""
    revoked_at, *_rest, override = record
    return revoked_at or "~", not override, record


def current_realm_record(keys: Iterable[Mapping[str, str]]) -> dict[str, str] | None:
    """The realm's current revocation record, from the disabled keys' tags: the earliest current one."""
    records = [revocation_record(tags) for tags in keys if has_current_revocation(tags)]
    if not records:
        return None
    winner = min(records, key=record_order)
    return {tag: value for tag, value in zip(REVOCATION_RECORD, winner, strict=True) if value}


def revocation_block(
    record: Mapping[str, str], reason: str, ticket: str, revocation_id: str, override: str | None
) -> dict[str, str]:
    """The stack file's `atlassian-cmk:revocation` fields for a revoke, in the order they are written.

    `record`: the revocation record the keys agree on (tag -> value; empty when none), which wins
    over this run's `reason`/`ticket`/`revocation_id`/`override` (a rerun, or another operator's
    record written first). Keys: `reason`, `ticket`, `id` and, when a guard override was used or
    recorded, `override` (config.REVOCATION_FIELDS).
    """
    fields = {
        "reason": record.get(TAG_REVOCATION_REASON) or reason,
        "ticket": record.get(TAG_REVOCATION_TICKET) or ticket,
        "id": record.get(TAG_REVOCATION_ID) or revocation_id,
    }
    justification = record.get(TAG_GUARD_OVERRIDE) or (override if not record else None)
    if justification:
        fields["override"] = justification
    return fields


def realm_restore_record(keys: Iterable[Mapping[str, str]]) -> dict[str, str] | None:
    """The restore record an earlier run wrote for the revocation still open elsewhere, or None.

    A restore that enabled every key but could not record it everywhere leaves some keys closed
    (restored-at/-by, restore ticket) and others with the revocation still open. The rerun copies
    the earliest closing record of THAT revocation (same revocation id; without ids, the same
    revoked-at) onto the open ones, so one restore reads the same in every region. A closed record
    of an older revocation never counts."""
    tags_list = list(keys)
    open_ids = {
        (tags.get(TAG_REVOCATION_ID, ""), "" if tags.get(TAG_REVOCATION_ID) else tags.get(TAG_REVOKED_AT, ""))
        for tags in tags_list
        if has_current_revocation(tags)
    }
    closing = [
        tags
        for tags in tags_list
        if is_closed(tags)
        and (tags.get(TAG_REVOCATION_ID, ""), "" if tags.get(TAG_REVOCATION_ID) else tags.get(TAG_REVOKED_AT, ""))
        in open_ids
        and any(present(tags, tag) for tag in (TAG_REVOCATION_ID, TAG_REVOKED_AT))
    ]
    if not closing:
        return None
    first = min(closing, key=lambda tags: (tags.get(TAG_RESTORED_AT, ""), tags.get(TAG_RESTORE_TICKET, "")))
    return {tag: first[tag] for tag in RESTORE_RECORD if present(first, tag)}
