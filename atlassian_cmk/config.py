"""The `atlassian-cmk:*` stack configuration: its schema, parsing and validation.

This is the only place that decides whether a stack's configuration is valid. The Pulumi
program, the policy pack and cmkctl all call `parse_stack_config` on the same raw map, so
they can never disagree on a value.

The raw map is what the Pulumi engine hands a program: full keys (`atlassian-cmk:enabled`)
to strings, with structured values (objects, lists) as JSON text. Scalars arrive as the engine
turns yaml.v3's typed values into text (`FALSE` as `false`, `0042` as `34`; see
`stack_file.py`, which computes this map for tools that read the files): `no`, `off` and `yes`
stay strings, so `enabled: no` is an error here exactly as it is for `pulumi.Config.get_bool`.
Which keys hold text is data here too (`TEXT_PATHS`), for the reader's quoting check.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast

from atlassian_cmk.iam_policy import ACCOUNT_ID_RE, UNIQUE_ID_RE, PolicyError, parse_statement
from atlassian_cmk.key_identity import KeyGeneration, KeyGenerationError, parse_key_generation
from atlassian_cmk.key_policy import is_own_sid
from atlassian_cmk.realms import EXPLICIT_REALM_NAME, MAX_REGIONS, REALMS, realm_names, region_problem
from atlassian_cmk.suggest import did_you_mean

NAMESPACE: Final = "atlassian-cmk"
"""The Pulumi project name, and so the namespace of every config key of this product."""

ReencryptionStatus = Literal["none", "preparing", "in-progress", "complete"]
REENCRYPTION_STATUSES: Final[tuple[ReencryptionStatus, ...]] = ("none", "preparing", "in-progress", "complete")
NEXT_GENERATION_STATUSES: Final[tuple[ReencryptionStatus, ...]] = ("preparing", "in-progress", "complete")
"""The phases in which the next key generation exists beside the current one (`atlassian_cmk.generations`)."""

# Booleans as Pulumi's own `Config.get_bool` accepts them; anything else is an error.
_TRUE_TEXTS: Final = ("true", "True")
_FALSE_TEXTS: Final = ("false", "False")

CONTEXT_TAG_RE: Final = re.compile(r"^[A-Za-z0-9]{1,12}\Z")
"""Atlassian's context tag: 1-12 alphanumerics, immutable once enrolled."""

IAM_PRINCIPAL_RE: Final = re.compile(
    r"^arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::[0-9]{12}:(root|(role|user)/[A-Za-z0-9+=,.@_/-]{1,512})\Z"
)
"""An IAM account root, role or user ARN: what a KMS key policy `Principal.AWS` may name."""

IAM_ROLE_ARN_RE: Final = re.compile(
    r"^arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::([0-9]{12}):role/[A-Za-z0-9+=,.@_/-]{1,512}$"
)
"""An IAM role ARN (`arn:aws:iam::<account>:role/<path/name>`), as `aws:PrincipalArn` gives it."""

TAG_VALUE_MAX: Final = 256
"""KMS tag values hold at most 256 characters; reason and ticket are written as tags."""

# Reason, ticket and justification text: ASCII letters and digits, the space, and _ . : / = + - @.
# That is the AWS tag character set (User-Defined Tag Restrictions: Unicode letters, digits,
# white space and _ . : / = + - @; KMS's TagValue itself is any 0-256 characters) narrowed on
# purpose: `\s` and \p{Z} admit line feeds, carriage returns, tabs and U+2028 LINE SEPARATOR,
# which break a terminal report or a YAML line, and non-ASCII letters admit look-alike tickets
# (Cyrillic "С" in "SEC-1"). The same text is written to the stack file (the schema), by cmkctl
# (its flags) and judged by the pack, all through `tag_text_problem`/`ticket_problem`.
# `\Z`, not `$`: `$` also matches before a final line feed.
TAG_TEXT_RE: Final = re.compile(r"\A[A-Za-z0-9 _.:/=+\-@]*\Z")
TICKET_RE: Final = re.compile(r"\A[A-Za-z0-9_.:/=+\-@]+\Z")
TAG_CHARS: Final = "letters, digits, spaces and _ . : / = + - @ (ASCII, the AWS tag character set)"
TICKET_CHARS: Final = "ASCII letters, digits and _ . : / = + - @ (no spaces)"

_CONTROL_NAMES: Final = {
    0x09: "CHARACTER TABULATION",
    0x0A: "LINE FEED",
    0x0B: "LINE TABULATION",
    0x0C: "FORM FEED",
    0x0D: "CARRIAGE RETURN",
    0x1B: "ESCAPE",
    0x7F: "DELETE",
}


def character_name(char: str) -> str:
    """`U+000A LINE FEED`, `U+00E9 LATIN SMALL LETTER E WITH ACUTE`: a character named so a
    reader can find it even when the terminal shows nothing (control characters have no
    `unicodedata` name; their Unicode aliases are used)."""
    code = ord(char)
    name = _CONTROL_NAMES.get(code) or unicodedata.name(char, "")
    if not name and (code < 0x20 or 0x80 <= code < 0xA0):
        name = "a control character"
    return f"U+{code:04X} {name}".rstrip()


