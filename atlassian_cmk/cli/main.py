"""`cmkctl`: status, break-glass revoke and restore of the Atlassian CMK keys.

A thin argparse adapter: it reads the stack file through the core, calls the core's
assessment and actions, prints, and returns an exit code from `atlassian_cmk.exit_codes`.
`main(argv)` never raises: bad input is one line and exit 64, unexpected errors one line and
exit 70 ("run with -v for details").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from atlassian_cmk import config_edit
from atlassian_cmk.aws.cloudtrail import collect_cloudtrail_evidence
from atlassian_cmk.aws.kms_actions import (
    RESTORE_PERMISSIONS,
    REVOKE_PERMISSIONS,
    ChangeReport,
    RetryPolicy,
    converge_keys,
    reconcile_revocation_records,
    restoration_tags,
    revocation_tags,
)
from atlassian_cmk.aws.kms_reads import ClientFactory, aws_endpoint_note, read_key_policies, shared_client_factory
from atlassian_cmk.break_glass import (
    OVERRIDE_FLAG,
    InputError,
    RestoreRequest,
    RevokeRequest,
    read_state,
    read_state_and_caller,
    restore_refusal,
    revoke_refusal,
)
from atlassian_cmk.cli.drill import DRILL_PERMISSIONS, DrillRefused, run_drill
from atlassian_cmk.cli.render import render_change, render_status
from atlassian_cmk.config import Revocation, StackConfig, StackConfigErrors, shorten
from atlassian_cmk.exit_codes import ExitCode, exit_codes_help
from atlassian_cmk.git_source import GitRefError
from atlassian_cmk.guards import realm_revocation_clock, reencryption_running, revocation_clock
from atlassian_cmk.impact import restore_steps, revocation_impact
from atlassian_cmk.live_keys import DeployedState
from atlassian_cmk.naming import TAG_REVOCATION_REASON, TAG_REVOCATION_TICKET, alias_name, stack_name_problem
from atlassian_cmk.realms import REALMS
from atlassian_cmk.review import review_stack_change
from atlassian_cmk.stack_file import StackFileError, load_stack_config, read_text, stack_file_path
from atlassian_cmk.status import PERMISSIONS as STATUS_PERMISSIONS
from atlassian_cmk.status import assess, status_json
from atlassian_cmk.timeline import REINSTATEMENT_WINDOW, RevocationClock

_log = logging.getLogger("atlassian_cmk")


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Runtime:
    """What a run talks to: AWS clients, retry bounds, the clock and the operator. Tests inject their own."""

    client_factory: ClientFactory = field(default_factory=shared_client_factory)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    now: Callable[[], datetime] = _utc_now
    ask: Callable[[str], str] = input


class UsageError(Exception):
    """Bad flags or bad configuration: printed as is, exit 64, nothing changed."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _permissions(names: tuple[str, ...]) -> str:
    return "IAM permissions needed:\n" + "\n".join(f"  {name}" for name in names)


