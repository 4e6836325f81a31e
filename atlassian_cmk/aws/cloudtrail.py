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
from typing import Any, Final, Literal

from atlassian_cmk.aws.kms_reads import ClientFactory, describe_error
from atlassian_cmk.clock_check import CLOUDTRAIL_EVENT_HISTORY, DisabledSince, KeyEvent, disabled_since
from atlassian_cmk.config import StackConfig
from atlassian_cmk.endpoints import is_loopback
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

    The limit is AWS's ("per account, per Region"), so a request to an endpoint on this machine
    (`endpoints.is_loopback`: the emulator of `make demo` and the tests, which has no such limit) is
    not paced unless `pace_loopback` (the benchmarks, which measure what AWS would cost). Every other
    endpoint is paced: AWS's own, a VPC endpoint, a configured custom one. Failing this way stays
    closed: were a loopback endpoint a forwarder to AWS, a throttled lookup is retried by botocore,
    then unknown evidence, and the guard refuses.
    """

    def __init__(
        self,
        rate_per_s: float = LOOKUP_RATE_PER_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        pace_loopback: bool = False,
    ) -> None:
        self._interval = 1.0 / rate_per_s
        self._clock = clock
        self._sleep = sleep
        self._pace_loopback = pace_loopback
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}

    def wait(self, region: str, endpoint_url: str | None = None) -> None:
        """Block until a request to `region` keeps within the rate; reserves its slot.

        `endpoint_url`: where the request goes (`client.meta.endpoint_url`); None is paced."""
        if endpoint_url is not None and not self._pace_loopback and is_loopback(endpoint_url):
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next.get(region, now))
            self._next[region] = start + self._interval
        if start > now:
            self._sleep(start - now)


def endpoint_of(client: Any) -> str | None:
    """The URL botocore resolved for `client` (`client.meta.endpoint_url`), None for a stand-in without one."""
    url = getattr(getattr(client, "meta", None), "endpoint_url", None)
    return url if isinstance(url, str) else None


PACER = RequestPacer()
"""The process's one pacer: cmkctl and the policy pack each run as one process."""


def needs_cloudtrail(key: LiveKey) -> bool:
    """Every disabled key (not one pending deletion: an incident of its own) is looked up: without a
    current `revoked-at` CloudTrail is the clock; with one, CloudTrail cross-checks it, since the
    break-glass role can close a record and open a new one with any `revoked-at` while the key stays
    disabled (`atlassian_cmk.clock_check`). Enabled keys cost no lookup."""
    return not key.enabled and not key.pending_deletion


def cloudtrail_disabled_at(cloudtrail: Any, key: LiveKey, *, now: datetime) -> datetime | None:
    """The start of the key's current disabled period, short enabled periods joined (`disable_evidence`,
    without saying whether the bounded scan saw everything)."""
    return disable_evidence(cloudtrail, key, now=now).disabled_at


KeyStateEvent = Literal["EnableKey", "DisableKey"]
KEY_STATE_EVENTS: Final[tuple[KeyStateEvent, ...]] = ("EnableKey", "DisableKey")


class _EventPages:
    """One event name's LookupEvents pages (every key's events of that name in the region, newest first:
    "The events list is sorted by time. The most recent event is listed first.", botocore
    data/cloudtrail/2013-11-01/service-2.json, LookupEventsResponse), read one page at a time, at most
    `MAX_PAGES`."""

    def __init__(
        self, cloudtrail: Any, key: LiveKey, event_name: KeyStateEvent, start: datetime, end: datetime
    ) -> None:
        self._cloudtrail = cloudtrail
        self._key = key
        self.name = event_name
        self._request: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": event_name}],
            "StartTime": start,
            "EndTime": end,
            "MaxResults": 50,
        }
        self.own: list[datetime] = []
        self.read_to = end
        """Every event of this name later than this time has been read (the oldest EventTime read)."""
        self.pages = 0
        self.scanned = 0
        self.done = False
        """The last page read had no NextToken: every event of this name in [start, end] was read."""

    @property
    def can_read(self) -> bool:
        return not self.done and self.pages < MAX_PAGES

    def read_page(self) -> None:
        # The same per-region budget as the re-encryption evidence (RequestPacer).
        PACER.wait(self._key.region, endpoint_of(self._cloudtrail))
        page = self._cloudtrail.lookup_events(**self._request)
        self.pages += 1
        events = page.get("Events", [])
        self.scanned += len(events)
        self.own.extend(event["EventTime"] for event in events if _about_key(event, self._key))
        if events:
            self.read_to = min(self.read_to, *(event["EventTime"] for event in events))
        if page.get("NextToken"):
            self._request["NextToken"] = page["NextToken"]
        else:
            self.done = True


def disable_evidence(cloudtrail: Any, key: LiveKey, *, now: datetime) -> CloudTrailEvidence:
    """The start of the key's current disabled period (`clock_check.disabled_since`: walking back through
    its EnableKey/DisableKey, short enabled periods joined, same-second events ordered for the earlier
    start), and whether the bounded scan could prove it.

    Both event names are read newest first, a page at a time, at most `MAX_PAGES` pages of 50 each, and
    only as far back as the walk needs: events are known in full only after the later of the two
    streams' oldest times read (the horizon), so the stream read least far back is read on. What is not proven when
    the pages run out is `exhausted`, with the best bound found; a lookup that fails keeps that bound
    too, with the error (botocore's error, described).
    """
    streams = [_EventPages(cloudtrail, key, name, now - CLOUDTRAIL_LOOKBACK, now) for name in KEY_STATE_EVENTS]

    def evidence(*, exhausted: bool = False, error: str | None = None) -> CloudTrailEvidence:
        answer = walk()
        return CloudTrailEvidence(
            disabled_at=answer.start,
            error=error,
            exhausted=exhausted,
            gaps=answer.gaps,
            scanned=sum(s.scanned for s in streams),
            own=sum(len(s.own) for s in streams),
        )

    def walk() -> DisabledSince:
        horizon = max((s.read_to for s in streams if not s.done), default=None)
        # At the horizon's own second the other stream may hold more events on its next page; of this key's,
        # a DisableKey there changes no start and an EnableKey there sorts before the DisableKeys of that
        # second (the walk's order), so what is read at that second is kept.
        events: list[KeyEvent] = [(t, s.name) for s in streams for t in s.own if horizon is None or t >= horizon]
        return disabled_since(events, complete=horizon is None, now=now)

    try:
        for stream in streams:
            stream.read_page()
        while not walk().complete:
            unread = [s for s in streams if s.can_read]
            if not unread or any(not s.done and not s.can_read for s in streams):
                return evidence(exhausted=True)
            max(unread, key=lambda s: s.read_to).read_page()  # the stream that limits what is known
    except Exception as error:  # noqa: BLE001 - the pages read before the failure still bound the clock
        return evidence(error=f"CloudTrail lookup failed: {describe_error(error)}")
    return evidence()


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
        except Exception as error:  # noqa: BLE001 - no client: evidence is optional; say why it is missing
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
            pacer.wait(region, endpoint_of(cloudtrail))
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