def _offending(text: str, pattern: re.Pattern[str]) -> str | None:
    for char in text:
        if not pattern.fullmatch(char):
            return char
    return None


def tag_text_problem(text: str) -> str | None:
    """Why free text cannot be a tag value (reason, justification), or None when it can."""
    if not text:
        return "required: non-empty text"
    if len(text) > TAG_VALUE_MAX:
        return f"at most {TAG_VALUE_MAX} characters (it becomes a KMS tag); got {len(text)}"
    bad = _offending(text, TAG_TEXT_RE)
    if bad is not None:
        return f"use {TAG_CHARS}, not {character_name(bad)}"
    if text.lower().startswith("aws:"):
        return f"use {TAG_CHARS}; not starting with aws:"
    return None


def ticket_problem(text: str) -> str | None:
    """Why text cannot be a ticket id: one word, so it reads the same in tags, config and search."""
    if not text:
        return "required: a ticket id such as SEC-1234"
    bad = _offending(text, TICKET_RE)
    if len(text) > TAG_VALUE_MAX or bad is not None:
        named = f", not {character_name(bad)}" if bad is not None else ""
        return f"a ticket id such as SEC-1234: at most {TAG_VALUE_MAX} of {TICKET_CHARS}{named}"
    return None


KEYS: Final = (
    "realm",
    "regions",
    "enabled",
    "revocation",
    "reencryption",
    "multiRegion",
    "atlassianKeyPolicy",
    "atlassianKeyPolicyRevision",
    "contextTag",
    "keyAdministrators",
    "enrolledKeys",
    "nextKeys",
    "retiredKeys",
    "applyRoleArn",
)
"""Every key of the namespace; any other `atlassian-cmk:*` key is a typo and an error."""


TEXT_PATHS: Final = (
    "realm",
    "contextTag",
    "regions[]",
    "keyAdministrators[]",
    # Atlassian's statements (or the whole policy document pasted): every Sid, ARN, action,
    # resource and condition value is IAM text. An unquoted account ID in a Principal would reach
    # the program as a JSON number (and one with a leading 0 as another number), which the
    # statement checker refuses only after the engine changed it: say so where the text is seen.
    "atlassianKeyPolicy[].**",
    "atlassianKeyPolicy.**",
    "atlassianKeyPolicyRevision",
    "revocation.*",  # reason, ticket, id, override (REVOCATION_FIELDS)
    "reencryption.*",
    # The enrolled key ARNs (region -> ARN): text Atlassian holds, compared byte for byte.
    "enrolledKeys.*",
    # The next generation's ARNs (re-encryption) and the retired generations, oldest first.
    "nextKeys.*",
    "retiredKeys[].*",
    "applyRoleArn",
)
"""Where the namespace holds text, as paths under a key: `.name` a field, `*` any field name,
`[]` any list item, `**` anything below. A plain YAML scalar there that the engine would read
as a number, boolean, null or timestamp is refused where people still see the text
(`stack_file.typing_problems`). A new key that holds text adds its paths here."""


def is_text_path(path: str) -> bool:
    """Whether `path` (`revocation.ticket`, `regions[1]`, no namespace) is registered as text."""
    return any(_text_path_re(pattern).match(path) for pattern in TEXT_PATHS)


@functools.cache
def _text_path_re(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*|\*|\[\])", pattern)
    wildcard = {"**": r".*", "*": r"[^.\[\]]+", "[]": r"\[\d+\]"}
    return re.compile("^" + "".join(wildcard.get(part) or re.escape(part) for part in parts) + r"\Z")


SECRET_REFUSAL: Final = (
    "not allowed: this product's values become plaintext KMS tags and key-policy conditions, "
    "so none may be a secret; set it without --secret"
)
"""Why no value of the namespace may be a secret: said by cmkctl (stack file) and the program (engine)."""

SHORTEN_AT: Final = 80


def shorten(value: object, limit: int = SHORTEN_AT) -> str:
    """A value for a one-line message: its text, cut to `limit` characters with the length said.

    Every message that echoes a user's value goes through here, so a 100,000-character value
    cannot flood a terminal or a CI log.
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text)} characters)"


def shorten_repr(value: object) -> str:
    """`repr(value)` for a message, shortened like `shorten` (a long text keeps its quotes and says its length)."""
    if isinstance(value, str) and len(value) > SHORTEN_AT:
        return f"{value[: SHORTEN_AT - 1]!r}… ({len(value)} characters)"
    return shorten(repr(value))


class ConfigError(ValueError):
    """One invalid config value, said in one line: the key, the bad value, what is allowed.

    `message` replaces the standard sentence where the problem is not "value not allowed"
    (a value the engine reads differently, a secret).
    """

    def __init__(self, key: str, value: object, allowed: str, *, message: str | None = None) -> None:
        self.key = key if ":" in key else f"{NAMESPACE}:{key}"
        self.value = value
        self.allowed = allowed
        shown = "missing" if value is _MISSING else f"{shorten_repr(value)} is not allowed"
        super().__init__(message or f"{self.key}: {shown}; {allowed}")


class StackConfigErrors(ValueError):
    """Every problem found in one stack configuration, so a pull request is fixed in one round."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(error) for error in errors))


