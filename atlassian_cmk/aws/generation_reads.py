"""Reading every key generation the stack holds: current, next and retired, per region.

`cmkctl status` shows each generation's keys (issue 15 item 4). The current generation is the
deployed state every command reads already; the others are read here the same way: by their
recorded ARNs (`nextKeys`, `retiredKeys`), or, for a next generation not recorded yet (the
`preparing` phase before `cmkctl enroll --next`), through its alias `alias/atlassian-cmk/<stack>/next`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from atlassian_cmk.aws.kms_reads import ClientFactory, read_deployed_state
from atlassian_cmk.config import StackConfig
from atlassian_cmk.generations import CURRENT, NEXT, Generation, generations
from atlassian_cmk.live_keys import DeployedState, GenerationKeys
from atlassian_cmk.naming import alias_name


def read_generations(
    stack: str, config: StackConfig, current: DeployedState, client_factory: ClientFactory
) -> tuple[GenerationKeys, ...]:
    """Every generation of `generations(config)`, oldest first, with its keys as read now.

    `current`: the deployed state already read for the current generation (not read twice).
    Only DescribeKey and ListResourceTags per key (and DescribeKey of the alias), concurrently.
    """

    def read(generation: Generation) -> GenerationKeys:
        recorded = generation.keys is not None
        if generation.role == CURRENT:
            return GenerationKeys(generation.number, generation.role, recorded, current)
        # A recorded generation is read by ARN (its alias only as context); an unrecorded next one through
        # alias/atlassian-cmk/<stack>/next. Retired generations are always recorded (retiredKeys).
        alias = alias_name(stack, NEXT) if generation.role == NEXT else alias_name(stack)
        state = read_deployed_state(
            stack, config.regions, key_pair_alias=alias, client_factory=client_factory, enrolled=generation.keys
        )
        return GenerationKeys(generation.number, generation.role, recorded, state)

    held = generations(config)
    if len(held) == 1:
        return (GenerationKeys(held[0].number, held[0].role, held[0].keys is not None, current),)
    with ThreadPoolExecutor(max_workers=len(held)) as pool:
        return tuple(pool.map(read, held))
