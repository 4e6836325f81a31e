"""moto's AWS emulator as a real HTTP server on a free loopback port, for the demo and the tests.

Everything boto3 talks HTTP to it (never in-process patches), so retries, timeouts and error
parsing are botocore's own. No credentials are needed: the emulator accepts any.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import Any, Final

import moto.core.responses
import moto.core.utils
import moto.kms.models
import moto.kms.utils
from moto.iam.models import get_account_id_from
from moto.kms.models import KmsBackend, kms_backends
from moto.kms.utils import AbstractPrivateKey
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.sts.models import sts_backends
from werkzeug.serving import make_server

from rehearsal.event_history import Caller, EventHistory, EventHistoryMiddleware, credential_scope

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _own_multi_region_configuration() -> None:
    """Make moto report a multi-region primary and its replica as AWS does (idempotent).

    moto's ReplicateKey shallow-copies the primary, so primary and replica share one
    MultiRegionConfiguration dict, and DescribeKey on the replica rewrites it to REPLICA for
    both (moto/kms/models.py replicate_key, describe_key). AWS reports PRIMARY for the primary and
    REPLICA for each replica (KMS API reference, MultiRegionConfiguration). Each key gets its own.
    """
    original = KmsBackend.replicate_key
    if getattr(original, "_own_configuration", False):
        return

    def replicate_key(self: KmsBackend, key_id: str, replica_region: str) -> Any:
        replica = original(self, key_id, replica_region)
        primary = self.keys[self.get_key_id(key_id)]
        shared = primary.multi_region_configuration
        primary.multi_region_configuration = {**copy.deepcopy(shared), "MultiRegionKeyType": "PRIMARY"}
        replica.multi_region_configuration = {**copy.deepcopy(shared), "MultiRegionKeyType": "REPLICA"}
        return replica

    replicate_key._own_configuration = True  # type: ignore[attr-defined]
    KmsBackend.replicate_key = replicate_key  # type: ignore[method-assign]


class _SigningKeyOnFirstUse(AbstractPrivateKey):
    """moto's signing key of a KMS key, generated when first used rather than at CreateKey.

    moto gives every key, a symmetric one too, an RSA-2048 private key at creation (moto/kms/models.py
    Key.__init__: `self.private_key = generate_private_key(self.key_spec)`; moto/kms/utils.py), used
    only by Sign, Verify and GetPublicKey. Generating it costs ~0.1 s of CPU per CreateKey, most of
    the emulator's time in the suite, for keys this product never signs with. The same key, of the
    same spec, is made by moto's own function at the first Sign, Verify or GetPublicKey, so every
    answer is moto's.
    """

    def __init__(self, key_spec: str) -> None:
        self._key_spec = key_spec
        self._key: AbstractPrivateKey | None = None
        self._lock = threading.Lock()

    def _made(self) -> AbstractPrivateKey:
        with self._lock:  # the server answers each request on its own thread
            if self._key is None:
                self._key = _MOTO_GENERATE_PRIVATE_KEY(self._key_spec)
            return self._key

    def sign(self, message: bytes, signing_algorithm: str) -> bytes:
        return self._made().sign(message, signing_algorithm)

    def verify(self, message: bytes, signature: bytes, signing_algorithm: str) -> bool:
        return self._made().verify(message, signature, signing_algorithm)

    def public_key(self) -> bytes:
        return self._made().public_key()


_MOTO_GENERATE_PRIVATE_KEY: Final = moto.kms.utils.generate_private_key


def _signing_keys_on_first_use() -> None:
    """Key.__init__ calls the name `generate_private_key` of moto.kms.models: point it at the lazy key."""
    moto.kms.models.generate_private_key = _SigningKeyOnFirstUse  # type: ignore[attr-defined]


def caller_of(environ: dict[str, Any]) -> Caller | None:
    """Who signed the request, as moto sees it: the account moto serves it from (moto/core/responses.py
    get_current_account: MOTO_ACCOUNT_ID, then the x-moto-account-id header, then the access key's account)
    and the identity moto's STS GetCallerIdentity reports for the access key (moto/sts/models.py
    get_caller_identity), in CloudTrail's `userIdentity` shape (CloudTrail User Guide, "CloudTrail
    userIdentity element"). None for an unsigned request."""
    scope = credential_scope(environ)
    if scope is None:
        return None
    access_key_id, region = scope
    account_id = (
        os.environ.get("MOTO_ACCOUNT_ID")
        or environ.get("HTTP_X_MOTO_ACCOUNT_ID")
        or get_account_id_from(access_key_id)
    )
    try:
        principal_id, arn, account_id = sts_backends[account_id]["global"].get_caller_identity(access_key_id, region)
    except Exception:  # noqa: BLE001 - an identity moto cannot place is still a caller of its account
        principal_id, arn = access_key_id, f"arn:aws:iam::{account_id}:user/unknown"
    identity: dict[str, Any] = {
        "principalId": principal_id,
        "arn": arn,
        "accountId": account_id,
        "accessKeyId": access_key_id,
    }
    resource = arn.split(":", 5)[-1]  # user/NAME, assumed-role/ROLE/SESSION, root
    if resource.startswith("assumed-role/"):
        _, role, session = [*resource.split("/", 2), "", ""][:3]
        partition = arn.split(":", 2)[1]
        identity["type"] = "AssumedRole"
        identity["sessionContext"] = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": principal_id.split(":", 1)[0],
                "arn": f"arn:{partition}:iam::{account_id}:role/{role}",
                "accountId": account_id,
                "userName": role,
            }
        }
        username = session  # LookupEvents' Username of an assumed role is its session name
    elif resource == "root":
        identity["type"] = "Root"
        username = "root"
    else:
        identity["type"] = "IAMUser"
        username = resource.rsplit("/", 1)[-1]
        identity["userName"] = username
    return Caller(account_id, access_key_id, identity, username)


