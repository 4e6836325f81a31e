"""`cmkctl drill --reencryption`: a whole re-encryption walked on the drill's own keys.

The steps of README "Re-encrypting, step by step", with the stack file a reviewed pull request would
leave and the live keys a `pulumi up` would leave (`aws.provision.apply_generations`, from the same
rules as the component: `generations.generations`, `generation_key_tags`), and cmkctl's own commands
where the operator runs them: `enroll`, `enroll --next`, `status` at every phase, a `revoke` refused
while in-progress, and the final `revoke` that leaves every drill key disabled. Atlassian's side (the
re-encryption ticket, the re-encryption itself) is manual and only named.

The walk gets its operations injected (`ReencryptionDrill`): it knows nothing of how the drill runs
a command or writes a file, and nothing of `cli.main`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final, Protocol

from atlassian_cmk.config import Reencryption, StackConfig
from atlassian_cmk.exit_codes import ExitCode

TICKET: Final = "DRILL-RE-1"
"""The re-encryption ticket the drill's stack file names (no real Atlassian ticket exists)."""

STEP_ENROLL: Final = "enroll: generation 1 recorded as enrolledKeys"
STEP_STATUS_ONE: Final = "status: one generation, as declared"
STEP_STATUS_PREPARING: Final = "status preparing: generation 2 read through its /next alias"
STEP_ENROLL_NEXT: Final = "enroll --next: generation 2 recorded as nextKeys"
STEP_STATUS_NEXT: Final = "status preparing: both generations recorded"
STEP_REVOKE_REFUSED: Final = "revoke while in-progress: refused by the guard"
STEP_NOTHING_DISABLED: Final = "after the refusal: every key of both generations still enabled"
STEP_STATUS_IN_PROGRESS: Final = "status in-progress"
STEP_STATUS_COMPLETE: Final = "status complete"
STEP_PROMOTED: Final = "promote: the stack's alias names generation 2, no key created or deleted"
STEP_STATUS_PROMOTED: Final = "status promoted: generation 2 current, generation 1 retired"
STEP_RETIRED: Final = "retire: generation 1 disabled, generation 2 enabled"
STEP_STATUS_RETIRED: Final = "status retired"
STEP_LEFT_DISABLED: Final = "leave the drill keys disabled"
STEP_ALL_DISABLED: Final = "every drill key disabled, none deleted"


class StepFunction(Protocol):
    def __call__(self, name: str, expected: ExitCode, *args: str, show: bool = False) -> object: ...


@dataclass(frozen=True)
class ReencryptionDrill:
    """What the walk may do, supplied by `cli.drill.run_drill`.

    `step`: run a cmkctl command against the drill stack and record it (name, expected exit code, argv).
    `check`: record a step the drill verifies itself (name, ok, one line of detail).
    `write_config` / `reload_config`: the drill stack's file (a reviewed change merged) / as a command left it.
    `apply`: `pulumi up` of that config on the live keys (`apply_generations`); `create_next`: the
    next generation's keys created as the program creates them (alias `/next`).
    `key_states`: generation number -> region -> KeyState, read now; `alias_targets`: region -> the ARN
    `alias/atlassian-cmk/<stack>` names; `arns`: generation number -> region -> ARN of the keys the drill made.
    """

    step: StepFunction
    check: Callable[[str, bool, str], object]
    write_config: Callable[[StackConfig], None]
    reload_config: Callable[[], StackConfig]
    apply: Callable[[StackConfig], None]
    create_next: Callable[[StackConfig], None]
    key_states: Callable[[], dict[int, dict[str, str]]]
    alias_targets: Callable[[], dict[str, str]]
    arns: Callable[[], dict[int, dict[str, str]]]
    key_count: Callable[[], int]


def _with_status(config: StackConfig, status: str) -> StackConfig:
    ticket = None if status == "none" else TICKET
    return replace(config, reencryption=Reencryption(status=status, ticket=ticket))  # type: ignore[arg-type]


def _merge(drill: ReencryptionDrill, config: StackConfig) -> StackConfig:
    """A reviewed change merged and applied: the stack file says it, the live keys hold it."""
    drill.write_config(config)
    drill.apply(config)
    return config


