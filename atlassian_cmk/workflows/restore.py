"""`restore`: enable the current generation's keys in every region again, record it, verify.

Only the current generation (`targets`): never a retired one, never the next one (it comes back
through the reviewed change restore prints). The next generation is read in the same first round
so the report can say when it stays disabled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from atlassian_cmk import config_edit
from atlassian_cmk.aws.cloudtrail import collect_cloudtrail_evidence
from atlassian_cmk.aws.kms_actions import converge_keys, settle, tag_key
from atlassian_cmk.aws.kms_reads import aws_endpoint_note, describe_error
from atlassian_cmk.aws.lease import operation_in_progress
from atlassian_cmk.break_glass import RestoreRequest, nothing_revoked, restore_refusal
from atlassian_cmk.config import StackConfig
from atlassian_cmk.deadlines import reinstatement_verdict, remaining_restore_step
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.generations import CURRENT, generation_place
from atlassian_cmk.guards import realm_revocation_clock
from atlassian_cmk.lease import FoundLease, Lease, revoke_since
from atlassian_cmk.live_keys import DeployedState, LiveKey
from atlassian_cmk.naming import (
    TAG_ENABLED,
    TAG_LAST_REVOKE,
    TAG_RESTORED_AT,
    TAG_REVOCATION_ID,
    TAG_REVOKED_AT,
    alias_name,
)
from atlassian_cmk.records import (
    current_realm_record,
    has_current_revocation,
    is_closed,
    new_revocation_id,
    realm_restore_record,
)
from atlassian_cmk.workflows.changes import ChangeReport, RegionChange, TagChange, TagPlanner
from atlassian_cmk.workflows.follow_up import finish, plan_change
from atlassian_cmk.workflows.outcome import identity_outcome
from atlassian_cmk.workflows.reading import Reading, read_targets
from atlassian_cmk.workflows.record_plan import restoration_tags, revocation_tags
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
    if any(r.error is not None for r in current.readings):
        # Restore is not urgent, and a region it could not read has no lease, no first revoke trace and no
        # record to judge: enabling it blind let its final check take the revocation's own trace for a revoke
        # "during this restore" and rewrite the record (bench_races). Nothing is changed; a rerun reads again.
        reasons = (*current.errors(), "nothing was changed; run `cmkctl restore` again")
        out.refused(f"Cannot read every region ({aws_endpoint_note()}); restore enables no key until it can:", reasons)
        results = unchanged_results(acted, "not-started")
        return out.report("restore", context, ExitCode.UNREACHABLE, now, results, reasons)
    if nothing_revoked(current):
        overtaken = _revocation_meanwhile(stack, config, session)
        if overtaken is not None:
            out.refused("RESTORE OVERTAKEN: the keys read Enabled, then a revocation started:", [overtaken])
            results = unchanged_results(acted, "none")
            return out.report("restore", context, ExitCode.SPLIT, now, results, (overtaken,))
        out.say(f"Nothing to restore: the key is Enabled in every region ({', '.join(config.regions)}).")
        # An earlier restore (before it closed other generations' records) may have left the incident it
        # restored open on the next keys: close it now with that restore's record.
        restored = _restored_id(current)
        held = [k.tags for _, state in reading.pairs() for k in state.live_keys()]
        earlier = restoration_tags(request.ticket, reading.identity.caller, now, realm_restore_record(held))
        for line in _close_on_other_generations(reading, restored, earlier, session)[0]:
            out.say(line)
        _next_generation_note(out, reading)
        written = finish(
            out, planned, converged=True, write=write_config, summary=SUMMARY, command="restore", config=config
        )
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
    # The last revoke's trace as first read (`naming.TAG_LAST_REVOKE`): a change later means a revoke ran.
    first_traces = {key.region: key.tags.get(TAG_LAST_REVOKE) for key in current.live_keys()}
    # A rerun after a restore that could not record every region copies that restore's record.
    plan = restoration_tags(
        request.ticket, reading.identity.caller, now, realm_restore_record(k.tags for k in current.live_keys())
    )
    # The revocation this restore closes: the current keys' open record (its id), as first read.
    closed = current_realm_record(k.tags for k in current.live_keys() if not k.enabled) or {}
    closed_id = closed.get(TAG_REVOCATION_ID)
    with (
        session.exclusive(stack, current, reading.identity.caller) as hold,
        session.waiting("AWS (EnableKey, tags, verification)"),
    ):
        # A retried EnableKey first checks, on the retry's fresh read, that the lease is still this
        # restore's and that no revoke left its trace since the first read: a revoke that ran meanwhile
        # stands (restore yields, docs/cmkctl.md "Two operators at once").
        def yields_to(key: LiveKey) -> str | None:
            taken = hold.taken_over(key) if hold is not None else None
            ran = revoke_since(first_traces.get(key.region), key.tags.get(TAG_LAST_REVOKE))
            return taken or (f"a revoke ran meanwhile: {ran.describe(session.now())}" if ran is not None else None)

        changes = converge_keys(
            current,
            enable=True,
            plan_tags=plan,
            client_factory=session.client_factory,
            policy=session.policy,
            yields_to=yields_to,
        )
        # The same revocation's record on the generations restore leaves disabled is closed too, in this round.
        closing, closed_keys = _close_on_other_generations(reading, closed_id, plan, session)
        # The final check (after every EnableKey was answered): its read also carries each key's revoke trace.
        changes, _ = settle(changes, enable=True, client_factory=session.client_factory, policy=session.policy)
        ran = _revoke_meanwhile(first_traces, changes)
        if ran is not None:
            changes, yielded = _yield_to_revoke(
                current,
                changes,
                ran,
                request,
                reading.identity.caller,
                session,
                closed_keys,
                closed.get(TAG_REVOKED_AT),
            )
            out.say(yielded)
    for line in closing:
        out.say(line)
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
    written = finish(
        out, planned, converged=report.converged, write=write_config, summary=SUMMARY, command="restore", config=config
    )
    results = change_results(acted, changes, "enabled", TAG_RESTORED_AT)
    return out.report("restore", context, code, now, results, change=report, config_written=written)


def _restored_id(current: DeployedState) -> str | None:
    """The revocation id every current key's closed record names (the incident the last restore ended), or None."""
    keys = current.live_keys()
    if not keys or not all(is_closed(key.tags) for key in keys):
        return None
    ids = {key.tags.get(TAG_REVOCATION_ID, "") for key in keys}
    return next(iter(ids)) if len(ids) == 1 and "" not in ids else None


