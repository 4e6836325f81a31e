"""The drill's rules: unique throwaway stack names, what the emulator check requires, clean-up tags.

The drill itself (`cli/drill.py`) runs cmkctl's own commands; these rules are pure so they can be
tested without AWS and reused by any adapter.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from atlassian_cmk.endpoints import not_loopback
from atlassian_cmk.timeline import iso

DRILL_PREFIX: Final = "drill-"
TAG_DRILL_CLEANUP: Final = "atlassian-cmk:drill-cleanup"
"""Set on drill keys the drill disabled on its way out after an interruption or failure: when and why."""


def drill_stack_name(now: datetime, token: str | None = None) -> str:
    """`drill-YYYYMMDDHHMMSS-<8 hex>`: two drills started in the same second never share a name (and so
    never share an alias), the time still sorts, and no real stack is named like it."""
    return f"{DRILL_PREFIX}{now.strftime('%Y%m%d%H%M%S')}-{token or secrets.token_hex(4)}"


def emulator_problem(endpoints: Mapping[tuple[str, str], str]) -> str | None:
    """None when every endpoint the drill's clients would use is on this machine; else why not.

    `endpoints` is (service, region) -> the URL botocore resolved for that client; a service-specific
    endpoint (AWS_ENDPOINT_URL_KMS, a config file `services` section) counts like any other.
    """
    if not endpoints:
        return "no endpoint could be resolved"
    remote = not_loopback(endpoints.values())
    if not remote:
        return None
    services = sorted({service for (service, _), url in endpoints.items() if not_loopback([url])})
    return f"{', '.join(services)} would go to {', '.join(remote)}, which is not this machine"


def cleanup_tags(now: datetime, why: str) -> dict[str, str]:
    """The tag the drill puts on its keys when it disables them on the way out."""
    return {TAG_DRILL_CLEANUP: f"{iso(now)} {why}"[:256]}
