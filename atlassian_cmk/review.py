"""The reviewer's summary of a change to `Pulumi.<stack>.yaml`: what it does to Atlassian's access.

`cmkctl impact` renders it in the pull request. The consequence texts come from
`atlassian_cmk.impact`, the same words `pulumi preview` logs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from atlassian_cmk.config import StackConfig, StackConfigErrors, apply_role_missing
from atlassian_cmk.display import fit_lines
from atlassian_cmk.follow_up_rules import FOLLOW_UP_ADVICE, follow_up_findings
from atlassian_cmk.git_source import project_text_at_ref, stack_text_at_ref
from atlassian_cmk.guardrail_catalog import GUARDRAILS, Guardrail
from atlassian_cmk.impact import (
    is_promotion,
    next_keys_change,
    reencryption_notice,
    reencryption_transition,
    refused_transition,
    regions_phrase,
    restoration_notice,
    retired_keys_change,
    revocation_impact,
)
from atlassian_cmk.key_policy import (
    access_changes,
    build_key_policy,
    parse_atlassian_statements,
    semantic_form,
    serialize_key_policy,
    split_key_policy,
)
from atlassian_cmk.realm_findings import cause_sentences
from atlassian_cmk.stack_file import StackFileError, check_text, load_stack_config
from atlassian_cmk.timeline import REINSTATEMENT_WINDOW

SCHEMA_VERSION: Final = 1

ChangeKind = Literal[
    "revocation",
    "restoration",
    "revocation-justification",
    "guard-override",
    "break-glass-follow-up",
    "reencryption",
    "atlassian-key-policy",
    "key-administrators",
    "context-tag",
    "realm",
    "region-leaving",
    "region-joining",
    "primary-region",
    "enrolled-keys",
    "next-keys",
    "retired-keys",
    "multi-region",
    "new-stack",
    "apply-role-missing",
]
Severity = Literal["critical", "warning", "info"]


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    severity: Severity
    regions: tuple[str, ...]
    summary: str
    details: str = ""
    blocks: bool = False
    """True when `cmkctl impact` must fail the pull request's check (exit 4) until the change is declared."""


