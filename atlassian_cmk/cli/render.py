"""Human output of cmkctl: a table a person reads in seconds, then the call-outs that need action."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from atlassian_cmk.aws.kms_actions import ChangeReport, RegionChange
from atlassian_cmk.exit_codes import EXIT_CODE_MEANINGS, ExitCode
from atlassian_cmk.naming import TAG_REVOCATION_REASON, TAG_REVOCATION_TICKET
from atlassian_cmk.status import RegionStatus, StatusReport
from atlassian_cmk.timeline import RevocationClock, iso

_REVOCATION_WIDTH = 36


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


def _revocation_cell(row: RegionStatus) -> str:
    key = row.key
    if key is None or key.enabled:
        return "-"
    ticket = key.tags.get(TAG_REVOCATION_TICKET)
    reason = key.tags.get(TAG_REVOCATION_REASON)
    if not ticket and not reason:
        return "(no reason recorded)"
    return _short(f"{ticket or '?'}: {reason or '?'}", _REVOCATION_WIDTH)


def _clock_cells(clock: RevocationClock | None, now: datetime) -> list[str]:
    if clock is None:
        return ["-", "-", "-", "-"]
    if clock.revoked_at is None or clock.reinstate_until is None or clock.data_at_risk_after is None:
        return ["unknown", "-", "-", "-"]
    days = clock.days_left_to_reinstate(now)
    return [
        f"{iso(clock.revoked_at)} ({'tag' if clock.source == 'revoked-at tag' else clock.source})",
        iso(clock.reinstate_until),
        iso(clock.data_at_risk_after),
        "passed" if days is None or days < 0 else f"{days}",
    ]


def render_status(report: StatusReport) -> str:
    """The status table, the key ARNs, then CRITICAL / UNREACHABLE / SPLIT / DRIFT lines and the verdict."""
    now = report.checked_at
    config = report.config
    header = (
        "REGION",
        "KEY STATE",
        "DECLARED",
        "DRIFT",
        "RE-ENC DECL/LIVE",
        "REVOCATION",
        "REVOKED AT",
        "REINSTATE UNTIL",
        "AT RISK AFTER",
        "DAYS LEFT",
    )
    rows = []
    for row in report.regions:
        live_reencryption = row.key.reencryption if row.key and row.key.reencryption else "-"
        rows.append(
            [
                row.region,
                row.state_label,
                "enabled" if row.declared_enabled else "disabled",
                "DRIFT" if row.drift else "-",
                f"{row.declared_reencryption}/{live_reencryption}",
                _revocation_cell(row),
                *_clock_cells(row.clock, now),
            ]
        )
    identity = "enrolled key ARNs" if report.enrolled else f"{report.alias}, not enrolled yet"
    lines = [
        f"Stack {report.stack} (realm {config.realm}, keys: {identity}), checked {iso(now)}",
        "",
        table(header, rows),
        "",
    ]
    for row in report.regions:
        absent = f"enrolled key {row.enrolled_arn} not found" if row.enrolled_arn else f"no key behind {report.alias}"
        detail = row.key.arn if row.key else (row.error or absent)
        lines.append(f"  {row.region}: {detail}")
        if row.clock_note:
            lines.append(f"  {row.region}: revoked-at unknown; {row.clock_note}")
    if report.clock is not None:
        lines.append(f"Revocation clock: {report.clock.summary(now)}")
    if report.findings or report.notes:
        lines.append("")
        lines.extend(finding.message for finding in report.findings)
        lines.extend(report.notes)
    code = report.exit_code
    lines.append("")
    lines.append(f"Result: exit {int(code)}: {EXIT_CODE_MEANINGS[code]}")
    return "\n".join(lines)


def _change_line(change: RegionChange) -> str:
    arn = change.key.arn if change.key else "(key unknown)"
    return f"  {change.region:<15} {change.outcome.upper():<10} {arn}  {change.detail}"


def render_change(report: ChangeReport) -> str:
    """Per-region outcome lines, and the split named when regions ended differently."""
    verb = "Revoke" if report.action == "revoke" else "Restore"
    lines = [f"{verb} by {report.caller} at {iso(report.at)}:"]
    lines.extend(_change_line(change) for change in report.regions)
    if report.reconciled:
        regions = ", ".join(report.reconciled)
        lines.append(f"  Another revocation ran at the same time; the earliest record now stands in {regions}.")
    if report.exit_code == ExitCode.SPLIT:
        done = [c.region for c in report.regions if c.converged]
        failed = [c.region for c in report.regions if c.outcome == "failed"]
        state = "disabled" if report.action == "revoke" else "enabled"
        lines.append(
            f"SPLIT: {', '.join(done)} {state}; {', '.join(failed)} NOT {state} (see above). The regions that "
            f"succeeded stay {state}; run `cmkctl {report.action}` again to converge."
        )
    return "\n".join(lines)
