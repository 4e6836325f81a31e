"""Human output of cmkctl: a table a person reads in seconds, then the call-outs that need action."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from atlassian_cmk.cli.output import TEXT_WIDTH, fit
from atlassian_cmk.display import printable
from atlassian_cmk.exit_codes import EXIT_CODE_MEANINGS
from atlassian_cmk.naming import (
    TAG_RESTORE_TICKET,
    TAG_RESTORED_AT,
    TAG_RESTORED_BY,
    TAG_REVOCATION_ID,
    TAG_REVOCATION_REASON,
    TAG_REVOCATION_TICKET,
    TAG_REVOKED_AT,
    TAG_REVOKED_BY,
)
from atlassian_cmk.records import current_realm_record, has_current_revocation
from atlassian_cmk.reencryption_activity import KeyUse, ReencryptionActivity
from atlassian_cmk.status import StatusReport
from atlassian_cmk.timeline import RevocationClock, iso
from atlassian_cmk.workflows.changes import ChangeReport, RegionChange

TABLE_WIDTH = TEXT_WIDTH
"""The status table fits this many columns; the full detail (ARNs, tags, sources) is in --format json."""


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart; no box drawing, so it pastes into a ticket intact."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (header, *rows)
    ]
    return "\n".join(lines)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _minute(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")


def _clock_cells(clock: RevocationClock | None, now: datetime) -> list[str]:
    if clock is None:
        return ["-", "-", "-"]
    if clock.revoked_at is None or clock.reinstate_until is None:
        return ["unknown", "-", "-"]
    days = clock.days_left_to_reinstate(now)
    return [
        _minute(clock.revoked_at),
        _minute(clock.reinstate_until),
        "passed" if days is None or days < 0 else f"{days}",
    ]


def _revocation_line(report: StatusReport) -> str | None:
    """Reason and ticket once for the realm (they are the same in every region once a revoke converged)."""
    records = {
        (row.key.tags.get(TAG_REVOCATION_TICKET) or None, row.key.tags.get(TAG_REVOCATION_REASON) or None)
        for row in report.regions
        if row.key is not None and not row.key.enabled and has_current_revocation(row.key.tags)
    }
    if not records:
        return None
    parts = [
        f"{ticket or '(no ticket)'}: {reason or '(no reason recorded)'}"
        for ticket, reason in sorted(records, key=lambda r: (r[0] or "", r[1] or ""))
    ]
    return _short(f"Revocation: {'; '.join(parts)}", TABLE_WIDTH)


def render_status(report: StatusReport) -> str:
    """Header, a table that fits TABLE_WIDTH, the key ARNs, then each finding once and the verdict."""
    now = report.checked_at
    config = report.config
    declared = "enabled" if config.enabled else "disabled"
    header = ("REGION", "KEY STATE", "DRIFT", "RE-ENCRYPTION", "REVOKED AT", "REINSTATE UNTIL", "DAYS LEFT")
    rows = []
    for row in report.regions:
        live_reencryption = row.key.reencryption if row.key and row.key.reencryption else "-"
        rows.append(
            [
                row.region,
                row.state_label,
                "DRIFT" if row.drift else "-",
                _short(live_reencryption, 13),
                *_clock_cells(row.clock, now),
            ]
        )
    total = len(report.regions)
    read = report.regions_read
    # Which keys were read (enrolled ARNs or the alias) is on the who/where line said before this.
    lines = [
        f"Stack {report.stack} (realm {config.realm}, {report.alias}), checked {iso(now)}",
        f"Declared: {declared}, re-encryption {config.reencryption.status}. Read {read} of {total} regions.",
        "",
        # Cells are escaped before the widths are measured; every line is escaped again at the end.
        *table(header, [[printable(cell) for cell in row] for row in rows]).split("\n"),
        "",
    ]
    for row in report.regions:
        if row.key is not None:
            lines.append(f"  {row.region}: {row.key.arn}")
        elif row.error is None:  # an unreadable region's reason is its UNREACHABLE finding, said once
            absent = (
                f"enrolled key {row.enrolled_arn} not found" if row.enrolled_arn else f"no key behind {report.alias}"
            )
            lines.append(f"  {row.region}: {absent}")
        if row.clock_note and (row.clock is None or row.clock.revoked_at is None):
            # With a time, the lookup's failure is the clock's "unverified" reason, said on its line below.
            lines.append(f"  {row.region}: revoked-at unknown; {row.clock_note}")
    lines.extend(_generation_lines(report))
    revocation = _revocation_line(report)
    if revocation:
        lines.append(revocation)
    if report.clock is not None:
        # The revoked-at-unknown DEADLINE finding below says why the time is unknown: said once, there.
        said = any(finding.subkind == "revoked-at-unknown" for finding in report.findings)
        lines.append(f"Revocation clock: {report.clock.summary(now, say_why=not said)}")
    if report.findings or report.notes:
        lines.append("")
        lines.extend(finding.message for finding in report.findings)
        lines.extend(report.notes)
    code = report.exit_code
    lines.append("")
    lines.append(f"Result: exit {int(code)}: {EXIT_CODE_MEANINGS[code]}")
    # Tag values and AWS error messages are inside these lines: one line each, no terminal control,
    # then wrapped to TABLE_WIDTH columns.
    return "\n".join(fit([printable(line) for line in lines]))


def _use_cell(use: KeyUse | None) -> str:
    """Atlassian's newest use of a key in the window, in a cell: `Decrypt 11-29 17:05Z`, none, unknown."""
    if use is None:
        return "-"
    if use.error is not None:
        return "unreadable"
    if use.last_seen is not None:
        return f"{_short(use.event_name or '?', 15)} {use.last_seen.astimezone(UTC).strftime('%m-%d %H:%MZ')}"
    return "none" if use.exhausted else f"not in newest {use.scanned}"


