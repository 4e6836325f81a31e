"""What a change to the keys means for the organization, in words a reviewer cannot miss.

The Pulumi program logs these texts during `pulumi preview`; `cmkctl impact` puts the same
texts in the pull request. One source, so the preview and the review never tell two stories.
"""

from __future__ import annotations

from atlassian_cmk.config import StackConfig
from atlassian_cmk.display import TEXT_WIDTH, fit_lines
from atlassian_cmk.naming import alias_name
from atlassian_cmk.timeline import (
    DATA_AT_RISK_AFTER,
    DATA_LOSS_WINDOW,
    REINSTATEMENT_WINDOW,
    RESTORATION_TURNAROUND,
    SUSPENSION_AFTER,
)


def regions_phrase(regions: tuple[str, ...]) -> str:
    return " and ".join(regions)


def restore_steps(stack: str) -> list[str]:
    """The two steps that restore access; the second is Atlassian's and stays manual."""
    return [
        f"set atlassian-cmk:enabled: true in Pulumi.{stack}.yaml (or run `cmkctl restore`) so the keys are "
        "enabled in every region",
        "reply on the same Atlassian support ticket that access is restored; Atlassian then reinstates the "
        f"sites, generally within {RESTORATION_TURNAROUND}",
    ]


def revocation_impact(config: StackConfig, stack: str) -> str:
    """The warning for a stack whose keys are (to be) disabled."""
    if config.enrolled_keys is not None:
        keys = [f"  {key.region}: {key.arn}" for key in config.enrolled_keys if key.region in config.regions]
    else:
        keys = [f"  {region}: {alias_name(stack)}" for region in config.regions]
    reason = config.revocation.reason if config.revocation else "(none given)"
    ticket = config.revocation.ticket if config.revocation else "(none given)"
    lines = [
        f"REVOCATION: Atlassian's access to the CMK keys will be revoked: {len(config.regions)} key(s) disabled:",
        *keys,
        f"  Reason: {reason}. Ticket: {ticket}.",
        f"  Atlassian suspends the CMK-enabled sites {SUSPENSION_AFTER} after the keys are disabled; "
        f"{DATA_LOSS_WINDOW} of data written before the revocation may be lost.",
        f"  Sites can be reinstated within {REINSTATEMENT_WINDOW.days} days of the revocation; after "
        f"{DATA_AT_RISK_AFTER.days} days data may not be recoverable.",
        "  To restore: " + "; then ".join(restore_steps(stack)) + ".",
    ]
    if config.reencryption.in_progress:
        lines.append("  " + reencryption_notice(config))
    # Read in a terminal, a CI log and a pull request's code block: each line fits TEXT_WIDTH columns
    # with room for the four columns Pulumi (and the demo) indent a warning by.
    return "\n".join(fit_lines(lines, TEXT_WIDTH - 4))


def reencryption_notice(config: StackConfig) -> str:
    """The notice for a stack that declares re-encryption in progress."""
    ticket = f" (ticket {config.reencryption.ticket})" if config.reencryption.ticket else ""
    return (
        f"RE-ENCRYPTION IN PROGRESS{ticket}: Atlassian is moving data from the old keys to the new ones. "
        "Do not disable keys until it is complete: a revocation now leaves data unevenly readable across "
        "sites. The guardrail policy no-revocation-during-reencryption blocks it."
    )


def is_promotion(base: StackConfig, head: StackConfig) -> bool:
    """Whether `head` promotes `base`'s next generation: its nextKeys enrolled, its enrolled keys retired."""
    return (
        base.next_keys is not None
        and head.enrolled_keys == base.next_keys
        and base.enrolled_keys is not None
        and head.retired_keys[-1:] == (base.enrolled_keys,)
    )


