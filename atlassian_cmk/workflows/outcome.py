"""What a revoke or restore says about which keys it addressed (pure)."""

from __future__ import annotations

from atlassian_cmk.exit_codes import ExitCode, most_severe
from atlassian_cmk.identity_rules import alias_findings
from atlassian_cmk.live_keys import DeployedState
from atlassian_cmk.workflows.report import Transcript

NOT_ENROLLED_NOTE = (
    "NOT ENROLLED: the keys were found through alias/atlassian-cmk/{stack}, which anyone with kms:UpdateAlias can "
    "repoint; run `cmkctl enroll --write-config` and commit Pulumi.{stack}.yaml so cmkctl acts on the enrolled key "
    "ARNs."
)


def identity_outcome(out: Transcript, current: DeployedState, code: ExitCode) -> ExitCode:
    """After a revoke/restore: say which keys were addressed and where the alias points elsewhere.

    The change itself went to the enrolled keys (by key ID), whatever the alias names; a moved
    alias is still an incident of its own, so the run exits non-zero.
    """
    if not current.enrolled:
        out.say(NOT_ENROLLED_NOTE.format(stack=current.stack))
        return code
    moved = alias_findings(current)
    for finding in moved:
        out.say(finding.message)
    return most_severe([code, ExitCode.ALIAS_MOVED]) if moved else code
