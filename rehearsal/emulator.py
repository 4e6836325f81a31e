"""moto's AWS emulator as a real HTTP server on a free loopback port, for the demo and the tests.

Everything boto3 talks HTTP to it (never in-process patches), so retries, timeouts and error
parsing are botocore's own. No credentials are needed: the emulator accepts any.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import moto.kms.models
import moto.kms.utils
from moto.kms.models import KmsBackend
from moto.kms.utils import AbstractPrivateKey
from moto.server import ThreadedMotoServer

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


@contextmanager
def moto_server() -> Iterator[str]:
    """Start the emulator on 127.0.0.1 with a free port; yield its URL; stop it, even on Ctrl-C."""
    # An action moto does not implement (CloudTrail LookupEvents) raises NotImplementedError in the
    # server, which Flask logs with its traceback on the app's logger, named after the app: "moto"
    # (flask/app.py Flask.log_exception; moto/moto_server/werkzeug_app.py Flask("moto")), and werkzeug's
    # server again as "Error on request" (werkzeug/serving.py log_error), besides one line per request.
    # The client still gets the HTTP 500, and cmkctl says in one line that the evidence is unknown; the
    # server's tracebacks are the emulator's business, not the reader's output.
    for name in ("werkzeug", "moto"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    _own_multi_region_configuration()
    _signing_keys_on_first_use()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def emulator_env(endpoint: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment whose AWS settings all point at the emulator (none of the caller's leak in)."""
    env = {k: v for k, v in (base if base is not None else os.environ).items() if not k.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS)
    env["AWS_ENDPOINT_URL"] = endpoint
    return env