REVOCATION_ID_RE: Final = re.compile(r"\Arev-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{1,32}\Z")
"""A break-glass revocation's identity as `cmkctl revoke` makes it (`rev-20310301T120000Z-3f9a1c`:
the UTC time, then random hex); the same text as the keys' `atlassian-cmk:revocation-id` tag."""


@dataclass(frozen=True)
class Revocation:
    """Why Atlassian's access is revoked: a reason a reviewer reads and the incident ticket.

    `override` and `id` are set when the change records a break-glass revocation (`cmkctl revoke
    --write-config` writes them): the justification given to `--override-reencryption-guard`, and
    the revocation's identity (the keys' `atlassian-cmk:revocation-id`). Both optional.
    """

    reason: str
    ticket: str
    override: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class Reencryption:
    """Atlassian re-encryption as the stack declares it (the deployed state may say otherwise)."""

    status: ReencryptionStatus = "none"
    ticket: str | None = None

    @property
    def in_progress(self) -> bool:
        return self.status == "in-progress"


@dataclass(frozen=True)
class StackConfig:
    """A validated stack configuration: every field is known good."""

    realm: str
    regions: tuple[str, ...]
    enabled: bool
    atlassian_key_policy: tuple[dict[str, Any], ...]
    """Atlassian's key-policy statements as given at enrollment, verbatim (validated)."""
    context_tag: str
    revocation: Revocation | None = None
    reencryption: Reencryption = field(default_factory=Reencryption)
    multi_region: bool = False
    key_administrators: tuple[str, ...] = ()
    atlassian_key_policy_revision: str | None = None
    """The declared revision of Atlassian's statements (a ticket id); a change of the statements
    against the deployed key policy needs a new value."""
    enrolled_keys: KeyGeneration | None = None
    """The key ARNs handed to Atlassian (region -> ARN); None before the first deployment's enrollment."""
    next_keys: KeyGeneration | None = None
    """The next generation's key ARNs handed to Atlassian on the re-encryption ticket (`nextKeys`)."""
    retired_keys: tuple[KeyGeneration, ...] = ()
    """The generations Atlassian used before, oldest first (`retiredKeys`); never deleted."""
    apply_role_arn: str | None = None
    """The CI apply role (`atlassian-cmk:applyRoleArn`): the only principal the key policy lets
    write the guards' evidence tags (`atlassian_cmk.evidence`); None: nobody may."""

    @property
    def enrolled(self) -> bool:
        return self.enrolled_keys is not None

    @property
    def has_next_generation(self) -> bool:
        """Whether the next key generation exists beside the current one: while `preparing` and
        `in-progress`, and while `complete` until promotion moves `nextKeys` into `enrolledKeys`."""
        status = self.reencryption.status
        return status in ("preparing", "in-progress") or (status == "complete" and self.next_keys is not None)

    @property
    def atlassian_principals(self) -> tuple[str, ...]:
        """The AWS principals Atlassian's statements name, as written, in order, each once."""
        seen: dict[str, None] = {}
        for statement in self.atlassian_key_policy:
            for element in ("Principal", "NotPrincipal"):
                value = statement.get(element)
                entries = value.get("AWS", []) if isinstance(value, dict) else []
                for entry in entries if isinstance(entries, list) else [entries]:
                    seen.setdefault(str(entry), None)
        return tuple(seen)

    @property
    def is_dual_region(self) -> bool:
        return len(self.regions) == 2


class _Missing:
    def __repr__(self) -> str:
        return "missing"


_MISSING: Final[Any] = _Missing()