@dataclass
class Review:
    """Everything the pull request comment says, as data (the JSON output) and as markdown."""

    stack: str
    base_ref: str
    valid: bool
    errors: list[str] = field(default_factory=list)
    base_note: str = ""
    changes: list[Change] = field(default_factory=list)
    checklist: list[str] = field(default_factory=list)
    guardrails: list[Guardrail] = field(default_factory=lambda: list(GUARDRAILS))

    @property
    def blocked(self) -> bool:
        """Whether a change needs a declared reason it does not have (the CI check fails)."""
        return any(c.blocks for c in self.changes)

    @property
    def check_fails(self) -> bool:
        """Whether `cmkctl impact` fails the pull request's check (exit 4): a refused change or an
        undeclared one (`refused`, `blocked`)."""
        return bool(self.refused) or self.blocked

    @property
    def revokes(self) -> bool:
        return any(c.kind == "revocation" for c in self.changes)

    @property
    def atlassian_loses_access(self) -> bool:
        """A change of Atlassian's statements takes an action from an Atlassian principal: the
        impact check fails (exit non-zero), marker or not."""
        return any(c.kind == "atlassian-key-policy" and c.severity == "critical" for c in self.changes)

    @property
    def refused(self) -> list[str]:
        """Changes the guardrails refuse whatever the review says, so `cmkctl impact` exits 4 and the CI
        check fails: a context tag that differs from the base's (the base always has one: contextTag is
        required; the pack's context-tag-unchanged refuses it against the deployed keys), and Atlassian
        losing access through its statements, and a stack without applyRoleArn (`config.apply_role_missing`:
        the program and the pack refuse it, so no change to it can be applied)."""
        return [
            c.summary
            for c in self.changes
            if c.kind in ("context-tag", "apply-role-missing")
            or (c.kind == "atlassian-key-policy" and c.severity == "critical")
        ]

    def to_json(self) -> str:
        document: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "stack": self.stack,
            "base_ref": self.base_ref,
            "valid": self.valid,
            "errors": self.errors,
            "base_note": self.base_note or None,
            "revokes_access": self.revokes,
            "blocked": self.blocked,
            "refused": self.refused,
            "atlassian_loses_access": self.atlassian_loses_access,
            "changes": [asdict(c) for c in self.changes],
            "checklist": self.checklist,
            "guardrails": [asdict(g) for g in self.guardrails],
        }
        return json.dumps(document, indent=2)

    def to_markdown(self) -> str:
        lines = [f"## Atlassian CMK impact: stack `{self.stack}` (against `{self.base_ref}`)", ""]
        if not self.valid:
            lines += [
                f"**The stack configuration is invalid**: `pulumi preview` will stop before touching any key. "
                f"Fix these in `Pulumi.{self.stack}.yaml`:",
                "",
                *[f"- `{error}`" for error in self.errors],
                "",
            ]
            return "\n".join(lines)
        if self.base_note:
            lines += [f"> {self.base_note}", ""]
        if self.refused:
            lines += ["**This change is refused**: the guardrails block it against the deployed keys.", ""]
        if not self.changes:
            lines += ["**No change to Atlassian's access**: nothing is revoked or restored by this pull request.", ""]
        icons = {"critical": "🛑", "warning": "⚠️", "info": "ℹ️"}
        for change in self.changes:
            where = f" ({regions_phrase(change.regions)})" if change.regions else ""
            lines.append(f"### {icons[change.severity]} {change.summary}{where}")
            if change.details:  # preformatted: wrapped here to fit the reader's columns
                lines += ["", "```text", *fit_lines(change.details.split("\n")), "```"]
            lines.append("")
        if self.checklist:
            lines += ["### Checklist before merging", "", *[f"- [ ] {item}" for item in self.checklist], ""]
        lines += ["### Guardrails checked by `pulumi preview --policy-pack policies`", ""]
        lines += [f"- `{g.name}` ({g.enforcement}): stops {g.stops}" for g in self.guardrails]
        return "\n".join(lines) + "\n"


def review_change(base: StackConfig | None, head: StackConfig, stack: str, base_ref: str) -> Review:
    """Compare the configuration at the base ref with the one proposed."""
    review = Review(stack=stack, base_ref=base_ref, valid=True)
    if base is None:
        review.changes.append(
            Change("new-stack", "warning", head.regions, f"New stack: CMK keys will be created for realm {head.realm}")
        )
        base_enabled = True
    else:
        base_enabled = base.enabled
        review.changes.extend(_config_changes(base, head, stack))
    if base_enabled and not head.enabled:
        review.changes.insert(
            0,
            Change(
                "revocation",
                "critical",
                head.regions,
                "REVOCATION: Atlassian loses access to the CMK keys",
                revocation_impact(head, stack),
            ),
        )
        review.checklist = revocation_checklist(head, stack)
        override = guard_override_change(head)
        if override is not None:
            review.changes.insert(0, override)
    elif not base_enabled and head.enabled:
        review.changes.insert(
            0,
            Change(
                "restoration",
                "warning",
                head.regions,
                "RESTORATION: Atlassian regains access to the CMK keys",
                restoration_notice(head, stack),
            ),
        )
        review.checklist = [
            "reply on the Atlassian support ticket once `cmkctl status` shows every region Enabled",
            f"check the revocation is within {REINSTATEMENT_WINDOW.days} days (`cmkctl status` shows the days left)",
        ]
    elif base is not None and not base.enabled and not head.enabled and base.revocation != head.revocation:
        review.changes.append(
            Change("revocation-justification", "info", (), "The revocation's reason, ticket or override changes")
        )
        override = guard_override_change(head)
        before = base.revocation.override if base.revocation else None
        after = head.revocation.override if head.revocation else None
        if override is not None and before != after:
            review.changes.insert(0, override)
    missing_apply_role = apply_role_missing(head)
    if missing_apply_role is not None:
        # Every change of such a stack fails `pulumi preview` (the program and apply-role-configured refuse);
        # said first, so the reviewer does not weigh a revocation that could only half-apply.
        review.changes.insert(0, Change("apply-role-missing", "critical", (), missing_apply_role))
    follow_up = follow_up_change(base, head)
    if follow_up is not None:
        # Right after what the pull request does to access (the override, the revocation), before the rest.
        leading = next(
            (i for i, c in enumerate(review.changes) if c.kind not in ("guard-override", "revocation")),
            len(review.changes),
        )
        review.changes.insert(leading, follow_up)
    return review


