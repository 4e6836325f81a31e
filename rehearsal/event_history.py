"""CloudTrail's event history for the emulator: every KMS call moto answers, and LookupEvents over it.

moto records no CloudTrail events and does not implement LookupEvents (HTTP 500), so on the emulator the
revocation clock's cross-check (`atlassian_cmk.clock_check`) and the re-encryption evidence
(`atlassian_cmk.reencryption_activity`) could never be read. AWS records every KMS API call as a
management event in the caller's (and the key owner's) account and region: "CloudTrail logs all AWS KMS
operations, including read-only operations ... and cryptographic operations" (AWS KMS Developer Guide,
"Logging AWS KMS API calls with AWS CloudTrail"). `EventHistoryMiddleware` wraps moto's WSGI app: it
records each KMS call (succeeded, or refused with a 4xx error: CloudTrail records those with
`errorCode`), answers CloudTrail's `LookupEvents` from that record as the CloudTrail API Reference
describes it, clears it on moto's reset, and leaves everything else to moto.

Where it stops (README, "Where fidelity stops"): events show at once unless `delivery_delay` is set (AWS:
"within an average of about 5 minutes ... not guaranteed"); only KMS calls made to this emulator exist,
so calls by Atlassian's principals (another account, never here) are absent; `requestParameters` and
`responseElements` follow the KMS examples' shape (camelCase members, blobs omitted) but are not AWS's
byte for byte; no Insights events; no request-rate limit (the product paces itself to 2 per second).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

LOOKUP_EVENTS_TARGET: Final = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"
"""botocore data/cloudtrail/2013-11-01/service-2.json: protocol json 1.1, targetPrefix + operation name."""

KMS_TARGET_PREFIX: Final = "TrentService."
"""botocore data/kms/2014-11-01/service-2.json: targetPrefix "TrentService" (JSON 1.1)."""

KMS_EVENT_SOURCE: Final = "kms.amazonaws.com"
EVENT_HISTORY_DAYS: Final = timedelta(days=90)
""""You can look up events that occurred in a Region within the last 90 days." (LookupEvents, botocore model)."""

MAX_RESULTS: Final = 50
"""LookupEventsRequest.MaxResults: "Possible values are 1 through 50. The default is 50." (botocore model)."""

LOOKUP_ATTRIBUTE_KEYS: Final = frozenset(
    {"EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource", "AccessKeyId"}
)
"""LookupAttributeKey's enum (botocore model; CloudTrail API Reference, LookupAttribute)."""

_READ_ONLY_PREFIXES: Final = ("Describe", "Get", "List")
_READ_ONLY_CRYPTO: Final = frozenset(
    {
        "Decrypt",
        "DeriveSharedSecret",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateMac",
        "GenerateRandom",
        "ReEncrypt",
        "Sign",
        "Verify",
        "VerifyMac",
    }
)
"""KMS's cryptographic operations, read-only events like its Describe/Get/List calls ("readOnly": true in
the KMS Developer Guide's CloudTrail examples, e.g. Decrypt, Encrypt, GenerateDataKey); every call that
changes a key, its policy, tags, aliases or grants is "readOnly": false (e.g. DisableKey, EnableKey,
TagResource, EnableKeyRotation)."""

_WRITE_ONLY_READS: Final = frozenset({"GetParametersForImport"})
"""A Get that creates something (an import token): CloudTrail records it as a write."""

_OMITTED_MEMBERS: Final = frozenset(
    {
        "CiphertextBlob",
        "CiphertextForRecipient",
        "EncryptedKeyMaterial",
        "ImportToken",
        "Mac",
        "Message",
        "Plaintext",
        "PrivateKeyCiphertextBlob",
        "PrivateKeyPlaintext",
        "PublicKey",
        "Recipient",
        "SharedSecret",
        "Signature",
    }
)
"""Blobs and secrets CloudTrail does not log: "For security reasons, some fields are omitted from AWS KMS
log entries, such as the Plaintext parameter of an Encrypt request" (KMS Developer Guide, CloudTrail)."""