def parse_stack_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate the raw config map and return the typed configuration.

    `raw` maps full or bare keys to what Pulumi delivers (strings, structured values as JSON
    text) or to already-decoded JSON values. Keys of other namespaces (`aws:region`) are
    ignored. Raises `StackConfigErrors` listing every invalid value.
    """
    values = _own_namespace(raw)
    errors: list[ConfigError] = []

    def attempt(parse: Any, *args: Any) -> Any:
        try:
            return parse(*args)
        except ConfigError as error:
            errors.append(error)
            return None
        except StackConfigErrors as several:
            errors.extend(several.errors)
            return None

    for key in values:
        if key not in KEYS:
            hint = did_you_mean(key, KEYS)
            errors.append(ConfigError(key, values[key], f"unknown key; {hint}allowed keys: {', '.join(KEYS)}"))
    errors.extend(_namespace_typos(raw))

    realm_and_regions = attempt(_parse_realm_and_regions, values)
    enabled = attempt(_parse_bool, "enabled", values.get("enabled", _MISSING), None)
    revocation = attempt(_parse_revocation, values.get("revocation", _MISSING), enabled)
    reencryption = attempt(_parse_reencryption, values.get("reencryption", _MISSING))
    multi_region = attempt(_parse_bool, "multiRegion", values.get("multiRegion", _MISSING), False)
    atlassian_policy = attempt(parse_atlassian_key_policy, values.get("atlassianKeyPolicy", _MISSING))
    revision_value = values.get("atlassianKeyPolicyRevision", _MISSING)
    revision = (
        None if revision_value is _MISSING else attempt(_parse_ticket, "atlassianKeyPolicyRevision", revision_value)
    )
    admins = attempt(_parse_arn_list, "keyAdministrators", values.get("keyAdministrators", _MISSING), False)
    context_tag = attempt(_parse_context_tag, values.get("contextTag", _MISSING))
    apply_role = attempt(_parse_apply_role_arn, values.get("applyRoleArn", _MISSING))

    if realm_and_regions is not None and multi_region and len(realm_and_regions[1]) == 1:
        errors.append(ConfigError("multiRegion", True, "allowed only for a dual-region realm (us, eu or two regions)"))

    enrolled = next_keys = None
    retired: tuple[KeyGeneration, ...] | None = ()
    if realm_and_regions is not None:
        regions = realm_and_regions[1]
        shape = multi_region if isinstance(multi_region, bool) else None
        enrolled = attempt(_parse_key_generation, "enrolledKeys", values.get("enrolledKeys", _MISSING), regions, shape)
        next_keys = attempt(_parse_key_generation, "nextKeys", values.get("nextKeys", _MISSING), regions, shape)
        retired = attempt(_parse_retired_keys, values.get("retiredKeys", _MISSING), regions)
    if reencryption is not None and next_keys is not None and reencryption.status not in NEXT_GENERATION_STATUSES:
        errors.append(
            ConfigError(
                "nextKeys",
                next_keys.as_config(),
                f"allowed only while reencryption.status is {', '.join(NEXT_GENERATION_STATUSES)} "
                f"(it is {reencryption.status}); promote them into enrolledKeys or remove them",
            )
        )
    if retired is not None:
        errors.extend(_shared_arns(enrolled, next_keys, retired))
    if apply_role is not None:
        errors.extend(_apply_role_conflicts(apply_role, admins or (), enrolled or next_keys))
        accounts = _allowed_accounts(raw)
        keys = enrolled or next_keys
        # One line per key: a role outside the enrolled keys' account is already refused above.
        if (
            accounts is not None
            and role_account(apply_role) not in accounts
            and (keys is None or role_account(apply_role) == keys.account)
        ):
            errors.append(
                ConfigError(
                    "applyRoleArn",
                    apply_role,
                    f"allowed: a role in the account {ALLOWED_ACCOUNTS_KEY} names ({', '.join(accounts)}), "
                    "the keys' own account",
                )
            )

    if errors:
        raise StackConfigErrors(errors)
    realm, regions = realm_and_regions
    return StackConfig(
        realm=realm,
        regions=regions,
        enabled=enabled,
        revocation=revocation if not enabled else None,
        reencryption=reencryption,
        multi_region=multi_region,
        atlassian_key_policy=atlassian_policy,
        atlassian_key_policy_revision=revision,
        context_tag=context_tag,
        key_administrators=admins,
        enrolled_keys=enrolled,
        next_keys=next_keys,
        retired_keys=retired or (),
        apply_role_arn=apply_role,
    )


def _namespace_typos(raw: Mapping[str, Any]) -> list[ConfigError]:
    """Keys of a namespace that is this one misspelt (`Atlassian-CMK:enabled`, `atlassian_cmk:enabled`).

    The engine hands them to the program under that other namespace, which the program never reads;
    without this the only message would be that `enabled` is missing.
    """

    def folded(name: str) -> str:
        return name.lower().replace("_", "-")

    errors: list[ConfigError] = []
    for full_key, value in raw.items():
        namespace, sep, key = full_key.partition(":")
        if sep and namespace != NAMESPACE and folded(namespace) == NAMESPACE:
            meant = f"{NAMESPACE}:{key}"
            errors.append(
                ConfigError(
                    full_key,
                    value,
                    "",
                    message=f"{shorten(full_key)}: a key of namespace {shorten(namespace)!r}, which the program "
                    f"never reads; did you mean {shorten(meant)}?",
                )
            )
    return errors


def _own_namespace(raw: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for full_key, value in raw.items():
        namespace, sep, key = full_key.partition(":")
        if not sep:
            values[full_key] = value
        elif namespace == NAMESPACE:
            values[key] = value
    return values


def _decode_structured(key: str, value: Any, allowed: str) -> Any:
    """Structured config reaches a Pulumi program as JSON text; decode it like `Config.get_object`."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ConfigError(key, value, allowed) from None
    return value