def reencryption_transition(base: StackConfig, head: StackConfig, stack: str) -> tuple[str, str] | None:
    """(summary, details) of a re-encryption transition for the reviewer, or None when there is none."""
    before, after = base.reencryption.status, head.reencryption.status
    regions = regions_phrase(head.regions)
    if is_promotion(base, head):
        return (
            "PROMOTION: the next key generation becomes the one Atlassian uses",
            f"alias {alias_name(stack)} moves to the promoted keys in {regions}; the old keys become retired and stay "
            "enabled (backups protected by them still work) until a later change retires them. No key is replaced "
            "or deleted (each generation keeps its resource names).",
        )
    if base.retired_keys == head.retired_keys and head.retired_keys and before == "complete" and after == "none":
        retired = ", ".join(key.arn for key in head.retired_keys[-1])
        return (
            "RETIREMENT: the retired key generation is disabled",
            f"keys disabled, never deleted: {retired}. Backups protected by them no longer work "
            "(Atlassian cannot restore them); enabling a retired key again is refused.",
        )
    if before == after:
        return None
    if after == "preparing":
        return (
            "PREPARING RE-ENCRYPTION: the next key generation is created beside the current one",
            f"one new key per region ({regions}) with the same key policy, alias {alias_name(stack, 'next')}. "
            "After the apply, record them as atlassian-cmk:nextKeys with `cmkctl enroll --next --write-config` (a "
            "pull request of its own) and hand the stack's nextKeyArns output to Atlassian on the re-encryption "
            "ticket (a manual step: the organization admin requests it from Atlassian support).",
        )
    if after == "in-progress":
        details = reencryption_notice(head)
        if head.next_keys is None:
            details += (
                " atlassian-cmk:nextKeys is not recorded: record the ARNs handed to Atlassian with "
                "`cmkctl enroll --next --write-config`, or the tools cannot tell the next generation's keys."
            )
        return ("RE-ENCRYPTION IN PROGRESS: both key generations must stay enabled", details)
    if after == "complete":
        return (
            "RE-ENCRYPTION COMPLETE: Atlassian confirmed; promotion is the next, separate change",
            "both generations stay enabled. Promoting in this same change is refused by the guardrails.",
        )
    return None


def refused_transition(base: StackConfig, head: StackConfig) -> str | None:
    """Why a status change is refused whatever the review says (`cmkctl impact` exits 4; the pack's
    no-revocation-during-reencryption refuses the same from the deployed tags:
    `transition_rules.status_transition_findings`), or None."""
    before, after = base.reencryption.status, head.reencryption.status
    if before == after:
        return None
    if after == "complete" and before == "none":
        retired = (
            "; after a retirement it would enable the retired generation again, which is never enabled again"
            if head.retired_keys
            else ""
        )
        return (
            "REFUSED: complete without a re-encryption: complete follows an applied in-progress (Atlassian's "
            f"confirmation){retired}"
        )
    if after == "none" and before in ("preparing", "in-progress"):
        kept = "recorded as atlassian-cmk:nextKeys, " if base.next_keys is not None else ""
        return (
            f"REFUSED: abandoning the re-encryption ({before} -> none): the next generation's keys ({kept}protected, "
            "never deleted) would no longer be declared and `pulumi up` would fail part-way; abandoning is not "
            "supported: keep the status"
        )
    order = ("none", "preparing", "in-progress", "complete")
    if after != "none" and before in order and after in order and order.index(after) < order.index(before):
        return (
            f"REFUSED: a step back ({before} -> {after}): re-encryption steps only go forward; from in-progress it "
            "would let the next change disable keys Atlassian is re-encrypting with"
        )
    return None


