"""revocation-requires-justification: a disabled key says why, and under which ticket.

The reason and ticket travel as the key's tags (written from `atlassian-cmk:revocation`), so the
live key explains itself to whoever finds it disabled, and the review sees them in the diff.
A retired generation's key disabled while `enabled` is true is a retirement
(`generations.retired_generation`, and its live key deployed as retired): its record is the reviewed
`retiredKeys` and re-encryption status, and no incident ticket exists for it (README
"Re-encrypting, step by step", step 7).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResourceOptions, ResourceValidationPolicy

from atlassian_cmk.config import StackConfigErrors, shorten_repr, tag_text_problem, ticket_problem
from atlassian_cmk.generations import RETIRED, retired_generation
from atlassian_cmk.naming import TAG_KEY_PAIR, TAG_REVOCATION_REASON, TAG_REVOCATION_TICKET

from .context import DEPLOYED_STATE, stack_config, stack_name
from .framework import resource_policy
from .resources import CmkKey, Unknown
from .settings import JUSTIFICATION_POLICY

DESCRIPTION = (
    "Checks whether a disabled CMK key carries a non-empty revocation reason and an incident ticket that "
    "matches the configured pattern."
)

_HOW = "set atlassian-cmk:revocation: {reason: <why>, ticket: <incident ticket>} in the stack's config"


def _retirement(key: CmkKey) -> bool:
    """Whether disabling `key` retires a generation (`generations.retired_generation`) and the live key of
    that retired entry in the key's region was deployed as retired: read by its ARN, tagged
    `atlassian-cmk:key-pair: retired`. Unreadable, untagged or another ARN: not a retirement (the
    justification is then required, fail closed)."""
    config = stack_config()
    region = key.region
    if isinstance(config, StackConfigErrors) or not config.enabled or not isinstance(region, str):
        return False
    generation = retired_generation(config, key.name, region, key.key_pair)
    retired = generation.arn(region) if generation is not None else None
    if generation is None or retired is None:
        return False
    reading = DEPLOYED_STATE.get(stack_name(), config.regions, generation).reading(region)
    live = reading.key if reading is not None and reading.error is None else None
    return live is not None and live.arn == retired.arn and live.tags.get(TAG_KEY_PAIR) == RETIRED


def check(key: CmkKey, _opts: PolicyResourceOptions, settings: Mapping[str, Any]) -> Iterator[str]:
    enabled = key.enabled
    if isinstance(enabled, Unknown):
        yield f"cannot tell whether {key.label} would be disabled (enabled is unknown until apply); fails closed"
        return
    if enabled:
        return
    if _retirement(key):
        return
    reason, ticket = key.tag(TAG_REVOCATION_REASON), key.tag(TAG_REVOCATION_TICKET)
    if isinstance(reason, Unknown) or isinstance(ticket, Unknown):
        yield f"the revocation tags of {key.label} are unknown until apply, so the justification cannot be checked"
        return
    if not isinstance(reason, str) or not reason.strip():
        yield f"{key.label} would be disabled without a revocation reason (tag {TAG_REVOCATION_REASON}); {_HOW}"
    elif (problem := tag_text_problem(reason)) is not None:
        # The schema's rule (one function): a line feed or control character never reaches a tag.
        yield f"the revocation reason {shorten_repr(reason)} of {key.label}: {problem}"
    if not isinstance(ticket, str) or not ticket.strip():
        yield f"{key.label} would be disabled without a revocation ticket (tag {TAG_REVOCATION_TICKET}); {_HOW}"
        return
    pattern = settings["ticketPattern"]  # RE2, linear time (settings.compile_ticket_pattern)
    if not pattern.fullmatch(ticket):
        yield (
            f"the revocation ticket {shorten_repr(ticket)} of {key.label} does not match the required pattern "
            f"{shorten_repr(pattern.pattern)} (policy config ticketPattern); reference the incident ticket"
        )
    elif (problem := ticket_problem(ticket)) is not None:
        yield f"the revocation ticket {shorten_repr(ticket)} of {key.label}: {problem}"


def policy() -> ResourceValidationPolicy:
    return resource_policy(JUSTIFICATION_POLICY, DESCRIPTION, EnforcementLevel.MANDATORY, check)
