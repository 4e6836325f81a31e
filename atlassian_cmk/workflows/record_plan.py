"""Which tags record a revoke or a restore on each key (pure): the planners the KMS actions call.

A planner gets the key as read before the tags are written, and whether this run changed its
state, and returns the tags to write (`changes.TagChange`). The rules of which record is current
are `atlassian_cmk.records`; the key policy that makes records write-once is `atlassian_cmk.evidence`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from atlassian_cmk.live_keys import LiveKey
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
)
from atlassian_cmk.records import has_current_revocation, is_closed, replacement, revocation_in_flight
from atlassian_cmk.timeline import iso
from atlassian_cmk.workflows.changes import TagChange, TagPlanner


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
    `open_before`: key ID -> revocation id of the open record each key carried when the run read
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
            # The realm's record is copied only onto a key that never carried its id: a key whose record under
            # that id was closed (a restore ran on it meanwhile) cannot reopen it (the key policy's
            # ProtectCmkEvidenceNextRecordNewId, `evidence.key_policy_evidence_statements`): this run's record.
            reuse = realm_record and realm_record.get(TAG_REVOCATION_ID) != key.tags.get(TAG_REVOCATION_ID)
            record = dict(realm_record) if realm_record and reuse else dict(fresh)
            if not reuse and not changed:
                del record[TAG_REVOKED_AT]
            # One TagResource call, never UntagResource: the key policy lets break-glass write a record
            # only into an empty or closed slot, and a closed one only with `restored-at` blanked.
            wanted.update(replacement(key.tags, record))
        elif (
            changed
            and key.tags.get(TAG_REVOCATION_ID, "") == (open_before or {}).get(key.key_id, "")
            and not revocation_in_flight(key.tags, now)
        ):
            # The open record was on the key before this run disabled it: the key was enabled after it
            # without a restore record (e.g. `pulumi up`). The record is write-once to break-glass
            # (ProtectCmkEvidenceOpenRecord): say so instead of sending a write AWS refuses. (A record
            # that appeared since this run read the key is another operator's revocation of the same
            # moment, written first: it stands, and `settle` names it.)
            found = key.tags.get(TAG_REVOCATION_ID) or "without an id"
            return TagChange(
                put=_changed(key, wanted),
                blocked=f"the key still carries the open revocation record {found}, which only the CI apply "
                "role may replace (the key was enabled without `cmkctl restore`); ask for it to be cleared",
            )
        return TagChange(put=_changed(key, wanted))

    return plan


def restoration_tags(
    ticket: str, caller: str, now: datetime, realm_record: Mapping[str, str] | None = None
) -> TagPlanner:
    """The restore's tags. The revocation record stays on the key as history ("last revoked at");
    the restore record closes it, so it no longer counts as current. A rerun writes the restore
    record where an earlier restore enabled the key but could not record it: the record the
    earlier restore wrote elsewhere (`realm_record`, `records.realm_restore_record`: its ticket, time
    and who) when another region has it, so one restore has one record; else this run's (the
    restore happened no later)."""
    fresh = {TAG_RESTORED_AT: iso(now), TAG_RESTORED_BY: caller, TAG_RESTORE_TICKET: ticket}

    def plan(key: LiveKey, changed: bool) -> TagChange:
        wanted = {TAG_ENABLED: "true"}
        # A closed record stays closed: the key policy refuses break-glass any rewrite of it
        # (ProtectCmkEvidenceClosedRecordSet); "" is absent (records.py).
        if not is_closed(key.tags) and (changed or has_current_revocation(key.tags)):
            wanted.update(dict(realm_record) if realm_record else fresh)
        return TagChange(put=_changed(key, wanted))

    return plan


def _changed(before: LiveKey, wanted: Mapping[str, str]) -> dict[str, str]:
    return {tag: value for tag, value in wanted.items() if before.tags.get(tag) != value}
