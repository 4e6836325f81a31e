"""The break-glass path's rules before anything changes: operator input, refusals, who is acting.

`cmkctl revoke` and `cmkctl restore` act outside the reviewed pull request, so everything
that can be checked is checked before the first request that changes AWS: the operator's
text (it becomes KMS tags, and a tag refused after DisableKey would leave a disabled,
unexplained key), the re-encryption guard, and the integrity of the keys.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from atlassian_cmk.aws.cloudtrail import read_reencryption_activity
from atlassian_cmk.aws.identity import Identity, read_identity
from atlassian_cmk.aws.kms_reads import ClientFactory, describe_error, read_deployed_state
from atlassian_cmk.config import StackConfig, shorten_repr, tag_text_problem, ticket_problem
from atlassian_cmk.evidence import deployed_evidence_protection
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.guards import deployed_integrity, reencryption_running
from atlassian_cmk.key_identity import KeyGeneration
from atlassian_cmk.live_keys import DeployedState
from atlassian_cmk.naming import TAG_REENCRYPTION
from atlassian_cmk.records import has_current_revocation
from atlassian_cmk.reencryption_activity import activity_reasons

_log = logging.getLogger("atlassian_cmk")

UNKNOWN_CALLER: Final = "unknown"
"""The revoked-by/restored-by value when STS cannot say who is acting."""

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


def generations_refusal(config: StackConfig, command: str) -> Refusal | None:
    """Whether `cmkctl revoke`/`restore` must stop because the stack holds a key generation they cannot act on.

    Break-glass acts on the enrolled (current) keys only. While Atlassian holds another recorded
    generation (`nextKeys`, or `retiredKeys` still enabled during `complete`), a revoke would report
    success with a generation still usable. Until break-glass covers every generation, it refuses
    before any AWS call (fail closed) and names the reviewed path and the keys to handle by hand.
    """
    generations = [("next", config.next_keys)] if config.next_keys is not None else []
    if config.reencryption.status == "complete":
        generations += [("retired", generation) for generation in config.retired_keys]
    others = [(f"{label} ({region})", arn) for label, keys in generations for region, arn in keys.keys.items()]
    if not others:  # Atlassian holds only the keys it was given: recorded in nextKeys / retiredKeys
        return None
    status = config.reencryption.status
    reasons = [
        f"the stack is re-encrypting (reencryption.status: {status}) and Atlassian may hold keys of another "
        f"generation that `cmkctl {command}` does not change yet; nothing was changed",
        "use the reviewed path (a pull request setting atlassian-cmk:enabled; the policy pack judges every "
        "generation), or change these keys by hand too: " + ", ".join(f"{label} {arn}" for label, arn in others),
    ]
    return Refusal(code=ExitCode.REFUSED, reasons=tuple(reasons))


KeyPolicies = tuple[Mapping[str, str], Mapping[str, str]]
"""(region -> live key policy JSON, region -> why it could not be read): `aws.kms_reads.read_key_policies`."""


def guard_reasons(config: StackConfig, deployed: DeployedState, key_policies: KeyPolicies) -> tuple[str, ...]:
    """Why the re-encryption guard says no (empty: it says yes): the declared and live status, CloudTrail's
    evidence while two generations are enrolled (`activity_reasons`), and the evidence protection. The live
    `atlassian-cmk:reencryption` tags are evidence only while each key's live policy carries
    the ProtectCmkEvidence* statements (`evidence.unprotected_evidence`): otherwise any principal with
    kms:TagResource could have written "complete", so the guard fails closed."""
    verdict = reencryption_running(config.reencryption, deployed)
    trail = activity_reasons(config, deployed.reencryption_activity)
    return (*verdict.reasons, *trail, *deployed_evidence_protection(deployed, config.apply_role_arn, key_policies))


def revoke_refusal(
    config: StackConfig, deployed: DeployedState, request: RevokeRequest, *, key_policies: KeyPolicies
) -> Refusal | None:
    """Whether `cmkctl revoke` must stop before changing anything.

    Re-encryption in progress (declared or live) refuses: disabling mid-re-encryption leaves
    data unevenly readable. An unreadable region refuses too, since re-encryption cannot be
    ruled out there (fail closed). While two generations are enrolled, CloudTrail's evidence
    (`deployed.reencryption_activity`) refuses too when it shows Atlassian re-encrypting or cannot
    be read; and so does a live key policy without the evidence protection (`guard_reasons`). The
    override flag turns all of them into a recorded decision.
    """
    reasons = guard_reasons(config, deployed, key_policies)
    if not reasons or request.override_justification is not None:
        return None
    only_unreadable = all(reason.startswith("the deployed keys could not be read") for reason in reasons)
    tail = (
        f"if this incident needs the keys disabled anyway, rerun with {OVERRIDE_FLAG} 'JUSTIFICATION' "
        "(recorded on the keys)"
    )
    code = ExitCode.UNREACHABLE if only_unreadable else ExitCode.REFUSED
    return Refusal(code=code, reasons=(*reasons, tail))


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


def read_state(
    stack: str,
    config: StackConfig,
    client_factory: ClientFactory,
    *,
    max_workers: int | None = None,
    now: datetime | None = None,
) -> DeployedState:
    """The deployed state: the enrolled keys by ARN once enrolled, else through the alias; while two
    generations are enrolled, with CloudTrail's evidence of re-encryption (as of `now`, default: the clock).

    `max_workers=1` reads region after region (the benchmark's baseline only).
    """
    enrolled = config.enrolled_keys
    if max_workers != 1:
        with ThreadPoolExecutor(max_workers=1) as pool:  # CloudTrail is paced: read it beside the keys
            trail = pool.submit(read_reencryption_activity, config, client_factory, now=now or datetime.now(UTC))
            state = read_deployed_state(stack, config.regions, client_factory=client_factory, enrolled=enrolled)
            return dataclasses.replace(state, reencryption_activity=trail.result())
    regions = enrolled.regions if enrolled is not None else config.regions
    parts = [
        read_deployed_state(
            stack,
            (region,),
            client_factory=client_factory,
            enrolled=None if enrolled is None else KeyGeneration({region: enrolled.keys[region]}),
        )
        for region in regions
    ]
    activity = read_reencryption_activity(config, client_factory, now=now or datetime.now(UTC))
    readings = tuple(r for part in parts for r in part.readings)
    return DeployedState(stack, parts[0].alias, readings, enrolled is not None, activity)


def caller_arn(client_factory: ClientFactory, region: str) -> str:
    """Who is acting, for the revoked-by/restored-by tags; never blocks a break-glass change."""
    try:
        return str(client_factory("sts", region).get_caller_identity()["Arn"])
    except Exception as error:  # noqa: BLE001 - the change matters more than the attribution
        _log.warning(
            "caller identity unknown, tagging revoked-by/restored-by as %r: %s", UNKNOWN_CALLER, describe_error(error)
        )
        return UNKNOWN_CALLER


def read_state_and_caller(
    stack: str, config: StackConfig, client_factory: ClientFactory, *, max_workers: int | None = None
) -> tuple[DeployedState, str]:
    """Both reads at once, so asking STS who we are costs no round trip of its own."""
    region = config.regions[0]
    if max_workers == 1:
        return read_state(stack, config, client_factory, max_workers=1), caller_arn(client_factory, region)
    with ThreadPoolExecutor(max_workers=2) as pool:
        caller = pool.submit(caller_arn, client_factory, region)
        deployed = read_state(stack, config, client_factory)
        return deployed, caller.result()


def read_state_and_identity(
    stack: str,
    config: StackConfig,
    client_factory: ClientFactory,
    *,
    max_workers: int | None = None,
    through_alias: bool = False,
    now: datetime | None = None,
) -> tuple[DeployedState, Identity]:
    """The deployed state (`read_state`) and who is acting, in one concurrent round.

    `through_alias`: the keys the alias names, with their key policies, whatever is enrolled (what
    `cmkctl enroll` checks before it records them). Raises CredentialsProblem (one line, exit 3)
    when the profile or credentials are unusable, instead of reporting the same cause once per region.
    """
    with ThreadPoolExecutor(max_workers=2) as pool:
        identity = pool.submit(read_identity, client_factory, config.regions[0])
        if through_alias:
            deployed = read_deployed_state(stack, config.regions, client_factory=client_factory, with_policy=True)
        else:
            deployed = read_state(stack, config, client_factory, max_workers=max_workers, now=now)
        return deployed, identity.result()


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