def follow_up_change(base: StackConfig | None, head: StackConfig) -> Change | None:
    """A revocation declared while re-encryption was applied or is declared in progress is allowed only as
    the break-glass follow-up (`follow_up_rules.follow_up_findings`, the guardrail's rule): the base
    branch stands for what was applied, and the keys' record cannot be read here (no AWS call), so
    only its shape is judged (an id and an override) and a status change; the guardrail compares
    the block with the keys' record. Blocks (exit 4) when it is not the follow-up."""
    if base is None or head.enabled:
        return None
    findings = follow_up_findings(head.revocation, head.reencryption, [(None, base.reencryption.status)], None)
    if not findings:
        return None
    causes = cause_sentences(findings)
    advice = FOLLOW_UP_ADVICE[:1].upper() + FOLLOW_UP_ADVICE[1:] + "."
    return Change(
        "break-glass-follow-up",
        "critical",
        head.regions,
        "Not the break-glass follow-up: " + causes[0].rstrip(".") + "; this check fails",
        "\n".join([*causes, advice]),
        blocks=True,
    )


def guard_override_change(config: StackConfig) -> Change | None:
    """The break-glass override a revocation block records (`revocation.override`), shown first.

    A pull request carrying it is the follow-up of `cmkctl revoke --override-reencryption-guard`:
    the keys were disabled outside review while re-encryption may have been running. The guardrail
    no-revocation-during-reencryption allows it only when it disables nothing (every deployed key
    already Disabled).
    """
    revocation = config.revocation
    if revocation is None or revocation.override is None:
        return None
    record = f" (revocation {revocation.id})" if revocation.id else ""
    return Change(
        "guard-override",
        "critical",
        config.regions,
        f"GUARD OVERRIDDEN: {revocation.override}",
        f"This pull request records a break-glass revocation{record} made with --override-reencryption-guard: "
        "it disables nothing when the keys are already disabled in every region (the guardrail "
        "no-revocation-during-reencryption allows it only then, and refuses it on every key while any region is "
        "still Enabled), and only while its id, reason, ticket and override equal the record on the keys "
        "(atlassian-cmk:revocation-id, revocation-reason, revocation-ticket, guard-override) in every region.",
    )


def revocation_checklist(config: StackConfig, stack: str) -> list[str]:
    ticket = config.revocation.ticket if config.revocation else "(missing)"
    overridden = config.revocation is not None and config.revocation.override is not None
    return [
        f"incident ticket {ticket} records who decided to revoke, and why",
        "Atlassian support: expect Atlassian's ticket to the organization admin; keep it for the restore",
        "internal comms: CMK-enabled Atlassian sites go offline 30 to 60 minutes after the apply",
        (
            f"the keys are already Disabled in every region (`cmkctl status --stack {stack}`): this records the "
            "break-glass revocation and must disable nothing; agree next steps for re-encryption with Atlassian"
            if overridden
            else "re-encryption is not running (the guardrail also checks the deployed keys)"
        ),
        f"after the merge: someone named confirms `cmkctl status --stack {stack}` shows every region Disabled",
    ]


def invalid_review(errors: list[str], stack: str, base_ref: str) -> Review:
    return Review(stack=stack, base_ref=base_ref, valid=False, errors=errors)


