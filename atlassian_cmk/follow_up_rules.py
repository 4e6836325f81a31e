"""The break-glass follow-up pull request: a declared revocation must record what the keys carry.

After `cmkctl revoke` (with `--override-reencryption-guard` while re-encryption may run), the
keys are Disabled and carry the current revocation record (`atlassian_cmk.records`). The pull
request that catches the stack file up (`enabled: false` and the `atlassian-cmk:revocation`
block cmkctl printed) disables nothing, and the guardrail allows it only as that follow-up
(issue 12 items 5 and 7):

- its block (`id`, `reason`, `ticket`, `override`) equals the keys' CURRENT record (tags
  `revocation-id`, `revocation-reason`, `revocation-ticket`, `guard-override`) on every held key.
  The program writes `reason` and `ticket` onto the keys (`naming.key_tags`), so a block that
  differs would rewrite the break-glass record on apply; an `id` no key carries is a stale copy;
- while re-encryption is declared or deployed in progress, every held key must carry such a
  record, and the pull request must not also change `reencryption.status` (two reviewed changes).

Outside re-encryption the same equality holds whenever a key carries a current record or the
block claims one (an `id` or `override`); a revocation through the pull request alone (keys
Enabled, no record yet) carries neither, and nothing is compared.

One rule for the policy pack (the deployed keys, `held_keys`) and `cmkctl impact` (no AWS
access: the base branch stands for what was applied, and the record is unknown, so only its
shape is checked: an override is required where the guard must have been overridden). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from atlassian_cmk.config import Reencryption, Revocation
from atlassian_cmk.evidence import reencryption_evidence
from atlassian_cmk.live_keys import LiveKey
from atlassian_cmk.naming import TAG_GUARD_OVERRIDE, TAG_REVOCATION_ID, TAG_REVOCATION_REASON, TAG_REVOCATION_TICKET
from atlassian_cmk.realm_findings import RealmFinding
from atlassian_cmk.records import has_current_revocation

BLOCK_FIELDS: Final = (
    ("id", TAG_REVOCATION_ID),
    ("reason", TAG_REVOCATION_REASON),
    ("ticket", TAG_REVOCATION_TICKET),
    ("override", TAG_GUARD_OVERRIDE),
)
"""`atlassian-cmk:revocation` field -> the key's record tag it must equal ("" and absent alike)."""

QUOTE_AT: Final = 40
"""Each value a refusal quotes is cut here: two values and the advice stay within MESSAGE_LIMIT."""

FOLLOW_UP_ADVICE: Final = (
    "copy the atlassian-cmk:revocation block cmkctl revoke printed, unchanged, and keep reencryption.status as deployed"
)


class FollowUpFinding(RealmFinding):
    """A follow-up pull request that does not match the keys' record (its advice is FOLLOW_UP_ADVICE)."""


@dataclass(frozen=True)
class HeldKey:
    """One held key as the rule needs it: its region, whether it is Disabled, its deployed
    `atlassian-cmk:reencryption` tag (None: absent), and its current revocation record as
    block field -> value (None when no current record; "" fields dropped)."""

    region: str
    disabled: bool
    reencryption: str | None
    record: Mapping[str, str] | None


def held_key(key: LiveKey) -> HeldKey:
    """A live key as the rule sees it (a restored, closed record is history: no current record)."""
    record = (
        {name: key.tags[tag] for name, tag in BLOCK_FIELDS if key.tags.get(tag)}
        if has_current_revocation(key.tags)
        else None
    )
    return HeldKey(key.region, key.key_state == "Disabled", key.reencryption, record)


def _quoted(value: str | None) -> str:
    """The value in quotes, cut at QUOTE_AT (its length said outside the quotes); "(none)" when absent."""
    if not value:
        return "(none)"
    return repr(value) if len(value) <= QUOTE_AT else f"{value[: QUOTE_AT - 1]!r}… ({len(value)} characters)"


def _block(revocation: Revocation | None) -> dict[str, str]:
    if revocation is None:
        return {}
    values = {
        "id": revocation.id,
        "reason": revocation.reason,
        "ticket": revocation.ticket,
        "override": revocation.override,
    }
    return {name: value for name, value in values.items() if value}


def follow_up_findings(
    revocation: Revocation | None,
    declared: Reencryption,
    applied_statuses: Iterable[tuple[str | None, str | None]],
    keys: Sequence[HeldKey] | None,
) -> tuple[FollowUpFinding, ...]:
    """Why a configuration declaring `enabled: false` is not the follow-up the keys' record allows.

    `revocation`: the config block; `declared`: the configuration's re-encryption;
    `applied_statuses`: (region or None, status) as applied: each held key's deployed
    `atlassian-cmk:reencryption` tag (the pack), or (None, the base branch's status) (`cmkctl
    impact`); `keys`: every held key (current and recorded next generation) as read, or None when
    they cannot be read here (`cmkctl impact`: only the block's shape is judged then).

    Empty when it matches, when nothing applies (no record, no claim, no re-encryption), or when a
    key is still not Disabled while re-encryption may run (the guard's own refusal says that:
    `guards.revocation_during_reencryption`).
    """
    applied = list(applied_statuses)
    running = declared.in_progress or any(reencryption_evidence(status).may_run for _region, status in applied)
    block = _block(revocation)
    claims = "id" in block or "override" in block
    if keys is not None and running and not all(key.disabled for key in keys):
        return ()
    findings: list[FollowUpFinding] = []
    if running:
        # Two reviewed changes: recording the revocation, and any change of the status (as elsewhere).
        findings += [
            FollowUpFinding(
                f"reencryption.status {_quoted(declared.status)} is not the applied {_quoted(status or '')}: a pull "
                "request that records a revocation during re-encryption cannot also change the status",
                region,
            )
            for region, status in applied
            if status != declared.status
        ]
    if keys is None:
        if running:
            # The guard refuses break-glass during re-encryption unless overridden, so the record it wrote
            # has an id and an override (`workflows.record_plan.revocation_tags`).
            findings += [
                FollowUpFinding(
                    f"the revocation block has no {name}; the keys' record has one, written by cmkctl revoke"
                )
                for name in ("id", "override")
                if name not in block
            ]
        return tuple(findings)
    recorded = [key for key in keys if key.record is not None]
    if running or recorded:
        for key in keys:
            if key.record is None:
                if running or key.disabled:
                    findings.append(
                        FollowUpFinding(
                            "the key carries no current revocation record (disabled outside cmkctl revoke?); "
                            "run cmkctl revoke again to write it",
                            key.region,
                        )
                    )
                continue
            findings += [
                FollowUpFinding(
                    f"the revocation block's {name} {_quoted(block.get(name))} is not the keys' "
                    f"{_quoted(key.record.get(name))} ({tag})",
                    key.region,
                )
                for name, tag in BLOCK_FIELDS
                if block.get(name, "") != key.record.get(name, "")
            ]
    elif claims:
        what = f"id {_quoted(block['id'])}" if "id" in block else f"override {_quoted(block['override'])}"
        findings.append(
            FollowUpFinding(
                f"the revocation block's {what} names a record no key carries now (a stale copy?); a "
                "revocation made by this pull request alone has no id or override"
            )
        )
    return tuple(findings)
