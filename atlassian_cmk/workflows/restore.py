"""`restore`: enable the current generation's keys in every region again, record it, verify.

Only the current generation (`targets`): never a retired one, never the next one (it comes back
through the reviewed change restore prints). The next generation is read in the same first round
so the report can say when it stays disabled.
"""

from __future__ import annotations

from pathlib import Path

from atlassian_cmk import config_edit
from atlassian_cmk.aws.cloudtrail import collect_cloudtrail_evidence
from atlassian_cmk.aws.kms_actions import converge_keys, settle
from atlassian_cmk.aws.kms_reads import aws_endpoint_note
from atlassian_cmk.aws.lease import operation_in_progress
from atlassian_cmk.break_glass import RestoreRequest, nothing_revoked, restore_refusal
from atlassian_cmk.config import StackConfig
from atlassian_cmk.deadlines import reinstatement_verdict, remaining_restore_step
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.generations import CURRENT
from atlassian_cmk.guards import realm_revocation_clock
from atlassian_cmk.naming import TAG_RESTORED_AT, alias_name
from atlassian_cmk.records import realm_restore_record
from atlassian_cmk.workflows.changes import ChangeReport
from atlassian_cmk.workflows.follow_up import finish, plan_change
from atlassian_cmk.workflows.outcome import identity_outcome
from atlassian_cmk.workflows.reading import Reading, read_targets
from atlassian_cmk.workflows.record_plan import restoration_tags
from atlassian_cmk.workflows.report import Session, Transcript, WorkflowReport
from atlassian_cmk.workflows.results import change_results, unchanged_results
from atlassian_cmk.workflows.targets import other_held_targets, restore_targets

SUMMARY = "enabled: true, revocation block removed"