def _scalar_text(value: Any) -> str | None:
    """A nested scalar as text: JSON gives the program typed values, YAML gives cmkctl text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def _parse_bool(key: str, value: Any, default: bool | None) -> bool:
    allowed = (
        "allowed: true or false (as the Pulumi engine (yaml.v3) reads them, yes/no/on/off are strings, not booleans)"
    )
    if value is _MISSING:
        if default is None:
            raise ConfigError(key, _MISSING, f"required; {allowed}")
        return default
    if isinstance(value, bool):
        return value
    if value in _TRUE_TEXTS:
        return True
    if value in _FALSE_TEXTS:
        return False
    raise ConfigError(key, value, allowed)


def _parse_realm_and_regions(values: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    realm = values.get("realm", _MISSING)
    regions = values.get("regions", _MISSING)
    exactly_one = f"set exactly one of atlassian-cmk:realm ({realm_names()}) or atlassian-cmk:regions"
    if realm is not _MISSING and regions is not _MISSING:
        raise ConfigError("regions", _decode_or_raw(regions), f"not allowed together with realm; {exactly_one}")
    if realm is _MISSING and regions is _MISSING:
        raise ConfigError("realm", _MISSING, exactly_one)
    if realm is not _MISSING:
        if not isinstance(realm, str) or realm not in REALMS:
            hint = did_you_mean(realm, REALMS) if isinstance(realm, str) else ""
            raise ConfigError("realm", realm, f"{hint}allowed: {realm_names()}; or set atlassian-cmk:regions instead")
        return realm, REALMS[realm].regions
    allowed = "allowed: a list of one or two distinct AWS regions, e.g. [us-east-1, us-west-2]"
    decoded = _decode_structured("regions", regions, allowed)
    if not isinstance(decoded, list) or not 1 <= len(decoded) <= MAX_REGIONS:
        raise ConfigError("regions", decoded, allowed)
    for region in decoded:
        problem = region_problem(region) if isinstance(region, str) else "allowed: an AWS region name such as eu-west-2"
        if problem is not None:
            raise ConfigError("regions", region, problem)
    if len(set(decoded)) != len(decoded):
        raise ConfigError("regions", decoded, allowed)
    return EXPLICIT_REALM_NAME, tuple(decoded)


def _decode_or_raw(value: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        return value


def _parse_object(key: str, value: Any, fields: tuple[str, ...], example: str) -> dict[str, str | None]:
    allowed = f"allowed: an object with {', '.join(fields)}, e.g. {example}"
    decoded = _decode_structured(key, value, allowed)
    if not isinstance(decoded, dict):
        raise ConfigError(key, decoded, allowed)
    for name in decoded:
        if name not in fields:
            hint = did_you_mean(str(name), fields)
            raise ConfigError(f"{key}.{name}", decoded[name], f"unknown field; {hint}{allowed}")
    result: dict[str, str | None] = {}
    for name in fields:
        if name not in decoded or decoded[name] is None:
            result[name] = None
            continue
        text = _scalar_text(decoded[name])
        if text is None:
            raise ConfigError(f"{key}.{name}", decoded[name], "allowed: text")
        # Spaces only: a line feed or tab at either end is refused by the text rules, never dropped.
        result[name] = text.strip(" ")
    return result


REVOCATION_FIELDS: Final = ("reason", "ticket", "id", "override")
"""The fields of `atlassian-cmk:revocation`, in the order `cmkctl revoke --write-config` writes them."""


def _parse_revocation(value: Any, enabled: bool | None) -> Revocation | None:
    example = "{reason: 'Suspected breach of encrypted data', ticket: SEC-1234}"
    if value is _MISSING:
        if enabled is False:
            raise ConfigError(
                "revocation", _MISSING, f"required when enabled is false: the pull request's justification, {example}"
            )
        return None
    parsed = _parse_object("revocation", value, REVOCATION_FIELDS, example)
    for name, problem_of in (("reason", tag_text_problem), ("ticket", ticket_problem)):
        text = parsed[name]
        if not text:
            raise ConfigError(f"revocation.{name}", parsed[name] or _MISSING, "required: non-empty text")
        problem = problem_of(text)
        if problem is not None:
            raise ConfigError(f"revocation.{name}", text, f"allowed: {problem}")
    override = parsed["override"]
    # The justification of a break-glass override: the same text rule as the reason (it is a KMS tag too).
    problem = None if override is None else tag_text_problem(override)
    if override is not None and problem is not None:
        raise ConfigError("revocation.override", override, f"allowed: {problem}")
    revocation_id = parsed["id"]
    if revocation_id is not None and not REVOCATION_ID_RE.match(revocation_id):
        raise ConfigError(
            "revocation.id",
            revocation_id,
            "allowed: a revocation id as cmkctl revoke writes it, rev-<UTC yyyymmddThhmmssZ>-<hex>, "
            "e.g. rev-20310301T120000Z-3f9a1c",
        )
    return Revocation(
        reason=cast(str, parsed["reason"]), ticket=cast(str, parsed["ticket"]), override=override, id=revocation_id
    )


def _parse_reencryption(value: Any) -> Reencryption:
    if value is _MISSING:
        return Reencryption()
    parsed = _parse_object("reencryption", value, ("status", "ticket"), "{status: in-progress, ticket: PS-5678}")
    status = parsed["status"] or "none"
    if status not in REENCRYPTION_STATUSES:
        hint = did_you_mean(status, REENCRYPTION_STATUSES) if isinstance(status, str) else ""
        raise ConfigError("reencryption.status", status, f"{hint}allowed: {', '.join(REENCRYPTION_STATUSES)}")
    ticket = parsed["ticket"] or None
    problem = None if ticket is None else ticket_problem(ticket)
    if problem is not None:
        raise ConfigError("reencryption.ticket", ticket, f"allowed: {problem}")
    return Reencryption(status=status, ticket=ticket)


def _parse_arn_list(key: str, value: Any, required: bool) -> tuple[str, ...]:
    allowed = "allowed: a list of IAM ARNs, e.g. [arn:aws:iam::123456789012:role/Name]"
    if value is _MISSING:
        if required:
            raise ConfigError(key, _MISSING, f"required; {allowed}")
        return ()
    decoded = _decode_structured(key, value, allowed)
    if not isinstance(decoded, list) or (required and not decoded):
        raise ConfigError(key, decoded, allowed)
    for arn in decoded:
        if not isinstance(arn, str) or not IAM_PRINCIPAL_RE.match(arn):
            raise ConfigError(
                key, arn, "allowed: an IAM root, role or user ARN, e.g. arn:aws:iam::123456789012:role/Name"
            )
    if len(set(decoded)) != len(decoded):
        raise ConfigError(key, decoded, "allowed: each ARN once")
    return tuple(decoded)


def _parse_key_generation(
    key: str, value: Any, regions: tuple[str, ...], multi_region: bool | None
) -> KeyGeneration | None:
    """A region -> key ARN map (enrolledKeys; later generations use the same shape), or None when absent."""
    if value is _MISSING:
        return None
    allowed = "allowed: a map of region to KMS key ARN (run `cmkctl enroll` to write it)"
    decoded = _decode_structured(key, value, allowed)
    try:
        return parse_key_generation(decoded, regions, name=key, multi_region=multi_region)
    except KeyGenerationError as error:
        raise ConfigError(error.field, error.value, error.allowed) from None


def _parse_retired_keys(value: Any, regions: tuple[str, ...]) -> tuple[KeyGeneration, ...]:
    """`retiredKeys`: a list of region -> key ARN maps, oldest generation first; () when absent.

    The list's length numbers the generations (`atlassian_cmk.generations`): removing an entry
    would rename the keys of every later generation, which `protect` refuses at preview.
    """
    if value is _MISSING:
        return ()
    allowed = "allowed: a list of region -> KMS key ARN maps, oldest first (the enrolledKeys each promotion replaced)"
    decoded = _decode_structured("retiredKeys", value, allowed)
    if not isinstance(decoded, list) or not decoded:
        raise ConfigError("retiredKeys", decoded, allowed)
    generations = []
    for index, item in enumerate(decoded):
        try:
            generations.append(parse_key_generation(item, regions, name=f"retiredKeys[{index}]"))
        except KeyGenerationError as error:
            raise ConfigError(error.field, error.value, error.allowed) from None
    return tuple(generations)


def _shared_arns(
    enrolled: KeyGeneration | None, next_keys: KeyGeneration | None, retired: tuple[KeyGeneration, ...]
) -> list[ConfigError]:
    """A key ARN in two generations: one key cannot be both the one Atlassian uses and another."""
    seen: dict[str, str] = {}
    errors: list[ConfigError] = []
    named = [("enrolledKeys", enrolled), ("nextKeys", next_keys)]
    named += [(f"retiredKeys[{index}]", generation) for index, generation in enumerate(retired)]
    for name, generation in named:
        for region, key in generation.keys.items() if generation is not None else ():
            if key.arn in seen:
                errors.append(
                    ConfigError(
                        f"{name}.{region}", key.arn, f"allowed: a key of no other generation (it is in {seen[key.arn]})"
                    )
                )
            seen.setdefault(key.arn, name)
    return errors


def _parse_ticket(key: str, value: Any) -> str:
    text = _scalar_text(value)
    problem = ticket_problem(text or "")
    if text is None or problem is not None:
        raise ConfigError(key, value, f"allowed: {problem or 'a ticket id such as ATL-1234'}")
    return text


ATLASSIAN_POLICY_SOURCE: Final = (
    "paste the statements from Atlassian's 'Set up your AWS account and create a KMS key policy' page "
    "or your CMK enrollment ticket, as a YAML list of IAM statements"
)
PLACEHOLDER_RE: Final = re.compile(r"<[^<>]*>|\{\{[^{}]*\}\}|REPLACE[_-]?ME", re.IGNORECASE)
"""Placeholder rule: only explicit fill-in markers (`<account-id>`, `{{...}}`, REPLACE_ME) are
placeholders; they are never resolved by the product but refused, and the customer pastes the
value from the enrollment ticket. Real-looking names (role/Your-Role) are not placeholders.
(`${...}` are IAM policy variables.)"""


def parse_atlassian_key_policy(value: Any) -> tuple[dict[str, Any], ...]:
    """`atlassian-cmk:atlassianKeyPolicy`: a non-empty list of IAM statements, each with a
    Principal naming AWS principals (ARNs or 12-digit account IDs), no `*`, no NotPrincipal,
    no unique ID, no placeholder, no Sid of ours."""
    key = "atlassianKeyPolicy"
    if value is _MISSING:
        raise ConfigError(key, _MISSING, f"required, no default; {ATLASSIAN_POLICY_SOURCE}")
    decoded = _decode_structured(key, value, f"allowed: {ATLASSIAN_POLICY_SOURCE}")
    if isinstance(decoded, dict) and "Statement" in decoded:
        decoded = decoded["Statement"]  # the whole policy document pasted: take its statements
    if isinstance(decoded, dict):
        decoded = [decoded]
    if not isinstance(decoded, list) or not decoded:
        raise ConfigError(key, decoded, f"allowed: {ATLASSIAN_POLICY_SOURCE}")
    problems: list[ConfigError] = []
    sids: set[str] = set()
    for index, statement in enumerate(decoded):
        try:
            _check_atlassian_statement(f"{key}[{index}]", statement, sids)
        except ConfigError as error:
            problems.append(error)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise StackConfigErrors(problems)  # one line per bad statement
    return tuple(cast(dict[str, Any], s) for s in decoded)


def _check_atlassian_statement(where: str, statement: Any, sids: set[str]) -> None:
    """One of Atlassian's statements; raises ConfigError naming its first problem."""
    try:
        parse_statement(statement, where)
    except PolicyError as error:
        raise ConfigError(where, statement, f"not an IAM statement ({error})") from None
    placeholder = PLACEHOLDER_RE.search(json.dumps(statement))
    if placeholder:
        raise ConfigError(
            where, placeholder.group(0), "a placeholder: replace it with the value from your enrollment ticket"
        )
    sid = statement.get("Sid")
    if is_own_sid(sid):
        raise ConfigError(f"{where}.Sid", sid, "reserved for the product's own statements")
    if isinstance(sid, str):
        if sid in sids:
            raise ConfigError(f"{where}.Sid", sid, "each statement needs its own Sid (KMS refuses duplicates)")
        sids.add(sid)
    principal = statement.get("Principal")
    aws = principal.get("AWS") if isinstance(principal, dict) and set(principal) == {"AWS"} else None
    entries = aws if isinstance(aws, list) else [aws]
    if aws is None or "*" in entries:
        raise ConfigError(
            f"{where}.Principal",
            principal if "Principal" in statement else statement.get("NotPrincipal", _MISSING),
            "allowed: {AWS: <Atlassian's role ARN or account ID, or a list>}; no *, no NotPrincipal",
        )
    for entry in entries:
        text = str(entry)
        if UNIQUE_ID_RE.match(text):
            raise ConfigError(
                f"{where}.Principal.AWS", text, "a unique ID (a deleted principal); paste Atlassian's ARN"
            )
        if not (ACCOUNT_ID_RE.match(text) or IAM_PRINCIPAL_RE.match(text)):
            raise ConfigError(
                f"{where}.Principal.AWS", text, "allowed: an IAM root, role or user ARN, or a 12-digit account ID"
            )
    if "Resource" not in statement:
        # Without Resource a key policy statement has no effect (KMS API Reference, PutKeyPolicy).
        raise ConfigError(f"{where}.Resource", _MISSING, 'required in a key policy: "Resource": "*"')


