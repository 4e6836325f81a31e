"""`cmkctl`: status, break-glass revoke and restore of the Atlassian CMK keys.

A thin argparse adapter: it reads the stack file through the core, calls the core's
assessment and actions, prints, and returns an exit code from `atlassian_cmk.exit_codes`.
`main(argv)` never raises: bad input is one line and exit 64, unexpected errors one line and
exit 70 ("run with -v for details").
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from atlassian_cmk import config_edit
from atlassian_cmk.aws.cloudtrail import collect_cloudtrail_evidence
from atlassian_cmk.aws.generation_reads import read_generations
from atlassian_cmk.aws.identity import CredentialsProblem, Identity, credentials_problem, resolved_endpoints
from atlassian_cmk.aws.kms_actions import RESTORE_PERMISSIONS, REVOKE_PERMISSIONS
from atlassian_cmk.aws.kms_reads import aws_endpoint_note, read_key_policies, stack_keys_by_tags
from atlassian_cmk.aws.lease import LeaseHold, acquire_lease, release_lease, release_within
from atlassian_cmk.aws.stack_reads import read_state_and_identity
from atlassian_cmk.break_glass import OVERRIDE_FLAG, InputError, RestoreRequest, RevokeRequest
from atlassian_cmk.cli.drill import (
    DRILL_PERMISSIONS,
    DRILL_SERVICES,
    REENCRYPTION_DRILL_PERMISSIONS,
    DrillInterrupted,
    DrillRefused,
    DrillUnreachable,
    run_drill,
)
from atlassian_cmk.cli.output import emit, fit, safe_streams, waiting
from atlassian_cmk.cli.render import render_change, render_status
from atlassian_cmk.cli.runtime import Runtime
from atlassian_cmk.config import StackConfig, StackConfigErrors, shorten
from atlassian_cmk.config_edit import ENROLLED_KEYS_KEY, NEXT_KEYS_KEY
from atlassian_cmk.display import markdown_code_block
from atlassian_cmk.documents import ChangeDocument, RegionAction, RegionResult, RunContext
from atlassian_cmk.endpoints import where_by_service
from atlassian_cmk.enrollment import PERMISSIONS as ENROLL_PERMISSIONS
from atlassian_cmk.enrollment import (
    EnrollmentCheck,
    check_enrollment,
    next_enrollment_refusal,
    other_tagged_keys_problems,
)
from atlassian_cmk.exit_codes import ExitCode, exit_codes_help, most_severe
from atlassian_cmk.generations import NEXT
from atlassian_cmk.git_source import GitRefError
from atlassian_cmk.iam_policy import ACCOUNT_ID_RE
from atlassian_cmk.iam_roles import ROLES, ScopeError, render, role_policy, role_scope
from atlassian_cmk.lease import Command, lease_id_problem, new_lease
from atlassian_cmk.live_keys import DeployedState, realm_wide_error
from atlassian_cmk.naming import CURRENT_KEY_PAIR, stack_name_problem
from atlassian_cmk.realms import REALMS
from atlassian_cmk.review import review_stack_change
from atlassian_cmk.stack_file import StackFileError, load_stack_config, stack_file_path
from atlassian_cmk.status import FAIL_ON_CHOICES, assess, status_json
from atlassian_cmk.status import PERMISSIONS as STATUS_PERMISSIONS
from atlassian_cmk.status import SERVICES as STATUS_SERVICES
from atlassian_cmk.suggest import did_you_mean
from atlassian_cmk.workflows.follow_up import plan_change
from atlassian_cmk.workflows.report import ConfigChangeError, Line, Output, Session, WorkflowReport
from atlassian_cmk.workflows.restore import restore
from atlassian_cmk.workflows.results import unchanged_results
from atlassian_cmk.workflows.revoke import revoke

__all__ = ["Runtime", "build_parser", "entry_point", "main"]

_log = logging.getLogger("atlassian_cmk")

FORMATS = ("text", "json", "markdown")
"""`--format`: text (for `impact`, markdown is its text) or the versioned JSON document."""


class UsageError(Exception):
    """Bad flags or bad configuration: printed as is, exit 64, nothing changed."""


_INVALID_CHOICE_RE = re.compile(r"invalid choice: '(?P<word>[^']*)' \(choose from (?P<choices>.*)\)")
_UNRECOGNIZED_RE = re.compile(r"unrecognized arguments: (?P<words>.*)")
_ALL_OPTIONS: set[str] = set()


def _with_suggestion(message: str) -> str:
    """argparse's message plus "did you mean X?" for a misspelled command, choice or flag (difflib)."""
    choice = _INVALID_CHOICE_RE.search(message)
    if choice:
        known = re.findall(r"'([^']*)'", choice["choices"])
        hint = did_you_mean(choice["word"], known).strip()
        return f"{message}; {hint}" if hint else message
    unknown = _UNRECOGNIZED_RE.search(message)
    if unknown:
        flags = [word.split("=")[0] for word in unknown["words"].split() if word.startswith("-")]
        hints = [did_you_mean(flag, _ALL_OPTIONS).strip() for flag in flags]
        hints = [hint for hint in hints if hint]
        return f"{message}; {' '.join(hints)}" if hints else message
    return message