def restore(
    request: RestoreRequest, stack: str, path: Path, config: StackConfig, session: Session, *, write_config: bool
) -> WorkflowReport:
    """Run one break-glass restore; never raises for AWS trouble (it is in the report).

    Raises `ConfigChangeError` (before any AWS call) when the stack-file follow-up would be invalid,
    and `CredentialsProblem` when the profile or credentials are unusable (nothing read or changed).
    """
    out = Transcript(session.emit)
    planned = plan_change(path, config_edit.with_restoration)
    reading = read_targets(
        stack, config, (*restore_targets(config, stack), *other_held_targets(config, stack)), session
    )
    context = reading.context
    session.on_context(context)
    current = reading.current
    acted = [(CURRENT, current)]
    now = session.now()
    if all(r.error is not None for r in current.readings):
        out.refused(f"Cannot reach any region ({aws_endpoint_note()}); nothing was changed:", current.errors())
        results = unchanged_results(acted, "not-started")
        return out.report("restore", context, ExitCode.UNREACHABLE, now, results, current.errors())
    if nothing_revoked(current):
        overtaken = _revocation_meanwhile(stack, config, session)
        if overtaken is not None:
            out.refused("RESTORE OVERTAKEN: the keys read Enabled, then a revocation started:", [overtaken])
            results = unchanged_results(acted, "none")
            return out.report("restore", context, ExitCode.SPLIT, now, results, (overtaken,))
        out.say(f"Nothing to restore: the key is Enabled in every region ({', '.join(config.regions)}).")
        _next_generation_note(out, reading)
        written = finish(out, planned, converged=True, write=write_config, summary=SUMMARY, command="restore")
        results = unchanged_results(acted, "none")
        return out.report("restore", context, ExitCode.AS_DECLARED, now, results, config_written=written)
    refusal = restore_refusal(current)
    if refusal is not None:
        out.refused(f"REFUSED: cannot restore stack {stack}; nothing was changed:", refusal.reasons)
        return out.report("restore", context, refusal.code, now, unchanged_results(acted, "refused"), refusal.reasons)

    # The window is judged on the evidence as it is before restore touches any tag.
    with session.waiting("CloudTrail (revocation time)"):
        evidence = collect_cloudtrail_evidence(current.live_keys(), session.client_factory, now=now)
    clock = realm_revocation_clock(current.live_keys(), evidence, now=now)
    out.say(reinstatement_verdict(clock, now))

    if session.confirm is not None:
        what = f"About to ENABLE the CMK keys ({alias_name(stack)}) in {', '.join(config.regions)}."
        session.on_phase("at the confirmation prompt; nothing was changed", None)
        if not session.confirm(what, context):
            results = unchanged_results(acted, "not-started")
            return out.report("restore", context, ExitCode.REFUSED, now, results, (*out.messages, "not confirmed"))

    session.on_phase(
        "during the restore (EnableKey may have been sent in some regions; run `cmkctl status`)", reading.key_states()
    )
    # A rerun after a restore that could not record every region copies that restore's record.
    plan = restoration_tags(
        request.ticket, reading.identity.caller, now, realm_restore_record(k.tags for k in current.live_keys())
    )
    with (
        session.exclusive(stack, current, reading.identity.caller) as hold,
        session.waiting("AWS (EnableKey, tags, verification)"),
    ):
        # A retried EnableKey first checks, on the retry's fresh read, that the lease is still this
        # restore's: a revoke that took it over meanwhile stands (restore yields, docs/cmkctl.md).
        changes = converge_keys(
            current,
            enable=True,
            plan_tags=plan,
            client_factory=session.client_factory,
            policy=session.policy,
            yields_to=hold.taken_over if hold is not None else None,
        )
        changes, _ = settle(changes, enable=True, client_factory=session.client_factory, policy=session.policy)
    report = ChangeReport("restore", reading.identity.caller, now, changes)
    session.on_phase(
        "after the restore, while printing the config change",
        {c.label: c.key.key_state if c.key else c.outcome for c in changes},
    )
    out.add(report)
    code = identity_outcome(out, current, report.exit_code)
    if report.converged:
        out.say(remaining_restore_step(clock, now, stack))
    _next_generation_note(out, reading)
    written = finish(out, planned, converged=report.converged, write=write_config, summary=SUMMARY, command="restore")
    results = change_results(acted, changes, "enabled", TAG_RESTORED_AT)
    return out.report("restore", context, code, now, results, change=report, config_written=written)


def _next_generation_note(out: Transcript, reading: Reading) -> None:
    """Say once that the next generation stays disabled, and how it comes back (the reviewed change)."""
    for target, state in reading.pairs():
        if target.role == CURRENT:
            continue
        disabled = [r.region for r in state.readings if r.key is not None and not r.key.enabled]
        if disabled:
            out.say(
                f"{target.label} stays disabled in {', '.join(disabled)}: break-glass restores the current "
                "generation only; the reviewed change `enabled: true` enables it when applied, and Atlassian "
                "cannot continue a re-encryption until then."
            )


def _revocation_meanwhile(stack: str, config: StackConfig, session: Session) -> str | None:
    """Read the current keys once more before saying "nothing to restore": a revoke that started after
    the first read (it writes its lease beside DisableKey, without waiting) must not be reported as
    "Enabled in every region" with advice to commit `enabled: true`. Restore is not urgent: one round.
    Returns what was found (one sentence), or None when the keys still read Enabled and unleased."""
    again = read_targets(stack, config, restore_targets(config, stack), session).current
    lease = operation_in_progress([again], session.now(), "revoke")
    if lease is not None:
        holder = f"{lease.holder} (ticket {lease.ticket}, {lease.lease_id})"
        return f"a cmkctl revoke by {holder} is in progress; nothing was changed by this run; run `cmkctl status`"
    if nothing_revoked(again):
        return None
    changed = ", ".join(r.region for r in again.readings if r.key is None or not r.key.enabled)
    return f"the key no longer reads Enabled in {changed}; nothing was changed by this run; run `cmkctl status`"
