"""Live evidence of re-encryption: is Atlassian decrypting with the old keys and encrypting with the new?

While two generations are enrolled (Atlassian holds both), the tags only say what the stack
declared; what Atlassian is doing shows in CloudTrail. Re-encryption is "decrypt with the old
key, encrypt with the new one" (DOMAIN.md), so per region we look for Atlassian's principals
calling Decrypt (or ReEncrypt) on the old generation's key and Encrypt / GenerateDataKey* (or
ReEncrypt) on the new generation's key, within `ACTIVITY_WINDOW`.

What CloudTrail can show (sources):
- KMS cryptographic operations are **management events, read-only** (`"readOnly": true`,
  `"managementEvent": true`, `"eventCategory": "Management"` in AWS KMS Developer Guide,
  "GenerateDataKey" and "Decrypt" log entry examples; "Logging AWS KMS API calls with AWS
  CloudTrail": "CloudTrail logs all AWS KMS operations, including read-only operations ... and
  cryptographic operations, such as GenerateDataKey and Decrypt"). So they are in the event
  history `LookupEvents` reads (management events of the last 90 days, per region), without a
  trail; they are not data events.
- "Cross-account operations on KMS keys are logged in both the caller account and the KMS key owner
  account" (same page): Atlassian's calls appear in the key account's event history. In the key
  owner's copy the caller's `userIdentity` may carry only its `accountId` (and `principalId`), not
  its ARN (CloudTrail User Guide, "CloudTrail userIdentity element", type `AWSAccount`): a call is
  Atlassian's when its account is an Atlassian principal's account and, when an ARN is shown, the
  ARN is one Atlassian's statements name (IAM semantics, `iam_policy.principal_matches`).
- `LookupEvents` takes one lookup attribute; we ask by `ResourceName` = the key ARN (KMS adds the
  key ARN to `resources`), newest first, at most 50 events a page, 2 requests per second per
  account per region (CloudTrail API Reference, LookupEvents).

Unknown is "no": an unreadable lookup, or a bounded scan that ended before the window's start
without finding the call, is "cannot tell", never "not re-encrypting". Pure rules: the reads are
`atlassian_cmk.aws.cloudtrail.read_reencryption_activity`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from atlassian_cmk.config import StackConfig
from atlassian_cmk.generations import CURRENT, NEXT, RETIRED, GenerationRole
from atlassian_cmk.iam_policy import PolicyError, is_unique_id, principal_account, principal_matches
from atlassian_cmk.key_identity import KeyGeneration
from atlassian_cmk.key_policy import atlassian_principals_of, parse_atlassian_statements
from atlassian_cmk.timeline import iso

ACTIVITY_WINDOW: Final = timedelta(hours=24)
"""How far back a call counts as "now". Atlassian re-encrypts in "hours to days" (DOMAIN.md) and
works continuously while it runs; a day covers a pause overnight without counting last week's
use as current. Longer windows also cost pages of the rate-limited LookupEvents."""

OLD_KEY_EVENTS: Final = frozenset({"Decrypt", "ReEncrypt"})
"""Calls that read data protected by a key: re-encryption's first half, on the old generation."""

NEW_KEY_EVENTS: Final = frozenset(
    {
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "ReEncrypt",
    }
)
"""Calls that protect data under a key: re-encryption's second half, on the new generation."""

Use = Literal["decrypt", "encrypt"]
Phase = Literal["re-encrypting", "new-only", "old-only", "no-use-seen", "unknown"]


@dataclass(frozen=True)
class GenerationPair:
    """The two generations Atlassian holds at once: it decrypts with `old`, encrypts with `new`."""

    old_role: GenerationRole
    old: KeyGeneration
    new_role: GenerationRole
    new: KeyGeneration


def enrolled_pair(config: StackConfig) -> GenerationPair | None:
    """The two enrolled generations, or None when Atlassian holds one.

    Two are enrolled while `nextKeys` is recorded (old: enrolledKeys, new: nextKeys), and after
    promotion while the status is still `complete` (old: the last retiredKeys entry, new:
    enrolledKeys). Before `nextKeys` is recorded Atlassian has not been given the new keys.
    """
    if config.enrolled_keys is None:
        return None
    if config.next_keys is not None:
        return GenerationPair(CURRENT, config.enrolled_keys, NEXT, config.next_keys)
    if config.reencryption.status == "complete" and config.retired_keys:
        return GenerationPair(RETIRED, config.retired_keys[-1], CURRENT, config.enrolled_keys)
    return None


