"""The first round of a revoke or restore: who is acting, where, and every generation's keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from atlassian_cmk.aws.identity import Identity, resolved_endpoints
from atlassian_cmk.aws.stack_reads import read_generations_and_identity
from atlassian_cmk.config import StackConfig
from atlassian_cmk.documents import RunContext
from atlassian_cmk.endpoints import where_by_service
from atlassian_cmk.evidence import KeyPolicies
from atlassian_cmk.generations import CURRENT, generation_place
from atlassian_cmk.live_keys import DeployedState
from atlassian_cmk.workflows.report import Session
from atlassian_cmk.workflows.targets import Target


@dataclass(frozen=True)
class Reading:
    """What the first round read: each target generation's keys (in `targets` order), and the caller."""

    targets: tuple[Target, ...]
    states: tuple[DeployedState, ...]
    identity: Identity
    context: RunContext
    key_policies: KeyPolicies | None = None
    """Every target generation's key policies, by key ARN, when asked for (revoke: the evidence protection of
    every key whose tags the guard trusts)."""

    @property
    def current(self) -> DeployedState:
        return next(state for target, state in self.pairs() if target.role == CURRENT)

    def pairs(self) -> list[tuple[Target, DeployedState]]:
        return list(zip(self.targets, self.states, strict=True))

    def roles(self) -> list[tuple[str, DeployedState]]:
        return [(target.role, state) for target, state in self.pairs()]

    def combined(self) -> DeployedState:
        """Every key read, all generations, as one state: what the guard judges (every key's evidence)."""
        current = self.current
        readings = tuple(r for state in self.states for r in state.readings)
        return DeployedState(current.stack, current.alias, readings, current.enrolled, current.reencryption_activity)

    def key_states(self) -> dict[str, str]:
        """label -> last known KeyState (or unreadable/missing), for the Ctrl-C line."""
        return {
            generation_place(r.region, target.role): (
                r.key.key_state if r.key else ("unreadable" if r.error else "missing")
            )
            for target, state in self.pairs()
            for r in state.readings
        }


def regions_of(config: StackConfig) -> tuple[str, ...]:
    enrolled = config.enrolled_keys
    return enrolled.regions if enrolled is not None else config.regions


def read_targets(
    stack: str, config: StackConfig, targets: Sequence[Target], session: Session, *, with_policies: bool = False
) -> Reading:
    """Who/where and every target generation's keys, in one concurrent round (progress while it waits).

    Building the clients first resolves the profile (AWS_PROFILE=nope is one line, exit 3) and says
    where the requests go, as botocore resolved it."""
    regions = regions_of(config)
    # CloudTrail too: revoke's guard reads the re-encryption evidence and restore the revocation time there.
    endpoints = resolved_endpoints(session.client_factory, ("kms", "sts", "cloudtrail"), regions)
    where = where_by_service(endpoints)
    with session.waiting(f"AWS ({len(regions)} region(s), endpoint {where})"):
        states, identity, key_policies = read_generations_and_identity(
            stack,
            config,
            [(target.keys, target.alias) for target in targets],
            session.client_factory,
            now=session.now(),
            max_workers=session.policy.max_workers,
            with_policies=with_policies,
        )
    context = _context(identity, regions, where, config, states[0].alias)
    reading = Reading(tuple(targets), states, identity, context, key_policies)
    session.on_phase("while reading; nothing was changed", reading.key_states())
    return reading


def _context(identity: Identity, regions: tuple[str, ...], where: str, config: StackConfig, alias: str) -> RunContext:
    return RunContext(
        identity.account,
        identity.arn,
        regions,
        where,
        identity.error,
        alias=alias,
        enrolled_keys=config.enrolled_keys.as_config() if config.enrolled_keys is not None else None,
    )
