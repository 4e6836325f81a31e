"""Names the product writes on AWS: aliases and tags.

The program writes them, the policy pack reads them from inputs and from the live keys, and
cmkctl finds the keys by them: one definition keeps the three in step.
"""

from __future__ import annotations

import re
from typing import Final

from atlassian_cmk.config import StackConfig

ALIAS_PREFIX: Final = "alias/atlassian-cmk"

COMPONENT_TYPE: Final = "atlassian-cmk:index:CmkKeyPair"
"""The component's type token: in every CMK key's URN, which is how the policy pack recognizes them."""

TAG_STACK: Final = "atlassian-cmk:stack"
TAG_REGION: Final = "atlassian-cmk:region"
TAG_KEY_PAIR: Final = "atlassian-cmk:key-pair"
TAG_ENABLED: Final = "atlassian-cmk:enabled"
TAG_REENCRYPTION: Final = "atlassian-cmk:reencryption"
TAG_ENROLLED: Final = "atlassian-cmk:enrolled"
"""Evidence written by the program once a generation's ARNs are recorded (current: `enrolledKeys`,
next: `nextKeys`, retired: its `retiredKeys` entry): these keys were handed to Atlassian.

The policy pack refuses a stack whose configuration no longer records a generation while a key it
reads through that generation's alias carries this tag (`identity_rules.removed_enrollment_findings`):
removing enrolledKeys would make every tool trust the alias again, removing nextKeys would turn off
the CloudTrail cross-check of re-encryption. An evidence tag (`evidence.EVIDENCE_TAGS`): the key
policy denies tagging or untagging it to every principal but the CI apply role."""
TAG_CONTEXT_TAG: Final = "atlassian-cmk:context-tag"
"""The context tag the key is enrolled with; the pack refuses a stack whose contextTag differs from it. An
evidence tag (`evidence.EVIDENCE_TAGS`): only the CI apply role may tag or untag it."""
TAG_REVOCATION_REASON: Final = "atlassian-cmk:revocation-reason"
TAG_REVOCATION_TICKET: Final = "atlassian-cmk:revocation-ticket"
# Written only by `cmkctl revoke`/`restore` (the break-glass path): a deployment cannot know
# the wall-clock time of its own apply without a perpetual diff.
TAG_REVOCATION_ID: Final = "atlassian-cmk:revocation-id"
"""`rev-<UTC time>-<random>` (`records.new_revocation_id`): which break-glass revocation the record on the
key belongs to; the key of the write-once record slot (see `atlassian_cmk.evidence`)."""
TAG_REVOKED_AT: Final = "atlassian-cmk:revoked-at"
TAG_REVOKED_BY: Final = "atlassian-cmk:revoked-by"
TAG_GUARD_OVERRIDE: Final = "atlassian-cmk:guard-override"
TAG_RESTORED_AT: Final = "atlassian-cmk:restored-at"
TAG_RESTORED_BY: Final = "atlassian-cmk:restored-by"
TAG_RESTORE_TICKET: Final = "atlassian-cmk:restore-ticket"
TAG_DRILL: Final = "atlassian-cmk:drill"
TAG_LEASE: Final = "atlassian-cmk:lease"
"""The break-glass lease (`atlassian_cmk.lease`): which cmkctl revoke/restore is changing the keys right
now; "" once released."""
TAG_LAST_REVOKE: Final = "atlassian-cmk:last-revoke"
"""The last `cmkctl revoke` that ran on the key, in the lease's format (`atlassian_cmk.lease`: its id, which
holds its start time, ticket, expiry, holder). Written by every revoke beside DisableKey and never blanked:
the lease is last-writer-wins and a restore overwrites it, so this is the trace a restore re-reads to know
a revoke ran meanwhile (docs/cmkctl.md, "Two operators at once"). Coordination, not evidence."""
RECORD_TAGS: Final = (
    TAG_REVOCATION_ID,
    TAG_REVOKED_AT,
    TAG_REVOKED_BY,
    TAG_GUARD_OVERRIDE,
    TAG_RESTORED_AT,
    TAG_RESTORED_BY,
    TAG_RESTORE_TICKET,
    TAG_DRILL,
    TAG_LEASE,
    TAG_LAST_REVOKE,
)
"""The break-glass record and lease `cmkctl` writes on the keys; a deployment never declares, changes or
removes them (the provider's `ignore_tags`: `pulumi up` never clears a lease, and is never blocked by one)."""

KEY_DESCRIPTION: Final = "Atlassian Cloud customer-managed key ({stack}, {region})"
"""Every CMK key's description; `str.format` it with the stack and region."""

CURRENT_KEY_PAIR: Final = "current"
"""The key pair Atlassian uses today; a re-encryption adds another pair under a new name."""


STACK_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,100}\Z")
"""A stack name both Pulumi and KMS accept: Pulumi allows letters, digits, `_`, `.`, `-`, at most
100 (`sdk/go/common/tokens/stack_name.go` ParseStackName); a KMS alias name (`alias/atlassian-cmk/<stack>`)
allows letters, digits, `/`, `_`, `-` (`:` too). Never `/` or `.`, so never a path."""


def stack_name_problem(stack: str) -> str | None:
    """Why `stack` cannot name a stack of this product, or None."""
    if STACK_NAME_RE.match(stack):
        return None
    return "allowed: 1-100 letters, digits, _ or - (a Pulumi stack name that a KMS alias can hold; never a path)"


def alias_name(stack: str, key_pair: str = CURRENT_KEY_PAIR) -> str:
    """`alias/atlassian-cmk/<stack>` for the current pair; a further pair gets its own suffix."""
    if key_pair == CURRENT_KEY_PAIR:
        return f"{ALIAS_PREFIX}/{stack}"
    return f"{ALIAS_PREFIX}/{stack}/{key_pair}"


def key_tags(
    config: StackConfig,
    stack: str,
    region: str,
    key_pair: str = CURRENT_KEY_PAIR,
    enabled: bool | None = None,
    *,
    recorded: bool,
) -> dict[str, str]:
    """The tags every CMK key carries, so the live state explains itself to a reader of the console.

    `key_pair`: the generation's role (current, next, retired); `enabled`: the generation's own
    state when it differs from `atlassian-cmk:enabled` (a retired generation), else None;
    `recorded`: whether the stack records THIS generation's ARNs (`generations.Generation.keys`),
    which is what `atlassian-cmk:enrolled=true` says.
    """
    tags = {
        TAG_STACK: stack,
        TAG_REGION: region,
        TAG_KEY_PAIR: key_pair,
        TAG_ENABLED: "true" if (config.enabled if enabled is None else enabled) else "false",
        TAG_REENCRYPTION: config.reencryption.status,
        TAG_CONTEXT_TAG: config.context_tag,
    }
    if recorded:
        # Per generation, not "enrolledKeys exists": a next key is tagged only once nextKeys names it, so the
        # deployed tags tell "never recorded" from "dropped". An in-place tag update, never a replacement:
        # hashicorp/terraform-provider-aws internal/service/kms/key.go declares `tags` as tftags.TagsSchema()
        # (not ForceNew), updated through the resource's @Tags(identifierAttribute="id") TagResource calls.
        tags[TAG_ENROLLED] = "true"
    if not config.enabled and config.revocation is not None:
        tags[TAG_REVOCATION_REASON] = config.revocation.reason
        tags[TAG_REVOCATION_TICKET] = config.revocation.ticket
    return tags
