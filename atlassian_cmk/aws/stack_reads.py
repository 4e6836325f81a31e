"""Reading a stack's keys for cmkctl: every generation it acts on, and who is acting, in one round.

The guard's evidence (each key's state and tags), the alias, and the caller identity do not depend
on each other, so they go out at once: the first round trip of a revoke is all its reads, and the
second is DisableKey (issue 14 item 8). `max_workers=1` reads region after region (the benchmark's
baseline only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from atlassian_cmk.aws.cloudtrail import read_reencryption_activity
from atlassian_cmk.aws.identity import Identity, read_identity
from atlassian_cmk.aws.kms_reads import ClientFactory, read_deployed_state, read_key_policies
from atlassian_cmk.config import StackConfig
from atlassian_cmk.evidence import KeyPolicies
from atlassian_cmk.key_identity import KeyGeneration
from atlassian_cmk.live_keys import DeployedState, LiveKey
from atlassian_cmk.naming import CURRENT_KEY_PAIR, alias_name


def read_generation(
    stack: str,
    regions: tuple[str, ...],
    keys: KeyGeneration | None,
    alias: str,
    client_factory: ClientFactory,
    *,
    max_workers: int | None = None,
) -> DeployedState:
    """One generation's keys: by their recorded ARNs (every recorded region), else through `alias`."""
    if max_workers != 1:
        return read_deployed_state(stack, regions, key_pair_alias=alias, client_factory=client_factory, enrolled=keys)
    targets = keys.regions if keys is not None else regions
    parts = [
        read_deployed_state(
            stack,
            (region,),
            key_pair_alias=alias,
            client_factory=client_factory,
            enrolled=None if keys is None else KeyGeneration({region: keys.keys[region]}),
        )
        for region in targets
    ]
    return DeployedState(stack, alias, tuple(r for part in parts for r in part.readings), keys is not None)


def read_state(
    stack: str,
    config: StackConfig,
    client_factory: ClientFactory,
    *,
    max_workers: int | None = None,
    now: datetime | None = None,
) -> DeployedState:
    """The current generation: the enrolled keys by ARN once enrolled, else through the stack's alias;
    while two generations are enrolled, with CloudTrail's evidence of re-encryption (as of `now`,
    default: the clock), read beside the keys (it is paced, `aws.cloudtrail`)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        trail = pool.submit(read_reencryption_activity, config, client_factory, now=now or datetime.now(UTC))
        state = read_generation(
            stack, config.regions, config.enrolled_keys, alias_name(stack), client_factory, max_workers=max_workers
        )
        return dataclasses.replace(state, reencryption_activity=trail.result())


def read_generations_and_identity(
    stack: str,
    config: StackConfig,
    generations: Sequence[tuple[KeyGeneration | None, str]],
    client_factory: ClientFactory,
    *,
    now: datetime,
    max_workers: int | None = None,
    with_policies: bool = False,
) -> tuple[tuple[DeployedState, ...], Identity, KeyPolicies | None]:
    """Each generation's keys (recorded ARNs or alias, as `read_generation`) and the caller, all at once;
    the first generation (the current one) carries CloudTrail's evidence of re-encryption while two
    generations are enrolled (`read_reencryption_activity`: no request otherwise), read BEFORE the keys
    (the keys' reads are then the freshest at the moment of use, below).

    `with_policies`: also every generation's key policies (`KeyPolicies`, by key ARN, else None): the tags of
    each generation are evidence the guard trusts, so each key's policy is judged (`evidence.
    deployed_evidence_protection`). A recorded generation's are read by key ID in this same round (one
    GetKeyPolicy per key: 2 per region with two generations); one found through its alias (before
    enrollment) needs the key IDs the read finds, one more round, only then.
    Raises CredentialsProblem (one line, exit 3) when the profile or credentials are unusable.
    """
    with ThreadPoolExecutor(max_workers=3 + len(generations)) as pool:
        identity = pool.submit(read_identity, client_factory, config.regions[0])
        # CloudTrail first, the keys after it. Its lookups are paced (2 per second per region: seconds with two
        # generations enrolled), and what the keys read says decides what the run writes next (the open record
        # it must not overwrite, the evidence the guard judges): a key read beside the lookups would be seconds
        # old at DisableKey. Two revokes at once on a two-generation stack then each read the keys before the
        # other's record landed, and the later one overwrote the earlier record after that run had reported
        # it (issue 15's attack). Reading after costs one KMS round, only when CloudTrail is read at all.
        activity = read_reencryption_activity(config, client_factory, now=now)
        # Every recorded generation's key policies (the evidence protection the guard checks), by key ID, in
        # this same round; one read through its alias needs the key ID the read finds (after it).
        recorded = [keys for keys, _ in generations if keys is not None]
        policies = None
        if with_policies and recorded:
            policies = pool.submit(read_key_policies_by_id, recorded, client_factory)
        states = [
            pool.submit(read_generation, stack, config.regions, keys, alias, client_factory, max_workers=max_workers)
            for keys, alias in generations
        ]
        read = [state.result() for state in states]
        read[0] = dataclasses.replace(read[0], reencryption_activity=activity)
        key_policies: KeyPolicies | None = None
        if with_policies:
            by_id: KeyPolicies = policies.result() if policies is not None else ({}, {})
            unrecorded = [state for (keys, _), state in zip(generations, read, strict=True) if keys is None]
            through_alias = [key for state in unrecorded for key in state.live_keys()]
            after = read_key_policies(through_alias, client_factory) if through_alias else ({}, {})
            key_policies = ({**by_id[0], **after[0]}, {**by_id[1], **after[1]})
        return tuple(read), identity.result(), key_policies


def read_key_policies_by_id(generations: Sequence[KeyGeneration], client_factory: ClientFactory) -> KeyPolicies:
    """(key ARN -> key policy JSON, key ARN -> why unreadable) of recorded keys, by the key IDs in their ARNs,
    every generation and region at once: what `kms_reads.read_key_policies` returns, without waiting for
    DescribeKey."""
    stand_ins = [
        LiveKey(region, key.key_id, key.arn, "unknown", False)
        for keys in generations
        for region, key in keys.keys.items()
    ]
    return read_key_policies(stand_ins, client_factory)


def read_state_and_identity(
    stack: str,
    config: StackConfig,
    client_factory: ClientFactory,
    *,
    max_workers: int | None = None,
    through_alias: bool = False,
    key_pair: str = CURRENT_KEY_PAIR,
    now: datetime | None = None,
) -> tuple[DeployedState, Identity]:
    """The current generation (`read_state`) and who is acting, in one concurrent round.

    `through_alias`: the keys the alias of `key_pair` names (`alias/atlassian-cmk/<stack>`, or
    `.../next`), with their key policies, whatever is enrolled (what `cmkctl enroll [--next]` checks
    before it records them). Raises CredentialsProblem (one line, exit 3)
    when the profile or credentials are unusable, instead of reporting the same cause once per region.
    """
    with ThreadPoolExecutor(max_workers=2) as pool:
        identity = pool.submit(read_identity, client_factory, config.regions[0])
        if through_alias:
            deployed = read_deployed_state(
                stack,
                config.regions,
                key_pair_alias=alias_name(stack, key_pair),
                client_factory=client_factory,
                with_policy=True,
            )
        else:
            deployed = read_state(stack, config, client_factory, max_workers=max_workers, now=now)
        return deployed, identity.result()
