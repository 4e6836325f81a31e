"""Reading the deployed CMK keys from AWS: one bounded, concurrent round of reads.

Used by the policy pack (the only way a CrossGuard policy can see the deployed state) and by
cmkctl. Every failure becomes a reason string, never an exception, so callers can fail
closed and say why.
"""

from __future__ import annotations

import html
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final

from atlassian_cmk.endpoints import is_loopback, redact_text
from atlassian_cmk.key_identity import KeyArn, KeyGeneration
from atlassian_cmk.live_keys import DeployedState, LiveKey, RegionReading
from atlassian_cmk.naming import alias_name

if TYPE_CHECKING:
    import boto3
    import botocore.config

# boto3 and botocore are imported where a client is made or an AWS error judged, not here: the policy
# pack imports this module at start (guardrails.context), and boto3 costs about 0.3 s of its import,
# paid only by a pack that reads AWS (liveStateCheck). An AWS error can only exist once botocore is loaded.

CONNECT_TIMEOUT_S: Final = 3.0
READ_TIMEOUT_S: Final = 5.0
MAX_ATTEMPTS: Final = 3
"""botocore standard retry mode: total attempts per call, with backoff on throttling and 5xx."""


def client_config() -> botocore.config.Config:
    """Timeouts and retries for every AWS call this product makes: bounded, so guards can fail closed."""
    import botocore.config

    return botocore.config.Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
    )


ClientFactory = Callable[[str, str], Any]
"""(service, region) -> a boto3 client; tests and the CLI may wrap it."""


def default_client_factory(service: str, region: str) -> Any:
    """A client from the standard credential chain; AWS_ENDPOINT_URL (the emulator) is honoured by boto3.

    One boto3 session and one client per (service, region) per process and per AWS environment
    (`shared_client_factory`): a fresh session per call would load the endpoint rules and the
    service model again (tens of ms of CPU each), and a policy pack reads every region, twice
    with CloudTrail. A process whose AWS_* or proxy variables change gets a new session, so
    credentials or an endpoint set later are honoured as a fresh session would honour them.
    """
    key = _client_environment()
    with _DEFAULT_FACTORIES_LOCK:
        factory = _DEFAULT_FACTORIES.get(key)
        if factory is None:
            factory = _DEFAULT_FACTORIES[key] = shared_client_factory()
    return factory(service, region)


_CLIENT_CREATION_LOCK: Final = threading.Lock()
"""Held while any `shared_client_factory` creates a client: a boto3 session is not thread-safe."""
_PROXY_VARIABLES: Final = frozenset({"http_proxy", "https_proxy", "no_proxy", "all_proxy"})
_DEFAULT_FACTORIES: dict[tuple[tuple[str, str], ...], ClientFactory] = {}
_DEFAULT_FACTORIES_LOCK: Final = threading.Lock()


def _client_environment() -> tuple[tuple[str, str], ...]:
    """The environment a boto3 session and its clients are made from: AWS_* and the proxy variables.

    botocore reads AWS_* for credentials (cached by the session: botocore/session.py,
    Session.get_credentials) and settings, and the proxy variables per client
    (botocore/endpoint.py, EndpointCreator._get_proxies).
    """
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_") or k.lower() in _PROXY_VARIABLES))


def _unproxied_if_loopback(
    session: boto3.session.Session,
    client: Any,
    service: str,
    region: str,
    config: botocore.config.Config,
    endpoint_url: str | None,
) -> Any:
    """The client again without proxies when its endpoint is this machine and HTTP(S)_PROXY would route it away.

    botocore takes proxies from the environment unless the client config names some (endpoint.py,
    EndpointCreator.create_endpoint: `if proxies is None: proxies = self._get_proxies(endpoint_url)`), and
    NO_PROXY is the only way out. A loopback endpoint sent through a proxy reaches whatever the proxy
    calls 127.0.0.1, which is not this machine: the drill's "on this machine" check and the emulator would
    be wrong. So a loopback endpoint is never proxied (as Go's net/http does for localhost).
    """
    import botocore.config
    import botocore.utils

    url = str(client.meta.endpoint_url)
    if not is_loopback(url) or not botocore.utils.get_environ_proxies(url):
        return client
    return session.client(
        service, region_name=region, config=config.merge(botocore.config.Config(proxies={})), endpoint_url=endpoint_url
    )


MAX_MESSAGE_CHARS: Final = 160
"""An AWS error message is cut to this many characters: a reason, not a page."""

_TAG_RE: Final = re.compile(r"<[^>]*>")
_SPACE_RE: Final = re.compile(r"\s+")


