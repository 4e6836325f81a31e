"""keys-are-never-deleted: CMK keys are protected, keep the longest deletion window, and carry
nothing that would delete them.

A policy sees no delete operations, only the new inputs and options of the resources that stay;
`protect` is what makes a removed key or a `pulumi destroy` fail instead of scheduling deletion.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import EnforcementLevel, PolicyResourceOptions, ResourceValidationPolicy

from atlassian_cmk.config import shorten_repr
from atlassian_cmk.key_set import DELETION_WINDOW_DAYS

from .framework import resource_policy
from .resources import CmkKey, Unknown, known
from .settings import DELETION_POLICY

DESCRIPTION = (
    f"Checks whether every CMK key is protected, keeps a {DELETION_WINDOW_DAYS}-day deletion window and has no "
    "deletion-related input or option."
)

WHY: Final = (
    "Deleting a CMK key destroys the organization's Atlassian data encrypted under it, and the backups it "
    "protects: KMS deletion is the one irreversible step, and without the key Atlassian can never decrypt again."
)

WINDOW_INPUT: Final = "deletionWindowInDays"
_DELETION_INPUT_RE: Final = re.compile(r"delet|destroy|purge", re.IGNORECASE)


def check(key: CmkKey, opts: PolicyResourceOptions, _settings: Mapping[str, Any]) -> Iterator[str]:
    if not opts.protect:
        yield (
            f"{key.label} is not protected (protect is false), so removing it from the program or `pulumi destroy` "
            f"would schedule its deletion. {WHY} Keep protect=True (and retain_on_delete=True) on every CMK key."
        )
    window = known(key.props, WINDOW_INPUT)
    if isinstance(window, Unknown):
        yield f"the {WINDOW_INPUT} of {key.label} is unknown until apply; set it to {DELETION_WINDOW_DAYS}"
    elif window is not None and window != DELETION_WINDOW_DAYS:
        yield (
            f"{key.label} has {WINDOW_INPUT} {window:g} days; it must be {DELETION_WINDOW_DAYS} (the longest KMS "
            f"allows), the most time to cancel a deletion scheduled by mistake. {WHY}"
            if isinstance(window, int | float)
            else f"{key.label} has {WINDOW_INPUT} {shorten_repr(window)}; it must be {DELETION_WINDOW_DAYS}. {WHY}"
        )
    for name in sorted(key.props):
        if name != WINDOW_INPUT and _DELETION_INPUT_RE.search(name):
            yield f"{key.label} sets the deletion-related input {name}; remove it. {WHY}"
    if opts.delete_before_replace:
        yield (
            f"{key.label} has deleteBeforeReplace set: a replacement would delete the key Atlassian holds before "
            f"creating one it has never been given. {WHY} Remove the option."
        )


def policy() -> ResourceValidationPolicy:
    return resource_policy(DELETION_POLICY, DESCRIPTION, EnforcementLevel.MANDATORY, check)