_MAP_MEMBERS: Final = frozenset({"EncryptionContext", "EncryptionContextEquals", "EncryptionContextSubset"})
"""Maps whose keys are the caller's, not member names: kept as sent."""


def is_read_only(operation: str) -> bool:
    """Whether CloudTrail marks this KMS operation's events `readOnly` (see `_READ_ONLY_CRYPTO`)."""
    if operation in _WRITE_ONLY_READS:
        return False
    return operation in _READ_ONLY_CRYPTO or operation.startswith(_READ_ONLY_PREFIXES)


@dataclass(frozen=True)
class Caller:
    """Who signed a request: account, access key and the identity STS would report for it."""

    account_id: str
    access_key_id: str
    user_identity: dict[str, Any]
    username: str


@dataclass(frozen=True)
class RecordedEvent:
    """One management event, as LookupEvents returns it (`as_lookup_event`).

    `sequence` orders events recorded in the same second (CloudTrail's times are whole seconds);
    `recorded_at` is the call's exact time, from which `delivery_delay` counts.
    """

    sequence: int
    event_id: str
    event_name: str
    read_only: bool
    access_key_id: str
    event_time: datetime
    recorded_at: datetime
    username: str
    resources: tuple[tuple[str, str], ...]
    detail: dict[str, Any] = field(compare=False)

    def as_lookup_event(self) -> dict[str, Any]:
        """The `Event` shape of LookupEventsResponse (botocore model), EventTime in epoch seconds (JSON 1.1)."""
        return {
            "EventId": self.event_id,
            "EventName": self.event_name,
            "ReadOnly": "true" if self.read_only else "false",
            "AccessKeyId": self.access_key_id,
            "EventTime": self.event_time.timestamp(),
            "EventSource": KMS_EVENT_SOURCE,
            "Username": self.username,
            "Resources": [{"ResourceType": kind, "ResourceName": name} for kind, name in self.resources],
            "CloudTrailEvent": json.dumps(self.detail),
        }

    def matches(self, key: str, value: str) -> bool:
        """Whether the event has `value` for the LookupAttribute `key` (exact match)."""
        if key == "ResourceType":
            return any(kind == value for kind, _ in self.resources)
        if key == "ResourceName":
            return any(name == value for _, name in self.resources)
        plain = {
            "EventId": self.event_id,
            "EventName": self.event_name,
            "ReadOnly": "true" if self.read_only else "false",
            "Username": self.username,
            "EventSource": KMS_EVENT_SOURCE,
            "AccessKeyId": self.access_key_id,
        }
        return plain.get(key) == value


