"""When were the keys disabled? The CloudTrail fallback behind the `revoked-at` tag.

`cmkctl revoke` tags the moment it disabled a key; a key disabled another way (the console, a
deployment) has no tag, and its revocation time lives only in CloudTrail's 90-day event
history. The reinstatement window runs from that moment, so status and restore look it up,
bounded, and say "unknown" rather than guess.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Final

from atlassian_cmk.aws.kms_reads import ClientFactory, describe_error
from atlassian_cmk.live_keys import CloudTrailEvidence, LiveKey
from atlassian_cmk.naming import TAG_REVOKED_AT
from atlassian_cmk.records import has_current_revocation

CLOUDTRAIL_LOOKBACK: Final = timedelta(days=90)
"""CloudTrail keeps management events for 90 days; older revocations are unknowable here."""

MAX_PAGES: Final = 3
"""LookupEvents allows 2 requests per second per account: a few pages per event name, no more."""

PERMISSIONS: Final = ("cloudtrail:LookupEvents",)


def needs_cloudtrail(key: LiveKey) -> bool:
    """Only a disabled key without a current `revoked-at` record needs the (slow, rate-limited) lookup."""
    current = bool(key.tags.get(TAG_REVOKED_AT)) and has_current_revocation(key.tags)  # "" is absent
    return not key.enabled and not key.pending_deletion and not current


def cloudtrail_disabled_at(cloudtrail: Any, key: LiveKey, *, now: datetime) -> datetime | None:
    """The start of the key's current disabled period: the first DisableKey after the last EnableKey.

    A repeated DisableKey on an already-disabled key must not restart the clock, so the
    latest DisableKey alone would overstate the days left.
    """
    enabled_times = list(_event_times(cloudtrail, key, "EnableKey", now))
    disabled_times = list(_event_times(cloudtrail, key, "DisableKey", now))
    last_enabled = max(enabled_times, default=None)
    after_enable = [t for t in disabled_times if last_enabled is None or t > last_enabled]
    return min(after_enable, default=None)


def _event_times(cloudtrail: Any, key: LiveKey, event_name: str, now: datetime) -> Iterator[datetime]:
    request: dict[str, Any] = {
        "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": event_name}],
        "StartTime": now - CLOUDTRAIL_LOOKBACK,
        "EndTime": now,
        "MaxResults": 50,
    }
    for _ in range(MAX_PAGES):
        page = cloudtrail.lookup_events(**request)
        for event in page.get("Events", []):
            if _about_key(event, key):
                yield event["EventTime"]
        if not page.get("NextToken"):
            return
        request["NextToken"] = page["NextToken"]


def _about_key(event: dict[str, Any], key: LiveKey) -> bool:
    names = [r.get("ResourceName", "") for r in event.get("Resources", [])]
    if any(name in (key.arn, key.key_id) for name in names):
        return True
    try:
        detail = json.loads(event.get("CloudTrailEvent") or "{}")
    except json.JSONDecodeError:
        return False
    requested = (detail.get("requestParameters") or {}).get("keyId", "")
    return bool(requested) and requested in (key.arn, key.key_id)


def collect_cloudtrail_evidence(
    keys: list[LiveKey], client_factory: ClientFactory, *, now: datetime
) -> dict[str, CloudTrailEvidence]:
    """Look up every key that needs it, one region per thread; failures become reasons."""
    wanted = [key for key in keys if needs_cloudtrail(key)]

    def lookup(key: LiveKey) -> CloudTrailEvidence:
        try:
            return CloudTrailEvidence(
                disabled_at=cloudtrail_disabled_at(client_factory("cloudtrail", key.region), key, now=now)
            )
        except Exception as error:  # noqa: BLE001 - evidence is optional; say why it is missing
            return CloudTrailEvidence(error=f"CloudTrail lookup failed: {describe_error(error)}")

    if not wanted:
        return {}
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        return dict(zip((key.region for key in wanted), pool.map(lookup, wanted), strict=True))
