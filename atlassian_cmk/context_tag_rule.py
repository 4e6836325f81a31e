"""The context tag cannot change once the keys are deployed: the rule, as realm findings.

Atlassian enrols a stack's keys with its context tag, and the key policy's encryption-context
conditions name it (`atlassian_cmk.key_policy`). A different tag denies every Atlassian request,
so changing it is a stealth revocation. The program writes the tag on every key
(`naming.TAG_CONTEXT_TAG`, in `naming.key_tags`); this rule compares the stack's tag with the
deployed keys' tags. A deployed key without the tag (deployed before the tag existed) is allowed,
so existing stacks adopt it with their next deployment.
"""

from __future__ import annotations

from collections.abc import Iterator

from atlassian_cmk.live_keys import DeployedState
from atlassian_cmk.naming import TAG_CONTEXT_TAG
from atlassian_cmk.realm_findings import RealmFinding


def context_tag_findings(context_tag: str, deployed: DeployedState) -> Iterator[RealmFinding]:
    """One finding per deployed key whose `atlassian-cmk:context-tag` differs from `context_tag`."""
    for key in deployed.live_keys():
        enrolled = key.tags.get(TAG_CONTEXT_TAG)
        if enrolled is not None and enrolled != context_tag:
            yield RealmFinding(
                f"the deployed key ({key.arn}) is enrolled with context tag {enrolled!r} and the stack declares "
                f"{context_tag!r}; the tag is immutable once enrolled with Atlassian, and a different one denies "
                "every Atlassian request",
                key.region,
            )
