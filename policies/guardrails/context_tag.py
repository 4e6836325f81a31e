"""context-tag-unchanged: the stack's contextTag must equal the deployed keys' enrolled tag.

A realm rule (framework.realm_policy): a changed tag denies Atlassian in every region, so every key
of the realm is held back. The rule is `atlassian_cmk.context_tag_rule.context_tag_findings`.
Kept in its own module so the pack's other realm rules change without touching it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from atlassian_cmk.context_tag_rule import context_tag_findings
from atlassian_cmk.realm_findings import RealmFinding

from .context import unreadable_suffix
from .framework import Realm, realm_policy
from .settings import CONTEXT_TAG_POLICY

DESCRIPTION = (
    "Checks whether the stack's atlassian-cmk:contextTag equals the tag the deployed keys were enrolled with "
    "(their atlassian-cmk:context-tag tag); a different tag denies every Atlassian request."
)


def findings(realm: Realm, settings: Mapping[str, Any]) -> Iterator[RealmFinding]:
    if not settings["liveStateCheck"]:
        return
    state = realm.deployed()
    if state.errors():
        yield RealmFinding(
            "the deployed keys' context tag cannot be read, so the policy fails closed" + unreadable_suffix()
        )
        return
    yield from context_tag_findings(realm.config.context_tag, state)


def policy() -> ResourceValidationPolicy:
    return realm_policy(
        CONTEXT_TAG_POLICY,
        DESCRIPTION,
        EnforcementLevel.MANDATORY,
        findings,
        advice="Set atlassian-cmk:contextTag back to the enrolled tag (quoted as written when enrolled).",
    )