def key_arn(account_id: str, region: str, key_id: str) -> str | None:
    """The ARN of the key `key_id` names (key ID, key ARN, alias name or alias ARN) in moto's KMS, or None.

    Aliases are matched by hand: moto's get_key_id_from_alias creates AWS managed keys for reserved
    aliases (moto/kms/models.py), and recording must change nothing."""
    try:
        backend = kms_backends[account_id][region]
        name = KmsBackend.get_alias_name(key_id)
        if name.startswith("alias/"):
            key = next((k for k in list(backend.keys.values()) if name in k.aliases), None)
        else:
            key = backend.keys.get(KmsBackend.get_key_id(name))
    except Exception:  # noqa: BLE001 - an unknown region or key names no resource
        return None
    return str(key.arn) if key is not None else None


class _DispatcherRememberingBackends(DomainDispatcherApplication):
    """moto's dispatcher, remembering which backend serves each host it has placed.

    moto places every request's host again (moto/moto_server/werkzeug_app.py get_backend_for_host): it
    lists moto's package folder and stats each of its ~180 entries (moto/backends.py list_of_moto_modules),
    then tries the backends' URL patterns one by one; a third of the emulator's CPU per request. The
    answer depends only on the host, moto's installed package and its fixed pattern table, so the backend
    found for a host is kept. A host moto places nowhere is asked again each time, as moto does (it
    prints a hint for an unknown amazonaws.com host)."""

    def __init__(self, create_app: Any) -> None:
        super().__init__(create_app)
        self._backend_of_host: dict[str, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        if host is None:
            return None
        backend = self._backend_of_host.get(host)
        if backend is None:
            backend = super().get_backend_for_host(host)
            if backend:
                self._backend_of_host[host] = backend
        return backend


_MOTO_METHOD_NAMES_FROM_CLASS: Final = moto.core.utils.method_names_from_class


def _action_names_once_per_class() -> None:
    """moto lists a response class's methods with inspect.getmembers at every request to find the action's
    handler (moto/core/responses.py call_action, moto/core/utils.py method_names_from_class): ~0.6 ms of
    CPU each time, for a list fixed when the class is defined. moto's own function runs once per class."""
    names = vars(moto.core.responses)  # call_action looks the name up in its module's globals
    if getattr(names["method_names_from_class"], "cache_info", None) is None:
        names["method_names_from_class"] = functools.cache(_MOTO_METHOD_NAMES_FROM_CLASS)


class _RecordingMotoServer(ThreadedMotoServer):
    """moto's ThreadedMotoServer with CloudTrail's event history in front of its app.

    `_server_entry` is moto's own (moto/moto_server/threaded_moto_server.py), with the app wrapped."""

    def __init__(self, history: EventHistory, *, ip_address: str, port: int) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)
        self.history = history

    def _server_entry(self) -> None:
        app = EventHistoryMiddleware(
            _DispatcherRememberingBackends(create_backend_app), self.history, caller_of, key_arn
        )
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