APPLY_ROLE_EXAMPLE: Final = "arn:aws:iam::111122223333:role/cmk-apply"

APPLY_ROLE_REQUIRED: Final = (
    f"{NAMESPACE}:applyRoleArn: missing; allowed: the CI apply role's ARN in the keys' own account, e.g. "
    f"{APPLY_ROLE_EXAMPLE}; required because the key policy lets only that role write the evidence and record "
    "tags, so without it no reviewed revocation, restoration or reencryption.status change can be applied"
)
"""The one line every adapter says for a stack without `applyRoleArn` (`apply_role_missing`)."""

APPLY_ROLE_BREAK_GLASS_NOTE: Final = (
    f"note: {NAMESPACE}:applyRoleArn is not set: the follow-up pull request cannot be applied until it is set "
    'and the key policy re-applied (README "The evidence model")'
)
"""What `cmkctl revoke`/`restore` say, once, instead of refusing: an emergency is not blocked by a config gap."""


def apply_role_missing(config: StackConfig) -> str | None:
    """`APPLY_ROLE_REQUIRED` when the stack has no `atlassian-cmk:applyRoleArn`, else None.

    Without it the key policy exempts nobody from its evidence Deny statements
    (`evidence.key_policy_evidence_statements(None)`): on AWS the apply role's TagResource of the
    revocation record is denied by ProtectCmkEvidenceRecordNeedsId and of `reencryption` by
    ProtectCmkEvidenceTags, so a revocation half-applies (the key state changes, the tags are
    refused) and no re-encryption step can ever be applied. It holds always, not only once keys are
    enrolled: the first `pulumi up` bakes the key policy and no shipped role may rewrite it
    (`iam_roles.NEVER`: kms:PutKeyPolicy), so the first preview is where it is cheap to set.
    The program, the pack (`apply-role-configured`), `cmkctl impact` and `cmkctl status` refuse
    with this line; break-glass only notes it (`APPLY_ROLE_BREAK_GLASS_NOTE`)."""
    return APPLY_ROLE_REQUIRED if config.apply_role_arn is None else None