def _refuse_unknown_flags(argv: Sequence[str]) -> None:
    """A misspelled flag first, with its suggestion: argparse would report the required flag it hides
    (`--tiket X` -> "required: --ticket") and never the misspelling."""
    words = list(argv)
    if "--" in words:  # after it, everything is a value
        words = words[: words.index("--")]
    # argparse takes a word with a space as a value even if it starts with '-' (argparse._parse_optional)
    unknown = [
        word.split("=")[0]
        for word in words
        if word.startswith("--") and not any(c.isspace() for c in word) and word.split("=")[0] not in _ALL_OPTIONS
    ]
    if unknown:
        hints = [hint for hint in (did_you_mean(flag, _ALL_OPTIONS).strip() for flag in unknown) if hint]
        suffix = f"; {' '.join(hints)}" if hints else ""
        raise UsageError(f"cmkctl: unrecognized arguments: {' '.join(unknown)}{suffix} (see cmkctl --help)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {_with_suggestion(message)} (see {self.prog} --help)")


def _version() -> str:
    try:
        return importlib.metadata.version("atlassian-cmk")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _permissions(names: tuple[str, ...]) -> str:
    return "IAM permissions needed:\n" + "\n".join(f"  {name}" for name in names)


_DESCRIPTION = (
    "Status, break-glass revoke and restore of the Atlassian Cloud CMK keys of one stack, the reviewer's impact "
    "summary of a stack-file change, and a revocation drill. The keys are addressed by the ARNs the stack "
    "enrolled (atlassian-cmk:enrolledKeys, see `cmkctl enroll`), before enrollment through the alias "
    "alias/atlassian-cmk/<stack>, in every region of the stack's realm, with the standard AWS credential chain "
    "(AWS_ENDPOINT_URL is honoured). Never deletes a key or changes a key policy."
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
    common.add_argument(
        "--format",
        choices=FORMATS,
        default=argparse.SUPPRESS,
        help="text (default; for impact: markdown) or json, the versioned document of docs/cmkctl.md",
    )
    parser = _Parser(
        prog="cmkctl",
        description=_DESCRIPTION,
        parents=[common],
        formatter_class=formatter,
        epilog=f"exit codes:\n{exit_codes_help()}\n\nDetails: docs/cmkctl.md",
    )
    parser.add_argument("--version", action="version", version=f"cmkctl {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    status = commands.add_parser(
        "status",
        parents=[common],
        formatter_class=formatter,
        help="compare the live keys with the stack file, region by region",
        description="Per region: key state, declared state, drift, re-encryption, revocation and its deadlines.",
        epilog=_permissions(STATUS_PERMISSIONS),
    )
    status.add_argument("--json", action="store_true", help="same as --format json (kept for existing scripts)")
    status.add_argument(
        "--fail-on",
        action="append",
        choices=FAIL_ON_CHOICES,
        default=[],
        help="also exit non-zero (7) on these findings: deadline = reinstatement window closes within 48 h or passed",
    )

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

    # Only restore waits for the lease (revocation never does: docs/cmkctl.md, "The lease").
    restore.add_argument(
        "--break-lease",
        metavar="LEASE_ID",
        help="break another operation's lease that has expired (the id its refusal names); audited in CloudTrail",
    )

    enroll = commands.add_parser(
        "enroll",
        parents=[common],
        formatter_class=formatter,
        help="after the first `pulumi up`: record the key ARNs Atlassian holds (atlassian-cmk:enrolledKeys)",
        description=(
            "Read the stack's key in every region through its alias, check that each looks like the stack's own "
            "(tags, key policy, one account, not pending deletion), and print the atlassian-cmk:enrolledKeys block, "
            "or write it into Pulumi.<stack>.yaml (comments kept) for a reviewed commit. Refuses, changing "
            "nothing, when a region's key does not look like the stack's. Changes nothing in AWS."
        ),
        epilog=_permissions(ENROLL_PERMISSIONS),
    )
    enroll.add_argument(
        "--write-config", action="store_true", help="write the block into Pulumi.<stack>.yaml instead of printing it"
    )
    enroll.add_argument(
        "--next",
        action="store_true",
        help=(
            "record the next generation (re-encryption) as atlassian-cmk:nextKeys, read through "
            "alias/atlassian-cmk/<stack>/next; only while reencryption.status is preparing or in-progress"
        ),
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
            "no AWS call. Exit 0; 4 when the change is one the guardrails refuse (a changed contextTag, a revocation "
            "during re-encryption that is not the break-glass follow-up); 64 when the configuration is invalid "
            "(its errors are the summary)."
        ),
    )
    impact.add_argument("--base", required=True, help="the Git ref the pull request merges into, e.g. origin/main")

    iam = commands.add_parser(
        "iam",
        parents=[common],
        formatter_class=formatter,
        help="print the IAM policy of a role (preview, apply, break-glass) for this stack",
        description=(
            "Generate the role's IAM policy from Pulumi.<stack>.yaml: the account, regions, enrolled key ARNs where "
            "known, and the stack's aliases. No role may tag, disable or enable a key that is not the stack's. "
            "Reads the stack file only; no AWS call."
        ),
    )
    iam.add_argument("--role", required=True, choices=ROLES, help="which role's policy to print")
    iam.add_argument(
        "--account-id", help="the 12-digit account of the keys (required before enrollment; else the enrolled ARNs')"
    )

    drill = commands.add_parser(
        "drill",
        parents=[common],
        formatter_class=formatter,
        help="rehearse a revocation end to end on throwaway drill keys",
        description=(
            "Create a throwaway key pair shaped like the component's (stack drill-<time>), then run enroll, status, a "
            "revoke refused during re-encryption, revoke, status, restore and status with this tool's own "
            "commands, timing each step. Leaves the drill keys disabled and tagged atlassian-cmk:drill=true; "
            "never deletes them. Needs --real-account unless AWS_ENDPOINT_URL points at a local emulator. "
            "Exit 0 when every step ended as expected."
        ),
        epilog=_permissions(DRILL_PERMISSIONS)
        + "\n  with --reencryption also:\n"
        + "\n".join(f"  {name}" for name in REENCRYPTION_DRILL_PERMISSIONS[len(DRILL_PERMISSIONS) :]),
    )
    drill.add_argument("--realm", choices=tuple(REALMS), default="us", help="realm of the drill keys (default: us)")
    drill.add_argument(
        "--real-account", action="store_true", help="allow creating drill keys in a real AWS account (asks first)"
    )
    drill.add_argument(
        "--reencryption",
        action="store_true",
        help=(
            "rehearse a whole re-encryption instead: a second drill key generation prepared, enroll --next, a revoke "
            "refused while in progress, complete, promote, retire, status at each step (twice the keys)"
        ),
    )
    for sub in (parser, status, enroll, revoke, restore, impact, iam, drill):
        _ALL_OPTIONS.update(option for action in sub._actions for option in action.option_strings)
    return parser


