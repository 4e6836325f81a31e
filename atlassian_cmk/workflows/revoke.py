"""`revoke`: disable every key Atlassian holds, in every region and generation, record why, verify.

Round trips with `--yes` (issue 14 item 8; counted in tests/test_workflow_round_trips.py):
1. every generation's keys (DescribeKey, ListResourceTags, the alias) and the caller, at once;
2. DisableKey in every region and generation; 3. the record (TagResource); 4. the read-back of
state and record; 5. the settling read after every region is done (another operator, another
record). With a confirmation prompt, the guard's evidence (the tags, CloudTrail's phase and the key
policies' evidence protection) and the stack file are read again after the answer (one round),
immediately before DisableKey.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from atlassian_cmk import config_edit
from atlassian_cmk.aws.kms_actions import converge_keys, settle
from atlassian_cmk.aws.kms_reads import stack_keys_by_tags
from atlassian_cmk.aws.lease import RevokeLease, restore_in_progress
from atlassian_cmk.break_glass import RevokeRequest, guard_evidence_changes, guard_reasons, revoke_refusal
from atlassian_cmk.config import Revocation, StackConfig
from atlassian_cmk.evidence import deployed_evidence_protection
from atlassian_cmk.exit_codes import ExitCode, most_severe
from atlassian_cmk.generations import CURRENT
from atlassian_cmk.guards import revocation_clock
from atlassian_cmk.identity_rules import refused_key_remedy
from atlassian_cmk.impact import revocation_impact
from atlassian_cmk.lease import new_lease
from atlassian_cmk.live_keys import DeployedState, LiveKey
from atlassian_cmk.naming import (
    TAG_GUARD_OVERRIDE,
    TAG_RESTORE_TICKET,
    TAG_RESTORED_AT,
    TAG_RESTORED_BY,
    TAG_REVOCATION_ID,
    TAG_REVOCATION_REASON,
    TAG_REVOCATION_TICKET,
    TAG_REVOKED_AT,
    TAG_REVOKED_BY,
)
from atlassian_cmk.records import current_realm_record, has_current_revocation, new_revocation_id, revocation_block
from atlassian_cmk.workflows.changes import ChangeReport, RegionChange, TagPlanner
from atlassian_cmk.workflows.follow_up import finish, plan_change, stack_file_changed
from atlassian_cmk.workflows.outcome import identity_outcome
from atlassian_cmk.workflows.reading import Reading, read_targets
from atlassian_cmk.workflows.record_plan import revocation_tags
from atlassian_cmk.workflows.report import Session, Transcript, WorkflowReport
from atlassian_cmk.workflows.results import change_results, unchanged_results
from atlassian_cmk.workflows.targets import Target, revoke_targets


def revoke(
    request: RevokeRequest, stack: str, path: Path, config: StackConfig, session: Session, *, write_config: bool
) -> WorkflowReport:
    """Run one break-glass revocation; never raises for AWS trouble (it is in the report).

    Raises `ConfigChangeError` (before any AWS call) when the stack-file follow-up would be invalid,
    and `CredentialsProblem` when the profile or credentials are unusable (nothing read or changed).
    """
    out = Transcript(session.emit)
    planned = plan_change(path, lambda text: config_edit.with_revocation(text, request.reason, request.ticket))
    targets = revoke_targets(config, stack)
    reading = read_targets(stack, config, targets, session, with_policies=True)
    context = reading.context
    session.on_context(context)
    now = session.now()

    key_policies = reading.key_policies or ({}, {})
    # Every generation's tags (combined), CloudTrail's evidence, and every generation's evidence protection.
    refusal = revoke_refusal(
        config, reading.combined(), request, key_policies=key_policies, generations=reading.roles()
    )
    if refusal is not None:
        # Every enrolled key lost (exit 5) is no guard decision: the heading says what the lines and the code say.
        heading = (
            f"KEY LOST: no enrolled key of stack {stack} is found; nothing was changed:"
            if refusal.code == ExitCode.KEY_LOST
            else f"REFUSED: revoking stack {stack} now is unsafe; nothing was changed:"
        )
        out.refused(heading, refusal.reasons)
        return out.report(
            "revoke", context, refusal.code, now, unchanged_results(reading.roles(), "refused"), refusal.reasons
        )
    overridden = bool(guard_reasons(config, reading.combined(), key_policies, reading.roles()))
    override = request.override_justification if overridden else None
    if override is not None:
        out.say(f"Guard override: revoking although re-encryption may be in progress ({override}).", message=False)
    absent = _not_deployed_generations(reading)
    hidden = _keys_without_alias(stack, absent, session)
    if hidden:
        out.refused(
            f"REFUSED: revoking stack {stack} would leave a key Atlassian may hold enabled; nothing was changed:",
            hidden,
        )
        return out.report(
            "revoke", context, ExitCode.REFUSED, now, unchanged_results(reading.roles(), "refused"), hidden
        )
    for target, regions in absent:
        out.say(f"{target.label}: no key behind {target.alias} in {', '.join(regions)}; nothing to disable there.")

    if session.confirm is not None:
        planned_config = dataclasses.replace(
            config, enabled=False, revocation=Revocation(request.reason, request.ticket)
        )
        session.on_phase("at the confirmation prompt; nothing was changed", None)
        if not session.confirm(_what(planned_config, stack, reading), context):
            return out.report(
                "revoke",
                context,
                ExitCode.REFUSED,
                session.now(),
                unchanged_results(reading.roles(), "not-started"),
                ("not confirmed",),
            )
        # Time of check vs time of use: the operator may have waited at the prompt for minutes. The
        # guard's evidence (every generation's keys) and the stack file it judged are read again now,
        # immediately before DisableKey; any change stops the run.
        fresh = read_targets(stack, config, targets, session, with_policies=True)  # its own progress line
        changed = (*_evidence_changes(reading, fresh), *_protection_changes(config, reading, fresh))
        file_changed = stack_file_changed(planned)
        if file_changed is not None:
            changed = (*changed, file_changed)
        if changed:
            reasons = (*changed, "nothing was disabled; run `cmkctl status`, then revoke again if it is still right")
            out.refused("REFUSED: the guard's evidence changed while you confirmed:", reasons)
            results = unchanged_results(fresh.roles(), "refused")
            return out.report("revoke", context, ExitCode.REFUSED, session.now(), results, reasons)
        reading = fresh

    now = session.now()
    acted = _acted(reading, absent)
    all_keys = [k for _, state in acted for k in state.live_keys()]
    realm_record = current_realm_record(k.tags for k in all_keys if not k.enabled)
    open_before = {k.key_id: k.tags.get(TAG_REVOCATION_ID, "") for k in all_keys}
    revocation_id = new_revocation_id(now)
    plan = revocation_tags(
        request.reason, request.ticket, reading.identity.caller, now, override, revocation_id, realm_record, open_before
    )
    session.on_phase(
        "during the revoke (DisableKey may have been sent in some regions; run `cmkctl status`)", reading.key_states()
    )
    # Revocation never waits for coordination (docs/cmkctl.md, "The lease"): a restore's lease in the
    # first round's tags is taken over, said in one line; this run's lease goes out beside DisableKey.
    taken = restore_in_progress([state for _, state in acted], now)
    if taken is not None:
        out.say(f"a restore by {taken.holder} (ticket {taken.ticket}) was in progress; revocation takes over")
    with session.waiting("AWS (DisableKey, tags, verification)"):
        # The stack's lease lives on the current generation's keys: the ones restore leases and enables.
        lease = RevokeLease(
            [state for role, state in acted if role == CURRENT],
            new_lease("revoke", request.ticket, reading.identity.caller, now),
            session.client_factory,
            session.policy,
        )
        session.on_lease(lease.hold)
        try:
            changes = _converge_all(
                acted, lambda key, changed: lease.release_tags(key.key_id, plan(key, changed)), session
            )
            changes, reconciled = settle(
                changes, enable=False, client_factory=session.client_factory, policy=session.policy
            )
            # Revocation wins, whoever enabled a key meanwhile (a restore that started before this run's
            # trace landed: docs/cmkctl.md "Two operators at once").
            changes, reconciled, again = _disable_again(changes, reconciled, acted, plan, session)
            for label, by in again:
                out.say(
                    f"DISABLED AGAIN {label}: re-enabled by {by} during this revoke; disabled again (revocation wins)"
                )
        finally:
            released = lease.finish()
    for note in (*lease.hold.notes(), *released.notes(lease.hold.lease)):
        out.say(note)
    report = ChangeReport("revoke", reading.identity.caller, now, changes, reconciled)
    session.on_phase(
        "after the revoke, while printing the config change",
        {c.label: c.key.key_state if c.key else c.outcome for c in changes},
    )
    out.add(report)
    recorded_override = [c.label for c in changes if c.key is not None and c.key.tags.get(TAG_GUARD_OVERRIDE)]
    if override is not None and recorded_override:
        out.say(f"GUARD OVERRIDDEN (recorded on the keys in {', '.join(recorded_override)}): {override}")
    code = identity_outcome(out, reading.current, report.exit_code)
    if released.restore_took:
        # A restore wrote its lease over this revoke's (it read "free" before this run's write landed): it may
        # enable a key after this run's end-state check, so this run cannot call the realm revoked (bench_races).
        out.say(
            f"RESTORE RUNNING in {', '.join(released.restore_took)}: a restore's lease replaced this revoke's "
            "there (named above); it may enable keys after this run's check. Run `cmkctl status`, and "
            "`cmkctl revoke` again if any key reads Enabled"
        )
        code = most_severe([code, ExitCode.SPLIT])
    keys = [change.key for change in changes if change.key is not None]
    for line in _other_revocations(keys, request, revocation_id):
        out.say(line)
    if any(not key.enabled for key in keys):
        out.say(f"Revocation clock: {revocation_clock(keys, now=now).summary(now)}")
    results = change_results(acted, changes, "disabled", TAG_REVOKED_AT)
    if not any(key.enabled is False for key in keys):
        # The change report above already said "Nothing was revoked by this run": say only what follows.
        out.say("No region's key is disabled, so there is no config change to commit.")
        return out.report("revoke", context, code, now, results, change=report)

    # Records that still differ (two revokes at once, the alignment refused): the earliest is the realm's
    # record (kms_actions.settle), so the stack file names that revocation, never this run's by default.
    record = report.record() or current_realm_record(key.tags for key in keys if not key.enabled) or {}
    fields = revocation_block(record, request.reason, request.ticket, revocation_id, override)
    planned = dataclasses.replace(planned, after=config_edit.with_revocation_fields(planned.before, fields))
    written = finish(
        out,
        planned,
        converged=report.converged,
        write=write_config,
        summary="enabled: false plus the revocation block",
        command="revoke",
        fixes=[refused_key_remedy(config, stack, c.region, c.generation) for c in changes if c.outcome == "refused"],
        config=config,
    )
    return out.report("revoke", context, code, now, results, change=report, config_written=written)


def _what(planned: StackConfig, stack: str, reading: Reading) -> str:
    """The confirmation's text: the impact, and every generation the revoke disables when more than one."""
    text = revocation_impact(planned, stack)
    others = [target.label for target in reading.targets if target.role != CURRENT]
    if others:
        text += f"\nThis disables every generation Atlassian holds: the current one and {', '.join(others)}."
    return text


