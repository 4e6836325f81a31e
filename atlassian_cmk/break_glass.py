"""The break-glass path's rules before anything changes: operator input, refusals, evidence changes.

Pure: the reads they judge come from `atlassian_cmk.aws.stack_reads`; the workflows that apply them
are `atlassian_cmk.workflows`.

`cmkctl revoke` and `cmkctl restore` act outside the reviewed pull request, so everything
that can be checked is checked before the first request that changes AWS: the operator's
text (it becomes KMS tags, and a tag refused after DisableKey would leave a disabled,
unexplained key), the re-encryption guard, and the integrity of the keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from atlassian_cmk.config import StackConfig, shorten_repr, tag_text_problem, ticket_problem
from atlassian_cmk.evidence import HeldGeneration, KeyPolicies, deployed_evidence_protection
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.guards import deployed_integrity, reencryption_running
from atlassian_cmk.live_keys import DeployedState
from atlassian_cmk.naming import TAG_REENCRYPTION
from atlassian_cmk.records import has_current_revocation
from atlassian_cmk.reencryption_activity import activity_reasons

OVERRIDE_FLAG: Final = "--override-reencryption-guard"
"""The flag that records a deliberate decision to revoke while re-encryption may be running."""


class InputError(ValueError):
    """One bad flag value, in one line: the flag, the value, what is allowed."""

    def __init__(self, flag: str, value: str, allowed: str) -> None:
        self.flag = flag
        super().__init__(f"{flag}: {shorten_repr(value)} is not allowed; {allowed}")


def _checked(flag: str, value: str | None, problem_of: Callable[[str], str | None]) -> str:
    """The flag's text, stripped, by the same rule the stack schema applies to the same value."""
    text = (value or "").strip(" ")  # a line feed or tab is refused by the rule, never dropped
    problem = problem_of(text)
    if problem is not None:
        raise InputError(flag, text if text else value or "", problem)
    return text


def tag_text(flag: str, value: str | None) -> str:
    """Free text that becomes a tag value: non-empty, at most 256 characters, AWS tag characters."""
    return _checked(flag, value, tag_text_problem)


def ticket_id(flag: str, value: str | None) -> str:
    """A ticket reference such as SEC-1234: one word, so it reads the same in tags, config and search."""
    return _checked(flag, value, ticket_problem)


@dataclass(frozen=True)
class RevokeRequest:
    """A validated `cmkctl revoke`: why, which ticket, and the override justification if any."""

    reason: str
    ticket: str
    override_justification: str | None = None

    @classmethod
    def validated(cls, reason: str | None, ticket: str | None, override: str | None = None) -> RevokeRequest:
        return cls(
            reason=tag_text("--reason", reason),
            ticket=ticket_id("--ticket", ticket),
            override_justification=None if override is None else tag_text(OVERRIDE_FLAG, override),
        )


@dataclass(frozen=True)
class RestoreRequest:
    """A validated `cmkctl restore`: the ticket under which access comes back."""

    ticket: str

    @classmethod
    def validated(cls, ticket: str | None) -> RestoreRequest:
        return cls(ticket=ticket_id("--ticket", ticket))


@dataclass(frozen=True)
class Refusal:
    """Why a command will not change anything, with the exit code that says which rule it was."""

    code: ExitCode
    reasons: tuple[str, ...]


def guard_reasons(
    config: StackConfig,
    deployed: DeployedState,
    key_policies: KeyPolicies,
    generations: Sequence[HeldGeneration] | None = None,
) -> tuple[str, ...]:
    """Why the re-encryption guard says no (empty: it says yes): the declared and live status, CloudTrail's
    evidence while two generations are enrolled (`activity_reasons`), and the evidence protection. The live
    `atlassian-cmk:reencryption` tags are evidence only while each key's live policy carries
    the ProtectCmkEvidence* statements (`evidence.deployed_evidence_protection`): otherwise any principal with
    kms:TagResource could have written "complete", so the guard fails closed. `deployed`: every key read,
    all generations as one state; `generations`: the same keys per generation (role, keys), so a key of
    another generation is named as such (`us-east-1 (next)`); None: `deployed` is the current generation."""
    verdict = reencryption_running(config.reencryption, deployed)
    trail = activity_reasons(config, deployed.reencryption_activity)
    held = deployed if generations is None else generations
    return (*verdict.reasons, *trail, *deployed_evidence_protection(held, config.apply_role_arn, key_policies))