def summarize_message(text: str) -> str:
    """One line from an AWS error body: HTML tags dropped (an emulator's or proxy's 500 page), whitespace
    collapsed, credentials in URLs redacted, cut to MAX_MESSAGE_CHARS."""
    plain = _SPACE_RE.sub(" ", html.unescape(_TAG_RE.sub(" ", text))).strip()
    plain = redact_text(plain)
    return plain if len(plain) <= MAX_MESSAGE_CHARS else plain[: MAX_MESSAGE_CHARS - 1] + "…"


def describe_error(error: BaseException) -> str:
    """A one-line reason for an AWS failure, naming what the operator can fix: `Code: message`, summarised."""
    return summarize_message(_describe_error(error))


def _describe_error(error: BaseException) -> str:
    import botocore.exceptions

    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials found (standard credential chain: environment, profile, role)"
    if isinstance(error, botocore.exceptions.ConnectTimeoutError | botocore.exceptions.ReadTimeoutError):
        return f"timed out ({error})"
    if isinstance(error, botocore.exceptions.EndpointConnectionError):
        return f"cannot reach the AWS endpoint ({error})"
    if isinstance(error, botocore.exceptions.ClientError):
        err = error.response.get("Error", {})
        attempts = error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        retried = f" after {attempts + 1} attempts" if attempts else ""
        code = err.get("Code", "Error")
        message = summarize_message(str(err.get("Message", "")))
        if code.isdigit():  # no AWS error shape in the body (an HTML page): the HTTP status is the code
            code = f"HTTP {code}"
        return f"{code}: {message}{retried}".strip()
    if isinstance(error, botocore.exceptions.BotoCoreError):
        return f"{type(error).__name__}: {error}"
    return f"{type(error).__name__}: {error}"


def read_key(kms: Any, region: str, key_ref: str, *, with_policy: bool = False) -> RegionReading:
    """Describe one key and read its tags (two requests), and its key policy when asked (a third).

    Addressed by key ID (the enrolled keys, a key already read), the requests go out at once: one
    round trip, not two or three (issue 14 item 8). Through an alias, ListResourceTags and
    GetKeyPolicy need the key ID DescribeKey returns (they do not accept an alias: botocore
    data/kms/2014-11-01/service-2.json, ListResourceTagsRequest.KeyId "key ID or key ARN"), so they follow it.
    """
    if not key_ref.startswith(("alias/", "arn:")):
        return _read_key_at_once(kms, region, key_ref, with_policy=with_policy)
    return _assemble(
        region,
        lambda: kms.describe_key(KeyId=key_ref),
        lambda metadata: _list_tags(kms, metadata["KeyId"]),
        (lambda metadata: _key_policy(kms, metadata["KeyId"])) if with_policy else None,
    )


def _assemble(
    region: str,
    described: Callable[[], Mapping[str, Any]],
    tagged: Callable[[Mapping[str, Any]], dict[str, str]],
    policed: Callable[[Mapping[str, Any]], str] | None,
) -> RegionReading:
    """One region's reading from its three answers (each a call given DescribeKey's metadata), checked in
    order: DescribeKey decides (NotFound = missing, any other failure = the reason to fail closed), then
    the tags, then the key policy when read."""
    import botocore.exceptions

    try:
        metadata = described()["KeyMetadata"]
    except botocore.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NotFoundException":
            return RegionReading(region)
        return RegionReading(region, error=describe_error(error))
    except Exception as error:  # noqa: BLE001 - any failure is a reason to fail closed
        return RegionReading(region, error=describe_error(error))
    try:
        tags = tagged(metadata)
    except Exception as error:  # noqa: BLE001
        return RegionReading(region, error=f"tags unreadable: {describe_error(error)}")
    policy: str | None = None
    if policed is not None:
        try:
            policy = policed(metadata)
        except Exception as error:  # noqa: BLE001
            return RegionReading(region, error=f"key policy unreadable: {describe_error(error)}")
    return RegionReading(region, key=_live_key(region, metadata, tags, policy))


def _list_tags(kms: Any, key_id: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    paginator_args: dict[str, Any] = {"KeyId": key_id}
    while True:
        page = kms.list_resource_tags(**paginator_args)
        tags.update({t["TagKey"]: t["TagValue"] for t in page.get("Tags", [])})
        if not page.get("Truncated"):
            return tags
        paginator_args["Marker"] = page["NextMarker"]


def _key_policy(kms: Any, key_id: str) -> str:
    return str(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])