_DESCRIPTION = (
    "Status, break-glass revoke and restore of the Atlassian Cloud CMK keys of one stack, the reviewer's impact "
    "summary of a stack-file change, and a revocation drill. The keys are found "
    "through the alias alias/atlassian-cmk/<stack> in every region of the stack's realm, with the standard AWS "
    "credential chain (AWS_ENDPOINT_URL is honoured). Never deletes a key or changes a key policy."
)


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    common = _Parser(add_help=False)
    common.add_argument(
        "--stack", default=argparse.SUPPRESS, help="stack name: reads Pulumi.<stack>.yaml (default: prod)"
    )
    common.add_argument(
        "--project-dir", type=Path, default=argparse.SUPPRESS, help="folder holding Pulumi.<stack>.yaml (default: .)"
    )
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log details")
    parser = _Parser(
        prog="cmkctl",
        description=_DESCRIPTION,
        parents=[common],
        formatter_class=formatter,
        epilog=f"exit codes:\n{exit_codes_help()}\n\nDetails: docs/cmkctl.md",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    status = commands.add_parser(
        "status",
        parents=[common],
        formatter_class=formatter,
        help="compare the live keys with the stack file, region by region",
        description="Per region: key state, declared state, drift, re-encryption, revocation and its deadlines.",
        epilog=_permissions(STATUS_PERMISSIONS),
    )
    status.add_argument("--json", action="store_true", help="print the stable JSON document (schema_version 1)")

    revoke = commands.add_parser(
        "revoke",
        parents=[common],
        formatter_class=formatter,
        help="break-glass: disable the keys in every region now",
        description=(
            "Disable the key in every region at once, tag reason, ticket, revoked-at and revoked-by, and verify. "
            "Refuses while re-encryption is in progress. Prints the Pulumi.<stack>.yaml change to commit."
        ),
        epilog=_permissions(REVOKE_PERMISSIONS),
    )
    revoke.add_argument("--reason", required=True, help="why (at most 256 characters; becomes a KMS tag)")
    revoke.add_argument("--ticket", required=True, help="the incident ticket, e.g. SEC-1234 (no spaces)")
    revoke.add_argument(
        OVERRIDE_FLAG,
        metavar="JUSTIFICATION",
        dest="override",
        help="revoke even though re-encryption may be in progress; the justification is tagged on the keys",
    )

    restore = commands.add_parser(
        "restore",
        parents=[common],
        formatter_class=formatter,
        help="enable the keys in every region again",
        description=(
            "Enable the key in every region at once, tag restored-at, restored-by and the ticket, verify, and say "
            "whether Atlassian can still reinstate the sites (10-day window)."
        ),
        epilog=_permissions(RESTORE_PERMISSIONS),
    )
    restore.add_argument("--ticket", required=True, help="the ticket under which access is restored (no spaces)")

    for command in (revoke, restore):
        command.add_argument("--yes", action="store_true", help="do not ask to type the stack name")
        command.add_argument(
            "--write-config",
            action="store_true",
            help="write the change into Pulumi.<stack>.yaml (comments kept) instead of only printing it",
        )

    impact = commands.add_parser(
        "impact",
        parents=[common],
        formatter_class=formatter,
        help="the reviewer's summary of a change to Pulumi.<stack>.yaml against a Git ref",
        description=(
            "Compare Pulumi.<stack>.yaml at --base with the working tree and say what the change does to "
            "Atlassian's access: revocation, restoration, re-encryption, principals, key policy, realm; the "
            "consequences and timeline, a checklist, and the guardrails that will be checked. Reads Git only; "
            "no AWS call. Exit 0; 4 when the change is one the guardrails refuse (a changed contextTag); 64 when the "
            "configuration is invalid (its errors are the summary)."
        ),
    )
    impact.add_argument("--base", required=True, help="the Git ref the pull request merges into, e.g. origin/main")
    impact.add_argument("--format", choices=("markdown", "json"), default="markdown", help="default: markdown")

    drill = commands.add_parser(
        "drill",
        parents=[common],
        formatter_class=formatter,
        help="rehearse a revocation end to end on throwaway drill keys",
        description=(
            "Create a throwaway key pair shaped like the component's (stack drill-<time>), then run status, a "
            "revoke refused during re-encryption, revoke, status, restore and status with this tool's own "
            "commands, timing each step. Leaves the drill keys disabled and tagged atlassian-cmk:drill=true; "
            "never deletes them. Needs --real-account unless AWS_ENDPOINT_URL points at a local emulator. "
            "Exit 0 when every step ended as expected."
        ),
        epilog=_permissions(DRILL_PERMISSIONS),
    )
    drill.add_argument("--realm", choices=tuple(REALMS), default="us", help="realm of the drill keys (default: us)")
    drill.add_argument(
        "--real-account", action="store_true", help="allow creating drill keys in a real AWS account (asks first)"
    )
    return parser


def main(argv: list[str] | None = None, *, runtime: Runtime | None = None) -> int:
    """Run one cmkctl command; returns the exit code (see `cmkctl --help`)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        print(error, file=sys.stderr)
        return ExitCode.USAGE
    except SystemExit as done:  # --help
        return int(done.code or 0)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="cmkctl: %(message)s")
    for noisy in ("botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.WARNING)
    rt = runtime or Runtime()
    command = {"status": _status, "revoke": _revoke, "restore": _restore, "impact": _impact, "drill": _drill}[
        args.command
    ]
    try:
        return int(command(args, rt))
    except (UsageError, InputError) as error:
        print(f"cmkctl: {error}", file=sys.stderr)
        return ExitCode.USAGE
    except Exception as error:  # noqa: BLE001 - one line for the operator, the traceback with -v
        _log.debug("unexpected error", exc_info=True)
        print(f"cmkctl: internal error: {type(error).__name__}: {error} (run with -v for details)", file=sys.stderr)
        return ExitCode.INTERNAL


def entry_point() -> None:
    sys.exit(main())


def _stack(args: argparse.Namespace) -> tuple[str, Path]:
    """The stack name and project folder; UsageError for a name Pulumi or KMS would refuse (or a path)."""
    stack: str = getattr(args, "stack", "prod")
    problem = stack_name_problem(stack)
    if problem is not None:
        raise UsageError(f"--stack: {shorten(stack)!r} is not allowed; {problem}")
    return stack, getattr(args, "project_dir", Path("."))


def _load(args: argparse.Namespace) -> tuple[str, Path, StackConfig]:
    """The validated stack config, or UsageError with every error line (so nothing reaches AWS)."""
    stack, project_dir = _stack(args)
    try:
        return stack, stack_file_path(project_dir, stack), load_stack_config(project_dir, stack)
    except StackFileError as error:
        raise UsageError(str(error)) from None
    except StackConfigErrors as errors:
        path = project_dir / f"Pulumi.{stack}.yaml"
        raise UsageError(f"{path}: invalid configuration:\n" + "\n".join(f"  {e}" for e in errors.errors)) from None


def _planned_text(path: Path, edit: Callable[[str], str]) -> tuple[str, str]:
    """The stack file now and after the edit, checked by the program's validation before any AWS change."""
    try:
        before = read_text(path, missing="no such stack file") or ""
        after = edit(before)
        config_edit.validate_text(after, str(path), path.parent)
    except (StackFileError, StackConfigErrors) as error:
        raise UsageError(f"{path}: the config change would not be valid: {error}") from None
    return before, after


def _status(args: argparse.Namespace, rt: Runtime) -> ExitCode:
    stack, _, config = _load(args)
    deployed = read_state(stack, config.regions, rt.client_factory, max_workers=rt.policy.max_workers)
    now = rt.now()
    evidence = collect_cloudtrail_evidence(deployed.live_keys(), rt.client_factory, now=now)
    key_policies = read_key_policies(deployed.live_keys(), rt.client_factory)
    report = assess(config, deployed, now=now, cloudtrail=evidence, key_policies=key_policies)
    if args.json:
        print(json.dumps(status_json(report), indent=2))
    else:
        print(render_status(report))
    return report.exit_code


def _all_unreadable(deployed: DeployedState) -> bool:
    return all(reading.error is not None for reading in deployed.readings)


def _confirm(rt: Runtime, stack: str, what: str) -> bool:
    try:
        typed = rt.ask(f"{what}\nType the stack name ({stack}) to go ahead: ")
    except EOFError:
        typed = ""
    if typed.strip() == stack:
        return True
    print(f"Not confirmed: typed {typed.strip()!r}, expected {stack!r}. Nothing was changed.", file=sys.stderr)
    return False


def _finish_config(
    args: argparse.Namespace, path: Path, before: str, after: str, report: ChangeReport, summary: str
) -> None:
    """Print (or write) the stack-file change that makes the stack and the world agree again."""
    if before == after:
        print(f"\n{path.name} already declares this; nothing to commit.")
        return
    if args.write_config and report.converged:
        config_edit.write_stack_file(path, after)
        print(f"\nWrote {path} ({summary}); commit it:\n{config_edit.unified_diff(path, before, after)}", end="")
        return
    if args.write_config:
        print(f"\nNot writing {path}: not every region converged. Once they have, commit:")
    else:
        print(f"\nCommit this change to {path} ({summary}), or rerun with --write-config:")
    print(config_edit.unified_diff(path, before, after), end="")


def _revoke(args: argparse.Namespace, rt: Runtime) -> ExitCode:
    request = RevokeRequest.validated(args.reason, args.ticket, args.override)
    stack, path, config = _load(args)
    before, _ = _planned_text(path, lambda text: config_edit.with_revocation(text, request.reason, request.ticket))

    deployed, caller = read_state_and_caller(
        stack, config.regions, rt.client_factory, max_workers=rt.policy.max_workers
    )
    refusal = revoke_refusal(config, deployed, request)
    if refusal is not None:
        print(f"REFUSED: revoking stack {stack} now is unsafe; nothing was changed:", file=sys.stderr)
        for reason in refusal.reasons:
            print(f"  - {reason}", file=sys.stderr)
        return refusal.code
    overridden = not reencryption_running(config.reencryption, deployed).allowed
    override = request.override_justification if overridden else None
    if override is not None:
        print(f"GUARD OVERRIDDEN (recorded on the keys): {override}")

    planned = dataclasses.replace(config, enabled=False, revocation=Revocation(request.reason, request.ticket))
    if not args.yes and not _confirm(rt, stack, revocation_impact(planned, stack)):
        return ExitCode.REFUSED

    now = rt.now()
    changes = converge_keys(
        deployed,
        enable=False,
        plan_tags=revocation_tags(request.reason, request.ticket, caller, now, override),
        client_factory=rt.client_factory,
        policy=rt.policy,
    )
    changes, reconciled = reconcile_revocation_records(changes, client_factory=rt.client_factory, policy=rt.policy)
    report = ChangeReport("revoke", caller, now, changes, reconciled)
    print(render_change(report))
    keys = [change.key for change in changes if change.key is not None]
    if any(not key.enabled for key in keys):
        print(f"Revocation clock: {revocation_clock(keys).summary(now)}")

    record = report.record() or {}
    reason = record.get(TAG_REVOCATION_REASON, request.reason)
    ticket = record.get(TAG_REVOCATION_TICKET, request.ticket)
    _, after = _planned_text(path, lambda text: config_edit.with_revocation(text, reason, ticket))
    _finish_config(args, path, before, after, report, "enabled: false plus the revocation block")
    return report.exit_code


def _window_sentence(clock: RevocationClock | None, now: datetime) -> str:
    if clock is None:
        return "No region is disabled: there is no revocation to come back from."
    inside = clock.within_reinstatement_window(now)
    if inside is None:
        return (
            f"Revocation time unknown (no revoked-at tag, no CloudTrail DisableKey event): Atlassian reinstates "
            f"within {REINSTATEMENT_WINDOW.days} days of revocation; tell them when it happened."
        )
    verdict = "INSIDE" if inside else "OUTSIDE"
    return f"{verdict} the {REINSTATEMENT_WINDOW.days}-day reinstatement window: {clock.summary(now)}."


def _restore(args: argparse.Namespace, rt: Runtime) -> ExitCode:
    request = RestoreRequest.validated(args.ticket)
    stack, path, config = _load(args)
    before, after = _planned_text(path, config_edit.with_restoration)

    deployed, caller = read_state_and_caller(
        stack, config.regions, rt.client_factory, max_workers=rt.policy.max_workers
    )
    if _all_unreadable(deployed):
        print(f"Cannot reach any region ({aws_endpoint_note()}); nothing was changed:", file=sys.stderr)
        for error in deployed.errors():
            print(f"  - {error}", file=sys.stderr)
        return ExitCode.UNREACHABLE
    refusal = restore_refusal(deployed)
    if refusal is not None:
        print(f"REFUSED: cannot restore stack {stack}; nothing was changed:", file=sys.stderr)
        for reason in refusal.reasons:
            print(f"  - {reason}", file=sys.stderr)
        return refusal.code

    # The window is judged on the evidence as it is before restore touches any tag.
    now = rt.now()
    evidence = collect_cloudtrail_evidence(deployed.live_keys(), rt.client_factory, now=now)
    clock = realm_revocation_clock(deployed.live_keys(), evidence)
    window = _window_sentence(clock, now)
    print(window)

    what = f"About to ENABLE the CMK keys ({alias_name(stack)}) in {', '.join(config.regions)}."
    if not args.yes and not _confirm(rt, stack, what):
        return ExitCode.REFUSED

    changes = converge_keys(
        deployed,
        enable=True,
        plan_tags=restoration_tags(request.ticket, caller, now),
        client_factory=rt.client_factory,
        policy=rt.policy,
    )
    report = ChangeReport("restore", caller, now, changes)
    print(render_change(report))
    if report.converged:
        print(f"Remaining step (Atlassian's side, manual): {restore_steps(stack)[1]}.")
    _finish_config(args, path, before, after, report, "enabled: true, revocation block removed")
    return report.exit_code


def _impact(args: argparse.Namespace, rt: Runtime) -> ExitCode:
    stack, project_dir = _stack(args)
    try:
        review = review_stack_change(project_dir, stack, args.base)
    except GitRefError as error:
        raise UsageError(str(error)) from None
    print(review.to_json() if args.format == "json" else review.to_markdown(), end="")
    if not review.valid:
        return ExitCode.USAGE
    return ExitCode.REFUSED if review.refused else ExitCode.AS_DECLARED


def _drill(args: argparse.Namespace, rt: Runtime) -> ExitCode:
    try:
        result = run_drill(
            realm=args.realm, real_account=args.real_account, ask=rt.ask, client_factory=rt.client_factory
        )
    except DrillRefused as refused:
        print(f"cmkctl drill: refused: {refused}; nothing was created", file=sys.stderr)
        return ExitCode.REFUSED
    if result.passed:
        return ExitCode.AS_DECLARED
    first = next(step for step in result.steps if not step.ok)
    return ExitCode(first.outcome) if first.outcome else ExitCode.DRIFT