def _atlassian_statement_changes(base: StackConfig, head: StackConfig) -> list[Change]:
    """Atlassian's statements compared with IAM's semantics: a respelling is no change."""
    before = parse_atlassian_statements(base.atlassian_key_policy)
    after = parse_atlassian_statements(head.atlassian_key_policy)
    removed = [raw for raw, s in zip(base.atlassian_key_policy, before, strict=True) if not _same(s, after)]
    added = [raw for raw, s in zip(head.atlassian_key_policy, after, strict=True) if not _same(s, before)]
    if not removed and not added:
        return []
    old, new = base.atlassian_key_policy_revision, head.atlassian_key_policy_revision
    declared = new is not None and new != old
    deltas = _access_deltas(base, head)
    lost = [d for d in deltas if d.lost]
    if lost:
        return [
            Change(
                "atlassian-key-policy",
                "critical",
                head.regions,
                "Atlassian would LOSE access: "
                + "; ".join(d.describe() for d in lost)
                + (" (a revocation: revoke through atlassian-cmk:enabled)" if any(d.revokes for d in lost) else "")
                + (
                    f"; declared as Atlassian's revision {old or '(none)'} -> {new}"
                    if declared
                    else "; WITHOUT a new atlassian-cmk:atlassianKeyPolicyRevision"
                ),
                "\n".join(
                    [
                        *(f"{d.describe()}" for d in deltas),
                        *(f"- {json.dumps(r, sort_keys=True)}" for r in removed),
                        *(f"+ {json.dumps(r, sort_keys=True)}" for r in added),
                    ]
                ),
            )
        ]
    title = (
        f"Atlassian's key-policy statements change, declared as Atlassian's revision {old or '(none)'} -> {new}"
        if declared
        else "Atlassian's key-policy statements change WITHOUT a new atlassian-cmk:atlassianKeyPolicyRevision: "
        "the policy pack refuses it against the deployed keys (a stealth revocation unless Atlassian revised them)"
    )
    lines = [
        *(d.describe() for d in deltas),
        *(f"- {json.dumps(r, sort_keys=True)}" for r in removed),
        *(f"+ {json.dumps(r, sort_keys=True)}" for r in added),
    ]
    return [
        Change("atlassian-key-policy", "warning" if declared else "critical", head.regions, title, "\n".join(lines))
    ]


def _same(statement: Any, others: Any) -> bool:
    return any(semantic_form(statement) == semantic_form(o) for o in others)


_REVIEW_ACCOUNT: Final = "000000000000"
"""The key's account does not change what Atlassian's statements give Atlassian; the composed
policies are compared in a stand-in account."""


def _access_deltas(base: StackConfig, head: StackConfig) -> list[Any]:
    """Per Atlassian principal, what it gains/loses from the base's composed policy to the head's,
    computed with the evaluator (`key_policy.access_changes`)."""

    def parts(config: StackConfig) -> Any:
        document = build_key_policy(
            partition="aws",
            account_id=_REVIEW_ACCOUNT,
            atlassian_statements=config.atlassian_key_policy,
            key_administrators=config.key_administrators,
        )
        return split_key_policy(serialize_key_policy(document))

    before, after = parts(base), parts(head)
    return access_changes(
        [*before.own, *before.atlassian], [*after.own, *after.atlassian], before.atlassian, after.atlassian
    )