def _live_key(region: str, metadata: Mapping[str, Any], tags: dict[str, str], policy: str | None) -> LiveKey:
    return LiveKey(
        region=region,
        key_id=metadata["KeyId"],
        arn=metadata["Arn"],
        key_state=metadata["KeyState"],
        multi_region=bool(metadata.get("MultiRegion", False)),
        tags=tags,
        policy=policy,
        multi_region_type=metadata.get("MultiRegionConfiguration", {}).get("MultiRegionKeyType"),
    )


def _read_key_at_once(kms: Any, region: str, key_id: str, *, with_policy: bool) -> RegionReading:
    """`read_key` by key ID: DescribeKey, ListResourceTags (and GetKeyPolicy) concurrently.

    botocore clients are thread-safe (boto3 docs, guide/clients.html "Multithreading or
    multiprocessing with clients"). DescribeKey's answer decides, as in the sequential read: a key
    that is not found is missing, whatever the tag read said."""
    with ThreadPoolExecutor(max_workers=3 if with_policy else 2) as pool:
        described = pool.submit(kms.describe_key, KeyId=key_id)
        tagged = pool.submit(_list_tags, kms, key_id)
        policed = pool.submit(_key_policy, kms, key_id) if with_policy else None
        return _assemble(
            region,
            described.result,
            lambda _: tagged.result(),
            (lambda _: policed.result()) if policed is not None else None,
        )


def alias_target(kms: Any, alias: str) -> tuple[str | None, str | None]:
    """(ARN of the key the alias names, None) or (None, None) when the alias does not exist, or (None, reason)."""
    import botocore.exceptions

    try:
        return str(kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"]), None
    except botocore.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NotFoundException":
            return None, None
        return None, describe_error(error)
    except Exception as error:  # noqa: BLE001 - any failure is a reason
        return None, describe_error(error)


def read_enrolled_key(kms: Any, enrolled: KeyArn, alias: str, *, with_policy: bool = False) -> RegionReading:
    """The enrolled key, addressed by the key ID from its ARN in the ARN's region, and what the alias names.

    The key ID, not the ARN: AWS accepts either, moto's DisableKey/EnableKey only the ID (see
    /work/shared/DOMAIN.md); one form for reads and writes keeps them on the same key.
    """
    # The key and the alias in one round trip: nothing of one read depends on the other.
    with ThreadPoolExecutor(max_workers=2) as pool:
        aliased = pool.submit(alias_target, kms, alias)
        reading = read_key(kms, enrolled.region, enrolled.key_id, with_policy=with_policy)
        target, alias_error = aliased.result()
    if reading.key is not None and reading.key.arn != enrolled.arn:
        reading = RegionReading(
            enrolled.region, error=f"key ID {enrolled.key_id} names {reading.key.arn}, not the enrolled {enrolled.arn}"
        )
    return RegionReading(
        enrolled.region,
        key=reading.key,
        error=reading.error,
        enrolled_arn=enrolled.arn,
        alias_target=target,
        alias_error=alias_error,
    )


def read_deployed_state(
    stack: str,
    regions: tuple[str, ...],
    *,
    key_pair_alias: str | None = None,
    client_factory: ClientFactory = default_client_factory,
    with_policy: bool = False,
    enrolled: KeyGeneration | None = None,
) -> DeployedState:
    """Read every region at once; the slowest region bounds the wall time.

    With `enrolled`, each region's key is read by its enrolled ARN (every enrolled region, also
    one the stack no longer lists: Atlassian still holds that key) and the alias separately;
    without, the key is whatever the alias names (before enrollment).
    """
    alias = key_pair_alias or alias_name(stack)
    targets = enrolled.regions if enrolled is not None else regions

    def read(region: str) -> RegionReading:
        try:
            kms = client_factory("kms", region)
        except Exception as error:  # noqa: BLE001
            return RegionReading(region, error=describe_error(error))
        identity = enrolled.arn(region) if enrolled is not None else None
        if identity is not None:
            return read_enrolled_key(kms, identity, alias, with_policy=with_policy)
        return read_key(kms, region, alias, with_policy=with_policy)

    with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
        readings = tuple(pool.map(read, targets))
    return DeployedState(stack=stack, alias=alias, readings=readings, enrolled=enrolled is not None)


def read_key_policies(
    keys: Sequence[LiveKey], client_factory: ClientFactory = default_client_factory
) -> tuple[dict[str, str], dict[str, str]]:
    """(key ARN -> key policy JSON, key ARN -> why it could not be read), one GetKeyPolicy per key, all
    keys at once (every region and generation in one round): `evidence.KeyPolicies`. Keyed by ARN because
    two generations' keys share a region. Read apart from the key itself, so a role without
    kms:GetKeyPolicy still sees the key's state."""

    def read(key: LiveKey) -> tuple[str, str | None, str | None]:
        try:
            kms = client_factory("kms", key.region)
            return key.arn, kms.get_key_policy(KeyId=key.key_id, PolicyName="default")["Policy"], None
        except Exception as error:  # noqa: BLE001 - reported, and judged as unknown
            return key.arn, None, describe_error(error)

    policies: dict[str, str] = {}
    errors: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(keys))) as pool:
        for arn, policy, error in pool.map(read, keys):
            if policy is not None:
                policies[arn] = policy
            else:
                errors[arn] = error or "no policy"
    return policies, errors


