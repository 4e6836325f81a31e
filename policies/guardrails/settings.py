"""The pack's policy configuration (`--policy-pack-config`): its schema, defaults and validation.

The Pulumi CLI validates a policy's config against the JSON schema built from `config_schema`,
but it builds that schema from `properties` and `required` only (no `additionalProperties:
false`), and the engine's Configure call merely stores what it is given. So every policy also
validates its own config here, at each call, and a bad value becomes one line (policy, key, bad
value, what is allowed) reported as a violation: the policy fails closed rather than running
with a setting nobody meant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import re2
from pulumi_policy import PolicyConfigSchema

from atlassian_cmk import guardrail_catalog as catalog
from atlassian_cmk.config import shorten, shorten_repr

# Names from the core's catalog: the docs and `cmkctl impact` list the same guardrails.
REENCRYPTION_POLICY: Final = catalog.NO_REVOCATION_DURING_REENCRYPTION.name
CONSISTENCY_POLICY: Final = catalog.DUAL_REGION_CONSISTENCY.name
JUSTIFICATION_POLICY: Final = catalog.REVOCATION_REQUIRES_JUSTIFICATION.name
DELETION_POLICY: Final = catalog.KEYS_ARE_NEVER_DELETED.name
ACCESS_POLICY: Final = catalog.KEY_POLICY_KEEPS_ACCESS.name
DEPLOYED_POLICY: Final = catalog.DEPLOYED_KEYS_INTACT.name
CLOCK_POLICY: Final = catalog.REVOCATION_CLOCK.name
IDENTITY_POLICY: Final = catalog.ENROLLED_KEYS_KEPT.name
COMPONENT_KEYS_POLICY: Final = catalog.ONLY_COMPONENT_KEYS.name
LEVELS_POLICY: Final = catalog.GUARDRAIL_LEVELS_INTACT.name
CONTEXT_TAG_POLICY: Final = catalog.CONTEXT_TAG_UNCHANGED.name
ACCESS_NOTES_POLICY: Final = catalog.KEY_POLICY_ACCESS_NOTES.name
APPLY_ROLE_POLICY: Final = catalog.APPLY_ROLE_CONFIGURED.name

DEFAULT_TICKET_PATTERN: Final = r"\S+"
"""Any non-empty token without spaces; organizations set their tracker's shape (`SEC-[0-9]+`)."""


@dataclass(frozen=True)
class Option:
    """One policy config key: its JSON type, default and what it means."""

    name: str
    json_type: str  # "boolean", "string" or "array" (of strings)
    default: Any
    description: str

    def schema(self) -> dict[str, Any]:
        schema = {"type": self.json_type, "default": self.default, "description": self.description}
        if self.json_type == "array":
            schema["items"] = {"type": "string"}
        return schema


OPTIONS: Final[Mapping[str, tuple[Option, ...]]] = {
    REENCRYPTION_POLICY: (
        Option(
            "liveStateCheck",
            "boolean",
            True,
            "Read the deployed keys' re-encryption tag from AWS before allowing a revocation. Turn off only "
            "where AWS cannot be reached on purpose; the declared status is then the only evidence.",
        ),
    ),
    ACCESS_POLICY: (
        Option(
            "liveStateCheck",
            "boolean",
            True,
            "Compare with the deployed key policy: a principal the deployed key grants Atlassian's use to must "
            "stay granted. Off, only the new policy is checked against the new configuration, which cannot see "
            "a principal removed from both at once.",
        ),
    ),
    CONTEXT_TAG_POLICY: (
        Option(
            "liveStateCheck",
            "boolean",
            True,
            "Compare atlassian-cmk:contextTag with the deployed keys' atlassian-cmk:context-tag tag. Turn off only "
            "where AWS cannot be reached on purpose; a changed context tag is then seen only by `cmkctl impact`.",
        ),
    ),
    ACCESS_NOTES_POLICY: (
        Option(
            "liveStateCheck",
            "boolean",
            True,
            "Read the deployed key policies to explain what is already broken (deleted principals) and what a "
            "declared Atlassian revision changes. Off, nothing is said.",
        ),
    ),
    LEVELS_POLICY: (
        Option(
            "allowLowered",
            "array",
            [],
            "Mandatory guardrails this config may set to advisory or disabled, each named on purpose in a reviewed "
            "change (e.g. key-policy-keeps-access for the one update that removes a principal Atlassian retired). "
            "Empty in CI's config.",
        ),
    ),
    JUSTIFICATION_POLICY: (
        Option(
            "ticketPattern",
            "string",
            DEFAULT_TICKET_PATTERN,
            "RE2 regular expression the whole revocation ticket must match (default: any token without "
            "spaces), e.g. `SEC-[0-9]+`. RE2 matches in linear time; it has no backreferences or lookaround.",
        ),
    ),
}