def _config_changes(base: StackConfig, head: StackConfig, stack: str) -> list[Change]:
    changes: list[Change] = []
    transition = reencryption_transition(base, head, stack)
    if base.reencryption != head.reencryption or transition is not None:
        details = reencryption_notice(head) if head.reencryption.in_progress else ""
        summary = f"Re-encryption status: {base.reencryption.status} -> {head.reencryption.status}"
        refusal = refused_transition(base, head)
        if refusal is not None:
            # No declaration makes it acceptable: the impact check fails (exit 4), as the pack refuses it.
            changes.append(Change("reencryption", "critical", head.regions, f"{summary}. {refusal}", blocks=True))
        else:
            if transition is not None:
                summary, details = f"{summary}. {transition[0]}", transition[1]
            changes.append(Change("reencryption", "warning", head.regions, summary, details))
    changes.extend(_atlassian_statement_changes(base, head))
    if base.key_administrators != head.key_administrators:
        changes.append(
            Change(
                "key-administrators",
                "warning",
                head.regions,
                "Key administrators (who may revoke and restore outside Pulumi) change",
                "\n".join(
                    [
                        *(f"- {a}" for a in sorted(set(base.key_administrators) - set(head.key_administrators))),
                        *(f"+ {a}" for a in sorted(set(head.key_administrators) - set(base.key_administrators))),
                    ]
                ),
            )
        )
    if base.context_tag != head.context_tag:
        changes.append(
            Change(
                "context-tag",
                "critical",
                head.regions,
                f"Context tag {base.context_tag} -> {head.context_tag}: it is immutable once enrolled with Atlassian; "
                "a different tag denies Atlassian's requests",
            )
        )
    changes.extend(_region_changes(base, head))
    enrolled = _enrolled_keys_change(base, head)
    if enrolled is not None:
        changes.append(enrolled)
    following = next_keys_change(base, head)
    if following is not None:
        critical, summary, details = following
        # Critical = removed or changed after recording (a promotion is not this): like an undeclared change
        # of enrolledKeys, no declaration makes it acceptable, so the impact check fails (exit 4).
        severity: Severity = "critical" if critical else "warning"
        failing = "; this check fails" if critical else ""
        changes.append(Change("next-keys", severity, head.regions, summary + failing, details, blocks=critical))
    retired = retired_keys_change(base, head)
    if retired is not None:
        summary, details = retired
        changes.append(
            Change("retired-keys", "critical", head.regions, summary + "; this check fails", details, blocks=True)
        )
    if base.multi_region != head.multi_region:
        changes.append(
            Change(
                "multi-region",
                "critical",
                head.regions,
                f"multiRegion {_yaml_bool(base.multi_region)} -> {_yaml_bool(head.multi_region)}: "
                "the keys would be replaced by new keys "
                "Atlassian has never been given",
            )
        )
    return changes


def _region_changes(base: StackConfig, head: StackConfig) -> list[Change]:
    """Regions leaving or joining, by name; a reordering alone changes no key (resources are named by region)."""
    changes: list[Change] = []
    if base.realm != head.realm and set(base.regions) != set(head.regions):
        outside = tuple(r for r in head.regions if r not in base.regions)
        consequence = (
            f"data cannot leave its realm ({regions_phrase(outside)} not in realm {base.realm})"
            if outside
            else "the realm shrinks (the region leaving is named below)"
        )
        changes.append(
            Change(
                "realm",
                "critical",
                (),  # the summary names both region sets; a suffix would name only one of them
                f"Realm {base.realm} ({regions_phrase(base.regions)}) -> {head.realm} ({regions_phrase(head.regions)}):"
                f" {consequence}",
            )
        )
    held = base.enrolled_keys
    for region in base.regions + tuple(r for r in (held.regions if held else ()) if r not in base.regions):
        if region in head.regions:
            continue
        arn = held.arn(region) if held is not None else None
        changes.append(
            Change(
                "region-leaving",
                "critical",
                (region,),
                f"{region} leaves the stack: Atlassian would lose the key it holds there"
                + (f" ({arn})" if arn else "")
                + "; its sites stop working there (the guardrail enrolled-keys-kept refuses this once enrolled)",
            )
        )
    for region in head.regions:
        if region not in base.regions:
            changes.append(
                Change(
                    "region-joining",
                    "critical",
                    (region,),
                    f"{region} joins the stack: a new key would be created there that Atlassian would never have "
                    "until it is enrolled with Atlassian",
                )
            )
    if (
        base.multi_region
        and head.multi_region
        and base.regions != head.regions
        and set(base.regions) == set(head.regions)
    ):
        changes.append(
            Change(
                "primary-region",
                "critical",
                head.regions,
                f"The multi-region primary moves from {base.regions[0]} to {head.regions[0]}: both keys would be "
                "replaced (Key <-> ReplicaKey) by keys Atlassian has never been given",
            )
        )
    return changes


