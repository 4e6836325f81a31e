"""The break-glass record on a key: which revocation is current, and what a run must (re)write.

A key carries at most one revocation record (revocation id, reason, ticket, revoked-at/-by,
guard override) and, once restored, the restore record (restored-at/-by, restore ticket). The
revocation record stays on a restored key as history; it is *current* only while no restore
record follows it. So an old, restored incident never counts as the current one: not for the
reinstatement clock, not as a record a new revoke would copy.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Final

from atlassian_cmk.naming import (
    TAG_GUARD_OVERRIDE,
    TAG_RESTORE_TICKET,
    TAG_RESTORED_AT,
    TAG_RESTORED_BY,
    TAG_REVOCATION_ID,
    TAG_REVOCATION_REASON,
    TAG_REVOCATION_TICKET,
    TAG_REVOKED_AT,
    TAG_REVOKED_BY,
)

REVOCATION_RECORD: Final = (
    TAG_REVOKED_AT,
    TAG_REVOCATION_ID,
    TAG_REVOCATION_TICKET,
    TAG_REVOCATION_REASON,
    TAG_REVOKED_BY,
    TAG_GUARD_OVERRIDE,
)
"""The tags that say which revocation, who, when and why; identical in every region once a revoke converges.
`revoked-at` first: records order by time."""

RESTORE_RECORD: Final = (TAG_RESTORED_AT, TAG_RESTORED_BY, TAG_RESTORE_TICKET)


def new_revocation_id(now: datetime) -> str:
    """`rev-20310301T120000Z-3f9a1c`: sortable by time, unique across operators (24 random bits)."""
    return f"rev-{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def has_current_revocation(tags: Mapping[str, str]) -> bool:
    """Whether the key carries a break-glass revocation record that no restore has closed."""
    return (TAG_REVOKED_AT in tags or TAG_REVOCATION_ID in tags) and TAG_RESTORED_AT not in tags


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