class LookupEventsError(Exception):
    """A LookupEvents request AWS refuses: `code` is the error's `__type` (botocore model's error shapes)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EventHistory:
    """Event history per account and region, thread-safe (the server answers each request on its own thread).

    `clock` gives "now" for both recording and lookups (a test may move it, e.g. past the 90 days);
    `delivery_delay` holds an event back from lookups until that long after its call (AWS: "within an
    average of about 5 minutes of an API call. This time is not guaranteed", CloudTrail User Guide).
    """

    def __init__(self, *, delivery_delay: timedelta = timedelta(0), clock: Callable[[], datetime] = _utc_now) -> None:
        self.delivery_delay = delivery_delay
        self.clock = clock
        self._lock = threading.Lock()
        self._events: dict[tuple[str, str], list[RecordedEvent]] = {}
        self._sequence = 0

    def clear(self) -> None:
        """Forget every event (moto's reset)."""
        with self._lock:
            self._events.clear()

    def record(self, account_id: str, region: str, make: Callable[[int, datetime], RecordedEvent]) -> None:
        """Append the event `make(sequence, now)` builds to the account's history in `region`."""
        with self._lock:
            self._sequence += 1
            event = make(self._sequence, self.clock())
            self._events.setdefault((account_id, region), []).append(event)

    def events(self, account_id: str, region: str) -> list[RecordedEvent]:
        """Every recorded event of the account in `region`, oldest first, delivered or not."""
        with self._lock:
            return list(self._events.get((account_id, region), ()))

    def lookup(self, account_id: str, region: str, request: dict[str, Any]) -> dict[str, Any]:
        """Answer a LookupEvents request body as AWS does, or raise `LookupEventsError`.

        At most one LookupAttribute; StartTime/EndTime inclusive ("after or at", "before or at"); MaxResults
        1-50, default 50; newest first ("The most recent event is listed first."); NextToken valid only with
        the same parameters ("The token must be passed in with the same parameters as the previous call"):
        all from the LookupEvents shapes in botocore data/cloudtrail/2013-11-01/service-2.json.
        """
        attribute = _lookup_attribute(request.get("LookupAttributes"))
        start, end = _time(request, "StartTime"), _time(request, "EndTime")
        if start is not None and end is not None and start > end:
            raise LookupEventsError("InvalidTimeRangeException", "Start time must be before end time.")
        max_results = request.get("MaxResults", MAX_RESULTS)
        if not isinstance(max_results, int) or isinstance(max_results, bool) or not 1 <= max_results <= MAX_RESULTS:
            raise LookupEventsError(
                "InvalidMaxResultsException", f"MaxResults {max_results!r} is not valid: allowed 1 to {MAX_RESULTS}."
            )
        category = request.get("EventCategory")
        if category not in (None, "insight"):
            raise LookupEventsError("InvalidEventCategoryException", f"EventCategory {category!r} is not valid.")
        query = _query_digest(attribute, request.get("StartTime"), request.get("EndTime"), category)
        before = _token_position(request.get("NextToken"), query)
        if category == "insight":  # the emulator has no Insights events
            return {"Events": []}
        now = self.clock()
        oldest = now - EVENT_HISTORY_DAYS
        selected: list[RecordedEvent] = []
        for event in reversed(self.events(account_id, region)):
            if before is not None and event.sequence >= before:
                continue
            if event.recorded_at + self.delivery_delay > now or event.event_time < oldest:
                continue
            if (start is not None and event.event_time < start) or (end is not None and event.event_time > end):
                continue
            if attribute is not None and not event.matches(*attribute):
                continue
            selected.append(event)
            if len(selected) > max_results:
                break
        page, more = selected[:max_results], len(selected) > max_results
        answer: dict[str, Any] = {"Events": [event.as_lookup_event() for event in page]}
        if more:
            answer["NextToken"] = _token(query, page[-1].sequence)
        return answer


def _lookup_attribute(attributes: Any) -> tuple[str, str] | None:
    if attributes is None or attributes == []:
        return None
    if not isinstance(attributes, list) or len(attributes) > 1:
        # "Contains a list of lookup attributes. Currently the list can contain only one item." (botocore model)
        raise LookupEventsError("InvalidLookupAttributesException", "LookupAttributes can contain only one item.")
    only = attributes[0] if isinstance(attributes[0], dict) else {}
    key, value = only.get("AttributeKey"), only.get("AttributeValue")
    if key not in LOOKUP_ATTRIBUTE_KEYS:
        raise LookupEventsError(
            "InvalidLookupAttributesException",
            f"AttributeKey {key!r} is not valid: allowed {', '.join(sorted(LOOKUP_ATTRIBUTE_KEYS))}.",
        )
    if not isinstance(value, str) or not 1 <= len(value) <= 2000:
        raise LookupEventsError(
            "InvalidLookupAttributesException", "AttributeValue must be 1 to 2000 characters long."
        )
    return key, value


def _time(request: dict[str, Any], name: str) -> datetime | None:
    value = request.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LookupEventsError("InvalidTimeRangeException", f"{name} must be a timestamp.")
    return datetime.fromtimestamp(value, UTC)


def _query_digest(attribute: tuple[str, str] | None, start: Any, end: Any, category: Any) -> str:
    canonical = json.dumps([attribute, start, end, category])
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _token(query: str, sequence: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"q": query, "before": sequence}).encode()).decode()


