"""The JSON document's per-key rows of a revoke or restore (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from atlassian_cmk.documents import RegionAction, RegionResult
from atlassian_cmk.live_keys import DeployedState
from atlassian_cmk.workflows.changes import RegionChange


def unchanged_results(states: Sequence[tuple[str, DeployedState]], action: RegionAction) -> list[RegionResult]:
    """One row per key read, nothing changed: `states` is (generation role, its keys) pairs."""
    return [
        RegionResult(
            r.region,
            r.key.arn if r.key else None,
            r.key.key_state if r.key else None,
            r.key.key_state if r.key else None,
            action,
            None,
            r.error,
            role,
        )
        for role, deployed in states
        for r in deployed.readings
    ]


def change_results(
    states: Sequence[tuple[str, DeployedState]],
    changes: Sequence[RegionChange],
    action: RegionAction,
    record_tag: str,
) -> list[RegionResult]:
    """One row per key acted on: its state before (as first read) and after (read back), the record."""
    before = {
        (role, r.region): r.key.key_state if r.key else None for role, deployed in states for r in deployed.readings
    }
    results = []
    for change in changes:
        key = change.key
        did: RegionAction = {
            "changed": action,
            "unchanged": "none",
            "refused": "refused",
            "not-deployed": "not-deployed",
        }.get(change.outcome, "failed")
        record = {k: v for k, v in key.tags.items() if k.startswith("atlassian-cmk:") and v} if key else None
        results.append(
            RegionResult(
                region=change.region,
                key_arn=key.arn if key else None,
                before=before.get((change.generation, change.region)),
                after=key.key_state if key else None,
                action=did,
                record=record if key is not None and record_tag in key.tags else None,
                error=None if change.converged else change.detail,
                generation=change.generation,
            )
        )
    return results