def _close_on_other_generations(
    reading: Reading, closed_id: str | None, plan: TagPlanner, session: Session
) -> tuple[tuple[str, ...], tuple[LiveKey, ...]]:
    """Close the record of the revocation this restore ends (`closed_id`) on the keys of the other held
    generations (the next one), which stay disabled: one TagResource each, all at once, no EnableKey.

    Left open there, that incident would still count as current on those keys (`records.has_current_revocation`):
    a later revoke would take it for the realm's record and inherit its reason, ticket and clock, and the
    write-once key policy would keep it (issue 12 review, finding 1). Only that revocation's record: an open
    record of another incident is left as it is (said). Returns one line per key not closed, and the keys
    closed (their tags as written: a restore that then yields to a revoke records it on them too)."""
    keys = [
        (target, key)
        for target, state in reading.pairs()
        if target.role != CURRENT
        for key in state.live_keys()
        if not key.enabled and has_current_revocation(key.tags)
    ]
    if closed_id is None or not keys:
        return (), ()
    lines: list[str] = []
    roles: list[str] = []
    writes: list[tuple[LiveKey, dict[str, str]]] = []
    for target, key in keys:
        if key.tags.get(TAG_REVOCATION_ID) != closed_id:
            other = key.tags.get(TAG_REVOCATION_ID) or "a record without an id"
            place = generation_place(key.region, target.role)
            lines.append(f"{place}: its open record is another revocation's ({other}); left open")
        else:
            roles.append(target.role)
            writes.append((key, {tag: value for tag, value in plan(key, True).put.items() if tag != TAG_ENABLED}))
    closed: list[LiveKey] = []
    for role, (key, put), error in zip(roles, writes, _tag_keys(writes, session), strict=True):
        if error is None:
            closed.append(dataclasses.replace(key, tags={**key.tags, **put}))
        else:
            lines.append(
                f"{generation_place(key.region, role)}: the record of {closed_id} could not be closed ({error}); the "
                "key stays disabled; run `cmkctl restore` again to close it"
            )
    return tuple(lines), tuple(closed)