def _states_line(states: dict[int, dict[str, str]]) -> str:
    return "; ".join(
        f"generation {number}: " + ", ".join(f"{region} {state}" for region, state in regions.items())
        for number, regions in sorted(states.items())
    )


def walk_reencryption(drill: ReencryptionDrill, config: StackConfig) -> None:
    """The re-encryption drill's steps, in order (see the module text); each records itself.

    While two generations are enrolled `cmkctl status` reads CloudTrail's evidence of Atlassian's use of
    the drill keys. Atlassian never uses them (on AWS, and on the emulator, which its principals never
    call), so the evidence is absent, not unknown, and status exits 0. Where CloudTrail cannot be read
    status fails closed with exit 3, and the drill's step fails, naming why.
    """
    two_generations = ExitCode.AS_DECLARED
    revoke = ("revoke", "--reason", "Re-encryption drill", "--ticket", "DRILL-1", "--yes")
    drill.write_config(config)
    drill.step(STEP_ENROLL, ExitCode.AS_DECLARED, "enroll", "--write-config")
    config = _merge(drill, drill.reload_config())
    drill.step(STEP_STATUS_ONE, ExitCode.AS_DECLARED, "status")

    # Prepare: the reviewed change sets `preparing`; its apply creates generation 2 beside generation 1.
    config = _with_status(config, "preparing")
    drill.write_config(config)
    drill.create_next(config)
    drill.apply(config)
    drill.step(STEP_STATUS_PREPARING, ExitCode.AS_DECLARED, "status")
    drill.step(STEP_ENROLL_NEXT, ExitCode.AS_DECLARED, "enroll", "--next", "--write-config")
    config = _merge(drill, drill.reload_config())
    drill.step(STEP_STATUS_NEXT, two_generations, "status")

    # Atlassian's side is manual: the organization admin's ticket hands over nextKeys; Atlassian starts.
    config = _merge(drill, _with_status(config, "in-progress"))
    drill.step(STEP_REVOKE_REFUSED, ExitCode.REFUSED, *revoke)
    states = drill.key_states()
    drill.check(
        STEP_NOTHING_DISABLED,
        all(state == "Enabled" for regions in states.values() for state in regions.values()),
        _states_line(states),
    )
    drill.step(STEP_STATUS_IN_PROGRESS, two_generations, "status")

    config = _merge(drill, _with_status(config, "complete"))
    drill.step(STEP_STATUS_COMPLETE, two_generations, "status")

    # Promotion, its own reviewed change: enrolledKeys takes nextKeys, the old ARNs become retiredKeys.
    if config.enrolled_keys is None or config.next_keys is None:
        drill.check(STEP_PROMOTED, False, "enrolledKeys or nextKeys was not recorded; nothing to promote")
        return
    keys_before = drill.key_count()
    config = _merge(
        drill,
        replace(
            config,
            enrolled_keys=config.next_keys,
            next_keys=None,
            retired_keys=(*config.retired_keys, config.enrolled_keys),
        ),
    )
    arns, targets = drill.arns(), drill.alias_targets()
    drill.check(
        STEP_PROMOTED,
        targets == arns.get(2) and drill.key_count() == keys_before,
        ", ".join(f"{region} -> {arn}" for region, arn in targets.items()),
    )
    drill.step(STEP_STATUS_PROMOTED, two_generations, "status")

    # Retirement, the next reviewed change: status back to none; generation 1 is disabled, never deleted.
    config = _merge(drill, _with_status(config, "none"))
    states = drill.key_states()
    drill.check(
        STEP_RETIRED,
        set(states.get(1, {}).values()) == {"Disabled"} and set(states.get(2, {}).values()) == {"Enabled"},
        _states_line(states),
    )
    drill.step(STEP_STATUS_RETIRED, ExitCode.AS_DECLARED, "status")

    drill.step(STEP_LEFT_DISABLED, ExitCode.AS_DECLARED, *revoke, "--write-config")
    states = drill.key_states()
    drill.check(
        STEP_ALL_DISABLED,
        all(state == "Disabled" for regions in states.values() for state in regions.values())
        and drill.key_count() == keys_before,
        _states_line(states),
    )


__all__ = ["TICKET", "ReencryptionDrill", "walk_reencryption"]
