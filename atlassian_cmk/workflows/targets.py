"""Which key generations break-glass acts on (pure).

Atlassian holds every generation whose ARNs it was given: the current one (enrolledKeys) and,
from `preparing` on, the next one (nextKeys, or the keys behind `alias/atlassian-cmk/<stack>/next`
before they are recorded). After promotion the retired generation stays enabled during
`complete` (backups still use it, `generations.retired_enabled`), so a revocation then disables
it too. Retired keys outside `complete` are disabled already and never touched.

Restore enables the **current** generation only, in every phase: never a retired one, and never
the next one either. Break-glass restores the least access that ends the incident; the next
generation (preparing, in-progress) comes back through the reviewed change restore prints
(`enabled: true`), whose `pulumi up` enables it as the program declares
(`generations.generations`: the next generation's state follows `enabled`). While it is
disabled, Atlassian cannot continue a re-encryption; the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from atlassian_cmk.config import StackConfig
from atlassian_cmk.generations import CURRENT, NEXT, RETIRED, GenerationRole, generations
from atlassian_cmk.key_identity import KeyGeneration
from atlassian_cmk.naming import alias_name


@dataclass(frozen=True)
class Target:
    """One generation break-glass reads: its role, number, recorded ARNs (None: read through `alias`)."""

    role: GenerationRole
    number: int
    keys: KeyGeneration | None
    alias: str

    @property
    def label(self) -> str:
        return f"generation {self.number} ({self.role})"


def _target(stack: str, role: GenerationRole, number: int, keys: KeyGeneration | None) -> Target:
    # Retired keys have no alias of their own; they are always addressed by their recorded ARNs.
    return Target(role, number, keys, alias_name(stack, role))


def revoke_targets(config: StackConfig, stack: str) -> tuple[Target, ...]:
    """Current first, then next (when the stack has one), then the retired generations while the
    re-encryption is `complete` (the program keeps them enabled then, `generations.retired_enabled`)."""
    stack_generations = generations(config)
    chosen = [g for g in stack_generations if g.role == CURRENT]
    chosen += [g for g in stack_generations if g.role == NEXT]
    if config.reencryption.status == "complete":
        chosen += [g for g in reversed(stack_generations) if g.role == RETIRED]
    return tuple(_target(stack, g.role, g.number, g.keys) for g in chosen)


def restore_targets(config: StackConfig, stack: str) -> tuple[Target, ...]:
    """The current generation only (see the module's docstring for why not the next one)."""
    return tuple(_target(stack, g.role, g.number, g.keys) for g in generations(config) if g.role == CURRENT)


def other_held_targets(config: StackConfig, stack: str) -> tuple[Target, ...]:
    """The generations restore reads but leaves alone: the next one (reported when it stays disabled)."""
    return tuple(_target(stack, g.role, g.number, g.keys) for g in generations(config) if g.role == NEXT)