def _parse_apply_role_arn(value: Any) -> str | None:
    """`atlassian-cmk:applyRoleArn`: the CI apply role's ARN; its account is checked against the
    keys' own account where that is known (`composed_policy.composed_key_policy`)."""
    if value is _MISSING:
        return None
    allowed = f"allowed: the CI apply role's ARN in the keys' own account, e.g. {APPLY_ROLE_EXAMPLE}"
    if not isinstance(value, str) or (match := IAM_ROLE_ARN_RE.match(value)) is None:
        raise ConfigError("applyRoleArn", value, allowed)
    if match.group(1):
        # Every realm's regions are in the commercial partition `aws` (`atlassian_cmk.realms`): a role in
        # another partition can never be the caller on these keys, so the exemption would go to nobody.
        raise ConfigError("applyRoleArn", value, f"allowed: a role in partition aws (the keys' partition); {allowed}")
    name = value.rsplit("/", 1)[-1]
    if len(name) > IAM_ROLE_NAME_MAX:
        raise ConfigError(
            "applyRoleArn",
            value,
            f"allowed: a role name of at most {IAM_ROLE_NAME_MAX} characters (IAM's limit; this one has {len(name)})",
        )
    return value


IAM_ROLE_NAME_MAX: Final = 64
"""IAM role names hold at most 64 characters (IAM User Guide, "IAM and AWS STS quotas", "IAM name
requirements"; IAM API Reference, CreateRole: RoleName "Length Constraints: Maximum length of 64").
A longer name cannot exist, so an ARN naming one is a typo that would exempt nobody."""


