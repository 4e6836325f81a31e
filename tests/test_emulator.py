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
