"""The emulator's CloudTrail event history read as an operator would: LookupEvents through boto3."""

from __future__ import annotations

from typing import Any

from tests.support.aws import client_factory_for


def kms_events(endpoint: str, region: str, event_name: str | None = None) -> list[dict[str, Any]]:
    """Every delivered KMS event in `region` (only `event_name`'s, if given), newest first, all pages."""
    cloudtrail = client_factory_for(endpoint)("cloudtrail", region)
    request: dict[str, Any] = {}
    if event_name is not None:
        request["LookupAttributes"] = [{"AttributeKey": "EventName", "AttributeValue": event_name}]
    events: list[dict[str, Any]] = []
    for page in cloudtrail.get_paginator("lookup_events").paginate(**request):
        events.extend(page["Events"])
    return events
