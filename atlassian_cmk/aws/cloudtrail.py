"""CloudTrail reads: when the keys were disabled, and whether Atlassian is re-encrypting.

The second is `read_reencryption_activity` (the rules: `atlassian_cmk.reencryption_activity`).
The first, when were the keys disabled, is the fallback behind the `revoked-at` tag.

`cmkctl revoke` tags the moment it disabled a key; a key disabled another way (the console, a
deployment) has no tag, and its revocation time lives only in CloudTrail's 90-day event
history. The reinstatement window runs from that moment, so status and restore look it up,
bounded, and say "unknown" rather than guess. A key with the tag is looked up too: the tag is
written by a role we ship, CloudTrail by AWS, and `atlassian_cmk.clock_check` compares the two.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Final

from atlassian_cmk.aws.kms_reads import ClientFactory, describe_error
from atlassian_cmk.clock_check import CLOUDTRAIL_EVENT_HISTORY
from atlassian_cmk.config import StackConfig
from atlassian_cmk.live_keys import CloudTrailEvidence, LiveKey
from atlassian_cmk.reencryption_activity import (
    ACTIVITY_WINDOW,
    AtlassianCallers,
    GenerationPair,
    KeyUse,
    ReencryptionActivity,
    RegionActivity,
    Use,
    atlassian_callers,
    enrolled_pair,
    match_events,
)

CLOUDTRAIL_LOOKBACK: Final = CLOUDTRAIL_EVENT_HISTORY
"""CloudTrail keeps management events for 90 days; older revocations are unknowable here."""

MAX_PAGES: Final = 3
"""LookupEvents allows 2 requests per second per account and region: a few pages per event name, no more."""

PERMISSIONS: Final = ("cloudtrail:LookupEvents",)

LOOKUP_RATE_PER_S: Final = 2.0
"""LookupEvents: "limited to two per second, per account, per Region" (CloudTrail API Reference)."""


class RequestPacer:
    """Spaces requests per region to at most `rate_per_s`, across the threads of one process.

    botocore's standard retry mode retries a ThrottlingException a few times with backoff
    (`kms_reads.client_config`); pacing keeps us under the limit in the first place, since a
    throttled lookup is unknown evidence and the guard then refuses. `clock`/`sleep` are injected
    by tests (no real waiting there).
    """

    def __init__(
        self,
        rate_per_s: float = LOOKUP_RATE_PER_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / rate_per_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}

    def wait(self, region: str) -> None:
        """Block until a request to `region` keeps within the rate; reserves its slot."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next.get(region, now))
            self._next[region] = start + self._interval
        if start > now:
            self._sleep(start - now)


PACER = RequestPacer()
"""The process's one pacer: cmkctl and the policy pack each run as one process."""


def needs_cloudtrail(key: LiveKey) -> bool:
    """Every disabled key (not one pending deletion: an incident of its own) is looked up: without a
    current `revoked-at` CloudTrail is the clock; with one, CloudTrail cross-checks it, since the
    break-glass role can close a record and open a new one with any `revoked-at` while the key stays
    disabled (`atlassian_cmk.clock_check`). Enabled keys cost no lookup."""
    return not key.enabled and not key.pending_deletion


def cloudtrail_disabled_at(cloudtrail: Any, key: LiveKey, *, now: datetime) -> datetime | None:
    """The start of the key's current disabled period: the first DisableKey after the last EnableKey
    (`disable_evidence`, without saying whether the bounded scan saw everything)."""
    return disable_evidence(cloudtrail, key, now=now).disabled_at


def disable_evidence(cloudtrail: Any, key: LiveKey, *, now: datetime) -> CloudTrailEvidence:
    """The first DisableKey after the last EnableKey, and whether the bounded scan could prove it first.

    A repeated DisableKey on an already-disabled key must not restart the clock, so the latest
    DisableKey alone would overstate the days left. LookupEvents returns the newest events first ("The
    events list is sorted by time. The most recent event is listed first.": botocore
    data/cloudtrail/2013-11-01/service-2.json, LookupEventsResponse), so the first EnableKey of this key
    found is the last one; the DisableKey lookup then starts at it (`StartTime`), and is complete when
    its last page has no `NextToken`. At most `MAX_PAGES` pages of 50 per event name; anything not proven
    is `exhausted`. Raises botocore's errors (the caller turns them into a reason).
    """
    oldest = now - CLOUDTRAIL_LOOKBACK
    enabled_times, enable_complete = _event_times(cloudtrail, key, "EnableKey", oldest, now, first_match=True)
    last_enabled = max(enabled_times, default=None)
    if last_enabled is None and not enable_complete:
        # The last EnableKey may lie beyond the pages read: no DisableKey can be placed after it.
        return CloudTrailEvidence(exhausted=True)
    start = max(oldest, last_enabled) if last_enabled is not None else oldest
    disabled_times, disable_complete = _event_times(cloudtrail, key, "DisableKey", start, now, first_match=False)
    after_enable = [t for t in disabled_times if last_enabled is None or t > last_enabled]
    return CloudTrailEvidence(disabled_at=min(after_enable, default=None), exhausted=not disable_complete)