def _not_deployed_generations(reading: Reading) -> list[tuple[Target, list[str]]]:
    """Generations other than the current one found through their alias with no key behind it yet
    (e.g. `preparing` declared, `pulumi up` not run): nothing to disable there, nothing lost."""
    absent = []
    for target, state in reading.pairs():
        if target.role == CURRENT or target.keys is not None:
            continue
        regions = [r.region for r in state.readings if r.missing]
        if regions:
            absent.append((target, regions))
    return absent


def _keys_without_alias(stack: str, absent: list[tuple[Target, list[str]]], session: Session) -> tuple[str, ...]:
    """Why the revoke must not go on: a generation's alias names no key in a region, yet a key there
    carries the stack's tags for that generation (the alias deleted or moved by hand), or the scan for
    one could not finish. Such a key may be the one handed to Atlassian; disabling the others and
    reporting success would leave it enabled. The lookup is `enroll`'s (`stack_keys_by_tags`)."""
    reasons: list[str] = []
    for target, regions in absent:
        with session.waiting(f"keys carrying the stack's {target.role} tags"):
            scans = stack_keys_by_tags(stack, regions, target.role, session.client_factory)
        for region, (found, error) in scans.items():
            if error is not None:
                reasons.append(
                    f"{region}: no key behind {target.alias}, and whether a key tagged as {target.label} exists "
                    f"cannot be told ({error}); needs kms:ListKeys and kms:ListResourceTags"
                )
            elif found:
                reasons.append(
                    f"{region}: no key behind {target.alias}, but {', '.join(found)} carries the stack's tags as "
                    f"{target.label}: record it with `cmkctl enroll --next` after putting the alias back (or add it to "
                    "nextKeys), then revoke again"
                )
    return tuple(reasons)