def _tag_keys(writes: Sequence[tuple[LiveKey, Mapping[str, str]]], session: Session) -> list[str | None]:
    """One TagResource per (key, tags), all at once (`kms_actions.tag_key`); per write the error, or None."""

    def write(item: tuple[LiveKey, Mapping[str, str]]) -> str | None:
        key, tags = item
        try:
            tag_key(session.client_factory("kms", key.region), key.key_id, tags)
        except Exception as error:  # noqa: BLE001 - the caller says it; the key's state is untouched
            return describe_error(error)
        return None

    if not writes:
        return []
    with ThreadPoolExecutor(max_workers=len(writes)) as pool:
        return list(pool.map(write, writes))


def _keeping_the_clock(plan: TagPlanner, first_revoked_at: str | None) -> TagPlanner:
    """`plan`, with every record it writes timed at `first_revoked_at` where that is earlier (or the record has
    no time): see `_yield_to_revoke`."""
    if not first_revoked_at:
        return plan

    def keeping(key: LiveKey, changed: bool) -> TagChange:
        change = plan(key, changed)
        if TAG_REVOCATION_ID not in change.put:
            return change
        written = change.put.get(TAG_REVOKED_AT) or ""
        if written and written <= first_revoked_at:
            return change
        return dataclasses.replace(change, put={**change.put, TAG_REVOKED_AT: first_revoked_at})

    return keeping


def _record_on(keys: Sequence[LiveKey], plan: TagPlanner, session: Session) -> list[str]:
    """Write `plan`'s record on disabled keys this run does not change (one TagResource each, all at once);
    the ARNs of those it could not record (named in the yield line; `status` shows each key's record)."""
    writes = [(key, put) for key in keys if (put := plan(key, False).put)]
    return [key.arn for (key, _), error in zip(writes, _tag_keys(writes, session), strict=True) if error is not None]