def _token_position(token: Any, query: str) -> int | None:
    if token is None:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        position = decoded["before"] if decoded["q"] == query else None
    except (binascii.Error, ValueError, KeyError, TypeError):
        position = None
    if not isinstance(position, int):
        raise LookupEventsError(
            "InvalidNextTokenException", "The NextToken is not valid, or was returned for other parameters."
        )
    return position


# ----------------------------------------------------------------------------- the WSGI side

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
CallerLookup = Callable[[dict[str, Any]], Caller | None]
KeyArnLookup = Callable[[str, str, str], str | None]


class EventHistoryMiddleware:
    """Wraps moto's WSGI app: records KMS calls, answers LookupEvents, clears the history on moto's reset.

    `caller_of(environ)` says who signed the request (None: unsigned, not recorded); `key_arn(account,
    region, key_id)` resolves a KeyId (ID, ARN, alias name or alias ARN) to the key's ARN, or None.
    """

    def __init__(self, app: WsgiApp, history: EventHistory, caller_of: CallerLookup, key_arn: KeyArnLookup) -> None:
        self._app = app
        self._history = history
        self._caller_of = caller_of
        self._key_arn = key_arn

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target == LOOKUP_EVENTS_TARGET:
            return self._lookup_events(environ, start_response)
        if target.startswith(KMS_TARGET_PREFIX):
            return self._recorded(environ, start_response, target[len(KMS_TARGET_PREFIX) :])
        if environ.get("PATH_INFO") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            self._history.clear()
        return self._app(environ, start_response)

    def _lookup_events(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        caller, region = self._caller_of(environ), _region(environ)
        try:
            request = json.loads(_read_body(environ) or b"{}")
            if not isinstance(request, dict):
                raise LookupEventsError("SerializationException", "The request body is not a JSON object.")
            if caller is None or region is None:
                raise LookupEventsError("MissingAuthenticationTokenException", "The request is not signed.")
            body, status = self._history.lookup(caller.account_id, region, request), "200 OK"
        except json.JSONDecodeError:
            body, status = {"__type": "SerializationException", "Message": "The body is not JSON."}, "400 Bad Request"
        except LookupEventsError as error:
            body, status = {"__type": error.code, "Message": error.message}, "400 Bad Request"
        payload = json.dumps(body).encode()
        start_response(
            status,
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Content-Length", str(len(payload))),
                ("x-amzn-RequestId", str(uuid.uuid4())),
            ],
        )
        return [payload]

    def _recorded(self, environ: dict[str, Any], start_response: StartResponse, operation: str) -> Iterable[bytes]:
        request_body = _read_body(environ)
        answered: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answered["status"], answered["headers"] = status, headers
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        response = self._app(environ, capture)
        try:
            response_body = b"".join(response)
        finally:
            close = getattr(response, "close", None)
            if close is not None:
                close()
        status = int(str(answered.get("status", "500")).split()[0])
        if status < 500:  # a 5xx is the emulator's own gap (e.g. not implemented), not an AWS answer
            self._record(environ, operation, request_body, status, response_body, answered.get("headers", []))
        return [response_body]

    def _record(
        self,
        environ: dict[str, Any],
        operation: str,
        request_body: bytes,
        status: int,
        response_body: bytes,
        headers: list[tuple[str, str]],
    ) -> None:
        caller, region = self._caller_of(environ), _region(environ)
        if caller is None or region is None:
            return
        request, response = _json_object(request_body), _json_object(response_body)
        failed = status >= 400
        read_only = is_read_only(operation)
        arns = _key_arns(request, response, lambda key_id: self._key_arn(caller.account_id, region, key_id))
        request_id = next((v for k, v in headers if k.lower() == "x-amzn-requestid"), "") or str(uuid.uuid4())

        def make(sequence: int, now: datetime) -> RecordedEvent:
            event_time = now.replace(microsecond=0)  # CloudTrail's eventTime is whole seconds
            event_id = str(uuid.uuid4())
            detail: dict[str, Any] = {
                "eventVersion": "1.08",
                "userIdentity": caller.user_identity,
                "eventTime": event_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "eventSource": KMS_EVENT_SOURCE,
                "eventName": operation,
                "awsRegion": region,
                "sourceIPAddress": environ.get("REMOTE_ADDR", ""),
                "userAgent": environ.get("HTTP_USER_AGENT", ""),
                "requestParameters": _logged(request) or None,
                "responseElements": None if failed or read_only else (_logged(response) or None),
            }
            if failed:
                detail["errorCode"] = str(response.get("__type", "")).rsplit("#", 1)[-1] or f"HTTP{status}"
                detail["errorMessage"] = str(response.get("message") or response.get("Message") or "")
            detail.update(
                {
                    "requestID": request_id,
                    "eventID": event_id,
                    "readOnly": read_only,
                    "resources": [
                        {"accountId": caller.account_id, "type": "AWS::KMS::Key", "ARN": arn} for arn in arns
                    ],
                    "eventType": "AwsApiCall",
                    "managementEvent": True,
                    "recipientAccountId": caller.account_id,
                    "eventCategory": "Management",
                }
            )
            return RecordedEvent(
                sequence=sequence,
                event_id=event_id,
                event_name=operation,
                read_only=read_only,
                access_key_id=caller.access_key_id,
                event_time=event_time,
                recorded_at=now,
                username=caller.username,
                resources=tuple(("AWS::KMS::Key", arn) for arn in arns),
                detail=detail,
            )

        self._history.record(caller.account_id, region, make)


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, put back for the app behind (a WSGI input stream reads once)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return bytes(body)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def credential_scope(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(access key id, region) from a SigV4 Authorization header's Credential=AKID/date/region/service/aws4_request."""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    marker = "Credential="
    if marker not in auth:
        return None
    parts = auth.split(marker, 1)[1].split(",", 1)[0].strip().split("/")
    if len(parts) != 5:
        return None
    return parts[0], parts[2]


def _region(environ: dict[str, Any]) -> str | None:
    scope = credential_scope(environ)
    return scope[1] if scope else None


def _key_arns(request: dict[str, Any], response: dict[str, Any], resolve: Callable[[str], str | None]) -> list[str]:
    """The KMS keys an event names, as ARNs, in order, without repeats (AWS lists each key a call uses)."""
    found: list[str] = []

    def add(arn: str | None) -> None:
        if arn and arn.startswith("arn:") and ":key/" in arn and arn not in found:
            found.append(arn)

    metadata = response.get("KeyMetadata")
    if isinstance(metadata, dict):
        add(str(metadata.get("Arn", "")))
    for member in ("SourceKeyId", "KeyId"):  # Encrypt/Decrypt/ReEncrypt/GenerateDataKey answer with ARNs
        add(str(response.get(member) or "") or None)
    for member in ("SourceKeyId", "KeyId", "TargetKeyId", "DestinationKeyId"):
        requested = request.get(member)
        if isinstance(requested, str) and requested:
            add(resolve(requested))
    return found


def _logged(value: dict[str, Any]) -> dict[str, Any]:
    """A request or response as CloudTrail logs it: camelCase member names, blobs and secrets omitted."""

    def convert(item: Any, *, members: bool) -> Any:
        if isinstance(item, dict):
            if not members:
                return dict(item)
            return {
                _camel(name): convert(inner, members=name not in _MAP_MEMBERS)
                for name, inner in item.items()
                if name not in _OMITTED_MEMBERS
            }
        if isinstance(item, list):
            return [convert(inner, members=members) for inner in item]
        return item

    converted = convert(value, members=True)
    return converted if isinstance(converted, dict) else {}


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]