def next_keys_change(base: StackConfig, head: StackConfig) -> tuple[bool, str, str] | None:
    """(critical, summary, details) when the recorded next generation (`nextKeys`) changes outside a
    promotion, or None. Recording it names the ARNs to hand Atlassian; removing or changing it afterwards
    means Atlassian re-encrypts to keys the stack no longer records (or watches). A critical change has no
    declaration that makes it acceptable: `cmkctl impact` fails the check (exit 4), as for enrolledKeys."""
    before = base.next_keys.as_config() if base.next_keys else {}
    after = head.next_keys.as_config() if head.next_keys else {}
    if before == after or is_promotion(base, head):
        return None
    lines = [f"- {region}: {arn}" for region, arn in before.items() if after.get(region) != arn]
    lines += [f"+ {region}: {arn}" for region, arn in after.items() if before.get(region) != arn]
    if not before:
        return (
            False,
            "NEXT KEYS RECORDED: hand these ARNs to Atlassian on the re-encryption ticket (manual: the organization "
            "admin requests re-encryption from Atlassian support; it involves downtime) once the preview passes: "
            "this check reads only Git, and enrolled-keys-kept checks that each ARN is this stack's next key",
            "\n".join(lines),
        )
    if not after:
        return (
            True,
            "NEXT KEYS REMOVED: the next generation was handed to Atlassian, and without atlassian-cmk:nextKeys the "
            "CloudTrail cross-check of re-encryption is off and the tools find its keys through an alias anyone "
            "with kms:UpdateAlias can repoint; restore the lines from the base branch (enrolled-keys-kept refuses "
            "this while the next keys are tagged atlassian-cmk:enrolled)",
            "\n".join(lines),
        )
    return (
        True,
        "The next keys change after they were recorded: Atlassian re-encrypts to the ARNs on its ticket; a changed "
        "ARN makes every tool watch a key Atlassian does not use",
        "\n".join(lines),
    )


def retired_keys_change(base: StackConfig, head: StackConfig) -> tuple[str, str] | None:
    """(summary, details) when `retiredKeys` changes other than by a promotion appending the base's
    enrolled keys, or None. Always critical: retired generations are kept forever (backups are protected
    by them), and generations are numbered by their position (`generations.key_resource_name`), so a
    dropped entry renumbers every later generation: the program would make the retired key current
    again, enable it and move the stack's alias back to it; a changed ARN makes the tools act on (and
    the pack judge) a key the stack never retired. No declaration makes it acceptable: exit 4."""
    before, after = base.retired_keys, head.retired_keys
    if before == after or (is_promotion(base, head) and after[:-1] == before):
        return None
    lines: list[str] = []
    for index in range(max(len(before), len(after))):
        old = before[index].as_config() if index < len(before) else {}
        new = after[index].as_config() if index < len(after) else {}
        lines += [f"- retiredKeys[{index}] {region}: {arn}" for region, arn in old.items() if new.get(region) != arn]
        lines += [f"+ retiredKeys[{index}] {region}: {arn}" for region, arn in new.items() if old.get(region) != arn]
    dropped = len(after) < len(before)
    what = "A retired key generation is dropped" if dropped else "The retired keys change"
    return (
        f"{what}: retired keys are kept for good and numbered by their place in atlassian-cmk:retiredKeys; "
        "dropping or changing an entry makes the program treat another key as that generation (a dropped entry "
        "makes a retired key current again); restore atlassian-cmk:retiredKeys from the base branch",
        "\n".join(lines),
    )


def restoration_notice(config: StackConfig, stack: str) -> str:
    """The notice for a stack whose keys are (to be) enabled again."""
    return (
        f"RESTORATION: Atlassian's access to the CMK keys in {regions_phrase(config.regions)} is enabled. "
        f"Remaining step: {restore_steps(stack)[1]}. Reinstatement is possible within "
        f"{REINSTATEMENT_WINDOW.days} days of the revocation; after {DATA_AT_RISK_AFTER.days} days data may "
        "not be recoverable."
    )


def preview_warnings(config: StackConfig, stack: str) -> list[str]:
    """Every warning the program logs for this configuration (empty for a healthy stack)."""
    if not config.enabled:
        return [revocation_impact(config, stack)]
    if config.reencryption.in_progress:
        return [reencryption_notice(config)]
    return []
