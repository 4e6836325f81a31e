"""The re-encryption transition rules: which changes between phases are one reviewed change too many.

Re-encryption moves through applied changes, each reviewed on its own (README "Re-encrypting, step
by step"): `preparing` (next generation created) -> `in-progress` -> `complete` -> promotion
(`nextKeys` become `enrolledKeys`, the old ARNs appended to `retiredKeys`, status stays `complete`)
-> retirement (status `none`: the retired generation is disabled). What has been APPLIED is read
from the deployed keys' tags (`atlassian-cmk:reencryption`, `atlassian-cmk:key-pair`), which only a
deployment writes; the declared configuration alone cannot tell "complete was applied" from "complete
is declared in this very change". Unreadable or untagged = not applied (fail closed).

Pure rules: the policy pack and cmkctl hand in what they read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from atlassian_cmk.config import StackConfig
from atlassian_cmk.generations import CURRENT, NEXT, RETIRED, generations
from atlassian_cmk.live_keys import DeployedState
from atlassian_cmk.naming import TAG_KEY_PAIR
from atlassian_cmk.realm_findings import RealmFinding


def expected_enabled(config: StackConfig, role: str) -> bool | None:
    """The enabled state the configuration gives a key of `role` (current, next, retired), or None
    when the configuration holds no generation of that role (a key of it is then out of place)."""
    states: dict[str, bool] = {generation.role: generation.enabled for generation in generations(config)}
    return states.get(role)


def generation_split(config: StackConfig, role: str, enabled: bool) -> str | None:
    """Why a key of `role` must not have `enabled`: every held generation follows atlassian-cmk:enabled
    (a revocation disables current and next alike), a retired one is enabled only while `complete`."""
    expected = expected_enabled(config, role)
    if expected is None:
        return f"the configuration holds no {role} generation (reencryption.status {config.reencryption.status})"
    if enabled == expected:
        return None
    if role == RETIRED:
        return (
            "a retired key would be enabled; restore enables the current generation only, never a retired one"
            if enabled
            else "a retired key would be disabled while atlassian-cmk:enabled is true and status complete"
        )
    state = "enabled" if enabled else "disabled"
    return (
        f"the {role} generation would be {state} while atlassian-cmk:enabled is "
        f"{'true' if config.enabled else 'false'}: a revocation disables every generation Atlassian holds "
        "(current and next), and one alone is refused"
    )


class TransitionFinding(RealmFinding):
    """A re-encryption step skipped or merged with another (promotion, retirement, a second
    re-encryption started too early): nothing is disabled by it, so the pack's advice about
    disabling during re-encryption does not apply (policies/guardrails/reencryption.py)."""


def promotion_findings(config: StackConfig, deployed: DeployedState | None) -> Iterator[RealmFinding]:
    """Promotion and retirement are each their own change after `complete` was applied; a later
    re-encryption (status `preparing` or `in-progress` with `retiredKeys` kept, as enrolled-keys-kept
    requires) starts only from the promoted keys once the retirement (`none`) was applied.

    `deployed`: the keys of `config.enrolled_keys`, read by ARN (None: the live check is off, and
    nothing can be said about what was applied, so a promotion or retirement is refused).
    """
    if not config.retired_keys or config.enrolled_keys is None:
        return
    status = config.reencryption.status
    if deployed is None:
        yield TransitionFinding(
            "the live check is off, so whether complete was applied before promotion cannot be told"
        )
        return
    for reading in deployed.readings:
        region = reading.region
        if reading.error is not None or reading.key is None:
            yield TransitionFinding(f"the enrolled key could not be read ({reading.error or 'not found'})", region)
            continue
        applied_status = reading.key.reencryption
        applied_role = reading.key.tags.get(TAG_KEY_PAIR)
        if status in ("preparing", "in-progress"):
            yield from _later_reencryption(reading.key.arn, applied_role, applied_status, status, region)
        elif applied_role == NEXT:  # this change promotes
            if applied_status != "complete":
                yield TransitionFinding(
                    f"promotes the next generation while the deployed status is {applied_status or 'untagged'}: "
                    "apply reencryption.status: complete as its own change first",
                    region,
                )
            if status != "complete":
                yield TransitionFinding(
                    "promotes and retires in one change: keep reencryption.status complete when promoting", region
                )
        elif applied_role == CURRENT:
            if status == "none" and applied_status not in ("complete", "none"):
                yield TransitionFinding(
                    f"retires the old generation while the deployed status is {applied_status or 'untagged'}", region
                )
        else:
            yield TransitionFinding(
                f"the enrolled key {reading.key.arn} is tagged {TAG_KEY_PAIR} {applied_role or 'nothing'}, "
                "not next or current: enrolledKeys names a key this stack did not deploy as that generation",
                region,
            )


_LATER_REENCRYPTION_FROM: Final = frozenset({"none", "preparing", "in-progress"})
"""Deployed statuses a later re-encryption may be declared from: retirement (`none`) applied, or already under way."""


def _later_reencryption(
    arn: str, applied_role: str | None, applied_status: str | None, status: str, region: str
) -> Iterator[RealmFinding]:
    """A re-encryption after the first one (`retiredKeys` kept): the enrolled key must be the deployed
    current generation (a promotion keeps status complete) and the previous one retired (status none
    applied) before the next generation is prepared; untagged = not applied (fail closed)."""
    if applied_role != CURRENT:
        yield TransitionFinding(
            f"reencryption.status is {status} while the enrolled key {arn} is deployed as "
            f"{TAG_KEY_PAIR} {applied_role or 'nothing'}, not current: a promotion keeps status complete, and "
            "the next re-encryption starts from the promoted keys",
            region,
        )
    elif applied_status not in _LATER_REENCRYPTION_FROM:
        yield TransitionFinding(
            f"starts re-encryption ({status}) while the deployed status is {applied_status or 'untagged'}: "
            "retire the old generation (reencryption.status: none) as its own applied change first",
            region,
        )
