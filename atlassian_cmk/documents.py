"""cmkctl's machine output: who/where a run acted, and the versioned JSON document of a change.

One shape for every command that changes keys or records them (`revoke`, `restore`, `drill`,
`enroll`): `schema_version`, `command`, `context` (who and where), `outcome`/`exit_code`, `regions`
(one row per region: key ARN, state before and after, action, record written, error) and
`messages` (the sentences the text output says). Documented in docs/cmkctl.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from atlassian_cmk.display import printable
from atlassian_cmk.endpoints import redact_text
from atlassian_cmk.exit_codes import ExitCode
from atlassian_cmk.timeline import iso

CHANGE_SCHEMA_VERSION: Final = 1
"""Version of the revoke/restore/drill(/enroll) JSON document; bumped only when a field changes meaning."""

RegionAction = Literal[
    "disabled", "enabled", "none", "failed", "refused", "not-started", "created", "tagged", "not-deployed"
]


@dataclass(frozen=True)
class RunContext:
    """Who and where: said first by status, revoke, restore and drill, and repeated in the prompt."""

    account: str | None
    caller_arn: str | None
    regions: tuple[str, ...]
    endpoint: str
    """`AWS`, or the configured endpoint(s), credentials redacted."""
    identity_error: str | None = None
    alias: str | None = None
    """The stack's alias; None where no stack's keys are addressed yet (the drill before it creates them)."""
    enrolled_keys: Mapping[str, str] | None = None
    """region -> enrolled key ARN (`atlassian-cmk:enrolledKeys`) the run addresses; None: not enrolled."""

    def keys_text(self) -> str | None:
        """Which keys the run addresses: the enrolled ARNs' account, or the alias (not enrolled yet)."""
        if self.alias is None:
            return None
        if not self.enrolled_keys:
            return f"keys via {self.alias} (not enrolled)"
        accounts = sorted({arn.split(":")[4] for arn in self.enrolled_keys.values() if arn.count(":") >= 5})
        text = f"keys enrolled in account {', '.join(accounts)}"
        # A key ID is looked up in the caller's account: enrolled keys elsewhere are not these keys.
        if self.account and accounts and accounts != [self.account]:
            text += " (NOT the caller's account)"
        return text

    def line(self) -> str:
        """One line: `Account 123456789012 as arn:...; regions us-east-1, us-west-2; keys ...; endpoint AWS`."""
        who = f"Account {self.account} as {self.caller_arn}" if self.account else "Account unknown"
        if self.identity_error and not self.account:
            who += f" (sts:GetCallerIdentity: {self.identity_error})"
        keys = self.keys_text()
        return printable(
            redact_text(
                f"{who}; regions {', '.join(self.regions)}; {keys + '; ' if keys else ''}endpoint {self.endpoint}"
            )
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "caller_arn": self.caller_arn,
            "regions": list(self.regions),
            "endpoint": redact_text(self.endpoint),
            "identity_error": self.identity_error,
            "alias": self.alias,
            "enrolled": None if self.alias is None else bool(self.enrolled_keys),
            "enrolled_keys": dict(self.enrolled_keys) if self.enrolled_keys else None,
        }


@dataclass(frozen=True)
class RegionResult:
    """One region of a change as the JSON document reports it."""

    region: str
    key_arn: str | None
    before: str | None
    after: str | None
    action: RegionAction
    record: Mapping[str, str] | None = None
    error: str | None = None
    generation: str = "current"
    """The key generation (`generations.GenerationRole`): current, next or retired."""

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "generation": self.generation,
            "key_arn": self.key_arn,
            "before": self.before,
            "after": self.after,
            "action": self.action,
            "record_written": dict(self.record) if self.record else None,
            "error": redact_text(self.error) if self.error else None,
        }


@dataclass(frozen=True)
class ChangeDocument:
    """The whole document of one revoke/restore/drill/enroll run."""

    command: str
    context: RunContext | None
    exit_code: ExitCode
    at: datetime
    regions: Sequence[RegionResult] = ()
    messages: Sequence[str] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": CHANGE_SCHEMA_VERSION,
            "command": self.command,
            "at": iso(self.at),
            "context": self.context.to_json() if self.context else None,
            "exit_code": int(self.exit_code),
            "outcome": self.exit_code.name.lower().replace("_", "-"),
            "regions": [region.to_json() for region in self.regions],
            "messages": [redact_text(message) for message in self.messages],
            **dict(self.extra),
        }