def revoke_refusal(
    config: StackConfig,
    deployed: DeployedState,
    request: RevokeRequest,
    *,
    key_policies: KeyPolicies,
    generations: Sequence[HeldGeneration] | None = None,
) -> Refusal | None:
    """Whether `cmkctl revoke` must stop before changing anything.

    Re-encryption in progress (declared or live) refuses: disabling mid-re-encryption leaves
    data unevenly readable. An unreadable region refuses too, since re-encryption cannot be
    ruled out there (fail closed). While two generations are enrolled, CloudTrail's evidence
    (`deployed.reencryption_activity`) refuses too when it shows Atlassian re-encrypting or cannot
    be read; and so does a live key policy without the evidence protection (`guard_reasons`). The
    override flag turns all of them into a recorded decision; the refusal suggests it only when
    re-encryption may be running or the evidence is unprotected (an unreachable region alone is
    exit 3, and the remedy is AWS answering, not an override). `deployed`: every generation the
    revoke acts on (`workflows.targets`), so the tags of each are judged; `generations`: the same keys per
    generation (`guard_reasons`), so every generation's key policy is judged and named (`KeyPolicies` is keyed
    by key ARN).
    """
    # An enrolled key that no longer exists is KEY LOST (exit 5, as `cmkctl status` says it), never a guard
    # decision: no override brings it back, and its key policy's NotFoundException is no evidence problem.
    lost = [r for r in deployed.readings if r.missing and r.enrolled_arn is not None]
    if lost:
        gone = {r.enrolled_arn for r in lost}

        def kept(state: DeployedState) -> DeployedState:
            return dataclasses.replace(state, readings=tuple(r for r in state.readings if r.enrolled_arn not in gone))

        deployed = kept(deployed)
        if generations is not None:
            generations = [(role, kept(state)) for role, state in generations]
        policies, errors = key_policies
        key_policies = (
            {arn: text for arn, text in policies.items() if arn not in gone},
            {arn: error for arn, error in errors.items() if arn not in gone},
        )
    lost_reasons = tuple(
        f"KEY LOST: {r.region}: the enrolled key {r.enrolled_arn} is not found; check atlassian-cmk:enrolledKeys "
        "against `pulumi stack output keyArns`"
        for r in lost
    )
    if lost and not deployed.readings:
        return Refusal(code=ExitCode.KEY_LOST, reasons=(*lost_reasons, "no key is left to revoke"))
    reasons = guard_reasons(config, deployed, key_policies, generations)
    if not reasons or request.override_justification is not None:
        # The regions whose key is there are revoked; the converge names each lost one (key-lost, exit 5).
        return None
    only_unreadable = all(reason.startswith("the deployed keys could not be read") for reason in reasons)
    reasons = (*lost_reasons, *reasons)
    if only_unreadable:
        # Unreachable is no guard decision an override could take: AWS must answer first (exit 3).
        return Refusal(code=ExitCode.UNREACHABLE, reasons=(*reasons, "nothing was changed; retry when AWS answers"))
    tail = (
        f"if this incident needs the keys disabled anyway, rerun with {OVERRIDE_FLAG} 'JUSTIFICATION' "
        "(recorded on the keys)"
    )
    # The re-encryption remedy once, after every reason (guards.Verdict.advice; "" when none applies).
    advice = reencryption_running(config.reencryption, deployed).advice
    return Refusal(code=ExitCode.REFUSED, reasons=(*reasons, *filter(None, [advice]), tail))


def restore_refusal(deployed: DeployedState) -> Refusal | None:
    """Whether `cmkctl restore` must stop: a key pending deletion or missing cannot be enabled.

    Enabling the other regions would restore nothing for Atlassian (it needs every region), so
    restore refuses until the key is back. Unreadable regions do not refuse here: the action
    retries them and names the split if they stay down.
    """
    readable = dataclasses.replace(deployed, readings=tuple(r for r in deployed.readings if r.error is None))
    verdict = deployed_integrity(readable)
    if verdict.allowed:
        return None
    return Refusal(code=ExitCode.KEY_LOST, reasons=(*verdict.reasons, "then run `cmkctl restore` again"))


def nothing_revoked(deployed: DeployedState) -> bool:
    """Whether restore has nothing to do: every region was read and its key is Enabled.

    An unreadable or missing region is not "nothing to do" (fail closed: restore then proceeds and
    reports that region), and neither is an Enabled key still carrying an open revocation record: an
    earlier restore enabled it but could not record it, and the rerun writes the missing record."""
    readings = deployed.readings
    return bool(readings) and all(
        r.error is None and r.key is not None and r.key.enabled and not has_current_revocation(r.key.tags)
        for r in readings
    )


def guard_evidence_changes(checked: DeployedState, now: DeployedState) -> tuple[str, ...]:
    """What changed in the guard's evidence between the check and the moment of use, one line per region.

    The evidence is what `revoke_refusal` judged: each region's readability and its live
    `atlassian-cmk:reencryption` tag (and which key the region holds), and while two generations
    are enrolled CloudTrail's re-encryption phase per region. Empty when nothing changed.
    """

    def evidence(state: DeployedState) -> dict[str, tuple[str, str]]:
        return {
            r.region: (
                "unreadable" if r.error is not None else (r.key.key_id if r.key is not None else "no key"),
                (r.key.reencryption or "(no tag)") if r.key is not None else "-",
            )
            for r in state.readings
        }

    before, after = evidence(checked), evidence(now)
    lines = list(_activity_changes(checked, now))
    for region in sorted(before.keys() | after.keys()):
        was, is_now = before.get(region, ("absent", "-")), after.get(region, ("absent", "-"))
        if was[0] != is_now[0]:
            lines.append(f"{region}: the key was {was[0]}, is now {is_now[0]}")
        elif was[1] != is_now[1]:
            lines.append(f"{region}: {TAG_REENCRYPTION} was {was[1]!r}, is now {is_now[1]!r}")
    return tuple(lines)


def _activity_changes(checked: DeployedState, now: DeployedState) -> list[str]:
    """CloudTrail's re-encryption phase per region, before and now (only while two generations are enrolled)."""

    def phases(state: DeployedState) -> dict[str, str]:
        activity = state.reencryption_activity
        return {r.region: r.phase for r in activity.regions} if activity is not None else {}

    before, after = phases(checked), phases(now)
    return [
        f"{region}: CloudTrail's evidence of re-encryption was {before.get(region, 'not read')}, is now "
        f"{after.get(region, 'not read')}"
        for region in sorted(before.keys() | after.keys())
        if before.get(region) != after.get(region)
    ]
