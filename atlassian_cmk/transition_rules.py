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


def expected_enabled(config: StackConfig, role: str, number: int | None = None) -> bool | None:
    """The enabled state the configuration gives a key of `role` (current, next, retired), or None
    when the configuration holds no generation of that role (a key of it is then out of place).
    `number`: the generation's number (retired generations differ: only the latest may be enabled);
    None: the newest generation of that role."""
    states: dict[str, bool] = {
        generation.role: generation.enabled
        for generation in generations(config)
        if number is None or generation.number == number
    }
    return states.get(role)


def generation_split(config: StackConfig, role: str, enabled: bool, number: int | None = None) -> str | None:
    """Why a key of `role` (generation `number`) must not have `enabled`: every held generation follows
    atlassian-cmk:enabled (a revocation disables current and next alike), a retired one is enabled only
    in the promotion phase and only the latest (`generations.retired_enabled`)."""
    expected = expected_enabled(config, role, number)
    if expected is None:
        return f"the configuration holds no {role} generation (reencryption.status {config.reencryption.status})"
    if enabled == expected:
        return None
    if role == RETIRED:
        return (
            "a retired key would be enabled; restore enables the current generation only, never a retired one"
            if enabled
            else "a retired key would be disabled while atlassian-cmk:enabled is true and status complete (the "
            "promotion phase)"
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


_PHASES: Final = ("none", "preparing", "in-progress", "complete")
"""The declared statuses in the order a re-encryption moves through them (retirement: complete -> none)."""


def status_transition_findings(config: StackConfig, deployed: DeployedState) -> Iterator[RealmFinding]:
    """A declared status that goes back from the applied one, or skips to `complete`, judged against the
    deployed current keys' `atlassian-cmk:reencryption` tag (only an apply writes it; a region with no
    key deployed yet has nothing applied and is skipped; an unreadable one is promotion_findings' and
    the other guards' refusal).

    Refused: `complete` from `none` or untagged (nothing was re-encrypted; after a retirement it would
    enable the retired generation again); any step back from `in-progress` or `complete` other than the
    retirement (`complete` -> `none`): `in-progress` -> `preparing` then a revocation is a two-change
    way around "no disabling while in-progress"; and leaving `preparing` or `in-progress` for `none`
    (abandoning): the program would stop declaring the protected next keys, and Atlassian may hold them.
    """
    declared = config.reencryption.status
    said: set[str] = set()
    for reading in deployed.readings:
        key = reading.key
        if key is None or key.tags.get(TAG_KEY_PAIR) != CURRENT:
            continue  # the promotion change (enrolled keys still tagged next) is promotion_findings'
        applied = key.reencryption
        reason = _backward_reason(applied, declared)
        if reason is not None and reason not in said:
            said.add(reason)
            yield TransitionFinding(reason)


def _backward_reason(applied: str | None, declared: str) -> str | None:
    """Why moving from the `applied` status to `declared` is refused, or None."""
    if applied == declared:
        return None
    if declared == "complete" and applied in (None, "none"):
        return (
            f"declares reencryption.status complete while the deployed status is {applied or 'untagged'}: complete "
            "follows an applied in-progress (Atlassian's confirmation), and after a retirement it would enable the "
            "retired generation again (a retired generation is never enabled again)"
        )
    if applied not in _PHASES or declared not in _PHASES:
        return None
    if declared == "none" and applied in ("preparing", "in-progress"):
        return (
            f"abandons the re-encryption (reencryption.status {applied} -> none): the program would stop declaring "
            "the next generation's keys, which are protected (never deleted) and may be held by Atlassian, so "
            "`pulumi up` would fail part-way; abandoning a prepared re-encryption is not supported: keep the status"
        )
    if _PHASES.index(declared) < _PHASES.index(applied) and declared != "none":
        return (
            f"moves reencryption.status back from {applied} to {declared}: re-encryption steps only go forward "
            "(a step back from in-progress would let the next change disable keys Atlassian is re-encrypting with)"
        )
    return None


def retired_enable_finding(reading_status: str | None, reading_role: str | None, readable: bool) -> str | None:
    """Why a retired key must not be enabled by this change, from its deployed key's tags, or None.

    Only the promotion phase enables a retired key (`generations.retired_enabled`): the deployed key is
    then tagged `atlassian-cmk:reencryption: complete` as retired (the key still tagged current is the
    promotion change's, judged by promotion_findings). Any other deployed status means its retirement
    (`none`) was applied, or a later re-encryption began: it is never enabled again. Unreadable or not
    found: refused (fail closed).
    """
    if not readable:
        return "its deployed key could not be read, so whether its retirement was applied cannot be told"
    if reading_role == CURRENT:
        return None  # this change promotes it: promotion_findings judges whether complete was applied
    if reading_status == "complete" and reading_role == RETIRED:
        return None
    return (
        f"its deployed key is tagged {TAG_KEY_PAIR} {reading_role or 'nothing'}, reencryption "
        f"{reading_status or 'untagged'}: its retirement was applied, and a retired generation is never enabled again"
    )
