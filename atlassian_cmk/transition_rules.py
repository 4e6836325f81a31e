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


def promotion_findings(config: StackConfig, deployed: DeployedState | None) -> Iterator[RealmFinding]:
    """Promotion and retirement are each their own change after `complete` was applied.

    `deployed`: the keys of `config.enrolled_keys`, read by ARN (None: the live check is off, and
    nothing can be said about what was applied, so a promotion or retirement is refused).
    """
    if not config.retired_keys or config.enrolled_keys is None:
        return
    status = config.reencryption.status
    if status not in ("complete", "none"):
        yield RealmFinding(
            f"retiredKeys is set while reencryption.status is {status}: promotion keeps status complete "
            "(the next re-encryption starts from none, after retirement)"
        )
        return
    if deployed is None:
        yield RealmFinding("the live check is off, so whether complete was applied before promotion cannot be told")
        return
    for reading in deployed.readings:
        region = reading.region
        if reading.error is not None or reading.key is None:
            yield RealmFinding(f"the enrolled key could not be read ({reading.error or 'not found'})", region)
            continue
        applied_status = reading.key.reencryption
        applied_role = reading.key.tags.get(TAG_KEY_PAIR)
        if applied_role == NEXT:  # this change promotes
            if applied_status != "complete":
                yield RealmFinding(
                    f"promotes the next generation while the deployed status is {applied_status or 'untagged'}: "
                    "apply reencryption.status: complete as its own change first",
                    region,
                )
            if status != "complete":
                yield RealmFinding(
                    "promotes and retires in one change: keep reencryption.status complete when promoting", region
                )
        elif applied_role == CURRENT:
            if status == "none" and applied_status not in ("complete", "none"):
                yield RealmFinding(
                    f"retires the old generation while the deployed status is {applied_status or 'untagged'}", region
                )
        else:
            yield RealmFinding(
                f"the enrolled key {reading.key.arn} is tagged {TAG_KEY_PAIR} {applied_role or 'nothing'}, "
                "not next or current: enrolledKeys names a key this stack did not deploy as that generation",
                region,
            )
