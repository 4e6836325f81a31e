"""The emulator harness (rehearsal/emulator.py) answers as moto does where it changes moto's internals."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def test_a_signing_key_made_on_first_use_signs_verifies_and_shows_its_public_key(moto_endpoint: str, aws: Any) -> None:
    kms = aws("kms", "us-east-1")
    key_id = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    message = b"revoke atlassian"

    signature = kms.sign(KeyId=key_id, Message=message, SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")["Signature"]
    verified = kms.verify(
        KeyId=key_id, Message=message, Signature=signature, SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256"
    )
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])

    assert verified["SignatureValid"] is True
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())  # raises InvalidSignature if not its key


def test_each_key_signs_with_its_own_key(moto_endpoint: str, aws: Any) -> None:
    kms = aws("kms", "us-east-1")
    made = [kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"] for _ in "ab"]
    first, second = made

    keys = {kms.get_public_key(KeyId=key_id)["PublicKey"] for key_id in (first, second, first)}

    assert len(keys) == 2


def test_the_dispatcher_places_each_host_on_the_backend_moto_places_it_and_leaves_unknown_hosts_to_moto() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from rehearsal.emulator import _DispatcherRememberingBackends

    moto_own = DomainDispatcherApplication(create_backend_app)
    remembering = _DispatcherRememberingBackends(create_backend_app)
    hosts = [
        f"{service}.{region}.amazonaws.com"
        for service in ("kms", "sts", "cloudtrail", "iam")
        for region in ("us-east-1", "eu-central-1", "ap-southeast-2")
    ] + ["kms", "moto_api", "no-such-service.example"]

    placed = [remembering.get_backend_for_host(host) for host in [*hosts, *hosts]]

    assert placed == [moto_own.get_backend_for_host(host) for host in [*hosts, *hosts]]
    assert placed[0] == "kms" and placed[len(hosts) - 1] is None
    assert "no-such-service.example" not in remembering._backend_of_host  # asked of moto again next time


def test_the_action_names_listed_once_per_class_are_moto_s() -> None:
    import inspect

    from moto.core import responses
    from moto.kms.responses import KmsResponse

    from rehearsal.emulator import _action_names_once_per_class

    _action_names_once_per_class()
    _action_names_once_per_class()  # idempotent: one cache, not a cache of a cache

    listed = vars(responses)["method_names_from_class"]
    names = listed(KmsResponse)

    assert names == [name for name, _ in inspect.getmembers(KmsResponse, predicate=inspect.isfunction)]
    assert {"describe_key", "disable_key", "enable_key", "list_resource_tags"} <= set(names)
    assert listed(KmsResponse) is names
    assert not hasattr(listed.__wrapped__, "__wrapped__")