def aws_endpoint_note() -> str:
    """Where the reads went, for messages: the emulator in tests and the demo, AWS otherwise."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    return f"endpoint {redact_text(endpoint)}" if endpoint else "AWS"


def shared_client_factory(
    config: botocore.config.Config | None = None,
    *,
    session: boto3.session.Session | None = None,
    endpoint_url: str | None = None,
) -> ClientFactory:
    """One boto3 session and one client per (service, region) for a whole run.

    Creating a client from a fresh session loads the service model again (about 100 ms, more
    than a KMS round trip); a run that reads, changes and verifies every region would pay it
    several times per region. Sessions are not thread-safe, so clients are created under one
    process-wide lock (`session` may be shared by several factories, e.g. the suite's tests); the
    clients themselves are safe to share between threads (boto3 docs, guide/clients.html,
    "Multithreading or multiprocessing with clients").
    """
    import boto3

    session = session or boto3.session.Session()
    clients: dict[tuple[str, str], Any] = {}
    chosen = config or client_config()

    def factory(service: str, region: str) -> Any:
        with _CLIENT_CREATION_LOCK:
            client = clients.get((service, region))
            if client is None:
                client = session.client(service, region_name=region, config=chosen, endpoint_url=endpoint_url)
                client = _unproxied_if_loopback(session, client, service, region, chosen, endpoint_url)
                clients[(service, region)] = client
            return client

    return factory


STACK_KEY_SCAN_LIMIT: Final = 1000
"""At most this many keys per region are scanned by `keys_carrying_tags` (ListKeys pages of 100)."""


def keys_carrying_tags(
    kms: Any, tags: Mapping[str, str], limit: int = STACK_KEY_SCAN_LIMIT
) -> tuple[tuple[str, ...], str | None]:
    """(ARNs of the region's keys carrying every tag in `tags`, None) or ((), why the scan is incomplete).

    ListKeys, then ListResourceTags per key, at most `limit` keys (a bound: an account with more
    keys gets a reason, never a silent partial answer). A key whose tags cannot be read
    (AccessDenied: another team's key policy) is skipped: the stack's own keys are readable by the
    roles that run cmkctl, and a decoy behind the alias was just read through it.
    """
    import botocore.exceptions

    found: list[str] = []
    scanned = 0
    try:
        for page in kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 100}):
            for entry in page.get("Keys", []):
                scanned += 1
                if scanned > limit:
                    return (
                        (),
                        f"more than {limit} keys in the region; the scan for other keys with the stack's tags stopped",
                    )
                try:
                    listed = kms.list_resource_tags(KeyId=entry["KeyId"]).get("Tags", [])
                except botocore.exceptions.ClientError:
                    continue
                carried = {t["TagKey"]: t["TagValue"] for t in listed}
                if all(carried.get(k) == v for k, v in tags.items()):
                    found.append(str(entry["KeyArn"]))
    except Exception as error:  # noqa: BLE001 - any failure is a reason
        return (), describe_error(error)
    return tuple(found), None


def stack_keys_by_tags(
    stack: str, regions: Sequence[str], key_pair: str, client_factory: ClientFactory
) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """Per region, the ARNs of every key carrying the stack's tags for `key_pair` (`atlassian-cmk:stack`,
    `atlassian-cmk:region`, `atlassian-cmk:key-pair`; `enrollment.stack_key_tags`), or why the scan is
    incomplete; regions at once. The one lookup of a generation's keys without its alias: `cmkctl enroll`
    (a decoy behind the alias copies the tags) and `cmkctl revoke` (a next key whose alias is gone)."""
    from atlassian_cmk.enrollment import stack_key_tags

    def scan(region: str) -> tuple[tuple[str, ...], str | None]:
        try:
            kms = client_factory("kms", region)
        except Exception as error:  # noqa: BLE001 - a reason, never a crash
            return (), describe_error(error)
        return keys_carrying_tags(kms, stack_key_tags(stack, region, key_pair))

    with ThreadPoolExecutor(max_workers=max(1, len(regions))) as pool:
        return dict(zip(regions, pool.map(scan, regions), strict=True))
