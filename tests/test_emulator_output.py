"""The emulator behind `make demo` and the tests: an action moto lacks is an error to the client, never a
server traceback in the reader's output."""

from __future__ import annotations

import boto3
import botocore.config
import botocore.exceptions
import pytest


def test_an_unimplemented_action_is_a_500_to_the_client_and_no_traceback(
    moto_endpoint: str, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Flask logs the server's exception on the "moto" logger; pytest's log capture would hide it from capfd,
    so both the records and the streams are checked."""
    cloudtrail = boto3.client(
        "cloudtrail",
        region_name="us-east-1",
        endpoint_url=moto_endpoint,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    capfd.readouterr()
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        cloudtrail.list_public_keys()  # moto has no ListPublicKeys (LookupEvents: rehearsal/event_history.py)
    out, err = capfd.readouterr()

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "Traceback" not in out + err and "NotImplementedError" not in out + err
    assert [r for r in caplog.records if r.exc_info or "NotImplementedError" in r.getMessage()] == []