@dataclass(frozen=True)
class AtlassianCallers:
    """Whom a CloudTrail event must come from to count: Atlassian's principals and their accounts."""

    principals: frozenset[str]
    accounts: frozenset[str]

    def made(self, user_identity: Mapping[str, Any]) -> bool:
        """Whether a `userIdentity` element is one of Atlassian's principals (see the module docstring)."""
        account = user_identity.get("accountId")
        if not isinstance(account, str) or account not in self.accounts:
            return False
        arns = [user_identity.get("arn")]
        issuer = (user_identity.get("sessionContext") or {}).get("sessionIssuer") or {}
        arns.append(issuer.get("arn"))
        shown = [arn for arn in arns if isinstance(arn, str) and arn]
        if not shown:  # the key owner's copy of a cross-account call: the account is all it says
            return True
        return any(principal_matches(pattern, arn) for pattern in self.principals for arn in shown)


def atlassian_callers(config: StackConfig) -> AtlassianCallers:
    """Atlassian's principals as the stack's `atlassianKeyPolicy` names them (unique IDs stand for no one)."""
    try:
        statements = parse_atlassian_statements(config.atlassian_key_policy)
    except PolicyError:  # the schema validated them; an unparsable one names no caller (fail closed: absent)
        statements = []
    principals = frozenset(p for p in atlassian_principals_of(statements) if not is_unique_id(p))
    accounts = frozenset(a for p in principals if (a := principal_account(p)) is not None)
    return AtlassianCallers(principals, accounts)


@dataclass(frozen=True)
class KeyUse:
    """What the event history says about one use of one key by Atlassian.

    `last_seen`/`event_name`/`caller`: the newest matching call in the window. `scanned`: events
    read. `exhausted`: every event of the window was read (absence then means absence). `error`:
    why the lookup failed (AccessDenied, throttled, ...).
    """

    key_arn: str
    use: Use
    last_seen: datetime | None = None
    event_name: str | None = None
    caller: str | None = None
    scanned: int = 0
    exhausted: bool = False
    error: str | None = None

    @property
    def seen(self) -> bool:
        return self.last_seen is not None

    @property
    def known(self) -> bool:
        """Seen, or the whole window read without it; else it cannot be told."""
        return self.error is None and (self.seen or self.exhausted)

    def summary(self) -> str:
        if self.error is not None:
            return f"unreadable ({self.error})"
        if self.seen and self.last_seen is not None:
            return f"{self.event_name} at {iso(self.last_seen)}"
        if self.exhausted:
            return "none"
        return f"not in the {self.scanned} newest events (scan bounded)"


def match_events(
    events: Iterable[Mapping[str, Any]], key_arn: str, use: Use, callers: AtlassianCallers
) -> tuple[datetime, str, str] | None:
    """The newest (time, event name, caller) among LookupEvents `Events` entries that is Atlassian's
    `use` of `key_arn`, or None.

    An entry is shaped as LookupEvents returns it: `EventName`, `EventTime`, `Resources`
    ([{ResourceType, ResourceName}]) and `CloudTrailEvent`, the event record as a JSON string
    (`userIdentity`, `requestParameters.keyId`, `resources[].ARN`). The key must be named in the
    entry's resources or the record's; a record that is not JSON counts as no match.
    """
    wanted = OLD_KEY_EVENTS if use == "decrypt" else NEW_KEY_EVENTS
    best: tuple[datetime, str, str] | None = None
    for event in events:
        name = event.get("EventName")
        when = event.get("EventTime")
        if name not in wanted or not isinstance(when, datetime):
            continue
        try:
            record = json.loads(event.get("CloudTrailEvent") or "")
        except (json.JSONDecodeError, TypeError):
            continue
        if not isinstance(record, dict) or record.get("eventSource", "kms.amazonaws.com") != "kms.amazonaws.com":
            continue
        named = {str(r.get("ResourceName", "")) for r in event.get("Resources") or []}
        named |= {str(r.get("ARN", "")) for r in record.get("resources") or [] if isinstance(r, dict)}
        if key_arn not in named:
            continue
        identity = record.get("userIdentity") or {}
        if not isinstance(identity, dict) or not callers.made(identity):
            continue
        caller = str(identity.get("arn") or f"account {identity.get('accountId')}")
        if best is None or when > best[0]:
            best = (when, str(name), caller)
    return best