def _event_times(
    cloudtrail: Any, key: LiveKey, event_name: str, start: datetime, end: datetime, *, first_match: bool
) -> tuple[list[datetime], bool]:
    """This key's `event_name` times in [start, end], newest first, and whether the scan was complete
    (the last page read had no NextToken, or `first_match` and a page held a match)."""
    request: dict[str, Any] = {
        "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": event_name}],
        "StartTime": start,
        "EndTime": end,
        "MaxResults": 50,
    }
    found: list[datetime] = []
    for _ in range(MAX_PAGES):
        PACER.wait(key.region)  # the same per-region budget as the re-encryption evidence (RequestPacer)
        page = cloudtrail.lookup_events(**request)
        found.extend(event["EventTime"] for event in page.get("Events", []) if _about_key(event, key))
        if (first_match and found) or not page.get("NextToken"):
            return found, True
        request["NextToken"] = page["NextToken"]
    return found, False


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
    """Look up every key that needs it (`needs_cloudtrail`: the disabled ones), one region per thread,
    paced per region (`PACER`); failures become reasons. Region -> evidence."""
    wanted = [key for key in keys if needs_cloudtrail(key)]

    def lookup(key: LiveKey) -> CloudTrailEvidence:
        try:
            return disable_evidence(client_factory("cloudtrail", key.region), key, now=now)
        except Exception as error:  # noqa: BLE001 - evidence is optional; say why it is missing
            return CloudTrailEvidence(error=f"CloudTrail lookup failed: {describe_error(error)}")

    if not wanted:
        return {}
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        return dict(zip((key.region for key in wanted), pool.map(lookup, wanted), strict=True))


# ----------------------------------------------------------------------------- re-encryption evidence

ACTIVITY_MAX_PAGES: Final = 4
"""Pages of 50 events read per key and use: at most 200 events, 2 s of a region's request budget."""


def _key_use(
    cloudtrail: Any,
    region: str,
    key_arn: str,
    use: Use,
    callers: AtlassianCallers,
    start: datetime,
    end: datetime,
    pacer: RequestPacer,
) -> KeyUse:
    request: dict[str, Any] = {
        "LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": key_arn}],
        "StartTime": start,
        "EndTime": end,
        "MaxResults": 50,
    }
    scanned = 0
    try:
        for _ in range(ACTIVITY_MAX_PAGES):
            pacer.wait(region)
            page = cloudtrail.lookup_events(**request)
            events = page.get("Events", [])
            scanned += len(events)
            found = match_events(events, key_arn, use, callers)
            if found is not None:  # newest first: the first page with a match holds the newest match
                when, name, caller = found
                return KeyUse(key_arn, use, when, name, caller, scanned, not page.get("NextToken"))
            if not page.get("NextToken"):
                return KeyUse(key_arn, use, scanned=scanned, exhausted=True)
            request["NextToken"] = page["NextToken"]
    except Exception as error:  # noqa: BLE001 - unknown evidence, with the reason
        return KeyUse(key_arn, use, scanned=scanned, error=f"LookupEvents failed: {describe_error(error)}")
    return KeyUse(key_arn, use, scanned=scanned)


def read_reencryption_activity(
    config: StackConfig,
    client_factory: ClientFactory,
    *,
    now: datetime,
    pacer: RequestPacer | None = None,
    window: timedelta = ACTIVITY_WINDOW,
) -> ReencryptionActivity | None:
    """Atlassian's use of both enrolled generations per region in the last `window`; None when one is enrolled.

    Regions are read concurrently (the limit is per region); within a region two lookups by key
    ARN, paced. Every failure becomes a `KeyUse.error`, never an exception.
    """
    pair = enrolled_pair(config)
    if pair is None:
        return None
    callers = atlassian_callers(config)
    if not callers.accounts:  # nobody to look for: absence would prove nothing (fail closed)
        return _unknown_everywhere(pair, now - window, now, "atlassianKeyPolicy names no Atlassian principal by ARN")
    pacer = pacer or PACER  # read at call time: tests swap the module's pacer for one that never sleeps
    start = now - window
    regions = [r for r in pair.old.regions if pair.new.arn(r) is not None]

    def region_activity(region: str) -> RegionActivity:
        old_arn, new_arn = pair.old.keys[region].arn, pair.new.keys[region].arn
        try:
            cloudtrail = client_factory("cloudtrail", region)
        except Exception as error:  # noqa: BLE001
            reason = f"no CloudTrail client: {describe_error(error)}"
            return RegionActivity(
                region, KeyUse(old_arn, "decrypt", error=reason), KeyUse(new_arn, "encrypt", error=reason)
            )
        old = _key_use(cloudtrail, region, old_arn, "decrypt", callers, start, now, pacer)
        new = _key_use(cloudtrail, region, new_arn, "encrypt", callers, start, now, pacer)
        return RegionActivity(region, old, new)

    with ThreadPoolExecutor(max_workers=max(1, len(regions))) as pool:
        readings = tuple(pool.map(region_activity, regions))
    return ReencryptionActivity(pair.old_role, pair.new_role, start, now, readings, tuple(sorted(callers.principals)))


def _unknown_everywhere(pair: GenerationPair, start: datetime, end: datetime, reason: str) -> ReencryptionActivity:
    regions = tuple(
        RegionActivity(
            region,
            KeyUse(pair.old.keys[region].arn, "decrypt", error=reason),
            KeyUse(pair.new.keys[region].arn, "encrypt", error=reason),
        )
        for region in pair.old.regions
        if pair.new.arn(region) is not None
    )
    return ReencryptionActivity(pair.old_role, pair.new_role, start, end, regions)