def _enrolled_keys_change(base: StackConfig, head: StackConfig) -> Change | None:
    """What Atlassian holds, before and after: the enrolled key ARNs."""
    before = base.enrolled_keys.as_config() if base.enrolled_keys else {}
    after = head.enrolled_keys.as_config() if head.enrolled_keys else {}
    if before == after:
        return None
    if is_promotion(base, head):
        return None  # the re-encryption change says it (reencryption_transition)
    lines = [f"- {region}: {arn}" for region, arn in before.items() if after.get(region) != arn]
    lines += [f"+ {region}: {arn}" for region, arn in after.items() if before.get(region) != arn]
    # Only the regions whose ARN changes, so the heading names what changes, not the whole realm.
    regions = tuple(r for r in dict.fromkeys([*before, *after]) if before.get(r) != after.get(r))
    blocks = not enrolled_keys_change_declared(base, head)
    undeclared = (
        "; this check fails until the change is declared (a promotion of re-encrypted keys, issue 15)" if blocks else ""
    )
    if not before:
        return Change(
            "enrolled-keys",
            "info",
            regions,
            "Enrollment: records the keys Atlassian holds; every tool addresses these ARNs from now on "
            "(check they are the ARNs handed to Atlassian)",
            "\n".join(lines),
        )
    if not after:
        return Change(
            "enrolled-keys",
            "critical",
            regions,
            "Enrollment removed: the tools would find the keys through the alias again, which anyone with "
            "kms:UpdateAlias can repoint" + undeclared,
            "\n".join(lines),
            blocks=blocks,
        )
    return Change(
        "enrolled-keys",
        "critical",
        regions,
        "The keys Atlassian holds change: only a re-encryption agreed with Atlassian gives it new keys; an ARN "
        "changed by hand makes every tool act on a key Atlassian does not use" + undeclared,
        "\n".join(lines),
        blocks=blocks,
    )


def enrolled_keys_change_declared(base: StackConfig, head: StackConfig) -> bool:
    """Whether a change or removal of the enrolled keys carries a declared reason.

    A promotion of re-encrypted keys never reaches this: `_enrolled_keys_change` recognizes it first
    (`impact.is_promotion`: the base's nextKeys enrolled, its enrolledKeys appended to retiredKeys)
    and the re-encryption change describes it. No other declaration exists, so every other change or
    removal of enrolled keys fails the impact check: a pull request that drops enrolledKeys (the pack
    would fall back to the alias) or swaps in other ARNs is exactly what an attacker holding a
    repointed alias needs.
    """
    del base, head
    return False


def review_stack_change(project_dir: Path, stack: str, base_ref: str) -> Review:
    """Review the working tree's stack file against the one at `base_ref` (raises GitRefError)."""
    try:
        head = load_stack_config(project_dir, stack)
    except StackFileError as error:
        return invalid_review([str(error)], stack, base_ref)
    except StackConfigErrors as errors:
        return invalid_review([str(e) for e in errors.errors], stack, base_ref)
    try:
        base_text = stack_text_at_ref(project_dir, stack, base_ref)
        if base_text is None:
            return review_change(None, head, stack, base_ref)
        base = check_text(
            base_text, f"Pulumi.{stack}.yaml at {base_ref}", project_text_at_ref(project_dir, base_ref), stack
        )
    except (StackFileError, StackConfigErrors):
        review = review_change(None, head, stack, base_ref)
        review.changes = [c for c in review.changes if c.kind != "new-stack"]
        review.base_note = f"The configuration at {base_ref} was invalid; changes are shown against no base."
        return review
    return review_change(base, head, stack, base_ref)


def _yaml_bool(value: bool) -> str:
    """`true`/`false` as the stack file spells them (never Python's True/False)."""
    return "true" if value else "false"