@dataclass(frozen=True)
class RegionActivity:
    """One region: Atlassian's use of the old generation's key (decrypt) and the new one's (encrypt)."""

    region: str
    old: KeyUse
    new: KeyUse

    @property
    def phase(self) -> Phase:
        """re-encrypting (both seen), new-only, old-only, no-use-seen (whole window read), or unknown."""
        if self.old.seen and self.new.seen:
            return "re-encrypting"
        if not (self.old.known and self.new.known):
            return "unknown"
        if self.new.seen:
            return "new-only"
        if self.old.seen:
            return "old-only"
        return "no-use-seen"


@dataclass(frozen=True)
class ReencryptionActivity:
    """Atlassian's use of both enrolled generations, per region, in [window_start, window_end]."""

    old_role: GenerationRole
    new_role: GenerationRole
    window_start: datetime
    window_end: datetime
    regions: tuple[RegionActivity, ...]
    callers: tuple[str, ...] = ()
    """Atlassian's principals searched for, as canonical principals (for the reader)."""


def activity_reasons(config: StackConfig, activity: ReencryptionActivity | None) -> tuple[str, ...]:
    """Why a change that disables keys must stop, from the live evidence; () when nothing speaks against it.

    Only while two generations are enrolled (`enrolled_pair`): evidence that cannot be told
    (`unknown_activity_reasons`) and Atlassian seen re-encrypting (`observed_activity_reasons`).
    Each reason completes "revoking now is unsafe: ...".
    """
    return (*unknown_activity_reasons(config, activity), *observed_activity_reasons(activity))


def unknown_activity_reasons(config: StackConfig, activity: ReencryptionActivity | None) -> tuple[str, ...]:
    """Two generations enrolled and the evidence not read at all, or a region where it cannot be told."""
    pair = enrolled_pair(config)
    if pair is None:
        return ()
    if activity is None:
        return (
            f"two key generations are enrolled ({pair.old_role} and {pair.new_role}) and the CloudTrail evidence of "
            "re-encryption was not read, so re-encryption cannot be ruled out",
        )
    reasons = []
    for region in activity.regions:
        if region.phase == "unknown":
            unknown = [use for use in (region.old, region.new) if not use.known]
            what = "; ".join(f"{_role_of(activity, use)} key {use.key_arn}: {use.summary()}" for use in unknown)
            reasons.append(
                f"{region.region}: whether Atlassian is re-encrypting cannot be told from CloudTrail since "
                f"{iso(activity.window_start)} ({what}); needs cloudtrail:LookupEvents, then run again"
            )
    return tuple(reasons)


def observed_activity_reasons(activity: ReencryptionActivity | None) -> tuple[str, ...]:
    """Regions where Atlassian decrypted with the old key and encrypted with the new one in the window."""
    if activity is None:
        return ()
    return tuple(
        f"{region.region}: CloudTrail shows Atlassian re-encrypting: {region.old.summary()} on the "
        f"{activity.old_role} key and {region.new.summary()} on the {activity.new_role} key since "
        f"{iso(activity.window_start)}"
        for region in activity.regions
        if region.phase == "re-encrypting"
    )


def _role_of(activity: ReencryptionActivity, use: KeyUse) -> str:
    return activity.old_role if use.use == "decrypt" else activity.new_role


def activity_json(activity: ReencryptionActivity | None) -> dict[str, Any] | None:
    """The `reencryption_evidence` object of `cmkctl status --json` (docs/cmkctl.md)."""
    if activity is None:
        return None

    def use_json(use: KeyUse) -> dict[str, Any]:
        return {
            "key_arn": use.key_arn,
            "last_seen": iso(use.last_seen) if use.last_seen else None,
            "event_name": use.event_name,
            "caller": use.caller,
            "events_scanned": use.scanned,
            "window_fully_read": use.exhausted,
            "error": use.error,
        }

    return {
        "source": "cloudtrail:LookupEvents",
        "window_start": iso(activity.window_start),
        "window_end": iso(activity.window_end),
        "old_generation": activity.old_role,
        "new_generation": activity.new_role,
        "atlassian_principals": list(activity.callers),
        "regions": [
            {
                "region": r.region,
                "phase": r.phase,
                "old_key_decrypt": use_json(r.old),
                "new_key_encrypt": use_json(r.new),
            }
            for r in activity.regions
        ],
    }