def _next_generation_note(out: Transcript, reading: Reading) -> None:
    """Say once that the next generation stays disabled, and how it comes back (the reviewed change)."""
    for target, state in reading.pairs():
        if target.role == CURRENT:
            continue
        disabled = [r.region for r in state.readings if r.key is not None and not r.key.enabled]
        if disabled:
            out.say(
                f"{target.label} stays disabled in {', '.join(disabled)}: break-glass restores the current "
                "generation only; `pulumi up` of the stack file with `enabled: true` (the reviewed path) enables "
                "it, and Atlassian cannot continue a re-encryption until then."
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


def _revoke_meanwhile(first: Mapping[str, str | None], changes: tuple[RegionChange, ...]) -> FoundLease | None:
    """The revoke whose trace (`naming.TAG_LAST_REVOKE`) the final check read where the first read had
    another (or none), in any region; None when every key read at the end carries the first trace."""
    for change in changes:
        if change.key is not None:
            ran = revoke_since(first.get(change.region), change.key.tags.get(TAG_LAST_REVOKE))
            if ran is not None:
                return ran
    return None


def _yield_to_revoke(
    current: DeployedState,
    changes: tuple[RegionChange, ...],
    ran: FoundLease,
    request: RestoreRequest,
    caller: str,
    session: Session,
    closed_keys: Sequence[LiveKey] = (),
    first_revoked_at: str | None = None,
) -> tuple[tuple[RegionChange, ...], str]:
    """A revoke ran during this restore (its trace changed): revocation wins. Every key that reads Enabled
    is disabled again (one converge, re-checked, never a loop), with a revocation record for that revoke
    where this restore's record closed the one the keys carried (break-glass cannot reopen a closed record,
    `evidence.key_policy_evidence_statements`: a new record, a new id). The same record goes on the other
    generation's keys whose record this restore closed (`closed_keys`: they stayed disabled, and the revoke
    stands for them too). Every region becomes `overtaken` (exit 2); returns the changes and the one line
    that names the revoke.

    `first_revoked_at`: the `revoked-at` of the record this restore closed. Its enabled period lasted
    seconds (this run), which restores nothing (`clock_check.SHORTEST_RESTORE`): the reinstatement clock
    still runs from that revocation, so every record written here carries that time when it is earlier
    (issue 12 second review: a yield wrote the revoke's later time and restarted the clock)."""
    now = session.now()
    enabled = {c.region: c.key for c in changes if c.key is not None and c.key.enabled}
    readings = tuple(dataclasses.replace(r, key=enabled[r.region]) for r in current.readings if r.region in enabled)
    described = ran.describe(now)
    ticket = ran.ticket if isinstance(ran, Lease) else request.ticket
    reason = f"disabled again by cmkctl restore {request.ticket}: cmkctl revoke {ran.lease_id} ran meanwhile"
    plan = revocation_tags(
        reason[:256],
        ticket,
        caller,
        now,
        None,
        new_revocation_id(now),
        # The revoke's own record where a key already carries it open (it disabled that one after this restore
        # closed the incident there): copied, so one revocation reads the same on every key. Where this
        # restore's record closed it, the key policy lets no break-glass role reopen that id: a new id there,
        # and `status` says RECORDS DIFFER (`status.record_findings`).
        current_realm_record(c.key.tags for c in changes if c.key is not None and not c.key.enabled),
        {key.key_id: key.tags.get(TAG_REVOCATION_ID, "") for key in enabled.values() if key is not None},
    )
    plan = _keeping_the_clock(plan, first_revoked_at)
    redone: dict[str, RegionChange] = {}
    if readings:
        again = converge_keys(
            dataclasses.replace(current, readings=readings),
            enable=False,
            plan_tags=plan,
            client_factory=session.client_factory,
            policy=session.policy,
        )
        again, _ = settle(again, enable=False, client_factory=session.client_factory, policy=session.policy)
        redone = {c.region: c for c in again}
    unrecorded = _record_on(closed_keys, plan, session)
    merged: list[RegionChange] = []
    for change in changes:
        fresh = redone.get(change.region)
        key = fresh.key if fresh is not None and fresh.key is not None else change.key
        state = key.key_state if key is not None else change.outcome
        if fresh is not None:
            detail = (
                f"now {state}: disabled again by this run (a revoke ran meanwhile; revocation wins)"
                if fresh.converged
                else f"now {state}: disabling again failed ({fresh.detail}); run `cmkctl revoke`"
            )
        elif change.outcome == "overtaken":
            detail = change.detail
        else:
            detail = f"now {state}: a revoke ran meanwhile; this run left it"
        merged.append(dataclasses.replace(change, outcome="overtaken", detail=detail, key=key))
    still = [c.region for c in merged if c.key is None or c.key.enabled]
    line = (
        f"RESTORE OVERTAKEN: {described} ran during this restore; revocation wins: "
        + (
            f"this restore disabled again the keys it found Enabled ({', '.join(sorted(enabled))})"
            if enabled
            else "no key reads Enabled"
        )
        + (f"; STILL ENABLED in {', '.join(still)}: run `cmkctl revoke` now" if still else "")
        + (f"; record not written on {', '.join(unrecorded)}" if unrecorded else "")
        + "; run `cmkctl status`"
    )
    return tuple(merged), line