class PolicyConfigError(ValueError):
    """A bad policy config value, said in one line a reviewer of the config file can act on."""

    def __init__(self, policy: str, key: str, value: Any, allowed: str) -> None:
        self.policy = policy
        self.key = key
        super().__init__(
            f"invalid policy config (--policy-pack-config) {policy}.{key}: {shorten_repr(value)} is not allowed; "
            f"{allowed}. The policy fails closed until the config is fixed."
        )


def config_schema(policy: str) -> PolicyConfigSchema | None:
    """The schema the CLI shows and validates against (types and defaults)."""
    options = OPTIONS.get(policy, ())
    if not options:
        return None
    return PolicyConfigSchema(properties={option.name: option.schema() for option in options})


def read_policy_config(policy: str, raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate one policy's config and return every option, defaults filled in.

    Raises PolicyConfigError for the first unknown key, wrong type or invalid pattern.
    """
    options = {option.name: option for option in OPTIONS.get(policy, ())}
    given = dict(raw or {})
    for key in sorted(given):
        if key not in options:
            allowed = f"allowed keys: {', '.join(options)}" if options else "this policy takes no config keys"
            raise PolicyConfigError(policy, key, given[key], allowed)
    values: dict[str, Any] = {}
    for name, option in options.items():
        value = given.get(name, option.default)
        if option.json_type == "boolean" and not isinstance(value, bool):
            raise PolicyConfigError(policy, name, value, "allowed: true or false (a JSON boolean)")
        if option.json_type == "string" and not isinstance(value, str):
            raise PolicyConfigError(policy, name, value, "allowed: a JSON string")
        if option.json_type == "array":
            mandatory = sorted(g.name for g in catalog.GUARDRAILS if g.enforcement == "mandatory" and g.name != policy)
            if not isinstance(value, list) or any(item not in mandatory for item in value):
                raise PolicyConfigError(policy, name, value, f"allowed: a list of {', '.join(mandatory)}")
        values[name] = value
    if "ticketPattern" in values:
        values["ticketPattern"] = compile_ticket_pattern(policy, values["ticketPattern"])
    return values


def compile_ticket_pattern(policy: str, pattern: str) -> re2._Regexp[str]:
    """The ticket pattern compiled by RE2, whose matching time is linear in the ticket's length.

    Python's `re` backtracks: `(a+)+$` against 29 characters took 19 s in the pack, doubling per
    character, and a preview has no time bound. RE2 (google-re2, the maintained binding of
    github.com/google/re2) never backtracks; it refuses what needs backtracking (backreferences,
    lookaround), and that refusal is a config error like any other.
    Raises PolicyConfigError for an empty or invalid pattern.
    """
    if not pattern:
        raise PolicyConfigError(policy, "ticketPattern", pattern, "allowed: a non-empty regular expression")
    options = re2.Options()
    options.log_errors = False  # the error comes back as one line below, not on the pack's stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as error:
        detail = shorten(error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error))
        raise PolicyConfigError(
            policy,
            "ticketPattern",
            pattern,
            f"allowed: an RE2 regular expression (no backreferences or lookaround); RE2 says: {detail}",
        ) from None
