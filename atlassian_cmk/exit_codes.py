"""cmkctl's exit codes: a contract with the CI apply workflow, which branches on them.

One table, so `cmkctl --help`, docs/cmkctl.md and the code cannot disagree. When several
situations hold at once, the most severe code wins, in the order of `SEVERITY`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class ExitCode(IntEnum):
    """What a cmkctl run found or did; the numbers are stable."""

    AS_DECLARED = 0
    DRIFT = 1
    SPLIT = 2
    UNREACHABLE = 3
    REFUSED = 4
    KEY_LOST = 5
    ALIAS_MOVED = 6
    DEADLINE = 7
    NOT_DEPLOYED = 8
    RECORD_NOT_WRITTEN = 9
    INTERRUPTED = 130
    USAGE = 64
    INTERNAL = 70


EXIT_CODE_MEANINGS: Final = {
    ExitCode.AS_DECLARED: "all regions as declared (or the revoke/restore converged in every region)",
    ExitCode.DRIFT: "drift: the live keys differ from the stack file, and the regions agree",
    ExitCode.SPLIT: "split: the regions differ, or a revoke/restore changed some regions but not all",
    ExitCode.UNREACHABLE: (
        "AWS unreachable in at least one region (also at a revoke/restore's final check: UNVERIFIED), re-encryption "
        "evidence (CloudTrail) unreadable, with status --fail-on deadline a revocation clock CloudTrail could not read "
        "in full, or the profile/credentials unusable"
    ),
    ExitCode.REFUSED: (
        "refused by a guard (re-encryption in progress, a key policy without the evidence protection, "
        "the confirmation not given, or another revoke/restore holds the stack's lease)"
    ),
    ExitCode.KEY_LOST: "a key is pending deletion, or an enrolled key is not found or not the stack's (an incident)",
    ExitCode.ALIAS_MOVED: "the stack's alias no longer names the enrolled key in some region (see ALIAS MOVED)",
    ExitCode.DEADLINE: "status --fail-on deadline: the reinstatement window closes within 48 h or has passed",
    ExitCode.NOT_DEPLOYED: "not deployed yet in some region (a state, not an incident): run `pulumi up`, then enroll",
    ExitCode.RECORD_NOT_WRITTEN: (
        "revoke/restore changed the keys as asked, but the record (tags) could not be written in some region; "
        "rerun to write it; or two operators at once left another revocation's record on some key (RECORDS DIFFER, "
        "also found by status)"
    ),
    ExitCode.USAGE: "bad usage or bad configuration; nothing in AWS was changed",
    ExitCode.INTERNAL: "internal error (a bug): one line, rerun with -v for the traceback",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C): one line says each region's last known state",
}

SEVERITY: Final = (
    ExitCode.INTERRUPTED,
    ExitCode.INTERNAL,
    ExitCode.USAGE,
    ExitCode.KEY_LOST,
    ExitCode.ALIAS_MOVED,
    ExitCode.REFUSED,
    ExitCode.UNREACHABLE,
    ExitCode.SPLIT,
    ExitCode.RECORD_NOT_WRITTEN,
    ExitCode.DEADLINE,
    ExitCode.DRIFT,
    ExitCode.NOT_DEPLOYED,
    ExitCode.AS_DECLARED,
)
"""Most severe first: a key pending deletion outranks an unreachable region, which outranks a split.

DEADLINE (only with `--fail-on deadline`) ranks below SPLIT and above DRIFT: a realm whose
reinstatement window closes or has closed must page the drift job as a deadline even when a
region has also drifted, while a split or an unreadable region (the reading itself is in doubt)
still says so first; every finding is in the JSON whichever code wins. NOT_DEPLOYED (a stack
before its first `pulumi up`) is the least severe non-zero code: any drift in a deployed region
outranks it, and CI can tell "nothing to watch yet" from drift. RECORD_NOT_WRITTEN (9: the keys are as
asked, their record is not) ranks below SPLIT (the state itself differs) and above DEADLINE and DRIFT:
a record to write is the command's own unfinished step. 8 stays NOT_DEPLOYED (fix-10); 9 was 8 on
issue-12b's branch."""


def most_severe(codes: list[ExitCode]) -> ExitCode:
    """The code to exit with when a run found several things; AS_DECLARED when it found nothing."""
    for code in SEVERITY:
        if code in codes:
            return code
    return ExitCode.AS_DECLARED


def exit_codes_help() -> str:
    """The exit-code table as `--help` prints it."""
    return "\n".join(f"  {int(code):>3}  {meaning}" for code, meaning in EXIT_CODE_MEANINGS.items())