def _acted(reading: Reading, absent: list[tuple[Target, list[str]]]) -> list[tuple[str, DeployedState]]:
    """(role, keys) of every generation the revoke acts on, without the regions with nothing deployed."""
    skipped = {(target.role, region) for target, regions in absent for region in regions}
    acted: list[tuple[str, DeployedState]] = []
    for target, state in reading.pairs():
        readings = tuple(r for r in state.readings if (target.role, r.region) not in skipped)
        if readings:
            acted.append((target.role, dataclasses.replace(state, readings=readings)))
    return acted


def _converge_all(
    acted: list[tuple[str, DeployedState]], plan: TagPlanner, session: Session
) -> tuple[RegionChange, ...]:
    """Every generation's keys at once (each generation's regions at once within it): DisableKey goes
    out in every region and generation in the same round trip."""

    def converge(pair: tuple[str, DeployedState]) -> tuple[RegionChange, ...]:
        role, state = pair
        changes = converge_keys(
            state, enable=False, plan_tags=plan, client_factory=session.client_factory, policy=session.policy
        )
        return tuple(dataclasses.replace(change, generation=role) for change in changes)

    with ThreadPoolExecutor(max_workers=session.policy.max_workers or max(1, len(acted))) as pool:
        return tuple(change for changes in pool.map(converge, acted) for change in changes)


