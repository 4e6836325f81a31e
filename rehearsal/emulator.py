"""moto's AWS emulator as a real HTTP server on a free loopback port, for the demo and the tests.

Everything boto3 talks HTTP to it (never in-process patches), so retries, timeouts and error
parsing are botocore's own. No credentials are needed: the emulator accepts any.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.kms.models import KmsBackend
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


@contextmanager
def moto_server() -> Iterator[str]:
    """Start the emulator on 127.0.0.1 with a free port; yield its URL; stop it, even on Ctrl-C."""
    # werkzeug logs one line per request, and a 40-line traceback per request moto has not implemented
    # (CloudTrail LookupEvents, werkzeug/serving.py log_error); the client gets the 500 and reports it.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    _own_multi_region_configuration()
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