_HISTORIES: dict[str, EventHistory] = {}
_HISTORIES_LOCK = threading.Lock()


def event_history(endpoint: str) -> EventHistory:
    """The event history of the running emulator at `endpoint` (set its `delivery_delay` or `clock`).

    Raises KeyError when no emulator of this process serves that URL."""
    with _HISTORIES_LOCK:
        return _HISTORIES[endpoint]


@contextmanager
def moto_server(*, delivery_delay: timedelta = timedelta(0)) -> Iterator[str]:
    """Start the emulator on 127.0.0.1 with a free port; yield its URL; stop it, even on Ctrl-C.

    It keeps CloudTrail's event history of the KMS calls it answers and answers LookupEvents
    (`rehearsal.event_history`); `delivery_delay` holds each event back from lookups that long
    (AWS delivers "within an average of about 5 minutes"; the emulator at once by default)."""
    # Werkzeug's server logs one line per request, and Flask logs the traceback of an action moto does
    # not implement on the app's logger, "moto" (flask/app.py Flask.log_exception;
    # moto/moto_server/werkzeug_app.py Flask("moto")): the client gets its HTTP 500 either way, and
    # the server's logs are the emulator's business, not the reader's output.
    for name in ("werkzeug", "moto"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    _own_multi_region_configuration()
    _signing_keys_on_first_use()
    _action_names_once_per_class()
    history = EventHistory(delivery_delay=delivery_delay)
    server = _RecordingMotoServer(history, ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with _HISTORIES_LOCK:
        _HISTORIES[endpoint] = history
    try:
        yield endpoint
    finally:
        with _HISTORIES_LOCK:
            _HISTORIES.pop(endpoint, None)
        server.stop()


def emulator_env(endpoint: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment whose AWS settings all point at the emulator (none of the caller's leak in)."""
    env = {k: v for k, v in (base if base is not None else os.environ).items() if not k.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS)
    env["AWS_ENDPOINT_URL"] = endpoint
    return env


def serve_until_interrupted() -> None:
    """`python -m rehearsal.emulator`: the emulator alone (KMS, STS and CloudTrail's LookupEvents from its
    own event history), for `cmkctl drill --reencryption` and hand-run commands. Plain `moto_server` has
    no CloudTrail event history of KMS calls, so every reader of CloudTrail's evidence (status, revoke,
    the drill) fails closed on it (exit 3). Prints the environment to export, serves until Ctrl-C."""
    with moto_server() as endpoint:
        print(f"emulator (KMS, STS, CloudTrail LookupEvents) at {endpoint}; in another shell:", flush=True)
        for name, value in {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}.items():
            print(f"  export {name}={value}", flush=True)
        print("Ctrl-C stops it.", flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    serve_until_interrupted()