def _uses(activity: ReencryptionActivity | None, role: str, region: str) -> KeyUse | None:
    if activity is None:
        return None
    row = next((r for r in activity.regions if r.region == region), None)
    if row is None:
        return None
    if role == activity.old_role:
        return row.old
    return row.new if role == activity.new_role else None


def _generation_lines(report: StatusReport) -> list[str]:
    """Each generation's key per region (current, next, retired) and Atlassian's use of it, when the
    stack holds more than one; then the evidence's verdict per region. ARNs in full below the table."""
    if len(report.generations) < 2 and report.activity is None:
        return []
    activity = report.activity
    status = report.config.reencryption
    ticket = f" (ticket {status.ticket})" if status.ticket else ""
    window = f" since {iso(activity.window_start)}" if activity else ""
    header = ("GEN", "ROLE", "REGION", "KEY STATE", f"ATLASSIAN USE{' (CLOUDTRAIL)' if activity else ''}")
    rows: list[list[str]] = []
    arns: list[str] = []
    for generation in report.generations:
        if generation.deployed is None:
            rows.append([str(generation.number), generation.role, "-", "not recorded", "-"])
            continue
        for reading in generation.deployed.readings:
            state = "unreadable" if reading.error else (reading.key.key_state if reading.key else "missing")
            rows.append(
                [
                    str(generation.number),
                    generation.role,
                    reading.region,
                    state,
                    _use_cell(_uses(activity, generation.role, reading.region)),
                ]
            )
            arn = reading.key.arn if reading.key else reading.enrolled_arn
            if arn:
                arns.append(f"  {generation.number} {reading.region} {arn}")
        if not generation.recorded:
            arns.append(
                f"  generation {generation.number} ({generation.role}) is not recorded in atlassian-cmk:nextKeys: "
                "found through its alias"
            )
    lines = [
        f"Key generations: re-encryption {status.status}{ticket}",
        *table(header, [[printable(cell) for cell in row] for row in rows]).split("\n"),
        *arns,
    ]
    if activity is not None:
        lines.append(f"Re-encryption evidence (CloudTrail, Atlassian's calls{window}):")
        lines.extend(f"  {r.region} {r.phase}" for r in activity.regions)
    return ["", *lines]


def _change_lines(change: RegionChange) -> list[str]:
    """The region's outcome, state and detail, then its key ARN on its own line (said once: a detail
    names the key as "the key")."""
    arn = change.key.arn if change.key else "(key unknown)"
    state = change.key.key_state if change.key else "unknown"
    return [f"  {change.label:<15} {change.outcome.upper():<14} {state:<9} {change.detail}".rstrip(), f"    {arn}"]