def main(argv: list[str] | None = None, *, runtime: Runtime | None = None) -> int:
    """Run one cmkctl command; returns the exit code (see `cmkctl --help`). Never raises.

    Output is redacted and survives a closed pipe (`cli/output.py`); Ctrl-C is exit 130 with one line
    naming each region's last known state; profile/credential problems are exit 3 in one line.
    """
    with safe_streams():
        return _main(argv, runtime)


def _main(argv: list[str] | None, runtime: Runtime | None) -> int:
    parser = build_parser()
    try:
        _refuse_unknown_flags(sys.argv[1:] if argv is None else argv)
        args = parser.parse_args(argv)
    except UsageError as error:
        print(error, file=sys.stderr)
        return ExitCode.USAGE
    except SystemExit as done:  # --help, --version
        return int(done.code or 0)
    problem = _format_problem(args)
    if problem is not None:
        print(f"cmkctl: {problem}", file=sys.stderr)
        return ExitCode.USAGE
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="cmkctl: %(message)s")
    for noisy in ("botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.WARNING)
    rt = runtime or Runtime()
    run = _Run(args=args, rt=rt, json=_wants_json(args))
    _CURRENT.append(run)
    command = {
        "status": _status,
        "enroll": _enroll,
        "revoke": _revoke,
        "restore": _restore,
        "impact": _impact,
        "iam": _iam,
        "drill": _drill,
    }[args.command]
    try:
        return int(command(run))
    except DrillInterrupted as interrupted:
        print(f"\ncmkctl: interrupted: {interrupted}", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except KeyboardInterrupt:
        print(f"\ncmkctl: interrupted: {run.interrupt_summary()}", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except _LeaseRefused:
        return ExitCode.REFUSED
    except (UsageError, InputError) as error:
        print(f"cmkctl: {error}", file=sys.stderr)
        return ExitCode.USAGE
    except CredentialsProblem as unusable:
        print(f"cmkctl: {unusable}; nothing was read or changed", file=sys.stderr)
        return ExitCode.UNREACHABLE
    except Exception as error:  # noqa: BLE001 - one line for the operator, the traceback with -v
        credentials = credentials_problem(error)
        if credentials is not None:
            print(f"cmkctl: {credentials}; nothing was read or changed", file=sys.stderr)
            return ExitCode.UNREACHABLE
        _log.debug("unexpected error", exc_info=True)
        print(f"cmkctl: internal error: {type(error).__name__}: {error} (run with -v for details)", file=sys.stderr)
        return ExitCode.INTERNAL
    finally:
        if run.lease is not None and run.lease.held:  # lease: an error or Ctrl-C ended the run
            print("cmkctl: " + "; ".join(release_within([run.lease], _LEASE_RELEASE_WAIT_S)), file=sys.stderr)
        _CURRENT.remove(run)


_CURRENT: list[_Run] = []
"""The run in progress, for the Ctrl-C handler of the installed command."""

_LEASE_RELEASE_WAIT_S = 10.0
"""How long Ctrl-C or an error waits for the lease's release (one read and one TagResource per region)."""


def _on_sigint(signum: int, frame: object) -> None:
    """Ctrl-C in the installed command: one line, exit 130, at once.

    A KeyboardInterrupt would wait for the worker threads of a concurrent AWS round (bounded by
    botocore's timeouts and retries, tens of seconds against a hung endpoint) before the process
    could exit. The drill raises KeyboardInterrupt instead: it must disable its keys on the way out.
    """
    run = _CURRENT[-1] if _CURRENT else None
    # Any drill in the stack of runs, not only the innermost: the drill's steps are nested runs
    # (status, revoke, restore), and an os._exit inside one would skip the drill's clean-up.
    if run is None or any(r.args.command == "drill" for r in _CURRENT):
        raise KeyboardInterrupt
    summary = run.interrupt_summary()
    # lease: released before exiting (bounded), so a Ctrl-C never blocks the next operator for LEASE_TTL.
    with contextlib.suppress(Exception):
        held = [r.lease for r in _CURRENT if r.lease is not None]
        summary = "; ".join([summary, *release_within(held, _LEASE_RELEASE_WAIT_S)])
    with contextlib.suppress(Exception):
        print(f"\ncmkctl: interrupted: {summary}", file=sys.stderr, flush=True)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    os._exit(ExitCode.INTERRUPTED)


def entry_point() -> None:
    signal.signal(signal.SIGINT, _on_sigint)
    sys.exit(main())


FORMATS_OF: dict[str, tuple[str, ...]] = {
    "status": ("text", "json", "markdown"),
    "impact": ("text", "json", "markdown"),
}
"""The --format values each command can write; the others write text or json."""


def _format_problem(args: argparse.Namespace) -> str | None:
    """A one-line usage error for a --format the command cannot write, or --json with another format."""
    chosen = getattr(args, "format", None)
    allowed = FORMATS_OF.get(args.command, ("text", "json"))
    if chosen is not None and chosen not in allowed:
        return f"{args.command}: --format {chosen} is not supported; choose from {', '.join(allowed)}"
    if getattr(args, "json", False) and chosen not in (None, "json"):
        return f"{args.command}: --json and --format {chosen} conflict; use one (--json is --format json)"
    break_lease = getattr(args, "break_lease", None)
    if break_lease is not None and (problem := lease_id_problem(break_lease)) is not None:
        return f"{args.command}: --break-lease: {shorten(break_lease)!r} is not allowed; {problem}"
    return None


def _wants_json(args: argparse.Namespace) -> bool:
    return getattr(args, "format", "text") == "json" or bool(getattr(args, "json", False))


@dataclass
class _Run:
    """One run: its arguments and runtime, and what the run knows so far (for the Ctrl-C line)."""

    args: argparse.Namespace
    rt: Runtime
    json: bool
    states: dict[str, str] = field(default_factory=dict)
    phase: str = "before reading AWS; nothing was changed"
    lease: LeaseHold | None = None
    """The break-glass lease this run holds (issue 12 item 4): released after the verify, on an error, on Ctrl-C."""
    lease_taken_over: bool = False

    def remember(self, deployed: DeployedState) -> None:
        self.states = {
            r.region: (r.key.key_state if r.key else ("unreadable" if r.error else "missing"))
            for r in deployed.readings
        }

    def interrupt_summary(self) -> str:
        """One line: the phase, and each region's last known state."""
        if not self.states:
            return self.phase
        regions = ", ".join(f"{region} {state}" for region, state in self.states.items())
        return f"{self.phase}; last known state: {regions}"

    @contextlib.contextmanager
    def wait(self, what: str) -> Iterator[None]:
        with waiting(what, self.rt.progress_after_s):
            yield

    def say(self, text: str = "", *, err: bool = False) -> None:
        """A line of the text output; in JSON mode, stdout is kept for the document (stderr still gets it)."""
        if err:
            print(text, file=sys.stderr)
        elif not self.json:
            emit(text)


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


def _read(
    run: _Run,
    stack: str,
    config: StackConfig,
    *,
    through_alias: bool = False,
    key_pair: str = CURRENT_KEY_PAIR,
    services: tuple[str, ...] = ("kms", "sts"),
) -> tuple[DeployedState, Identity, RunContext]:
    """Who/where and the deployed keys, in one concurrent round; a progress line if it takes long.

    The enrolled keys by ARN once the stack records them (every enrolled region), else, and with
    `through_alias` (enroll), the keys the alias of `key_pair` names in the stack's regions.
    """
    enrolled = None if through_alias else config.enrolled_keys
    regions = enrolled.regions if enrolled is not None else config.regions
    # Building the clients first resolves the profile (AWS_PROFILE=nope is one line here, exit 3) and
    # says where the requests go, as botocore resolved it.
    endpoints = resolved_endpoints(run.rt.client_factory, services, regions)
    where = where_by_service(endpoints)
    with run.wait(f"AWS ({len(regions)} region(s), endpoint {where})"):
        deployed, identity = read_state_and_identity(
            stack,
            config,
            run.rt.client_factory,
            max_workers=run.rt.policy.max_workers,
            through_alias=through_alias,
            key_pair=key_pair,
            now=run.rt.now(),
        )
    run.remember(deployed)
    run.phase = "while reading; nothing was changed"
    context = RunContext(
        identity.account,
        identity.arn,
        regions,
        where,
        identity.error,
        alias=deployed.alias,
        enrolled_keys=config.enrolled_keys.as_config() if config.enrolled_keys is not None else None,
    )
    return deployed, identity, context


def _status(run: _Run) -> ExitCode:
    args = run.args
    stack, _, config = _load(args)
    deployed, _, context = _read(run, stack, config, services=STATUS_SERVICES)
    said = context
    if context.identity_error is not None and context.identity_error == realm_wide_error(deployed):
        # The same cause as every region's: the UNREACHABLE finding below states it, once.
        said = dataclasses.replace(context, identity_error="unreachable, as every region")
    if getattr(args, "format", "text") != "markdown":
        run.say(said.line())
    now = run.rt.now()
    with run.wait("CloudTrail and key policies"):
        evidence = collect_cloudtrail_evidence(deployed.live_keys(), run.rt.client_factory, now=now)
        generations = read_generations(stack, config, deployed, run.rt.client_factory)
        # Every generation's keys' policies in one round: each generation's tags are evidence a guard trusts.
        shown = [key for generation in generations if generation.deployed for key in generation.deployed.live_keys()]
        key_policies = read_key_policies(shown or deployed.live_keys(), run.rt.client_factory)
    report = assess(
        config,
        deployed,
        now=now,
        cloudtrail=evidence,
        key_policies=key_policies,
        fail_on=frozenset(args.fail_on),
        generations=generations,
    )
    if run.json:
        print(json.dumps({**status_json(report), "context": context.to_json()}, indent=2))
    elif getattr(args, "format", "text") == "markdown":  # e.g. a GitHub job summary: nothing in it renders
        print(markdown_code_block(f"{said.line()}\n{render_status(report)}"), end="")
    else:
        emit(render_status(report))
    return report.exit_code


def _all_unreadable(deployed: DeployedState) -> bool:
    return all(reading.error is not None for reading in deployed.readings)


def _confirm(run: _Run, stack: str, context: RunContext, what: str) -> bool:
    """Ask to type the stack name, with who/where repeated right above the question."""
    run.phase = "at the confirmation prompt; nothing was changed"
    try:
        shown = "\n".join(fit([*what.split("\n"), context.line()]))  # within 100 columns, as all text
        typed = run.rt.ask(f"{shown}\nType the stack name ({stack}) to go ahead: ")
    except EOFError:
        typed = ""
    if typed.strip() == stack:
        return True
    shown = typed.strip()[:40] or "nothing"
    print(f"Not confirmed: typed {shown}, expected {stack}. Nothing was changed.", file=sys.stderr)
    return False


def _refused(run: _Run, headline: str, reasons: Sequence[str]) -> None:
    print(headline, file=sys.stderr)
    for reason in reasons:
        print(f"  - {reason}", file=sys.stderr)


def _unchanged_results(deployed: DeployedState, action: RegionAction) -> list[RegionResult]:
    return unchanged_results([("current", deployed)], action)


def _document(run: _Run, document: ChangeDocument) -> None:
    if run.json:
        print(json.dumps(document.to_json(), indent=2))


def _session(run: _Run, stack: str) -> Session:
    """The workflow's view of this run: clients, clock, the prompt (unless --yes), progress, output."""

    def render(item: Output) -> None:
        if isinstance(item, Line):
            run.say(item.text, err=item.stream == "err")
        else:
            run.say(render_change(item))

    def phase(text: str, states: Mapping[str, str] | None) -> None:
        run.phase = text
        if states is not None:
            run.states = dict(states)

    return Session(
        client_factory=run.rt.client_factory,
        policy=run.rt.policy,
        now=run.rt.now,
        confirm=None if run.args.yes else (lambda what, context: _confirm(run, stack, context, what)),
        waiting=run.wait,
        emit=render,
        on_context=lambda context: run.say(context.line()),
        on_phase=phase,
        exclusive=lambda stack, keys, caller: _lease(run, stack, keys, caller),
        on_lease=lambda hold: setattr(run, "lease", hold),
    )


class _LeaseRefused(Exception):
    """Another operation holds the stack's lease (or a key changed since the read): said, nothing changed."""


@contextlib.contextmanager
def _lease(run: _Run, stack: str, keys: DeployedState, caller: str) -> Iterator[LeaseHold]:
    """Restore's break-glass lease around EnableKey and its verification (`atlassian_cmk/lease.py`): taken
    before the first change, released after the verification, on an error and (in `_on_sigint`) on Ctrl-C.
    Revoke does not come here: it never waits (`atlassian_cmk.aws.lease.RevokeLease`)."""
    command: Command = "restore"
    run.phase = "while taking the lease; nothing was changed"
    lease = new_lease(command, run.args.ticket, caller, run.rt.now())
    with run.wait("AWS (the lease)"):
        hold = acquire_lease(
            keys, lease, run.rt.client_factory, run.rt.policy, now=run.rt.now(), break_lease=run.args.break_lease
        )
    run.lease = hold
    if hold.refused:
        _refused(
            run,
            f"REFUSED: another operation is changing stack {stack}:",
            (*hold.refused, f"nothing was changed by this {command}"),
        )
        raise _LeaseRefused
    if hold.not_held:
        # Revoke goes on without its lease (an emergency is never stopped by its coordination device); restore
        # is not urgent, and enabling a key where it is not kept apart from a revoke is what the lease prevents.
        for note in release_lease(hold).notes(lease):
            run.say(note)
        _refused(
            run,
            f"REFUSED: restore could not take the stack's lease in every region of stack {stack}:",
            (
                *(f"{region}: {reason}" for region, reason in hold.not_held),
                f"nothing was changed by this {command}; fix the cause (a throttle: wait; AccessDenied: "
                "regenerate the role with `cmkctl iam`), then run it again",
            ),
        )
        raise _LeaseRefused
    for note in hold.notes():
        run.say(note)
    try:
        yield hold
    finally:
        released = release_lease(hold)
        for note in released.notes(lease):
            run.say(note)
        # Only a revocation taking over makes the restore yield (exit 2): another restore that replaced or
        # blanked this run's lease wanted the keys Enabled too, and the end-state check already judged them.
        run.lease_taken_over = run.lease_taken_over or bool(released.revoked)
        if released.revoked:
            # Restore yields: it never sends EnableKey again after a revocation took over.
            run.say(
                f"RESTORE OVERTAKEN: a revocation took over this restore's lease in "
                f"{', '.join(released.revoked)} (named above); the revocation stands. "
                "Run `cmkctl status`; restore again only once that revocation's incident is closed"
            )


def _lease_outcome(run: _Run, code: ExitCode) -> ExitCode:
    """A lease another operation took over during the run is a SPLIT (it may have changed the keys)."""
    return most_severe([code, ExitCode.SPLIT]) if run.lease_taken_over else code


def _revoke(run: _Run) -> ExitCode:
    """The core's revoke workflow (`atlassian_cmk.workflows.revoke`), rendered."""
    args = run.args
    return _workflow(run, revoke, RevokeRequest.validated(args.reason, args.ticket, args.override))


def _restore(run: _Run) -> ExitCode:
    """The core's restore workflow (`atlassian_cmk.workflows.restore`), rendered."""
    return _workflow(run, restore, RestoreRequest.validated(run.args.ticket))


def _workflow(run: _Run, workflow: Callable[..., WorkflowReport], request: object) -> ExitCode:
    """Load the stack, run `workflow` (revoke or restore) on `request`, render its report."""
    stack, path, config = _load(run.args)
    try:
        report = workflow(request, stack, path, config, _session(run, stack), write_config=run.args.write_config)
    except ConfigChangeError as error:
        raise UsageError(str(error)) from None
    _document(run, report.document())
    return _lease_outcome(run, report.exit_code)


def _scan(
    run: _Run, stack: str, keys: Mapping[str, str], key_pair: str = CURRENT_KEY_PAIR
) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """Every region's keys carrying the stack's tags for `key_pair` (a decoy behind the alias copies them)."""
    with run.wait("other keys carrying the stack's tags"):
        return stack_keys_by_tags(stack, tuple(keys), key_pair, run.rt.client_factory)


def _arn_list(keys: Mapping[str, str]) -> str:
    """region -> ARN as a reader's list (`us-east-1 arn:...`, ...), never a Python dict."""
    return ", ".join(f"{region} {arn}" for region, arn in keys.items())


def _enroll(run: _Run) -> ExitCode:
    """Record the keys the alias names as `enrolledKeys` (with --next: the next generation's, behind
    `alias/atlassian-cmk/<stack>/next`, as `nextKeys`), after checking they are the stack's own.

    Changes nothing in AWS; writes the stack file only with --write-config. The JSON document is the
    change document (command "enroll"); each region's action is "none" (nothing changed in AWS) or
    "refused", and `enrolled_keys` (with --next: `next_keys`) and `config_written` say what was (or
    would be) recorded. --next outside `preparing`/`in-progress`, or before `enrolledKeys` is recorded,
    is refused in one line (exit 4) before any AWS call.
    """
    args = run.args
    stack, path, config = _load(args)
    following = bool(getattr(args, "next", False))
    key_pair = NEXT if following else CURRENT_KEY_PAIR
    if following:
        refusal = next_enrollment_refusal(config)
        if refusal is not None:
            message = f"REFUSED: enroll --next of stack {stack}: {refusal}; nothing was read or written"
            print(f"cmkctl: {message}", file=sys.stderr)
            return ExitCode.REFUSED
    config_key = NEXT_KEYS_KEY if following else ENROLLED_KEYS_KEY
    recorded = config.next_keys if following else config.enrolled_keys
    deployed, _, context = _read(run, stack, config, through_alias=True, key_pair=key_pair)
    run.say(context.line())
    now = run.rt.now()

    def document(
        code: ExitCode, action: RegionAction, messages: Sequence[str], keys: dict[str, str], written: bool = False
    ) -> None:
        extra = {"next_keys" if following else "enrolled_keys": keys or None, "config_written": written}
        results = _unchanged_results(deployed, action)
        _document(run, ChangeDocument("enroll", context, code, now, results, messages, extra))

    if _all_unreadable(deployed):
        _refused(run, f"Cannot reach any region ({aws_endpoint_note()}); nothing was enrolled:", deployed.errors())
        document(ExitCode.UNREACHABLE, "not-started", deployed.errors(), {})
        return ExitCode.UNREACHABLE
    check = check_enrollment(config, deployed, key_pair)
    if check.ok:
        check = EnrollmentCheck(
            check.keys, tuple(other_tagged_keys_problems(check.keys, _scan(run, stack, check.keys, key_pair)))
        )
    if not check.ok:
        headline = f"REFUSED: the keys behind {deployed.alias} cannot be enrolled; nothing was written:"
        _refused(run, headline, check.problems)
        document(ExitCode.REFUSED, "refused", check.problems, {})
        return ExitCode.REFUSED
    if recorded is not None and recorded.as_config() != check.keys:
        what = "records nextKeys" if following else "already enrolls"
        moved = (
            f"REFUSED: {path.name} {what} {_arn_list(recorded.as_config())}, but {deployed.alias} names "
            f"{_arn_list(check.keys)}; see `cmkctl status` (ALIAS MOVED). A new key for Atlassian is a "
            "re-encryption, not an enrollment."
        )
        print(moved, file=sys.stderr)
        document(ExitCode.REFUSED, "refused", (moved,), {})
        return ExitCode.REFUSED
    edit = config_edit.with_next_keys if following else config_edit.with_enrolled_keys
    try:
        planned = plan_change(path, lambda text: edit(text, check.keys))
    except ConfigChangeError as error:
        raise UsageError(str(error)) from None
    before, after = planned.before, planned.after
    for region, arn in check.keys.items():
        run.say(f"  {region:<15} {arn}  (tags, key policy and account checked)")
    messages: list[str] = []
    written = False
    if before == after:
        recorded_as = f"records these keys as {config_key}" if following else "enrolls these keys"
        messages.append(f"{path.name} already {recorded_as}; nothing to commit.")
        run.say(messages[-1])
    elif args.write_config:
        config_edit.write_stack_file(path, after)
        written = True
        messages.append(f"Wrote {path}; commit it.")
        run.say(f"{messages[-1]}\n{config_edit.unified_diff(path, before, after)}".rstrip("\n"))
    else:
        block = "\n".join(f"    {region}: {arn}" for region, arn in check.keys.items())
        messages.append(f"Add {config_key} to {path.name} under config: (or rerun with --write-config).")
        run.say(f"Add to {path.name} under config: (or rerun with --write-config):\n  {config_key}:\n{block}")
    if following:
        # Atlassian's side is manual: the organization admin's re-encryption ticket carries these ARNs.
        messages.append(
            "Hand these ARNs to Atlassian on the re-encryption ticket (the organization admin requests it)."
        )
        run.say(messages[-1])
    document(ExitCode.AS_DECLARED, "none", messages, check.keys, written)
    return ExitCode.AS_DECLARED


def _impact(run: _Run) -> ExitCode:
    stack, project_dir = _stack(run.args)
    try:
        review = review_stack_change(project_dir, stack, run.args.base)
    except GitRefError as error:
        raise UsageError(str(error)) from None
    print(review.to_json() if run.json else review.to_markdown(), end="")
    if not review.valid:
        return ExitCode.USAGE
    # A changed context tag, Atlassian losing access through its statements (marker or not), or an
    # undeclared change or removal of the enrolled keys: fail CI's impact check.
    return ExitCode.REFUSED if review.check_fails else ExitCode.AS_DECLARED


def _iam(run: _Run) -> ExitCode:
    """The role's policy document for this stack, on stdout (text and json: the document itself)."""
    stack, _path, config = _load(run.args)
    account = run.args.account_id
    if account is not None and not ACCOUNT_ID_RE.match(account):
        raise UsageError(f"--account-id: {shorten(account)!r} is not allowed; a 12-digit AWS account ID")
    try:
        scope = role_scope(config, stack, account)
    except ScopeError as error:
        raise UsageError(str(error)) from None
    print(render(role_policy(run.args.role, scope)), end="")
    return ExitCode.AS_DECLARED


def _drill(run: _Run) -> ExitCode:
    args = run.args
    regions = REALMS[args.realm].regions
    endpoints = resolved_endpoints(run.rt.client_factory, DRILL_SERVICES, regions)
    out: Any = sys.stderr if run.json else sys.stdout
    try:
        result = run_drill(
            realm=args.realm,
            real_account=args.real_account,
            reencryption=args.reencryption,
            ask=run.rt.ask,
            runtime=run.rt,
            cli=main,
            out=out,
            endpoints=endpoints,
            on_context=lambda context: run.say(context.line()),
        )
    except DrillRefused as refused:
        print(f"cmkctl drill: refused: {refused}; nothing was created", file=sys.stderr)
        return ExitCode.REFUSED
    except DrillUnreachable as unreachable:
        print(f"cmkctl drill: {unreachable}; nothing was created", file=sys.stderr)
        return ExitCode.UNREACHABLE
    code = ExitCode.AS_DECLARED
    if not result.passed:
        first = next((step for step in result.steps if not step.ok), None)
        code = ExitCode(first.outcome) if first and first.outcome else ExitCode.DRIFT
    if run.json:
        print(json.dumps(result.document(code, run.rt.now()).to_json(), indent=2))
    return code