def _evidence_changes(checked: Reading, fresh: Reading) -> tuple[str, ...]:
    """What changed in any generation's evidence between the check and the moment of use."""
    lines: list[str] = []
    for (target, before), (_, after) in zip(checked.pairs(), fresh.pairs(), strict=True):
        prefix = "" if target.role == CURRENT else f"{target.label}: "
        lines.extend(f"{prefix}{line}" for line in guard_evidence_changes(before, after))
    return tuple(lines)


def _other_revocations(keys: list[LiveKey], request: RevokeRequest, revocation_id: str) -> tuple[str, ...]:
    """One line per other revocation whose open record stands on the keys instead of this run's (two
    revokes at once, or a revoke of an incident already revoked): the record is write-once to
    break-glass, so this run's reason and ticket were not recorded. A record with this run's reason
    and ticket is the same incident (a rerun) and is not reported."""
    lines = []
    seen: set[str] = set()
    for key in keys:
        tags = key.tags
        other = tags.get(TAG_REVOCATION_ID, "")
        if key.enabled or not has_current_revocation(tags) or other == revocation_id or other in seen:
            continue
        seen.add(other)
        if (tags.get(TAG_REVOCATION_REASON), tags.get(TAG_REVOCATION_TICKET)) == (request.reason, request.ticket):
            continue
        who, ticket, when = (tags.get(t) or "?" for t in (TAG_REVOKED_BY, TAG_REVOCATION_TICKET, TAG_REVOKED_AT))
        lines.append(
            f"ANOTHER REVOCATION STANDS: {other or 'a record without an id'} (revoked by {who} under {ticket} at "
            f"{when}) is the record on the keys; this run's reason and ticket {request.ticket} were NOT recorded "
            "(records are write-once to break-glass). Add them to that incident's ticket."
        )
    return tuple(lines)


def _protection_changes(config: StackConfig, checked: Reading, fresh: Reading) -> tuple[str, ...]:
    """The key policies' evidence protection (`evidence.deployed_evidence_protection`) that failed between
    the check and the moment of use: one line per new finding (a Deny removed by kms:PutKeyPolicy, a
    policy now unreadable). A finding already judged before the prompt (and overridden) is not new."""

    def findings(reading: Reading) -> tuple[str, ...]:
        return deployed_evidence_protection(reading.roles(), config.apply_role_arn, reading.key_policies or ({}, {}))

    before = set(findings(checked))
    return tuple(f"since the check, {line}" for line in findings(fresh) if line not in before)


def _disable_again(
    changes: tuple[RegionChange, ...],
    reconciled: tuple[str, ...],
    acted: list[tuple[str, DeployedState]],
    plan: TagPlanner,
    session: Session,
) -> tuple[tuple[RegionChange, ...], tuple[str, ...], list[tuple[str, str]]]:
    """Keys the final check found Enabled (another operation enabled them after this run's DisableKey or
    after its first read: a restore): DisableKey once more, bounded (one converge and one re-check, never
    a loop). Returns the changes, the reconciled labels, and (label, who enabled it) for each key disabled
    again; a key still Enabled after that stays `overtaken` (exit 2)."""
    again = {
        (change.generation, change.region): change.key
        for change in changes
        if change.outcome == "overtaken" and change.key is not None and change.key.enabled
    }
    if not again:
        return changes, reconciled, []
    subset: list[tuple[str, DeployedState]] = []
    for role, state in acted:
        readings = tuple(
            dataclasses.replace(r, key=again[(role, r.region)]) for r in state.readings if (role, r.region) in again
        )
        if readings:
            subset.append((role, dataclasses.replace(state, readings=readings)))
    redone, reconciled_again = settle(
        _converge_all(subset, plan, session), enable=False, client_factory=session.client_factory, policy=session.policy
    )
    fresh = {(change.generation, change.region): change for change in redone}
    merged = tuple(fresh.get((change.generation, change.region), change) for change in changes)
    labels = [
        (change.label, _enabled_by(again[(change.generation, change.region)])) for change in redone if change.converged
    ]
    return merged, tuple(dict.fromkeys((*reconciled, *reconciled_again))), labels


def _enabled_by(key: LiveKey | None) -> str:
    """Who enabled `key`, from the restore record it carried when found Enabled: `a restore (<who>, ticket
    <t>)`, or `another operation (no restore record on the key)`."""
    tags = key.tags if key is not None else {}
    if tags.get(TAG_RESTORE_TICKET) and tags.get(TAG_RESTORED_AT):
        return f"a restore ({tags.get(TAG_RESTORED_BY) or '?'}, ticket {tags.get(TAG_RESTORE_TICKET)})"
    return "another operation (no restore record on the key; a restore still running, or `pulumi up`)"