def _other_operation(change: RegionChange) -> str:
    """Who changed a region after this run did, from the record on the key as read now."""
    tags = change.key.tags if change.key else {}
    if change.key is not None and change.key.enabled:
        who, ticket, when = (tags.get(t) or "?" for t in (TAG_RESTORED_BY, TAG_RESTORE_TICKET, TAG_RESTORED_AT))
        return f"restored by {who} under {ticket} at {when}"
    who, ticket, when = (tags.get(t) or "?" for t in (TAG_REVOKED_BY, TAG_REVOCATION_TICKET, TAG_REVOKED_AT))
    return f"revoked by {who} under {ticket} at {when}"


def render_change(report: ChangeReport) -> str:
    """Per-region outcome and TRUE state after the attempt (read back), then what it means, once.

    A record that could not be written is said as such, never as a failure of the state change;
    a region another operation changed afterwards is named with that operation's record."""
    verb = "Revoke" if report.action == "revoke" else "Restore"
    state = "disabled" if report.action == "revoke" else "enabled"
    lines = [f"{verb} by {report.caller} at {iso(report.at)} (state read back after the attempt):"]
    for change in report.regions:
        lines.extend(_change_lines(change))
    if report.reconciled:
        regions = ", ".join(report.reconciled)
        keys = [c.key.tags for c in report.regions if c.key is not None and not c.key.enabled]
        earliest = (current_realm_record(keys) or {}).get(TAG_REVOCATION_ID, "?")
        lines.append(
            f"RECORDS DIFFER: another revocation ran at the same time; the realm's record is the earliest, {earliest}, "
            f"but another stands in {regions}: writing {earliest} there was refused (the key policy makes an open "
            f"record write-once to break-glass). The keys are disabled; have the CI apply role write {earliest}'s "
            'tags there (docs/cmkctl.md, "Running revoke again is safe").'
        )
    final = {c.key.key_state for c in report.regions if c.key is not None and c.outcome != "not-deployed"}
    for change in report.regions:
        if change.outcome != "overtaken":
            continue
        if len(final) == 1 and all(c.key is not None for c in report.regions if c.outcome != "not-deployed"):
            # Every key ended in one state: the other operation stands everywhere, nothing is split.
            lines.append(
                f"OVERTAKEN: {change.label} was {state} by this run, then {_other_operation(change)}; every key "
                f"is now {next(iter(final))}: that operation stands (run `cmkctl status`)."
            )
        else:
            lines.append(
                f"SPLIT: {change.label} was {state} by this run, then {_other_operation(change)}. Decide which "
                f"stands and run `cmkctl revoke` or `cmkctl restore` again to converge every region."
            )
    missing = [c.label for c in report.regions if c.outcome == "record-missing"]
    if missing:
        lines.append(
            f"RECORD NOT WRITTEN in {', '.join(missing)}: access is {state} there, but the tags that say who, when "
            f"and why are missing (see above). Fix the cause, then run the same `cmkctl {report.action}` again: it "
            "writes the record where it is missing and changes nothing else."
        )
    unverified = [c.label for c in report.regions if c.outcome == "unverified"]
    if unverified:
        lines.append(
            f"UNVERIFIED in {', '.join(unverified)}: {state} by this run and read back, but the final check could not "
            f"read the key (see above): another operation may have changed it since. Run `cmkctl status`, then "
            f"`cmkctl {report.action}` again if a region is not {state}."
        )
    failed = [c.label for c in report.regions if c.outcome == "failed"]
    if failed and len(failed) < len(report.regions):
        done = [c.label for c in report.regions if c.converged]
        lines.append(
            f"SPLIT: {', '.join(done) or 'no region'} {state}; {', '.join(failed)} NOT {state} (see above). The "
            f"regions that succeeded stay {state}; run `cmkctl {report.action}` again to converge."
        )
    if not report.changed_regions:
        already = all(c.converged for c in report.regions)
        noun = "revoked" if report.action == "revoke" else "restored"
        lines.append(
            f"Nothing was {noun} by this run" + (f": the key was already {state} in every region." if already else ".")
        )
    return "\n".join(fit([printable(line) for line in lines]))