def _allowed_accounts(raw: Mapping[str, Any]) -> tuple[str, ...] | None:
    """`aws:allowedAccountIds` as a tuple of account IDs, or None when absent or unreadable."""
    value = raw.get(ALLOWED_ACCOUNTS_KEY)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = [value]
    if isinstance(value, list) and value and all(ACCOUNT_ID_RE.match(str(v)) for v in value):
        return tuple(str(v) for v in value)
    return None


def _apply_role_conflicts(
    apply_role: str, administrators: tuple[str, ...], keys: KeyGeneration | None
) -> list[ConfigError]:
    """`applyRoleArn` against the rest of the file, as early as the file alone can tell.

    - a key administrator (break-glass) ARN: the key policy exempts the apply role from the
      evidence Deny statements, so break-glass could then rewrite the guards' evidence and the
      revocation record outside review (`atlassian_cmk.evidence`). IAM role names are unique
      regardless of case (IAM User Guide, "IAM object quotas": "names are not distinguished by
      case"), so the comparison ignores case;
    - another account than the enrolled keys': the exemption would go to a stranger (the
      program refuses it again when it composes the policy, `composed_policy`)."""
    errors = []
    if apply_role.lower() in {admin.lower() for admin in administrators}:
        errors.append(
            ConfigError(
                "applyRoleArn",
                apply_role,
                "allowed: the CI apply role, never one of keyAdministrators (break-glass would then be exempt from "
                "the key policy's evidence protection)",
            )
        )
    if keys is not None and role_account(apply_role) != keys.account:
        errors.append(
            ConfigError(
                "applyRoleArn",
                apply_role,
                f"allowed: a role in the keys' own account {keys.account} (the enrolled key ARNs' account)",
            )
        )
    return errors


def role_account(role_arn: str) -> str:
    """The 12-digit account of a role ARN accepted by `IAM_ROLE_ARN_RE`."""
    match = IAM_ROLE_ARN_RE.match(role_arn)
    if match is None:
        raise ValueError(f"{role_arn!r} is not an IAM role ARN")
    return match.group(2)


def _parse_context_tag(value: Any) -> str:
    allowed = "allowed: 1-12 letters or digits, e.g. AcmeCMK (Atlassian's context tag, immutable once enrolled)"
    if value is _MISSING:
        raise ConfigError("contextTag", _MISSING, f"required; {allowed}")
    if not isinstance(value, str) or not CONTEXT_TAG_RE.match(value):
        raise ConfigError("contextTag", value, allowed)
    return value


ALLOWED_ACCOUNTS_KEY: Final = "aws:allowedAccountIds"
"""pulumi-aws provider config: the provider refuses to run against any other account (Terraform
AWS provider `allowed_account_ids`), so a single value is the keys' own account, known at preview
before any key exists (the pack reads it when no deployed key shows the account)."""


def allowed_account_id(raw: Mapping[str, Any]) -> str | None:
    """The single account of `aws:allowedAccountIds` (a JSON list as the engine passes it, or a
    list), or None when absent, unreadable or naming more than one account (unknown: fail closed)."""
    accounts = _allowed_accounts(raw)
    return accounts[0] if accounts is not None and len(accounts) == 1 else None
